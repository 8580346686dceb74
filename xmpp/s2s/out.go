package s2s

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// closeLinger bounds how long a closing stream waits for the peer's
// closing tag before the connection is cut.
const closeLinger = 2 * time.Second

// connError is a failure to reach or authenticate with a peer, with the
// stanza error its queued stanzas are answered with.
type connError struct {
	cond stanza.Condition
	err  error
}

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

func failed(cond stanza.Condition, format string, args ...any) error {
	return &connError{cond: cond, err: fmt.Errorf(format, args...)}
}

// condOf is the stanza error for a connection failure: a timeout is
// remote-server-timeout, anything else remote-server-not-found (RFC 6120
// §10.4.3).
func condOf(err error) stanza.Condition {
	var ce *connError
	if errors.As(err, &ce) {
		return ce.cond
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return stanza.RemoteServerTimeout
	}
	return stanza.RemoteServerNotFound
}

// outConn is a stream this server opened to another.
type outConn struct {
	s             *Server
	local, remote string
	raw           net.Conn // TCP; the TLS connection over it is the writer's
	dec           *wire.Decoder
	w             *wire.StreamWriter
	streamID      string // the receiving server's id for the stream
	dialback      bool   // the receiving server speaks dialback
	secure        bool
}

// dial connects to the server of remote and opens a stream from local,
// with TLS when the peer offers it (required with RequireEncryption). The
// negotiation is bounded by ctx.
func (s *Server) dial(ctx context.Context, local, remote string) (*outConn, error) {
	addrs, err := s.resolve(ctx, remote)
	if err != nil {
		return nil, failed(stanza.RemoteServerNotFound, "s2s: resolve %s: %w", remote, err)
	}
	var nc net.Conn
	for _, a := range addrs {
		if nc, err = s.dialContext(ctx, "tcp", a); err == nil {
			break
		}
		s.log.Debug("connecting to a peer failed", "domain", remote, "addr", a, "error", err)
	}
	if nc == nil {
		if ctx.Err() != nil {
			return nil, failed(stanza.RemoteServerTimeout, "s2s: connect to %s: %w", remote, err)
		}
		return nil, failed(condRemoteConnectionFailed, "s2s: connect to %s: %w", remote, err)
	}
	oc := &outConn{s: s, local: local, remote: remote, raw: nc}
	oc.w = wire.NewStreamWriter(nc, s.opts.WriteTimeout)
	oc.dec = wire.NewDecoder(nc, wire.Limits{MaxStanza: s.opts.MaxStanzaSize})
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()
	if err := oc.open(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return oc, nil
}

// open sends the stream header, reads the peer's and its features, and
// negotiates STARTTLS (RFC 6120 §5.4) when offered.
func (oc *outConn) open(ctx context.Context) error {
	if err := oc.w.Write(appendHeader(nil, oc.local, oc.remote, "")); err != nil {
		return err
	}
	h, err := oc.dec.ReadHeader()
	if err != nil {
		return fmt.Errorf("s2s: %s: stream header: %w", oc.remote, err)
	}
	if err := checkHeader(h); err != nil {
		_ = oc.w.Last(wire.AppendStreamEnd(nil, err.(*wire.Error).Condition, ""))
		return fmt.Errorf("s2s: %s: %w", oc.remote, err)
	}
	oc.dec.SetScope(readScope(h))
	oc.streamID = h.ID
	features, err := oc.dec.ReadElement()
	if err != nil {
		return fmt.Errorf("s2s: %s: stream features: %w", oc.remote, err)
	}
	if isStreamElement(features, "error") {
		return failed(stanza.RemoteServerNotFound, "s2s: %s: %w", oc.remote, peerStreamError(features))
	}
	if !isStreamElement(features, "features") {
		return fmt.Errorf("s2s: %s: expected stream features, got <%s/>", oc.remote, features.Name)
	}
	if !oc.secure && features.Child("starttls", xmpp.NSTLS) != nil {
		return oc.startTLS(ctx)
	}
	if !oc.secure && oc.s.opts.RequireEncryption {
		return failed(stanza.RemoteServerNotFound, "s2s: %s offers no TLS, which is required", oc.remote)
	}
	oc.dialback = features.Child("dialback", NSDialbackFeature) != nil
	for _, a := range h.Attrs {
		if a.Name == "xmlns:db" && a.Value == NSDialback {
			oc.dialback = true // XEP-0220 "Traditional Dialback"
		}
	}
	if oc.streamID == "" {
		return fmt.Errorf("s2s: %s: the stream header has no id", oc.remote)
	}
	return nil
}

// startTLS upgrades the stream and opens it again.
func (oc *outConn) startTLS(ctx context.Context) error {
	if err := oc.w.Write([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
		return err
	}
	el, err := oc.dec.ReadElement()
	if err != nil {
		return fmt.Errorf("s2s: %s: STARTTLS: %w", oc.remote, err)
	}
	if el.Name != "proceed" || el.Space != xmpp.NSTLS {
		return failed(stanza.RemoteServerNotFound, "s2s: %s refused STARTTLS", oc.remote)
	}
	minVersion := uint16(tls.VersionTLS12)
	if t := oc.s.opts.TLS; t != nil && t.MinVersion > minVersion {
		minVersion = t.MinVersion
	}
	tc := tls.Client(oc.raw, &tls.Config{
		ServerName: oc.remote,
		// The certificate is not checked: dialback names the peer
		// (XEP-0220), TLS protects the stream (package doc).
		InsecureSkipVerify: true, //nolint:gosec // see above
		MinVersion:         minVersion,
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("s2s: %s: TLS handshake: %w", oc.remote, err)
	}
	oc.secure = true
	oc.w.SetConn(tc)
	oc.dec.Reset(tc)
	return oc.open(ctx)
}

// closeStream sends the closing tag, waits a little for the peer's (the
// reader, when there is one, sees it and ends: done), closes the
// connection and waits for the reader to end.
func (oc *outConn) closeStream(done <-chan error) {
	oc.w.Last([]byte("</stream:stream>"))
	if done == nil {
		oc.raw.Close()
		return
	}
	select {
	case <-done:
		oc.raw.Close()
	case <-time.After(closeLinger):
		oc.raw.Close()
		<-done
	}
}

// authenticate runs dialback for the peer's domain pair on oc (XEP-0220
// "Initiating Server Generates Outbound Request"): it sends the key and
// waits for the receiving server's result.
func (oc *outConn) authenticate() error {
	if !oc.dialback {
		return failed(stanza.RemoteServerNotFound, "s2s: %s offers no authentication this server speaks (dialback)", oc.remote)
	}
	key := Key(oc.s.opts.Secret, oc.remote, oc.local, oc.streamID)
	if err := oc.w.Write(appendDialback(nil, "result", oc.local, oc.remote, "", "", "", key)); err != nil {
		return err
	}
	for {
		el, err := oc.dec.ReadElement()
		if err != nil {
			if errors.Is(err, wire.ErrStreamEnd) {
				// XEP-0220: a closed stream while waiting is
				// handled as a dialback error.
				return failed(stanza.RemoteServerTimeout, "s2s: %s closed the stream during dialback", oc.remote)
			}
			return fmt.Errorf("s2s: %s: dialback: %w", oc.remote, err)
		}
		oc.trace(el)
		switch {
		case isStreamElement(el, "error"):
			return failed(stanza.RemoteServerNotFound, "s2s: %s: %w", oc.remote, peerStreamError(el))
		case el.Name == "result" && el.Space == NSDialback:
			if el.AttrValue("from") != oc.remote || el.AttrValue("to") != oc.local {
				// Not the answer to our request: unsolicited
				// (XEP-0220 "Unsolicited Dialback").
				continue
			}
			switch typ := el.AttrValue("type"); typ {
			case "valid":
				return nil
			case "error":
				// XEP-0220: queued stanzas are returned with
				// remote-server-timeout.
				return failed(stanza.RemoteServerTimeout, "s2s: %s refused dialback: %s", oc.remote, dialbackError(el))
			default:
				// "invalid": internal-server-error (XEP-0220).
				return failed(stanza.InternalServerError, "s2s: %s found this server's dialback key %q", oc.remote, typ)
			}
		}
		// Anything else before the result (a stray db:verify answer,
		// stanzas on a stream the peer may not send on) is dropped.
	}
}

func (oc *outConn) trace(el *wire.Element) {
	if oc.s.opts.TraceXML {
		oc.s.log.Debug("in", "peer", oc.remote, "xml", string(el.Raw()))
	}
}

// readLoop reads an authenticated outgoing stream until it ends: the peer
// sends nothing on it but keepalives, a stream error or the closing tag.
func (oc *outConn) readLoop() error {
	for {
		el, err := oc.dec.ReadElement()
		if err != nil {
			return err
		}
		oc.trace(el)
		if isStreamElement(el, "error") {
			return peerStreamError(el)
		}
	}
}

// verify asks the authoritative server of remote whether key is the key
// its server sent for the stream id (XEP-0220 "Receiving Server Generates
// Outbound Request for Verification"), over a connection of its own,
// closed after the answer. It returns "valid", "invalid" or "error" with
// the dialback error condition.
func (s *Server) verify(ctx context.Context, local, remote, id, key string) (string, stanza.Condition) {
	select {
	case s.verifications <- struct{}{}:
		defer func() { <-s.verifications }()
	default:
		return "error", stanza.ResourceConstraint
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout)
	defer cancel()
	oc, err := s.dial(ctx, local, remote)
	if err != nil {
		s.log.Info("dialback verification: cannot reach the authoritative server", "domain", remote, "error", err)
		return "error", condOf(err)
	}
	stop := context.AfterFunc(ctx, func() { _ = oc.raw.SetDeadline(time.Now()) })
	defer stop()
	if err := oc.w.Write(appendDialback(nil, "verify", local, remote, id, "", "", key)); err != nil {
		oc.raw.Close()
		return "error", stanza.RemoteServerTimeout
	}
	for {
		el, err := oc.dec.ReadElement()
		if err != nil {
			oc.raw.Close()
			// XEP-0220: the authoritative server closed the stream
			// without an answer.
			return "error", stanza.RemoteServerTimeout
		}
		oc.trace(el)
		if isStreamElement(el, "error") {
			oc.raw.Close()
			return "error", stanza.RemoteServerTimeout
		}
		if el.Name != "verify" || el.Space != NSDialback ||
			el.AttrValue("from") != remote || el.AttrValue("to") != local || el.AttrValue("id") != id {
			continue
		}
		oc.closeStream(nil)
		switch typ := el.AttrValue("type"); typ {
		case "valid", "invalid":
			return typ, ""
		default:
			// XEP-0220: whatever the authoritative server's error,
			// the initiating server learns remote-server-not-found
			// (its condition, such as item-not-found, would mean
			// something else to it).
			return "error", stanza.RemoteServerNotFound
		}
	}
}

// peer carries the stanzas of one domain pair to the remote server: a
// queue, and while it is not empty or the stream is fresh, a goroutine
// that connects, authenticates and writes.
type peer struct {
	s *Server
	pair
	wake chan struct{}

	mu      sync.Mutex // after Server.mu
	queue   []*xmpp.Stanza
	qbytes  int // the bytes of queue
	running bool
	conn    *outConn // the stream being written, for cut
}

// enqueue queues st; it reports false when the queue is full. It runs
// under Server.mu, not closing.
func (p *peer) enqueue(st *xmpp.Stanza) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(st.Bytes())
	if len(p.queue) >= p.s.opts.QueueStanzas || p.qbytes+n > p.s.opts.QueueBytes {
		return false
	}
	p.queue = append(p.queue, st)
	p.qbytes += n
	if !p.running {
		p.running = true
		p.s.wg.Add(1)
		go p.run()
		return true
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

// cut closes the stream at once (Shutdown's last resort).
func (p *peer) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.raw.Close()
	}
}

// take empties the queue; with stop, the peer's goroutine ends (the
// next stanza starts another).
func (p *peer) take(stop bool) []*xmpp.Stanza {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue
	p.queue, p.qbytes = nil, 0
	if stop {
		p.running = false
	}
	return q
}

func (p *peer) run() {
	defer p.s.wg.Done()
	defer p.s.retire(p)
	ctx := p.s.ctx
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, p.s.opts.ConnectTimeout)
		oc, err := p.connect(cctx)
		cancel()
		if err != nil {
			p.s.log.Info("federation: cannot reach a peer", "from", p.local, "domain", p.remote, "error", err)
			cond := condOf(err)
			if cond == condRemoteConnectionFailed {
				cond = stanza.RemoteServerNotFound // a dialback condition only
			}
			p.bounceAll(p.take(true), cond, "")
			return
		}
		p.s.log.Debug("federation: connected", "from", p.local, "domain", p.remote)
		sent := p.serve(ctx, oc)
		p.mu.Lock()
		p.conn = nil
		retry := len(p.queue) > 0 && ctx.Err() == nil && (sent || attempt == 0)
		if !retry {
			q := p.queue
			p.queue, p.qbytes, p.running = nil, 0, false
			p.mu.Unlock()
			p.bounceAll(q, stanza.RemoteServerTimeout, "the connection to "+p.remote+" ended")
			return
		}
		p.mu.Unlock()
	}
}

// connect opens an authenticated stream for the pair.
func (p *peer) connect(ctx context.Context) (*outConn, error) {
	oc, err := p.s.dial(ctx, p.local, p.remote)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = oc.raw.SetDeadline(time.Now()) })
	err = oc.authenticate()
	if !stop() || err != nil {
		oc.raw.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	_ = oc.raw.SetDeadline(time.Time{})
	p.mu.Lock()
	p.conn = oc
	p.mu.Unlock()
	return oc, nil
}

// serve writes the queue to the stream until it ends, has been idle for
// IdleTimeout or the server shuts down. It reports whether anything was
// written.
func (p *peer) serve(ctx context.Context, oc *outConn) bool {
	done := make(chan error, 1)
	go func() { done <- oc.readLoop() }()
	idle := time.NewTimer(p.s.opts.IdleTimeout)
	defer idle.Stop()
	var sent bool
	for {
		if batch := p.take(false); len(batch) > 0 {
			if err := oc.writeBatch(batch); err != nil {
				p.s.log.Info("federation: write failed", "domain", p.remote, "error", err)
				p.bounceAll(batch, stanza.RemoteServerTimeout, "the connection to "+p.remote+" failed")
				oc.raw.Close()
				<-done
				return sent
			}
			sent = true
			idle.Reset(p.s.opts.IdleTimeout)
			continue
		}
		select {
		case <-p.wake:
		case err := <-done:
			if err != nil && !errors.Is(err, wire.ErrStreamEnd) {
				p.s.log.Info("federation: stream ended", "domain", p.remote, "error", err)
			}
			oc.closeStream(nil) // the reader has ended
			return sent
		case <-idle.C:
			oc.closeStream(done)
			return sent
		case <-ctx.Done():
			// What is queued goes out before the closing tag.
			if batch := p.take(false); len(batch) > 0 {
				_ = oc.writeBatch(batch)
			}
			oc.closeStream(done)
			return sent
		}
	}
}

func (p *peer) bounceAll(q []*xmpp.Stanza, cond stanza.Condition, text string) {
	for _, st := range q {
		p.s.bounce(context.Background(), st, cond, text)
	}
}

// writeBatch writes stanzas, gathered into writes of about 32 KiB.
func (oc *outConn) writeBatch(batch []*xmpp.Stanza) error {
	return oc.w.WriteEach(len(batch), func(i int) []byte { return batch[i].Bytes() })
}
