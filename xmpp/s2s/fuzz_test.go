package s2s

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzInbound feeds an incoming server stream arbitrary bytes after a
// valid header: whatever comes, the connection ends without a panic, and
// nothing reaches the router but stanzas of an authenticated pair, which
// bytes alone cannot make (no key verifies without the authoritative
// server, which cannot be reached here).
func FuzzInbound(f *testing.F) {
	for _, s := range []string{
		"<db:result from='b.example' to='a.example'>abc</db:result>",
		"<db:verify from='b.example' to='a.example' id='x'>abc</db:verify>",
		"<db:result from='b.example' to='a.example' type='valid'/><message from='x@b.example' to='y@a.example'/>",
		"<message from='x@b.example' to='y@a.example'><body>hi</body></message>",
		"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
		"<iq type='get' id='1'/>",
		"</stream:stream>",
		"<a></b>",
		"<db:result from='' to='a.example'/>",
		"<presence from='x@b.example/r' to='@a.example'/>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rt := &fakeRouter{served: map[string]bool{"a.example": true}}
		s, err := New(Options{
			Secret:         []byte("0123456789abcdef0123456789abcdef"),
			ConnectTimeout: 200 * time.Millisecond,
			MaxStanzaSize:  16 << 10,
			Resolver: &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
				return nil, errors.New("no DNS in this test")
			}},
		}, rt)
		if err != nil {
			t.Fatal(err)
		}
		s.dialContext = func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no network in this test")
		}
		client, server := net.Pipe()
		c := newInConn(s, server)
		done := make(chan struct{})
		go func() {
			c.run()
			close(done)
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write([]byte("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='b.example' to='a.example' version='1.0'>"))
		_, _ = client.Write(data)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end")
		}
		if got := rt.routed(); len(got) > 0 {
			t.Fatalf("routed %d stanzas from an unauthenticated stream: %s", len(got), got[0].Bytes())
		}
		_ = s.Shutdown(context.Background())
	})
}
