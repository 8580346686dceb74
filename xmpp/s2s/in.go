package s2s

import (
	"context"
	"crypto/tls"
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

// maxPendingVerifications bounds the dialback keys one incoming stream
// may have under verification at once, maxPairs the domain pairs it may
// carry.
const (
	maxPendingVerifications = 8
	maxPairs                = 64
)

// inConn is a stream another server opened to this one.
type inConn struct {
	s     *Server
	id    uint64
	raw   net.Conn // TCP; the TLS connection over it is the writer's
	dec   *wire.Decoder
	w     *wire.StreamWriter
	cache xmpp.JIDCache

	secure     bool
	headerSent bool
	local      string // the domain the stream is addressed to
	streamID   string
	deadline   time.Time   // to authenticate a first pair
	closing    atomic.Bool // the stream ended from our side: no more deadlines
	stopping   atomic.Bool // the server shuts down (Server.Shutdown)
	authed     atomic.Bool // a first pair is verified: the idle timeout applies

	ctx    context.Context // ends with the connection: verifications stop
	cancel context.CancelFunc

	mu       sync.Mutex
	verified map[pair]bool
	pending  map[pair]bool
	checks   sync.WaitGroup
}

func newInConn(s *Server, nc net.Conn) *inConn {
	c := &inConn{
		s: s, id: s.nextID.Add(1), raw: nc,
		verified: map[pair]bool{}, pending: map[pair]bool{},
	}
	c.w = wire.NewStreamWriter(nc, s.opts.WriteTimeout)
	c.dec = wire.NewDecoder(nc, wire.Limits{MaxStanza: s.opts.MaxStanzaSize})
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	return c
}

func (c *inConn) debug(msg string, args ...any) {
	if c.s.log.Enabled(context.Background(), slog.LevelDebug) {
		c.s.log.Debug(msg, append([]any{xmpp.LogConn, c.id, xmpp.LogRemote, c.raw.RemoteAddr().String()}, args...)...)
	}
}

// run serves the stream until it ends.
func (c *inConn) run() {
	defer func() {
		c.cancel()
		c.checks.Wait()
		c.raw.Close()
	}()
	c.deadline = time.Now().Add(2 * c.s.opts.ConnectTimeout)
	_ = c.raw.SetReadDeadline(c.deadline)
	err := c.serve()
	c.end(err)
}

// end closes the stream after err: a stream error for what the peer did
// wrong, a timeout or a shutdown, the closing tag when it closed its
// stream; nothing when the stream had ended already (closeStream, a
// failed TLS handshake).
func (c *inConn) end(err error) {
	if c.closing.Load() {
		return
	}
	b := []byte(nil)
	if !c.headerSent {
		b = appendHeader(b, c.local, "", newStreamID())
	}
	ok := true
	if c.stopping.Load() {
		b = wire.AppendStreamEnd(b, "system-shutdown", "")
	} else if b, ok = wire.AppendEnd(b, err); !ok {
		c.debug("incoming server connection lost", xmpp.LogErr, err)
		return
	}
	c.debug("incoming server stream ends", xmpp.LogErr, err)
	if !c.w.Last(b) {
		return
	}
	_ = c.raw.SetReadDeadline(time.Now().Add(closeLinger))
	c.dec.Discard()
}

// shutdown makes the connection's goroutine end the stream with
// system-shutdown (Server.Shutdown): its read returns at once.
func (c *inConn) shutdown() {
	c.stopping.Store(true)
	_ = c.raw.SetReadDeadline(time.Now())
}

// closeStream ends the stream with the closing tag alone (after an
// invalid dialback key, XEP-0220).
func (c *inConn) closeStream() {
	if c.closing.Swap(true) || !c.w.Last([]byte("</stream:stream>")) {
		return
	}
	_ = c.raw.SetReadDeadline(time.Now().Add(closeLinger))
}

// open reads the peer's stream header and answers it with ours and the
// features of the stream's state (RFC 6120 §4.3, §4.7).
func (c *inConn) open() error {
	c.headerSent = false
	h, err := c.dec.ReadHeader()
	if err != nil {
		return err
	}
	to := strings.ToLower(h.To)
	if j, err := jid.New("", h.To, ""); err == nil {
		to = j.Domainpart()
	}
	switch {
	case to == "" || !c.s.router.Serves(to):
		// RFC 6120 §4.9.3.6.
		return serr("host-unknown", "")
	case c.local != "" && to != c.local:
		return serr("host-unknown", "the domain changed on stream restart")
	}
	c.local = to
	c.streamID = newStreamID()
	b := appendHeader(nil, to, h.From, c.streamID)
	c.headerSent = true
	if err := checkHeader(h); err != nil {
		_ = c.w.Write(b)
		return err
	}
	c.dec.SetScope(readScope(h))
	b = append(b, "<stream:features>"...)
	if !c.secure && c.s.opts.TLS != nil {
		b = append(b, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"...)
		if c.s.opts.RequireEncryption {
			b = append(b, "<required/>"...)
		}
		b = append(b, "</starttls>"...)
	}
	if c.secure || !c.s.opts.RequireEncryption {
		// XEP-0220 "Dialback with Error Handling".
		b = append(b, "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"...)
	}
	b = append(b, "</stream:features>"...)
	return c.w.Write(b)
}

// serve negotiates and reads the stream until it ends.
func (c *inConn) serve() error {
	if err := c.open(); err != nil {
		return err
	}
	for {
		if c.authed.Load() && !c.closing.Load() {
			_ = c.raw.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout))
		}
		if c.stopping.Load() {
			return errors.New("s2s: shutting down") // end writes system-shutdown
		}
		el, err := c.dec.ReadElement()
		if err != nil {
			return err
		}
		if c.s.opts.TraceXML {
			c.debug("in", "xml", string(el.Raw()))
		}
		switch {
		case el.Name == "starttls" && el.Space == xmpp.NSTLS:
			if err := c.startTLS(); err != nil {
				return err
			}
		case el.Space == NSDialback && el.Name == "result":
			if err := c.dialbackResult(el); err != nil {
				return err
			}
		case el.Space == NSDialback && el.Name == "verify":
			if err := c.dialbackVerify(el); err != nil {
				return err
			}
		case (el.Space == wire.NSClient || el.Space == wire.NSServer) && el.Prefix == "":
			// jabber:server when the peer declared it on the stanza
			// itself (rare): accepted, and written to clients in
			// their namespace (RFC 6120 §4.8.3).
			if err := c.stanza(el); err != nil {
				return err
			}
		default:
			// RFC 6120 §4.9.3.24.
			return serr("unsupported-stanza-type", "")
		}
	}
}

func (c *inConn) startTLS() error {
	if c.secure || c.s.opts.TLS == nil {
		// RFC 6120 §5.4.2.2: the failure, then the closing tag.
		_ = c.w.Write([]byte("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"))
		return wire.ErrStreamEnd
	}
	if c.dec.PendingData() {
		// RFC 6120 §5.4.3.3.
		return serr("policy-violation", "data after <starttls/>")
	}
	c.mu.Lock()
	dialback := len(c.verified) > 0 || len(c.pending) > 0
	c.mu.Unlock()
	if dialback {
		// RFC 6120 §5.3.1: TLS comes before authentication, whose
		// results a new stream would discard (§5.4.3.3).
		return serr("policy-violation", "STARTTLS after dialback")
	}
	if err := c.w.Write([]byte("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
		return err
	}
	tc := tls.Server(c.raw, c.s.opts.TLS)
	ctx, cancel := context.WithDeadline(c.ctx, c.deadline)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.debug("incoming server TLS handshake failed", xmpp.LogErr, err)
		c.closing.Store(true) // nothing more can be said: end writes nothing
		return err
	}
	c.secure = true
	c.w.SetConn(tc)
	c.dec.Reset(tc)
	return c.open()
}

// domainAttr reads a domain attribute of a dialback element, normalised;
// ok is false when it is absent or not a domain.
func domainAttr(el *wire.Element, name string) (string, bool) {
	v := el.AttrValue(name)
	if v == "" {
		return "", false
	}
	j, err := jid.New("", v, "")
	if err != nil {
		return "", false
	}
	return j.Domainpart(), true
}

// dialbackResult handles a dialback key for the pair from → to
// (XEP-0220 "Receiving Server Handles Inbound Authorization Request"):
// the key is checked with the sending domain's server, asynchronously,
// and the result sent back.
func (c *inConn) dialbackResult(el *wire.Element) error {
	if el.AttrValue("type") != "" {
		// XEP-0220 "Unsolicited Dialback": results are not answers on
		// an incoming stream.
		c.debug("unsolicited dialback result dropped")
		return nil
	}
	remote, okFrom := domainAttr(el, "from")
	local, okTo := domainAttr(el, "to")
	if !okFrom {
		return serr("invalid-from", "the dialback key has no valid 'from'")
	}
	if !okTo {
		return serr("improper-addressing", "the dialback key has no valid 'to'")
	}
	reply := func(typ string, cond stanza.Condition) error {
		return c.w.Write(appendDialback(nil, "result", local, remote, "", typ, cond, ""))
	}
	switch {
	case !c.s.router.Serves(local):
		return reply("error", stanza.ItemNotFound)
	case !c.secure && c.s.opts.RequireEncryption:
		return reply("error", stanza.PolicyViolation)
	case !c.s.allowed(remote):
		c.s.log.Info("federation refused by configuration", "domain", remote)
		return reply("error", stanza.NotAllowed)
	case c.s.router.Serves(remote):
		// A peer claiming one of this server's domains.
		c.s.log.Warn("incoming server connection claims a local domain", "domain", remote, xmpp.LogRemote, c.raw.RemoteAddr().String())
		return reply("error", stanza.NotAllowed)
	}
	p := pair{local: local, remote: remote}
	c.mu.Lock()
	switch {
	case c.verified[p]:
		c.mu.Unlock()
		return reply("valid", "")
	case c.pending[p]:
		c.mu.Unlock()
		return nil
	case len(c.pending) >= maxPendingVerifications || len(c.verified)+len(c.pending) >= maxPairs:
		// XEP-0220 "Dialback Error Conditions": the initiating server
		// opens another connection for this pair.
		c.mu.Unlock()
		return reply("error", stanza.ResourceConstraint)
	}
	c.pending[p] = true
	c.checks.Add(1)
	c.mu.Unlock()
	key, streamID := el.Text, c.streamID
	go func() {
		defer c.checks.Done()
		typ, cond := c.s.verify(c.ctx, local, remote, streamID, key)
		c.mu.Lock()
		delete(c.pending, p)
		others := len(c.verified) > 0
		if typ == "valid" {
			c.verified[p] = true
			c.authed.Store(true)
		}
		c.mu.Unlock()
		switch typ {
		case "valid":
			c.s.log.Info("federation: incoming stream authenticated", "from", remote, "to", local)
			_ = reply("valid", "")
		case "invalid":
			c.s.log.Warn("federation: dialback key found invalid by its domain's server", "domain", remote, xmpp.LogRemote, c.raw.RemoteAddr().String())
			if others {
				_ = reply("error", stanza.Forbidden)
				return
			}
			_ = reply("invalid", "")
			c.closeStream()
		default:
			_ = reply("error", cond)
		}
	}()
	return nil
}

// dialbackVerify answers whether a key is one this server issued
// (XEP-0220 "Authoritative Server Handles Inbound Verification Request").
// It needs no authentication of the stream it comes on.
func (c *inConn) dialbackVerify(el *wire.Element) error {
	if el.AttrValue("type") != "" {
		c.debug("unsolicited dialback verification answer dropped")
		return nil
	}
	receiving, okFrom := domainAttr(el, "from")
	originating, okTo := domainAttr(el, "to")
	id := el.AttrValue("id")
	if !okFrom || !okTo || id == "" {
		return serr("improper-addressing", "db:verify needs 'from', 'to' and 'id'")
	}
	typ, cond := "invalid", stanza.Condition("")
	switch {
	case !c.s.router.Serves(originating):
		typ, cond = "error", stanza.ItemNotFound
	case checkKey(c.s.opts.Secret, receiving, originating, id, el.Text):
		typ = "valid"
	}
	return c.w.Write(appendDialback(nil, "verify", originating, receiving, id, typ, cond, ""))
}

// stanza delivers a stanza of an authenticated domain pair.
func (c *inConn) stanza(el *wire.Element) error {
	st, err := xmpp.NewStanzaCached(el, &c.cache)
	if errors.Is(err, xmpp.ErrNotStanza) {
		return serr("unsupported-stanza-type", "")
	}
	if err != nil || xmpp.IsZero(st.From) || xmpp.IsZero(st.To) {
		// RFC 6120 §4.9.3.7: between servers, 'from' and 'to' are
		// required and must be valid addresses.
		return serr("improper-addressing", "")
	}
	p := pair{local: st.To.Domainpart(), remote: st.From.Domainpart()}
	c.mu.Lock()
	ok := c.verified[p]
	c.mu.Unlock()
	if !ok {
		if !c.s.router.Serves(p.local) {
			return serr("host-unknown", "")
		}
		// RFC 6120 §4.9.3.9: the sender is not authenticated for
		// this domain pair on this stream.
		return serr("invalid-from", "")
	}
	if err := xmpp.Validate(st); err != nil {
		if e := st.ErrorReply(xmpp.AsStanzaError(err)); e != nil {
			c.s.router.Route(c.s.ctx, e)
		}
		return nil
	}
	c.s.router.Route(c.s.ctx, st)
	return nil
}
