package server_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// End-to-end rosters and presence subscriptions over real sockets: RFC 6121
// §2 (roster management), §3 and Appendix A (subscriptions), §3.4
// (pre-approval) and XEP-0237 (roster versioning).
//
// Negative checks need no waiting: a session's stanzas are processed in
// order, and everything one of them causes is queued to its recipients
// before the next is read. So after the answer to a later IQ of the sender,
// an IQ of the recipient is answered only after every delivery the
// sender's stanzas caused; what the recipient received before that answer
// is all it will get.

const (
	rsNS            = "jabber:iq:roster"
	rsNSVersioning  = "urn:xmpp:features:rosterver"
	rsNSPreApproval = "urn:xmpp:features:pre-approval"
)

var rsSeq atomic.Uint64

// rsSend writes one stanza. Unlike rtSend it passes a context that is never
// done: mellium arms a goroutine per Send that, once the context is done,
// sets the connection's write deadline to the past and back; if the Send
// has already returned when the context is cancelled, that goroutine may
// still pick the context case and fail the next write with an i/o timeout.
func rsSend(t testing.TB, c *servertest.Client, format string, args ...any) {
	t.Helper()
	xml := fmt.Sprintf(format, args...)
	if err := c.SendRaw(context.Background(), xml); err != nil {
		t.Fatalf("%s: send %s: %v", c.JID, xml, err)
	}
}

// rsExchange sends the IQ request iq (a format with one %s for the id) and
// returns its answer and every element received before it.
func rsExchange(t testing.TB, c *servertest.Client, iq string) (before []*wire.Element, res *wire.Element) {
	t.Helper()
	id := "rs" + strconv.FormatUint(rsSeq.Add(1), 10)
	rsSend(t, c, iq, id)
	res = c.Next(t, wait, func(e *wire.Element) bool {
		if e.Name == "iq" && e.AttrValue("id") == id &&
			(e.AttrValue("type") == "result" || e.AttrValue("type") == "error") {
			return true
		}
		before = append(before, e)
		return false
	})
	return before, res
}

// rsGet sends a roster get with the query attributes attrs (such as
// "ver='3'") and returns the answer and what arrived before it. It marks
// the resource interested in roster pushes (RFC 6121 §2.1.6).
func rsGet(t testing.TB, c *servertest.Client, attrs string) (before []*wire.Element, res *wire.Element) {
	t.Helper()
	return rsExchange(t, c, "<iq type='get' id='%s'><query xmlns='"+rsNS+"' "+attrs+"/></iq>")
}

// rsSet sends a roster set with the given items (XML) and returns the answer
// and what arrived before it.
func rsSet(t testing.TB, c *servertest.Client, items string) (before []*wire.Element, res *wire.Element) {
	t.Helper()
	return rsExchange(t, c, "<iq type='set' id='%s'><query xmlns='"+rsNS+"'>"+items+"</query></iq>")
}

// rsPing is a barrier that, unlike a roster get, leaves the resource's
// interest in roster pushes as it is.
func rsPing(t testing.TB, c *servertest.Client) []*wire.Element {
	t.Helper()
	before, res := rsExchange(t, c, "<iq type='get' id='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	if res.AttrValue("type") != "result" {
		t.Fatalf("%s: ping answered %s", c.JID, res)
	}
	return before
}

// rsRoster fetches the full roster and returns the received elements before
// the answer, the items by contact and the version.
func rsRoster(t testing.TB, c *servertest.Client) (before []*wire.Element, items map[string]*wire.Element, ver string) {
	t.Helper()
	before, res := rsGet(t, c, "")
	q := res.Child("query", rsNS)
	if res.AttrValue("type") != "result" || q == nil {
		t.Fatalf("%s: roster get answered %s", c.JID, res)
	}
	v, ok := q.Attr("ver")
	if !ok {
		t.Fatalf("%s: roster result without ver: %s", c.JID, res)
	}
	items = map[string]*wire.Element{}
	for _, it := range q.Children {
		if it.Name == "item" && it.Space == rsNS {
			items[it.AttrValue("jid")] = it
		}
	}
	return before, items, v
}

// rsItem summarises a roster item as "subscription[+ask][+approved]", or
// "absent" for nil.
func rsItem(it *wire.Element) string {
	if it == nil {
		return "absent"
	}
	s := it.AttrValue("subscription")
	if it.AttrValue("ask") == "subscribe" {
		s += "+ask"
	}
	if it.AttrValue("approved") == "true" {
		s += "+approved"
	}
	return s
}

// rsGroups lists an item's groups in order.
func rsGroups(it *wire.Element) []string {
	var out []string
	for _, g := range it.Children {
		if g.Name == "group" && g.Space == rsNS {
			out = append(out, g.Text)
		}
	}
	return out
}

// rsPushes returns the roster pushes (RFC 6121 §2.1.6) among els that
// concern contact ("" for all), checking that each comes from the user's
// bare JID (or has no 'from') and carries one item.
func rsPushes(t testing.TB, user jid.JID, els []*wire.Element, contact string) []*wire.Element {
	t.Helper()
	var out []*wire.Element
	for _, e := range els {
		q := e.Child("query", rsNS)
		if e.Name != "iq" || e.AttrValue("type") != "set" || q == nil {
			continue
		}
		if f := e.AttrValue("from"); f != "" && f != user.Bare().String() {
			t.Errorf("roster push from %q: %s", f, e)
		}
		if len(q.Children) != 1 || q.Children[0].Name != "item" {
			t.Errorf("roster push without exactly one item: %s", e)
			continue
		}
		if contact == "" || q.Children[0].AttrValue("jid") == contact {
			out = append(out, e)
		}
	}
	return out
}

// rsPushItem returns the item of a roster push.
func rsPushItem(push *wire.Element) *wire.Element { return push.Child("query", rsNS).Children[0] }

// rsPresences returns the presence stanzas among els of type typ from from.
func rsPresences(els []*wire.Element, typ, from string) []*wire.Element {
	var out []*wire.Element
	for _, e := range els {
		if e.Name == "presence" && e.AttrValue("type") == typ && e.AttrValue("from") == from {
			out = append(out, e)
		}
	}
	return out
}

// rsSubscriptionTypes are the presence types of RFC 6121 §3.
var rsSubscriptionTypes = []string{"subscribe", "unsubscribe", "subscribed", "unsubscribed"}

// rsSubscription returns the subscription stanzas among els from from.
func rsSubscription(els []*wire.Element, from string) []*wire.Element {
	var out []*wire.Element
	for _, typ := range rsSubscriptionTypes {
		out = append(out, rsPresences(els, typ, from)...)
	}
	return out
}

// rsLogin logs in a resource the way a client does: roster first, then
// initial presence.
func rsLogin(t testing.TB, s *servertest.Server, user jid.JID, resource string) *servertest.Client {
	t.Helper()
	c := s.MustLogin(t, user, "pw", servertest.ClientOptions{Resource: resource})
	rsRoster(t, c)
	rsSend(t, c, "<presence/>")
	c.Next(t, wait, rtMatch("presence", c.JID.String(), "")) // the echo (§4.2.2)
	return c
}

// rsPresenceTo sends a presence of type typ to to.
func rsPresenceTo(t testing.TB, c *servertest.Client, to jid.JID, typ string) {
	t.Helper()
	rsSend(t, c, "<presence to='%s' type='%s'/>", to, typ)
}

// rsPendingRequests logs in a further resource of user, sends initial
// presence and returns the subscription requests re-delivered to it
// (RFC 6121 §3.1.3), by requester.
func rsPendingRequests(t testing.TB, s *servertest.Server, user jid.JID, resource string) []string {
	t.Helper()
	c := s.MustLogin(t, user, "pw", servertest.ClientOptions{Resource: resource})
	rsSend(t, c, "<presence/>")
	before := rsPing(t, c)
	var from []string
	for _, e := range before {
		if e.Name == "presence" && e.AttrValue("type") == "subscribe" {
			if to := e.AttrValue("to"); to != user.Bare().String() && to != c.JID.String() {
				t.Errorf("re-delivered request addressed to %q: %s", to, e)
			}
			from = append(from, e.AttrValue("from"))
		}
	}
	c.Close()
	return from
}

// rsState is a subscription state of RFC 6121 Appendix A.1, seen from one
// party.
type rsState struct {
	sub     string // "none", "to", "from", "both"
	out, in bool   // Pending Out (ask='subscribe'); Pending In (a request awaits an answer)
}

func (s rsState) String() string {
	n := strings.ToUpper(s.sub[:1]) + s.sub[1:]
	if s.out {
		n += "+PendingOut"
	}
	if s.in {
		n += "+PendingIn"
	}
	return n
}

// mirror is the same relation seen from the contact.
func (s rsState) mirror() rsState {
	m := rsState{sub: s.sub, out: s.in, in: s.out}
	switch s.sub {
	case "to":
		m.sub = "from"
	case "from":
		m.sub = "to"
	}
	return m
}

func (s rsState) hasFrom() bool { return s.sub == "from" || s.sub == "both" }

// item is the roster item a party in state s shows: absent unless exists.
func (s rsState) item(exists, approved bool) string {
	if !exists {
		return "absent"
	}
	it := s.sub
	if s.out {
		it += "+ask"
	}
	if approved {
		it += "+approved"
	}
	return it
}

var (
	rsNone     = rsState{sub: "none"}
	rsNonePO   = rsState{sub: "none", out: true}
	rsNonePI   = rsState{sub: "none", in: true}
	rsNonePOPI = rsState{sub: "none", out: true, in: true}
	rsTo       = rsState{sub: "to"}
	rsToPI     = rsState{sub: "to", in: true}
	rsFrom     = rsState{sub: "from"}
	rsFromPO   = rsState{sub: "from", out: true}
	rsBoth     = rsState{sub: "both"}
)

// rsRow is a row of an Appendix A table: the next state and whether the
// stanza passes (outbound: routed; inbound: delivered to the user).
type rsRow struct {
	next rsState
	pass bool
}

// rsOutbound is Appendix A.2 and rsInbound Appendix A.3, as in
// outboundTables and inboundTables of roster/state_test.go (a repeated
// subscribe is routed; an unsubscribe that changes nothing is not; an
// inbound subscribe from an approved contact is answered by the server).
var (
	rsOutbound = map[string]map[rsState]rsRow{
		"subscribe": { // A.2.1
			rsNone: {rsNonePO, true}, rsNonePO: {rsNonePO, true}, rsNonePI: {rsNonePOPI, true},
			rsNonePOPI: {rsNonePOPI, true}, rsTo: {rsTo, true}, rsToPI: {rsToPI, true},
			rsFrom: {rsFromPO, true}, rsFromPO: {rsFromPO, true}, rsBoth: {rsBoth, true},
		},
		"unsubscribe": { // A.2.2
			rsNone: {rsNone, false}, rsNonePO: {rsNone, true}, rsNonePI: {rsNonePI, false},
			rsNonePOPI: {rsNonePI, true}, rsTo: {rsNone, true}, rsToPI: {rsNonePI, true},
			rsFrom: {rsFrom, false}, rsFromPO: {rsFrom, true}, rsBoth: {rsFrom, true},
		},
		"subscribed": { // A.2.3; without a pending request: pre-approval (§3.4)
			rsNone: {rsNone, false}, rsNonePO: {rsNonePO, false}, rsNonePI: {rsFrom, true},
			rsNonePOPI: {rsFromPO, true}, rsTo: {rsTo, false}, rsToPI: {rsBoth, true},
			rsFrom: {rsFrom, false}, rsFromPO: {rsFromPO, false}, rsBoth: {rsBoth, false},
		},
		"unsubscribed": { // A.2.4
			rsNone: {rsNone, false}, rsNonePO: {rsNonePO, false}, rsNonePI: {rsNone, true},
			rsNonePOPI: {rsNonePO, true}, rsTo: {rsTo, false}, rsToPI: {rsTo, true},
			rsFrom: {rsNone, true}, rsFromPO: {rsNonePO, true}, rsBoth: {rsTo, true},
		},
	}
	rsInbound = map[string]map[rsState]rsRow{
		"subscribe": { // A.3.1
			rsNone: {rsNonePI, true}, rsNonePO: {rsNonePOPI, true}, rsNonePI: {rsNonePI, false},
			rsNonePOPI: {rsNonePOPI, false}, rsTo: {rsToPI, true}, rsToPI: {rsToPI, false},
			rsFrom: {rsFrom, false}, rsFromPO: {rsFromPO, false}, rsBoth: {rsBoth, false},
		},
		"unsubscribe": { // A.3.2
			rsNone: {rsNone, false}, rsNonePO: {rsNonePO, false}, rsNonePI: {rsNone, true},
			rsNonePOPI: {rsNonePO, true}, rsTo: {rsTo, false}, rsToPI: {rsTo, true},
			rsFrom: {rsNone, true}, rsFromPO: {rsNonePO, true}, rsBoth: {rsTo, true},
		},
		"subscribed": { // A.3.3
			rsNone: {rsNone, false}, rsNonePO: {rsTo, true}, rsNonePI: {rsNonePI, false},
			rsNonePOPI: {rsToPI, true}, rsTo: {rsTo, false}, rsToPI: {rsToPI, false},
			rsFrom: {rsFrom, false}, rsFromPO: {rsBoth, true}, rsBoth: {rsBoth, false},
		},
		"unsubscribed": { // A.3.4
			rsNone: {rsNone, false}, rsNonePO: {rsNone, true}, rsNonePI: {rsNonePI, false},
			rsNonePOPI: {rsNonePI, true}, rsTo: {rsNone, true}, rsToPI: {rsNonePI, true},
			rsFrom: {rsFrom, false}, rsFromPO: {rsFrom, true}, rsBoth: {rsFrom, true},
		},
	}
)

// rsStep is one subscription stanza of a setup, sent by alice or by bob.
type rsStep struct {
	byAlice bool
	typ     string
}

// rsSetups reach each state of Appendix A.1 (alice's view) with real
// subscription stanzas. A party has a roster item afterwards exactly when
// it sent one of them.
var rsSetups = []struct {
	state rsState
	steps []rsStep
}{
	{rsNone, nil},
	{rsNonePO, []rsStep{{true, "subscribe"}}},
	{rsNonePI, []rsStep{{false, "subscribe"}}},
	{rsNonePOPI, []rsStep{{true, "subscribe"}, {false, "subscribe"}}},
	{rsTo, []rsStep{{true, "subscribe"}, {false, "subscribed"}}},
	{rsToPI, []rsStep{{true, "subscribe"}, {false, "subscribed"}, {false, "subscribe"}}},
	{rsFrom, []rsStep{{false, "subscribe"}, {true, "subscribed"}}},
	{rsFromPO, []rsStep{{false, "subscribe"}, {true, "subscribed"}, {true, "subscribe"}}},
	{rsBoth, []rsStep{{true, "subscribe"}, {false, "subscribed"}, {false, "subscribe"}, {true, "subscribed"}}},
}

// TestRosterAppendixA drives RFC 6121 Appendix A over the wire: for each of
// the nine states between two local users, alice sends each of the four
// subscription stanzas. Her server applies A.2 (her roster item, whether
// the stanza is routed) and, both users being local, bob's server A.3 (his
// roster item, whether he receives it). Pending inbound requests are
// observed as the re-delivery to a fresh resource (§3.1.3).
func TestRosterAppendixA(t *testing.T) {
	// Parallel cases hold many connections from 127.0.0.1 at once.
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Limits.MaxConnectionsPerIP = 1000 }))
	n := 0
	for _, setup := range rsSetups {
		for _, typ := range rsSubscriptionTypes {
			n++
			i := n
			t.Run(setup.state.String()+"/"+typ, func(t *testing.T) {
				t.Parallel()
				alice := s.AddUser(t, fmt.Sprintf("apx%d-alice", i), "pw")
				bob := s.AddUser(t, fmt.Sprintf("apx%d-bob", i), "pw")
				ac := rsLogin(t, s, alice, "r")
				bc := rsLogin(t, s, bob, "r")
				aBare, bBare := alice.String(), bob.String()

				// Setup, each stanza processed before the next is sent.
				aHas, bHas := false, false
				for _, st := range setup.steps {
					if st.byAlice {
						rsPresenceTo(t, ac, bob, st.typ)
						rsPing(t, ac)
						aHas = true
					} else {
						rsPresenceTo(t, bc, alice, st.typ)
						rsPing(t, bc)
						bHas = true
					}
				}
				aState, bState := setup.state, setup.state.mirror()
				aBefore, bBefore := aState.item(aHas, false), bState.item(bHas, false)
				_, aItems, _ := rsRoster(t, ac)
				_, bItems, _ := rsRoster(t, bc)
				if got := rsItem(aItems[bBare]); got != aBefore {
					t.Fatalf("setup: alice's item %s, want %s", got, aBefore)
				}
				if got := rsItem(bItems[aBare]); got != bBefore {
					t.Fatalf("setup: bob's item %s, want %s", got, bBefore)
				}

				// Expectations: A.2 at alice's server, then A.3 at
				// bob's if routed.
				out := rsOutbound[typ][aState]
				in := rsRow{next: bState}
				if out.pass {
					in = rsInbound[typ][bState]
				}
				approved := typ == "subscribed" && !aState.in && !aState.hasFrom() // §3.4.1
				aAfter := out.next.item(aHas || approved || out.next.sub != "none" || out.next.out, approved)
				bAfter := in.next.item(bHas, false)

				rsPresenceTo(t, ac, bob, typ)
				aEls, aItems, _ := rsRoster(t, ac)
				bEls, bItems, _ := rsRoster(t, bc)

				if got := rsItem(aItems[bBare]); got != aAfter {
					t.Errorf("alice's item %s, want %s (%s)", got, aAfter, out.next)
				}
				if got := rsItem(bItems[aBare]); got != bAfter {
					t.Errorf("bob's item %s, want %s (%s)", got, bAfter, in.next)
				}
				got := rsPresences(bEls, typ, aBare)
				if want := out.pass && in.pass; (len(got) == 1) != want || len(got) > 1 {
					t.Errorf("bob received %d %s from %s, want delivered=%v (routed=%v)", len(got), typ, aBare, want, out.pass)
				}
				for _, p := range got {
					if p.AttrValue("to") != bBare {
						t.Errorf("delivered with to=%q, want %s", p.AttrValue("to"), bBare)
					}
				}
				if got := rsSubscription(aEls, bBare); len(got) > 0 {
					t.Errorf("alice received %s", got[0])
				}
				for _, p := range []struct {
					who           string
					user          jid.JID
					els           []*wire.Element
					contact       string
					before, after string
				}{{"alice", alice, aEls, bBare, aBefore, aAfter}, {"bob", bob, bEls, aBare, bBefore, bAfter}} {
					pushes := rsPushes(t, p.user, p.els, p.contact)
					switch {
					case p.before == p.after && len(pushes) > 0:
						t.Errorf("%s: unexpected roster push %s", p.who, pushes[0])
					case p.before != p.after && len(pushes) != 1:
						t.Errorf("%s: %d roster pushes, want 1 (%s -> %s)", p.who, len(pushes), p.before, p.after)
					case p.before != p.after:
						if got := rsItem(rsPushItem(pushes[0])); got != p.after {
							t.Errorf("%s: pushed %s, want %s", p.who, got, p.after)
						}
					}
				}

				// Pending In, re-delivered to a new resource.
				aReqs := rsPendingRequests(t, s, alice, "check")
				if want := out.next.in; slices.Contains(aReqs, bBare) != want || len(aReqs) > 1 {
					t.Errorf("alice's pending requests %v, want pending from bob=%v", aReqs, want)
				}
				bReqs := rsPendingRequests(t, s, bob, "check")
				if want := in.next.in; slices.Contains(bReqs, aBare) != want || len(bReqs) > 1 {
					t.Errorf("bob's pending requests %v, want pending from alice=%v", bReqs, want)
				}
			})
		}
	}
}

// rsCheckPush checks that els hold exactly one roster push, for an item
// summarised as want, and returns it.
func rsCheckPush(t testing.TB, user jid.JID, els []*wire.Element, contact, want string) *wire.Element {
	t.Helper()
	pushes := rsPushes(t, user, els, contact)
	if len(pushes) != 1 {
		t.Fatalf("%d roster pushes for %s, want 1: %v", len(pushes), contact, pushes)
	}
	if got := rsItem(rsPushItem(pushes[0])); got != want {
		t.Fatalf("pushed %s, want %s: %s", got, want, pushes[0])
	}
	return pushes[0]
}

// TestRosterGetSet covers roster get, set and remove (RFC 6121 §2.1.3,
// §2.3, §2.5) and the pushes to interested resources (§2.1.6).
func TestRosterGetSet(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	bob := s.AddUser(t, "bob", "pw")
	carol := s.AddUser(t, "carol", "pw")
	// a1 and a2 fetch the roster; a3 never does.
	a1 := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "a1"})
	a2 := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "a2"})
	a3 := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "a3"})

	_, items, ver0 := rsRoster(t, a1)
	if len(items) != 0 || ver0 == "" {
		t.Fatalf("new roster: %d items, ver %q", len(items), ver0)
	}
	rsRoster(t, a2)

	// samePush checks the pushes a1 and a2 received: one each, for the
	// same item at the same version, addressed to each resource; a3
	// received none.
	samePush := func(t *testing.T, a1Els []*wire.Element, contact, want string) *wire.Element {
		t.Helper()
		p1 := rsCheckPush(t, alice, a1Els, contact, want)
		p2 := rsCheckPush(t, alice, rsPing(t, a2), contact, want)
		v1, v2 := p1.Child("query", rsNS).AttrValue("ver"), p2.Child("query", rsNS).AttrValue("ver")
		if v1 == "" || v1 != v2 {
			t.Errorf("push versions %q and %q, want equal and set", v1, v2)
		}
		if p1.AttrValue("to") != a1.JID.String() || p2.AttrValue("to") != a2.JID.String() {
			t.Errorf("pushes addressed to %q and %q", p1.AttrValue("to"), p2.AttrValue("to"))
		}
		if got := rsPushes(t, alice, rsPing(t, a3), ""); len(got) > 0 {
			t.Errorf("resource that never fetched the roster got %s", got[0])
		}
		return p1
	}

	var ver1 string
	t.Run("add", func(t *testing.T) {
		before, res := rsSet(t, a1, "<item jid='bob@localhost' name='Bob'><group>Friends</group><group>Work</group></item>")
		rtCheck(t, res, rtWant{name: "iq", typ: "result", to: a1.JID.String(), id: res.AttrValue("id")})
		p := samePush(t, before, bob.String(), "none")
		it := rsPushItem(p)
		if it.AttrValue("name") != "Bob" || !slices.Equal(rsGroups(it), []string{"Friends", "Work"}) {
			t.Errorf("pushed %s", it)
		}
		ver1 = p.Child("query", rsNS).AttrValue("ver")
		if ver1 == ver0 {
			t.Errorf("version %q unchanged by an add", ver1)
		}
		_, items, ver := rsRoster(t, a1)
		if ver != ver1 {
			t.Errorf("roster version %q, push said %q", ver, ver1)
		}
		got := items[bob.String()]
		if len(items) != 1 || got == nil || got.AttrValue("name") != "Bob" || rsItem(got) != "none" ||
			!slices.Equal(rsGroups(got), []string{"Friends", "Work"}) {
			t.Errorf("roster after add: %v", items)
		}
	})

	t.Run("update", func(t *testing.T) {
		// 'subscription' (other than remove) and 'ask' in a set are
		// ignored (RFC 6121 §2.1.2.2, §2.1.2.5).
		before, res := rsSet(t, a1, "<item jid='bob@localhost' name='Robert' subscription='both' ask='subscribe'><group>Work</group></item>")
		if res.AttrValue("type") != "result" {
			t.Fatalf("update answered %s", res)
		}
		p := samePush(t, before, bob.String(), "none")
		it := rsPushItem(p)
		if it.AttrValue("name") != "Robert" || !slices.Equal(rsGroups(it), []string{"Work"}) {
			t.Errorf("pushed %s", it)
		}
		if v := p.Child("query", rsNS).AttrValue("ver"); v == ver1 {
			t.Errorf("version %q unchanged by an update", v)
		}
		_, items, _ := rsRoster(t, a1)
		got := items[bob.String()]
		if got == nil || got.AttrValue("name") != "Robert" || rsItem(got) != "none" || !slices.Equal(rsGroups(got), []string{"Work"}) {
			t.Errorf("roster after update: %v", got)
		}
	})

	t.Run("remove subscribed contact", func(t *testing.T) {
		// alice and bob subscribe to each other.
		a := rsLogin(t, s, alice, "a4")
		b := rsLogin(t, s, bob, "b1")
		for _, st := range []struct {
			from *servertest.Client
			to   jid.JID
			typ  string
		}{{a, bob, "subscribe"}, {b, alice, "subscribed"}, {b, alice, "subscribe"}, {a, bob, "subscribed"}} {
			rsPresenceTo(t, st.from, st.to, st.typ)
			rsPing(t, st.from)
		}
		if _, items, _ := rsRoster(t, b); rsItem(items[alice.String()]) != "both" {
			t.Fatalf("setup: bob's item %s", rsItem(items[alice.String()]))
		}
		rsPing(t, a1) // drop the pushes of the setup
		rsPing(t, a2)
		before, res := rsSet(t, a1, "<item jid='bob@localhost' subscription='remove'/>")
		if res.AttrValue("type") != "result" {
			t.Fatalf("remove answered %s", res)
		}
		samePush(t, before, bob.String(), "remove")
		if _, items, _ := rsRoster(t, a1); items[bob.String()] != nil {
			t.Errorf("bob still in alice's roster: %s", items[bob.String()])
		}
		// §2.5.2: bob gets unsubscribe and unsubscribed.
		bEls, bItems, _ := rsRoster(t, b)
		for _, typ := range []string{"unsubscribe", "unsubscribed"} {
			if got := rsPresences(bEls, typ, alice.String()); len(got) != 1 {
				t.Errorf("bob received %d %s from alice, want 1", len(got), typ)
			}
		}
		if got := rsItem(bItems[alice.String()]); got != "none" {
			t.Errorf("bob's item %s, want none", got)
		}
	})

	t.Run("remove declines a pending request", func(t *testing.T) {
		c := rsLogin(t, s, carol, "c1")
		rsPresenceTo(t, c, alice, "subscribe")
		rsPing(t, c)
		rsPing(t, a2)
		// No item, but a pending request: the removal answers it
		// with unsubscribed (§2.5.2).
		before, res := rsSet(t, a1, "<item jid='carol@localhost' subscription='remove'/>")
		if res.AttrValue("type") != "result" {
			t.Fatalf("remove answered %s", res)
		}
		if got := rsPushes(t, alice, before, carol.String()); len(got) > 0 {
			t.Errorf("push for an item that did not exist: %s", got[0])
		}
		cEls, cItems, _ := rsRoster(t, c)
		if got := rsPresences(cEls, "unsubscribed", alice.String()); len(got) != 1 {
			t.Errorf("carol received %d unsubscribed, want 1", len(got))
		}
		if got := rsItem(cItems[alice.String()]); got != "none" {
			t.Errorf("carol's item %s, want none", got)
		}
		if reqs := rsPendingRequests(t, s, alice, "a5"); len(reqs) > 0 {
			t.Errorf("requests still pending: %v", reqs)
		}
	})
}

// TestRosterErrors covers the error cases of roster sets (RFC 6121 §2.3.3,
// §2.5.3) and gets and sets addressed to another user (§2.1.5).
func TestRosterErrors(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	s.AddUser(t, "bob", "pw")
	a := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "r"})
	rsRoster(t, a)

	const set = "<iq type='set' id='%s'><query xmlns='" + rsNS + "'>"
	cases := []struct {
		name, iq         string
		errType, errCond string
	}{
		{"two items", set + "<item jid='bob@localhost'/><item jid='carol@localhost'/></query></iq>", "modify", "bad-request"},
		{"no item", set + "</query></iq>", "modify", "bad-request"},
		{"invalid JID", set + "<item jid='@localhost'/></query></iq>", "modify", "jid-malformed"},
		{"invalid domain", set + "<item jid='bob@local host'/></query></iq>", "modify", "jid-malformed"},
		{"empty JID", set + "<item jid=''/></query></iq>", "modify", "jid-malformed"},
		{"own bare JID", set + "<item jid='alice@localhost'/></query></iq>", "cancel", "not-allowed"},
		{"own full JID", set + "<item jid='alice@localhost/r'/></query></iq>", "cancel", "not-allowed"},
		{"empty group", set + "<item jid='bob@localhost'><group>x</group><group/></item></query></iq>", "modify", "not-acceptable"},
		{"duplicate group", set + "<item jid='bob@localhost'><group>x</group><group>x</group></item></query></iq>", "modify", "bad-request"},
		{"remove unknown item", set + "<item jid='bob@localhost' subscription='remove'/></query></iq>", "cancel", "item-not-found"},
		{"get of another user's roster", "<iq type='get' id='%s' to='bob@localhost'><query xmlns='" + rsNS + "'/></iq>", "auth", "forbidden"},
		{"set of another user's roster", "<iq type='set' id='%s' to='bob@localhost'><query xmlns='" + rsNS + "'><item jid='carol@localhost'/></query></iq>", "auth", "forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, res := rsExchange(t, a, tc.iq)
			typ, cond := rtStanzaError(res)
			if res.AttrValue("type") != "error" || typ != tc.errType || cond != tc.errCond {
				t.Errorf("answered %s, want %s/%s", res, tc.errType, tc.errCond)
			}
			if got := rsPushes(t, alice, before, ""); len(got) > 0 {
				t.Errorf("roster push after an error: %s", got[0])
			}
		})
	}
	if _, items, _ := rsRoster(t, a); len(items) != 0 {
		t.Errorf("roster changed by failed sets: %v", items)
	}
}

// TestRosterVersioning covers XEP-0237: the stream feature, an up-to-date
// version, an older one answered with pushes of exactly the changes, and
// an unknown one answered with the full roster.
func TestRosterVersioning(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")

	t.Run("stream features", func(t *testing.T) {
		_, f := authRaw(t, s, "alice", "pw")
		if f.Child("ver", rsNSVersioning) == nil {
			t.Errorf("no roster versioning feature in %s", f)
		}
		if f.Child("sub", rsNSPreApproval) == nil {
			t.Errorf("no pre-approval feature in %s", f)
		}
	})

	a1 := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "a1"})
	a2 := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "a2"})
	rsRoster(t, a2)
	for _, c := range []string{"c1", "c2", "c3"} {
		if _, res := rsSet(t, a1, "<item jid='"+c+"@example.org'/>"); res.AttrValue("type") != "result" {
			t.Fatalf("add %s: %s", c, res)
		}
	}
	_, items, v3 := rsRoster(t, a1)
	if len(items) != 3 {
		t.Fatalf("roster %v", items)
	}

	t.Run("current version", func(t *testing.T) {
		_, res := rsGet(t, a1, "ver='"+v3+"'")
		if res.AttrValue("type") != "result" || len(res.Children) != 0 {
			t.Fatalf("answered %s, want an empty result", res)
		}
		if got := rsPushes(t, alice, rsPing(t, a1), ""); len(got) > 0 {
			t.Errorf("push for an up-to-date roster: %s", got[0])
		}
	})

	t.Run("older version", func(t *testing.T) {
		// Changes after v3: update c1, remove c2, add c4.
		for _, item := range []string{
			"<item jid='c1@example.org' name='one'/>",
			"<item jid='c2@example.org' subscription='remove'/>",
			"<item jid='c4@example.org'/>",
		} {
			if _, res := rsSet(t, a1, item); res.AttrValue("type") != "result" {
				t.Fatalf("set %s: %s", item, res)
			}
		}
		_, _, current := rsRoster(t, a1)
		rsPing(t, a2) // the live pushes
		before, res := rsGet(t, a1, "ver='"+v3+"'")
		if got := rsPushes(t, alice, before, ""); len(got) > 0 {
			t.Errorf("push before the result: %s", got[0])
		}
		if res.AttrValue("type") != "result" || len(res.Children) != 0 {
			t.Fatalf("answered %s, want an empty result", res)
		}
		pushes := rsPushes(t, alice, rsPing(t, a1), "")
		var got []string
		last, _ := strconv.ParseUint(v3, 10, 64)
		for _, p := range pushes {
			it := rsPushItem(p)
			got = append(got, it.AttrValue("jid")+" "+rsItem(it)+" "+it.AttrValue("name"))
			v, err := strconv.ParseUint(p.Child("query", rsNS).AttrValue("ver"), 10, 64)
			if err != nil || v <= last {
				t.Errorf("push version %q after %d", p.Child("query", rsNS).AttrValue("ver"), last)
			}
			last = v
		}
		want := []string{"c1@example.org none one", "c2@example.org remove ", "c4@example.org none "}
		if !slices.Equal(got, want) {
			t.Errorf("pushes %q, want %q", got, want)
		}
		if strconv.FormatUint(last, 10) != current {
			t.Errorf("last push version %d, roster version %s", last, current)
		}
		// The catch-up pushes go to the requesting resource only.
		if got := rsPushes(t, alice, rsPing(t, a2), ""); len(got) > 0 {
			t.Errorf("other resource got %s", got[0])
		}
	})

	for _, v := range []string{"garbage", "99999", "-1", ""} {
		t.Run("unknown version "+strconv.Quote(v), func(t *testing.T) {
			_, want, current := rsRoster(t, a1)
			_, res := rsGet(t, a1, "ver='"+v+"'")
			q := res.Child("query", rsNS)
			if res.AttrValue("type") != "result" || q == nil || q.AttrValue("ver") != current {
				t.Fatalf("answered %s, want the full roster at version %s", res, current)
			}
			var got []string
			for _, it := range q.Children {
				got = append(got, it.AttrValue("jid"))
			}
			if len(got) != len(want) || len(got) != 3 {
				t.Errorf("items %v, want %d", got, len(want))
			}
			for _, j := range got {
				if want[j] == nil {
					t.Errorf("unexpected item %s", j)
				}
			}
		})
	}
}

// TestSubscriptionOffline covers a friend request to an offline user: kept
// and re-delivered at every login until answered (RFC 6121 §3.1.3).
func TestSubscriptionOffline(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	bob := s.AddUser(t, "bob", "pw")
	a := rsLogin(t, s, alice, "r")
	rsPresenceTo(t, a, bob, "subscribe")
	before, _, _ := rsRoster(t, a)
	rsCheckPush(t, alice, before, bob.String(), "none+ask")

	// login brings bob online and returns what arrived up to a barrier
	// after his initial presence.
	login := func(resource string) (*servertest.Client, []*wire.Element) {
		c := s.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: resource})
		rsRoster(t, c)
		rsSend(t, c, "<presence/>")
		return c, rsPing(t, c)
	}
	checkRequest := func(els []*wire.Element, c *servertest.Client) {
		t.Helper()
		got := rsPresences(els, "subscribe", alice.String())
		if len(got) != 1 {
			t.Fatalf("%s: %d requests from alice, want 1", c.JID, len(got))
		}
		if to := got[0].AttrValue("to"); to != bob.String() && to != c.JID.String() {
			t.Errorf("request addressed to %q", to)
		}
	}

	b1, els := login("b1")
	checkRequest(els, b1)
	b1.Close()

	b2, els := login("b2")
	checkRequest(els, b2)
	rsPresenceTo(t, b2, alice, "subscribed")
	rsPing(t, b2)

	_, els = login("b3")
	if got := rsPresences(els, "subscribe", alice.String()); len(got) > 0 {
		t.Errorf("answered request delivered again: %s", got[0])
	}

	// alice: the approval, a push of her item as 'to', and bob's
	// presence (§3.1.5, §3.1.6).
	var aEls []*wire.Element
	a.Next(t, wait, func(e *wire.Element) bool {
		aEls = append(aEls, e)
		return e.Name == "presence" && e.AttrValue("type") == "" && e.AttrValue("from") == bob.String()+"/b2"
	})
	if got := rsPresences(aEls, "subscribed", bob.String()); len(got) != 1 {
		t.Errorf("alice received %d subscribed from bob, want 1", len(got))
	}
	rsCheckPush(t, alice, aEls, bob.String(), "to")
	if _, items, _ := rsRoster(t, a); rsItem(items[bob.String()]) != "to" {
		t.Errorf("alice's item %s, want to", rsItem(items[bob.String()]))
	}
}

// TestSubscriptionPreApproval covers RFC 6121 §3.4: bob approves alice
// before she asks; her request is then accepted by the server without bob
// seeing it.
func TestSubscriptionPreApproval(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	bob := s.AddUser(t, "bob", "pw")
	a := rsLogin(t, s, alice, "r")
	b := rsLogin(t, s, bob, "r")

	rsPresenceTo(t, b, alice, "subscribed")
	bEls, bItems, _ := rsRoster(t, b)
	rsCheckPush(t, bob, bEls, alice.String(), "none+approved")
	if got := rsItem(bItems[alice.String()]); got != "none+approved" {
		t.Errorf("bob's item %s, want none+approved", got)
	}
	// A pre-approval is not routed (§3.4.1).
	aEls, aItems, _ := rsRoster(t, a)
	if got := rsSubscription(aEls, bob.String()); len(got) > 0 {
		t.Errorf("alice received %s", got[0])
	}
	if got := rsItem(aItems[bob.String()]); got != "absent" {
		t.Errorf("alice's item %s, want absent", got)
	}

	rsPresenceTo(t, a, bob, "subscribe")
	aEls, aItems, _ = rsRoster(t, a)
	if got := rsPresences(aEls, "subscribed", bob.String()); len(got) != 1 {
		t.Errorf("alice received %d subscribed from bob, want 1", len(got))
	}
	if got := rsPresences(aEls, "", bob.String()+"/r"); len(got) != 1 {
		t.Errorf("alice received %d presences from bob, want 1", len(got))
	}
	if got := rsItem(aItems[bob.String()]); got != "to" {
		t.Errorf("alice's item %s, want to", got)
	}
	bEls, bItems, _ = rsRoster(t, b)
	if got := rsSubscription(bEls, alice.String()); len(got) > 0 {
		t.Errorf("bob saw %s", got[0])
	}
	rsCheckPush(t, bob, bEls, alice.String(), "from")
	if got := rsItem(bItems[alice.String()]); got != "from" {
		t.Errorf("bob's item %s, want from", got)
	}
	// Nothing left pending at bob.
	if reqs := rsPendingRequests(t, s, bob, "check"); len(reqs) > 0 {
		t.Errorf("bob's pending requests %v", reqs)
	}
}

// TestSubscriptionUnknownUser covers a request to a local account that
// does not exist: the server refuses it in its name (RFC 6121 §3.1.3).
func TestSubscriptionUnknownUser(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	a := rsLogin(t, s, alice, "r")
	const nobody = "nobody@localhost"
	rsSend(t, a, "<presence to='%s' type='subscribe'/>", nobody)
	els, items, _ := rsRoster(t, a)
	got := rsPresences(els, "unsubscribed", nobody)
	if len(got) != 1 {
		t.Fatalf("alice received %d unsubscribed from %s, want 1", len(got), nobody)
	}
	rtCheck(t, got[0], rtWant{name: "presence", typ: "unsubscribed", from: nobody, to: alice.String()})
	if it := rsItem(items[nobody]); it != "none" {
		t.Errorf("alice's item %s, want none", it)
	}
}
