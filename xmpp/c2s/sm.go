package c2s

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// nsSM is the stream management namespace (XEP-0198).
const nsSM = "urn:xmpp:sm:3"

// smRequest asks the client for an acknowledgement (XEP-0198 §4).
const smRequest = "<r xmlns='urn:xmpp:sm:3'/>"

// resumeWait bounds how long a resumption waits for the session's old
// connection to let go of it (takeOver).
const resumeWait = 5 * time.Second

// phase is where a session stands with respect to its transport (guarded
// by conn.mu). Only a resumable session (XEP-0198 §5) leaves phaseLive
// before it ends.
type phase uint8

const (
	// phaseLive: a transport serves the session (or it has ended without
	// stream management).
	phaseLive phase = iota
	// phaseDetaching: the transport failed and hibernate is taking the
	// session off it.
	phaseDetaching
	// phaseDetached: hibernating, bound without a transport until the
	// client resumes it or sm.max passes.
	phaseDetached
	// phaseEnded: over, never to be resumed.
	phaseEnded
)

// smState is a session's stream management (XEP-0198), once the client
// enabled it.
type smState struct {
	// id is the SM-ID that names the session for resumption, "" if it
	// is not resumable; max how long it hibernates.
	id  string
	max time.Duration
	// in is 'h' for the client's stanzas: those the ingress loop
	// handled, modulo 2^32 (§4). Written by the ingress loop.
	in atomic.Uint32

	// Guarded by conn.mu.
	//
	// enabled is the queued <enabled/>: the stanzas written after it
	// are counted (§4: the counter starts when it is sent). acked is the
	// client's last 'h'; unacked holds the stanzas written since, oldest
	// first, so that acked+len(unacked) is the number sent. requested
	// says an <r/> of ours waits for its answer (one at a time), since
	// requestedAt; ackTimer (made once, reset for each <r/>) runs
	// ackDelayed MaxAckDelay after. lagging: it ran, and the client has
	// not answered since (endLagLocked).
	enabled      *xmpp.Stanza
	counting     bool
	acked        uint32
	unacked      []*xmpp.Stanza
	unackedBytes int
	requested    bool
	requestedAt  time.Time
	ackTimer     *time.Timer
	lagging      bool
	// request is an <r/> to queue (requestAgainLocked), made once.
	request *xmpp.Stanza
	// reported counts, like acked ('h' modulo 2^32), the stanzas the
	// Router.AckDelayed and Hibernated reports have carried: with acked
	// at or beyond it, none is pending that was. The order of pending
	// (pendingLocked) is that of writing but for what CSI held while a
	// batch was queued, which is written first: then the count may be
	// off by what was held.
	reported uint32
	// timer ends a hibernation; gen tells its hibernation from a later
	// one.
	timer *time.Timer
	gen   uint64
}

// written accounts for a batch the writer is about to write: once the
// <enabled/> is among what was written, each stanza waits in unacked for
// the client's 'h'. It reports whether to ask for an acknowledgement after
// the batch.
func (sm *smState) written(batch []*xmpp.Stanza) bool {
	for _, st := range batch {
		switch {
		case st == sm.enabled:
			sm.counting = true
		case sm.counting && !st.IsControl():
			sm.unacked = append(sm.unacked, st)
			sm.unackedBytes += len(st.Bytes())
		}
	}
	if !sm.counting || sm.requested || len(sm.unacked) == 0 {
		return false
	}
	sm.requested = true
	return true
}

// ack applies the client's 'h': the stanzas it acknowledges leave unacked.
// An 'h' above the number sent is an error (§6).
func (sm *smState) ack(h uint32) error {
	n := h - sm.acked // 'h' wraps at 2^32 (§4)
	if n > uint32(len(sm.unacked)) {
		return tooHigh(h, sm.acked+uint32(len(sm.unacked)))
	}
	for i := range int(n) {
		sm.unackedBytes -= len(sm.unacked[i].Bytes())
	}
	rest := copy(sm.unacked, sm.unacked[n:])
	clear(sm.unacked[rest:])
	sm.unacked = sm.unacked[:rest]
	sm.acked = h
	sm.requested = false
	return nil
}

// tooHigh is the stream error for an 'h' above the number of stanzas sent
// (§6); modulo 2^32, one below the last acknowledged is too.
func tooHigh(h, sent uint32) error {
	return &streamError{
		cond: "undefined-condition",
		text: fmt.Sprintf("you acknowledged %d stanzas, but %d were sent", h, sent),
		app:  fmt.Appendf(nil, "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='%d' send-count='%d'/>", h, sent),
	}
}

// parseH parses an 'h' attribute (xs:unsignedInt).
func parseH(s string) (uint32, bool) {
	h, err := strconv.ParseUint(s, 10, 32)
	return uint32(h), err == nil
}

// requestAgainLocked asks at once for the acknowledgement of what an <a/>
// left unacknowledged (written while the answer was on its way), as
// Prosody does: otherwise nothing would ask for it until the next stanza
// is written, and an answer that never comes would go unnoticed
// (ackDelayed). c.mu is held.
func (c *conn) requestAgainLocked() {
	sm := c.sm
	if len(sm.unacked) == 0 || sm.requested || c.closed || c.phase != phaseLive {
		return
	}
	if sm.request == nil {
		sm.request = xmpp.Control([]byte(smRequest))
	}
	sm.requested = true
	c.armAckTimerLocked()
	c.queue = append(c.queue, sm.request)
	c.qbytes += len(smRequest)
	// Not a reason to send what is held for an inactive client
	// (XEP-0352): it waits on.
	c.runWriterLocked()
}

// armAckTimerLocked starts the wait for the answer to the <r/> about to
// be written, or queued (c.mu held). The timer is not stopped when the
// answer comes: ackDelayed then finds nothing to do, and a reset for each
// <r/> costs less than a stop for each <a/> as well.
func (c *conn) armAckTimerLocked() {
	d := c.srv.opts.MaxAckDelay
	if d <= 0 {
		return
	}
	sm := c.sm
	sm.requestedAt = time.Now()
	if sm.ackTimer == nil {
		sm.ackTimer = time.AfterFunc(d, c.ackDelayed)
	} else {
		sm.ackTimer.Reset(d)
	}
}

// ackDelayed runs when the answer to an <r/> may be overdue: if it is, the
// client is lagging (not Connected) until it answers, and Router.AckDelayed
// gets what it did not acknowledge and what waits to be written (as
// Prosody's smacks_max_ack_delay: a push service learns of messages on a
// connection that died without a word, long before idle_timeout closes it).
func (c *conn) ackDelayed() {
	c.mu.Lock()
	sm := c.sm
	if c.phase != phaseLive || c.closed || !sm.requested || sm.lagging ||
		time.Since(sm.requestedAt) < c.srv.opts.MaxAckDelay {
		// Answered, closed, or a run of the timer reset meanwhile
		// (it runs again).
		c.mu.Unlock()
		return
	}
	sm.lagging = true
	pending := c.unreportedLocked()
	c.mu.Unlock()
	c.logger().Debug("stream management: acknowledgement overdue", "unreported", len(pending))
	if len(pending) > 0 {
		c.srv.deps.Router.AckDelayed(c.srv.ctx, c, pending)
	}
}

// unreportedLocked returns pendingLocked's stanzas but those an earlier
// report carried (smState.reported), and counts them as reported; c.mu is
// held.
func (c *conn) unreportedLocked() []*xmpp.Stanza {
	sm := c.sm
	all := c.pendingLocked()
	pending := all
	// Those reported come first: the acknowledged ones left pending.
	if skip := int32(sm.reported - sm.acked); skip > 0 {
		pending = all[min(int(skip), len(all)):]
	}
	sm.reported = sm.acked + uint32(len(all))
	return pending
}

// endLagLocked ends a lag (the client answered, or its transport
// failed): what came while it lagged went to a session not Connected, of
// which push notified as it came, and counts as reported; c.mu is held.
func (c *conn) endLagLocked() {
	if sm := c.sm; sm.lagging {
		sm.lagging = false
		sm.reported = sm.acked + c.pendingCountLocked()
	}
}

// Connected implements xmpp.Connected. A live session is connected unless
// its client lags; a hibernating one is not. A closing one is connected
// while what it takes is still accounted for: it hibernates (its
// transport failed, or a resumption takes it over: Router.Hibernated
// gets its pending stanzas, or its client is back) or hands it over as it
// ends (Router.Unacknowledged); one closed for good, by the server or the
// client, is not.
func (c *conn) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.sm != nil && c.sm.lagging:
		return false
	case c.phase == phaseLive && !c.closed:
		return true
	case c.phase == phaseDetached:
		return false
	}
	return c.keepsQueueLocked()
}

// smFailed is a <failed/> with a stanza error condition (§6).
func smFailed(cond string) []byte { return appendFailed(nil, cond, "") }

// appendFailed appends a <failed/> with a stanza error condition and, if
// not empty, an 'h' (§5: that of a resumable session that ended).
func appendFailed(b []byte, cond, h string) []byte {
	b = append(b, "<failed xmlns='urn:xmpp:sm:3'"...)
	if h != "" {
		b = append(b, " h='"+h+"'"...)
	}
	return append(b, "><"+cond+" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"...)
}

// smElement handles a stream management element the client sent after
// binding a resource.
func (c *conn) smElement(el *wire.Element) error {
	switch el.Name {
	case "enable":
		if c.sm != nil {
			// §3: one attempt only; answered as the XEP's example
			// does, and the stream goes on.
			c.queueControl(smFailed("unexpected-request"))
			return nil
		}
		c.enableSM(el)
	case "r":
		// Without stream management, ignored (there is no 'h').
		if sm := c.sm; sm != nil {
			c.queueControl(fmt.Appendf(nil, "<a xmlns='urn:xmpp:sm:3' h='%d'/>", sm.in.Load()))
		}
	case "a":
		if c.sm == nil {
			return nil
		}
		h, ok := parseH(el.AttrValue("h"))
		if !ok {
			return serr("invalid-xml", "an <a/> needs an 'h', an unsigned 32-bit number")
		}
		c.mu.Lock()
		err := c.sm.ack(h)
		if err == nil {
			c.endLagLocked()
			c.requestAgainLocked()
		}
		c.mu.Unlock()
		return err
	case "resume":
		// §5: in place of binding a resource, not after.
		c.queueControl(smFailed("unexpected-request"))
	default:
		return serr("unsupported-stanza-type", "")
	}
	return nil
}

// smNegotiating handles a stream management element before a resource is
// bound: a resumption once authenticated (returning the session resumed),
// <failed/> to an early <enable/> (§3).
func (c *conn) smNegotiating(el *wire.Element) (*conn, error) {
	switch el.Name {
	case "resume":
		if c.authed != "" {
			return c.resume(el)
		}
		return nil, c.write(smFailed("unexpected-request"))
	case "enable":
		return nil, c.write(smFailed("unexpected-request"))
	case "r", "a":
		return nil, nil // nothing enabled: ignored
	}
	return nil, serr("unsupported-stanza-type", "")
}

// queueControl queues a stream management element among the stanzas.
func (c *conn) queueControl(b []byte) {
	c.mu.Lock()
	if !c.closed {
		c.queue = append(c.queue, xmpp.Control(b))
		c.qbytes += len(b)
		c.kickLocked()
	}
	c.mu.Unlock()
}

// enableSM enables stream management (§3), resumable if the client asks
// and resumption is on, for the shorter of the client's 'max' and
// ResumeTimeout.
func (c *conn) enableSM(el *wire.Element) {
	sm := &smState{}
	b := []byte("<enabled xmlns='urn:xmpp:sm:3'")
	if timeout := c.srv.opts.ResumeTimeout; timeout > 0 && (el.AttrValue("resume") == "true" || el.AttrValue("resume") == "1") {
		sm.max = timeout
		if m, err := strconv.ParseUint(el.AttrValue("max"), 10, 32); err == nil && m > 0 && time.Duration(m)*time.Second < timeout {
			sm.max = time.Duration(m) * time.Second
		}
		sm.id = c.srv.addResumable(c)
		b = append(b, " id='"...)
		b = append(b, sm.id...)
		b = append(b, "' resume='true' max='"...)
		// Whole seconds, rounded down: the client must not count on more.
		b = strconv.AppendInt(b, max(1, int64(sm.max/time.Second)), 10)
		b = append(b, '\'')
	}
	b = append(b, "/>"...)
	sm.enabled = xmpp.Control(b)
	c.mu.Lock()
	c.sm = sm
	if !c.closed {
		c.queue = append(c.queue, sm.enabled)
		c.qbytes += len(b)
		c.kickLocked()
	}
	c.mu.Unlock()
}

// addResumable registers c's session for resumption and returns its
// SM-ID, unguessable: with the account's credentials it is what a
// resumption needs (§9).
func (s *Server) addResumable(c *conn) string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	s.resumable[id] = c
	s.resumablePeak.Grew(len(s.resumable))
	s.mu.Unlock()
	return id
}

func (s *Server) forgetResumable(c *conn) {
	if c.sm.id == "" {
		return
	}
	s.mu.Lock()
	if s.resumable[c.sm.id] == c {
		delete(s.resumable, c.sm.id)
		s.resumable = xmpp.CompactMap(s.resumable, &s.resumablePeak)
		// Its client may still try to resume it (endedCounts).
		s.ended.add(c.sm.id, endedCount{host: c.host, authed: c.authed, h: c.sm.in.Load()})
	}
	s.mu.Unlock()
}

// keepsQueueLocked says a closed session still takes stanzas: its
// transport failed, or a resumption takes it over, and it hibernates
// (or ends, and hands them over then).
func (c *conn) keepsQueueLocked() bool {
	switch c.phase {
	case phaseDetaching, phaseDetached:
		return true
	case phaseEnded:
		// Until ended hands what it holds over, a stanza routed to it
		// goes with the rest.
		return !c.handedOver
	}
	return c.sm != nil && c.sm.id != "" && !c.kicked && (c.broken || c.replacing)
}

// overflowDetachedLocked ends a session that hibernates (or is about to,
// or ends) whose outbox overflowed: it would only grow until its end. st,
// the stanza that overflowed it, is handed over with the rest (ended). c.mu
// is held and released.
func (c *conn) overflowDetachedLocked(st *xmpp.Stanza) bool {
	if c.handedOver {
		c.mu.Unlock()
		return false
	}
	c.releaseLocked()
	c.queue = append(c.queue, st)
	c.qbytes += len(st.Bytes())
	c.kicked = true
	if c.phase != phaseDetached {
		// hibernate sees kicked and lets it end, or it is ending.
		c.mu.Unlock()
		return true
	}
	c.phase, c.closed = phaseEnded, true
	c.mu.Unlock()
	c.logger().Warn("hibernating session's outbox full: ending it")
	go c.terminate(c.srv.ctx)
	return true
}

// Hibernating reports whether the session waits for a resumption without
// a connection: the router lets a new session replace it whatever the
// conflict policy, and before refusing one over the session limit.
func (c *conn) Hibernating() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase == phaseDetached
}

// hibernate keeps a resumable session bound when its transport fails,
// without a transport, for sm.max (§5; §7: a stream that was not closed
// cleanly is unfinished); it reports false when the session ends instead:
// stream management not resumable, a clean close, a stream error, or a
// close by the server, which always wins.
func (c *conn) hibernate(err error) bool {
	c.mu.Lock()
	sm := c.sm
	if sm == nil || sm.id == "" || c.phase != phaseLive || c.kicked {
		c.mu.Unlock()
		return false
	}
	if !c.replacing {
		if cond, _, _ := c.endCondition(err, false); cond != "-" && cond != "connection-timeout" {
			c.mu.Unlock()
			return false
		}
	}
	c.phase = phaseDetaching
	nc := c.nc
	c.mu.Unlock()
	// A writer blocked on the failed transport returns; none starts
	// again (kickLocked) before a resumption.
	nc.Close()
	c.writers.Wait()
	c.mu.Lock()
	if c.kicked {
		// Closed by the server meanwhile (shutdown, a new bind of the
		// resource, an overflow): the session ends after all.
		c.phase = phaseLive
		c.mu.Unlock()
		return false
	}
	c.phase = phaseDetached
	// A resumption taking the session over (replacing) waits for this
	// hibernation: the client is back already.
	resuming := c.replacing
	c.closed, c.kicked, c.broken, c.replacing = false, false, false, false
	c.closeCond, c.closeText, c.closeApp = "", "", nil
	c.writing, c.head, c.held, c.flushBy = false, nil, false, time.Time{}
	c.endLagLocked()
	sm.requested = false
	if sm.ackTimer != nil {
		sm.ackTimer.Stop()
	}
	sm.gen++
	gen := sm.gen
	sm.timer = time.AfterFunc(sm.max, func() { c.expire(gen) })
	c.wakeLocked()
	var pending []*xmpp.Stanza
	if !resuming {
		pending = c.unreportedLocked()
	}
	c.mu.Unlock()
	// The session still counts towards its address's connection limit:
	// hibernating sessions are not a way around it.
	c.logger().Info("session hibernating", "resume_within", sm.max)
	if !resuming {
		c.srv.deps.Router.Hibernated(c.srv.ctx, c, pending)
	}
	return true
}

// pendingCountLocked is len(pendingLocked()), without the slice.
func (c *conn) pendingCountLocked() uint32 {
	n := len(c.sm.unacked)
	for _, st := range c.queue {
		if !st.IsControl() {
			n++
		}
	}
	if c.hold != nil {
		n += len(c.hold.stanzas)
	}
	return uint32(n)
}

// pendingLocked returns, in a new slice, what the client was sent and did
// not acknowledge, then what waits to be written and what is held for it
// while inactive (XEP-0352), in the order ended would hand them over.
func (c *conn) pendingLocked() []*xmpp.Stanza {
	var out []*xmpp.Stanza
	if c.sm != nil {
		out = append(out, c.sm.unacked...)
	}
	for _, st := range c.queue {
		if !st.IsControl() {
			out = append(out, st)
		}
	}
	if h := c.hold; h != nil {
		out = append(out, h.stanzas...)
	}
	return out
}

// wakeLocked wakes a resumption waiting for the session to hibernate or
// end.
func (c *conn) wakeLocked() {
	if c.parked != nil {
		close(c.parked)
		c.parked = nil
	}
}

// expire ends a session not resumed in time since hibernation gen.
func (c *conn) expire(gen uint64) {
	c.mu.Lock()
	if c.phase != phaseDetached || c.sm.gen != gen {
		c.mu.Unlock()
		return
	}
	c.phase, c.closed = phaseEnded, true
	c.mu.Unlock()
	c.logger().Info("session not resumed in time")
	c.terminate(c.srv.ctx)
}

// terminate ends a hibernating session (its phase already phaseEnded): what
// it held is handed over (ended), and it is unbound, which broadcasts its
// unavailable presence (RFC 6121 §4.5.2).
func (c *conn) terminate(ctx context.Context) {
	c.mu.Lock()
	if t := c.sm.timer; t != nil {
		t.Stop()
	}
	c.mu.Unlock()
	// No longer resumable, and its count kept (endedCounts). Then it
	// leaves the account's available resources: messages routed to it
	// meanwhile are not taken (Deliver fails) and go where the router
	// sends them, and offline storage passes it over while it hands
	// over. What it holds goes first, then its unavailable presence:
	// its contacts see it leave once what it held is settled.
	c.srv.forgetResumable(c)
	c.srv.deps.Router.Leaving(c)
	c.ended(ctx)
	c.srv.deps.Router.Unbind(ctx, c, c.full)
	c.logger().Info("session closed")
	c.srv.release(c)
}

// ended finishes the stream management of a session that is over (no
// longer resumable: forgetResumable), once no writer runs: the stanzas
// written but not acknowledged, and those never written, go to the router
// as stanzas for a resource that is no longer there (§4).
func (c *conn) ended(ctx context.Context) {
	c.mu.Lock()
	if t := c.sm.ackTimer; t != nil {
		t.Stop()
	}
	c.phase, c.handedOver = phaseEnded, true
	c.wakeLocked()
	left := c.pendingLocked()
	c.releaseLocked()
	c.sm.unacked, c.sm.unackedBytes = nil, 0
	c.queue, c.qbytes = nil, 0
	c.mu.Unlock()
	if len(left) > 0 {
		c.srv.deps.Router.Unacknowledged(ctx, c, left)
	}
}

// resumed is what negotiate returns when the stream resumed a session.
type resumed struct{ conn *conn }

func (r *resumed) Error() string { return "c2s: stream resumed a session" }

// errNotResumable: the session is gone, or did not let go in time.
var errNotResumable = errors.New("c2s: session not resumable")

// resume answers a <resume/> after authentication (§5). It returns the
// session this stream now serves, or nil with a <failed/> sent, after which
// the client may bind a resource.
func (c *conn) resume(el *wire.Element) (*conn, error) {
	h, ok := parseH(el.AttrValue("h"))
	previd := el.AttrValue("previd")
	if !ok || previd == "" {
		return nil, c.write(smFailed("bad-request"))
	}
	if c.srv.opts.ResumeTimeout <= 0 {
		return nil, c.write(smFailed("feature-not-implemented"))
	}
	c.srv.mu.Lock()
	old := c.srv.resumable[previd]
	c.srv.mu.Unlock()
	if old == nil || old.host != c.host || old.authed != c.authed {
		// Unknown, over, or another account's: all look the same,
		// but for the 'h' of this account's session that ended.
		return nil, c.write(c.srv.failedResume(previd, c))
	}
	if err := old.takeOver(c, h); err != nil {
		if errors.Is(err, errNotResumable) {
			return nil, c.write(c.srv.failedResume(previd, c))
		}
		return nil, err
	}
	return old, nil
}

// takeOver moves the session onto n's transport, with what the client did
// not acknowledge ('h') written again after a <resumed/>, then what came
// meanwhile (§5). A session still on a connection is taken off it first,
// with a conflict stream error (§5). An 'h' above what was sent is a
// stream error for n; the session hibernates on.
//
// Lock order: c.mu, then srv.mu.
func (c *conn) takeOver(n *conn, h uint32) error {
	c.mu.Lock()
	if c.kicked {
		// Being closed by the server: it ends.
		c.mu.Unlock()
		return errNotResumable
	}
	if c.phase == phaseLive || c.phase == phaseDetaching {
		// What is queued, and what is held for an inactive client,
		// will be written before the old stream ends: an 'h' beyond
		// that cannot be right, and leaves the session alone (still
		// holding: nothing is released for a refused resumption).
		most := c.pendingCountLocked()
		if h-c.sm.acked > most {
			c.mu.Unlock()
			return tooHigh(h, c.sm.acked+most)
		}
	}
	for c.phase == phaseLive || c.phase == phaseDetaching {
		if c.phase == phaseLive && !c.replacing {
			c.replacing = true
			if !c.closed {
				c.closed = true
				c.closeCond, c.closeText = "conflict", "replaced by a resumed stream"
			}
			// A second for the old transport to take it, as a
			// slow consumer gets.
			c.flushBy = time.Now().Add(time.Second)
			_ = c.nc.SetWriteDeadline(c.flushBy)
			c.kickLocked()
		}
		if c.parked == nil {
			c.parked = make(chan struct{})
		}
		parked := c.parked
		c.mu.Unlock()
		t := time.NewTimer(resumeWait)
		select {
		case <-parked:
			t.Stop()
		case <-t.C:
			return errNotResumable
		}
		c.mu.Lock()
	}
	if c.phase != phaseDetached {
		c.mu.Unlock()
		return errNotResumable
	}
	c.releaseLocked() // what was held goes with the queue
	sm := c.sm
	acked, unacked := sm.acked, len(sm.unacked)
	if err := sm.ack(h); err != nil {
		c.mu.Unlock()
		return err
	}
	if !c.srv.adopt(c, n) {
		c.mu.Unlock()
		return errNotResumable
	}
	sm.timer.Stop() // expire finds the phase changed if it already runs
	b := fmt.Appendf(nil, "<resumed xmlns='urn:xmpp:sm:3' h='%d' previd='%s'/>", sm.in.Load(), sm.id)
	// Stream management elements queued for the old stream (an <a/>
	// with an older 'h', a <failed/>) are not for this one.
	q := make([]*xmpp.Stanza, 0, 1+len(sm.unacked)+len(c.queue))
	q = append(append(q, xmpp.Control(b)), sm.unacked...)
	qbytes := len(b) + sm.unackedBytes
	for _, st := range c.queue {
		if !st.IsControl() {
			q = append(q, st)
			qbytes += len(st.Bytes())
		}
	}
	c.queue, c.qbytes = q, qbytes
	clear(sm.unacked)
	sm.unacked, sm.unackedBytes = sm.unacked[:0], 0
	c.phase = phaseLive
	// XEP-0352 §5: a resumed stream is active.
	c.inactive = false
	c.kickLocked()
	c.mu.Unlock()
	c.logger().Info("session resumed", "conn", n.id, "remote", n.remote,
		"acknowledged", h-acked, "resent", unacked-int(h-acked))
	return nil
}

// adopt gives c, a hibernating session, the transport of n, a connection
// that authenticated and asked to resume it: n's place among the
// connections (and its address's count) becomes c's, and c's old address
// is counted no more. False while shutting down. c.mu is held.
func (s *Server) adopt(c, n *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.releaseIPLocked(c) // the old connection's address
	c.raw, c.nc, c.in, c.dec = n.raw, n.nc, n.in, n.dec
	c.secure, c.directTLS, c.framed = n.secure, n.directTLS, n.framed
	c.in.conn = c
	c.direct = nil // the old socket's; unused with stream management
	c.in.deadline, c.in.fresh, c.in.armed, c.in.pinged = time.Time{}, false, armedNone, false
	_ = c.nc.SetReadDeadline(time.Time{})
	c.ipHeld, n.ipHeld = n.ipHeld, false
	delete(s.conns, n)
	s.conns = xmpp.CompactMap(s.conns, &s.connsPeak)
	s.wg.Done() // n's; its goroutine goes on as c's ingress
	return true
}

// serveResumed serves a resumed session on the goroutine of the
// connection that resumed it.
func (c *conn) serveResumed(ctx context.Context) {
	defer c.recoverPanic(ctx)
	c.endOrPark(ctx, c.serve(ctx))
}
