package server_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// Stream management (XEP-0198) over raw streams: acknowledgements both
// ways, resumption, hibernation and its end, and the errors.

const nsSM = "urn:xmpp:sm:3"

// smRaw is a raw client stream that keeps its stream management counter:
// the stanzas it has read since <enabled/> or <resumed/> (its 'h').
type smRaw struct {
	*servertest.Raw
	h        uint32
	counting bool
	requests int // <r/> elements read
}

// next reads until an element matching match, counting stanzas.
func (r *smRaw) next(t testing.TB, match func(*wire.Element) bool) *wire.Element {
	t.Helper()
	for {
		el := readEl(t, r.Raw)
		r.count(el)
		if el.Space == wire.NSStream && el.Name == "error" && !match(el) {
			t.Fatalf("stream error while waiting: %s", el)
		}
		if match(el) {
			return el
		}
	}
}

// count counts el, read from the stream: a stanza towards 'h' once
// counting, <enabled/> or <resumed/> starts it, and the server's <r/>,
// for which it returns the answer (else ""). It fails nothing, so that a
// goroutine other than the test's may read with it.
func (r *smRaw) count(el *wire.Element) (answer string) {
	switch {
	case el.Space == wire.NSClient && (el.Name == "message" || el.Name == "presence" || el.Name == "iq"):
		if r.counting {
			r.h++
		}
	case el.Space == nsSM && (el.Name == "enabled" || el.Name == "resumed"):
		r.counting = true
	case el.Space == nsSM && el.Name == "r":
		r.requests++
		return fmt.Sprintf("<a xmlns='urn:xmpp:sm:3' h='%d'/>", r.h)
	}
	return ""
}

func smNamed(name string) func(*wire.Element) bool {
	return func(e *wire.Element) bool { return e.Space == nsSM && e.Name == name }
}

// smFailed checks a <failed/> with the stanza error condition cond.
func smFailed(t testing.TB, el *wire.Element, cond string) {
	t.Helper()
	if el.Name != "failed" || el.Space != nsSM || el.Child(cond, "urn:ietf:params:xml:ns:xmpp-stanzas") == nil {
		t.Fatalf("want <failed/> with %s, got %s", cond, el)
	}
}

// smLogin authenticates local over a raw stream, checks that stream
// management is offered, binds resource and sends enable ("" for none); it
// returns the stream, the full JID and the <enabled/> answer.
func smLogin(t testing.TB, s *servertest.Server, local, resource, enable string) (*smRaw, string, *wire.Element) {
	t.Helper()
	r, feats := authRaw(t, s, local, ftPassword)
	if feats.Child("sm", nsSM) == nil {
		t.Fatalf("stream management not offered after authentication: %s", feats)
	}
	el := bindRaw(t, r, resource)
	full := el.Child("bind", nsBindRes).ChildText("jid", nsBindRes)
	if full == "" {
		t.Fatalf("bind: %s", el)
	}
	sr := &smRaw{Raw: r}
	if enable == "" {
		return sr, full, nil
	}
	sr.Write(t, enable)
	return sr, full, sr.next(t, smNamed("enabled"))
}

// smResume authenticates local on a new stream and asks to resume previd
// with h; it returns the stream, counting from h, and the answer.
func smResume(t testing.TB, s *servertest.Server, local, previd string, h uint32) (*smRaw, *wire.Element) {
	t.Helper()
	r, _ := authRaw(t, s, local, ftPassword)
	sr := &smRaw{Raw: r, h: h}
	sr.Write(t, fmt.Sprintf("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>", previd, h))
	el := readEl(t, r)
	if el.Space == nsSM && el.Name == "resumed" {
		sr.counting = true
	}
	return sr, el
}

// smFriends makes alice and bob friends on s, logs bob in available, and
// alice with stream management (enable), available too, each having seen
// the other's presence; it returns alice's stream, full JID and
// <enabled/>, and bob's client.
func smFriends(t testing.TB, s *servertest.Server, enable string) (a *smRaw, afull string, enabled *wire.Element, b *servertest.Client) {
	t.Helper()
	alice := s.AddUser(t, "alice", ftPassword)
	bob := s.AddUser(t, "bob", ftPassword)
	ftSubscribe(t, s, alice, bob, true)
	b = ftLogin(t, s, bob, "desk")
	ftOnline(t, b, "<presence/>")
	a, afull, enabled = smLogin(t, s, "alice", "phone", enable)
	a.Write(t, "<presence/>")
	b.Next(t, ftWait, ftPresence("", afull))
	a.next(t, ftPresence("", b.JID.String()))
	return a, afull, enabled, b
}

func smMessage(id string) func(*wire.Element) bool {
	return func(e *wire.Element) bool { return e.Name == "message" && e.AttrValue("id") == id }
}

// TestSMAcks: acknowledgements both ways (XEP-0198 §4) and the errors of a
// bound stream (§3, §6).
func TestSMAcks(t *testing.T) {
	s := servertest.Start(t)
	s.AddUser(t, "alice", ftPassword)
	bob := s.AddUser(t, "bob", ftPassword)
	a, afull, enabled := smLogin(t, s, "alice", "phone", "<enable xmlns='urn:xmpp:sm:3'/>")
	if enabled.AttrValue("id") != "" || enabled.AttrValue("resume") != "" {
		t.Fatalf("resumption not asked for, but enabled: %s", enabled)
	}
	b := ftLogin(t, s, bob, "desk")

	// The server's stanzas are counted and it asks for an ack.
	for i := 1; i <= 3; i++ {
		ftSend(t, b, "<message to='%s' id='m%d' type='chat'><body>hello %d</body></message>", afull, i, i)
	}
	for i := 1; i <= 3; i++ {
		a.next(t, smMessage("m"+strconv.Itoa(i)))
	}
	if a.requests == 0 {
		a.next(t, smNamed("r"))
	}
	if a.h != 3 {
		t.Fatalf("alice counted %d stanzas, want 3", a.h)
	}
	a.Write(t, "<a xmlns='urn:xmpp:sm:3' h='3'/>")

	// The client's stanzas: routed or answered, each counts.
	a.Write(t, fmt.Sprintf("<message to='%s' id='out1' type='chat'><body>hi bob</body></message>", b.JID))
	a.Write(t, "<iq type='get' id='ping1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Write(t, "<r xmlns='urn:xmpp:sm:3'/>")
	a.next(t, ftWithID("iq", "ping1"))
	if ack := a.next(t, smNamed("a")); ack.AttrValue("h") != "2" {
		t.Fatalf("server's ack after 2 stanzas: %s", ack)
	}
	b.Next(t, ftWait, ftWithID("message", "out1"))

	// One enable per stream; no resumption once bound. The stream
	// goes on.
	a.Write(t, "<enable xmlns='urn:xmpp:sm:3'/>")
	smFailed(t, a.next(t, smNamed("failed")), "unexpected-request")
	a.Write(t, "<resume xmlns='urn:xmpp:sm:3' previd='x' h='0'/>")
	smFailed(t, a.next(t, smNamed("failed")), "unexpected-request")
	a.Write(t, "<r xmlns='urn:xmpp:sm:3'/>")
	if ack := a.next(t, smNamed("a")); ack.AttrValue("h") != "2" {
		t.Fatalf("ack after the refused elements: %s", ack)
	}

	// §6: an 'h' above what was sent ends the stream.
	a.Write(t, "<a xmlns='urn:xmpp:sm:3' h='99'/>")
	el := a.next(t, func(e *wire.Element) bool { return e.Space == wire.NSStream && e.Name == "error" })
	if el.Child("undefined-condition", "urn:ietf:params:xml:ns:xmpp-streams") == nil {
		t.Fatalf("stream error: %s", el)
	}
	hc := el.Child("handled-count-too-high", nsSM)
	if hc == nil || hc.AttrValue("h") != "99" || hc.AttrValue("send-count") != strconv.Itoa(int(a.h)) {
		t.Fatalf("want handled-count-too-high h=99 send-count=%d: %s", a.h, el)
	}
}

// TestSMNegotiationErrors: stream management before its time (§3, §5) and
// malformed elements.
func TestSMNegotiationErrors(t *testing.T) {
	s := servertest.Start(t)
	s.AddUser(t, "alice", ftPassword)

	// Before authentication: no enable, no resume.
	r, _ := tlsOpen(t, s)
	r.Write(t, "<enable xmlns='urn:xmpp:sm:3'/>")
	smFailed(t, readEl(t, r), "unexpected-request")
	r.Write(t, "<resume xmlns='urn:xmpp:sm:3' previd='x' h='0'/>")
	smFailed(t, readEl(t, r), "unexpected-request")

	// Authenticated but not bound: enable fails, acks are ignored, and
	// binding still works; so does a resumption that fails.
	r, _ = authRaw(t, s, "alice", ftPassword)
	r.Write(t, "<enable xmlns='urn:xmpp:sm:3'/><r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='5'/>")
	smFailed(t, readEl(t, r), "unexpected-request")
	r.Write(t, "<resume xmlns='urn:xmpp:sm:3' previd='no-such-session' h='0'/>")
	smFailed(t, readEl(t, r), "item-not-found")
	r.Write(t, "<resume xmlns='urn:xmpp:sm:3' previd='x' h='-1'/>")
	smFailed(t, readEl(t, r), "bad-request")
	if el := bindRaw(t, r, "phone"); el.AttrValue("type") != "result" {
		t.Fatalf("bind after the failures: %s", el)
	}

	// An <a/> without a valid 'h' is invalid XML for the schema.
	a, _, _ := smLogin(t, s, "alice", "laptop", "<enable xmlns='urn:xmpp:sm:3'/>")
	a.Write(t, "<a xmlns='urn:xmpp:sm:3'/>")
	if cond := a.StreamError(t); cond != "invalid-xml" {
		t.Fatalf("<a/> without h: %s", cond)
	}
	// An element of the namespace a client does not send.
	a, _, _ = smLogin(t, s, "alice", "tablet", "<enable xmlns='urn:xmpp:sm:3'/>")
	a.Write(t, "<enabled xmlns='urn:xmpp:sm:3'/>")
	if cond := a.StreamError(t); cond != "unsupported-stanza-type" {
		t.Fatalf("<enabled/> from the client: %s", cond)
	}
}

// TestSMResume: a broken connection leaves the session bound and
// available (§7); a new stream resumes it (§5) and gets what the client
// did not acknowledge and what came meanwhile, in order.
func TestSMResume(t *testing.T) {
	s := servertest.Start(t)
	a, afull, enabled, b := smFriends(t, s, "<enable xmlns='urn:xmpp:sm:3' resume='true' max='60'/>")
	id := enabled.AttrValue("id")
	if id == "" || enabled.AttrValue("resume") != "true" || enabled.AttrValue("max") != "60" {
		t.Fatalf("want a resumable session for the client's 60 s: %s", enabled)
	}
	ftSend(t, b, "<message to='alice@localhost' id='m1' type='chat'><body>one</body></message>")
	a.next(t, smMessage("m1"))
	// The client handled everything but m1 and the connection breaks.
	h := a.h - 1
	a.Conn.Close()

	// Hibernating: still available to bob, and taking his messages.
	ftSend(t, b, "<message to='%s' id='m2' type='chat'><body>two</body></message>", afull)
	b.NoMore(t, 300*time.Millisecond, ftPresence("unavailable", afull))

	a2, res := smResume(t, s, "alice", id, h)
	if res.Name != "resumed" || res.Space != nsSM || res.AttrValue("previd") != id {
		t.Fatalf("resume: %s", res)
	}
	// The server handled one stanza of alice's: her presence.
	if res.AttrValue("h") != "1" {
		t.Fatalf("resumed with h=%s, want 1", res.AttrValue("h"))
	}
	if el := a2.next(t, func(e *wire.Element) bool { return e.Name == "message" }); el.AttrValue("id") != "m1" {
		t.Fatalf("first after resumption: %s, want m1 again", el)
	}
	if el := a2.next(t, func(e *wire.Element) bool { return e.Name == "message" }); el.AttrValue("id") != "m2" {
		t.Fatalf("second after resumption: %s, want m2", el)
	}
	// The same session: same full JID, the counters carried over.
	a2.Write(t, fmt.Sprintf("<message to='%s' id='back' type='chat'><body>back</body></message>", b.JID.Bare()))
	if el := b.Next(t, ftWait, ftWithID("message", "back")); el.AttrValue("from") != afull {
		t.Fatalf("from %s, want %s", el.AttrValue("from"), afull)
	}
	a2.Write(t, "<r xmlns='urn:xmpp:sm:3'/>")
	if ack := a2.next(t, smNamed("a")); ack.AttrValue("h") != "2" {
		t.Fatalf("ack after the resumption: %s, want h=2", ack)
	}
	a2.Write(t, fmt.Sprintf("<a xmlns='urn:xmpp:sm:3' h='%d'/>", a2.h))
	b.NoMore(t, 100*time.Millisecond, ftPresence("unavailable", afull))

	// A clean close ends the session at once: no hibernation (§7). A
	// resumption then fails, with the count of what the server handled:
	// her presence and "back".
	a2.Write(t, "</stream:stream>")
	b.Next(t, ftWait, ftPresence("unavailable", afull))
	_, res = smResume(t, s, "alice", id, a2.h)
	smFailed(t, res, "item-not-found")
	if res.AttrValue("h") != "2" {
		t.Fatalf("failed resumption of an ended session: %s, want h='2'", res)
	}
}

// TestSMResumeRefused: another account cannot resume a session; a bad or
// too high 'h' is refused and leaves the session resumable; a stream still
// open is replaced with a conflict stream error (§5).
func TestSMResumeRefused(t *testing.T) {
	s := servertest.Start(t)
	s.AddUser(t, "alice", ftPassword)
	s.AddUser(t, "mallory", ftPassword)
	a, _, enabled := smLogin(t, s, "alice", "phone", "<enable xmlns='urn:xmpp:sm:3' resume='1'/>")
	id := enabled.AttrValue("id")
	if enabled.AttrValue("max") != "300" {
		t.Fatalf("the server's 5 minutes by default: %s", enabled)
	}

	m, res := smResume(t, s, "mallory", id, 0)
	smFailed(t, res, "item-not-found")
	if el := bindRaw(t, m.Raw, "x"); el.AttrValue("type") != "result" {
		t.Fatalf("bind after a failed resumption: %s", el)
	}

	_, res = smResume(t, s, "alice", id, 5)
	if res.Name != "error" || res.Child("handled-count-too-high", nsSM) == nil {
		t.Fatalf("resume with an 'h' above what was sent: %s", res)
	}

	// The session was untouched: resumed now, from a second stream
	// while the first is still open.
	a2, res := smResume(t, s, "alice", id, 0)
	if res.Name != "resumed" {
		t.Fatalf("resume: %s", res)
	}
	if cond := a.StreamError(t); cond != "conflict" {
		t.Fatalf("the replaced stream: %s, want conflict", cond)
	}
	a2.Write(t, "<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	a2.next(t, ftWithID("iq", "p"))
	// Left hibernating: the server's shutdown (the test's cleanup) ends
	// it rather than waiting for it.
	a2.Conn.Close()
}

// TestSMHibernatingGivesWay: a hibernating session does not keep its
// client from binding its resource again under the refuse policy, nor
// another resource at the session limit.
func TestSMHibernatingGivesWay(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.C2S.ResourceConflict = config.Refuse
		c.Limits.MaxSessionsPerUser = 1
	}))
	s.AddUser(t, "alice", ftPassword)
	a, _, _ := smLogin(t, s, "alice", "phone", "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	a.Conn.Close()
	// The server notices the broken connection at once: this bind is
	// refused as long as the old session is connected, and succeeds
	// once it hibernates.
	var r *servertest.Raw
	deadline := time.Now().Add(ftWait)
	for {
		var el *wire.Element
		r, _ = authRaw(t, s, "alice", ftPassword)
		if el = bindRaw(t, r, "phone"); el.AttrValue("type") == "result" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bind over a hibernating session: %s", el)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Write(t, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	if el := readEl(t, r); el.Name != "enabled" {
		t.Fatalf("enable: %s", el)
	}
	r.Conn.Close()
	deadline = time.Now().Add(ftWait)
	for {
		r, _ = authRaw(t, s, "alice", ftPassword)
		el := bindRaw(t, r, "laptop")
		if el.AttrValue("type") == "result" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bind at the session limit over a hibernating session: %s", el)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A connected session is not replaced.
	r2, _ := authRaw(t, s, "alice", ftPassword)
	if el := bindRaw(t, r2, "tablet"); el.AttrValue("type") != "error" {
		t.Fatalf("bind over the limit of connected sessions: %s", el)
	}
}

// TestSMHibernationEnds: a session not resumed in time ends: its
// unavailable presence goes out and the message its client never
// acknowledged waits in offline storage (§4). The resumption that comes
// too late fails with the count of the stanzas the server handled (§5),
// which another account is not told.
func TestSMHibernationEnds(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.C2S.ResumeTimeout = config.Duration(time.Second)
	}))
	s.AddUser(t, "mallory", ftPassword)
	a, afull, enabled, b := smFriends(t, s, "<enable xmlns='urn:xmpp:sm:3' resume='true' max='600'/>")
	if enabled.AttrValue("max") != "1" {
		t.Fatalf("the server's limit of 1 s: %s", enabled)
	}
	ftSend(t, b, "<message to='%s' id='lost' type='chat'><body>did you get this?</body></message>", afull)
	a.next(t, smMessage("lost"))
	a.Conn.Close()

	b.Next(t, ftWait, ftPresence("unavailable", afull))
	_, res := smResume(t, s, "mallory", enabled.AttrValue("id"), 0)
	smFailed(t, res, "item-not-found")
	if res.AttrValue("h") != "" {
		t.Fatalf("another account's resumption failed with %s: it learns the count", res)
	}
	r, res := smResume(t, s, "alice", enabled.AttrValue("id"), a.h)
	smFailed(t, res, "item-not-found")
	if res.AttrValue("h") != "1" { // her presence
		t.Fatalf("failed resumption: %s, want h='1'", res)
	}
	if el := bindRaw(t, r.Raw, "phone"); el.AttrValue("type") != "result" {
		t.Fatalf("bind: %s", el)
	}
	r.Write(t, "<presence/>")
	el := r.next(t, smMessage("lost"))
	if el.Child("delay", "urn:xmpp:delay") == nil {
		t.Fatalf("from offline storage without a delay: %s", el)
	}
}

// TestSMNewBindEndsHibernation: a client that binds its resource again
// instead of resuming ends the hibernating session, and gets what that one
// never acknowledged.
func TestSMNewBindEndsHibernation(t *testing.T) {
	s := servertest.Start(t)
	a, afull, _, b := smFriends(t, s, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	ftSend(t, b, "<message to='alice@localhost' id='m1' type='chat'><body>one</body></message>")
	a.next(t, smMessage("m1"))
	a.Conn.Close()
	ftSend(t, b, "<message to='%s' id='m2' type='chat'><body>two</body></message>", afull)
	b.NoMore(t, 200*time.Millisecond, ftPresence("unavailable", afull))

	a2, full2, _ := smLogin(t, s, "alice", "phone", "")
	if full2 != afull {
		t.Fatalf("bound %s, want %s", full2, afull)
	}
	b.Next(t, ftWait, ftPresence("unavailable", afull))
	// From offline storage, or straight to the new session if it is
	// available by the time the old one hands them over.
	a2.Write(t, "<presence/>")
	a2.next(t, smMessage("m1"))
	a2.next(t, smMessage("m2"))
}

// TestSMHibernationOutboxLimit: a hibernating session whose outbox (what
// it holds unacknowledged included) overflows ends rather than growing.
func TestSMHibernationOutboxLimit(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Limits.OutboxStanzas = 8
	}))
	a, afull, enabled, b := smFriends(t, s, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	a.Write(t, "<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.next(t, ftWithID("iq", "p"))
	// Everything acknowledged: the outbox holds only what comes next.
	a.Write(t, fmt.Sprintf("<a xmlns='urn:xmpp:sm:3' h='%d'/>", a.h))
	a.Write(t, "<r xmlns='urn:xmpp:sm:3'/>")
	a.next(t, smNamed("a"))
	a.Conn.Close()
	// Overflowing while it hibernates, not while the server has yet to
	// see the connection gone (a session closing hands over after it
	// unbinds, and the next login could race that).
	smHibernating(t, s, afull)
	for i := range 12 {
		ftSend(t, b, "<message to='%s' id='f%d' type='chat'><body>%d</body></message>", afull, i, i)
	}
	b.Next(t, ftWait, ftPresence("unavailable", afull))
	_, res := smResume(t, s, "alice", enabled.AttrValue("id"), 0)
	smFailed(t, res, "item-not-found")
	// Nothing was lost: what the session held, the message that
	// overflowed it and those that came after it are in offline storage.
	// (Those routed while it ended may be stored before what it held.)
	smOffline(t, s, "alice", "f", 12)
}

// smHibernating waits until the session of full hibernates.
func smHibernating(t testing.TB, s *servertest.Server, full string) {
	t.Helper()
	j := jid.MustParse(full)
	for deadline := time.Now().Add(ftWait); ; {
		for _, res := range s.Router().Sessions(j.Bare()) {
			if res.JID.Equal(j) && xmpp.Hibernating(res.Session) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hibernate", full)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// smOffline logs local in until it has been sent the n messages with the
// ids prefix0 to prefix(n-1) from offline storage, or fails; it returns
// their ids in the order they first arrived. n at once overflow an outbox
// smaller than n if the writer lags: the session is cut and the rest stay
// stored for the next login.
func smOffline(t testing.TB, s *servertest.Server, local, prefix string, n int) []string {
	t.Helper()
	got := map[string]bool{}
	var order []string
	for login := 0; len(got) < n; login++ {
		if login == 5 {
			t.Fatalf("after %d logins, got only %v", login, got)
		}
		a, _, _ := smLogin(t, s, local, "laptop"+strconv.Itoa(login), "")
		// A message lost fails the test after ftWait, not the
		// connection's 20 s at each login.
		_ = a.Conn.SetReadDeadline(time.Now().Add(ftWait))
		a.Write(t, "<presence/>")
		for len(got) < n {
			el, err := a.Read()
			if err != nil || el.Name == "error" {
				break
			}
			if el.Name != "message" {
				continue
			}
			if el.Child("delay", "urn:xmpp:delay") == nil {
				t.Fatalf("not from offline storage: %s", el)
			}
			if id := el.AttrValue("id"); !got[id] {
				got[id] = true
				order = append(order, id)
			}
		}
		a.Conn.Close()
	}
	for i := range n {
		if !got[prefix+strconv.Itoa(i)] {
			t.Fatalf("%s%d lost; got %v", prefix, i, got)
		}
	}
	return order
}

// TestSMResumptionOff: with resume_timeout "0s", stream management has
// acks only; a resumption is not implemented, and the stream may bind.
func TestSMResumptionOff(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.C2S.ResumeTimeout = 0
	}))
	s.AddUser(t, "alice", ftPassword)
	a, _, enabled := smLogin(t, s, "alice", "phone", "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	if enabled.AttrValue("resume") != "" || enabled.AttrValue("id") != "" {
		t.Fatalf("resumption is off, but: %s", enabled)
	}
	a.Write(t, "<r xmlns='urn:xmpp:sm:3'/>")
	if ack := a.next(t, smNamed("a")); ack.AttrValue("h") != "0" {
		t.Fatalf("ack: %s", ack)
	}
	r, res := smResume(t, s, "alice", "anything", 0)
	smFailed(t, res, "feature-not-implemented")
	if el := bindRaw(t, r.Raw, "laptop"); el.AttrValue("type") != "result" {
		t.Fatalf("bind: %s", el)
	}
}
