package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp/config"
	"switchboard/xmpp/server"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// End-to-end tests of the server's features over real sockets: message
// carbons (XEP-0280), blocking (XEP-0191), last activity (XEP-0012),
// presence set from outside (the presence module's overrides and the admin
// socket), the shared roster and monitors (roster/shared.go).
//
// Negative checks ("nothing arrives") need no waiting: a session's stanzas
// are handled in order, and whatever one of them causes is queued to every
// recipient before the next one is read. So once the sender's barrier
// (ftSync) is answered, the deliveries its earlier stanzas caused are
// queued; a recipient's barrier answered after that returns all of them.
//
// Helpers are prefixed ft to stay clear of the other end-to-end files of
// this package.

const (
	ftPassword      = "pw"
	ftNSClient      = "jabber:client"
	ftNSStanzas     = "urn:ietf:params:xml:ns:xmpp-stanzas"
	ftNSCarbons     = "urn:xmpp:carbons:2"
	ftNSForward     = "urn:xmpp:forward:0"
	ftNSBlocking    = "urn:xmpp:blocking"
	ftNSBlockErrors = "urn:xmpp:blocking:errors"
	ftNSLast        = "jabber:iq:last"
	ftNSRoster      = "jabber:iq:roster"
	ftNSCall        = "urn:switchboard:call:0"
	ftNSCaps        = "http://jabber.org/protocol/caps"

	// ftWait bounds every wait for something that must arrive.
	ftWait = 5 * time.Second
)

var ftSeq atomic.Uint64

// ftID returns a unique stanza id.
func ftID(prefix string) string { return prefix + strconv.FormatUint(ftSeq.Add(1), 10) }

// ftLogin logs in a resource of user (no roster request, no presence).
func ftLogin(t testing.TB, s *servertest.Server, user jid.JID, resource string) *servertest.Client {
	t.Helper()
	return s.MustLogin(t, user, ftPassword, servertest.ClientOptions{Resource: resource})
}

// ftSend writes one stanza. The context is never done: mellium arms a
// goroutine per Send that, once the context is done, moves the write
// deadline and may fail a later write.
func ftSend(t testing.TB, c *servertest.Client, format string, args ...any) {
	t.Helper()
	xml := fmt.Sprintf(format, args...)
	if err := c.SendRaw(context.Background(), xml); err != nil {
		t.Fatalf("%s: send %s: %v", c.JID, xml, err)
	}
}

// ftExchange sends the stanza iq (normally an IQ request), a format whose
// first verb is the id (args fill the others), and returns its answer (a
// result or error with that id) and every element received before it.
func ftExchange(t testing.TB, c *servertest.Client, iq string, args ...any) (before []*wire.Element, res *wire.Element) {
	t.Helper()
	id := ftID("ft")
	ftSend(t, c, iq, append([]any{id}, args...)...)
	res = c.Next(t, ftWait, func(e *wire.Element) bool {
		if e.AttrValue("id") == id &&
			(e.AttrValue("type") == "result" || e.AttrValue("type") == "error") {
			return true
		}
		before = append(before, e)
		return false
	})
	return before, res
}

// ftSync is a barrier: it pings the server and returns every element
// received before the answer.
func ftSync(t testing.TB, c *servertest.Client) []*wire.Element {
	t.Helper()
	before, res := ftExchange(t, c, "<iq type='get' id='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	if res.AttrValue("type") != "result" {
		t.Fatalf("%s: barrier ping answered %s", c.JID, res)
	}
	return before
}

// ftOnline sends the broadcast presence p and returns what arrived up to
// the barrier after it, checking that the server echoed the presence to
// the sender (RFC 6121 §4.2.2).
func ftOnline(t testing.TB, c *servertest.Client, p string) []*wire.Element {
	t.Helper()
	ftSend(t, c, "%s", p)
	els := ftSync(t, c)
	if len(ftWhere(els, ftPresence("", c.JID.String()))) == 0 {
		t.Fatalf("%s: no echo of its presence %s in %v", c.JID, p, els)
	}
	return els
}

// ftLogout closes the stream without unavailable presence and waits for
// the server's closing tag, written after the session was unbound.
func ftLogout(t testing.TB, c *servertest.Client) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("%s: close: %v", c.JID, err)
	}
	c.Closed(t, ftWait)
	c.Conn().Close()
}

// ftSubscribe gives user a subscription to contact's presence (and the
// reverse too when mutual) over the wire, with resources that leave again.
func ftSubscribe(t testing.TB, s *servertest.Server, user, contact jid.JID, mutual bool) {
	t.Helper()
	u := ftLogin(t, s, user, "setup")
	c := ftLogin(t, s, contact, "setup")
	ftOnline(t, u, "<presence/>")
	ftOnline(t, c, "<presence/>")
	handshake := func(a, b *servertest.Client) {
		ab, bb := a.JID.Bare().String(), b.JID.Bare().String()
		ftSend(t, a, "<presence to='%s' type='subscribe'/>", bb)
		b.Next(t, ftWait, ftPresence("subscribe", ab))
		ftSend(t, b, "<presence to='%s' type='subscribed'/>", ab)
		a.Next(t, ftWait, ftPresence("subscribed", bb))
	}
	handshake(u, c)
	if mutual {
		handshake(c, u)
	}
	ftLogout(t, u)
	ftLogout(t, c)
}

// ftPresence matches presence stanzas of type typ ("" = available) from
// exactly from.
func ftPresence(typ, from string) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("type") == typ && e.AttrValue("from") == from
	}
}

// ftWithID matches stanzas named name with the id.
func ftWithID(name, id string) func(*wire.Element) bool {
	return func(e *wire.Element) bool { return e.Name == name && e.AttrValue("id") == id }
}

// ftFromAccount matches stanzas from the account bare or any of its
// resources.
func ftFromAccount(bare jid.JID) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		f, err := jid.Parse(e.AttrValue("from"))
		return err == nil && f.Bare().Equal(bare)
	}
}

// ftWhere returns the elements of els that match.
func ftWhere(els []*wire.Element, match func(*wire.Element) bool) []*wire.Element {
	var out []*wire.Element
	for _, e := range els {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// ftOne returns the only element of els matching, failing otherwise.
func ftOne(t testing.TB, what string, els []*wire.Element, match func(*wire.Element) bool) *wire.Element {
	t.Helper()
	got := ftWhere(els, match)
	if len(got) != 1 {
		t.Fatalf("%s: got %d matching stanzas, want exactly 1; received %v", what, len(got), els)
	}
	return got[0]
}

// ftNone fails if an element of els matches.
func ftNone(t testing.TB, what string, els []*wire.Element, match func(*wire.Element) bool) {
	t.Helper()
	if got := ftWhere(els, match); len(got) != 0 {
		t.Fatalf("%s: got %d stanzas, want none: %v", what, len(got), got)
	}
}

// ftError returns the type and defined condition of el's <error/>, and the
// element itself.
func ftError(el *wire.Element) (typ, cond string, e *wire.Element) {
	e = el.Child("error", ftNSClient)
	if e == nil {
		return "", "", nil
	}
	for _, c := range e.Children {
		if c.Space == ftNSStanzas && c.Name != "text" {
			cond = c.Name
			break
		}
	}
	return e.AttrValue("type"), cond, e
}

// ftWantError checks that el is an error stanza with the condition.
func ftWantError(t testing.TB, el *wire.Element, cond string) *wire.Element {
	t.Helper()
	_, got, e := ftError(el)
	if el.AttrValue("type") != "error" || got != cond {
		t.Fatalf("got %s, want an error %s", el, cond)
	}
	return e
}

// ftAttrs compares attributes of el with want (name, value pairs; "" =
// absent).
func ftAttrs(t testing.TB, el *wire.Element, want ...string) {
	t.Helper()
	for i := 0; i+1 < len(want); i += 2 {
		if got := el.AttrValue(want[i]); got != want[i+1] {
			t.Errorf("%s = %q, want %q in %s", want[i], got, want[i+1], el)
		}
	}
}

// TestFeatureCarbons covers XEP-0280: <received/> copies of messages
// delivered to one resource go to the account's other resources that
// enabled carbons, <sent/> copies of messages a resource sends go to the
// others; private messages, non-eligible types, resources that never
// enabled carbons and resources that disabled them get none.
func TestFeatureCarbons(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", ftPassword)
	bob := s.AddUser(t, "bob", ftPassword)
	phone := ftLogin(t, s, alice, "phone")
	desk := ftLogin(t, s, alice, "desk")
	tablet := ftLogin(t, s, alice, "tablet") // never enables carbons
	pc := ftLogin(t, s, bob, "pc")
	// phone has the highest priority: a message to alice's bare JID
	// goes to it alone (RFC 6121 §8.5.2.1.1).
	ftOnline(t, phone, "<presence><priority>5</priority></presence>")
	ftOnline(t, desk, "<presence><priority>1</priority></presence>")
	ftOnline(t, tablet, "<presence><priority>0</priority></presence>")
	ftOnline(t, pc, "<presence/>")
	for _, c := range []*servertest.Client{phone, desk} {
		_, res := ftExchange(t, c, "<iq type='set' id='%s'><enable xmlns='"+ftNSCarbons+"'/></iq>")
		ftAttrs(t, res, "type", "result")
	}
	all := []*servertest.Client{phone, desk, tablet, pc}
	bare := alice.String()

	type carbon struct {
		to   *servertest.Client
		kind string // "sent" or "received"
	}
	cases := []struct {
		name     string
		from     *servertest.Client
		to       string // the address as sent
		typ      string // message type attribute ("" = none)
		extra    string // further payload
		deliver  *servertest.Client
		carbons  []carbon
		disabled bool // desk has disabled carbons for this case
	}{
		{name: "received at phone", from: pc, to: "alice@localhost/phone", typ: "chat",
			deliver: phone, carbons: []carbon{{desk, "received"}}},
		{name: "received at tablet", from: pc, to: "alice@localhost/tablet", typ: "chat",
			deliver: tablet, carbons: []carbon{{phone, "received"}, {desk, "received"}}},
		{name: "to bare JID: highest priority gets it", from: pc, to: "alice@localhost", typ: "chat",
			deliver: phone, carbons: []carbon{{desk, "received"}}},
		{name: "normal with body", from: pc, to: "alice@localhost/phone", typ: "normal",
			deliver: phone, carbons: []carbon{{desk, "received"}}},
		{name: "sent from phone", from: phone, to: "bob@localhost/pc", typ: "chat",
			deliver: pc, carbons: []carbon{{desk, "sent"}}},
		{name: "sent from desk to bare JID", from: desk, to: "bob@localhost", typ: "chat",
			deliver: pc, carbons: []carbon{{phone, "sent"}}},
		{name: "sent from tablet", from: tablet, to: "bob@localhost/pc", typ: "chat",
			deliver: pc, carbons: []carbon{{phone, "sent"}, {desk, "sent"}}},
		{name: "received private", from: pc, to: "alice@localhost/phone", typ: "chat",
			extra: "<private xmlns='" + ftNSCarbons + "'/><no-copy xmlns='urn:xmpp:hints'/>", deliver: phone},
		{name: "sent private", from: phone, to: "bob@localhost/pc", typ: "chat",
			extra: "<private xmlns='" + ftNSCarbons + "'/>", deliver: pc},
		{name: "headline", from: pc, to: "alice@localhost/phone", typ: "headline", deliver: phone},
		{name: "received after desk disabled", from: pc, to: "alice@localhost/phone", typ: "chat",
			deliver: phone, disabled: true},
		{name: "sent after desk disabled", from: phone, to: "bob@localhost/pc", typ: "chat",
			deliver: pc, disabled: true},
		{name: "sent from desk after it disabled", from: desk, to: "bob@localhost/pc", typ: "chat",
			deliver: pc, carbons: []carbon{{phone, "sent"}}, disabled: true},
	}
	enabled := true
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.disabled && enabled {
				_, res := ftExchange(t, desk, "<iq type='set' id='%s'><disable xmlns='"+ftNSCarbons+"'/></iq>")
				ftAttrs(t, res, "type", "result")
				enabled = false
			}
			id := ftID("carbon")
			body := "hello " + tc.name
			typ := ""
			if tc.typ != "" {
				typ = " type='" + tc.typ + "'"
			}
			ftSend(t, tc.from, "<message to='%s' id='%s'%s><body>%s</body>%s</message>", tc.to, id, typ, body, tc.extra)
			ftSync(t, tc.from)
			for _, c := range all {
				got := ftSync(t, c)
				// The message itself.
				direct := ftWhere(got, ftWithID("message", id))
				if c == tc.deliver {
					if len(direct) != 1 {
						t.Fatalf("%s: got %d copies of the message, want 1: %v", c.JID, len(direct), got)
					}
					ftAttrs(t, direct[0], "from", tc.from.JID.String(), "to", tc.to)
				} else if len(direct) != 0 {
					t.Fatalf("%s: got the message, want it at %s only: %v", c.JID, tc.deliver.JID, direct)
				}
				// Its carbon copies.
				copies := ftWhere(got, func(e *wire.Element) bool {
					return e.Name == "message" && (e.Child("sent", ftNSCarbons) != nil || e.Child("received", ftNSCarbons) != nil)
				})
				want := ""
				for _, cb := range tc.carbons {
					if cb.to == c {
						want = cb.kind
					}
				}
				if want == "" {
					if len(copies) != 0 {
						t.Fatalf("%s: got carbons, want none: %v", c.JID, copies)
					}
					continue
				}
				if len(copies) != 1 {
					t.Fatalf("%s: got %d carbons, want one <%s/>: %v", c.JID, len(copies), want, got)
				}
				cp := copies[0]
				// XEP-0280 §7, §8: from the bare JID to the resource.
				ftAttrs(t, cp, "from", bare, "to", c.JID.String())
				wrapper := cp.Child(want, ftNSCarbons)
				if wrapper == nil {
					t.Fatalf("%s: carbon without <%s/>: %s", c.JID, want, cp)
				}
				fwd := wrapper.Child("forwarded", ftNSForward)
				if fwd == nil {
					t.Fatalf("%s: carbon without <forwarded/>: %s", c.JID, cp)
				}
				orig := fwd.Child("message", ftNSClient)
				if orig == nil {
					t.Fatalf("%s: carbon without the forwarded message: %s", c.JID, cp)
				}
				ftAttrs(t, orig, "from", tc.from.JID.String(), "to", tc.to, "id", id, "type", tc.typ)
				if got := orig.ChildText("body", ftNSClient); got != body {
					t.Errorf("%s: forwarded body %q, want %q", c.JID, got, body)
				}
			}
		})
	}

	t.Run("enable for another account", func(t *testing.T) {
		_, res := ftExchange(t, pc, "<iq type='set' id='%s' to='alice@localhost'><enable xmlns='"+ftNSCarbons+"'/></iq>")
		ftWantError(t, res, "forbidden")
	})
}

// TestFeatureBlocking covers XEP-0191: the blocklist (get, block, unblock,
// unblock all, pushes to the resources that fetched it), inbound stanzas
// from blocked entities (messages and IQs answered with service-unavailable,
// presence dropped), the user's own stanzas to them (refused with
// not-acceptable and <blocked/>), the unavailable presence sent on block,
// and domain items.
func TestFeatureBlocking(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		other := c.Hosts[0]
		other.Domain = "example.org"
		c.Hosts = append(c.Hosts, other)
	}))
	alice := s.AddUser(t, "alice", ftPassword)
	bob := s.AddUser(t, "bob", ftPassword)
	if err := s.Accounts().Create(t.Context(), "example.org", "dave", ftPassword); err != nil {
		t.Fatal(err)
	}
	dave := jid.MustParse("dave@example.org")
	ftSubscribe(t, s, alice, bob, true)

	one := ftLogin(t, s, alice, "one") // fetches the blocklist
	two := ftLogin(t, s, alice, "two") // does not
	pc := ftLogin(t, s, bob, "pc")
	dpc := ftLogin(t, s, dave, "pc")
	ftOnline(t, pc, "<presence/>")
	ftOnline(t, one, "<presence/>")
	ftOnline(t, two, "<presence/>")
	ftOnline(t, dpc, "<presence/>")
	for _, c := range []*servertest.Client{one, two, pc, dpc} {
		ftSync(t, c)
	}

	blocklist := func(t *testing.T) []string {
		t.Helper()
		_, res := ftExchange(t, one, "<iq type='get' id='%s'><blocklist xmlns='"+ftNSBlocking+"'/></iq>")
		l := res.Child("blocklist", ftNSBlocking)
		if res.AttrValue("type") != "result" || l == nil {
			t.Fatalf("blocklist get answered %s", res)
		}
		var out []string
		for _, it := range l.Children {
			if it.Name == "item" && it.Space == ftNSBlocking {
				out = append(out, it.AttrValue("jid"))
			}
		}
		slices.Sort(out)
		return out
	}
	// change sends a block or unblock command from one and checks the
	// result and the pushes: to one, which fetched the list, not to two.
	change := func(t *testing.T, cmd string, items ...string) {
		t.Helper()
		var xml strings.Builder
		for _, it := range items {
			fmt.Fprintf(&xml, "<item jid='%s'/>", it)
		}
		before, res := ftExchange(t, one, "<iq type='set' id='%s'><%s xmlns='"+ftNSBlocking+"'>%s</%s></iq>", cmd, xml.String(), cmd)
		ftAttrs(t, res, "type", "result")
		got := append(before, ftSync(t, one)...)
		push := ftOne(t, cmd+" push", got, func(e *wire.Element) bool {
			return e.Name == "iq" && e.AttrValue("type") == "set" && e.Child(cmd, ftNSBlocking) != nil
		})
		if f := push.AttrValue("from"); f != "" && f != alice.String() {
			t.Errorf("push from %q: %s", f, push)
		}
		ftAttrs(t, push, "to", one.JID.String())
		var pushed []string
		for _, it := range push.Child(cmd, ftNSBlocking).Children {
			pushed = append(pushed, it.AttrValue("jid"))
		}
		if !slices.Equal(pushed, items) {
			t.Errorf("push items %v, want %v", pushed, items)
		}
		ftNone(t, "push to the resource that never fetched the list", ftSync(t, two),
			func(e *wire.Element) bool { return e.Name == "iq" && e.AttrValue("type") == "set" })
	}
	// exchange is one stanza and its fate: delivered as sent, or answered
	// with an error (cond; blocked: with <blocked/> inside <error/>).
	type exchange struct {
		name     string
		from, to *servertest.Client
		addr     string // the address as sent
		stanza   string // format: %[1]s address, %[2]s id
		cond     string // "" = delivered
		blocked  bool
	}
	const (
		chat = "<message to='%[1]s' id='%[2]s' type='chat'><body>hi</body></message>"
		ping = "<iq to='%[1]s' id='%[2]s' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
		last = "<iq to='%[1]s' id='%[2]s' type='get'><query xmlns='" + ftNSLast + "'/></iq>"
	)
	run := func(t *testing.T, cases []exchange) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				id := ftID("blk")
				ftSend(t, tc.from, tc.stanza, tc.addr, id)
				name := tc.stanza[1:strings.IndexAny(tc.stanza, " >")]
				got := ftSync(t, tc.from)
				if tc.cond == "" {
					el := ftOne(t, "delivered", ftSync(t, tc.to), ftWithID(name, id))
					ftAttrs(t, el, "from", tc.from.JID.String(), "to", tc.addr)
					return
				}
				errEl := ftOne(t, "error to the sender", got, ftWithID(name, id))
				e := ftWantError(t, errEl, tc.cond)
				ftAttrs(t, errEl, "to", tc.from.JID.String())
				if tc.blocked {
					// §3.5: from the blocked contact, the condition
					// inside <error/>.
					ftAttrs(t, errEl, "from", tc.addr)
					if e.Child("blocked", ftNSBlockErrors) == nil {
						t.Errorf("no <blocked xmlns='%s'/> inside <error/>: %s", ftNSBlockErrors, errEl)
					}
				}
				for _, c := range []*servertest.Client{tc.to, one, two} {
					ftNone(t, "at "+c.JID.String(), ftSync(t, c), ftWithID(name, id))
				}
			})
		}
	}

	t.Run("empty blocklist", func(t *testing.T) {
		if l := blocklist(t); len(l) != 0 {
			t.Fatalf("blocklist %v, want empty", l)
		}
	})
	t.Run("block without items", func(t *testing.T) {
		_, res := ftExchange(t, one, "<iq type='set' id='%s'><block xmlns='"+ftNSBlocking+"'/></iq>")
		ftWantError(t, res, "bad-request")
	})
	t.Run("block malformed JID", func(t *testing.T) {
		_, res := ftExchange(t, one, "<iq type='set' id='%s'><block xmlns='"+ftNSBlocking+"'><item jid='@@'/></block></iq>")
		ftWantError(t, res, "jid-malformed")
	})

	t.Run("block contact", func(t *testing.T) {
		change(t, "block", bob.String())
		// §3.3: bob sees each of alice's resources go offline.
		got := ftSync(t, pc)
		for _, c := range []*servertest.Client{one, two} {
			ftOne(t, "unavailable from "+c.JID.String(), got, ftPresence("unavailable", c.JID.String()))
		}
		if l := blocklist(t); !slices.Equal(l, []string{bob.String()}) {
			t.Fatalf("blocklist %v, want [%s]", l, bob)
		}
	})
	t.Run("while blocked", func(t *testing.T) {
		run(t, []exchange{
			{name: "message to bare JID", from: pc, to: one, addr: alice.String(), stanza: chat, cond: "service-unavailable"},
			{name: "message to full JID", from: pc, to: one, addr: one.JID.String(), stanza: chat, cond: "service-unavailable"},
			{name: "IQ to full JID", from: pc, to: one, addr: one.JID.String(), stanza: ping, cond: "service-unavailable"},
			{name: "IQ to bare JID", from: pc, to: one, addr: alice.String(), stanza: last, cond: "service-unavailable"},
			{name: "message from alice", from: one, to: pc, addr: pc.JID.String(), stanza: chat, cond: "not-acceptable", blocked: true},
			{name: "message from alice to bare JID", from: two, to: pc, addr: bob.String(), stanza: chat, cond: "not-acceptable", blocked: true},
			{name: "IQ from alice", from: one, to: pc, addr: pc.JID.String(), stanza: ping, cond: "not-acceptable", blocked: true},
		})
		t.Run("presence", func(t *testing.T) {
			// Broadcast, directed and subscription presence of bob
			// never reach alice; alice's presence no longer reaches
			// bob, who has seen her go offline.
			ftSend(t, pc, "<presence><show>away</show></presence>")
			ftSend(t, pc, "<presence to='%s'><show>chat</show></presence>", one.JID)
			ftSend(t, pc, "<presence to='%s' type='subscribe'/>", alice)
			ftSend(t, pc, "<presence to='%s' type='probe'/>", alice)
			ftSync(t, pc)
			for _, c := range []*servertest.Client{one, two} {
				ftNone(t, "presence from bob at "+c.JID.String(), ftSync(t, c), func(e *wire.Element) bool {
					return e.Name == "presence" && ftFromAccount(bob)(e)
				})
			}
			ftSend(t, one, "<presence><show>xa</show></presence>")
			ftSync(t, one)
			ftNone(t, "presence from alice at bob", ftSync(t, pc), func(e *wire.Element) bool {
				return e.Name == "presence" && ftFromAccount(alice)(e)
			})
		})
	})
	t.Run("unblock contact", func(t *testing.T) {
		change(t, "unblock", bob.String())
		run(t, []exchange{
			{name: "message from bob", from: pc, to: one, addr: one.JID.String(), stanza: chat},
			{name: "message from alice", from: one, to: pc, addr: pc.JID.String(), stanza: chat},
		})
	})
	t.Run("block domain", func(t *testing.T) {
		change(t, "block", "example.org", bob.String())
		if l := blocklist(t); !slices.Equal(l, []string{bob.String(), "example.org"}) {
			t.Fatalf("blocklist %v, want [%s example.org]", l, bob)
		}
		run(t, []exchange{
			{name: "message from the domain", from: dpc, to: one, addr: one.JID.String(), stanza: chat, cond: "service-unavailable"},
			{name: "message to the domain", from: one, to: dpc, addr: dpc.JID.String(), stanza: chat, cond: "not-acceptable", blocked: true},
		})
	})
	t.Run("unblock all", func(t *testing.T) {
		change(t, "unblock")
		if l := blocklist(t); len(l) != 0 {
			t.Fatalf("blocklist %v, want empty", l)
		}
		run(t, []exchange{
			{name: "message from the domain", from: dpc, to: one, addr: one.JID.String(), stanza: chat},
			{name: "message from bob", from: pc, to: two, addr: two.JID.String(), stanza: chat},
			{name: "message to bob", from: two, to: pc, addr: pc.JID.String(), stanza: chat},
		})
	})
	t.Run("own domain", func(t *testing.T) {
		// Blocking the own domain blocks its other users, not the
		// server itself nor the account's own resources.
		change(t, "block", "localhost")
		ftSync(t, one) // answered by the server
		run(t, []exchange{
			{name: "message from bob", from: pc, to: one, addr: one.JID.String(), stanza: chat, cond: "service-unavailable"},
			{name: "message between own resources", from: two, to: one, addr: one.JID.String(), stanza: chat},
		})
		change(t, "unblock", "localhost")
	})
}

// TestFeatureLastActivity covers XEP-0012: the server's uptime (§5), a
// user's last activity for subscribers (§4): 0 while online, the time since
// logout and the status of the last unavailable presence when offline; and
// forbidden for others.
func TestFeatureLastActivity(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", ftPassword)
	bob := s.AddUser(t, "bob", ftPassword)
	carol := s.AddUser(t, "carol", ftPassword)
	ftSubscribe(t, s, bob, alice, false) // bob sees alice's presence
	pc := ftLogin(t, s, bob, "pc")
	cc := ftLogin(t, s, carol, "pc")

	type want struct {
		cond    string // "" = result
		seconds string // exact value, or "" for any non-negative integer
		text    string
	}
	query := func(t *testing.T, from *servertest.Client, to string, w want) {
		t.Helper()
		_, res := ftExchange(t, from, "<iq type='get' id='%s' to='%s'><query xmlns='"+ftNSLast+"'/></iq>", to)
		if w.cond != "" {
			ftWantError(t, res, w.cond)
			ftAttrs(t, res, "from", to)
			return
		}
		q := res.Child("query", ftNSLast)
		if res.AttrValue("type") != "result" || q == nil {
			t.Fatalf("last activity of %s answered %s", to, res)
		}
		ftAttrs(t, res, "from", to)
		secs := q.AttrValue("seconds")
		if n, err := strconv.ParseUint(secs, 10, 63); err != nil {
			t.Fatalf("seconds %q is not a non-negative integer (%v): %s", secs, n, res)
		}
		if w.seconds != "" && secs != w.seconds {
			t.Errorf("seconds = %q, want %q: %s", secs, w.seconds, res)
		}
		if q.Text != w.text {
			t.Errorf("text = %q, want %q: %s", q.Text, w.text, res)
		}
	}

	t.Run("server uptime", func(t *testing.T) {
		query(t, pc, "localhost", want{})
	})
	ph := ftLogin(t, s, alice, "phone")
	ftOnline(t, ph, "<presence><status>At work</status></presence>")
	ftSync(t, pc)
	t.Run("online", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			from *servertest.Client
			w    want
		}{
			{"subscriber", pc, want{seconds: "0"}},
			{"not subscribed", cc, want{cond: "forbidden"}},
			{"the user", ph, want{seconds: "0"}},
		} {
			t.Run(tc.name, func(t *testing.T) { query(t, tc.from, alice.String(), tc.w) })
		}
	})
	ftSend(t, ph, "<presence type='unavailable'><status>Gone home</status></presence>")
	ftSync(t, ph)
	ftLogout(t, ph)
	t.Run("offline", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			from *servertest.Client
			w    want
		}{
			{"subscriber", pc, want{text: "Gone home"}},
			{"not subscribed", cc, want{cond: "forbidden"}},
		} {
			t.Run(tc.name, func(t *testing.T) { query(t, tc.from, alice.String(), tc.w) })
		}
	})
	t.Run("no such user", func(t *testing.T) {
		query(t, pc, "nobody@localhost", want{cond: "service-unavailable"})
	})
}

// ftOverridden checks a presence carrying an override: show, status and
// the call element replaced, the other children (priority, caps) kept.
func ftOverridden(t testing.TB, el *wire.Element, show, status, call, priority string) {
	t.Helper()
	if got := el.ChildText("show", ftNSClient); got != show {
		t.Errorf("show = %q, want %q in %s", got, show, el)
	}
	if got := el.ChildText("status", ftNSClient); got != status {
		t.Errorf("status = %q, want %q in %s", got, status, el)
	}
	if got := el.ChildText("priority", ftNSClient); got != priority {
		t.Errorf("priority = %q, want %q in %s", got, priority, el)
	}
	if el.Child("c", ftNSCaps) == nil {
		t.Errorf("caps element lost: %s", el)
	}
	var calls []*wire.Element
	for _, c := range el.Children {
		if c.Space == ftNSCall {
			calls = append(calls, c)
		}
	}
	for _, name := range []string{"show", "status"} {
		if n := len(ftWhere(el.Children, func(e *wire.Element) bool { return e.Name == name && e.Space == ftNSClient })); n > 1 {
			t.Errorf("%d <%s/> elements in %s", n, name, el)
		}
	}
	switch {
	case call == "" && len(calls) != 0:
		t.Errorf("call element in %s, want none", el)
	case call != "" && (len(calls) != 1 || calls[0].Name != "call" || calls[0].AttrValue("state") != call):
		t.Errorf("want one <call state='%s'/> in %s", call, el)
	}
}

// TestFeaturePresenceOverride covers presence set from outside: through
// the presence module (srv.Presence()) and the admin socket, for a user
// online with two resources and for one offline (applied at next login).
// Contacts and the user's own resources see show and status replaced and
// the call element added; clearing brings back each resource's own
// presence.
func TestFeaturePresenceOverride(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Listen.AdminSocket = sock }))
	alice := s.AddUser(t, "alice", ftPassword)
	bob := s.AddUser(t, "bob", ftPassword)
	ftSubscribe(t, s, alice, bob, true)
	pc := ftLogin(t, s, bob, "pc")
	ftOnline(t, pc, "<presence/>")

	const caps = "<c xmlns='" + ftNSCaps + "' hash='sha-1' node='https://example.org' ver='abc='/>"
	presence := func(prio string) string {
		return "<presence><show>away</show><status>Lunch</status><priority>" + prio + "</priority>" + caps + "</presence>"
	}
	type look struct{ show, status, call string }
	overridden := look{"dnd", "On a call", "on-call"}
	own := look{"away", "Lunch", ""}
	// checkAt checks that each watcher received, since its last barrier,
	// one presence of each of alice's resources, looking like l.
	checkAt := func(t *testing.T, watchers, resources []*servertest.Client, prios []string, l look) {
		t.Helper()
		for _, w := range watchers {
			got := ftSync(t, w)
			for i, r := range resources {
				el := ftOne(t, fmt.Sprintf("presence of %s at %s", r.JID, w.JID), got, ftPresence("", r.JID.String()))
				ftOverridden(t, el, l.show, l.status, l.call, prios[i])
			}
		}
	}
	// check checks at bob and at each of alice's resources.
	check := func(t *testing.T, resources []*servertest.Client, prios []string, l look) {
		t.Helper()
		checkAt(t, append([]*servertest.Client{pc}, resources...), resources, prios, l)
	}
	ctx := t.Context()

	phone := ftLogin(t, s, alice, "phone")
	desk := ftLogin(t, s, alice, "desk")
	resources, prios := []*servertest.Client{phone, desk}, []string{"3", "1"}
	ftOnline(t, phone, presence("3"))
	ftOnline(t, desk, presence("1"))
	checkAt(t, []*servertest.Client{pc}, resources, prios, own)
	ftSync(t, phone)

	t.Run("set and clear", func(t *testing.T) {
		if err := s.Presence().SetOverride(ctx, alice, store.PresenceOverride{Show: "dnd", Status: "On a call", CallState: "on-call"}); err != nil {
			t.Fatal(err)
		}
		check(t, resources, prios, overridden)
		if err := s.Presence().ClearOverride(ctx, alice); err != nil {
			t.Fatal(err)
		}
		check(t, resources, prios, own)
	})
	t.Run("own presence change while set", func(t *testing.T) {
		if err := s.Presence().SetOverride(ctx, alice, store.PresenceOverride{Show: "dnd", Status: "On a call", CallState: "on-call"}); err != nil {
			t.Fatal(err)
		}
		check(t, resources, prios, overridden)
		// The client's new presence is overridden too, and is what
		// clearing brings back.
		ftSend(t, desk, "<presence><show>xa</show><status>Gone</status><priority>1</priority>%s</presence>", caps)
		ftSync(t, desk)
		got := ftSync(t, pc)
		el := ftOne(t, "desk's new presence at bob", got, ftPresence("", desk.JID.String()))
		ftOverridden(t, el, "dnd", "On a call", "on-call", "1")
		if err := s.Presence().ClearOverride(ctx, alice); err != nil {
			t.Fatal(err)
		}
		got = ftSync(t, pc)
		ftOverridden(t, ftOne(t, "desk at bob", got, ftPresence("", desk.JID.String())), "xa", "Gone", "", "1")
		ftOverridden(t, ftOne(t, "phone at bob", got, ftPresence("", phone.JID.String())), "away", "Lunch", "", "3")
		ftOnline(t, desk, presence("1"))
		for _, c := range []*servertest.Client{pc, phone, desk} {
			ftSync(t, c)
		}
	})
	t.Run("after a refused presence", func(t *testing.T) {
		// An invalid priority is refused (RFC 6121 §4.7.2.3) and must
		// not become what the override rebroadcasts.
		_, res := ftExchange(t, desk, "<presence id='%s'><show>chat</show><priority>high</priority></presence>")
		ftWantError(t, res, "bad-request")
		ftNone(t, "refused presence at bob", ftSync(t, pc), func(e *wire.Element) bool { return e.Name == "presence" })
		if err := s.Presence().SetOverride(ctx, alice, store.PresenceOverride{Show: "dnd", Status: "On a call", CallState: "on-call"}); err != nil {
			t.Fatal(err)
		}
		check(t, resources, prios, overridden)
		if err := s.Presence().ClearOverride(ctx, alice); err != nil {
			t.Fatal(err)
		}
		check(t, resources, prios, own)
	})
	t.Run("admin socket", func(t *testing.T) {
		call := func(cmd string, args map[string]string) error {
			_, err := server.AdminCall(ctx, sock, server.AdminRequest{Command: cmd, Args: args})
			return err
		}
		for _, tc := range []struct {
			name string
			args map[string]string
		}{
			{"invalid show", map[string]string{"jid": "alice@localhost", "show": "busy"}},
			{"invalid call state", map[string]string{"jid": "alice@localhost", "show": "dnd", "call": "on-hold"}},
			{"no such account", map[string]string{"jid": "nobody@localhost", "show": "dnd"}},
			{"not a user JID", map[string]string{"jid": "localhost", "show": "dnd"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := call(server.CmdPresenceSet, tc.args); err == nil {
					t.Fatalf("%s %v: no error", server.CmdPresenceSet, tc.args)
				}
			})
		}
		// Nothing was broadcast for the refused commands.
		ftNone(t, "presence after refused commands", ftSync(t, pc), func(e *wire.Element) bool { return e.Name == "presence" })

		err := call(server.CmdPresenceSet, map[string]string{"jid": "alice@localhost", "show": "dnd", "status": "On a call", "call": "on-call"})
		if err != nil {
			t.Fatal(err)
		}
		check(t, resources, prios, overridden)
		if err := call(server.CmdPresenceClear, map[string]string{"jid": "alice@localhost"}); err != nil {
			t.Fatal(err)
		}
		check(t, resources, prios, own)
	})
	t.Run("set while offline", func(t *testing.T) {
		ftLogout(t, phone)
		ftLogout(t, desk)
		ftSync(t, pc)
		if err := s.Presence().SetOverride(ctx, alice, store.PresenceOverride{Show: "dnd", Status: "On a call", CallState: "on-call"}); err != nil {
			t.Fatal(err)
		}
		ftNone(t, "presence while offline", ftSync(t, pc), func(e *wire.Element) bool { return e.Name == "presence" })
		laptop := ftLogin(t, s, alice, "laptop")
		echo := ftOnline(t, laptop, presence("2"))
		ftOverridden(t, ftOne(t, "own echo", echo, ftPresence("", laptop.JID.String())), "dnd", "On a call", "on-call", "2")
		checkAt(t, []*servertest.Client{pc}, []*servertest.Client{laptop}, []string{"2"}, overridden)
		if err := s.Presence().ClearOverride(ctx, alice); err != nil {
			t.Fatal(err)
		}
		check(t, []*servertest.Client{laptop}, []string{"2"}, own)
	})
}

// ftRoster fetches the roster and returns the items by contact and the
// version.
func ftRoster(t testing.TB, c *servertest.Client) (items map[string]*wire.Element, ver string) {
	t.Helper()
	_, res := ftExchange(t, c, "<iq type='get' id='%s'><query xmlns='"+ftNSRoster+"'/></iq>")
	q := res.Child("query", ftNSRoster)
	if res.AttrValue("type") != "result" || q == nil {
		t.Fatalf("%s: roster get answered %s", c.JID, res)
	}
	items = map[string]*wire.Element{}
	for _, it := range q.Children {
		if it.Name == "item" && it.Space == ftNSRoster {
			items[it.AttrValue("jid")] = it
		}
	}
	return items, q.AttrValue("ver")
}

// ftItem summarises a roster item as "subscription[+ask] [groups]".
func ftItem(it *wire.Element) string {
	if it == nil {
		return "absent"
	}
	s := it.AttrValue("subscription")
	if it.AttrValue("ask") != "" {
		s += "+ask"
	}
	var groups []string
	for _, g := range it.Children {
		if g.Name == "group" && g.Space == ftNSRoster {
			groups = append(groups, g.Text)
		}
	}
	slices.Sort(groups)
	return s + " " + strings.Join(groups, ",")
}

// ftCheckRoster compares a roster with want (contact → ftItem summary).
func ftCheckRoster(t testing.TB, who string, items map[string]*wire.Element, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for c, it := range items {
		got[c] = ftItem(it)
	}
	for c, w := range want {
		if got[c] != w {
			t.Errorf("%s's roster: %s is %q, want %q", who, c, got[c], w)
		}
	}
	for c := range got {
		if _, ok := want[c]; !ok {
			t.Errorf("%s's roster: unexpected %s (%s)", who, c, got[c])
		}
	}
}

// ftSubscriptionStanzas matches presence of the subscription types.
func ftSubscriptionStanzas(e *wire.Element) bool {
	switch e.AttrValue("type") {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		return e.Name == "presence"
	}
	return false
}

// TestFeatureSharedRoster covers the shared roster of a host
// (shared_roster) and configured shared groups ([[host.group]]): shared
// contacts are in the roster with a mutual subscription in the configured
// group and see each other's presence without subscription stanzas; an
// account created later joins them; non-members see nothing.
func TestFeatureSharedRoster(t *testing.T) {
	t.Run("host", func(t *testing.T) {
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Hosts[0].SharedRoster = true }))
		names := []string{"alice", "bob", "carol"}
		var clients []*servertest.Client
		received := map[*servertest.Client][]*wire.Element{}
		for _, n := range names {
			clients = append(clients, ftLogin(t, s, s.AddUser(t, n, ftPassword), "r"))
		}
		vers := map[string]string{}
		for i, c := range clients {
			want := map[string]string{}
			for j, n := range names {
				if j != i {
					want[n+"@localhost"] = "both Colleagues"
				}
			}
			items, ver := ftRoster(t, c)
			ftCheckRoster(t, names[i], items, want)
			vers[names[i]] = ver
		}
		for _, c := range clients {
			received[c] = append(received[c], ftOnline(t, c, "<presence><status>here</status></presence>")...)
		}
		for i, c := range clients {
			got := append(received[c], ftSync(t, c)...)
			for j, o := range clients {
				if j == i {
					continue
				}
				el := ftOne(t, names[i]+" sees "+names[j], got, ftPresence("", o.JID.String()))
				// Broadcasts go to the bare JID, probe answers to
				// the full JID (RFC 6121 §4.2.2, §4.3.2).
				if to := el.AttrValue("to"); to != c.JID.String() && to != c.JID.Bare().String() {
					t.Errorf("%s sees %s: to = %q", names[i], names[j], to)
				}
			}
			ftNone(t, "subscription stanzas at "+names[i], got, ftSubscriptionStanzas)
		}

		t.Run("account created later", func(t *testing.T) {
			dave := s.AddUser(t, "dave", ftPassword)
			for i, c := range clients {
				items, ver := ftRoster(t, c)
				want := map[string]string{"dave@localhost": "both Colleagues"}
				for j, n := range names {
					if j != i {
						want[n+"@localhost"] = "both Colleagues"
					}
				}
				ftCheckRoster(t, names[i], items, want)
				if ver == vers[names[i]] {
					t.Errorf("%s's roster version %q did not change", names[i], ver)
				}
				// A client with the old version gets the whole
				// roster again (XEP-0237 §3).
				_, res := ftExchange(t, c, "<iq type='get' id='%s'><query xmlns='"+ftNSRoster+"' ver='%s'/></iq>", vers[names[i]])
				if q := res.Child("query", ftNSRoster); q == nil || len(q.Children) != 3 {
					t.Errorf("%s: roster get with the old version answered %s", names[i], res)
				}
			}
			dc := ftLogin(t, s, dave, "r")
			items, _ := ftRoster(t, dc)
			ftCheckRoster(t, "dave", items, map[string]string{
				"alice@localhost": "both Colleagues", "bob@localhost": "both Colleagues", "carol@localhost": "both Colleagues",
			})
			got := ftOnline(t, dc, "<presence/>")
			for i, c := range clients {
				ftOne(t, "dave sees "+names[i], got, ftPresence("", c.JID.String()))
				ftOne(t, names[i]+" sees dave", ftSync(t, c), ftPresence("", dc.JID.String()))
			}
		})
	})

	t.Run("group", func(t *testing.T) {
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
			c.Hosts[0].Groups = []config.SharedGroup{{Name: "Sales", Members: []string{"sam", "sue@localhost"}}}
		}))
		sam := ftLogin(t, s, s.AddUser(t, "sam", ftPassword), "r")
		sue := ftLogin(t, s, s.AddUser(t, "sue", ftPassword), "r")
		nick := ftLogin(t, s, s.AddUser(t, "nick", ftPassword), "r")
		for _, tc := range []struct {
			name string
			c    *servertest.Client
			want map[string]string
		}{
			{"sam", sam, map[string]string{"sue@localhost": "both Sales"}},
			{"sue", sue, map[string]string{"sam@localhost": "both Sales"}},
			{"nick (not a member)", nick, map[string]string{}},
		} {
			t.Run("roster of "+tc.name, func(t *testing.T) {
				items, _ := ftRoster(t, tc.c)
				ftCheckRoster(t, tc.name, items, tc.want)
			})
		}
		received := map[*servertest.Client][]*wire.Element{}
		for _, c := range []*servertest.Client{sam, nick, sue} {
			received[c] = ftOnline(t, c, "<presence/>")
		}
		for _, tc := range []struct {
			name      string
			c         *servertest.Client
			sees, not []*servertest.Client
		}{
			{"sam", sam, []*servertest.Client{sue}, []*servertest.Client{nick}},
			{"sue", sue, []*servertest.Client{sam}, []*servertest.Client{nick}},
			{"nick", nick, nil, []*servertest.Client{sam, sue}},
		} {
			t.Run("presence at "+tc.name, func(t *testing.T) {
				got := append(received[tc.c], ftSync(t, tc.c)...)
				for _, o := range tc.sees {
					ftOne(t, "presence of "+o.JID.String(), got, ftPresence("", o.JID.String()))
				}
				for _, o := range tc.not {
					ftNone(t, "presence of "+o.JID.String(), got, ftFromAccount(o.JID.Bare()))
				}
				ftNone(t, "subscription stanzas", got, ftSubscriptionStanzas)
			})
		}
		t.Run("stored item merged", func(t *testing.T) {
			// A group of the user's own joins the shared one.
			before, res := ftExchange(t, sam, "<iq type='set' id='%s'><query xmlns='"+ftNSRoster+"'><item jid='sue@localhost'><group>Friends</group></item></query></iq>")
			ftAttrs(t, res, "type", "result")
			got := append(before, ftSync(t, sam)...)
			push := ftOne(t, "push", got, func(e *wire.Element) bool {
				return e.Name == "iq" && e.AttrValue("type") == "set" && e.Child("query", ftNSRoster) != nil
			})
			if it := push.Child("query", ftNSRoster).Child("item", ftNSRoster); ftItem(it) != "both Friends,Sales" {
				t.Errorf("pushed item %s, want both in Friends and Sales", push)
			}
			items, _ := ftRoster(t, sam)
			ftCheckRoster(t, "sam", items, map[string]string{"sue@localhost": "both Friends,Sales"})
			// Removing it leaves the shared contact.
			_, res = ftExchange(t, sam, "<iq type='set' id='%s'><query xmlns='"+ftNSRoster+"'><item jid='sue@localhost' subscription='remove'/></query></iq>")
			ftAttrs(t, res, "type", "result")
			items, _ = ftRoster(t, sam)
			ftCheckRoster(t, "sam", items, map[string]string{"sue@localhost": "both Sales"})
		})
	})
}

// TestFeatureMonitors covers the monitor cap of a host: at most
// max_monitors items in the monitor group; adding one more removes the
// oldest (a roster push of the removal, unsubscribe to the contact), never
// an item outside the group; only user JIDs may be monitored.
func TestFeatureMonitors(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Hosts[0].MaxMonitors = 2
		c.Hosts[0].MonitorGroup = "Monitored"
	}))
	alice := ftLogin(t, s, s.AddUser(t, "alice", ftPassword), "desk")
	ftRoster(t, alice) // interested in pushes
	ftOnline(t, alice, "<presence/>")
	contacts := map[string]*servertest.Client{}
	for _, n := range []string{"bob", "carol", "dave", "erin"} {
		c := ftLogin(t, s, s.AddUser(t, n, ftPassword), "r")
		ftRoster(t, c)
		ftOnline(t, c, "<presence/>")
		contacts[n] = c
	}
	set := func(t *testing.T, contact, group string) (pushes []*wire.Element, res *wire.Element) {
		t.Helper()
		before, res := ftExchange(t, alice, "<iq type='set' id='%s'><query xmlns='"+ftNSRoster+"'><item jid='%s'><group>%s</group></item></query></iq>", contact, group)
		got := append(before, ftSync(t, alice)...)
		return ftWhere(got, func(e *wire.Element) bool {
			return e.Name == "iq" && e.AttrValue("type") == "set" && e.Child("query", ftNSRoster) != nil
		}), res
	}
	// add puts a contact in the group and subscribes to its presence.
	add := func(t *testing.T, name, group string) []*wire.Element {
		t.Helper()
		pushes, res := set(t, name+"@localhost", group)
		ftAttrs(t, res, "type", "result")
		c := contacts[name]
		ftSend(t, alice, "<presence to='%s@localhost' type='subscribe'/>", name)
		c.Next(t, ftWait, ftPresence("subscribe", "alice@localhost"))
		ftSend(t, c, "<presence to='alice@localhost' type='subscribed'/>")
		ftSync(t, c)
		ftSync(t, alice)
		return pushes
	}
	removed := func(pushes []*wire.Element) []string {
		var out []string
		for _, p := range pushes {
			it := p.Child("query", ftNSRoster).Child("item", ftNSRoster)
			if it != nil && it.AttrValue("subscription") == "remove" {
				out = append(out, it.AttrValue("jid"))
			}
		}
		return out
	}

	add(t, "erin", "Friends") // the oldest item, outside the group
	for _, n := range []string{"bob", "carol"} {
		if r := removed(add(t, n, "Monitored")); len(r) != 0 {
			t.Fatalf("adding %s removed %v", n, r)
		}
	}
	items, _ := ftRoster(t, alice)
	ftCheckRoster(t, "alice", items, map[string]string{
		"bob@localhost": "to Monitored", "carol@localhost": "to Monitored", "erin@localhost": "to Friends",
	})
	for _, c := range contacts {
		ftSync(t, c)
	}

	steps := []struct {
		name    string
		add     string
		evicted string
		roster  map[string]string
	}{
		{"third monitor evicts the oldest", "dave", "bob", map[string]string{
			"carol@localhost": "to Monitored", "dave@localhost": "to Monitored", "erin@localhost": "to Friends",
		}},
		{"again: never the item outside the group", "bob", "carol", map[string]string{
			"bob@localhost": "to Monitored", "dave@localhost": "to Monitored", "erin@localhost": "to Friends",
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			pushes := add(t, st.add, "Monitored")
			if r := removed(pushes); !slices.Equal(r, []string{st.evicted + "@localhost"}) {
				t.Fatalf("removal pushes for %v, want [%s@localhost]: %v", r, st.evicted, pushes)
			}
			// The evicted contact gets the unsubscribe (RFC 6121
			// §2.5.2), the others nothing.
			for n, c := range contacts {
				got := ftWhere(ftSync(t, c), func(e *wire.Element) bool {
					return e.Name == "presence" && e.AttrValue("type") == "unsubscribe"
				})
				switch {
				case n == st.evicted && len(got) != 1:
					t.Errorf("%s: got %d unsubscribe, want 1: %v", n, len(got), got)
				case n == st.evicted:
					ftAttrs(t, got[0], "from", "alice@localhost")
				case len(got) != 0:
					t.Errorf("%s: got unsubscribe, want none: %v", n, got)
				}
			}
			items, _ := ftRoster(t, alice)
			ftCheckRoster(t, "alice", items, st.roster)
		})
	}

	t.Run("only users", func(t *testing.T) {
		for _, contact := range []string{"localhost", "example.net", "localhost/res"} {
			t.Run(contact, func(t *testing.T) {
				pushes, res := set(t, contact, "Monitored")
				ftWantError(t, res, "not-acceptable")
				if len(pushes) != 0 {
					t.Errorf("pushes for a refused item: %v", pushes)
				}
			})
		}
		// Outside the group a domain is a valid item.
		_, res := set(t, "example.net", "Gateways")
		ftAttrs(t, res, "type", "result")
	})
}
