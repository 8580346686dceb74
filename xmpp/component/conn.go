package component

import (
	"context"
	"crypto/rand"
	"crypto/sha1" // #nosec G505 -- XEP-0114 §3 names SHA-1
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// conn is one connection to the component listener.
type conn struct {
	s     *Server
	id    uint64
	raw   net.Conn
	dec   *wire.Decoder
	w     *wire.StreamWriter
	cache xmpp.JIDCache

	// Owned by the reading goroutine (run); authed is read by accept's
	// goroutine after run returns.
	route      *Route // the component the header named
	streamID   string
	headerSent bool
	authed     bool

	stopping atomic.Bool // Shutdown: the read returns at once

	mu      sync.Mutex // after Route.mu
	queue   []*xmpp.Stanza
	qbytes  int
	closed  bool // no more stanzas: the writer writes what it has and ends
	wake    chan struct{}
	written chan struct{} // closed when the writer ended
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{
		s: s, id: s.nextID.Add(1), raw: nc,
		dec:  wire.NewDecoder(nc, wire.Limits{MaxStanza: s.opts.MaxStanzaSize}),
		w:    wire.NewStreamWriter(nc, s.opts.WriteTimeout),
		wake: make(chan struct{}, 1),
	}
}

func (c *conn) debug(msg string, args ...any) {
	if c.s.log.Enabled(context.Background(), slog.LevelDebug) {
		c.s.log.Debug(msg, append([]any{xmpp.LogConn, c.id, xmpp.LogRemote, c.raw.RemoteAddr().String()}, args...)...)
	}
}

// newStreamID returns a fresh, unpredictable stream id (RFC 6120 §4.7.3):
// the handshake hashes it, so it must never repeat.
func newStreamID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// appendHeader appends the server's stream header (XEP-0114 §3): from is
// the component's domain, "" before it is known.
func appendHeader(b []byte, from, id string) []byte {
	b = append(b, "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='"+NSAccept+"'"...)
	if from != "" {
		b = append(b, " from='"...)
		b = wire.AppendEscapedAttr(b, from)
		b = append(b, '\'')
	}
	b = append(b, " id='"...)
	b = wire.AppendEscapedAttr(b, id)
	return append(b, "'>"...)
}

// handshakeDigest is the handshake a component sends (XEP-0114 §3): the
// lowercase hex SHA-1 of the stream id followed by the secret.
func handshakeDigest(streamID, secret string) string {
	h := sha1.Sum([]byte(streamID + secret)) // #nosec G401 -- the protocol's hash
	return hex.EncodeToString(h[:])
}

// serr is a stream error to send (RFC 6120 §4.9.3).
func serr(cond, text string) error { return &wire.Error{Condition: cond, Msg: text} }

// errShutdown ends a stream with system-shutdown.
var errShutdown = errors.New("component: shutting down")

// run serves the connection until it ends.
func (c *conn) run() {
	defer c.raw.Close()
	_ = c.raw.SetReadDeadline(time.Now().Add(c.s.opts.HandshakeTimeout))
	if c.stopping.Load() {
		c.shutdown() // Shutdown came before the deadline above
	}
	err := c.serve()
	if c.stopping.Load() {
		err = errShutdown
	}
	var lost []*xmpp.Stanza
	if c.authed {
		// Stanzas for the component are answered from here on; what
		// is queued is written first, so that nothing routed before
		// the end is lost on a stream still open.
		c.route.detach(c)
		lost = c.stopWriter()
		c.s.log.Info("component disconnected", "domain", c.route.domain, xmpp.LogErr, err)
	}
	c.end(err)
	for _, st := range lost {
		c.s.bounce(st, stanza.ServiceUnavailable, "the component is not connected")
	}
}

// shutdown makes the reading goroutine end the stream with
// system-shutdown (Server.Shutdown): its read returns at once.
func (c *conn) shutdown() {
	c.stopping.Store(true)
	_ = c.raw.SetReadDeadline(time.Now())
}

// end closes the stream after err: a stream error for what the component
// did wrong, a timeout or a shutdown, the closing tag when it closed its
// stream; nothing when the connection was lost.
func (c *conn) end(err error) {
	var b []byte
	if !c.headerSent {
		b = appendHeader(b, "", newStreamID())
	}
	ok := true
	if errors.Is(err, errShutdown) {
		b = wire.AppendStreamEnd(b, "system-shutdown", "")
	} else if b, ok = wire.AppendEnd(b, err); !ok {
		c.debug("component connection lost", xmpp.LogErr, err)
		return
	}
	c.debug("component stream ends", xmpp.LogErr, err)
	if !c.w.Last(b) || errors.Is(err, wire.ErrStreamEnd) {
		return
	}
	_ = c.raw.SetReadDeadline(time.Now().Add(closeLinger))
	c.dec.Discard()
}

// serve reads the header and the handshake, then stanzas until the
// stream ends.
func (c *conn) serve() error {
	if err := c.open(); err != nil {
		return err
	}
	for {
		el, err := c.dec.ReadElement()
		if err != nil {
			return err
		}
		if c.s.opts.TraceXML {
			if c.authed {
				c.debug("in", "xml", string(el.Raw()))
			} else {
				// The handshake's digest allows guessing the
				// secret offline.
				c.debug("in", "xml", "<"+el.Name+">[redacted]")
			}
		}
		if !c.authed {
			if err := c.handshake(el); err != nil {
				return err
			}
			continue
		}
		if err := c.stanza(el); err != nil {
			return err
		}
	}
}

// open reads the component's stream header and answers it (XEP-0114 §3).
func (c *conn) open() error {
	h, err := c.dec.ReadHeader()
	if err != nil {
		return err
	}
	c.streamID = newStreamID()
	switch {
	case h.Space != wire.NSStream || h.Default != NSAccept:
		// XEP-0114 §3: a namespace the server does not serve.
		return serr("invalid-namespace", "the stream must be "+NSAccept)
	case h.Name != "stream" && !strings.HasSuffix(h.Name, ":stream"):
		return serr("invalid-xml", "the stream element must be <stream>")
	case h.To == "":
		return serr("improper-addressing", "the header must name the component's domain in 'to'")
	}
	to := strings.ToLower(h.To)
	if j, err := jid.New("", h.To, ""); err == nil {
		to = j.Domainpart()
	}
	c.route = c.s.routes[to]
	if c.route == nil {
		// XEP-0114 §3, RFC 6120 §4.9.3.6.
		return serr("host-unknown", "no component is configured for "+to)
	}
	c.headerSent = true
	if err := c.w.Write(appendHeader(nil, c.route.domain, c.streamID)); err != nil {
		return err
	}
	// Stanzas are read in jabber:client, the namespace the rest of the
	// server uses (as RFC 6120 §4.8.3 translates jabber:server).
	c.dec.SetScope(h.Scope.Bind("", wire.NSClient))
	return nil
}

// handshake checks the component's <handshake/> (XEP-0114 §3), the only
// element it may send first.
func (c *conn) handshake(el *wire.Element) error {
	if el.Name != "handshake" || el.Prefix != "" || (el.Space != wire.NSClient && el.Space != NSAccept) {
		// RFC 6120 §4.9.3.12: data before authentication.
		return serr("not-authorized", "the handshake must come first")
	}
	want := handshakeDigest(c.streamID, c.route.secret)
	got := strings.ToLower(strings.TrimSpace(el.Text))
	if len(el.Children) > 0 || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		c.s.log.Warn("component handshake failed", "domain", c.route.domain, xmpp.LogRemote, c.raw.RemoteAddr().String())
		return serr("not-authorized", "the handshake does not match the secret")
	}
	if !c.route.attach(c) {
		c.s.log.Warn("component refused: connected already", "domain", c.route.domain, xmpp.LogRemote, c.raw.RemoteAddr().String())
		return serr("conflict", "the component is connected already")
	}
	c.authed = true
	c.s.authenticated()
	// Ahead of any stanza: what is routed to the component meanwhile
	// waits in the queue until the writer starts. It starts even when
	// this write fails, and answers what it cannot write (run).
	err := c.w.Write([]byte("<handshake/>"))
	c.written = make(chan struct{})
	go c.writeLoop()
	if err != nil {
		return err
	}
	// A component may be quiet for long: no read deadline, TCP
	// keepalives find a dead peer.
	_ = c.raw.SetReadDeadline(time.Time{})
	if c.stopping.Load() {
		return errShutdown
	}
	c.s.log.Info("component connected", "domain", c.route.domain, xmpp.LogRemote, c.raw.RemoteAddr().String())
	return nil
}

// stanza routes a stanza the component sent (XEP-0114 §3).
func (c *conn) stanza(el *wire.Element) error {
	// Read in jabber:client, as the rest of the server does, also when
	// the component declares its namespace itself (mellium does).
	el = el.Renamespaced(NSAccept, wire.NSClient)
	st, err := xmpp.NewStanzaCached(el, &c.cache)
	if errors.Is(err, xmpp.ErrNotStanza) {
		// RFC 6120 §4.9.3.24.
		return serr("unsupported-stanza-type", "")
	}
	if err != nil {
		// A malformed address (RFC 6120 §8.3.3.8), answered to the
		// component from the address it named, if any.
		c.reject(st, err)
		return nil
	}
	if xmpp.IsZero(st.From) {
		st.Stamp(c.route.addr, c.route.domain)
	} else if st.From.Domainpart() != c.route.domain {
		// XEP-0114 §3: a component sends only from its domain.
		return serr("invalid-from", "a component may send only from its domain "+c.route.domain)
	}
	if xmpp.IsZero(st.To) {
		c.reject(st, xmpp.StanzaError(stanza.BadRequest, "a component's stanzas must have a 'to'"))
		return nil
	}
	if err := xmpp.Validate(st); err != nil {
		c.reject(st, err)
		return nil
	}
	c.s.router.Route(c.s.ctx, st)
	return nil
}

// reject answers a stanza the component sent in error, to the component.
func (c *conn) reject(st *xmpp.Stanza, err error) {
	from, to := st.From, st.To
	if xmpp.IsZero(from) || from.Domainpart() != c.route.domain {
		from = c.route.addr
	}
	if se := (stanza.Error{}); errors.As(err, &se) && se.Condition == stanza.JIDMalformed {
		to = jid.JID{}
	}
	if reply := st.With(from, to).ErrorReply(xmpp.AsStanzaError(err)); reply != nil {
		if cond := c.enqueue(reply); cond != "" {
			c.debug("error reply to the component dropped", "cond", string(cond))
		}
	}
}

// enqueue queues st for the writer. It returns the condition to answer
// st with when it cannot: service-unavailable once the connection ends,
// resource-constraint when the queue is full.
func (c *conn) enqueue(st *xmpp.Stanza) stanza.Condition {
	n := len(st.Bytes()) // before c.mu: an error reply is serialised here
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return stanza.ServiceUnavailable
	case len(c.queue) >= c.s.opts.QueueStanzas || c.qbytes+n > c.s.opts.QueueBytes:
		return stanza.ResourceConstraint
	}
	c.queue = append(c.queue, st)
	c.qbytes += n
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return ""
}

// writeLoop writes what is queued until the connection ends; after a
// failed write it closes the connection, which ends the reading
// goroutine too.
func (c *conn) writeLoop() {
	defer close(c.written)
	for {
		c.mu.Lock()
		q, last := c.queue, c.closed
		c.queue, c.qbytes = nil, 0
		c.mu.Unlock()
		if len(q) > 0 {
			if c.s.opts.TraceXML {
				c.debug("out", "stanzas", len(q))
			}
			if err := c.w.WriteEach(len(q), func(i int) []byte { return q[i].Bytes() }); err != nil {
				c.debug("component write failed", xmpp.LogErr, err)
				c.mu.Lock()
				c.closed = true
				c.queue = append(q, c.queue...) // answered by run
				c.mu.Unlock()
				c.raw.Close()
				return
			}
		}
		if last {
			return
		}
		<-c.wake
	}
}

// stopWriter ends the writer once it wrote what is queued, and returns
// what it could not write.
func (c *conn) stopWriter() []*xmpp.Stanza {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.written
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue, c.qbytes = nil, 0
	return q
}
