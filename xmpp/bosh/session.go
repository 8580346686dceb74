package bosh

import (
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"switchboard/xmpp/wire"
)

// request is a client request waiting for its response.
type request struct {
	body *reqBody
	// resp receives the response once (buffered).
	resp chan []byte
}

// sentResponse is a response kept for a request the client may resend
// (XEP-0124 §14.3).
type sentResponse struct {
	rid  uint64
	body []byte
}

// inChunk is input for the client stream server.
type inChunk struct {
	b []byte
	// restart: b is the header of a restarted stream, let through only
	// once the stream server restarted the stream (StreamRestart).
	restart bool
}

// session is one BOSH session. It is the net.Conn the client stream server
// serves: what requests carry is read from it, and what the server writes
// waits in it for the next response.
type session struct {
	h      *Handler
	sid    string
	remote net.Addr
	local  net.Addr
	// Negotiated at creation.
	wait     time.Duration
	hold     int
	requests int
	content  string
	ver      string
	to, lang string

	mu sync.Mutex
	// changed is closed, and replaced, whenever something a blocked Read
	// or Write waits for changes.
	changed chan struct{}

	// Requests.
	rid     uint64              // the last request processed
	held    []*request          // waiting for a response, in rid order
	ahead   map[uint64]*request // not processed yet: they follow one not arrived, or the stream server lags
	sent    []sentResponse      // the last responses, oldest first
	created bool                // the creation response was sent
	// inactive runs while no request is held; idleGen tells its
	// callback whether it is still the current one.
	inactive *time.Timer
	idleGen  uint64

	// The client stream server's side.
	in        []inChunk
	inBytes   int // in's bytes not yet read
	restartOK bool
	rdl, wdl  time.Time
	wpend     []byte // what was written that is not yet a whole unit
	payload   []byte // translated elements waiting for a response
	streamErr []byte // the <stream:error/> written, translated
	ended     bool   // the server ended the stream (or closed it)
	endCond   string // the terminate's condition, when ended
	closed    bool   // Close was called
	gone      bool   // removed from the handler; the client is told no more
	goneCond  string // why, for a request that raced the removal
}

var _ net.Conn = (*session)(nil)

// wakeLocked wakes whoever waits in Read or Write.
func (s *session) wakeLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// receive takes the request rb of the client and returns either the
// response to write at once or the request to wait for.
func (s *session) receive(rb *reqBody) ([]byte, *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return terminateBody(s.goneCond), nil
	}
	r := &request{body: rb, resp: make(chan []byte, 1)}
	window := uint64(s.requests)
	if rb.terminate {
		// §11: one request more, to end the session.
		window++
	}
	switch {
	case rb.rid <= s.rid:
		// §14.3: a request sent again.
		for _, h := range s.held {
			if h.body.rid == rb.rid {
				// Not answered yet: the earlier copy gets a
				// recoverable error, this one its response.
				send(h, recoverableBody)
				s.held[slices.Index(s.held, h)] = r
				return nil, r
			}
		}
		for _, sr := range s.sent {
			if sr.rid == rb.rid {
				return sr.body, nil
			}
		}
		s.endLocked(condItemNotFound)
		return terminateBody(condItemNotFound), nil
	case rb.rid > s.rid+window:
		// §14.2: beyond the window.
		s.endLocked(condItemNotFound)
		return terminateBody(condItemNotFound), nil
	}
	// In 'rid' order (§14.2): a request waits for those before it, and
	// for the stream server to read most of what came before.
	if old := s.ahead[rb.rid]; old != nil {
		send(old, recoverableBody)
	}
	if s.ahead == nil {
		s.ahead = make(map[uint64]*request)
	}
	s.ahead[rb.rid] = r
	s.advanceLocked()
	return nil, r
}

// advanceLocked processes the requests that follow the last one
// processed, while the stream server keeps up: beyond MaxBody unread,
// they wait, as a client's writes wait on a socket the server does not
// read.
func (s *session) advanceLocked() {
	for !s.gone && s.inBytes <= s.h.opts.MaxBody {
		next := s.ahead[s.rid+1]
		if next == nil {
			return
		}
		delete(s.ahead, s.rid+1)
		s.processLocked(next)
	}
}

// queueLocked adds input for the stream server.
func (s *session) queueLocked(c inChunk) {
	s.in = append(s.in, c)
	s.inBytes += len(c.b)
	s.wakeLocked()
}

// processLocked hands the request's content to the stream, holds the
// request, and answers what can be answered.
func (s *session) processLocked(r *request) {
	s.rid = r.body.rid
	s.stopInactivityLocked()
	rb := r.body
	switch {
	case s.closed:
		// The stream is over; the session ends with this response.
	case rb.terminate:
		// §13: the payload (an unavailable presence, say) is handled,
		// then the stream ends. The oldest request acknowledges the
		// end with a terminate, the others get empty responses.
		// What waits for the client goes with the acknowledgement.
		s.queueLocked(inChunk{b: rb.payload})
		s.queueLocked(inChunk{b: []byte("</stream:stream>")})
		s.held = append(s.held, r)
		payload := s.payload
		s.payload = nil
		s.answerLocked(s.held[0], s.responseLocked(respAttrs{terminate: true}, payload))
		s.answerAllLocked(appendResponse(nil, respAttrs{}, nil))
		s.removeLocked("")
		return
	case rb.restart:
		// XEP-0206 §5: a new stream; a payload is ignored.
		to, lang := rb.to, rb.lang
		if to == "" {
			to = s.to
		}
		if lang == "" {
			lang = s.lang
		}
		s.queueLocked(inChunk{b: streamHeader(to, rb.from, lang), restart: true})
	case len(rb.payload) > 0:
		s.queueLocked(inChunk{b: rb.payload})
	}
	s.held = append(s.held, r)
	s.flushLocked()
}

// flushLocked answers held requests: the oldest with what waits for the
// client, and those beyond 'hold' at once; and the session's end once the
// stream ended. With none held, the inactivity timer runs.
func (s *session) flushLocked() {
	for len(s.held) > 0 && !s.gone {
		switch {
		case s.ended:
			// The stream ended: what was written before its end, then
			// the terminate, on the oldest request; empty responses
			// on the others (§13).
			a := respAttrs{terminate: true, cond: s.endCond}
			payload := s.payload
			if s.streamErr != nil {
				// XEP-0206 §8: the stanzas, then the stream error.
				a.cond = condRemoteStreamError
				payload = append(payload, s.streamErr...)
			}
			s.payload, s.streamErr = nil, nil
			s.answerLocked(s.held[0], s.responseLocked(a, payload))
			s.answerAllLocked(appendResponse(nil, respAttrs{}, nil))
			s.removeLocked(condItemNotFound)
			return
		case len(s.payload) > 0:
			payload := s.payload
			s.payload = nil
			s.answerLocked(s.held[0], s.responseLocked(respAttrs{}, payload))
			s.wakeLocked() // room for a blocked Write
		case len(s.held) > s.hold:
			s.answerLocked(s.held[0], s.responseLocked(respAttrs{}, nil))
		default:
			return
		}
	}
	if len(s.held) == 0 && !s.gone {
		s.armInactivityLocked()
	}
}

// responseLocked builds a response, the session creation response's
// attributes on the first (XEP-0124 §7.2, XEP-0206 §4).
func (s *session) responseLocked(a respAttrs, payload []byte) []byte {
	if !s.created {
		s.created = true
		a.creation = s.creationAttrs()
	}
	return appendResponse(nil, a, payload)
}

func (s *session) creationAttrs() []wire.Attr {
	return []wire.Attr{
		{Name: "sid", Value: s.sid},
		{Name: "wait", Value: strconv.Itoa(int(s.wait / time.Second))},
		{Name: "requests", Value: strconv.Itoa(s.requests)},
		{Name: "hold", Value: strconv.Itoa(s.hold)},
		{Name: "inactivity", Value: strconv.Itoa(int(s.h.opts.Inactivity / time.Second))},
		{Name: "polling", Value: strconv.Itoa(int(s.h.opts.Polling / time.Second))},
		{Name: "ver", Value: s.ver},
		{Name: "from", Value: s.to},
		{Name: "xmpp:version", Value: "1.0"},
		{Name: "xmpp:restartlogic", Value: "true"},
	}
}

// answerLocked sends r its response, keeps the response for a resent
// request, and forgets r.
func (s *session) answerLocked(r *request, body []byte) {
	if i := slices.Index(s.held, r); i >= 0 {
		s.held = slices.Delete(s.held, i, i+1)
	}
	s.sent = append(s.sent, sentResponse{rid: r.body.rid, body: body})
	if len(s.sent) > s.requests {
		s.sent = slices.Delete(s.sent, 0, len(s.sent)-s.requests)
	}
	send(r, body)
}

// answerAllLocked answers every held request with body.
func (s *session) answerAllLocked(body []byte) {
	held := s.held
	s.held = nil
	for _, r := range held {
		s.answerLocked(r, body)
	}
}

// send gives r its response. A request is answered once; the check keeps
// a second answer, were there one, from blocking the session.
func send(r *request, body []byte) {
	select {
	case r.resp <- body:
	default:
	}
}

// expire answers r, when its 'wait' has passed, with what it would get
// now: an empty response if nothing waits for the client. It returns false
// when r is not held (it waits for a request before it, or for the
// stream server to read).
func (s *session) expire(r *request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.held, r) {
		return len(r.resp) > 0
	}
	s.answerLocked(r, s.responseLocked(respAttrs{}, nil))
	if len(s.held) == 0 && !s.gone {
		s.armInactivityLocked()
	}
	return true
}

// abandon forgets r, whose client went away before its response: a held
// request is answered as if its wait had passed (what waits for the
// client stays for the next request, and the client may ask for this one
// again), one that waits for the request before it is dropped.
func (s *session) abandon(r *request) {
	s.mu.Lock()
	if rid := r.body.rid; s.ahead[rid] == r {
		delete(s.ahead, rid)
	}
	s.mu.Unlock()
	s.expire(r)
}

// armInactivityLocked starts the inactivity timer (§10): a client that
// makes no request for that long is gone.
func (s *session) armInactivityLocked() {
	s.stopInactivityLocked()
	gen := s.idleGen
	s.inactive = time.AfterFunc(s.h.opts.Inactivity, func() { s.inactivityExpired(gen) })
}

// stopInactivityLocked stops the timer; a callback already started finds
// itself out of date.
func (s *session) stopInactivityLocked() {
	s.idleGen++
	if s.inactive != nil {
		s.inactive.Stop()
		s.inactive = nil
	}
}

func (s *session) inactivityExpired(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case gen != s.idleGen || len(s.held) > 0 || s.gone:
		return
	case len(s.ahead) > 0:
		// Requests wait to be processed: the client is there. Once
		// they are answered, or abandoned, the timer runs again.
		s.armInactivityLocked()
		return
	}
	s.h.opts.Logger.Debug("bosh: session inactive", "sid", s.sid)
	s.endLocked(condItemNotFound)
}

// endLocked ends the session from the binding's side: requests waiting
// for a response get a terminate with cond, and the stream server reads
// the end of its input.
func (s *session) endLocked(cond string) {
	if s.gone {
		return
	}
	s.answerAllLocked(terminateBody(cond))
	s.removeLocked(cond)
}

// removeLocked takes the session out of the handler: later requests get
// item-not-found (one that raced the removal cond), requests that wait
// for one before them a terminate, and the stream server reads the end of
// the stream once it read what was sent, and writes into nothing.
func (s *session) removeLocked(cond string) {
	s.gone, s.goneCond = true, cond
	if s.goneCond == "" {
		s.goneCond = condItemNotFound
	}
	for rid, r := range s.ahead {
		send(r, terminateBody(s.goneCond))
		delete(s.ahead, rid)
	}
	s.stopInactivityLocked()
	s.payload, s.streamErr, s.wpend = nil, nil, nil
	s.wakeLocked()
	s.h.forget(s)
}

// end ends the session with cond, from the handler.
func (s *session) end(cond string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(cond)
}

// streamHeader is the stream header a session creation or restart stands
// for (XEP-0206 §3, §5).
func streamHeader(to, from, lang string) []byte {
	b := []byte("<stream:stream xmlns='" + wire.NSClient + "' xmlns:stream='" + wire.NSStream + "' version='1.0'")
	b = wire.AppendAttr(b, "to", to)
	if from != "" {
		b = wire.AppendAttr(b, "from", from)
	}
	if lang != "" {
		b = wire.AppendAttr(b, "xml:lang", lang)
	}
	return append(b, '>')
}

// Read implements net.Conn: the stream the requests carry.
func (s *session) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if len(s.in) > 0 {
			c := &s.in[0]
			if c.restart {
				if !s.restartOK {
					// XEP-0206 §5: a restart follows SASL's
					// success.
					return 0, &wire.Error{Condition: wire.CondBadFormat, Msg: "a stream restart is requested only after SASL succeeds"}
				}
				s.restartOK, c.restart = false, false
			}
			n := copy(p, c.b)
			s.inBytes -= n
			if c.b = c.b[n:]; len(c.b) == 0 {
				s.in[0] = inChunk{}
				s.in = s.in[1:]
			}
			// Requests that waited for the stream server to read.
			s.advanceLocked()
			return n, nil
		}
		if s.gone || s.closed {
			// Once what was sent is read.
			return 0, io.EOF
		}
		if !s.waitLocked(s.rdl) {
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// waitLocked waits, with s.mu released, until something changes or the
// deadline dl passes (false).
func (s *session) waitLocked(dl time.Time) bool {
	ch := s.changed
	var timeout <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return false
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-ch:
		return true
	case <-timeout:
		return false
	}
}

// StreamRestart lets the next restart request through: the stream server
// calls it when SASL succeeded (RFC 6120 §6.4.6).
func (s *session) StreamRestart() {
	s.mu.Lock()
	s.restartOK = true
	s.mu.Unlock()
}

// Write implements net.Conn: what the stream server writes is cut into
// its top-level elements, which wait, translated as for a WebSocket
// (wire.InheritedDecl), for a response. Once more than MaxBody waits, Write
// blocks until a response takes it, the deadline passes or the session
// ends, as a socket's write blocks on a full buffer.
func (s *session) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.gone {
		// Closed, or the client is gone or ended the session: what
		// the server writes would reach no one.
		return 0, net.ErrClosed
	}
	s.wpend = append(s.wpend, b...)
	off := 0
	if !s.ended {
		off = wire.CutUnits(s.wpend, func(kind wire.UnitKind, u []byte) bool {
			switch kind {
			case wire.UnitStreamEnd:
				s.ended = true
				return false
			case wire.UnitElement:
				at, decl := wire.InheritedDecl(u)
				dst := &s.payload
				if wire.StartsElement(u, "stream:error") {
					dst = &s.streamErr
				}
				*dst = append(*dst, u[:at]...)
				*dst = append(*dst, decl...)
				*dst = append(*dst, u[at:]...)
			}
			return true
		})
	}
	s.wpend = append(s.wpend[:0], s.wpend[off:]...)
	if len(s.wpend) > s.h.opts.MaxBody {
		// The server writes whole elements: one this long that does
		// not end is a fault.
		return 0, io.ErrShortWrite
	}
	s.flushLocked()
	for len(s.payload) > s.h.opts.MaxBody && !s.gone && !s.closed {
		if !s.waitLocked(s.wdl) {
			// The bytes are taken; what failed is the wait.
			return len(b), os.ErrDeadlineExceeded
		}
	}
	return len(b), nil
}

// Close implements net.Conn. A stream the server did not end (its
// connection to the client failed, or it was cut off) ends the session
// with remote-connection-failed once the client asks.
func (s *session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.ended {
		s.ended, s.endCond = true, condRemoteConnFailed
	}
	s.wakeLocked()
	s.flushLocked()
	return nil
}

// LocalAddr implements net.Conn: the address the creation request came to.
func (s *session) LocalAddr() net.Addr { return s.local }

// RemoteAddr implements net.Conn: the address the creation request came
// from.
func (s *session) RemoteAddr() net.Addr { return s.remote }

// SetDeadline implements net.Conn.
func (s *session) SetDeadline(t time.Time) error { return s.setDeadlines(&t, &t) }

// SetReadDeadline implements net.Conn.
func (s *session) SetReadDeadline(t time.Time) error { return s.setDeadlines(&t, nil) }

// SetWriteDeadline implements net.Conn.
func (s *session) SetWriteDeadline(t time.Time) error { return s.setDeadlines(nil, &t) }

// setDeadlines sets the read and write deadlines that are given and wakes
// a Read or Write waiting, to wait for the new ones.
func (s *session) setDeadlines(read, write *time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if read != nil {
		s.rdl = *read
	}
	if write != nil {
		s.wdl = *write
	}
	s.wakeLocked()
	return nil
}
