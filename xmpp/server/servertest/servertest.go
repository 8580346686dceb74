package servertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	mxmpp "mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/websocket"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server"
	"switchboard/xmpp/wire"
)

// Server is a running test server.
type Server struct {
	*server.Server
	Domain string
	C2S    string // STARTTLS listener address
	C2STLS string // direct TLS listener address
	HTTP   string // HTTPS listener address (web features); "" unless configured
	S2S    string // server-to-server listener address; "" unless configured
	// Component is the external component listener's address (XEP-0114);
	// "" unless a component is configured (WithComponent).
	Component string
	DataDir   string
	roots     *x509.CertPool
}

// Option adjusts the configuration before start.
type Option func(*config.Config)

// WithConfig applies fn to the configuration.
func WithConfig(fn func(*config.Config)) Option { return fn }

// Config returns the default test configuration in dataDir: one host
// "localhost", loopback listeners on free ports, no admin socket, quick
// timeouts, no login throttling.
func Config(dataDir string) config.Config {
	cfg := config.Defaults()
	cfg.Server.DataDir = dataDir
	cfg.Listen.C2S = "127.0.0.1:0"
	cfg.Listen.C2STLS = "127.0.0.1:0"
	cfg.Listen.S2S = ""
	cfg.Listen.HTTP = ""
	cfg.Listen.Component = "127.0.0.1:0"
	cfg.Listen.AdminSocket = config.DisabledSocket
	cfg.Limits.AuthFailureDelay = 0
	cfg.Limits.AuthFailureMaxDelay = 0
	cfg.Server.ShutdownTimeout = config.Duration(5 * time.Second)
	return cfg
}

// Start starts a server for the test and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := Config(t.TempDir())
	for _, o := range opts {
		o(&cfg)
	}
	return StartConfig(t, cfg)
}

// StartConfig starts a server with exactly cfg.
func StartConfig(t testing.TB, cfg config.Config) *Server {
	t.Helper()
	var log *slog.Logger
	if os.Getenv("SWITCHBOARD_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := server.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("servertest: new: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("servertest: start: %v", err)
	}
	s := &Server{Server: srv, Domain: cfg.Domains()[0], DataDir: cfg.Server.DataDir}
	if a := srv.Addr("c2s"); a != nil {
		s.C2S = a.String()
	}
	if a := srv.Addr("c2s_tls"); a != nil {
		s.C2STLS = a.String()
	}
	if a := srv.Addr("http"); a != nil {
		s.HTTP = a.String()
	}
	if a := srv.Addr("s2s"); a != nil {
		s.S2S = a.String()
	}
	if a := srv.Addr("component"); a != nil {
		s.Component = a.String()
	}
	certFile, _, _ := cfg.CertFiles()
	pemData, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatalf("servertest: read cert: %v", err)
	}
	s.roots = x509.NewCertPool()
	s.roots.AppendCertsFromPEM(pemData)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("servertest: shutdown: %v", err)
		}
	})
	return s
}

// WithComponent configures an external component (XEP-0114).
func WithComponent(domain, secret string) Option {
	return func(c *config.Config) {
		c.Components = append(c.Components, config.Component{Domain: domain, Secret: secret})
	}
}

// ConnectComponent connects to the component listener as the component of
// domain with mellium's XEP-0114 client and returns it as a Client (its
// JID is the domain). It returns the error of the handshake.
func (s *Server) ConnectComponent(domain, secret string) (*Client, error) {
	conn, err := net.DialTimeout("tcp", s.Component, 5*time.Second)
	if err != nil {
		return nil, err
	}
	// As in Login: a socket deadline, not a context, for the handshake.
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	addr, err := jid.New("", domain, "")
	if err != nil {
		conn.Close()
		return nil, err
	}
	sess, err := component.NewSession(context.Background(), addr, []byte(secret), conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	c := &Client{Session: sess, JID: addr, in: make(chan *wire.Element, 256)}
	go c.read()
	return c, nil
}

// MustConnectComponent is ConnectComponent that fails the test on error and
// closes the session when the test ends.
func (s *Server) MustConnectComponent(t testing.TB, domain, secret string) *Client {
	t.Helper()
	c, err := s.ConnectComponent(domain, secret)
	if err != nil {
		t.Fatalf("servertest: component %s: %v", domain, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TLSConfig returns a client TLS configuration trusting the server's
// certificate for the domain.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: s.Domain, MinVersion: tls.VersionTLS12}
}

// AddUser creates an account and returns its bare JID.
func (s *Server) AddUser(t testing.TB, local, password string) jid.JID {
	t.Helper()
	if err := s.Accounts().Create(context.Background(), s.Domain, local, password); err != nil {
		t.Fatalf("servertest: add user %s: %v", local, err)
	}
	return jid.MustParse(local + "@" + s.Domain)
}

// ClientOptions tune Login.
type ClientOptions struct {
	Mechanisms []sasl.Mechanism // default SCRAM-SHA-256
	Resource   string           // "" = server-assigned
	TLS        *tls.Config      // default s.TLSConfig()
	DirectTLS  bool
	// NoTLS authenticates over plain TCP without STARTTLS; the server
	// must not require TLS (config TLS.RequireC2S = false).
	NoTLS bool
	// WebSocket connects over XMPP over WebSocket (RFC 7395) to the
	// HTTPS listener (see WithHTTP), with mellium's RFC 7395 negotiator
	// over golang.org/x/net/websocket.
	WebSocket bool
}

// Client is a mellium client session with a reader of incoming elements.
type Client struct {
	*mxmpp.Session
	JID jid.JID
	in  chan *wire.Element
}

// Login connects, negotiates STARTTLS (or direct TLS), authenticates and
// binds. It returns the error of the negotiation.
func (s *Server) Login(ctx context.Context, user jid.JID, password string, o ClientOptions) (*Client, error) {
	if len(o.Mechanisms) == 0 {
		o.Mechanisms = []sasl.Mechanism{sasl.ScramSha256}
	}
	if o.TLS == nil {
		o.TLS = s.TLSConfig()
	}
	var conn net.Conn
	var err error
	features := []mxmpp.StreamFeature{}
	var state mxmpp.SessionState
	var negotiator func(func(*mxmpp.Session, *mxmpp.StreamConfig) mxmpp.StreamConfig) mxmpp.Negotiator = mxmpp.NewNegotiator
	switch {
	case o.WebSocket:
		conn, err = s.dialWebSocket(o.TLS)
		// The stream is secure: TLS is the HTTPS connection's.
		state = mxmpp.Secure
		negotiator = websocket.Negotiator
	case o.DirectTLS:
		conn, err = tls.Dial("tcp", s.C2STLS, o.TLS)
	case o.NoTLS:
		conn, err = net.Dial("tcp", s.C2S)
		// mellium negotiates SASL only on a stream it believes secure.
		state = mxmpp.Secure
	default:
		conn, err = net.Dial("tcp", s.C2S)
		features = append(features, mxmpp.StartTLS(o.TLS))
	}
	if err != nil {
		return nil, err
	}
	origin := user.Bare()
	if o.Resource != "" {
		origin, _ = origin.WithResource(o.Resource)
	}
	features = append(features, mxmpp.SASL("", password, o.Mechanisms...), bindResource(o.Resource))
	// mellium starts a goroutine per call that moves the connection's
	// deadline into the past once the call's context is done; if that
	// goroutine runs only after the call returned and the context was
	// cancelled, it breaks a later read or write. So mellium only gets a
	// context that never ends, and ctx's deadline becomes a socket
	// deadline for the negotiation.
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(30 * time.Second)
	}
	_ = conn.SetDeadline(dl)
	sess, err := mxmpp.NewSession(context.Background(), origin.Domain(), origin, conn, state,
		negotiator(func(*mxmpp.Session, *mxmpp.StreamConfig) mxmpp.StreamConfig {
			return mxmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	c := &Client{Session: sess, JID: sess.LocalAddr(), in: make(chan *wire.Element, 256)}
	go c.read()
	return c, nil
}

// MustLogin is Login that fails the test on error and closes the session
// when the test ends.
func (s *Server) MustLogin(t testing.TB, user jid.JID, password string, o ClientOptions) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.Login(ctx, user, password, o)
	if err != nil {
		t.Fatalf("servertest: login %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bindResource is mellium's resource binding feature with a client side
// that sends the requested resource (RFC 6120 §7.7): mellium v0.22.0 writes
// the still empty JID into <resource/>, so every bind would get a
// server-generated resource.
func bindResource(resource string) mxmpp.StreamFeature {
	f := mxmpp.BindResource()
	f.Negotiate = func(ctx context.Context, sess *mxmpp.Session, _ any) (mxmpp.SessionState, io.ReadWriter, error) {
		const id = "servertest-bind"
		iq := xml.StartElement{Name: xml.Name{Space: "jabber:client", Local: "iq"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "set"}, {Name: xml.Name{Local: "id"}, Value: id}}}
		bind := xml.StartElement{Name: xml.Name{Space: "urn:ietf:params:xml:ns:xmpp-bind", Local: "bind"}}
		toks := []xml.Token{iq, bind}
		if resource != "" {
			res := xml.StartElement{Name: xml.Name{Local: "resource"}}
			toks = append(toks, res, xml.CharData(resource), res.End())
		}
		toks = append(toks, bind.End(), iq.End())
		w := sess.TokenWriter()
		for _, t := range toks {
			if err := w.EncodeToken(t); err != nil {
				w.Close()
				return 0, nil, err
			}
		}
		if err := w.Close(); err != nil { // Close flushes
			return 0, nil, err
		}
		r := sess.TokenReader()
		defer r.Close()
		d := xml.NewTokenDecoder(r)
		var resp struct {
			Type string       `xml:"type,attr"`
			ID   string       `xml:"id,attr"`
			JID  string       `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>jid"`
			Err  stanza.Error `xml:"error"`
		}
		if err := d.Decode(&resp); err != nil {
			return 0, nil, err
		}
		switch {
		case resp.ID != id:
			return 0, nil, fmt.Errorf("servertest: bind answered with id %q", resp.ID)
		case resp.Type == "error":
			return 0, nil, resp.Err
		case resp.Type != "result":
			return 0, nil, fmt.Errorf("servertest: bind answered with type %q", resp.Type)
		}
		j, err := jid.Parse(resp.JID)
		if err != nil {
			return 0, nil, fmt.Errorf("servertest: bound JID: %w", err)
		}
		sess.UpdateAddr(j)
		return mxmpp.Ready, nil, nil
	}
	return f
}

func (c *Client) read() {
	defer close(c.in)
	r := c.TokenReader()
	defer r.Close()
	for {
		tok, err := r.Token()
		if err != nil {
			return
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		var buf bytes.Buffer
		enc := xml.NewEncoder(&buf)
		start.Attr = cleanAttrs(start.Attr)
		if err := enc.EncodeToken(start); err != nil {
			return
		}
		// Children need their namespace declarations dropped too: the
		// encoder writes xmlns from Name.Space, and a second xmlns
		// would make wire.Parse reject (and this loop drop) the stanza.
		inner := xmlstream.Inner(r)
		children := xmlstream.ReaderFunc(func() (xml.Token, error) {
			tok, err := inner.Token()
			if s, ok := tok.(xml.StartElement); ok {
				s.Attr = cleanAttrs(s.Attr)
				tok = s
			}
			return tok, err
		})
		if _, err := xmlstream.Copy(enc, children); err != nil {
			return
		}
		if err := enc.EncodeToken(start.End()); err != nil {
			return
		}
		if err := enc.Flush(); err != nil {
			return
		}
		el, err := wire.Parse(buf.Bytes(), wire.Scope{})
		if err != nil {
			continue
		}
		c.in <- el
	}
}

func cleanAttrs(attrs []xml.Attr) []xml.Attr {
	out := attrs[:0]
	for _, a := range attrs {
		if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
			continue
		}
		if a.Name.Space == "http://www.w3.org/XML/1998/namespace" || a.Name.Space == "xml" {
			a.Name = xml.Name{Local: "xml-lang"}
		}
		out = append(out, a)
	}
	return out
}

// SendRaw writes one stanza given as XML text.
//
// ctx only stops a send that has not started: mellium must not be given a
// context that ends (see Login).
func (c *Client) SendRaw(ctx context.Context, s string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.Send(context.Background(), xml.NewDecoder(strings.NewReader(s)))
}

// Next returns the next element matching match, skipping others, or fails
// the test after timeout.
func (c *Client) Next(t testing.TB, timeout time.Duration, match func(*wire.Element) bool) *wire.Element {
	t.Helper()
	return next(t, c.in, c.JID.String(), timeout, match)
}

// next returns the next element from in matching match, skipping others,
// or fails the test after timeout or when in is closed; who names the
// client in the failure.
func next(t testing.TB, in <-chan *wire.Element, who string, timeout time.Duration, match func(*wire.Element) bool) *wire.Element {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case el, ok := <-in:
			if !ok {
				t.Fatalf("servertest: %s: stream closed while waiting", who)
			}
			if match == nil || match(el) {
				return el
			}
		case <-timer.C:
			t.Fatalf("servertest: %s: nothing matching within %s", who, timeout)
		}
	}
}

// NoMore fails the test if an element matching match arrives within d.
// The wait is a negative check, bounded by d.
func (c *Client) NoMore(t testing.TB, d time.Duration, match func(*wire.Element) bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case el, ok := <-c.in:
			if !ok {
				return
			}
			if match == nil || match(el) {
				t.Fatalf("servertest: %s: unexpected %s", c.JID, el)
			}
		case <-timer.C:
			return
		}
	}
}

// Closed waits until the server has closed the stream.
func (c *Client) Closed(t testing.TB, timeout time.Duration) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-c.in:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("servertest: %s: stream still open after %s", c.JID, timeout)
		}
	}
}

// Match helpers.

// Named matches elements by local name and, if given, an attribute pair.
func Named(name string, attr ...string) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		if e.Name != name {
			return false
		}
		for i := 0; i+1 < len(attr); i += 2 {
			if e.AttrValue(attr[i]) != attr[i+1] {
				return false
			}
		}
		return true
	}
}

// Raw is a plain stream client that writes bytes and reads elements with
// package wire, for protocol edge cases no real client produces.
type Raw struct {
	Conn net.Conn
	Dec  *wire.Decoder
}

// DialRaw opens a TCP connection to the STARTTLS listener.
func (s *Server) DialRaw(t testing.TB) *Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.C2S, 5*time.Second)
	if err != nil {
		t.Fatalf("servertest: dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &Raw{Conn: c, Dec: wire.NewDecoder(c, wire.Limits{MaxStanza: 1 << 20})}
}

// Write sends s.
func (r *Raw) Write(t testing.TB, s string) {
	t.Helper()
	if _, err := io.WriteString(r.Conn, s); err != nil {
		t.Fatalf("servertest: write: %v", err)
	}
}

// Open sends a stream header for domain and reads the server's header
// and features.
func (r *Raw) Open(t testing.TB, domain string) *wire.Element {
	t.Helper()
	r.Write(t, fmt.Sprintf("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", domain))
	if _, err := r.Dec.ReadHeader(); err != nil {
		t.Fatalf("servertest: read header: %v", err)
	}
	el, err := r.Dec.ReadElement()
	if err != nil {
		t.Fatalf("servertest: read features: %v", err)
	}
	return el
}

// StartTLS upgrades the raw connection.
func (r *Raw) StartTLS(t testing.TB, cfg *tls.Config) {
	t.Helper()
	r.Write(t, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	el, err := r.Dec.ReadElement()
	if err != nil || el.Name != "proceed" {
		t.Fatalf("servertest: starttls: %v %v", el, err)
	}
	tc := tls.Client(r.Conn, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("servertest: TLS handshake: %v", err)
	}
	r.Conn = tc
	r.Dec.Reset(tc)
}

// Read returns the next element or error.
func (r *Raw) Read() (*wire.Element, error) { return r.Dec.ReadElement() }

// StreamError reads until a stream error and returns its condition, or
// fails.
func (r *Raw) StreamError(t testing.TB) string {
	t.Helper()
	for {
		el, err := r.Dec.ReadElement()
		if err != nil {
			t.Fatalf("servertest: no stream error before %v", err)
		}
		if el.Name == "error" && el.Space == wire.NSStream {
			for _, c := range el.Children {
				if c.Space == "urn:ietf:params:xml:ns:xmpp-streams" && c.Name != "text" {
					return c.Name
				}
			}
			t.Fatalf("servertest: stream error without condition: %s", el)
		}
	}
}
