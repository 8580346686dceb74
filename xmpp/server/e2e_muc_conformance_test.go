package server_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// Conformance of rooms to XEP-0045 (1.35.5), XEP-0313 (1.1.3) and
// XEP-0421 (1.0.1) over real sockets, on the helpers of e2e_muc_test.go: each wait
// for something that must arrive is bounded by mcWait, and the absence of
// something is checked up to a barrier through the room's actor.

// mccRealJIDs are the jid attributes of the muc#user items of m.
func mccRealJIDs(m *wire.Element) []string {
	var out []string
	for _, x := range m.Children {
		if x.Name != "x" || x.Space != mcNSUser {
			continue
		}
		for _, it := range x.Children {
			if it.Name == "item" && it.Space == mcNSUser {
				out = append(out, it.AttrValue("jid"))
			}
		}
	}
	return out
}

// mccOccupantID is the XEP-0421 occupant id of e, "" if it has none; it
// fails if e has several.
func mccOccupantID(t testing.TB, e *wire.Element) string {
	t.Helper()
	ids := mcWhere(e.Children, func(c *wire.Element) bool { return c.Name == "occupant-id" && c.Space == mcNSOccID })
	switch len(ids) {
	case 0:
		return ""
	case 1:
		return ids[0].AttrValue("id")
	}
	t.Fatalf("%d occupant ids: %s", len(ids), e)
	return ""
}

// mccPresenceAnswer sends presence to room/nick with a fresh id and
// returns the room's answer: the error (which keeps the id) or c's
// self-presence (status 110). Nicks are normalised, so the answer is not
// told by its 'from'.
func mccPresenceAnswer(t testing.TB, c *servertest.Client, room, nick, inner string) *wire.Element {
	t.Helper()
	id := mcID("p")
	mcSend(t, c, "<presence id='%s' to='%s/%s'>%s</presence>", id, room, nick, inner)
	return c.Next(t, mcWait, func(e *wire.Element) bool {
		return e.Name == "presence" && (e.AttrValue("id") == id ||
			strings.HasPrefix(e.AttrValue("from"), room+"/") && slices.Contains(mcStatuses(e), "110"))
	})
}

// mccAdmin is a muc#admin query holding the given items (the XML of each
// item's attributes).
func mccAdmin(items ...string) string {
	var b strings.Builder
	b.WriteString("<query xmlns='" + mcNSAdmin + "'>")
	for _, it := range items {
		b.WriteString("<item " + it + "/>")
	}
	b.WriteString("</query>")
	return b.String()
}

// TestMUCSpecArchiveRealJIDs covers XEP-0313 §6.1.2 (MUC Archives): a
// forwarded message has no 'to', comes from the sender's occupant JID, and
// carries the sender's real JID in a muc#user <x/> when the room is
// non-anonymous or the requester may see real JIDs (owners, admins,
// moderators of a semi-anonymous room), never otherwise; the <x/> a
// sender put in its message never gets through (§8.4). XEP-0421 §4: the
// archived messages keep their occupant ids.
func TestMUCSpecArchiveRealJIDs(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol", "dave")
	alice, bob, carol, dave := cl[0], cl[1], cl[2], cl[3]
	semi, nonAnon := mcRoom("archive-semi"), mcRoom("archive-nonanon")
	mcCreate(t, alice, semi, "Alice")
	mcCreate(t, alice, nonAnon, "Alice", "muc#roomconfig_whois", "anyone")
	for _, room := range []string{semi, nonAnon} {
		mcJoin(t, bob, room, "Bob", "")
		mcJoin(t, carol, room, "Carol", "")
		mcSay(t, alice, room, "from alice")
		mcHear(t, alice, room+"/Alice", "from alice")
		// Bob claims to be Alice.
		mcSend(t, bob, "<message to='%s' type='groupchat' id='%s'><body>from bob</body><x xmlns='%s'><item jid='alice@localhost/x'/></x></message>",
			room, mcID("gc"), mcNSUser)
		mcHear(t, bob, room+"/Bob", "from bob")
	}

	for _, tc := range []struct {
		name  string
		room  string
		who   *servertest.Client
		setup func(t *testing.T)
		real  bool
	}{
		{name: "semi-anonymous, owner", room: semi, who: alice, real: true},
		{name: "semi-anonymous, participant", room: semi, who: bob},
		{name: "semi-anonymous, outsider", room: semi, who: dave},
		{name: "semi-anonymous, moderator by role", room: semi, who: carol, real: true, setup: func(t *testing.T) {
			mcOK(t, alice, semi, "set", mcAdminItem("", "nick", "Carol", "role", "moderator"))
			carol.Next(t, mcWait, func(e *wire.Element) bool {
				return mcPresence(semi+"/Carol", "")(e) && mcItem(e).AttrValue("role") == "moderator"
			})
		}},
		{name: "non-anonymous, participant", room: nonAnon, who: bob, real: true},
		{name: "non-anonymous, outsider", room: nonAnon, who: dave, real: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			want := map[string]string{tc.room + "/Alice": "alice@localhost", tc.room + "/Bob": "bob@localhost"}
			page := mtRun(t, tc.who, mtQuery{to: tc.room})
			if len(page.results) != 2 || !page.complete {
				t.Fatalf("%d archived messages (complete %v), want 2: %v", len(page.results), page.complete, page.results)
			}
			for i := range page.results {
				m := page.forwarded(i)
				if to, ok := m.Attr("to"); ok {
					t.Errorf("forwarded message has to=%q (XEP-0313 §6.1.2: MUST NOT): %s", to, m)
				}
				from := m.AttrValue("from")
				real, ok := want[from]
				if !ok {
					t.Fatalf("forwarded message from %q, want an occupant JID: %s", from, m)
				}
				got := mccRealJIDs(m)
				switch {
				case tc.real && !slices.Equal(got, []string{real}):
					t.Errorf("real JIDs %v, want [%s]: %s", got, real, m)
				case !tc.real && len(got) != 0:
					t.Errorf("real JIDs %v shown to %s: %s", got, tc.who.JID, m)
				}
				if mccOccupantID(t, m) == "" {
					t.Errorf("archived message without occupant id: %s", m)
				}
			}
		})
	}
}

// TestMUCSpecAdminAtomic covers muc#admin sets of several items (§9.2:
// when one is prohibited the service "SHOULD NOT apply any of the
// requested changes"; the other item lists are edited alike): the request
// fails with the error of the first item that may not be done, and
// nothing of it is applied or announced. Items are checked against what
// the items before them would do. A set whose items may all be done does
// them all.
func TestMUCSpecAdminAtomic(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol", "dave", "erin")
	alice, bob, carol, erin := cl[0], cl[1], cl[2], cl[4]
	room := mcRoom("atomic")
	mcCreate(t, alice, room, "Alice", "muc#roomconfig_persistentroom", "1")
	mcJoin(t, bob, room, "Bob", "")
	mcJoin(t, carol, room, "Carol", "")
	mcOK(t, alice, room, "set", mcAdminItem("", "jid", "erin@localhost", "affiliation", "admin"))
	for _, c := range []*servertest.Client{alice, bob, carol} {
		mcRoomSync(t, c, room)
	}

	for _, tc := range []struct {
		name  string
		actor *servertest.Client
		items []string
		cond  string
	}{
		{"the last owner's demotion comes last", alice, []string{
			"jid='bob@localhost' affiliation='member'",
			"jid='carol@localhost' affiliation='member'",
			"jid='alice@localhost' affiliation='none'",
		}, "conflict"},
		{"an admin bans an owner after a user", erin, []string{
			"jid='dave@localhost' affiliation='outcast'",
			"jid='alice@localhost' affiliation='outcast'",
		}, "not-allowed"},
		{"a kick, then a role for the kicked", alice, []string{
			"nick='Carol' role='none'",
			"nick='Carol' role='participant'",
		}, "item-not-found"},
		{"a ban, then voice for the banned", alice, []string{
			"jid='bob@localhost' affiliation='outcast'",
			"nick='Bob' role='visitor'",
		}, "item-not-found"},
		{"voice revoked, then an unknown nick", alice, []string{
			"nick='Bob' role='visitor'",
			"nick='Nobody' role='visitor'",
		}, "item-not-found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if e := mcFail(t, tc.actor, room, "set", mccAdmin(tc.items...), tc.cond); rtErrorType(e) == "" {
				t.Fatalf("error without a type: %s", e)
			}
			// Nobody's presence changed: no announcement up to the
			// barrier, and Bob and Carol are still in.
			for _, c := range []*servertest.Client{alice, bob, carol} {
				mcNoneBefore(t, c, room, func(e *wire.Element) bool {
					return e.Name == "presence" && strings.HasPrefix(e.AttrValue("from"), room+"/")
				}, c.JID.String()+" was told of a change")
			}
			mcOK(t, bob, room+"/Bob", "get", "<ping xmlns='"+mcNSPing+"'/>")
			mcOK(t, carol, room+"/Carol", "get", "<ping xmlns='"+mcNSPing+"'/>")
			for _, aff := range []string{"owner", "admin", "member", "outcast"} {
				want := map[string][]string{"owner": {"alice@localhost"}, "admin": {"erin@localhost"}}[aff]
				if got := mcAffiliations(t, alice, room, aff); !slices.Equal(got, want) {
					t.Errorf("%s list %v after a refused request, want %v", aff, got, want)
				}
			}
		})
	}

	t.Run("every item may be done", func(t *testing.T) {
		_, before := mcOK(t, alice, room, "set", mccAdmin("jid='bob@localhost' affiliation='member'", "jid='carol@localhost' affiliation='member'"))
		for _, nick := range []string{"Bob", "Carol"} {
			p := mcWhere(before, mcPresence(room+"/"+nick, ""))
			if len(p) != 1 || mcItem(p[0]).AttrValue("affiliation") != "member" {
				t.Fatalf("%s's presence after the grant: %v", nick, p)
			}
		}
		if got := mcAffiliations(t, alice, room, "member"); !slices.Equal(got, []string{"bob@localhost", "carol@localhost"}) {
			t.Fatalf("members %v", got)
		}
	})
	// Items are checked against what the ones before would leave: the
	// last owner may step down once another is made in the same request.
	t.Run("the last owner steps down after naming another", func(t *testing.T) {
		mcOK(t, alice, room, "set", mccAdmin("jid='bob@localhost' affiliation='owner'", "jid='alice@localhost' affiliation='member'"))
		if got := mcAffiliations(t, bob, room, "owner"); !slices.Equal(got, []string{"bob@localhost"}) {
			t.Fatalf("owners %v, want bob alone", got)
		}
	})
}

// TestMUCSpecAdminActorStepsDown: within one muc#admin set, each item is
// checked with the actor's affiliation as the items before leave it. An
// owner who makes herself a member cannot go on to name an admin in the
// same request, and nothing of it is applied (§9.2).
func TestMUCSpecAdminActorStepsDown(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	room := mcRoom("stepdown")
	mcCreate(t, alice, room, "Alice")
	mcOK(t, alice, room, "set", mccAdmin("jid='bob@localhost' affiliation='owner'"))
	mcFail(t, alice, room, "set", mccAdmin(
		"jid='alice@localhost' affiliation='member'",
		"jid='carol@localhost' affiliation='admin'"), "forbidden")
	if got := mcAffiliations(t, bob, room, "owner"); !slices.Equal(got, []string{"alice@localhost", "bob@localhost"}) {
		t.Errorf("owners %v after a refused request, want alice and bob", got)
	}
	if got := mcAffiliations(t, bob, room, "admin"); len(got) != 0 {
		t.Errorf("admins %v after a refused request, want none", got)
	}
}

// TestMUCSpecRevokeVoice covers §8.4: "A moderator MUST NOT be able to
// revoke voice from a user whose affiliation is at or above the
// moderator's level", nor anyone an admin's or owner's; the error is
// not-allowed of type cancel. §5.1.3: only an admin or owner takes a
// moderator's role away.
func TestMUCSpecRevokeVoice(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol", "dave", "erin", "frank")
	alice, bob, carol, dave, erin, frank := cl[0], cl[1], cl[2], cl[3], cl[4], cl[5]
	room := mcRoom("voice")
	mcCreate(t, alice, room, "Alice")
	mcOK(t, alice, room, "set", mccAdmin(
		"jid='bob@localhost' affiliation='member'",
		"jid='carol@localhost' affiliation='member'",
		"jid='erin@localhost' affiliation='admin'"))
	clients := map[string]*servertest.Client{"Bob": bob, "Carol": carol, "Dave": dave, "Erin": erin, "Frank": frank}
	for _, nick := range []string{"Bob", "Carol", "Dave", "Erin", "Frank"} {
		mcJoin(t, clients[nick], room, nick, "")
	}
	// Bob, a member, and Frank, unaffiliated, are made moderators.
	mcOK(t, alice, room, "set", mccAdmin("nick='Bob' role='moderator'", "nick='Frank' role='moderator'"))
	mcRoomSync(t, alice, room)

	for _, tc := range []struct {
		name        string
		actor       *servertest.Client
		nick, role  string
		cond        string // "" for success
		affiliation string // of the target, on success
	}{
		{"member moderator, member", bob, "Carol", "visitor", "not-allowed", ""},
		{"member moderator, admin", bob, "Erin", "visitor", "not-allowed", ""},
		{"member moderator, unaffiliated moderator", bob, "Frank", "participant", "not-allowed", ""},
		{"member moderator, unaffiliated", bob, "Dave", "visitor", "", "none"},
		{"owner, admin", alice, "Erin", "visitor", "not-allowed", ""},
		{"owner, member", alice, "Carol", "visitor", "", "member"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			item := mcAdminItem("", "nick", tc.nick, "role", tc.role)
			if tc.cond != "" {
				if e := mcFail(t, tc.actor, room, "set", item, tc.cond); rtErrorType(e) != "cancel" {
					t.Fatalf("error type %q, want cancel: %s", rtErrorType(e), e)
				}
				mcNoneBefore(t, alice, room, mcPresence(room+"/"+tc.nick, ""), "a refused change was announced")
				return
			}
			mcOK(t, tc.actor, room, "set", item)
			p := clients[tc.nick].Next(t, mcWait, func(e *wire.Element) bool {
				return mcPresence(room+"/"+tc.nick, "")(e) && mcItem(e).AttrValue("role") == tc.role
			})
			if it := mcItem(p); it.AttrValue("affiliation") != tc.affiliation || !slices.Contains(mcStatuses(p), "110") {
				t.Fatalf("%s's presence after losing voice: %s", tc.nick, p)
			}
		})
	}
}

// TestMUCSpecStableID covers §7.4: the room reflects a groupchat message
// with the id its sender gave, and says so with muc#stable_id "on both the
// service domain and on individual MUCs".
func TestMUCSpecStableID(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	room := mcRoom("stable")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")
	for _, to := range []string{mcService, room} {
		info, _ := mcOK(t, bob, to, "get", "<query xmlns='"+mcNSInfo+"'/>")
		if f := mcFeatures(info); !slices.Contains(f, mcNS+"#stable_id") {
			t.Errorf("%s does not advertise muc#stable_id: %v", to, f)
		}
	}
	id := mcID("stable &amp; kept ")
	mcSend(t, bob, "<message to='%s' type='groupchat' id='%s'><body>keep my id</body></message>", room, id)
	want := strings.ReplaceAll(id, "&amp;", "&")
	for _, c := range []*servertest.Client{alice, bob} {
		if m := mcHear(t, c, room+"/Bob", "keep my id"); m.AttrValue("id") != want {
			t.Errorf("%s: reflected with id %q, want %q", c.JID, m.AttrValue("id"), want)
		}
	}
}

// TestMUCSpecOccupantIDs covers XEP-0421 §4: "The <occupant-id> element
// MUST be attached to every message and every presence sent by a MUC": the
// subject sent on joining (from the occupant JID of who set it) carries
// the setter's id, and the unavailable presence of a destroyed room each
// occupant's own.
func TestMUCSpecOccupantIDs(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room := mcRoom("occids")
	mcCreate(t, alice, room, "Alice")
	selfBob, _ := mcJoin(t, bob, room, "Bob", "")
	ids := map[string]string{"Bob": mccOccupantID(t, selfBob)}
	mcOK(t, alice, room, "set", mcAdminItem("", "nick", "Bob", "role", "moderator"))
	mcSend(t, bob, "<message to='%s' type='groupchat'><subject>Set by Bob</subject></message>", room)
	if m := bob.Next(t, mcWait, mcSubject(room)); mccOccupantID(t, m) != ids["Bob"] {
		t.Fatalf("subject change reflected with occupant id %q, want %q: %s", mccOccupantID(t, m), ids["Bob"], m)
	}
	selfCarol, got := mcJoin(t, carol, room, "Carol", "")
	ids["Carol"] = mccOccupantID(t, selfCarol)
	for _, e := range got {
		if mcPresence(room+"/Alice", "")(e) {
			ids["Alice"] = mccOccupantID(t, e)
		}
	}
	subj := got[len(got)-1]
	if subj.AttrValue("from") != room+"/Bob" || subj.ChildText("subject", "") != "Set by Bob" {
		t.Fatalf("joiner's subject: %s", subj)
	}
	if id := mccOccupantID(t, subj); id == "" || id != ids["Bob"] {
		t.Fatalf("joiner's subject has occupant id %q, want Bob's %q: %s", id, ids["Bob"], subj)
	}

	_, before := mcOK(t, alice, room, "set", "<query xmlns='"+mcNSOwner+"'><destroy/></query>")
	for _, o := range []struct {
		c    *servertest.Client
		nick string
	}{{alice, "Alice"}, {bob, "Bob"}, {carol, "Carol"}} {
		var p *wire.Element
		if o.c == alice {
			if ps := mcWhere(before, mcPresence(room+"/Alice", "unavailable")); len(ps) == 1 {
				p = ps[0]
			} else {
				t.Fatalf("owner's unavailable presences on destroy: %v", ps)
			}
		} else {
			p = o.c.Next(t, mcWait, mcPresence(room+"/"+o.nick, "unavailable"))
		}
		if id := mccOccupantID(t, p); ids[o.nick] == "" || id != ids[o.nick] {
			t.Errorf("%s's unavailable presence on destroy has occupant id %q, want %q: %s", o.nick, id, ids[o.nick], p)
		}
	}
}

// TestMUCSpecSubjectDelay covers §7.2.15: the subject sent on joining
// "SHOULD be stamped with [XEP-0203] information ... to indicate the time
// at which the subject was last modified", its 'from' the room; also when
// the subject was cleared; a room that never had one MAY leave it out
// (this one does).
func TestMUCSpecSubjectDelay(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	room := mcRoom("delayed")
	mcCreate(t, alice, room, "Alice")

	joinSubject := func(t *testing.T) *wire.Element {
		t.Helper()
		_, got := mcJoin(t, bob, room, "Bob", "")
		subj := got[len(got)-1]
		mcLeave(t, bob, room, "Bob")
		return subj
	}
	if d := joinSubject(t).Child("delay", mcNSDelay); d != nil {
		t.Fatalf("subject never set, yet delayed: %s", d)
	}
	for _, tc := range []struct{ name, subject string }{
		{"set", "Dated"},
		{"cleared", ""},
	} {
		subject := tc.subject
		t.Run(tc.name, func(t *testing.T) {
			from := time.Now().Add(-time.Second)
			mcSend(t, alice, "<message to='%s' type='groupchat'><subject>%s</subject></message>", room, subject)
			alice.Next(t, mcWait, mcSubject(room))
			to := time.Now().Add(time.Second)
			subj := joinSubject(t)
			if subj.ChildText("subject", "") != subject {
				t.Fatalf("joiner's subject: %s", subj)
			}
			d := subj.Child("delay", mcNSDelay)
			if d == nil || d.AttrValue("from") != room {
				t.Fatalf("joiner's subject without a delay from the room: %s", subj)
			}
			stamp, err := time.Parse(time.RFC3339Nano, d.AttrValue("stamp"))
			if err != nil || stamp.Before(from) || stamp.After(to) {
				t.Fatalf("delay stamp %q (%v), want between %s and %s", d.AttrValue("stamp"), err, from, to)
			}
		})
	}
}

// TestMUCSpecBlankNick covers §17.1: "a MUC service MUST NOT allow empty
// or invisible Room Nicknames (i.e., Room Nicknames that consist only of
// one or more space characters)", to join or to change one's nick; the
// error is §7.2.1's for a missing nickname, jid-malformed. (RFC 7622 maps
// the other Unicode spaces to U+0020.)
func TestMUCSpecBlankNick(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	room := mcRoom("blank")
	mcCreate(t, alice, room, "Alice")
	for _, tc := range []struct{ name, nick string }{
		{"one space", " "},
		{"spaces", "   "},
		{"no-break space", "\u00a0"},
		{"ideographic spaces", "\u3000\u3000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mccPresenceAnswer(t, bob, room, tc.nick, "<x xmlns='"+mcNS+"'/>")
			if p.AttrValue("type") != "error" || mcCond(p) != "jid-malformed" {
				t.Fatalf("join as %q answered %s, want jid-malformed", tc.nick, p)
			}
			mcFail(t, bob, room+"/"+tc.nick, "get", "<ping xmlns='"+mcNSPing+"'/>", "not-acceptable")
			// Alice may not take it either.
			p = mccPresenceAnswer(t, alice, room, tc.nick, "")
			if p.AttrValue("type") != "error" || mcCond(p) != "jid-malformed" {
				t.Fatalf("nick change to %q answered %s, want jid-malformed", tc.nick, p)
			}
			mcOK(t, alice, room+"/Alice", "get", "<ping xmlns='"+mcNSPing+"'/>")
		})
	}
	// Spaces around a visible nick are not a blank nick.
	mcJoin(t, bob, room, " Bob ", "")
}

// TestMUCSpecRoomFull covers §7.2.9: a full room refuses a joiner with
// service-unavailable of type wait (the example's); its admins and owners
// still enter.
func TestMUCSpecRoomFull(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room := mcRoom("full")
	mcCreate(t, alice, room, "Alice", "muc#roomconfig_maxusers", "1")
	p := mccPresenceAnswer(t, bob, room, "Bob", "<x xmlns='"+mcNS+"'/>")
	if p.AttrValue("type") != "error" || mcCond(p) != "service-unavailable" || rtErrorType(p) != "wait" {
		t.Fatalf("join of a full room answered %s, want service-unavailable of type wait", p)
	}
	mcOK(t, alice, room, "set", mcAdminItem("", "jid", "carol@localhost", "affiliation", "admin"))
	mcJoin(t, carol, room, "Carol", "")
}

// TestMUCSpecExitStatus covers §7.14 and §17.3 rule 11: the <status/> of
// the unavailable presence an occupant leaves with, its custom exit
// message, reaches the other occupants with the room's unavailable
// presence, and the leaver's own.
func TestMUCSpecExitStatus(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	room := mcRoom("exit")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")
	const status = "gone where the goblins go"
	mcSend(t, bob, "<presence to='%s/Bob' type='unavailable'><status>%s</status></presence>", room, status)
	for _, c := range []*servertest.Client{alice, bob} {
		p := c.Next(t, mcWait, mcPresence(room+"/Bob", "unavailable"))
		if got := p.ChildText("status", ""); got != status {
			t.Errorf("%s: Bob's exit carries status %q, want %q: %s", c.JID, got, status, p)
		}
		if it := mcItem(p); it == nil || it.AttrValue("role") != "none" {
			t.Errorf("%s: Bob's exit: %s", c.JID, p)
		}
	}
}

// TestMUCSpecSubjectWithThread covers §8.1: a subject change has a
// <subject/> "but MUST NOT contain a <body/> element (or a <thread/>
// element)"; "a <subject/> and a <thread/> is a legitimate message, but it
// SHALL NOT be interpreted as a subject change": it is passed on, whoever
// may change the subject, and the subject stays.
func TestMUCSpecSubjectWithThread(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room := mcRoom("threaded")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")
	mcSend(t, alice, "<message to='%s' type='groupchat'><subject>Kept</subject></message>", room)
	bob.Next(t, mcWait, mcSubject(room))

	for _, tc := range []struct {
		name          string
		sender, other *servertest.Client
		nick          string
	}{
		{"moderator", alice, bob, "Alice"},
		{"participant", bob, alice, "Bob"}, // may not change the subject
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := mcID("thr")
			mcSend(t, tc.sender, "<message to='%s' type='groupchat' id='%s'><subject>Not the subject</subject><thread>t1</thread></message>", room, id)
			for _, c := range []*servertest.Client{tc.sender, tc.other} {
				m := c.Next(t, mcWait, func(e *wire.Element) bool {
					if e.AttrValue("id") == id && e.AttrValue("type") == "error" {
						t.Fatalf("%s: refused: %s", c.JID, e)
					}
					return e.Name == "message" && e.AttrValue("id") == id
				})
				if m.AttrValue("from") != room+"/"+tc.nick || m.ChildText("thread", "") != "t1" || m.ChildText("subject", "") != "Not the subject" {
					t.Fatalf("%s: reflected as %s", c.JID, m)
				}
			}
			info, _ := mcOK(t, carol, room, "get", "<query xmlns='"+mcNSInfo+"'/>")
			if v := mcFormValues(info.Child("query", mcNSInfo).Child("x", mcNSData))["muc#roominfo_subject"]; len(v) != 1 || v[0] != "Kept" {
				t.Fatalf("room subject %v, want Kept", v)
			}
			_, got := mcJoin(t, carol, room, "Carol", "")
			if subj := got[len(got)-1]; subj.ChildText("subject", "") != "Kept" || subj.AttrValue("from") != room+"/Alice" {
				t.Fatalf("joiner's subject: %s", subj)
			}
			mcLeave(t, carol, room, "Carol")
		})
	}
}
