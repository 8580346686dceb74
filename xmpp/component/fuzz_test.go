package component

import (
	"context"
	"net"
	"testing"
	"time"

	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

// FuzzStream feeds a component's stream arbitrary bytes after a valid
// handshake: whatever comes, the connection ends without a panic, and
// everything routed comes from the component's domain.
func FuzzStream(f *testing.F) {
	for _, s := range []string{
		"<message from='bot@gw.example' to='alice@example.org'><body>hi</body></message>",
		"<message xmlns='jabber:component:accept' to='alice@example.org'/>",
		"<message xmlns=\"jabber:component:accept\" id=\"xmlns='jabber:component:accept'\" to='a@example.org'/>",
		"<presence from='alice@example.org' to='bob@example.org'/>",
		"<iq from='gw.example' to='example.org' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
		"<iq from='gw.example' to='@example.org' type='set'/>",
		"<handshake>00</handshake>",
		"<x:message xmlns:x='jabber:component:accept' to='a@example.org'/>",
		"</stream:stream>",
		"<a></b>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rt := &xmpptest.Recorder{}
		s, err := New(Options{MaxStanzaSize: 16 << 10}, rt, []Config{{Domain: domain, Secret: secret}})
		if err != nil {
			t.Fatal(err)
		}
		client, server := net.Pipe()
		c := newConn(s, server)
		done := make(chan struct{})
		go func() {
			c.run()
			close(done)
		}()
		_ = client.SetDeadline(time.Now().Add(5 * time.Second))
		go func() { _, _ = client.Write([]byte(header(domain))) }()
		dec := wire.NewDecoder(client, wire.Limits{MaxStanza: 1 << 20})
		h, err := dec.ReadHeader()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, _ = client.Write([]byte("<handshake>" + handshakeDigest(h.ID, secret) + "</handshake>"))
			_, _ = client.Write(data)
			client.Close()
		}()
		for {
			if _, err := dec.ReadElement(); err != nil {
				break
			}
		}
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end")
		}
		for _, st := range rt.Take() {
			if st.From.Domainpart() != domain {
				t.Fatalf("routed from another domain: %s", st.Bytes())
			}
		}
		_ = s.Shutdown(context.Background())
	})
}
