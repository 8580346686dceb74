package server_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// Client State Indication (XEP-0352) over raw streams: what an inactive
// client is sent, when, and in which order.

const nsCSI = "urn:xmpp:csi:0"

// csiSet sends a CSI element (active or inactive), then a ping, and reads
// up to its answer: the server has handled the state (RFC 6120 §10.1). It
// returns what came before the answer.
func csiSet(t testing.TB, r *smRaw, state, id string) []*wire.Element {
	t.Helper()
	r.Write(t, fmt.Sprintf("<%s xmlns='%s'/><iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>", state, nsCSI, id))
	var before []*wire.Element
	r.next(t, func(e *wire.Element) bool {
		if e.Name == "iq" && e.AttrValue("id") == id {
			if e.AttrValue("type") != "result" {
				t.Fatalf("ping after <%s/>: %s", state, e)
			}
			return true
		}
		before = append(before, e)
		return false
	})
	return before
}

// csiInactive makes alice and bob friends (smFriends: alice on a raw
// stream, with stream management if enable is set) and alice's client
// inactive; it returns what smFriends does, and bob's full JID.
func csiInactive(t testing.TB, s *servertest.Server, enable string) (a *smRaw, afull string, enabled *wire.Element, b *servertest.Client, bfull string) {
	t.Helper()
	a, afull, enabled, b = smFriends(t, s, enable)
	csiSet(t, a, "inactive", "p0")
	return a, afull, enabled, b, b.JID.String()
}

// csiRouted waits until the server has handled what c sent so far: it
// answers c's ping after routing the stanzas before it.
func csiRouted(t testing.TB, c *servertest.Client, id string) {
	t.Helper()
	ftSend(t, c, "<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>", id)
	c.Next(t, ftWait, ftWithID("iq", id))
}

// csiStatus matches presence from from with the status text.
func csiStatus(from, status string) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("type") == "" && e.AttrValue("from") == from &&
			e.ChildText("status", wire.NSClient) == status
	}
}

// csiExpect reads len(want) stanzas (stream management elements aside)
// and checks each against want, in order.
func csiExpect(t testing.TB, r *smRaw, what string, want ...func(*wire.Element) bool) {
	t.Helper()
	for i, w := range want {
		el := r.next(t, func(e *wire.Element) bool { return e.Space == wire.NSClient })
		if !w(el) {
			t.Fatalf("%s: stanza %d is %s", what, i+1, el)
		}
	}
}

// csiChatState matches a message from from carrying the chat state.
func csiChatState(from, state string) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		return e.Name == "message" && e.AttrValue("from") == from && e.Child(state, "http://jabber.org/protocol/chatstates") != nil &&
			e.Child("body", wire.NSClient) == nil
	}
}

// TestCSIHoldsWhatCanWait: an inactive client gets the presence updates,
// chat states and receipts sent to it only with the next message, the
// superseded ones left out; <active/> sends what is held before the
// answer to what follows it; then nothing is held.
func TestCSIHoldsWhatCanWait(t *testing.T) {
	s := servertest.Start(t)
	a, afull, _, b := smFriends(t, s, "")
	bfull := b.JID.String()
	if before := csiSet(t, a, "inactive", "p1"); len(before) != 0 {
		t.Fatalf("before the ping's answer: %v", before)
	}

	for i := 1; i <= 3; i++ {
		ftSend(t, b, "<presence><show>away</show><status>s%d</status></presence>", i)
	}
	ftSend(t, b, "<message to='%s' type='chat' id='c1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", afull)
	ftSend(t, b, "<message to='%s' type='chat' id='c2'><paused xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/></message>", afull)
	ftSend(t, b, "<message to='%s' id='r1'><received xmlns='urn:xmpp:receipts' id='x1'/></message>", afull)
	// A PEP-style notification: a headline without a body waits too.
	ftSend(t, b, "<message to='%s' type='headline' id='h1'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='n'/></event></message>", afull)
	ftSend(t, b, "<message to='%s' type='chat' id='m1'><body>are you there?</body></message>", afull)
	csiExpect(t, a, "held until the message",
		csiStatus(bfull, "s3"),
		csiChatState(bfull, "paused"),
		ftWithID("message", "r1"),
		ftWithID("message", "h1"),
		ftWithID("message", "m1"))

	// Held again, then sent by <active/> ahead of the ping's answer.
	ftSend(t, b, "<presence><status>s4</status></presence>")
	ftSend(t, b, "<presence><status>s5</status></presence>")
	csiRouted(t, b, "sync1")
	before := csiSet(t, a, "active", "p2")
	if len(before) != 1 || !csiStatus(bfull, "s5")(before[0]) {
		t.Fatalf("sent by <active/>: %v, want the presence with s5 alone", before)
	}
	// Active: every presence update comes as it is sent.
	ftSend(t, b, "<presence><status>s6</status></presence>")
	ftSend(t, b, "<presence><status>s7</status></presence>")
	csiExpect(t, a, "active", csiStatus(bfull, "s6"), csiStatus(bfull, "s7"))
}

// TestCSIUrgent: each kind of stanza that must not wait sends what is held
// with it.
func TestCSIUrgent(t *testing.T) {
	s := servertest.Start(t)
	a, afull, _, b, bfull := csiInactive(t, s, "")
	cases := []struct {
		name, stanza string
		match        func(*wire.Element) bool
	}{
		{"iq", "<iq to='%s' type='get' id='u1'><query xmlns='jabber:iq:version'/></iq>", ftWithID("iq", "u1")},
		{"subject", "<message to='%s' type='chat' id='u2'><subject>plans</subject></message>", ftWithID("message", "u2")},
		{"omemo", "<message to='%s' type='chat' id='u3'><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted></message>", ftWithID("message", "u3")},
		{"invitation", "<message to='%s' id='u4'><x xmlns='jabber:x:conference' jid='room@conference.localhost'/></message>", ftWithID("message", "u4")},
		{"call", "<message to='%s' type='chat' id='u5'><propose xmlns='urn:xmpp:jingle-message:0' id='call1'/></message>", ftWithID("message", "u5")},
		{"error", "<message to='%s' type='error' id='u6'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>", ftWithID("message", "u6")},
		{"headline with a body", "<message to='%s' type='headline' id='u7'><body>fire drill at 3</body></message>", ftWithID("message", "u7")},
	}
	for i, tc := range cases {
		status := fmt.Sprintf("before %d", i)
		ftSend(t, b, "<presence><status>%s</status></presence>", status)
		ftSend(t, b, tc.stanza, afull)
		csiExpect(t, a, tc.name, csiStatus(bfull, status), tc.match)
	}
	// A subscription request is presence that does not wait; directed
	// presence waits.
	carol := s.AddUser(t, "carol", ftPassword)
	c := ftLogin(t, s, carol, "desk")
	ftSend(t, c, "<presence to='%s'><status>before the request</status></presence>", afull)
	ftSend(t, c, "<presence to='alice@%s' type='subscribe'/>", s.Domain)
	csiExpect(t, a, "subscription request", csiStatus(c.JID.String(), "before the request"), ftPresence("subscribe", "carol@"+s.Domain))
}

// TestCSIQueueLimit: csi_queue stanzas held, or half of the outbox's
// stanza limit if less, are sent without waiting for anything urgent.
func TestCSIQueueLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*config.Config)
	}{
		{"csi_queue", func(c *config.Config) { c.C2S.CSIQueue = 3 }},
		{"half the outbox", func(c *config.Config) { c.Limits.OutboxStanzas = 6 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := servertest.Start(t, servertest.WithConfig(tc.cfg))
			a, afull, _, b, bfull := csiInactive(t, s, "")
			// P1 is held and superseded by P2: three stanzas held,
			// then sent.
			ftSend(t, b, "<presence><status>P1</status></presence>")
			ftSend(t, b, "<message to='%s' id='r1'><received xmlns='urn:xmpp:receipts' id='x1'/></message>", afull)
			ftSend(t, b, "<presence><status>P2</status></presence>")
			ftSend(t, b, "<message to='%s' id='r2'><received xmlns='urn:xmpp:receipts' id='x2'/></message>", afull)
			csiExpect(t, a, "three held", ftWithID("message", "r1"), csiStatus(bfull, "P2"), ftWithID("message", "r2"))
		})
	}
}

// TestCSIChatStateOrder: a chat state is superseded only by the sender's
// next one in the same thread, and never moved past another message of
// the sender's.
func TestCSIChatStateOrder(t *testing.T) {
	s := servertest.Start(t)
	a, afull, _, b, bfull := csiInactive(t, s, "")
	state := "<message to='%s' type='chat' id='%s'><%s xmlns='http://jabber.org/protocol/chatstates'/>%s</message>"
	ftSend(t, b, state, afull, "c1", "composing", "")
	ftSend(t, b, state, afull, "c2", "composing", "<thread>t2</thread>")
	ftSend(t, b, "<message to='%s' id='r1'><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>", afull)
	ftSend(t, b, state, afull, "c3", "paused", "")
	ftSend(t, b, state, afull, "c4", "active", "<thread>t2</thread>")
	ftSend(t, b, state, afull, "c5", "gone", "<thread>t2</thread>")
	ftSend(t, b, "<message to='%s' type='chat' id='m1'><body>hi</body></message>", afull)
	st := func(id, state string) func(*wire.Element) bool {
		return func(e *wire.Element) bool { return e.AttrValue("id") == id && csiChatState(bfull, state)(e) }
	}
	csiExpect(t, a, "chat states",
		st("c1", "composing"), st("c2", "composing"), ftWithID("message", "r1"),
		st("c3", "paused"), st("c5", "gone"), ftWithID("message", "m1"))
}

// TestCSIStreamManagement: what was superseded is not counted by stream
// management; a resumed stream is active (XEP-0352 §5).
func TestCSIStreamManagement(t *testing.T) {
	s := servertest.Start(t)
	a, _, enabled, b, bfull := csiInactive(t, s, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	ftSend(t, b, "<presence><status>P1</status></presence>")
	ftSend(t, b, "<presence><status>P2</status></presence>")
	ftSend(t, b, "<message to='alice@%s' type='chat' id='m1'><body>one</body></message>", s.Domain)
	csiExpect(t, a, "held", csiStatus(bfull, "P2"), ftWithID("message", "m1"))
	// Everything read is acknowledged: a resumption sends nothing again
	// (had the server counted P1, written or not, it would send m1
	// again, before P3).
	h := a.h
	a.Conn.Close()
	a2, res := smResume(t, s, "alice", enabled.AttrValue("id"), h)
	if res.Name != "resumed" {
		t.Fatalf("resume with h=%d: %s", h, res)
	}
	// Active after the resumption: presence is not held.
	ftSend(t, b, "<presence><status>P3</status></presence>")
	csiExpect(t, a2, "after the resumption", csiStatus(bfull, "P3"))
}

// TestCSIHibernation: what is held when the connection breaks stays held
// (and superseded) while the session hibernates, and the resumption sends
// it after <resumed/>.
func TestCSIHibernation(t *testing.T) {
	s := servertest.Start(t)
	a, _, enabled, b, bfull := csiInactive(t, s, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	ftSend(t, b, "<presence><status>P1</status></presence>")
	csiRouted(t, b, "sync1")
	h := a.h
	a.Conn.Close()
	ftSend(t, b, "<presence><status>P2</status></presence>")
	csiRouted(t, b, "sync2")
	a2, res := smResume(t, s, "alice", enabled.AttrValue("id"), h)
	if res.Name != "resumed" || res.AttrValue("h") == "" {
		t.Fatalf("resume with h=%d: %s", h, res)
	}
	ftSend(t, b, "<message to='alice@%s' type='chat' id='m1'><body>back?</body></message>", s.Domain)
	csiExpect(t, a2, "after the resumption", csiStatus(bfull, "P2"), ftWithID("message", "m1"))
}

// csiDesk logs alice in on a second resource, available, where what her
// phone's session hands over on its end goes (RFC 6121 §8.5.3.2.1).
func csiDesk(t testing.TB, s *servertest.Server) *servertest.Client {
	t.Helper()
	desk := ftLogin(t, s, jid.MustParse("alice@"+s.Domain), "desk")
	ftOnline(t, desk, "<presence/>")
	return desk
}

// csiMessages reads the messages c gets until one with the id last, and
// returns their ids in order.
func csiMessages(t testing.TB, c *servertest.Client, last string) []string {
	t.Helper()
	var ids []string
	for {
		el := c.Next(t, ftWait, func(e *wire.Element) bool { return e.Name == "message" })
		ids = append(ids, el.AttrValue("id"))
		if ids[len(ids)-1] == last {
			return ids
		}
	}
}

// TestCSIClosingSendsHeld: a client that ends its stream while inactive
// is sent what was held for it before the server's closing tag (RFC 6120
// §4.4: the other party finishes sending what it has).
func TestCSIClosingSendsHeld(t *testing.T) {
	s := servertest.Start(t)
	a, afull, _, b, bfull := csiInactive(t, s, "")
	ftSend(t, b, "<presence><status>P1</status></presence>")
	ftSend(t, b, "<message to='%s' id='r1'><received xmlns='urn:xmpp:receipts' id='x1'/></message>", afull)
	csiRouted(t, b, "sync1")
	a.Write(t, "</stream:stream>")
	var got []*wire.Element
	for {
		el, err := a.Read()
		if err != nil {
			if !errors.Is(err, wire.ErrStreamEnd) {
				t.Fatalf("after %v: %v, want the server's closing tag", got, err)
			}
			break
		}
		got = append(got, el)
	}
	if len(got) != 2 || !csiStatus(bfull, "P1")(got[0]) || !ftWithID("message", "r1")(got[1]) {
		t.Fatalf("before the closing tag: %v, want P1 and r1", got)
	}
}

// TestCSIHibernationEndsHolding: a hibernating session that ends while it
// holds stanzas for its inactive client hands them over with what was
// never acknowledged (XEP-0198 §4): a receipt goes to the account's other
// resource; a chat state, stale by then, goes nowhere.
func TestCSIHibernationEndsHolding(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.C2S.ResumeTimeout = config.Duration(time.Second)
	}))
	a, afull, _, b, _ := csiInactive(t, s, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	desk := csiDesk(t, s)
	ftSend(t, b, "<message to='%s' type='chat' id='c1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", afull)
	ftSend(t, b, "<message to='%s' id='r1'><received xmlns='urn:xmpp:receipts' id='x1'/></message>", afull)
	ftSend(t, b, "<presence><status>P1</status></presence>")
	csiRouted(t, b, "sync1")
	a.Conn.Close()
	b.Next(t, ftWait, ftPresence("unavailable", afull))
	ftSend(t, b, "<message to='alice@%s' type='chat' id='m1'><body>back?</body></message>", s.Domain)
	if ids := csiMessages(t, desk, "m1"); len(ids) != 2 || ids[0] != "r1" {
		t.Fatalf("the other resource got %v, want r1 handed over, then m1", ids)
	}
}

// TestCSIHibernationOverflowHolding: a hibernating session whose outbox
// overflows while it holds stanzas for its inactive client ends, and
// hands over what it held, what it had released and the stanza that
// overflowed it, in order; none is lost. Receipts wait for an inactive
// client (a store hint keeps them offline, XEP-0334 §4.4).
func TestCSIHibernationOverflowHolding(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Limits.OutboxStanzas = 8
		c.C2S.CSIQueue = 3
	}))
	a, afull, enabled, b, _ := csiInactive(t, s, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	// Everything written is acknowledged: the outbox holds what comes
	// next.
	a.Write(t, fmt.Sprintf("<a xmlns='urn:xmpp:sm:3' h='%d'/><r xmlns='urn:xmpp:sm:3'/>", a.h))
	a.next(t, smNamed("a"))
	a.Conn.Close()
	smHibernating(t, s, afull)
	// Three held, then released into the queue, twice; two held when
	// the ninth overflows it.
	const n = 12
	for i := range n {
		ftSend(t, b, "<message to='%s' id='r%d'><received xmlns='urn:xmpp:receipts' id='x%d'/><store xmlns='urn:xmpp:hints'/></message>", afull, i, i)
	}
	b.Next(t, ftWait, ftPresence("unavailable", afull))
	_, res := smResume(t, s, "alice", enabled.AttrValue("id"), a.h)
	smFailed(t, res, "item-not-found")
	// r0 to r8 (the one that overflowed) were handed over together, in
	// the order they came; those routed after the session handed over
	// may be stored before them.
	var handed []string
	for _, id := range smOffline(t, s, "alice", "r", n) {
		if i, _ := strconv.Atoi(id[1:]); i <= 8 {
			handed = append(handed, id)
		}
	}
	if !slices.IsSorted(handed) { // one digit each
		t.Fatalf("handed over out of order: %v", handed)
	}
}

// TestCSIResumeTooHigh: a resumption refused for an 'h' above what the
// open session was sent and holds (XEP-0198 §5: handled-count-too-high)
// leaves that session inactive and holding: a newer status still
// supersedes the held one.
func TestCSIResumeTooHigh(t *testing.T) {
	s := servertest.Start(t)
	a, _, enabled, b, bfull := csiInactive(t, s, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	ftSend(t, b, "<presence><status>P1</status></presence>")
	csiRouted(t, b, "sync1")
	// Nothing is acknowledged: the session was sent a.h stanzas and
	// holds one.
	_, res := smResume(t, s, "alice", enabled.AttrValue("id"), a.h+2)
	// The count sent includes the held presence (not written yet): a
	// bound of a.h alone would refuse h=a.h+1 too.
	hc := res.Child("handled-count-too-high", nsSM)
	if res.Name != "error" || hc == nil || hc.AttrValue("send-count") != strconv.Itoa(int(a.h)+1) {
		t.Fatalf("resume with h=%d: %s, want handled-count-too-high with send-count %d", a.h+2, res, a.h+1)
	}
	ftSend(t, b, "<presence><status>P2</status></presence>")
	ftSend(t, b, "<message to='alice@%s' type='chat' id='m1'><body>still there?</body></message>", s.Domain)
	csiExpect(t, a, "after the refused resumption", csiStatus(bfull, "P2"), ftWithID("message", "m1"))
}

// TestCSIErrors: an unknown CSI element, and CSI when it is off, are
// elements the server does not support (RFC 6120 §4.9.3.24).
func TestCSIErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		on   bool
		el   string
	}{
		{"unknown element", true, "<asleep xmlns='urn:xmpp:csi:0'/>"},
		{"csi off", false, "<inactive xmlns='urn:xmpp:csi:0'/>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.C2S.CSI = tc.on }))
			s.AddUser(t, "alice", ftPassword)
			r, feats := authRaw(t, s, "alice", ftPassword)
			if got := feats.Child("csi", nsCSI) != nil; got != tc.on {
				t.Fatalf("CSI offered: %v, want %v: %s", got, tc.on, feats)
			}
			bindRaw(t, r, "phone")
			r.Write(t, tc.el)
			if cond := r.StreamError(t); cond != "unsupported-stanza-type" {
				t.Fatalf("stream error %s, want unsupported-stanza-type", cond)
			}
		})
	}
}

// TestCSIWebSocket: a browser client (Converse.js sends CSI) is held for
// over XMPP over WebSocket as over TCP.
func TestCSIWebSocket(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP())
	alice := s.AddUser(t, "alice", ftPassword)
	bob := s.AddUser(t, "bob", ftPassword)
	ftSubscribe(t, s, alice, bob, true)
	b := ftLogin(t, s, bob, "desk")
	ftOnline(t, b, "<presence/>")
	bfull := b.JID.String()

	w := s.DialWS(t, servertest.WSHeader())
	afull := w.Login(t, s.Domain, "alice", ftPassword)
	next := func(match func(*wire.Element) bool) *wire.Element {
		t.Helper()
		for {
			if el := w.MustRead(t); match(el) {
				return el
			}
		}
	}
	w.Send(t, "<presence xmlns='jabber:client'/>")
	next(ftPresence("", bfull))
	w.Send(t, "<inactive xmlns='urn:xmpp:csi:0'/>")
	w.Send(t, "<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	next(ftWithID("iq", "p1"))

	ftSend(t, b, "<presence><status>W1</status></presence>")
	ftSend(t, b, "<presence><status>W2</status></presence>")
	ftSend(t, b, "<message to='%s' type='chat' id='m1'><body>hi</body></message>", afull)
	for i, want := range []func(*wire.Element) bool{csiStatus(bfull, "W2"), ftWithID("message", "m1")} {
		if el := w.MustRead(t); !want(el) {
			t.Fatalf("stanza %d over WebSocket: %s", i+1, el)
		}
	}
}
