package component

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

const (
	domain = "gw.example"
	secret = "s3cr3t"
)

// chanRouter hands what is routed to the test.
type chanRouter chan *xmpp.Stanza

func (r chanRouter) Route(_ context.Context, st *xmpp.Stanza) { r <- st }

// next returns the next stanza routed, or fails after 5 s.
func (r chanRouter) next(t *testing.T) *xmpp.Stanza {
	t.Helper()
	select {
	case st := <-r:
		return st
	case <-time.After(5 * time.Second):
		t.Fatal("nothing routed")
		return nil
	}
}

// none checks that nothing was routed for a while.
func (r chanRouter) none(t *testing.T) {
	t.Helper()
	select {
	case st := <-r:
		t.Fatalf("routed %s", st.Bytes())
	case <-time.After(100 * time.Millisecond):
	}
}

// start serves the component gw.example on a loopback port.
func start(t *testing.T, opts Options) (*Server, chanRouter, string) {
	t.Helper()
	rt := make(chanRouter, 100)
	s, err := New(opts, rt, []Config{{Domain: domain, Secret: secret}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return s, rt, ln.Addr().String()
}

// peer is the component's side of a connection.
type peer struct {
	t   *testing.T
	nc  net.Conn
	dec *wire.Decoder
	id  string // the server's stream id
}

// open connects and sends header; it returns the peer once the server's
// header is read (the header's from is checked when want is set).
func open(t *testing.T, addr, header string) *peer {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	p := &peer{t: t, nc: nc, dec: wire.NewDecoder(nc, wire.Limits{MaxStanza: 1 << 20})}
	p.send(header)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := p.dec.ReadHeader()
	if err != nil {
		t.Fatalf("server header: %v", err)
	}
	if h.Default != NSAccept || h.Space != wire.NSStream || h.ID == "" {
		t.Fatalf("server header: namespace %q, stream %q, id %q", h.Default, h.Space, h.ID)
	}
	p.id = h.ID
	p.dec.SetScope(h.Scope)
	return p
}

func header(to string) string {
	return "<stream:stream xmlns='" + NSAccept + "' xmlns:stream='http://etherx.jabber.org/streams' to='" + to + "'>"
}

// connect opens a stream to gw.example and completes the handshake.
func connect(t *testing.T, addr string) *peer {
	t.Helper()
	p := open(t, addr, header(domain))
	p.send("<handshake>" + handshakeDigest(p.id, secret) + "</handshake>")
	if el := p.next(); el.Name != "handshake" || el.Space != NSAccept || len(el.Children) > 0 || el.Text != "" {
		t.Fatalf("handshake answered with %s", el.Raw())
	}
	return p
}

func (p *peer) send(s string) {
	p.t.Helper()
	_ = p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.nc.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *peer) next() *wire.Element {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	el, err := p.dec.ReadElement()
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	return el
}

// streamError reads the stream error and the end of the stream that must
// follow, and returns the error's condition.
func (p *peer) streamError() string {
	p.t.Helper()
	el := p.next()
	if el.Name != "error" || el.Space != wire.NSStream {
		p.t.Fatalf("want a stream error, got %s", el.Raw())
	}
	cond := ""
	for _, c := range el.Children {
		if c.Space == xmpp.NSStreamErr && c.Name != "text" {
			cond = c.Name
		}
	}
	if _, err := p.dec.ReadElement(); !errors.Is(err, wire.ErrStreamEnd) {
		p.t.Errorf("after the stream error: %v, want the end of the stream", err)
	}
	return cond
}

// errorCond is the condition of a routed error stanza, "" for none.
func errorCond(st *xmpp.Stanza) string {
	if e := st.El.Child("error", wire.NSClient); e != nil && e.FirstChild() != nil {
		return e.FirstChild().Name
	}
	return ""
}

// TestMaxPending: beyond Options.MaxPending connections waiting for their
// handshake, a new one is closed with resource-constraint; a handshake
// frees its slot.
func TestMaxPending(t *testing.T) {
	_, _, addr := start(t, Options{MaxPending: 1})
	first := open(t, addr, header(domain))
	second := open(t, addr, header(domain))
	if got := second.streamError(); got != "resource-constraint" {
		t.Fatalf("second connection: %q, want resource-constraint", got)
	}
	first.send("<handshake>" + handshakeDigest(first.id, secret) + "</handshake>")
	if el := first.next(); el.Name != "handshake" {
		t.Fatalf("answered with %s", el.Raw())
	}
	third := open(t, addr, header("other.example"))
	if got := third.streamError(); got != "host-unknown" {
		t.Errorf("third connection: %q, want host-unknown (its slot was free)", got)
	}
}

// TestHandshake: the header and handshake of XEP-0114 §3, and the stream
// error each wrong one gets.
func TestHandshake(t *testing.T) {
	tests := []struct {
		name      string
		header    string
		handshake func(id string) string
		cond      string // "" for success
	}{
		{"valid", header(domain), func(id string) string { return handshakeDigest(id, secret) }, ""},
		{"uppercase hex", header(domain), func(id string) string { return strings.ToUpper(handshakeDigest(id, secret)) }, ""},
		{"mixed case domain", header("GW.Example"), func(id string) string { return handshakeDigest(id, secret) }, ""},
		{"wrong secret", header(domain), func(id string) string { return handshakeDigest(id, "guess") }, "not-authorized"},
		{"another stream's id", header(domain), func(string) string { return handshakeDigest("0123", secret) }, "not-authorized"},
		{"empty", header(domain), func(string) string { return "" }, "not-authorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, addr := start(t, Options{})
			p := open(t, addr, tc.header)
			p.send("<handshake>" + tc.handshake(p.id) + "</handshake>")
			if tc.cond != "" {
				if got := p.streamError(); got != tc.cond {
					t.Errorf("stream error %q, want %q", got, tc.cond)
				}
				if s.Connected(domain) {
					t.Error("connected after a failed handshake")
				}
				return
			}
			if el := p.next(); el.Name != "handshake" {
				t.Fatalf("answered with %s", el.Raw())
			}
			if !s.Connected(domain) {
				t.Error("not connected after the handshake")
			}
		})
	}
}

// TestHeaderErrors: a header the server does not serve gets a header of
// the server's, the stream error and the end of the stream (XEP-0114 §3).
func TestHeaderErrors(t *testing.T) {
	tests := []struct {
		name, header, cond string
	}{
		{"unknown domain", header("other.example"), "host-unknown"},
		{"no to", "<stream:stream xmlns='" + NSAccept + "' xmlns:stream='http://etherx.jabber.org/streams'>", "improper-addressing"},
		{"client namespace", "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='gw.example'>", "invalid-namespace"},
		{"stream namespace", "<stream:stream xmlns='" + NSAccept + "' xmlns:stream='urn:other' to='gw.example'>", "invalid-namespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, addr := start(t, Options{})
			p := open(t, addr, tc.header)
			if got := p.streamError(); got != tc.cond {
				t.Errorf("stream error %q, want %q", got, tc.cond)
			}
		})
	}
}

// TestBeforeHandshake: a stanza before the handshake is refused with
// not-authorized (RFC 6120 §4.9.3.12) and routes nothing; a handshake that
// does not come in time ends the stream with connection-timeout.
func TestBeforeHandshake(t *testing.T) {
	t.Run("stanza", func(t *testing.T) {
		_, rt, addr := start(t, Options{})
		p := open(t, addr, header(domain))
		p.send("<message from='x@gw.example' to='alice@example.org'><body>hi</body></message>")
		if got := p.streamError(); got != "not-authorized" {
			t.Errorf("stream error %q, want not-authorized", got)
		}
		rt.none(t)
	})
	t.Run("timeout", func(t *testing.T) {
		_, _, addr := start(t, Options{HandshakeTimeout: 200 * time.Millisecond})
		p := open(t, addr, header(domain))
		if got := p.streamError(); got != "connection-timeout" {
			t.Errorf("stream error %q, want connection-timeout", got)
		}
	})
}

// TestConflict: a second connection for a connected component is refused
// with conflict; the first keeps the domain, and once it is gone another
// may connect.
func TestConflict(t *testing.T) {
	s, rt, addr := start(t, Options{})
	first := connect(t, addr)
	second := open(t, addr, header(domain))
	second.send("<handshake>" + handshakeDigest(second.id, secret) + "</handshake>")
	if got := second.streamError(); got != "conflict" {
		t.Fatalf("second connection: %q, want conflict", got)
	}
	first.send("<message from='gw.example' to='alice@example.org' id='1'/>")
	if st := rt.next(t); st.ID != "1" {
		t.Errorf("routed %s", st.Bytes())
	}
	first.send("</stream:stream>")
	if _, err := first.dec.ReadElement(); !errors.Is(err, wire.ErrStreamEnd) {
		t.Errorf("after the closing tag: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Connected(domain) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	connect(t, addr)
}

// TestFromComponent: what the component sends is routed with its
// addresses; its errors are answered to it (XEP-0114 §3).
func TestFromComponent(t *testing.T) {
	tests := []struct {
		name string
		in   string
		// routed is the stanza routed ("" for none, as
		// xmpptest.Canonical writes it); reply the error condition
		// answered to the component ("" for none).
		routed, reply string
	}{
		{"message", "<message from='bot@gw.example/r' to='alice@example.org' id='m1'><body>hi</body></message>",
			"{jabber:client}message[from=bot@gw.example/r id=m1 to=alice@example.org]({jabber:client}body[](hi))", ""},
		{"no from", "<presence to='alice@example.org' type='subscribe'/>",
			"{jabber:client}presence[from=gw.example to=alice@example.org type=subscribe]()", ""},
		{"component namespace declared", "<message xmlns='" + NSAccept + "' from='gw.example' to='alice@example.org'><body>x</body></message>",
			"{jabber:client}message[from=gw.example to=alice@example.org]({jabber:client}body[](x))", ""},
		{"client namespace declared", "<iq xmlns='jabber:client' from='gw.example' to='example.org' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>",
			"{jabber:client}iq[from=gw.example id=q to=example.org type=get]({urn:xmpp:ping}ping[]())", ""},
		{"no to", "<message from='bot@gw.example' id='m2'><body>hi</body></message>", "", "bad-request"},
		{"malformed to", "<message from='bot@gw.example' to='a@b@c' id='m3'/>", "", "jid-malformed"},
		{"IQ without id", "<iq from='gw.example' to='example.org' type='get'><ping xmlns='urn:xmpp:ping'/></iq>", "", "bad-request"},
	}
	_, rt, addr := start(t, Options{})
	p := connect(t, addr)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			p.send(tc.in)
			if tc.routed != "" {
				if got := xmpptest.Canonical(rt.next(t).El); got != tc.routed {
					t.Errorf("routed\n%s\nwant\n%s", got, tc.routed)
				}
			}
			if tc.reply != "" {
				el := p.next()
				e := el.Child("error", NSAccept)
				if el.AttrValue("type") != "error" || e == nil || e.FirstChild() == nil || e.FirstChild().Name != tc.reply {
					t.Errorf("answered %s, want a %s error", el.Raw(), tc.reply)
				}
				if to := el.AttrValue("to"); !strings.HasSuffix(to, domain) {
					t.Errorf("the error is addressed to %q", to)
				}
			}
			rt.none(t)
		})
	}
}

// TestInvalidFrom: a stanza from another domain ends the stream with
// invalid-from (XEP-0114 §3) and is not routed.
func TestInvalidFrom(t *testing.T) {
	for _, from := range []string{"alice@example.org", "x@sub.gw.example", "gw.example.evil"} {
		t.Run(from, func(t *testing.T) {
			s, rt, addr := start(t, Options{})
			p := connect(t, addr)
			p.send("<message from='" + from + "' to='bob@example.org'><body>forged</body></message>")
			if got := p.streamError(); got != "invalid-from" {
				t.Errorf("stream error %q, want invalid-from", got)
			}
			rt.none(t)
			deadline := time.Now().Add(5 * time.Second)
			for s.Connected(domain) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if s.Connected(domain) {
				t.Error("still connected")
			}
		})
	}
}

// TestToComponent: stanzas for the component's domain are written to it
// while it is connected, and answered with service-unavailable while it is
// not (but presence of availability).
func TestToComponent(t *testing.T) {
	s, rt, addr := start(t, Options{})
	route := s.Components()[0]
	ctx := context.Background()

	route.Route(ctx, xmpptest.Stanza(t, "<message from='alice@example.org/a' to='bot@gw.example' id='early'/>"))
	if e := rt.next(t); e.Type != "error" || e.ID != "early" || e.To.String() != "alice@example.org/a" ||
		errorCond(e) != "service-unavailable" {
		t.Errorf("not connected: answered %s", e.Bytes())
	}
	route.Route(ctx, xmpptest.Stanza(t, "<presence from='alice@example.org/a' to='bot@gw.example'/>"))
	rt.none(t)

	p := connect(t, addr)
	route.Route(ctx, xmpptest.Stanza(t, "<message from='alice@example.org/a' to='bot@gw.example' id='m1'><body>hi</body></message>"))
	el := p.next()
	if el.Name != "message" || el.Space != NSAccept || el.AttrValue("id") != "m1" || el.ChildText("body", NSAccept) != "hi" {
		t.Errorf("the component read %s in %s", el.Raw(), el.Space)
	}
}

// idle returns a connection of gw.example's route that runs no goroutine
// and whose transport is closed: what it writes fails.
func idle(t *testing.T, s *Server) (*Route, *conn) {
	t.Helper()
	client, server := net.Pipe()
	client.Close()
	route := s.Components()[0]
	c := newConn(s, server)
	c.route, c.authed = route, true
	if !route.attach(c) {
		t.Fatal("attach refused")
	}
	return route, c
}

// TestQueueFull: beyond its bound, a stanza for the component is answered
// with resource-constraint.
func TestQueueFull(t *testing.T) {
	s, rt, _ := start(t, Options{QueueStanzas: 2})
	route, c := idle(t, s)
	defer route.detach(c)
	for _, id := range []string{"q0", "q1", "q2"} {
		route.Route(context.Background(), xmpptest.Stanza(t, "<iq from='alice@example.org/a' to='gw.example' type='get' id='"+id+"'><query xmlns='jabber:iq:version'/></iq>"))
	}
	if e := rt.next(t); e.ID != "q2" || errorCond(e) != "resource-constraint" {
		t.Errorf("full queue: answered %s", e.Bytes())
	}
	rt.none(t)
	if len(c.queue) != 2 {
		t.Errorf("%d queued, want 2", len(c.queue))
	}
}

// TestLostQueue: what could not be written when the connection ended is
// answered with service-unavailable (presence of availability is not), and
// the component counts as not connected.
func TestLostQueue(t *testing.T) {
	s, rt, _ := start(t, Options{})
	route, c := idle(t, s)
	for _, in := range []string{
		"<message from='alice@example.org/a' to='bot@gw.example' id='m1'/>",
		"<presence from='alice@example.org/a' to='bot@gw.example'/>",
		"<iq from='alice@example.org/a' to='gw.example' type='get' id='q1'><query xmlns='jabber:iq:version'/></iq>",
	} {
		route.Route(context.Background(), xmpptest.Stanza(t, in))
	}
	c.written = make(chan struct{})
	go c.writeLoop() // fails: the transport is closed
	c.run()          // the header cannot be read either
	for _, want := range []string{"m1", "q1"} {
		if e := rt.next(t); e.ID != want || e.Type != "error" || errorCond(e) != "service-unavailable" {
			t.Errorf("answered %s, want %s's service-unavailable", e.Bytes(), want)
		}
	}
	rt.none(t)
	if s.Connected(domain) {
		t.Error("still connected")
	}
}

// TestShutdown: Shutdown writes what is queued, then system-shutdown.
func TestShutdown(t *testing.T) {
	s, _, addr := start(t, Options{})
	p := connect(t, addr)
	s.Components()[0].Route(context.Background(), xmpptest.Stanza(t, "<message from='alice@example.org/a' to='bot@gw.example' id='last'/>"))
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	if el := p.next(); el.AttrValue("id") != "last" {
		t.Errorf("read %s, want the queued message", el.Raw())
	}
	if got := p.streamError(); got != "system-shutdown" {
		t.Errorf("stream error %q, want system-shutdown", got)
	}
	p.send("</stream:stream>")
	if err := <-done; err != nil {
		t.Error(err)
	}
}
