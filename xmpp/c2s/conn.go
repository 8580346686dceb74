package c2s

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/auth"
	"switchboard/xmpp/listen"
	"switchboard/xmpp/wire"
)

// Namespaces of stream features.
const (
	nsRegister        = "jabber:iq:register"
	nsRegisterFeature = "http://jabber.org/features/iq-register"
	nsSASLCB          = "urn:xmpp:sasl-cb:0"
)

// streamError ends the stream with a condition (RFC 6120 §4.9.3).
type streamError struct {
	cond, text string
	app        []byte // an application-specific condition (XML), or nil
}

func (e *streamError) Error() string {
	if e.text == "" {
		return "stream error: " + e.cond
	}
	return "stream error: " + e.cond + ": " + e.text
}

func serr(cond, text string) error { return &streamError{cond: cond, text: text} }

// conn is one client connection and, once bound, its session.
//
// Its ingress runs on one goroutine at a time, but not always the same one
// (serve, await): negotiation runs on the goroutine accept started, which
// goes on serving the session while input keeps coming. Once no input has
// come for a moment (slimAfter), the goroutine waiting for it hands the
// session to a fresh one and ends: an idle session parks a goroutine whose
// stack never grew past what waiting for input takes, rather than one as
// deep as authenticating or routing a stanza left it; a busy one pays
// nothing for that.
type conn struct {
	srv *Server
	id  uint64

	raw net.Conn // the TCP connection, or the framed transport (ServeConn)
	// remote is raw's remote address for the log, fixed: a resumed
	// session keeps the one it started with (its raw changes, sm.go).
	remote string
	nc     net.Conn // raw or the TLS connection over it
	in     *limitedReader
	dec    *wire.Decoder

	secure     bool
	tlsState   *tls.ConnectionState
	host       string
	authed     string // authenticated localpart
	headerSent bool

	directTLS     bool
	framed        bool    // the caller's transport (a WebSocket): no STARTTLS
	registrations int     // XEP-0077 attempts that reached the registrar
	full          jid.JID // set once at bind, before the writer starts
	fullStr       string  // full as a string, set with it
	bound         bool    // guarded by mu
	// cache is the ingress loop's (one goroutine at a time); its slots
	// are allocated with the first address it parses.
	cache xmpp.JIDCache

	// Outbox, guarded by mu.
	mu        sync.Mutex
	queue     []*xmpp.Stanza
	spare     []*xmpp.Stanza
	qbytes    int
	closed    bool
	closeCond string
	closeText string
	flushBy   time.Time // once cut off as a slow consumer: the last write deadline
	// The writer runs only while there is something to write: an idle
	// session holds no goroutine but its reader. writing says one runs
	// (or a Flush stands in for it); writerOn is set once the bind result
	// is out (nothing may precede it); writers waits for the last one.
	// held says the first stanza queued waits for a Deferred's Flush.
	writing  bool
	writerOn bool
	held     bool
	// inactive says the client indicated that its user is not looking
	// (XEP-0352, csi.go): what can wait is held beside the queue (hold).
	// Set by the ingress loop; a resumption clears it. Not to be
	// confused with held above.
	inactive bool
	// hold is what is held for an inactive client (csi.go); nil until
	// then.
	hold    *csiHold
	writers sync.WaitGroup
	// direct is the socket's raw connection, for Flush to write on the
	// delivering goroutine; nil over TLS, with XML tracing, or on a
	// transport that is not a socket. head is the rest of such a write
	// that the socket did not take: the writer writes it first.
	direct syscall.RawConn
	head   []byte
	// deferred is the ingress loop's (see serve).
	deferred xmpp.Deferred

	// Stream management (XEP-0198, sm.go). sm is set by the ingress
	// loop under mu when the client enables it, and read by the ingress
	// loop without mu. The rest is guarded by mu.
	sm    *smState
	phase phase
	// kicked says the server closed the session (Close, a slow
	// consumer): it ends, whatever stream management says. broken says a
	// write failed; replacing, that a resumption takes the session over
	// (sm.go, takeOver). closeApp goes with closeCond.
	kicked    bool
	broken    bool
	replacing bool
	// handedOver says ended took what the session held: nothing more
	// is queued.
	handedOver bool
	closeApp   []byte
	// parked is closed when the session hibernates or ends, for a
	// resumption waiting for it; nil until one waits.
	parked chan struct{}
	// ipHeld says the connection counts towards its address's limit
	// (guarded by srv.mu).
	ipHeld bool
}

var _ xmpp.Session = (*conn)(nil)

// restarter is a framed transport that must know when the stream
// restarts after SASL (RFC 6120 §6.4.6): a WebSocket accepts a new <open/>
// only then (package ws).
type restarter interface{ StreamRestart() }

// transport says what a connection's stream runs on.
type transport struct {
	// directTLS: a TCP connection whose TLS handshake comes first
	// (XEP-0368).
	directTLS bool
	// framed: a transport set up by the caller, such as a WebSocket
	// (RFC 7395), secure when state is set; STARTTLS is not offered on
	// it ("Use of TLS": TLS is the transport's).
	framed bool
	state  *tls.ConnectionState
}

func newConn(s *Server, nc net.Conn, t transport) *conn {
	c := &conn{
		srv:    s,
		id:     s.nextID.Add(1),
		raw:    nc,
		nc:     nc,
		remote: nc.RemoteAddr().String(),
	}
	c.in = &limitedReader{conn: c, rate: s.opts.Limits.RateBytesPerSecond, burst: s.opts.Limits.RateBurstBytes}
	c.in.tokens = float64(c.in.burst)
	c.dec = wire.NewDecoder(c.in, wire.Limits{MaxStanza: s.opts.Limits.MaxStanzaSize, ReadBuffer: readBuffer})
	c.directTLS, c.framed = t.directTLS, t.framed
	if t.state != nil {
		c.secure, c.tlsState = true, t.state
	}
	return c
}

// JID implements xmpp.Session.
func (c *conn) JID() jid.JID { return c.full }

// logger is the connection's logger, made for each message rather than
// kept: a parked session holds no logger of its own. The JID is the bound
// one, or the authenticated account while negotiating (set before any other
// goroutine can reach the conn, and then fixed).
func (c *conn) logger() *slog.Logger {
	l := c.srv.log.With(xmpp.LogConn, c.id, xmpp.LogRemote, c.remote)
	switch {
	case c.fullStr != "":
		l = l.With(xmpp.LogJID, c.fullStr)
	case c.authed != "":
		l = l.With(xmpp.LogJID, c.authed+"@"+c.host)
	}
	return l
}

// debug logs at debug level, building the logger only when that level is
// on.
func (c *conn) debug(msg string, args ...any) {
	if c.srv.log.Enabled(context.Background(), slog.LevelDebug) {
		c.logger().Debug(msg, args...)
	}
}

// refuse answers a connection that is not admitted with a stream error.
func (c *conn) refuse(cond, text string) {
	_ = c.raw.SetDeadline(time.Now().Add(5 * time.Second))
	b := wire.AppendStreamEnd(c.appendHeader(nil, c.srv.defaultHost(), ""), cond, text)
	_, _ = c.raw.Write(b)
	c.raw.Close()
}

// run negotiates the stream and, once a resource is bound, serves it. The
// connection's end (finish, then the server's release) happens on whichever
// goroutine serves it then (see await).
func (c *conn) run(ctx context.Context) {
	defer c.recoverPanic(ctx)
	deadline := time.Now().Add(c.srv.opts.Limits.AuthTimeout)
	_ = c.raw.SetReadDeadline(deadline)
	c.in.deadline = deadline
	if c.directTLS {
		if err := c.startTLS(); err != nil {
			c.debug("direct TLS handshake failed", xmpp.LogErr, err)
			c.raw.Close()
			c.srv.release(c)
			return
		}
	}
	err := c.negotiate(ctx)
	if r := (*resumed)(nil); errors.As(err, &r) {
		// This connection's transport now serves r.conn's session.
		r.conn.serveResumed(ctx)
		return
	}
	if err == nil {
		c.logger().Info("session bound")
		c.startWriter()
		err = c.serve(ctx)
	}
	c.endOrPark(ctx, err)
}

// await continues the ingress of a session that was idle for slimAfter on a
// fresh goroutine, whose stack is as small as a goroutine's can be while it
// waits for input; what arrives it serves itself.
func (c *conn) await(ctx context.Context) {
	defer c.recoverPanic(ctx)
	c.in.fresh = true
	err := c.waitInput()
	if err == nil {
		err = c.dec.Fill()
	}
	if err == nil {
		err = c.serve(ctx)
	}
	c.endOrPark(ctx, err)
}

// endOrPark follows serve: after slimAfter without input (wire.ErrNoInput)
// a fresh goroutine takes over; any other error ends the connection.
func (c *conn) endOrPark(ctx context.Context, err error) {
	if err == wire.ErrNoInput {
		go c.await(ctx)
		return
	}
	c.end(ctx, err)
}

// end finishes the connection after err and releases it, unless its
// session hibernates (sm.go).
func (c *conn) end(ctx context.Context, err error) {
	if c.hibernate(err) {
		return
	}
	c.finish(ctx, err)
	c.srv.release(c)
}

// recoverPanic, deferred by each goroutine serving the connection, turns a
// panic into the end of this stream only: a bug must not take the server
// down.
func (c *conn) recoverPanic(ctx context.Context) {
	if r := recover(); r != nil {
		c.logger().Error("panic in connection", "panic", r)
		c.end(ctx, &streamError{cond: "internal-server-error"})
	}
}

// endCondition is the stream error that ends a connection after err: ""
// for a clean close (nil or wire.ErrStreamEnd), "-" when the transport is
// gone (nothing can be written), app an application-specific condition.
// An unexpected error is internal-server-error, logged when log is set.
func (c *conn) endCondition(err error, log bool) (cond, text string, app []byte) {
	var se *streamError
	var we *wire.Error
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, wire.ErrStreamEnd):
	case errors.As(err, &se):
		cond, text, app = se.cond, se.text, se.app
	case errors.As(err, &we):
		cond, text = we.Condition, we.Msg
	case errors.As(err, &ne) && ne.Timeout():
		cond = "connection-timeout"
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
		cond = "-" // transport gone: nothing to write
	default:
		var opErr *net.OpError
		if errors.As(err, &opErr) || errors.Is(err, os.ErrDeadlineExceeded) {
			cond = "-"
		} else {
			cond = "internal-server-error"
			if log {
				c.logger().Error("connection failed", xmpp.LogErr, err)
			}
		}
	}
	return cond, text, app
}

// finish ends the connection after err (nil or ErrStreamEnd: clean close).
func (c *conn) finish(ctx context.Context, err error) {
	cond, text, app := c.endCondition(err, true)
	c.mu.Lock()
	if c.closed && !c.bound && c.closeCond != "" {
		// Closed by the server (shutdown, kick) while negotiating.
		cond, text = c.closeCond, c.closeText
	}
	c.mu.Unlock()
	if cond != "" && cond != "-" {
		c.debug("closing stream", "condition", cond, "text", text)
	}
	c.mu.Lock()
	bound := c.bound
	c.mu.Unlock()
	if bound {
		if c.sm != nil {
			// It ends (it does not hibernate): no longer resumable
			// from here, and its count is kept for a resumption
			// that comes after its contacts saw it leave. The
			// ingress loop is over: the count is final.
			c.srv.forgetResumable(c)
		}
		c.srv.deps.Router.Unbind(ctx, c, c.full)
		c.closeWith(cond, text, app)
		c.writers.Wait()
		if c.sm != nil {
			c.ended(ctx)
		}
		c.logger().Info("session closed")
		return
	}
	// Negotiation phase: this goroutine is the only writer.
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	var b []byte
	if cond != "-" {
		if !c.headerSent {
			b = c.appendHeader(b, c.srv.defaultHost(), "")
		}
		_, _ = c.nc.Write(wire.AppendStreamEndApp(b, cond, text, app))
	}
	c.nc.Close()
}

// Close implements xmpp.Session: the writer flushes what is queued, writes
// the stream error (if any) and the closing tag, and closes the transport.
// A bound session refuses what it is given from then on (a stream
// management session too: it was kicked): the router no longer counts it
// among the account's available resources while its writer flushes, up to
// write_timeout, before it unbinds. Close calls into the router, so it
// must not be called under the router's locks.
func (c *conn) Close(cond, text string) {
	if c.closeWith(cond, text, nil) {
		c.srv.deps.Router.Leaving(c)
	}
}

// closeWith is Close with an application-specific condition, without the
// router: it reports whether it began closing a bound session's stream
// (finish, the other caller, unbinds first).
func (c *conn) closeWith(cond, text string, app []byte) (bound bool) {
	c.mu.Lock()
	switch c.phase {
	case phaseDetached:
		// A hibernating session has no stream to end: it ends.
		c.phase, c.closed, c.kicked = phaseEnded, true, true
		c.mu.Unlock()
		go c.terminate(c.srv.ctx)
		return false
	case phaseEnded:
		c.mu.Unlock()
		return false
	}
	c.kicked = true
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.closed = true
	c.closeCond, c.closeText, c.closeApp = cond, text, app
	bound = c.bound
	nc := c.nc
	c.mu.Unlock()
	if !bound {
		// Negotiating: interrupt the reader; finish writes the error.
		_ = nc.SetReadDeadline(time.Now())
		return false
	}
	c.mu.Lock()
	c.kickLocked()
	c.mu.Unlock()
	return true
}

// kickLocked starts the writer unless it runs (or may not yet), with what
// is held for an inactive client queued first; c.mu is held.
func (c *conn) kickLocked() {
	if c.hold != nil {
		c.releaseLocked()
	}
	c.runWriterLocked()
}

// runWriterLocked starts the writer for what is queued unless it runs (or
// may not yet), leaving what is held for an inactive client held; c.mu is
// held.
func (c *conn) runWriterLocked() {
	if c.writing || !c.writerOn || c.phase != phaseLive {
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.writer()
}

// Deliver implements xmpp.Session.
func (c *conn) Deliver(st *xmpp.Stanza) bool { return c.DeliverDeferred(st, nil) }

// DeliverDeferred implements xmpp.DeferredSession: over a plain socket,
// when no writer runs and nothing is queued, the start of one is left to d
// (nil: started now).
func (c *conn) DeliverDeferred(st *xmpp.Stanza, d *xmpp.Deferred) bool {
	n := len(st.Bytes())
	lim := &c.srv.opts.Limits
	c.mu.Lock()
	if c.closed && !c.keepsQueueLocked() {
		c.mu.Unlock()
		return false
	}
	queued, qbytes := len(c.queue), c.qbytes
	if h := c.hold; h != nil {
		queued, qbytes = queued+len(h.stanzas), qbytes+h.bytes
	}
	if sm := c.sm; sm != nil {
		// What the client has not acknowledged is held too.
		queued, qbytes = queued+len(sm.unacked), qbytes+sm.unackedBytes
	}
	if queued >= lim.OutboxStanzas || qbytes+n > lim.OutboxBytes {
		if c.phase != phaseLive {
			return c.overflowDetachedLocked(st)
		}
		c.kicked = true
		if c.closed {
			// Its writer is gone (a failed write, a resumption):
			// the session ends with what it holds.
			c.mu.Unlock()
			return false
		}
		c.closed = true
		c.closeCond, c.closeText = "policy-violation", "slow consumer: outbox full"
		// A second to take what is queued, the write in progress
		// included; under mu, so the writer cannot extend it.
		c.flushBy = time.Now().Add(time.Second)
		_ = c.nc.SetWriteDeadline(c.flushBy)
		c.kickLocked()
		c.mu.Unlock()
		c.logger().Warn("slow consumer: closing session")
		// From here it refuses what it is given, for up to the flush's
		// second before it unbinds. Not from this goroutine: Deliver
		// may be called under the router's locks, and never calls
		// back into it.
		go c.srv.deps.Router.Leaving(c)
		return false
	}
	if c.inactive && !c.closed && !urgent(st) {
		c.holdLocked(st)
		c.mu.Unlock()
		return true
	}
	if c.hold != nil {
		// Something urgent: what is held goes first (csi.go).
		c.releaseLocked()
	}
	c.queue = append(c.queue, st)
	c.qbytes += n
	switch {
	case c.held:
		// More for a session whose first stanza waits for a Flush
		// (a route answering its own session, say): the writer takes
		// them now, and that Flush finds it started.
		c.kickLocked()
	case c.closed:
		// Kept for a resumption (keepsQueueLocked); nothing writes.
	case d != nil && c.direct != nil && c.sm == nil && !c.writing && c.writerOn && len(c.queue) == 1 && d.Add(c):
		c.held = true
	default:
		c.kickLocked()
	}
	c.mu.Unlock()
	return true
}

// Flush implements xmpp.DeferredSession for a session held by a Deferred
// (its first stanza queued, no writer started). With now and no writer
// started meanwhile, what is queued is written on this goroutine, as far as
// the socket takes it without waiting; a writer starts only for the rest,
// for what was queued meanwhile, or to end a closed session. Otherwise the
// writer starts, unless it runs.
func (c *conn) Flush(now bool) {
	c.mu.Lock()
	c.held = false
	// A held session has one stanza queued; more, and a writer runs.
	if !now || c.writing || c.closed || len(c.queue) != 1 || c.sm != nil {
		if len(c.queue) > 0 || c.closed {
			c.kickLocked()
		}
		c.mu.Unlock()
		return
	}
	st := c.standInLocked()
	c.mu.Unlock()
	c.standInDone(c.writeHeld(st))
}

// standInLocked starts a Flush's standing in for the writer (nothing else
// writes meanwhile) and takes the one queued stanza for it to write. c.mu
// is held and no writer runs, so no head is left: only a stand-in sets it,
// and only the writer clears it.
func (c *conn) standInLocked() *xmpp.Stanza {
	st := c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[:0]
	c.qbytes = 0
	c.writing = true
	c.writers.Add(1)
	return st
}

// writeHeld writes st for a Flush standing in for the writer, without
// waiting (see writeNow), and returns what the socket did not take.
func (c *conn) writeHeld(st *xmpp.Stanza) []byte {
	b := st.Bytes() // immutable: its rest can be kept as is
	n, err := writeNow(c.direct, b)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		// The deadline the writer set last has passed (a session
		// written to less often than every WriteTimeout), and the raw
		// write refused at once. writeNow does not wait, so it needs
		// none; the writer sets its own again. A slow consumer's
		// cut-off is set with closed, under c.mu: it is kept.
		c.mu.Lock()
		retry := !c.closed
		if retry {
			_ = c.nc.SetWriteDeadline(time.Time{})
		}
		c.mu.Unlock()
		if retry {
			n, _ = writeNow(c.direct, b)
		}
	}
	return b[n:]
}

// standInDone ends a Flush's standing in for the writer: rest, what the
// socket did not take of the stanza, becomes the head the writer writes
// first. The writer starts for a head, for what was queued meanwhile, or
// to end a session closed meanwhile.
func (c *conn) standInDone(rest []byte) {
	c.mu.Lock()
	if len(rest) > 0 {
		c.head = rest
	}
	if c.head == nil && len(c.queue) == 0 && !c.closed {
		c.writing = false
		c.writers.Done()
	} else {
		go c.writer()
	}
	c.mu.Unlock()
}

// startWriter allows writing once the bind result is out, and starts the
// writer for what was queued meanwhile.
func (c *conn) startWriter() {
	c.mu.Lock()
	c.writerOn = true
	if tc, ok := c.nc.(*net.TCPConn); ok && canWriteNow && !c.srv.opts.TraceXML {
		c.direct, _ = tc.SyscallConn()
	}
	if len(c.queue) > 0 || c.closed {
		c.kickLocked()
	}
	c.mu.Unlock()
}

// writer writes after bind (a Flush stands in for it at times, never at the
// same time): it writes c.head, then each batch of queued stanzas with one
// Write, until the outbox is empty (then it ends) or the session is closed
// (then it writes the end of the stream and closes the transport).
func (c *conn) writer() {
	defer c.writers.Done()
	trace := c.srv.opts.TraceXML
	for {
		c.mu.Lock()
		batch := c.queue
		closed, cond, text := c.closed, c.closeCond, c.closeText
		if len(batch) == 0 && !closed && c.head == nil {
			c.writing = false
			c.mu.Unlock()
			return
		}
		head := c.head
		c.queue, c.spare, c.head = c.spare[:0], nil, nil
		c.qbytes = 0
		app := c.closeApp
		// Stream management: what is written waits for the client's
		// acknowledgement; an <r/> asks for it (sm.go).
		ask := false
		if sm := c.sm; sm != nil {
			ask = sm.written(batch) && !closed
			if ask {
				c.armAckTimerLocked()
			}
		}
		c.mu.Unlock()
		buf := append(getBuffer(), head...)
		for i, st := range batch {
			buf = append(buf, st.Bytes()...)
			if trace {
				c.debug("out", "xml", string(st.Bytes()))
			}
			batch[i] = nil
		}
		if ask {
			buf = append(buf, smRequest...)
		}
		if closed && cond != "-" {
			buf = wire.AppendStreamEndApp(buf, cond, text, app)
		}
		if len(buf) > 0 {
			c.mu.Lock()
			dl := time.Now().Add(c.srv.opts.Limits.WriteTimeout)
			if !c.flushBy.IsZero() && c.flushBy.Before(dl) {
				dl = c.flushBy
			}
			_ = c.nc.SetWriteDeadline(dl)
			c.mu.Unlock()
			if _, err := c.nc.Write(buf); err != nil {
				// The writer stays marked as running: nothing more
				// is written to this transport.
				putBuffer(buf)
				c.mu.Lock()
				c.closed, c.broken = true, true
				c.mu.Unlock()
				c.nc.Close()
				return
			}
		}
		putBuffer(buf)
		c.mu.Lock()
		if c.spare == nil && cap(batch) <= maxSpareBatch {
			c.spare = batch[:0]
		}
		c.mu.Unlock()
		if closed {
			c.nc.Close()
			return
		}
	}
}

var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuffer() []byte { return (*bufferPool.Get().(*[]byte))[:0] }

func putBuffer(b []byte) {
	if cap(b) > 64<<10 {
		return
	}
	bufferPool.Put(&b)
}

func (s *Server) defaultHost() string { return s.opts.DefaultHost }

func (c *conn) appendHeader(b []byte, from, to string) []byte {
	b = append(b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='"...)
	// RFC 6120 §4.7.3: a fresh, unpredictable id for every stream,
	// restarts included.
	var idb [12]byte
	_, _ = rand.Read(idb[:])
	b = hex.AppendEncode(b, idb[:])
	b = append(b, "' from='"...)
	b = wire.AppendEscapedAttr(b, from)
	if to != "" {
		b = append(b, "' to='"...)
		b = wire.AppendEscapedAttr(b, to)
	}
	b = append(b, "' version='1.0' xml:lang='en'>"...)
	c.headerSent = true
	return b
}

// maxSpareBatch bounds the batch a writer keeps for reuse: one large
// burst does not pin its array for the session's life.
const maxSpareBatch = 64

// write sends bytes during negotiation (before the writer exists).
func (c *conn) write(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.Limits.WriteTimeout))
	_, err := c.nc.Write(b)
	return err
}

func (c *conn) writeElement(e *wire.Element) error {
	return c.write(e.AppendXML(nil, ""))
}

func (c *conn) startTLS() error {
	tc := tls.Server(c.raw, c.srv.opts.TLS)
	ctx, cancel := context.WithDeadline(context.Background(), c.in.deadline)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("c2s: TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	c.mu.Lock()
	c.nc = tc
	c.mu.Unlock()
	c.secure, c.tlsState = true, &st
	c.dec.Reset(c.in)
	return nil
}

// openStream reads the client's stream header and answers it with ours and
// the features of the current state (RFC 6120 §4.2, §4.3.2).
func (c *conn) openStream() error {
	// A new stream (initial, or restarted after TLS or SASL) has no
	// header of ours yet: a stream error in answer to a bad client header
	// must be preceded by one (RFC 6120 §4.9.1.2), which finish writes.
	c.headerSent = false
	h, err := c.dec.ReadHeader()
	if err != nil {
		return err
	}
	// RFC 6120 §4.9.1.3: our header precedes any stream error.
	host := strings.ToLower(h.To)
	if !c.srv.deps.Router.IsLocal(host) {
		// RFC 7622 §3.2: the domainpart as a JID has it (IDNA,
		// Unicode case folding, no trailing dot), asked for only when
		// the plain form is not ours, so that the usual login pays
		// nothing.
		if j, err := jid.New("", h.To, ""); err == nil {
			host = j.Domainpart()
		}
	}
	if !c.srv.deps.Router.IsLocal(host) {
		c.write(c.appendHeader(nil, c.srv.defaultHost(), ""))
		if h.To == "" {
			return serr("host-unknown", "the stream header has no 'to'")
		}
		return serr("host-unknown", "")
	}
	if c.host != "" && c.host != host {
		c.write(c.appendHeader(nil, c.host, ""))
		return serr("host-unknown", "the host changed on stream restart")
	}
	c.host = host
	// RFC 6120 §4.7.2: the response header's 'to' echoes the initiating
	// entity's 'from' (unverified; clients check it against their own).
	b := c.appendHeader(nil, host, h.From)
	switch {
	case h.Space != wire.NSStream:
		c.write(b)
		return serr("invalid-namespace", "stream namespace must be "+wire.NSStream)
	case h.Default != wire.NSClient:
		c.write(b)
		return serr("invalid-namespace", "content namespace must be jabber:client")
	case h.Name != "stream" && !strings.HasSuffix(h.Name, ":stream"):
		c.write(b)
		return serr("invalid-xml", "the stream element must be <stream>")
	}
	if major, _, _ := strings.Cut(h.Version, "."); h.Version == "" || major == "0" {
		// RFC 6120 §4.7.5: we only speak XMPP 1.0 and later.
		c.write(b)
		return serr("unsupported-version", "")
	} else if n, err := strconv.Atoi(major); err != nil || n < 1 {
		c.write(b)
		return serr("unsupported-version", "")
	}
	b = append(b, "<stream:features>"...)
	b = c.appendFeatures(b)
	b = append(b, "</stream:features>"...)
	return c.write(b)
}

func (c *conn) appendFeatures(b []byte) []byte {
	tlsAvail := c.srv.opts.TLS != nil && !c.secure && !c.framed
	switch {
	case c.authed == "":
		if tlsAvail {
			b = append(b, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"...)
			if c.srv.opts.RequireTLS {
				b = append(b, "<required/>"...)
			}
			b = append(b, "</starttls>"...)
			if c.srv.opts.RequireTLS {
				return b // RFC 6120 §5.3.1: TLS is the only feature offered
			}
		}
		b = append(b, "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"...)
		for _, m := range c.srv.deps.Auth.Mechanisms(c.tlsState) {
			b = append(b, "<mechanism>"...)
			b = append(b, m...)
			b = append(b, "</mechanism>"...)
		}
		b = append(b, "</mechanisms>"...)
		if cbs := c.srv.deps.Auth.ChannelBindings(c.tlsState); len(cbs) > 0 {
			// XEP-0440: the channel binding types we support.
			b = append(b, "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>"...)
			for _, t := range cbs {
				b = append(b, "<channel-binding type='"...)
				b = append(b, t...)
				b = append(b, "'/>"...)
			}
			b = append(b, "</sasl-channel-binding>"...)
		}
		if c.srv.opts.Registration[c.host] && c.srv.deps.Registrar != nil {
			b = append(b, "<register xmlns='http://jabber.org/features/iq-register'/>"...)
		}
	default:
		b = append(b, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"...)
		b = append(b, "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"...)
		b = append(b, "<sm xmlns='urn:xmpp:sm:3'/>"...)
		if c.srv.opts.CSIQueue > 0 {
			b = append(b, "<csi xmlns='urn:xmpp:csi:0'/>"...)
		}
		for _, f := range c.srv.opts.PostAuthFeatures {
			b = append(b, f...)
		}
	}
	return b
}

// negotiate runs the stream until a resource is bound.
func (c *conn) negotiate(ctx context.Context) error {
	if err := c.openStream(); err != nil {
		return err
	}
	attempts := 0
	for {
		el, err := c.dec.ReadElement()
		if err != nil {
			return err
		}
		if c.srv.opts.TraceXML {
			c.debug("in", "xml", traceable(el))
		}
		switch {
		case el.Name == "starttls" && el.Space == xmpp.NSTLS:
			if c.secure || c.framed || c.srv.opts.TLS == nil || c.authed != "" {
				// RFC 6120 §5.4.2.2: the failure, then the stream's
				// closing tag.
				c.write([]byte("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"))
				return serr("", "")
			}
			if c.dec.PendingData() {
				// RFC 6120 §5.4.3.3: nothing may follow <starttls/>
				// before the handshake.
				return serr("policy-violation", "data after <starttls/>")
			}
			if err := c.write([]byte("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
				return err
			}
			if err := c.startTLS(); err != nil {
				c.debug("STARTTLS handshake failed", xmpp.LogErr, err)
				return serr("-", "")
			}
			if err := c.openStream(); err != nil {
				return err
			}
		case el.Name == "auth" && el.Space == xmpp.NSSASL:
			if c.authed != "" {
				return serr("policy-violation", "already authenticated")
			}
			if c.srv.opts.RequireTLS && !c.secure {
				c.write(saslFailure("encryption-required", ""))
				continue
			}
			attempts++
			if attempts > c.srv.opts.Limits.MaxAuthAttempts {
				return serr("policy-violation", "too many authentication attempts")
			}
			ok, err := c.sasl(ctx, el)
			if err != nil {
				return err
			}
			if ok {
				c.dec.Restart()
				if t, ok := c.raw.(restarter); ok {
					t.StreamRestart()
				}
				if err := c.openStream(); err != nil {
					return err
				}
			}
		case el.Space == nsSM:
			old, err := c.smNegotiating(el)
			if err != nil {
				return err
			}
			if old != nil {
				return &resumed{conn: old}
			}
		case el.Name == "iq" && el.Space == wire.NSClient && c.authed == "":
			if err := c.preAuthIQ(ctx, el); err != nil {
				return err
			}
		case el.Name == "iq" && el.Space == wire.NSClient:
			done, err := c.bindIQ(ctx, el)
			if err != nil || done {
				return err
			}
		default:
			if el.Space == wire.NSClient && (el.Name == "message" || el.Name == "presence") {
				// RFC 6120 §6.4.1 / §7.2.1: stanzas before auth and bind.
				return serr("not-authorized", "")
			}
			return serr("unsupported-stanza-type", "")
		}
	}
}

func traceable(el *wire.Element) string {
	if el.Space == xmpp.NSSASL || (el.Name == "iq" && el.Child("query", nsRegister) != nil) {
		return "<" + el.Name + " xmlns='" + el.Space + "'>[redacted]"
	}
	return string(el.Raw())
}

func saslFailure(cond, text string) []byte {
	b := []byte("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><")
	b = append(b, cond...)
	b = append(b, "/>"...)
	if text != "" {
		b = append(b, "<text xml:lang='en'>"...)
		b = wire.AppendEscapedText(b, text)
		b = append(b, "</text>"...)
	}
	return append(b, "</failure>"...)
}

// sasl runs one SASL exchange (RFC 6120 §6.4). It returns true on success.
func (c *conn) sasl(ctx context.Context, el *wire.Element) (bool, error) {
	ip := listen.RemoteIP(c.raw.RemoteAddr())
	if th := c.srv.deps.Throttle; th != nil {
		if d := th.Delay(ip); d > 0 {
			// Slow down guessing from one address; this blocks only
			// this connection.
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return false, serr("system-shutdown", "")
			}
		}
	}
	mech := el.AttrValue("mechanism")
	ex, err := c.srv.deps.Auth.Start(c.host, mech, c.tlsState)
	if err != nil {
		return false, c.write(saslFailureFor(err))
	}
	in, err := decodeSASL(el.Text)
	if err != nil {
		return false, c.write(saslFailure("incorrect-encoding", ""))
	}
	for {
		out, done, err := ex.Step(ctx, in)
		if err != nil {
			if th := c.srv.deps.Throttle; th != nil {
				th.Failed(ip)
			}
			c.logger().Info("authentication failed", "mechanism", mech, xmpp.LogErr, err)
			return false, c.write(saslFailureFor(err))
		}
		if done {
			if th := c.srv.deps.Throttle; th != nil {
				th.Succeeded(ip)
			}
			c.authed = ex.Localpart()
			b := []byte("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>")
			if len(out) > 0 {
				b = base64.StdEncoding.AppendEncode(b, out)
			}
			b = append(b, "</success>"...)
			return true, c.write(b)
		}
		b := []byte("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>")
		if len(out) > 0 {
			b = base64.StdEncoding.AppendEncode(b, out)
		} else {
			b = append(b, '=')
		}
		b = append(b, "</challenge>"...)
		if err := c.write(b); err != nil {
			return false, err
		}
		resp, err := c.dec.ReadElement()
		if err != nil {
			return false, err
		}
		if resp.Space != xmpp.NSSASL {
			return false, serr("policy-violation", "expected a SASL response")
		}
		switch resp.Name {
		case "abort":
			return false, c.write(saslFailure("aborted", ""))
		case "response":
		default:
			return false, c.write(saslFailure("malformed-request", ""))
		}
		in, err = decodeSASL(resp.Text)
		if err != nil {
			return false, c.write(saslFailure("incorrect-encoding", ""))
		}
	}
}

// decodeSASL decodes a SASL payload: "=" is an empty response, empty text
// is no response (RFC 6120 §6.4.2).
func decodeSASL(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

func saslFailureFor(err error) []byte {
	var f *auth.Failure
	if errors.As(err, &f) {
		return saslFailure(f.Condition, f.Text)
	}
	return saslFailure("temporary-auth-failure", "")
}

// preAuthIQ answers IQs before authentication: only XEP-0077 registration.
func (c *conn) preAuthIQ(ctx context.Context, el *wire.Element) error {
	st, err := xmpp.NewStanza(el)
	if err != nil {
		return serr("not-authorized", "")
	}
	q := st.Payload()
	if q == nil || q.Space != nsRegister || !c.srv.opts.Registration[c.host] || c.srv.deps.Registrar == nil {
		return serr("not-authorized", "")
	}
	if st.Type == xmpp.TypeResult || st.Type == xmpp.TypeError {
		// RFC 6120 §8.2.3: a response is never answered, and there is
		// no request of ours it could answer.
		return nil
	}
	reply := func(r *xmpp.Stanza) error {
		return c.writeElement(r.El)
	}
	errReply := func(err error) error {
		return reply(st.With(jid.JID{}, jid.JID{}).ErrorReply(xmpp.AsStanzaError(err)))
	}
	if c.srv.opts.RequireTLS && !c.secure {
		return errReply(xmpp.StanzaError(stanza.NotAuthorized, "registration requires TLS"))
	}
	switch st.Type {
	case xmpp.TypeGet:
		// XEP-0077 §3.1: the fields required to register.
		form := wire.New("query", nsRegister).AddChild(
			wire.New("instructions", nsRegister).SetText("Choose a username and password."),
			wire.New("username", nsRegister),
			wire.New("password", nsRegister),
		)
		return reply(xmpp.Build(xmpp.KindIQ, xmpp.TypeResult, st.ID, jid.JID{}, jid.JID{}, form))
	case xmpp.TypeSet:
		if q.Child("remove", nsRegister) != nil {
			return errReply(xmpp.StanzaError(stanza.NotAuthorized, ""))
		}
		user := q.ChildText("username", nsRegister)
		pass := q.ChildText("password", nsRegister)
		if q.Child("username", nsRegister) == nil || q.Child("password", nsRegister) == nil || user == "" || pass == "" {
			return errReply(xmpp.StanzaError(stanza.NotAcceptable, "username and password are required"))
		}
		// Each attempt costs a password derivation and a store write:
		// bounded per connection like authentication attempts.
		if c.registrations++; c.registrations > maxRegistrations {
			return serr("policy-violation", "too many registration attempts")
		}
		if err := c.srv.deps.Registrar.Register(ctx, c.host, user, pass); err != nil {
			var se stanza.Error
			if !errors.As(err, &se) {
				c.logger().Error("registration failed", xmpp.LogErr, err)
			}
			return errReply(err)
		}
		c.logger().Info("account registered in band", xmpp.LogJID, user+"@"+c.host)
		return reply(xmpp.Build(xmpp.KindIQ, xmpp.TypeResult, st.ID, jid.JID{}, jid.JID{}))
	}
	return errReply(xmpp.StanzaError(stanza.BadRequest, ""))
}

// bindIQ handles IQs between authentication and bind. It returns true once
// a resource is bound (RFC 6120 §7).
func (c *conn) bindIQ(ctx context.Context, el *wire.Element) (bool, error) {
	st, err := xmpp.NewStanza(el)
	if err != nil {
		return false, serr("not-authorized", "")
	}
	b := st.Payload()
	if st.Type != xmpp.TypeSet || b == nil || b.Name != "bind" || b.Space != xmpp.NSBind {
		// RFC 6120 §7.2.1: nothing but bind before a resource is bound.
		return false, serr("not-authorized", "bind a resource first")
	}
	bare, err := jid.New(c.authed, c.host, "")
	if err != nil {
		return false, serr("internal-server-error", "")
	}
	res := strings.TrimSpace(b.ChildText("resource", xmpp.NSBind))
	if res != "" {
		if _, err := bare.WithResource(res); err != nil {
			// RFC 6120 §7.7.2.1: a resource that is not allowed.
			e := st.With(jid.JID{}, jid.JID{}).ErrorReply(xmpp.StanzaError(stanza.BadRequest, "invalid resourcepart"))
			return false, c.writeElement(e.El)
		}
	}
	full, err := c.srv.deps.Router.Bind(ctx, c, bare, res)
	if err != nil {
		e := st.With(jid.JID{}, jid.JID{}).ErrorReply(xmpp.AsStanzaError(err))
		return false, c.writeElement(e.El)
	}
	c.full, c.fullStr = full, full.String()
	// Channel binding data is for SASL only; a bound session keeps none.
	c.tlsState = nil
	c.mu.Lock()
	c.bound = true
	c.mu.Unlock()
	_ = c.nc.SetReadDeadline(time.Time{})
	c.in.deadline = time.Time{}
	result := xmpp.Build(xmpp.KindIQ, xmpp.TypeResult, st.ID, jid.JID{}, jid.JID{},
		wire.New("bind", xmpp.NSBind).AddChild(wire.New("jid", xmpp.NSBind).SetText(full.String())))
	if err := c.writeElement(result.El); err != nil {
		return false, err
	}
	return true, nil
}

// readBuffer is a connection's initial read buffer: most stanzas are a few
// hundred bytes; the decoder grows it for larger ones and returns to this
// size when they are gone, so an idle session holds little.
const readBuffer = 512

// maxRegistrations bounds in-band registration attempts per connection.
const maxRegistrations = 10
