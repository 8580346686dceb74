package s2s

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// TestKey checks the dialback key against the examples of XEP-0220
// ("Protocol"), which follow XEP-0185.
func TestKey(t *testing.T) {
	for _, tc := range []struct {
		secret, receiving, originating, id, want string
	}{
		{"s3cr3tf0rd14lb4ck", "montague.example", "capulet.example", "D60000229F",
			"b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3"},
		{"d14lb4ck43v3r", "capulet.example", "montague.example", "417GAF25",
			"225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d"},
	} {
		if got := Key([]byte(tc.secret), tc.receiving, tc.originating, tc.id); got != tc.want {
			t.Errorf("Key(%s, %s, %s) = %s, want %s", tc.receiving, tc.originating, tc.id, got, tc.want)
		}
		if !checkKey([]byte(tc.secret), tc.receiving, tc.originating, tc.id, "\n  "+tc.want+"\n") {
			t.Errorf("checkKey refuses the key with surrounding white space")
		}
		if checkKey([]byte(tc.secret), tc.originating, tc.receiving, tc.id, tc.want) {
			t.Errorf("checkKey accepts the key for the reversed pair")
		}
	}
}

func TestAppendDialback(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		el, from, to, id, typ string
		cond                  stanza.Condition
		key                   string
		want                  string
	}{
		{"key", "result", "a.example", "b.example", "", "", "", "k<&",
			"<db:result from='a.example' to='b.example'>k&lt;&amp;</db:result>"},
		{"valid", "result", "b.example", "a.example", "", "valid", "", "",
			"<db:result from='b.example' to='a.example' type='valid'/>"},
		{"verify", "verify", "a.example", "b.example", "i'd", "", "", "abc",
			"<db:verify from='a.example' to='b.example' id='i&apos;d'>abc</db:verify>"},
		{"error", "verify", "b.example", "a.example", "x", "error", stanza.ItemNotFound, "",
			"<db:verify from='b.example' to='a.example' id='x' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:verify>"},
		{"wait", "result", "b.example", "a.example", "", "error", condRemoteConnectionFailed, "",
			"<db:result from='b.example' to='a.example' type='error'><error type='wait'><remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendDialback(nil, tc.el, tc.from, tc.to, tc.id, tc.typ, tc.cond, tc.key))
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			// It parses in a stream that declares db:, and an
			// error's condition reads back.
			el, err := wire.Parse([]byte(got), wire.NewScope(wire.NSClient).Bind("db", NSDialback))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if el.Space != NSDialback || el.Name != tc.el {
				t.Errorf("parsed as {%s}%s", el.Space, el.Name)
			}
			if tc.typ == "error" && dialbackError(el) != tc.cond {
				t.Errorf("dialbackError = %s, want %s", dialbackError(el), tc.cond)
			}
		})
	}
}

// fakeRouter records what the federation routes to the rest of the
// server and serves one domain.
type fakeRouter struct {
	served map[string]bool
	mu     sync.Mutex
	got    []*xmpp.Stanza
	// next, when set, receives each routed stanza too.
	next chan *xmpp.Stanza
}

func (r *fakeRouter) Route(_ context.Context, st *xmpp.Stanza) {
	r.mu.Lock()
	r.got = append(r.got, st)
	r.mu.Unlock()
	if r.next != nil {
		r.next <- st
	}
}

func (r *fakeRouter) Serves(d string) bool { return r.served[d] }

func (r *fakeRouter) routed() []*xmpp.Stanza {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*xmpp.Stanza(nil), r.got...)
}

func newTestServer(t *testing.T, opts Options) (*Server, *fakeRouter) {
	t.Helper()
	rt := &fakeRouter{served: map[string]bool{"a.example": true}}
	if opts.Secret == nil {
		opts.Secret = []byte("0123456789abcdef0123456789abcdef")
	}
	s, err := New(opts, rt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, rt
}

func TestResolveRoutes(t *testing.T) {
	s, _ := newTestServer(t, Options{
		Routes: map[string]string{"b.example": "10.0.0.5:5270"},
		Resolver: &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no DNS in this test")
		}},
	})
	got, err := s.resolve(context.Background(), "b.example")
	if err != nil || len(got) != 1 || got[0] != "10.0.0.5:5270" {
		t.Errorf("resolve(route) = %v, %v", got, err)
	}
	// An IP literal has no SRV record: the domain on port 5269
	// (RFC 6120 §3.2.2).
	got, err = s.resolve(context.Background(), "127.0.0.1")
	if err != nil || len(got) != 1 || got[0] != "127.0.0.1:5269" {
		t.Errorf("resolve(IP) = %v, %v", got, err)
	}
}

// msg builds a chat message between two JIDs.
func msg(t *testing.T, from, to, id string) *xmpp.Stanza {
	t.Helper()
	return xmpp.Build(xmpp.KindMessage, "chat", id, jid.MustParse(from), jid.MustParse(to),
		wire.New("body", wire.NSClient).SetText("hi"))
}

// TestRouteRefusals: stanzas that cannot go out are answered at once,
// and a full queue answers the rest with resource-constraint.
func TestRouteRefusals(t *testing.T) {
	// A peer that accepts connections and never answers holds the queue.
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
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	s, rt := newTestServer(t, Options{
		Deny: []string{"denied.example"}, QueueStanzas: 2, ConnectTimeout: time.Minute,
		Routes: map[string]string{"mute.example": mute.Addr().String()},
	})
	ctx := context.Background()
	s.Route(ctx, msg(t, "alice@a.example/r", "bob@denied.example", "d"))
	s.Route(ctx, msg(t, "eve@elsewhere.example/r", "bob@mute.example", "foreign"))
	for i := range 3 {
		s.Route(ctx, msg(t, "alice@a.example/r", "bob@mute.example", "q"+string(rune('0'+i))))
	}
	got := rt.routed()
	want := []struct{ id, cond string }{{"d", "not-allowed"}, {"q2", "resource-constraint"}}
	if len(got) != len(want) {
		t.Fatalf("routed %d stanzas, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		st := got[i]
		e := st.El.Child("error", wire.NSClient)
		if st.Type != "error" || st.ID != w.id || e == nil || e.Child(w.cond, xmpp.NSStanzas) == nil {
			t.Errorf("reply %d: %s, want error %s for %s", i, st.Bytes(), w.cond, w.id)
		}
		if st.To.String() != "alice@a.example/r" {
			t.Errorf("reply %d to %s", i, st.To)
		}
	}
	// Shutdown answers what is still queued: remote-server-timeout.
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	got = rt.routed()
	if len(got) != 4 {
		t.Fatalf("after shutdown %d replies, want 4", len(got))
	}
	for _, st := range got[2:] {
		if !strings.HasPrefix(st.ID, "q") || st.El.Child("error", wire.NSClient).Child("remote-server-timeout", xmpp.NSStanzas) == nil {
			t.Errorf("queued stanza answered %s", st.Bytes())
		}
	}
}

// TestBounceSkipsPresence: presence broadcasts and probes get no error
// (the contact stays unavailable), subscription requests do.
func TestBounceSkipsPresence(t *testing.T) {
	s, rt := newTestServer(t, Options{})
	from, to := jid.MustParse("alice@a.example/r"), jid.MustParse("bob@b.example")
	for _, typ := range []string{"", xmpp.TypeUnavailable, xmpp.TypeProbe, xmpp.TypeSubscribe} {
		s.bounce(context.Background(), xmpp.Build(xmpp.KindPresence, typ, "", from, to), stanza.RemoteServerNotFound, "")
	}
	got := rt.routed()
	if len(got) != 1 || got[0].Type != "error" || got[0].El.Child("error", wire.NSClient) == nil {
		t.Fatalf("bounces %v, want one error for the subscription request", got)
	}
}

// scriptedPeer is a remote server that answers one connection's header
// with dialback offered (no TLS), reads the dialback key and writes
// answer.
func scriptedPeer(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		dec := wire.NewDecoder(c, wire.Limits{})
		if _, err := dec.ReadHeader(); err != nil {
			return
		}
		_, _ = c.Write([]byte("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='b.example' to='a.example' id='s1' version='1.0'>" +
			"<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>"))
		if el, err := dec.ReadElement(); err != nil || el.Name != "result" {
			return
		}
		_, _ = c.Write([]byte(answer))
		_, _ = io.Copy(io.Discard, c)
	}()
	return ln.Addr().String()
}

// TestOutgoingDialbackAnswers: what the receiving server answers to our
// key decides what queued stanzas are answered with (XEP-0220
// "Initiating Server Generates Outbound Request"); an answer for another
// pair does not authorise ours ("Unsolicited Dialback").
func TestOutgoingDialbackAnswers(t *testing.T) {
	for _, tc := range []struct{ name, answer, cond string }{
		{"invalid", "<db:result from='b.example' to='a.example' type='invalid'/>", "internal-server-error"},
		{"error", "<db:result from='b.example' to='a.example' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>", "remote-server-timeout"},
		{"closed", "</stream:stream>", "remote-server-timeout"},
		{"stream error", "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>", "remote-server-not-found"},
		{"unsolicited", "<db:result from='c.example' to='a.example' type='valid'/><db:result from='b.example' to='x.example' type='valid'/></stream:stream>", "remote-server-timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rt := newTestServer(t, Options{Routes: map[string]string{"b.example": scriptedPeer(t, tc.answer)}})
			rt.next = make(chan *xmpp.Stanza, 4)
			s.Route(context.Background(), msg(t, "alice@a.example/r", "bob@b.example", "m"))
			select {
			case st := <-rt.next:
				if st.Type != "error" || st.ID != "m" || st.El.Child("error", wire.NSClient).Child(tc.cond, xmpp.NSStanzas) == nil {
					t.Errorf("answered %s, want %s", st.Bytes(), tc.cond)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the queued stanza was not answered")
			}
		})
	}
}

// TestInboundLimits: past max_inbound an incoming connection is closed
// with resource-constraint, past max_inbound_per_ip with
// policy-violation, after a stream header of ours; a connection that ends
// frees its slot, and another address is not counted with the first.
func TestInboundLimits(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		cond     string
		otherIPs bool // whether another address still gets in
	}{
		{"total", Options{MaxInbound: 2}, "resource-constraint", false},
		{"per address", Options{MaxInbound: 10, MaxInboundPerIP: 2}, "policy-violation", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestServer(t, tc.opts)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = s.Serve(ln) }()
			dial := func(local string) net.Conn {
				t.Helper()
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
				c, err := d.Dial("tcp", ln.Addr().String())
				if err != nil && local != "127.0.0.1" {
					// Linux routes all of 127/8 to loopback; not
					// every system does. Checked last.
					t.Skipf("cannot dial from %s: %v", local, err)
				}
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			// refused reads what the server sends first: an accepted
			// connection waits for the initiating server's header.
			refused := func(c net.Conn) string {
				t.Helper()
				_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				b, err := io.ReadAll(c)
				if ne, ok := err.(net.Error); ok && ne.Timeout() && len(b) == 0 {
					return ""
				}
				return string(b)
			}
			first := dial("127.0.0.1")
			dial("127.0.0.1")
			got := refused(dial("127.0.0.1"))
			if !strings.Contains(got, "<stream:stream") || !strings.Contains(got, "<"+tc.cond+" xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>") {
				t.Fatalf("third connection got %q, want a header and %s", got, tc.cond)
			}
			first.Close()
			deadline := time.Now().Add(5 * time.Second)
			for refused(dial("127.0.0.1")) != "" {
				if time.Now().After(deadline) {
					t.Fatal("the slot of a closed connection was not freed")
				}
			}
			// Two connections from 127.0.0.1 again: the one that
			// took the freed slot, and the second.
			if got := refused(dial("127.0.0.2")); (got == "") != tc.otherIPs || !tc.otherIPs && !strings.Contains(got, "<"+tc.cond+" ") {
				t.Fatalf("a connection from another address got %q", got)
			}
		})
	}
}
