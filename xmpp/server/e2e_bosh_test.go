package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"

	"switchboard/xmpp/bosh"
	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// TestBOSHLogin logs in over XMPP over BOSH (XEP-0206) with each SASL
// mechanism and exchanges messages with a client on TCP, both ways.
func TestBOSHLogin(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP())
	s.AddUser(t, "alice", "wonder land")
	bob := s.AddUser(t, "bob", "builder")
	b := s.MustLogin(t, bob, "builder", servertest.ClientOptions{})
	for _, mech := range []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha1, sasl.Plain} {
		t.Run(mech.Name, func(t *testing.T) {
			a := s.DialBOSH(t, "localhost", "")
			for k, v := range map[string]string{
				"requests": "2", "hold": "1", "wait": "5", "inactivity": "60", "ver": bosh.Version,
				"from": "localhost", "xmpp:version": "1.0", "xmpp:restartlogic": "true",
			} {
				if got := a.Created.AttrValue(k); got != v {
					t.Errorf("creation response %s = %q, want %q", k, got, v)
				}
			}
			full := a.Login(t, "localhost", "alice", "wonder land", "web-"+mech.Name, mech)
			if full != "alice@localhost/web-"+mech.Name {
				t.Fatalf("bound %s", full)
			}
			a.Send("<message type='chat' to='" + b.JID.String() + "'><body>from the browser</body></message>")
			m := b.Next(t, wait, servertest.Named("message"))
			if m.ChildText("body", "jabber:client") != "from the browser" || m.AttrValue("from") != full {
				t.Fatalf("bob got %s", m)
			}
			if err := b.SendRaw(context.Background(), "<message xmlns='jabber:client' type='chat' to='"+full+"'><body>back &amp; forth</body></message>"); err != nil {
				t.Fatal(err)
			}
			m = a.Next(t, wait, servertest.Named("message"))
			if m.Space != "jabber:client" || m.ChildText("body", "jabber:client") != "back & forth" || m.AttrValue("from") != b.JID.String() {
				t.Fatalf("alice got %s", m)
			}
			if el := a.Terminate(t, "<presence type='unavailable' xmlns='jabber:client'/>"); el.AttrValue("condition") != "" {
				t.Fatalf("terminate answered %s", el)
			}
		})
	}
}

// TestBOSHFeatures: TLS is the HTTPS connection's, so STARTTLS is not
// offered, and neither is channel binding (a session's requests come on
// several connections); the creation response carries the features.
func TestBOSHFeatures(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP())
	a := s.DialBOSH(t, "localhost", "")
	f := a.Created.Child("features", wire.NSStream)
	if f == nil {
		t.Fatalf("no features in the creation response %s", a.Created)
	}
	if f.Child("starttls", "urn:ietf:params:xml:ns:xmpp-tls") != nil {
		t.Errorf("STARTTLS offered over BOSH: %s", f)
	}
	mechs := f.Child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl")
	if mechs == nil || len(mechs.Children) == 0 {
		t.Fatalf("no mechanisms: %s", f)
	}
	for _, m := range mechs.Children {
		if strings.HasSuffix(m.Text, "-PLUS") {
			t.Errorf("%s offered over BOSH", m.Text)
		}
	}
}

// TestBOSHErrors checks what ends a session: an unknown host, the
// server's stream error (here a stanza over the size limit) with the
// stanzas before it, and a conflict with a later login.
func TestBOSHErrors(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP(), servertest.WithConfig(func(c *config.Config) {
		c.Limits.MaxStanzaSize = config.MinStanzaSize
	}))
	alice := s.AddUser(t, "alice", "secret")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: s.TLSConfig()}, Timeout: 10 * time.Second}
	resp, err := client.Post(s.BOSHURL(), "text/xml", strings.NewReader("<body xmlns='"+bosh.NS+"' rid='7' to='elsewhere.example'/>"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "condition='host-unknown'") {
		t.Fatalf("unknown host: %s", body)
	}

	a := s.DialBOSH(t, "localhost", "")
	a.Login(t, "localhost", "alice", "secret", "r", sasl.Plain)
	a.Send("<message to='alice@localhost'><body>" + strings.Repeat("x", config.MinStanzaSize) + "</body></message>")
	end := a.WaitEnded(t, wait)
	serr := end.Child("error", wire.NSStream)
	if end.AttrValue("condition") != "remote-stream-error" || serr == nil || serr.Child("policy-violation", "urn:ietf:params:xml:ns:xmpp-streams") == nil {
		t.Fatalf("over the stanza size: %s", end)
	}

	a = s.DialBOSH(t, "localhost", "")
	a.Login(t, "localhost", "alice", "secret", "r", sasl.Plain)
	s.MustLogin(t, alice, "secret", servertest.ClientOptions{Resource: "r"})
	end = a.WaitEnded(t, wait)
	if serr := end.Child("error", wire.NSStream); serr == nil || serr.Child("conflict", "urn:ietf:params:xml:ns:xmpp-streams") == nil {
		t.Fatalf("replaced by a later login: %s", end)
	}
}

// TestBOSHPresence: a contact sees a BOSH user come online, and go offline
// when the session ends, whether the client ends it or goes silent (its
// browser tab closed).
func TestBOSHPresence(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP(), servertest.WithConfig(func(c *config.Config) {
		c.BOSH.Inactivity = config.Duration(time.Second)
	}))
	alice := s.AddUser(t, "alice", ftPassword)
	bob := s.AddUser(t, "bob", ftPassword)
	ftSubscribe(t, s, alice, bob, true)
	b := ftLogin(t, s, bob, "desk")
	ftOnline(t, b, "<presence/>")
	for _, end := range []string{"terminate", "silence"} {
		t.Run(end, func(t *testing.T) {
			a := s.DialBOSH(t, "localhost", "")
			full := a.Login(t, "localhost", "alice", ftPassword, end, sasl.Plain)
			a.Send("<presence><show>dnd</show><status>on a call</status></presence>")
			p := b.Next(t, wait, ftPresence("", full))
			if p.ChildText("show", "jabber:client") != "dnd" {
				t.Fatalf("bob saw %s", p)
			}
			a.Next(t, wait, ftPresence("", b.JID.String()))
			if end == "terminate" {
				a.Terminate(t, "<presence type='unavailable'/>")
			} else {
				a.Silence()
			}
			b.Next(t, wait, ftPresence("unavailable", full))
		})
	}
}

// TestBOSHShutdown: a shutdown answers the requests held with
// system-shutdown.
func TestBOSHShutdown(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP())
	s.AddUser(t, "alice", "secret")
	a := s.DialBOSH(t, "localhost", "")
	a.Login(t, "localhost", "alice", "secret", "r", sasl.Plain)
	a.WaitHeld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("shutdown took %v: held requests waited for their 'wait'", d)
	}
	if el := a.WaitEnded(t, wait); el.AttrValue("condition") != "system-shutdown" {
		t.Fatalf("at shutdown: %s", el)
	}
}

// TestBOSHDiscovery checks XEP-0156 discovery of both web transports.
func TestBOSHDiscovery(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: s.TLSConfig()}, Timeout: 10 * time.Second}
	for _, path := range []string{"/.well-known/host-meta", "/.well-known/host-meta.json"} {
		resp, err := client.Get("https://" + s.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{bosh.RelXBOSH, s.BOSHURL(), "wss://" + s.HTTP + "/xmpp-websocket"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("%s: %s, want %s", path, body, want)
			}
		}
	}
	// Disabled: neither served nor advertised.
	s = servertest.Start(t, servertest.WithHTTP(), servertest.WithConfig(func(c *config.Config) { c.BOSH.Enabled = false }))
	client = &http.Client{Transport: &http.Transport{TLSClientConfig: s.TLSConfig()}, Timeout: 10 * time.Second}
	resp, err := client.Get("https://" + s.HTTP + "/.well-known/host-meta")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), bosh.RelXBOSH) {
		t.Errorf("disabled BOSH advertised: %s", body)
	}
	resp, err = client.Post(s.BOSHURL(), "text/xml", strings.NewReader("<body xmlns='"+bosh.NS+"' rid='1' to='localhost'/>"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "sid=") {
		t.Errorf("disabled BOSH created a session: %s", body)
	}
}
