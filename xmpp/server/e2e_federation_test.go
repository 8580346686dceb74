package server_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchboard/xmpp/config"
	"switchboard/xmpp/s2s"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// Federation end to end: two servers of ours, each with its own domain and
// s2s listener, routed to each other by configuration (no DNS), exchanging
// stanzas over server-to-server streams authenticated with Server Dialback
// (XEP-0220) after STARTTLS.

// fedFreeAddr returns a loopback address that was free a moment ago (two
// servers must know each other's address before either starts). The port
// is taken below the kernel's ephemeral range when there is room: a port
// from that range, closed, can be taken meanwhile by any connection's
// local end or any listener on port 0 (seen as "address already in use"
// at the server's start), one below it only by a listener that names it.
func fedFreeAddr(t *testing.T) string {
	t.Helper()
	if low := ephemeralLow(); low > 11024 {
		for range 50 {
			addr := fmt.Sprintf("127.0.0.1:%d", low-10000+rand.IntN(10000))
			if ln, err := net.Listen("tcp", addr); err == nil {
				ln.Close()
				return addr
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// ephemeralLow is the lowest port of the kernel's ephemeral range (Linux),
// 0 where it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// fedServer starts a server for domain listening for servers on s2sAddr,
// with routes to other domains.
func fedServer(t *testing.T, domain, s2sAddr string, routes map[string]string, more ...func(*config.Config)) *servertest.Server {
	t.Helper()
	return servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.SetDomains([]string{domain})
		c.Listen.S2S = s2sAddr
		c.S2S.Routes = routes
		c.S2S.ConnectTimeout = config.Duration(5 * time.Second)
		for _, f := range more {
			f(c)
		}
	}))
}

// fedPair starts a.test and b.test, federated.
func fedPair(t *testing.T) (a, b *servertest.Server) {
	t.Helper()
	addrA, addrB := fedFreeAddr(t), fedFreeAddr(t)
	a = fedServer(t, "a.test", addrA, map[string]string{"b.test": addrB, "nowhere.test": fedFreeAddr(t)})
	b = fedServer(t, "b.test", addrB, map[string]string{"a.test": addrA})
	return a, b
}

// fedOnline starts a.test and b.test and brings alice@a.test/desk and
// bob@b.test/phone online (password "pw").
func fedOnline(t *testing.T) (a, b *servertest.Server, ac, bc *servertest.Client) {
	t.Helper()
	a, b = fedPair(t)
	ac = a.MustLogin(t, a.AddUser(t, "alice", "pw"), "pw", servertest.ClientOptions{Resource: "desk"})
	bc = b.MustLogin(t, b.AddUser(t, "bob", "pw"), "pw", servertest.ClientOptions{Resource: "phone"})
	rtOnline(t, ac, 0)
	rtOnline(t, bc, 0)
	return a, b, ac, bc
}

// TestFederationChat: messages both ways between users of two servers,
// addressed to full and bare JIDs, arrive with the sender's full JID and
// the body intact; an IQ is answered across; each server then has the
// other's incoming stream (connections are one-way, XEP-0220
// "Directionality").
func TestFederationChat(t *testing.T) {
	a, b, ac, bc := fedOnline(t)

	rtSend(t, ac, "<message id='m1' to='bob@b.test/phone' type='chat'><body>hi &amp; &lt;bob&gt;</body></message>")
	el := bc.Next(t, 10*time.Second, rtMatch("message", "", "m1"))
	rtCheck(t, el, rtWant{name: "message", typ: "chat", id: "m1", from: "alice@a.test/desk", to: "bob@b.test/phone", body: "hi & <bob>"})

	rtSend(t, bc, "<message id='m2' to='alice@a.test' type='chat'><body>hello alice</body></message>")
	el = ac.Next(t, 10*time.Second, rtMatch("message", "", "m2"))
	rtCheck(t, el, rtWant{name: "message", typ: "chat", id: "m2", from: "bob@b.test/phone", to: "alice@a.test", body: "hello alice"})

	// An IQ to the other server itself (XEP-0199 ping), answered
	// over the other direction's stream.
	rtSend(t, ac, "<iq id='p1' to='b.test' type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
	el = ac.Next(t, 10*time.Second, rtMatch("iq", "b.test", "p1"))
	rtCheck(t, el, rtWant{name: "iq", typ: "result", id: "p1", from: "b.test", to: "alice@a.test/desk"})

	rtSend(t, ac, "<iq id='v1' to='b.test' type='get'><query xmlns='jabber:iq:version'/></iq>")
	el = ac.Next(t, 10*time.Second, rtMatch("iq", "b.test", "v1"))
	rtCheck(t, el, rtWant{name: "iq", typ: "result", id: "v1", from: "b.test", to: "alice@a.test/desk"})

	// The other server's services for its own users are not offered
	// to users of this one (XEP-0280 carbons keep per-session state).
	rtSend(t, ac, "<iq id='c1' to='b.test' type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
	el = ac.Next(t, 10*time.Second, rtMatch("iq", "b.test", "c1"))
	rtCheck(t, el, rtWant{name: "iq", typ: "error", id: "c1", from: "b.test", to: "alice@a.test/desk",
		errType: "cancel", errCond: "service-unavailable"})

	// A message to a user the other server does not have comes back
	// with its error (RFC 6121 §8.5.1: service-unavailable).
	rtSend(t, ac, "<message id='m3' to='nobody@b.test' type='chat'><body>?</body></message>")
	el = ac.Next(t, 10*time.Second, rtMatch("message", "nobody@b.test", "m3"))
	rtCheck(t, el, rtWant{name: "message", typ: "error", id: "m3", from: "nobody@b.test", to: "alice@a.test/desk",
		errType: "cancel", errCond: "service-unavailable"})

	if n := a.Federation().InboundCount(); n != 1 {
		t.Errorf("a.test has %d incoming server streams, want 1 (from b.test)", n)
	}
	if n := b.Federation().InboundCount(); n != 1 {
		t.Errorf("b.test has %d incoming server streams, want 1 (from a.test)", n)
	}
}

// TestFederationSubscription: a friend request across servers (RFC 6121
// §3): the request reaches the contact, the approval comes back, each
// side's roster shows the subscription, and presence then flows both
// ways, including the probe's answer at login (§4.3).
func TestFederationSubscription(t *testing.T) {
	a, b := fedPair(t)
	alice := a.AddUser(t, "alice", "pw")
	bob := b.AddUser(t, "bob", "pw")
	ac := a.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "desk"})
	bc := b.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: "phone"})
	rtSend(t, ac, "<iq id='r1' type='get'><query xmlns='jabber:iq:roster'/></iq>")
	ac.Next(t, wait, rtMatch("iq", "", "r1"))
	rtSend(t, bc, "<iq id='r2' type='get'><query xmlns='jabber:iq:roster'/></iq>")
	bc.Next(t, wait, rtMatch("iq", "", "r2"))
	rtOnline(t, ac, 0)
	rtOnline(t, bc, 0)

	rtSend(t, ac, "<presence to='bob@b.test' type='subscribe'/>")
	el := bc.Next(t, 10*time.Second, servertest.Named("presence", "type", "subscribe"))
	if got := el.AttrValue("from"); got != "alice@a.test" {
		t.Fatalf("subscribe from %q, want alice@a.test", got)
	}
	rtSend(t, bc, "<presence to='alice@a.test' type='subscribed'/>")
	// The approval reaches alice, her roster item now says "to" (RFC
	// 6121 §3.1.6), and bob's available presence follows (§3.1.5).
	fedExpectAll(t, ac, servertest.Named("presence", "type", "subscribed", "from", "bob@b.test"), fedRosterPush("bob@b.test", "to"), func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("type") == "" && e.AttrValue("from") == "bob@b.test/phone"
	})

	// The other way round.
	rtSend(t, bc, "<presence to='alice@a.test' type='subscribe'/>")
	ac.Next(t, 10*time.Second, servertest.Named("presence", "type", "subscribe", "from", "bob@b.test"))
	rtSend(t, ac, "<presence to='bob@b.test' type='subscribed'/>")
	fedExpectAll(t, bc, fedRosterPush("alice@a.test", "both"), func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("type") == "" && e.AttrValue("from") == "alice@a.test/desk"
	})

	// A status change reaches the contact on the other server.
	rtSend(t, bc, "<presence><show>dnd</show><status>on a call</status></presence>")
	el = ac.Next(t, 10*time.Second, func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("from") == "bob@b.test/phone" && e.ChildText("show", "jabber:client") == "dnd"
	})
	if got := el.ChildText("status", "jabber:client"); got != "on a call" {
		t.Errorf("status %q, want %q", got, "on a call")
	}

	// A new session of alice's probes bob (RFC 6121 §4.3) and learns
	// his presence from the other server.
	ac2 := a.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "laptop"})
	rtSend(t, ac2, "<presence/>")
	ac2.Next(t, 10*time.Second, func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("from") == "bob@b.test/phone" && e.ChildText("show", "jabber:client") == "dnd"
	})
	// And bob sees alice's presence go when her sessions end.
	ac.Close()
	ac2.Close()
	bc.Next(t, 10*time.Second, func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("type") == "unavailable" && strings.HasPrefix(e.AttrValue("from"), "alice@a.test/")
	})
}

// fedExpectAll waits until c has received an element matching each of
// the matchers, in any order.
func fedExpectAll(t *testing.T, c *servertest.Client, matchers ...func(*wire.Element) bool) {
	t.Helper()
	seen := make([]bool, len(matchers))
	for range matchers {
		c.Next(t, 10*time.Second, func(e *wire.Element) bool {
			for i, m := range matchers {
				if !seen[i] && m(e) {
					seen[i] = true
					return true
				}
			}
			return false
		})
	}
}

// fedRosterPush matches a roster push of item jid with the subscription.
func fedRosterPush(jid, sub string) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		if e.Name != "iq" || e.AttrValue("type") != "set" {
			return false
		}
		q := e.Child("query", "jabber:iq:roster")
		if q == nil {
			return false
		}
		it := q.Child("item", "jabber:iq:roster")
		return it != nil && it.AttrValue("jid") == jid && it.AttrValue("subscription") == sub
	}
}

// TestFederationFailures: stanzas to domains that cannot be federated
// with come back with the RFC 6120 §10.4.3 error, and the server goes on.
func TestFederationFailures(t *testing.T) {
	// A listener that accepts and says nothing: the connection times out.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// A client-to-server listener: the stream is not a server one.
	other := servertest.Start(t)
	s := fedServer(t, "a.test", "127.0.0.1:0", map[string]string{
		"closed.test": fedFreeAddr(t),
		"mute.test":   mute.Addr().String(),
		"client.test": other.C2S,
	}, func(c *config.Config) {
		c.S2S.ConnectTimeout = config.Duration(time.Second)
		c.S2S.Deny = []string{"denied.test"}
	})
	alice := s.AddUser(t, "alice", "pw")
	ac := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "r"})
	for _, tc := range []struct {
		domain, typ, cond string
	}{
		{"closed.test", "cancel", "remote-server-not-found"},
		{"mute.test", "wait", "remote-server-timeout"},
		{"client.test", "cancel", "remote-server-not-found"},
		{"denied.test", "cancel", "not-allowed"},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			id := "x-" + tc.domain
			rtSend(t, ac, "<message id='%s' to='someone@%s' type='chat'><body>hi</body></message>", id, tc.domain)
			el := ac.Next(t, 10*time.Second, rtMatch("message", "", id))
			rtCheck(t, el, rtWant{name: "message", typ: "error", id: id, from: "someone@" + tc.domain, to: "alice@a.test/r",
				errType: tc.typ, errCond: tc.cond})
		})
	}
	// Presence to an unreachable contact is not answered.
	rtSend(t, ac, "<presence to='someone@closed.test'/>")
	ac.NoMore(t, rtQuiet+time.Second, rtMatch("presence", "someone@closed.test", ""))
	// The server still works.
	rtSend(t, ac, "<iq id='ok' type='get' to='a.test'><ping xmlns='urn:xmpp:ping'/></iq>")
	ac.Next(t, wait, rtMatch("iq", "a.test", "ok"))
}

// fedDialbackSecret is the dialback secret of a running server, derived
// as the server derives it from the secret in its data directory.
func fedDialbackSecret(t *testing.T, s *servertest.Server) []byte {
	t.Helper()
	secret, err := os.ReadFile(filepath.Join(s.DataDir, "server-secret"))
	if err != nil {
		t.Fatal(err)
	}
	k := sha256.Sum256(append([]byte("switchboard dialback\x00"), secret...))
	return k[:]
}

// TestFederationShutdown: an incoming server stream still negotiating
// ends with system-shutdown when the server stops.
func TestFederationShutdown(t *testing.T) {
	a := fedServer(t, "a.test", "127.0.0.1:0", nil)
	r := fedDial(t, a.S2S)
	r.open(t, "b.test", "a.test")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Shutdown(ctx) }()
	if got := r.StreamError(t); got != "system-shutdown" {
		t.Errorf("stream error %s, want system-shutdown", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// fedRaw is a hand-driven server-to-server stream to one of our servers.
type fedRaw struct {
	*servertest.Raw
	id string // the server's stream id
}

func fedDial(t *testing.T, addr string) *fedRaw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &fedRaw{Raw: &servertest.Raw{Conn: c, Dec: wire.NewDecoder(c, wire.Limits{MaxStanza: 1 << 20})}}
}

// open sends a server stream header and returns the features.
func (r *fedRaw) open(t *testing.T, from, to string) *wire.Element {
	t.Helper()
	r.Write(t, fmt.Sprintf("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='%s' to='%s' version='1.0'>", from, to))
	h, err := r.Dec.ReadHeader()
	if err != nil {
		t.Fatalf("read header: %v", err)
	}
	r.id = h.ID
	el, err := r.Dec.ReadElement()
	if err != nil {
		t.Fatalf("read features: %v", err)
	}
	return el
}

// secure negotiates STARTTLS and opens the stream again.
func (r *fedRaw) secure(t *testing.T, from, to string) *wire.Element {
	t.Helper()
	r.StartTLS(t, &tls.Config{InsecureSkipVerify: true})
	return r.open(t, from, to)
}

// next reads the next element or fails.
func (r *fedRaw) next(t *testing.T) *wire.Element {
	t.Helper()
	el, err := r.Read()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return el
}

// TestFederationInbound drives the server-to-server listener by hand: the
// features, dialback's answers and refusals (XEP-0220), and the stream
// errors of RFC 6120 §4.9.3 for what a peer must not do.
func TestFederationInbound(t *testing.T) {
	a, b := fedPair(t)
	t.Run("features", func(t *testing.T) {
		r := fedDial(t, a.S2S)
		f := r.open(t, "b.test", "a.test")
		if f.Child("starttls", "urn:ietf:params:xml:ns:xmpp-tls") == nil ||
			f.Child("starttls", "urn:ietf:params:xml:ns:xmpp-tls").Child("required", "urn:ietf:params:xml:ns:xmpp-tls") == nil {
			t.Errorf("features before TLS %s, want STARTTLS required", f.Raw())
		}
		if f.Child("dialback", "urn:xmpp:features:dialback") != nil {
			t.Errorf("dialback offered before TLS: %s", f.Raw())
		}
		// Dialback before TLS is refused with a dialback error, not
		// a stream error.
		r.Write(t, "<db:result from='b.test' to='a.test'>00</db:result>")
		el := r.next(t)
		if el.Name != "result" || el.AttrValue("type") != "error" || el.AttrValue("from") != "a.test" || el.AttrValue("to") != "b.test" ||
			!strings.Contains(string(el.Raw()), "policy-violation") {
			t.Errorf("dialback before TLS: %s", el.Raw())
		}
		f = r.secure(t, "b.test", "a.test")
		db := f.Child("dialback", "urn:xmpp:features:dialback")
		if db == nil || db.Child("errors", "urn:xmpp:features:dialback") == nil {
			t.Errorf("features after TLS %s, want dialback with errors", f.Raw())
		}
		if f.Child("starttls", "urn:ietf:params:xml:ns:xmpp-tls") != nil {
			t.Errorf("STARTTLS offered again: %s", f.Raw())
		}
	})
	t.Run("verify", func(t *testing.T) {
		// The server answers db:verify about keys on any stream:
		// a key it did not issue is invalid, one for a domain it
		// does not serve is an error.
		r := fedDial(t, a.S2S)
		r.open(t, "b.test", "a.test")
		r.secure(t, "b.test", "a.test")
		r.Write(t, "<db:verify from='b.test' to='a.test' id='abc'>0123456789abcdef</db:verify>")
		el := r.next(t)
		if el.Name != "verify" || el.AttrValue("type") != "invalid" || el.AttrValue("from") != "a.test" ||
			el.AttrValue("to") != "b.test" || el.AttrValue("id") != "abc" {
			t.Errorf("verify of a bogus key: %s", el.Raw())
		}
		r.Write(t, "<db:verify from='b.test' to='elsewhere.test' id='abc'>00</db:verify>")
		el = r.next(t)
		if el.AttrValue("type") != "error" || !strings.Contains(string(el.Raw()), "item-not-found") {
			t.Errorf("verify for another domain: %s", el.Raw())
		}
	})
	t.Run("spoofed", func(t *testing.T) {
		// A peer claiming b.test with a key b.test's server did not
		// issue: a.test asks b.test's server, which says invalid; the
		// stream is refused and closed (XEP-0220).
		r := fedDial(t, a.S2S)
		r.open(t, "b.test", "a.test")
		r.secure(t, "b.test", "a.test")
		r.Write(t, "<db:result from='b.test' to='a.test'>"+strings.Repeat("ab", 32)+"</db:result>")
		el := r.next(t)
		if el.Name != "result" || el.AttrValue("type") != "invalid" {
			t.Fatalf("spoofed key: %s", el.Raw())
		}
		if _, err := r.Read(); err != wire.ErrStreamEnd {
			t.Errorf("after an invalid key: %v, want the stream closed", err)
		}
		// Stanzas are still refused on a fresh stream.
		r = fedDial(t, a.S2S)
		r.open(t, "b.test", "a.test")
		r.secure(t, "b.test", "a.test")
		r.Write(t, "<message from='mallory@b.test' to='alice@a.test'><body>x</body></message>")
		if got := r.StreamError(t); got != "invalid-from" {
			t.Errorf("stanza before dialback: %s, want invalid-from", got)
		}
	})
	t.Run("dialback errors", func(t *testing.T) {
		r := fedDial(t, a.S2S)
		r.open(t, "b.test", "a.test")
		r.secure(t, "b.test", "a.test")
		// For a domain a.test does not serve.
		r.Write(t, "<db:result from='b.test' to='elsewhere.test'>00</db:result>")
		el := r.next(t)
		if el.AttrValue("type") != "error" || !strings.Contains(string(el.Raw()), "item-not-found") || el.AttrValue("from") != "elsewhere.test" {
			t.Errorf("dialback to another domain: %s", el.Raw())
		}
		// From a domain whose server cannot be reached (XEP-0220
		// "Dialback Error Conditions").
		r.Write(t, "<db:result from='nowhere.test' to='a.test'>00</db:result>")
		el = r.next(t)
		if el.AttrValue("type") != "error" || el.AttrValue("to") != "nowhere.test" || !strings.Contains(string(el.Raw()), "<remote-connection-failed ") {
			t.Errorf("dialback from an unreachable domain: %s", el.Raw())
		}
		// An unsolicited result is ignored; the stream goes on.
		r.Write(t, "<db:result from='b.test' to='a.test' type='valid'/>")
		r.Write(t, "<message from='mallory@b.test' to='alice@a.test'><body>x</body></message>")
		if got := r.StreamError(t); got != "invalid-from" {
			t.Errorf("stanza after an unsolicited result: %s, want invalid-from", got)
		}
	})
	t.Run("authenticated pair", func(t *testing.T) {
		// With b.test's own key (the test reads b.test's secret),
		// a.test's question to b.test's server is answered valid:
		// stanzas of that pair, and only of that pair, pass.
		alice := a.AddUser(t, "carol", "pw")
		ac := a.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "r"})
		auth := func() *fedRaw {
			r := fedDial(t, a.S2S)
			r.open(t, "b.test", "a.test")
			r.secure(t, "b.test", "a.test")
			r.Write(t, "<db:result from='b.test' to='a.test'>"+s2s.Key(fedDialbackSecret(t, b), "a.test", "b.test", r.id)+"</db:result>")
			el := r.next(t)
			if el.Name != "result" || el.AttrValue("type") != "valid" || el.AttrValue("from") != "a.test" || el.AttrValue("to") != "b.test" {
				t.Fatalf("dialback with b.test's key: %s", el.Raw())
			}
			return r
		}
		r := auth()
		r.Write(t, "<message from='bob@b.test/x' to='carol@a.test/r' id='pair1'><body>ok</body></message>")
		ac.Next(t, wait, rtMatch("message", "bob@b.test/x", "pair1"))
		r.Write(t, "<message from='mallory@c.test' to='carol@a.test/r' id='pair2'><body>x</body></message>")
		if got := r.StreamError(t); got != "invalid-from" {
			t.Errorf("stanza of another sender domain: %s, want invalid-from", got)
		}
		r = auth()
		r.Write(t, "<message from='bob@b.test' to='someone@elsewhere.test'><body>x</body></message>")
		if got := r.StreamError(t); got != "host-unknown" {
			t.Errorf("stanza to a domain not served: %s, want host-unknown", got)
		}
		r = auth()
		r.Write(t, "<message to='carol@a.test'><body>x</body></message>")
		if got := r.StreamError(t); got != "improper-addressing" {
			t.Errorf("stanza without from: %s, want improper-addressing", got)
		}
		ac.NoMore(t, rtQuiet, rtMatch("message", "", "pair2"))
	})
	for _, tc := range []struct {
		name, header, want string
	}{
		{"unknown host", "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='b.test' to='elsewhere.test' version='1.0'>", "host-unknown"},
		{"no to", "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='b.test' version='1.0'>", "host-unknown"},
		{"client namespace", "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='b.test' to='a.test' version='1.0'>", "invalid-namespace"},
		{"no version", "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='b.test' to='a.test'>", "unsupported-version"},
		{"not XML", "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='a.test' version='1.0'><a></b>", "not-well-formed"},
		{"unknown element", "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='a.test' version='1.0'><foo xmlns='urn:example'/>", "unsupported-stanza-type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fedDial(t, a.S2S)
			r.Write(t, tc.header)
			if _, err := r.Dec.ReadHeader(); err != nil {
				t.Fatalf("no header before the error: %v", err)
			}
			if got := r.StreamError(t); got != tc.want {
				t.Errorf("stream error %s, want %s", got, tc.want)
			}
		})
	}
	// After all that, federation works.
	alice := a.AddUser(t, "alice", "pw")
	bob := b.AddUser(t, "bob", "pw")
	ac := a.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "r"})
	bc := b.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: "r"})
	rtSend(t, bc, "<message id='after' to='alice@a.test/r'><body>still here</body></message>")
	ac.Next(t, 10*time.Second, rtMatch("message", "bob@b.test/r", "after"))
}
