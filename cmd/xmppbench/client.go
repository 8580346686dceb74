package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"switchboard/xmpp/wire"
)

// Namespaces the client speaks.
const (
	nsTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession  = "urn:ietf:params:xml:ns:xmpp-session"
	nsRegister = "jabber:iq:register"
	nsRoster   = "jabber:iq:roster"
	nsPing     = "urn:xmpp:ping"
	nsStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsStreams  = "urn:ietf:params:xml:ns:xmpp-streams"
	nsSM       = "urn:xmpp:sm:3"
)

// smRequest asks the server for an acknowledgement (XEP-0198 §4).
const smRequest = "<r xmlns='urn:xmpp:sm:3'/>"

// TLS modes of --tls.
const (
	tlsNone     = "none"
	tlsStartTLS = "starttls"
)

// clientConfig is what every connection of a run shares.
type clientConfig struct {
	Addr     string
	Domain   string
	TLS      string // tlsNone or tlsStartTLS
	Mech     string // SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN
	Password string
	// Timeout bounds connecting and the whole negotiation.
	Timeout time.Duration
	// SASL authenticates; it is shared by all connections (it caches
	// SCRAM keys).
	SASL *saslClient
	// Curves are the TLS key exchanges offered (nil: Go's defaults).
	Curves []tls.CurveID
	// SM enables stream management (XEP-0198) after binding, asking for
	// resumption as mobile clients do; SMRequest is how many stanza
	// writes go between the client's requests for an acknowledgement
	// (0: the client never asks, it only answers the server's).
	SM        bool
	SMRequest int
	// Sources are local addresses to connect from, in turn (nil: the
	// kernel chooses); next picks the turn.
	Sources []net.IP
	next    atomic.Uint64
}

// curveNames are the --tls-curves names.
var curveNames = map[string]tls.CurveID{
	"x25519":         tls.X25519,
	"p256":           tls.CurveP256,
	"p384":           tls.CurveP384,
	"x25519mlkem768": tls.X25519MLKEM768,
}

// parseCurves reads --tls-curves.
func parseCurves(s string) ([]tls.CurveID, error) {
	if s == "" {
		return nil, nil
	}
	var out []tls.CurveID
	for _, name := range strings.Split(s, ",") {
		id, ok := curveNames[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return nil, fmt.Errorf("--tls-curves: unknown key exchange %q (want x25519, p256, p384 or x25519mlkem768)", name)
		}
		out = append(out, id)
	}
	return out, nil
}

// parseSources reads --source: loopback IPs separated by commas, each
// possibly a range of IPv4 addresses "A-B" (at most 256).
func parseSources(s string) ([]net.IP, error) {
	if s == "" {
		return nil, nil
	}
	var out []net.IP
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		from, to, isRange := strings.Cut(part, "-")
		a := net.ParseIP(from)
		if a == nil || !a.IsLoopback() {
			return nil, fmt.Errorf("--source %q: %w", part, errNotLoopback)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b := net.ParseIP(to).To4()
		a4 := a.To4()
		if a4 == nil || b == nil || !b.IsLoopback() || a4[0] != b[0] || a4[1] != b[1] || a4[2] != b[2] || a4[3] > b[3] {
			return nil, fmt.Errorf("--source %q: a range is A-B with A and B loopback IPv4 addresses differing in the last byte only", part)
		}
		for i := int(a4[3]); i <= int(b[3]); i++ {
			out = append(out, net.IPv4(a4[0], a4[1], a4[2], byte(i)))
		}
	}
	return out, nil
}

// dialer returns the dialer of the next connection: from the next source
// address when --source is set.
func (cfg *clientConfig) dialer() *net.Dialer {
	d := &net.Dialer{}
	if n := len(cfg.Sources); n > 0 {
		d.LocalAddr = &net.TCPAddr{IP: cfg.Sources[(cfg.next.Add(1)-1)%uint64(n)]}
	}
	return d
}

// Handler receives the stanzas a connection does not answer itself. It
// runs on the connection's reader goroutine and must not block for long:
// while it runs nothing else is read from that connection.
// A message arrives parsed to its start tag only (wire.ParseStartTag):
// its attributes are there, its children and text are not.
type Handler func(c *Conn, el *wire.Element)

// Conn is one authenticated, bound client stream. After Start a reader
// goroutine owns the decoder; writes are serialised by a mutex.
type Conn struct {
	nc  net.Conn
	dec *wire.Decoder
	// JID is the full JID the server bound; Bare is its bare part.
	JID, Bare string

	wmu sync.Mutex
	// ended, under wmu: Close wrote the stream's end, and nothing more
	// is written (RFC 6120 §4.4).
	ended bool
	// Stream management (XEP-0198), when enabled: smEvery and writes
	// (stanza writes so far) under wmu, with wbuf for a stanza and a
	// request written together; h is the number of stanzas read since
	// <enabled/>, counted by the reader goroutine (Close acknowledges
	// it); acks counts the server's <a/>, answered its <r/>.
	sm       bool
	smEvery  int
	writes   int
	wbuf     []byte
	h        atomic.Uint32 // written by the reader, read by Close too
	acks     atomic.Int64
	answered atomic.Int64
	// early are the stanzas read while stream management was being
	// enabled, for the handler (read passes them first).
	early []*wire.Element

	// done is closed when the reader goroutine returns; err is its
	// reason, readable after done.
	done    chan struct{}
	err     error
	closing atomic.Bool
}

// StreamError is a stream error from the server.
type StreamError struct{ Condition, Text string }

func (e *StreamError) Error() string {
	if e.Text != "" {
		return "stream error: " + e.Condition + " (" + e.Text + ")"
	}
	return "stream error: " + e.Condition
}

// StanzaError is an error reply to a request during negotiation.
type StanzaError struct{ Type, Condition string }

func (e *StanzaError) Error() string { return "stanza error: " + e.Type + "/" + e.Condition }

// errNotLoopback refuses addresses other than loopback ones.
var errNotLoopback = errors.New("only loopback addresses are allowed (127.0.0.0/8, ::1 or localhost)")

// checkLoopback accepts host:port when host is a loopback IP or
// "localhost".
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("address %q: missing port", addr)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q: %w", addr, errNotLoopback)
	}
	return nil
}

func streamHeader(domain string) []byte {
	b := []byte("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='")
	b = wire.AppendEscapedAttr(b, domain)
	return append(b, "' version='1.0' xml:lang='en'>"...)
}

// dial connects and opens the stream, negotiating STARTTLS when
// configured. It returns the connection with the deadline of ctx (or
// cfg.Timeout) set, and the features offered after TLS.
func dial(ctx context.Context, cfg *clientConfig) (*Conn, *wire.Element, error) {
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	nc, err := cfg.dialer().DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	c := &Conn{nc: nc, dec: wire.NewDecoder(nc, wire.Limits{}), done: make(chan struct{})}
	feats, err := c.open(cfg.Domain)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if cfg.TLS == tlsStartTLS {
		if feats.Child("starttls", nsTLS) == nil {
			nc.Close()
			return nil, nil, errors.New("server does not offer STARTTLS")
		}
		if err := c.send([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
			nc.Close()
			return nil, nil, err
		}
		el, err := c.next()
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		if el.Name != "proceed" || el.Space != nsTLS {
			nc.Close()
			return nil, nil, fmt.Errorf("STARTTLS refused: <%s/>", el.Name)
		}
		// A load generator on loopback: the server's certificate is
		// typically self-signed, so it is not verified.
		tc := tls.Client(nc, &tls.Config{ServerName: cfg.Domain, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, //nolint:gosec // loopback benchmark
			CurvePreferences: cfg.Curves})
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c.nc = tc
		c.dec.Reset(tc)
		if feats, err = c.open(cfg.Domain); err != nil {
			tc.Close()
			return nil, nil, err
		}
	}
	return c, feats, nil
}

// Login connects, authenticates and binds resource (empty: the server
// chooses). The returned connection is not reading yet: call Start.
func Login(ctx context.Context, cfg *clientConfig, user, resource string) (*Conn, error) {
	c, feats, err := dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.login(cfg, feats, user, resource); err != nil {
		c.nc.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	_ = c.nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *Conn) login(cfg *clientConfig, feats *wire.Element, user, resource string) error {
	mechs := feats.Child("mechanisms", nsSASL)
	if mechs == nil {
		return errors.New("server offers no SASL mechanisms")
	}
	offered := false
	for _, m := range mechs.Children {
		if m.Name == "mechanism" && strings.TrimSpace(m.Text) == cfg.Mech {
			offered = true
		}
	}
	if !offered {
		return fmt.Errorf("server does not offer %s", cfg.Mech)
	}
	if err := c.authenticate(cfg, user); err != nil {
		return err
	}
	c.dec.Restart()
	feats, err := c.open(cfg.Domain)
	if err != nil {
		return err
	}
	if feats.Child("bind", nsBind) == nil {
		return errors.New("server offers no resource binding")
	}
	b := []byte("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>")
	if resource != "" {
		b = append(b, "<resource>"...)
		b = wire.AppendEscapedText(b, resource)
		b = append(b, "</resource>"...)
	}
	b = append(b, "</bind></iq>"...)
	if err := c.send(b); err != nil {
		return err
	}
	res, err := c.result("bind1")
	if err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	c.JID = res.Child("bind", nsBind).ChildText("jid", nsBind)
	if c.JID == "" {
		return errors.New("bind: no JID in the result")
	}
	c.Bare, _, _ = strings.Cut(c.JID, "/")
	// RFC 3921 session establishment, only for servers that still
	// require it (RFC 6121 dropped it; most mark it optional).
	if s := feats.Child("session", nsSession); s != nil && s.Child("optional", "") == nil {
		if err := c.send([]byte("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")); err != nil {
			return err
		}
		if _, err := c.result("sess1"); err != nil {
			return fmt.Errorf("session: %w", err)
		}
	}
	if cfg.SM {
		return c.enableSM(feats, cfg.SMRequest)
	}
	return nil
}

// enableSM enables stream management (XEP-0198 §3), asking for
// resumption, and waits for <enabled/>: the stanzas read after it are
// counted (§4).
func (c *Conn) enableSM(feats *wire.Element, every int) error {
	if feats.Child("sm", nsSM) == nil {
		return errors.New("server does not offer stream management (XEP-0198)")
	}
	if err := c.send([]byte("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")); err != nil {
		return err
	}
	for {
		el, err := c.next()
		if err != nil {
			return fmt.Errorf("stream management: %w", err)
		}
		if el.Space != nsSM {
			// Before <enabled/>: not counted (§4), but the
			// scenario's, handed to it when the reader starts.
			c.early = append(c.early, el)
			continue
		}
		switch el.Name {
		case "enabled":
			c.sm, c.smEvery = true, every
			return nil
		case "failed":
			cond := "failed"
			if f := el.FirstChild(); f != nil {
				cond = f.Name
			}
			return fmt.Errorf("stream management refused: %s", cond)
		}
	}
}

// authenticate runs the SASL exchange (RFC 6120 §6.4).
func (c *Conn) authenticate(cfg *clientConfig, user string) error {
	ex, err := cfg.SASL.start(cfg.Mech, user, cfg.Password)
	if err != nil {
		return err
	}
	initial, err := ex.step(nil)
	if err != nil {
		return err
	}
	b := []byte("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='")
	b = append(b, cfg.Mech...)
	b = append(b, "'>"...)
	b = appendSASL(b, initial)
	b = append(b, "</auth>"...)
	if err := c.send(b); err != nil {
		return err
	}
	for {
		el, err := c.next()
		if err != nil {
			return err
		}
		if el.Space != nsSASL {
			return fmt.Errorf("sasl: unexpected <%s/>", el.Name)
		}
		switch el.Name {
		case "challenge":
			var in []byte
			if t := strings.TrimSpace(el.Text); t != "" && t != "=" {
				if in, err = base64.StdEncoding.DecodeString(t); err != nil {
					return fmt.Errorf("sasl: challenge: %w", err)
				}
			}
			out, err := ex.step(in)
			if err != nil {
				return err
			}
			b = append(b[:0], "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"...)
			b = appendSASL(b, out)
			b = append(b, "</response>"...)
			if err := c.send(b); err != nil {
				return err
			}
		case "success":
			if t := strings.TrimSpace(el.Text); t != "" && t != "=" {
				in, err := base64.StdEncoding.DecodeString(t)
				if err != nil {
					return fmt.Errorf("sasl: success: %w", err)
				}
				if _, err := ex.step(in); err != nil {
					return err
				}
			}
			return ex.verified()
		case "failure":
			cond := "failure"
			if f := el.FirstChild(); f != nil && f.Name != "text" {
				cond = f.Name
			}
			return fmt.Errorf("sasl %s: %s", cfg.Mech, cond)
		default:
			return fmt.Errorf("sasl: unexpected <%s/>", el.Name)
		}
	}
}

// appendSASL appends a SASL payload in base64; an empty one is "=".
func appendSASL(b, p []byte) []byte {
	if len(p) == 0 {
		return append(b, '=')
	}
	return base64.StdEncoding.AppendEncode(b, p)
}

// Register creates the account user with XEP-0077 in-band registration.
// It reports existed when the server answered conflict.
func Register(ctx context.Context, cfg *clientConfig, user string) (existed bool, err error) {
	c, feats, err := dial(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer c.nc.Close()
	_ = feats // servers advertise iq-register inconsistently; just try.
	b := []byte("<iq type='get' id='reg0'><query xmlns='jabber:iq:register'/></iq>")
	if err := c.send(b); err != nil {
		return false, err
	}
	if _, err := c.result("reg0"); err != nil {
		return false, fmt.Errorf("register %s: %w", user, err)
	}
	b = append(b[:0], "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>"...)
	b = wire.AppendEscapedText(b, user)
	b = append(b, "</username><password>"...)
	b = wire.AppendEscapedText(b, cfg.Password)
	b = append(b, "</password></query></iq>"...)
	if err := c.send(b); err != nil {
		return false, err
	}
	_, err = c.result("reg1")
	var se *StanzaError
	if errors.As(err, &se) && se.Condition == "conflict" {
		existed, err = true, nil
	}
	if err != nil {
		return false, fmt.Errorf("register %s: %w", user, err)
	}
	_ = c.send([]byte("</stream:stream>"))
	return existed, nil
}

// open sends a stream header and reads the server's header and features.
func (c *Conn) open(domain string) (*wire.Element, error) {
	if err := c.send(streamHeader(domain)); err != nil {
		return nil, err
	}
	if _, err := c.dec.ReadHeader(); err != nil {
		return nil, fmt.Errorf("stream header: %w", err)
	}
	el, err := c.next()
	if err != nil {
		return nil, err
	}
	if el.Name != "features" || el.Space != wire.NSStream {
		return nil, fmt.Errorf("expected stream features, got <%s/>", el.Name)
	}
	return el, nil
}

// next reads one element during negotiation, turning stream errors into
// errors.
func (c *Conn) next() (*wire.Element, error) {
	el, err := c.dec.ReadElement()
	if err != nil {
		if errors.Is(err, wire.ErrStreamEnd) || errors.Is(err, io.EOF) {
			return nil, errors.New("server closed the stream")
		}
		return nil, err
	}
	if el.Name == "error" && el.Space == wire.NSStream {
		return nil, streamError(el)
	}
	return el, nil
}

func streamError(el *wire.Element) error {
	se := &StreamError{Condition: "undefined-condition"}
	for _, ch := range el.Children {
		if ch.Space == nsStreams {
			if ch.Name == "text" {
				se.Text = ch.Text
			} else {
				se.Condition = ch.Name
			}
		}
	}
	return se
}

// result reads until the IQ reply with id, skipping anything else; an
// error reply becomes a *StanzaError.
func (c *Conn) result(id string) (*wire.Element, error) {
	for {
		el, err := c.next()
		if err != nil {
			return nil, err
		}
		if el.Name != "iq" || el.AttrValue("id") != id {
			continue
		}
		switch el.AttrValue("type") {
		case "result":
			return el, nil
		case "error":
			return nil, stanzaError(el)
		}
	}
}

func stanzaError(el *wire.Element) *StanzaError {
	se := &StanzaError{Condition: "undefined-condition"}
	if e := el.Child("error", ""); e != nil {
		se.Type = e.AttrValue("type")
		for _, ch := range e.Children {
			if ch.Space == nsStanzas && ch.Name != "text" {
				se.Condition = ch.Name
				break
			}
		}
	}
	return se
}

// Write sends one or more complete stanzas: one write, which with stream
// management counts towards the client's requests for an acknowledgement
// (clientConfig.SMRequest), sent in the same write. After Close wrote the
// stream's end it writes nothing (the reader may still answer a request
// the server sent before it saw the end).
func (c *Conn) Write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ended {
		return nil
	}
	if c.smEvery > 0 {
		c.writes++
		if c.writes%c.smEvery == 0 {
			c.wbuf = append(append(c.wbuf[:0], b...), smRequest...)
			b = c.wbuf
		}
	}
	_, err := c.nc.Write(b)
	return err
}

// send sends b, which no request for an acknowledgement counts: a
// negotiation step, whitespace, a stream management element. After Close
// wrote the stream's end it writes nothing.
func (c *Conn) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ended {
		return nil
	}
	_, err := c.nc.Write(b)
	return err
}

// SMCounts are the server's acknowledgements the connection read and the
// server's requests it answered (stream management).
func (c *Conn) SMCounts() (acks, answered int64) { return c.acks.Load(), c.answered.Load() }

// Start runs the reader goroutine. It answers server pings (XEP-0199),
// acknowledges roster pushes (RFC 6121 §2.1.6) before passing them to h,
// refuses other requests, and passes everything else to h. Done is closed
// when it stops.
func (c *Conn) Start(h Handler) {
	go c.read(h)
}

// Done is closed when the reader has stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the reader stopped; valid after Done.
func (c *Conn) Err() error { return c.err }

// Dropped reports whether the stream ended without Close.
func (c *Conn) Dropped() bool {
	select {
	case <-c.done:
		return !c.closing.Load()
	default:
		return false
	}
}

func (c *Conn) read(h Handler) {
	defer close(c.done)
	var reply, ack []byte
	for _, el := range c.early {
		if c.err = c.handle(h, el, &reply); c.err != nil {
			return
		}
	}
	c.early = nil
	for {
		el, err := c.dec.ReadElementShallow(isMessage)
		if err != nil {
			if errors.Is(err, wire.ErrStreamEnd) {
				err = nil
				if !c.closing.Load() {
					err = errors.New("server closed the stream")
				}
			}
			c.err = err
			return
		}
		if c.sm {
			switch {
			case el.Space == wire.NSClient && (el.Name == "message" || el.Name == "presence" || el.Name == "iq"):
				c.h.Add(1) // modulo 2^32 (§4)
			case el.Space == nsSM && el.Name == "r":
				if c.closing.Load() {
					continue // nothing follows our </stream:stream> (RFC 6120 §4.4)
				}
				ack = appendAck(ack[:0], c.h.Load())
				if err := c.send(ack); err != nil {
					c.err = err
					return
				}
				c.answered.Add(1)
				continue
			case el.Space == nsSM && el.Name == "a":
				c.acks.Add(1)
				continue
			}
		}
		if c.err = c.handle(h, el, &reply); c.err != nil {
			return
		}
	}
}

// appendAck appends stream management's <a/> with h (XEP-0198 §4).
func appendAck(b []byte, h uint32) []byte {
	b = append(b, "<a xmlns='urn:xmpp:sm:3' h='"...)
	b = strconv.AppendUint(b, uint64(h), 10)
	return append(b, "'/>"...)
}

// handle answers el if it is a request the connection answers itself
// (pings, roster pushes; others are refused) and passes the rest to h,
// reply being the buffer for answers; a stream error or a failed write
// ends the reader with its error.
func (c *Conn) handle(h Handler, el *wire.Element, reply *[]byte) error {
	switch {
	case el.Name == "iq" && el.Space == wire.NSClient:
		typ := el.AttrValue("type")
		if typ != "get" && typ != "set" {
			h(c, el)
			return nil
		}
		b := append((*reply)[:0], "<iq type='"...)
		p := el.FirstChild()
		ok := (typ == "get" && p != nil && p.Name == "ping" && p.Space == nsPing) ||
			(typ == "set" && p != nil && p.Name == "query" && p.Space == nsRoster)
		if ok {
			b = append(b, "result"...)
		} else {
			b = append(b, "error"...)
		}
		b = append(b, "' id='"...)
		b = wire.AppendEscapedAttr(b, el.AttrValue("id"))
		if from := el.AttrValue("from"); from != "" {
			b = append(b, "' to='"...)
			b = wire.AppendEscapedAttr(b, from)
		}
		b = append(b, "'>"...)
		if !ok {
			b = append(b, "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"...)
		}
		b = append(b, "</iq>"...)
		*reply = b
		if err := c.Write(b); err != nil {
			return err
		}
		if ok && typ == "set" {
			h(c, el) // the roster push itself may interest the scenario
		}
	case el.Name == "error" && el.Space == wire.NSStream:
		return streamError(el)
	default:
		h(c, el)
	}
	return nil
}

// isMessage reports whether a top-level element's bytes are a message's.
// The scenarios read a message's attributes alone (id and type), so the
// reader parses only its start tag: with every message parsed whole, the
// load generator spent over 40 % of its CPU time in the parser and was the limit
// of the fastest scenarios.
func isMessage(raw []byte) bool {
	const name = "<message"
	if len(raw) <= len(name) || string(raw[:len(name)]) != name {
		return false
	}
	switch raw[len(name)] {
	case ' ', '\t', '\r', '\n', '>', '/':
		return true
	}
	return false
}

// Close ends the stream politely: it sends the closing tag, waits up to
// wait for the server's (the reader must be running), then closes the
// socket.
func (c *Conn) Close(wait time.Duration) error {
	c.closing.Store(true)
	end := []byte("</stream:stream>")
	if c.sm {
		// What was read is acknowledged first: the server would
		// otherwise treat it as never received (XEP-0198 §4) and
		// store the messages offline for the next login.
		end = append(appendAck(nil, c.h.Load()), end...)
	}
	// Under the write lock, with ended set: an <a/> the reader writes
	// for a request read before the end cannot follow it.
	c.wmu.Lock()
	c.ended = true
	_, err := c.nc.Write(end)
	c.wmu.Unlock()
	t := time.NewTimer(wait)
	select {
	case <-c.done:
	case <-t.C:
	}
	t.Stop()
	if cerr := c.nc.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	<-c.done
	return err
}

// Abort closes the socket at once.
func (c *Conn) Abort() {
	c.closing.Store(true)
	c.nc.Close()
}
