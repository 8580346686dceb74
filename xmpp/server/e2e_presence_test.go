package server_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// End-to-end presence (RFC 6121 §4) and offline messages (XEP-0160,
// XEP-0203, XEP-0334) over real sockets.
//
// Negative checks ("nothing else arrives") need no waiting: a session's
// stanzas are handled in order, and whatever one of them causes is queued
// to its recipients before the next one is read. So once the sender's
// barrier (prSync) is answered, the deliveries its earlier stanzas caused
// are queued; a recipient's barrier answered after that returns all of
// them.

const (
	prPassword = "pw"
	prNSDelay  = "urn:xmpp:delay"
	prNSClient = "jabber:client"
)

var prSeq atomic.Uint64

// prLogin logs in a resource of user (no roster request, no presence).
func prLogin(t testing.TB, s *servertest.Server, user jid.JID, resource string) *servertest.Client {
	t.Helper()
	return s.MustLogin(t, user, prPassword, servertest.ClientOptions{Resource: resource})
}

// prSync is a barrier: it pings the server and returns every element
// received before the answer.
func prSync(t testing.TB, c *servertest.Client) []*wire.Element {
	t.Helper()
	id := "pr-sync-" + strconv.FormatUint(prSeq.Add(1), 10)
	rtSend(t, c, "<iq type='get' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>", id, c.JID.Domainpart())
	var before []*wire.Element
	res := c.Next(t, wait, func(e *wire.Element) bool {
		if e.Name == "iq" && e.AttrValue("id") == id {
			return true
		}
		before = append(before, e)
		return false
	})
	if res.AttrValue("type") != "result" {
		t.Fatalf("%s: barrier ping answered %s", c.JID, res)
	}
	return before
}

// prLogout closes the stream without unavailable presence and waits for
// the server's closing tag, which it writes after the session was unbound
// and its unavailable presence sent (RFC 6121 §4.5.2).
func prLogout(t testing.TB, c *servertest.Client) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("%s: close: %v", c.JID, err)
	}
	c.Closed(t, wait)
	c.Conn().Close()
}

// prMatch matches the elements prFrom selects.
func prMatch(name, typ, from string) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		return e.Name == name && e.AttrValue("type") == typ && e.AttrValue("from") == from
	}
}

// prFrom returns the elements named name sent by from (exactly that
// address) with the type typ ("" = no type attribute).
func prFrom(els []*wire.Element, name, typ, from string) []*wire.Element {
	var out []*wire.Element
	match := prMatch(name, typ, from)
	for _, e := range els {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// prFromAccount returns the elements named name sent by the account bare
// or any of its resources.
func prFromAccount(els []*wire.Element, name string, bare jid.JID) []*wire.Element {
	var out []*wire.Element
	for _, e := range els {
		if e.Name == name && rtFromAccount(bare)(e) {
			out = append(out, e)
		}
	}
	return out
}

// prOne returns the only element of els, failing the test otherwise.
func prOne(t testing.TB, what string, els []*wire.Element) *wire.Element {
	t.Helper()
	if len(els) != 1 {
		t.Fatalf("%s: got %d stanzas, want exactly 1: %v", what, len(els), els)
	}
	return els[0]
}

// prNone fails the test if els is not empty.
func prNone(t testing.TB, what string, els []*wire.Element) {
	t.Helper()
	if len(els) != 0 {
		t.Fatalf("%s: got %d stanzas, want none: %v", what, len(els), els)
	}
}

// prShowStatus checks the <show/> and <status/> of a presence.
func prShowStatus(t testing.TB, el *wire.Element, show, status string) {
	t.Helper()
	if got := el.ChildText("show", prNSClient); got != show {
		t.Errorf("show = %q, want %q in %s", got, show, el)
	}
	if got := el.ChildText("status", prNSClient); got != status {
		t.Errorf("status = %q, want %q in %s", got, status, el)
	}
}

// prHandshake makes a subscribe to b and b approve it; both must be
// available.
func prHandshake(t testing.TB, a, b *servertest.Client) {
	t.Helper()
	ab, bb := a.JID.Bare().String(), b.JID.Bare().String()
	rtSend(t, a, "<presence to='%s' type='subscribe'/>", bb)
	b.Next(t, wait, prMatch("presence", "subscribe", ab))
	rtSend(t, b, "<presence to='%s' type='subscribed'/>", ab)
	a.Next(t, wait, prMatch("presence", "subscribed", bb))
}

// prSubscribe gives user a subscription to contact's presence (and the
// reverse too when mutual), over the wire with resources that leave again,
// so that their traffic does not reach the sessions of the test.
func prSubscribe(t testing.TB, s *servertest.Server, user, contact jid.JID, mutual bool) {
	t.Helper()
	u := prLogin(t, s, user, "setup")
	c := prLogin(t, s, contact, "setup")
	rtOnline(t, u, 0)
	rtOnline(t, c, 0)
	prHandshake(t, u, c)
	if mutual {
		prHandshake(t, c, u)
	}
	prLogout(t, u)
	prLogout(t, c)
}

// TestPresenceBroadcast covers RFC 6121 §4.2 and §4.4 to §4.5 between
// mutually subscribed contacts: broadcast presence reaches the contact's
// available resources and the user's own, payload intact; initial presence
// reaches every resource of the contact; a stream closed without
// unavailable presence is announced as unavailable.
func TestPresenceBroadcast(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	prSubscribe(t, s, alice, bob, true)

	laptop := prLogin(t, s, bob, "laptop")
	rtOnline(t, laptop, 0)
	desk := prLogin(t, s, alice, "desk")
	rtOnline(t, desk, 0)
	phone := prLogin(t, s, alice, "phone")
	phoneJID, deskJID := phone.JID.String(), desk.JID.String()
	laptopJID := laptop.JID.String()

	// alice/phone becomes available with show and status: its presence
	// reaches bob and alice's own resources, the sender included, with
	// show and status unchanged.
	rtSend(t, phone, "<presence id='dnd1'><show>dnd</show><status>On a call</status></presence>")
	got := prSync(t, phone)
	echo := prOne(t, "phone: own presence", prFrom(got, "presence", "", phoneJID))
	rtCheck(t, echo, rtWant{name: "presence", id: "dnd1", from: phoneJID, to: phoneJID})
	prShowStatus(t, echo, "dnd", "On a call")
	// Initial presence: the server probes bob for the new resource.
	prOne(t, "phone: bob's presence (probe answer)", prFrom(got, "presence", "", laptopJID))
	for _, c := range []*servertest.Client{laptop, desk} {
		got := prSync(t, c)
		el := prOne(t, c.JID.String()+": alice/phone's presence", prFrom(got, "presence", "", phoneJID))
		rtCheck(t, el, rtWant{name: "presence", id: "dnd1", from: phoneJID, to: el.AttrValue("to")})
		if to := el.AttrValue("to"); to != c.JID.String() && to != c.JID.Bare().String() {
			t.Errorf("%s: presence addressed to %q", c.JID, to)
		}
		prShowStatus(t, el, "dnd", "On a call")
	}

	// bob's initial presence from a second resource reaches both of
	// alice's resources; the probes it causes are answered once per
	// available resource of alice, with her current presence.
	tablet := prLogin(t, s, bob, "tablet")
	tabletJID := tablet.JID.String()
	rtSend(t, tablet, "<presence><status>tablet here</status></presence>")
	got = prSync(t, tablet)
	prOne(t, "tablet: own presence", prFrom(got, "presence", "", tabletJID))
	prShowStatus(t, prOne(t, "tablet: alice/phone", prFrom(got, "presence", "", phoneJID)), "dnd", "On a call")
	prOne(t, "tablet: alice/desk", prFrom(got, "presence", "", deskJID))
	prNone(t, "tablet: alice's last unavailable presence", prFrom(got, "presence", "unavailable", "alice@localhost/setup"))
	for _, c := range []*servertest.Client{phone, desk, laptop} {
		el := prOne(t, c.JID.String()+": bob/tablet's presence", prFrom(prSync(t, c), "presence", "", tabletJID))
		prShowStatus(t, el, "", "tablet here")
	}

	// alice/phone closes its stream without unavailable presence.
	prLogout(t, phone)
	for _, c := range []*servertest.Client{laptop, tablet, desk} {
		el := prOne(t, c.JID.String()+": unavailable from alice/phone", prFrom(prSync(t, c), "presence", "unavailable", phoneJID))
		rtCheck(t, el, rtWant{name: "presence", typ: "unavailable", from: phoneJID, to: el.AttrValue("to")})
	}
}

// TestPresenceProbeAnswers covers RFC 6121 §4.3.2: a contact's available
// resources each answer the probe of the user's initial presence exactly
// once, with their current presence, and the last unavailable presence is
// not sent along.
func TestPresenceProbeAnswers(t *testing.T) {
	cases := []struct {
		name      string
		resources []string
	}{
		{"one resource", []string{"phone"}},
		{"two resources", []string{"phone", "desk"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := servertest.Start(t)
			alice := s.AddUser(t, "alice", prPassword)
			bob := s.AddUser(t, "bob", prPassword)
			prSubscribe(t, s, alice, bob, true)
			for _, r := range tc.resources {
				c := prLogin(t, s, alice, r)
				rtSend(t, c, "<presence><status>at the %s</status></presence>", r)
				prSync(t, c)
			}
			b := prLogin(t, s, bob, "laptop")
			rtSend(t, b, "<presence/>")
			got := prSync(t, b)
			fromAlice := prFromAccount(got, "presence", alice)
			if len(fromAlice) != len(tc.resources) {
				t.Fatalf("bob got %d presences from alice, want %d: %v", len(fromAlice), len(tc.resources), fromAlice)
			}
			for _, r := range tc.resources {
				el := prOne(t, "answer of alice/"+r, prFrom(fromAlice, "presence", "", "alice@localhost/"+r))
				rtCheck(t, el, rtWant{name: "presence", from: "alice@localhost/" + r, to: b.JID.String()})
				prShowStatus(t, el, "", "at the "+r)
			}
		})
	}
}

// TestPresenceAfterRestart covers what RFC 6121 §4.3.2 asks of a server
// whose contact is offline (the last unavailable presence) and that
// subscriptions and that presence survive a restart on the same data
// directory.
func TestPresenceAfterRestart(t *testing.T) {
	s1 := servertest.Start(t)
	alice := s1.AddUser(t, "alice", prPassword)
	bob := s1.AddUser(t, "bob", prPassword)
	prSubscribe(t, s1, alice, bob, true)
	a := prLogin(t, s1, alice, "phone")
	rtOnline(t, a, 0)
	rtSend(t, a, "<presence type='unavailable'><status>Gone fishing</status></presence>")
	prSync(t, a)
	prLogout(t, a)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s1.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	s2 := servertest.StartConfig(t, servertest.Config(s1.DataDir))
	b := prLogin(t, s2, bob, "laptop")
	rtSend(t, b, "<presence/>")
	got := prFromAccount(prSync(t, b), "presence", alice)
	el := prOne(t, "bob: alice's last unavailable presence", got)
	rtCheck(t, el, rtWant{name: "presence", typ: "unavailable", from: "alice@localhost/phone", to: b.JID.String()})
	prShowStatus(t, el, "", "Gone fishing")

	a = prLogin(t, s2, alice, "phone")
	rtSend(t, a, "<presence><show>chat</show><status>Back</status></presence>")
	got = prSync(t, a)
	prOne(t, "alice: bob's presence", prFrom(got, "presence", "", b.JID.String()))
	el = prOne(t, "bob: alice's presence", prFrom(prSync(t, b), "presence", "", a.JID.String()))
	prShowStatus(t, el, "chat", "Back")
}

// TestPresenceNoLeak covers RFC 6121 §4.3.2 and §4.4.2: presence goes only
// to contacts with a subscription to the user, in that direction only, and
// a probe without one reveals nothing.
func TestPresenceNoLeak(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	carol := s.AddUser(t, "carol", prPassword)
	// bob has a subscription to alice; alice none to bob.
	prSubscribe(t, s, bob, alice, false)

	c := prLogin(t, s, carol, "c")
	rtOnline(t, c, 0)
	b := prLogin(t, s, bob, "b")
	rtOnline(t, b, 0)
	prSync(t, b)
	a := prLogin(t, s, alice, "a")
	rtSend(t, a, "<presence><status>visible to bob only</status></presence>")
	prNone(t, "alice: presence from bob", prFromAccount(prSync(t, a), "presence", bob))
	prShowStatus(t, prOne(t, "bob: alice's presence", prFrom(prSync(t, b), "presence", "", a.JID.String())), "", "visible to bob only")
	prNone(t, "carol: alice's presence", prFromAccount(prSync(t, c), "presence", alice))

	// Subsequent presence, both ways.
	rtSend(t, b, "<presence><show>away</show></presence>")
	prSync(t, b)
	prNone(t, "alice: bob's subsequent presence", prFromAccount(prSync(t, a), "presence", bob))
	rtSend(t, a, "<presence><show>xa</show></presence>")
	prSync(t, a)
	prShowStatus(t, prOne(t, "bob: alice's subsequent presence", prFrom(prSync(t, b), "presence", "", a.JID.String())), "xa", "")
	prNone(t, "carol: alice's subsequent presence", prFromAccount(prSync(t, c), "presence", alice))

	// carol probes alice without any roster item: nothing is revealed.
	// alice's server answers "unsubscribed" (§4.3.2), which carol's
	// server, having no item for alice, does not deliver (§3.2.3,
	// Appendix A.3.4: None).
	rtSend(t, c, "<presence to='%s' type='probe'/>", alice)
	prNone(t, "carol: answer to her probe without roster item", prFromAccount(prSync(t, c), "presence", alice))

	// With a pending subscription request (None + Pending Out), the
	// "unsubscribed" answer reaches carol, and still no presence does.
	rtSend(t, c, "<presence to='%s' type='subscribe'/>", alice)
	prSync(t, c)
	prOne(t, "alice: carol's request", prFrom(prSync(t, a), "presence", "subscribe", carol.String()))
	rtSend(t, c, "<presence to='%s' type='probe'/>", alice)
	got := prFromAccount(prSync(t, c), "presence", alice)
	el := prOne(t, "carol: answer to her probe", got)
	rtCheck(t, el, rtWant{name: "presence", typ: "unsubscribed", from: alice.String(), to: carol.String()})

	// alice leaves: bob sees it, carol does not.
	rtSend(t, a, "<presence type='unavailable'/>")
	prSync(t, a)
	prOne(t, "bob: alice's unavailable", prFrom(prSync(t, b), "presence", "unavailable", a.JID.String()))
	prNone(t, "carol: alice's unavailable", prFromAccount(prSync(t, c), "presence", alice))
}

// TestPresenceDirected covers RFC 6121 §4.6: directed presence to an
// entity without a subscription reaches it, and so does the sender's
// unavailable presence when it ends its availability or its session.
func TestPresenceDirected(t *testing.T) {
	cases := []struct {
		name string
		// initial: alice sends initial broadcast presence first.
		initial bool
		end     func(t *testing.T, a *servertest.Client)
	}{
		{"broadcast unavailable", true, func(t *testing.T, a *servertest.Client) {
			rtSend(t, a, "<presence type='unavailable'><status>bye</status></presence>")
			prSync(t, a)
		}},
		{"stream closed", true, func(t *testing.T, a *servertest.Client) { prLogout(t, a) }},
		{"stream closed without broadcast presence", false, func(t *testing.T, a *servertest.Client) { prLogout(t, a) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := servertest.Start(t)
			alice := s.AddUser(t, "alice", prPassword)
			carol := s.AddUser(t, "carol", prPassword)
			c := prLogin(t, s, carol, "c")
			rtOnline(t, c, 0)
			a := prLogin(t, s, alice, "a")
			if tc.initial {
				rtOnline(t, a, 0)
			}
			rtSend(t, a, "<presence to='%s'><status>hi carol</status></presence>", carol)
			prSync(t, a)
			el := prOne(t, "carol: directed presence", prFromAccount(prSync(t, c), "presence", alice))
			rtCheck(t, el, rtWant{name: "presence", from: a.JID.String(), to: carol.String()})
			prShowStatus(t, el, "", "hi carol")

			tc.end(t, a)
			el = prOne(t, "carol: unavailable", prFromAccount(prSync(t, c), "presence", alice))
			rtCheck(t, el, rtWant{name: "presence", typ: "unavailable", from: a.JID.String(), to: el.AttrValue("to")})
			if to := el.AttrValue("to"); to != carol.String() && to != c.JID.String() {
				t.Errorf("unavailable addressed to %q", to)
			}
		})
	}
}

// TestOfflineMessages covers XEP-0160 §3 with XEP-0203 and XEP-0334: chat
// messages to an offline user are kept and delivered at the next initial
// presence, in order and stamped; content-less and no-store messages are
// dropped without a bounce; a second login gets nothing.
func TestOfflineMessages(t *testing.T) {
	const (
		nsChatStates = "http://jabber.org/protocol/chatstates"
		nsHints      = "urn:xmpp:hints"
	)
	messages := []struct {
		name  string
		inner string
		body  string // the body of a message that is stored; "" if not stored
	}{
		{"first chat message", "<body>one</body>", "one"},
		{"chat state only", "<active xmlns='" + nsChatStates + "'/>", ""},
		{"second chat message", "<body>two</body><active xmlns='" + nsChatStates + "'/>", "two"},
		{"no-store hint", "<body>off the record</body><no-store xmlns='" + nsHints + "'/>", ""},
		{"third chat message", "<body>three</body>", "three"},
	}
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	a := prLogin(t, s, alice, "desk")
	rtOnline(t, a, 0)
	before := time.Now().Add(-time.Second)
	type stored struct{ id, body string }
	var want []stored
	for i, m := range messages {
		id := "m" + strconv.Itoa(i)
		rtSend(t, a, "<message type='chat' id='%s' to='%s'>%s</message>", id, bob, m.inner)
		if m.body != "" {
			want = append(want, stored{id, m.body})
		}
	}
	prNone(t, "alice: bounces", prFrom(prSync(t, a), "message", "error", bob.String()))
	after := time.Now().Add(time.Second)

	b := prLogin(t, s, bob, "phone")
	rtSend(t, b, "<presence/>")
	got := prFromAccount(prSync(t, b), "message", alice)
	if len(got) != len(want) {
		t.Fatalf("bob got %d messages, want %d (%v): %v", len(got), len(want), want, got)
	}
	for i, el := range got {
		w := want[i]
		rtCheck(t, el, rtWant{name: "message", typ: "chat", id: w.id, body: w.body, from: a.JID.String(), to: bob.String()})
		d := el.Child("delay", prNSDelay)
		if d == nil {
			t.Fatalf("message %s without delay: %s", w.id, el)
		}
		stamp, err := time.Parse(time.RFC3339, d.AttrValue("stamp"))
		if err != nil {
			t.Errorf("message %s: delay stamp: %v", w.id, err)
		} else if stamp.Before(before) || stamp.After(after) {
			t.Errorf("message %s: delay stamp %s not within the test's %s .. %s", w.id, stamp, before, after)
		}
		if from := d.AttrValue("from"); from != s.Domain {
			t.Errorf("message %s: delay from %q, want %q", w.id, from, s.Domain)
		}
	}

	// Delivered once: a new session gets nothing.
	prLogout(t, b)
	b = prLogin(t, s, bob, "phone")
	rtSend(t, b, "<presence/>")
	prNone(t, "bob's second login: messages", prFromAccount(prSync(t, b), "message", alice))
}

// TestOfflineQuota: a message beyond the host's offline_quota is bounced
// with service-unavailable (XEP-0160 §3, RFC 6121 §8.5.2.2.1); the stored
// ones are delivered.
func TestOfflineQuota(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Hosts[0].OfflineQuota = 2
	}))
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	a := prLogin(t, s, alice, "desk")
	for i := range 3 {
		rtSend(t, a, "<message type='chat' id='q%d' to='%s'><body>%d</body></message>", i, bob, i)
	}
	got := prSync(t, a)
	el := prOne(t, "alice: bounce", prFromAccount(got, "message", bob))
	rtCheck(t, el, rtWant{name: "message", typ: "error", id: "q2", from: bob.String(), to: a.JID.String(),
		errType: "cancel", errCond: "service-unavailable"})

	b := prLogin(t, s, bob, "phone")
	rtSend(t, b, "<presence/>")
	got = prFromAccount(prSync(t, b), "message", alice)
	if len(got) != 2 || got[0].AttrValue("id") != "q0" || got[1].AttrValue("id") != "q1" {
		t.Fatalf("bob got %v, want q0 and q1", got)
	}
}

// TestOfflineNegativePriority covers XEP-0160 §3 for a user online with a
// negative priority only: messages to the bare JID are stored, and
// delivered once a resource has a non-negative priority, whether by a
// later presence of the same session or by a new session.
func TestOfflineNegativePriority(t *testing.T) {
	cases := []struct {
		name string
		// raise makes a resource of bob available with priority 0 and
		// returns it.
		raise func(t *testing.T, s *servertest.Server, low *servertest.Client) *servertest.Client
	}{
		{"same session raises its priority", func(t *testing.T, _ *servertest.Server, low *servertest.Client) *servertest.Client {
			rtSend(t, low, "<presence><priority>0</priority></presence>")
			return low
		}},
		{"new session with priority 0", func(t *testing.T, s *servertest.Server, low *servertest.Client) *servertest.Client {
			c := prLogin(t, s, low.JID.Bare(), "desk")
			rtSend(t, c, "<presence><priority>0</priority></presence>")
			return c
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := servertest.Start(t)
			alice := s.AddUser(t, "alice", prPassword)
			bob := s.AddUser(t, "bob", prPassword)
			low := prLogin(t, s, bob, "phone")
			rtOnline(t, low, -1)
			a := prLogin(t, s, alice, "desk")
			rtSend(t, a, "<message type='chat' id='n1' to='%s'><body>while you were away</body></message>", bob)
			prNone(t, "alice: bounces", prFromAccount(prSync(t, a), "message", bob))
			prNone(t, "bob at priority -1: messages", prFromAccount(prSync(t, low), "message", alice))

			high := tc.raise(t, s, low)
			el := prOne(t, "bob at priority 0: stored message", prFromAccount(prSync(t, high), "message", alice))
			rtCheck(t, el, rtWant{name: "message", typ: "chat", id: "n1", from: a.JID.String(), to: bob.String()})
			if el.Child("delay", prNSDelay) == nil {
				t.Errorf("stored message without delay: %s", el)
			}
			if high != low {
				prNone(t, "bob at priority -1: messages", prFromAccount(prSync(t, low), "message", alice))
			}
		})
	}
}
