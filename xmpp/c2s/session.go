package c2s

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// serve is the ingress loop of a bound session: it reads, validates and
// stamps stanzas and hands them to the router. It returns the error that
// ends the connection, or wire.ErrNoInput after slimAfter without input.
//
// It waits for input inside its own frame, deep in the stack, on purpose:
// the GC shrinks the stack of a goroutine parked with less than a quarter
// of it in use, and one parked shallow would have its stack shrunk at each
// collection only to grow it back for the next stanza (measured: ~5 % more
// CPU per message at saturation). An idle session's goroutine is replaced
// by a small one instead (await).
func (c *conn) serve(ctx context.Context) error {
	router := c.srv.deps.Router
	bare := c.full.Bare()
	// Recipients of a routed stanza leave their writers to this
	// goroutine (see xmpp.Deferred); whatever happens, it flushes them.
	d := &c.deferred
	ctx = xmpp.WithDeferred(ctx, d)
	defer d.Close(false)
	for {
		el, err := c.dec.ReadElement()
		if err != nil {
			return err
		}
		// Handling a stanza grows the stack: this goroutine is no
		// longer the small one that waited.
		c.in.fresh = false
		if c.srv.opts.TraceXML {
			c.debug("in", "xml", traceable(el))
		}
		if el.Space != wire.NSClient || el.Prefix != "" {
			if el.Space == nsSM {
				if err := c.smElement(el); err != nil {
					return err
				}
				continue
			}
			if el.Space == nsCSI {
				if err := c.csiElement(el); err != nil {
					return err
				}
				continue
			}
			// RFC 6120 §4.9.3.24: a top-level element we do not
			// support.
			return serr("unsupported-stanza-type", "")
		}
		st, err := xmpp.NewStanzaCached(el, &c.cache)
		if errors.Is(err, xmpp.ErrNotStanza) {
			return serr("unsupported-stanza-type", "")
		}
		if err != nil {
			c.reject(st, err)
			c.handled()
			continue
		}
		// RFC 6120 §8.1.2.1: the server stamps the full JID; a client
		// may only claim its own bare or full JID.
		if !xmpp.IsZero(st.From) && !st.From.Equal(c.full) && !st.From.Equal(bare) {
			return serr("invalid-from", "")
		}
		if err := xmpp.Validate(st); err != nil {
			c.reject(st, err)
			c.handled()
			continue
		}
		// Nothing else holds st yet: stamped in place, not copied.
		st.Stamp(c.full, c.fullStr)
		d.Open()
		router.RouteFromClient(ctx, st)
		c.handled()
		d.Close(c.dec.Buffered() == 0)
	}
}

// handled counts a stanza of the client's as handled (XEP-0198 §4): routed,
// or answered with an error.
func (c *conn) handled() {
	if sm := c.sm; sm != nil {
		sm.in.Add(1)
	}
}

// reject answers a stanza the client sent in error, directly to the client.
func (c *conn) reject(st *xmpp.Stanza, err error) {
	if st == nil {
		return
	}
	to := st.To
	if se := (stanza.Error{}); errors.As(err, &se) && se.Condition == stanza.JIDMalformed {
		to = jid.JID{}
	}
	reply := st.With(c.full, to).ErrorReply(xmpp.AsStanzaError(err))
	if reply != nil {
		c.Deliver(reply)
	}
}

// limitedReader reads from the connection's current transport, applying
// the negotiation or idle deadline and the inbound byte rate.
//
// After bind it also arms the deadline at which the goroutine reading hands
// the session to a fresh one (conn.endOrPark, conn.await): slimAfter while the goroutine
// reading has served stanzas (its stack has grown), the idle timeout once
// a fresh goroutine waits. The idle timeout thus counts from the hand-over,
// at most slimAfter after the last input.
type limitedReader struct {
	conn     *conn
	rate     int
	burst    int
	tokens   float64
	last     time.Time
	deadline time.Time // negotiation deadline; zero after bind
	lastSet  time.Time
	armed    armed
	pinged   bool // a keepalive ping is outstanding
	// fresh says the goroutine reading is a fresh await's that has not
	// served a stanza yet.
	fresh bool
}

// armed says which read deadline is set after bind.
type armed uint8

const (
	armedNone armed = iota
	armedSlim       // slimAfter: then hand over to a fresh goroutine
	armedIdle       // the idle timeout (or a keepalive ping's answer)
)

// pingTimeout is how long a silent client has to answer the keepalive
// ping sent when its idle timeout expires.
const pingTimeout = time.Minute

// slimDelay is how long a session's ingress goroutine waits for input with
// the stack serving stanzas left it before handing over to a fresh one.
// Busy sessions keep their goroutine: a hand-over costs a new goroutine
// and its stack growing again.
const slimDelay = 500 * time.Millisecond

// slimAfter is slimDelay, or a quarter of a shorter idle timeout.
func slimAfter(idle time.Duration) time.Duration {
	if idle > 0 {
		return min(slimDelay, idle/4)
	}
	return slimDelay
}

func (r *limitedReader) Read(p []byte) (int, error) {
	c := r.conn
	if r.deadline.IsZero() {
		r.arm()
	}
	if r.rate > 0 && len(p) > r.burst {
		p = p[:r.burst]
	}
	for {
		n, err := c.nc.Read(p)
		if n > 0 {
			r.pinged = false
			if r.rate > 0 {
				r.throttle(n)
			}
			return n, err
		}
		if err != nil && r.deadline.IsZero() && isTimeout(err) {
			if r.armed == armedSlim && !r.fresh {
				return 0, wire.ErrNoInput
			}
			if r.ping() {
				continue
			}
		}
		return n, err
	}
}

// arm sets the read deadline of a bound session for the read about to
// start. Deadlines are refreshed at most twice per slimAfter, and once a
// second (or a quarter of the idle timeout if shorter) for the idle
// timeout: a stream may close up to that much early, not a whole second
// (which would cut active streams with a timeout under a second).
func (r *limitedReader) arm() {
	c := r.conn
	idle := c.srv.opts.Limits.IdleTimeout
	now := time.Now()
	switch {
	case !r.fresh:
		slim := slimAfter(idle)
		if r.armed != armedSlim || now.Sub(r.lastSet) > slim/2 {
			_ = c.nc.SetReadDeadline(now.Add(slim))
			r.lastSet, r.armed = now, armedSlim
		}
	case idle > 0:
		if r.armed != armedIdle || now.Sub(r.lastSet) > min(time.Second, idle/4) {
			_ = c.nc.SetReadDeadline(now.Add(idle))
			r.lastSet, r.armed = now, armedIdle
		}
	case r.armed != armedNone:
		_ = c.nc.SetReadDeadline(time.Time{})
		r.armed = armedNone
	}
}

// ping answers the expiry of the idle timeout: unless one is outstanding
// it sends a keepalive ping (XEP-0199 §4.2, server-to-client) and gives the
// client pingTimeout to answer; any data, the answer included, keeps the
// session. It reports whether the read should go on.
func (r *limitedReader) ping() bool {
	c := r.conn
	idle := c.srv.opts.Limits.IdleTimeout
	if idle <= 0 || r.pinged || r.armed != armedIdle || !c.isBound() {
		return false
	}
	r.pinged = true
	now := time.Now()
	_ = c.nc.SetReadDeadline(now.Add(min(pingTimeout, idle)))
	r.lastSet = now
	c.Deliver(xmpp.Build(xmpp.KindIQ, xmpp.TypeGet, "keepalive", c.full.Domain(), c.full,
		wire.New("ping", "urn:xmpp:ping")))
	return true
}

// waitInput waits, on a plain TCP connection with nothing buffered, until
// the socket has input, without a read buffer: an idle session holds none.
// Elsewhere (TLS may hold decrypted input the socket no longer shows) it
// returns at once and the read waits. The idle timeout and its keepalive
// ping apply as to a read.
func (c *conn) waitInput() error {
	if c.secure {
		return nil
	}
	sc, ok := c.raw.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil || !c.dec.Release() {
		return nil
	}
	r := c.in
	r.arm()
	for {
		err := rc.Read(readable)
		if err == nil {
			return nil
		}
		if r.deadline.IsZero() && isTimeout(err) && r.ping() {
			continue
		}
		return err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) isBound() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bound && !c.closed
}

// throttle is a token bucket on inbound bytes: reading stops while the
// bucket is empty, so TCP pushes back on the sender.
func (r *limitedReader) throttle(n int) {
	now := time.Now()
	if !r.last.IsZero() {
		r.tokens += now.Sub(r.last).Seconds() * float64(r.rate)
		if r.tokens > float64(r.burst) {
			r.tokens = float64(r.burst)
		}
	}
	r.last = now
	r.tokens -= float64(n)
	if r.tokens < 0 {
		wait := time.Duration(-r.tokens / float64(r.rate) * float64(time.Second))
		time.Sleep(wait)
	}
}
