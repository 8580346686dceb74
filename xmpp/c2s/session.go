package c2s

import (
	"context"
	"errors"
	"net"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// serve is the ingress loop of a bound session: it reads, validates and
// stamps stanzas and hands them to the router.
func (c *conn) serve(ctx context.Context) error {
	router := c.srv.deps.Router
	bare := c.full.Bare()
	fullStr := c.full.String()
	var cache xmpp.JIDCache
	for {
		el, err := c.dec.ReadElement()
		if err != nil {
			return err
		}
		if c.srv.opts.TraceXML {
			c.log.Debug("in", "xml", traceable(el))
		}
		if el.Space != wire.NSClient || el.Prefix != "" {
			// RFC 6120 §4.9.3.24: a top-level element we do not
			// support (no stream management is offered yet).
			return serr("unsupported-stanza-type", "")
		}
		st, err := xmpp.NewStanzaCached(el, &cache)
		if errors.Is(err, xmpp.ErrNotStanza) {
			return serr("unsupported-stanza-type", "")
		}
		if err != nil {
			c.reject(st, err)
			continue
		}
		// RFC 6120 §8.1.2.1: the server stamps the full JID; a client
		// may only claim its own bare or full JID.
		if !xmpp.IsZero(st.From) && !st.From.Equal(c.full) && !st.From.Equal(bare) {
			return serr("invalid-from", "")
		}
		if err := validate(st); err != nil {
			c.reject(st, err)
			continue
		}
		if st.Kind == xmpp.KindIQ && xmpp.IsZero(st.To) && st.Type == xmpp.TypeSet {
			if p := st.Payload(); p != nil && p.Name == "session" && p.Space == xmpp.NSSession {
				// RFC 3921 §3 session establishment, kept for old
				// clients: it is a no-op now.
				c.Deliver(st.Result(nil).With(jid.JID{}, c.full))
				continue
			}
		}
		router.RouteFromClient(ctx, st.Stamped(c.full, fullStr))
	}
}

// validate checks the stanza attributes RFC 6120 §8.1 requires.
func validate(st *xmpp.Stanza) error {
	switch st.Kind {
	case xmpp.KindIQ:
		// RFC 6120 §8.2.3: id and a known type are required.
		if st.ID == "" {
			return xmpp.StanzaError(stanza.BadRequest, "IQ without id")
		}
		switch st.Type {
		case xmpp.TypeGet, xmpp.TypeSet, xmpp.TypeResult, xmpp.TypeError:
		default:
			return xmpp.StanzaError(stanza.BadRequest, "unknown IQ type")
		}
	case xmpp.KindPresence:
		switch st.Type {
		case "", xmpp.TypeUnavailable, xmpp.TypeProbe, xmpp.TypeSubscribe, xmpp.TypeSubscribed,
			xmpp.TypeUnsubscribe, xmpp.TypeUnsubscribed, xmpp.TypeError:
		default:
			return xmpp.StanzaError(stanza.BadRequest, "unknown presence type")
		}
	case xmpp.KindMessage:
		// RFC 6121 §5.2.2: unknown message types are treated as
		// normal by the recipient; pass them on.
	}
	return nil
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
type limitedReader struct {
	conn     *conn
	rate     int
	burst    int
	tokens   float64
	last     time.Time
	deadline time.Time // negotiation deadline; zero after bind
	lastSet  time.Time
	pinged   bool // a keepalive ping is outstanding
}

// pingTimeout is how long a silent client has to answer the keepalive
// ping sent when its idle timeout expires.
const pingTimeout = time.Minute

func (r *limitedReader) Read(p []byte) (int, error) {
	c := r.conn
	idle := c.srv.opts.Limits.IdleTimeout
	if r.deadline.IsZero() && idle > 0 {
		// Refresh the idle deadline at most once a second, or a
		// quarter of the timeout if shorter: the stream may then close
		// up to that much early, not a whole second (which would cut
		// active streams with a timeout under a second).
		now := time.Now()
		if now.Sub(r.lastSet) > min(time.Second, idle/4) {
			_ = c.nc.SetReadDeadline(now.Add(idle))
			r.lastSet = now
		}
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
		var ne net.Error
		if err != nil && errors.As(err, &ne) && ne.Timeout() && r.deadline.IsZero() && idle > 0 && !r.pinged && c.isBound() {
			// Silent for the idle timeout: ask before closing
			// (XEP-0199 §4.2, server-to-client ping). Any data,
			// the answer included, keeps the session.
			r.pinged = true
			now := time.Now()
			_ = c.nc.SetReadDeadline(now.Add(min(pingTimeout, idle)))
			r.lastSet = now
			c.Deliver(xmpp.Build(xmpp.KindIQ, xmpp.TypeGet, "keepalive", c.full.Domain(), c.full,
				wire.New("ping", "urn:xmpp:ping")))
			continue
		}
		return n, err
	}
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
