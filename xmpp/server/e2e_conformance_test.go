package server_test

import (
	"slices"
	"strings"
	"testing"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// TestPresenceOwnResourcesOnLogin covers RFC 6121 §4.2.2: a user is
// implicitly subscribed to their own presence, so a resource that becomes
// available gets the presence of the account's other available resources,
// as they get its own; a resource without presence is not announced.
func TestPresenceOwnResourcesOnLogin(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	phone := prLogin(t, s, alice, "phone")
	rtSend(t, phone, "<presence><show>dnd</show><status>on a call</status></presence>")
	phone.Next(t, wait, rtMatch("presence", phone.JID.String(), ""))
	silent := prLogin(t, s, alice, "silent") // never sends presence

	desk := prLogin(t, s, alice, "desk")
	rtSend(t, desk, "<presence/>")
	got := prSync(t, desk)
	prShowStatus(t, prOne(t, "phone's presence at the desk", prFrom(got, "presence", "", phone.JID.String())), "dnd", "on a call")
	prNone(t, "the silent resource's presence", prFrom(got, "presence", "", silent.JID.String()))
	prOne(t, "desk's own echo", prFrom(got, "presence", "", desk.JID.String()))
	// Once only: presence changes after login are ordinary broadcasts.
	prNone(t, "more from phone", prFrom(prSync(t, desk), "presence", "", phone.JID.String()))
}

// TestUnsubscribeSendsUnavailable covers RFC 6121 §3.3.3: when a user
// unsubscribes from a contact's presence, the contact's server sends
// unavailable presence from each of the contact's available resources.
func TestUnsubscribeSendsUnavailable(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	prSubscribe(t, s, alice, bob, true)
	a := prLogin(t, s, alice, "a")
	b1 := prLogin(t, s, bob, "b1")
	b2 := prLogin(t, s, bob, "b2")
	for _, c := range []*servertest.Client{a, b1, b2} {
		rtOnline(t, c, 0)
	}
	prSync(t, a)

	rtSend(t, a, "<presence to='bob@localhost' type='unsubscribe'/>")
	b1.Next(t, wait, prMatch("presence", "unsubscribe", "alice@localhost"))
	got := prSync(t, a)
	for _, b := range []*servertest.Client{b1, b2} {
		prOne(t, "unavailable from "+b.JID.String(), prFrom(got, "presence", "unavailable", b.JID.String()))
	}
}

// TestAccountRemovalCancelsSubscriptions covers XEP-0077 §3.2: removing an
// account cancels its presence subscriptions. Its contacts see it go
// offline and lose the subscription both ways (roster pushes), a pending
// request to it is declined, a contact who blocks it gets the roster push
// but no presence from it (XEP-0191 §3.5), and an account registered
// later under the same name inherits nothing: it does not see the old
// contacts' presence.
func TestAccountRemovalCancelsSubscriptions(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	carol := s.AddUser(t, "carol", prPassword)
	dave := s.AddUser(t, "dave", prPassword)
	erin := s.AddUser(t, "erin", prPassword)
	prSubscribe(t, s, alice, bob, true)
	prSubscribe(t, s, alice, erin, true)
	// erin blocks alice, mutual subscription and all.
	e := prLogin(t, s, erin, "e")
	rsRoster(t, e)
	rtOnline(t, e, 0)
	rtSend(t, e, "<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'><item jid='alice@localhost'/></block></iq>")
	e.Next(t, wait, servertest.Named("iq", "id", "blk"))
	// dave pre-approves alice (RFC 6121 §3.4); alice never lists him.
	d := prLogin(t, s, dave, "d")
	rtOnline(t, d, 0)
	rtSend(t, d, "<presence to='alice@localhost' type='subscribed'/>")
	prSync(t, d)
	// carol asks while alice is away: a pending request, declined by
	// the removal.
	c := prLogin(t, s, carol, "c")
	rtOnline(t, c, 0)
	rtSend(t, c, "<presence to='alice@localhost' type='subscribe'/>")
	prSync(t, c)
	b := prLogin(t, s, bob, "b")
	rsRoster(t, b) // interested in pushes
	rtOnline(t, b, 0)
	a := prLogin(t, s, alice, "a")
	rtOnline(t, a, 0)
	prSync(t, b)

	rtSend(t, a, "<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	a.Next(t, wait, servertest.Named("iq", "id", "rm"))
	a.Closed(t, wait)
	// Closed: the cancellations were routed before the IQ's answer.
	blocked := prSync(t, e)
	prNone(t, "presence from the removed account at erin, who blocks it", prFromAccount(blocked, "presence", alice))
	if pushes := rsPushes(t, erin, blocked, "alice@localhost"); len(pushes) == 0 || rsPushItem(pushes[len(pushes)-1]).AttrValue("subscription") != "none" {
		t.Fatalf("erin's pushes for alice: %v, want one to subscription none", pushes)
	}
	got := prSync(t, b)
	prOne(t, "unavailable from the removed account", prFrom(got, "presence", "unavailable", a.JID.String()))
	prOne(t, "unsubscribed", prFrom(got, "presence", "unsubscribed", "alice@localhost"))
	prOne(t, "unsubscribe", prFrom(got, "presence", "unsubscribe", "alice@localhost"))
	prOne(t, "carol's request declined", prFrom(prSync(t, c), "presence", "unsubscribed", "alice@localhost"))
	var last *wire.Element
	for _, p := range rsPushes(t, bob, got, "alice@localhost") {
		last = rsPushItem(p)
	}
	if last == nil || last.AttrValue("subscription") != "none" || last.AttrValue("ask") != "" {
		t.Fatalf("bob's last push for alice: %v, want subscription none without ask", last)
	}

	s.AddUser(t, "alice", prPassword)
	again := prLogin(t, s, alice, "new")
	rtOnline(t, again, 0)
	prSync(t, again)
	rtSend(t, b, "<presence><show>away</show></presence>")
	prSync(t, b)
	prNone(t, "bob's presence at the new alice", prFromAccount(prSync(t, again), "presence", bob))
	// dave's pre-approval went with the old account: the new alice's
	// request waits for him instead of being approved at once.
	rtSend(t, again, "<presence to='dave@localhost' type='subscribe'/>")
	prNone(t, "an approval from dave", prFrom(prSync(t, again), "presence", "subscribed", "dave@localhost"))
	prOne(t, "the new alice's request at dave", prFrom(prSync(t, d), "presence", "subscribe", "alice@localhost"))
}

// TestBlockedRequestNotRedelivered covers XEP-0191 §3.5 with RFC 6121
// §3.1.3: a subscription request stored before its sender was blocked is
// not shown at the next login, and is again once unblocked.
func TestBlockedRequestNotRedelivered(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	mallory := s.AddUser(t, "mallory", prPassword)
	m := prLogin(t, s, mallory, "m")
	rtSend(t, m, "<presence to='alice@localhost' type='subscribe'/>")
	prSync(t, m)

	pending := func(resource string) []string {
		t.Helper()
		return rsPendingRequests(t, s, alice, resource)
	}
	if got := pending("first"); !slices.Equal(got, []string{"mallory@localhost"}) {
		t.Fatalf("requests before the block: %v", got)
	}
	c := prLogin(t, s, alice, "blocker")
	rtSend(t, c, "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='mallory@localhost'/></block></iq>")
	if el := c.Next(t, wait, servertest.Named("iq", "id", "b1")); el.AttrValue("type") != "result" {
		t.Fatalf("block answered %s", el)
	}
	if got := pending("second"); len(got) != 0 {
		t.Fatalf("requests while blocked: %v", got)
	}
	rtSend(t, c, "<iq type='set' id='b2'><unblock xmlns='urn:xmpp:blocking'><item jid='mallory@localhost'/></unblock></iq>")
	if el := c.Next(t, wait, servertest.Named("iq", "id", "b2")); el.AttrValue("type") != "result" {
		t.Fatalf("unblock answered %s", el)
	}
	if got := pending("third"); !slices.Equal(got, []string{"mallory@localhost"}) {
		t.Fatalf("requests after the unblock: %v", got)
	}
}

// TestMAMNoteToSelf covers XEP-0313 §7.1.1 for a message to one's own
// account: archived once, as sent (not unread), and every copy delivered
// carries that record's stanza-id; a stanza-id the client forged for its
// own archive reaches no copy, the sent carbon included (XEP-0359 §3).
func TestMAMNoteToSelf(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	desk := mtOnline(t, s, alice, "desk")
	phone := mtOnline(t, s, alice, "phone")
	low := mtOnline(t, s, alice, "low")
	mtSend(t, low, "<presence><priority>-1</priority></presence>")
	mtSync(t, low)
	mtResult(t, low, "<iq type='set' id='%s'><enable xmlns='"+ftNSCarbons+"'/></iq>")

	id := mtMessage(t, desk, "chat", "alice@localhost",
		"<body>buy milk</body><stanza-id xmlns='"+mtNSSID+"' by='alice@localhost' id='forged'/>")
	ids := map[string]bool{}
	for _, c := range []*servertest.Client{desk, phone} {
		ids[mtStanzaID(t, mtReceive(t, c, id), "alice@localhost")] = true
	}
	if got := mtStanzaIDs(mtSentCarbon(t, low, id), "alice@localhost"); len(got) != 0 {
		t.Errorf("the sent carbon of a note to oneself carries stanza-ids %q", got)
	}
	page := mtRun(t, desk, mtQuery{fields: []string{mtField("with", "alice@localhost")}})
	if got := page.bodies(); len(got) != 1 || got[0] != "buy milk" {
		t.Fatalf("archive with oneself: %q, want the note once", got)
	}
	if len(ids) != 1 || !ids[page.ids[0]] || ids["forged"] {
		t.Fatalf("delivered stanza-ids %v, archived %v", ids, page.ids)
	}
	if n := mtUnread(t, desk)["alice@localhost"]; n != 0 {
		t.Fatalf("a note to oneself counts %d unread", n)
	}
}

// TestErrorMessageForgedStanzaID covers XEP-0359 §3: a stanza-id claiming
// to be by the recipient's archive is removed from an error message too,
// though errors are not archived.
func TestErrorMessageForgedStanzaID(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", mtPassword)
	bob := s.AddUser(t, "bob", mtPassword)
	a := mtOnline(t, s, alice, "a")
	b := mtOnline(t, s, bob, "b")
	id := mtMessage(t, a, "error", b.JID.String(),
		"<stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='forged'/><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>")
	if ids := mtStanzaIDs(mtReceive(t, b, id), "bob@localhost"); len(ids) != 0 {
		t.Fatalf("forged stanza-id delivered: %q", ids)
	}
}

// TestStreamConformance covers RFC 6120 rules at the stream's edges: a
// response IQ is never answered (§8.2.3), an error reply keeps the id of
// a stanza with a malformed address whatever the attribute order
// (§8.3.1), the RFC 3921 session IQ addressed to the domain, and white
// space after <starttls/> (§4.6.1).
func TestStreamConformance(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Hosts[0].Registration = true }))
	user := s.AddUser(t, "alice", "pw")

	t.Run("pre-auth responses to registration", func(t *testing.T) {
		r, _ := tlsOpen(t, s)
		r.Write(t, "<iq type='error' id='e1'><query xmlns='"+nsIQRegister+"'/><error type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
		r.Write(t, "<iq type='result' id='r1'><query xmlns='"+nsIQRegister+"'/></iq>")
		r.Write(t, "<iq type='get' id='g1'><query xmlns='"+nsIQRegister+"'/></iq>")
		if el := readEl(t, r); el.AttrValue("id") != "g1" || el.AttrValue("type") != "result" {
			t.Fatalf("after two responses, got %s, want the answer to g1", el)
		}
	})
	r, _ := loginRaw(t, s, "alice", "pw", "r")
	next := func(write string) *wire.Element {
		t.Helper()
		r.Write(t, write)
		return readEl(t, r)
	}
	t.Run("malformed address before the id", func(t *testing.T) {
		el := next("<iq to='bob@@localhost' id='q1' type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
		if el.AttrValue("id") != "q1" || stanzaCond(el) != "jid-malformed" {
			t.Fatalf("got %s, want jid-malformed for q1", el)
		}
	})
	t.Run("responses without id or after a malformed address", func(t *testing.T) {
		r.Write(t, "<iq type='result' to='localhost'/>")
		r.Write(t, "<message to='a@b@c' type='error'/>")
		el := next("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
		if el.AttrValue("id") != "p1" || el.AttrValue("type") != "result" {
			t.Fatalf("got %s, want only the ping's answer", el)
		}
	})
	t.Run("session", func(t *testing.T) {
		const session = "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>"
		for _, tc := range []struct{ to, extra, cond string }{
			{"", "", ""},
			{" to='localhost'", "", ""},
			{" to='alice@localhost'", "", ""},
			{" to='bob@localhost'", "", "service-unavailable"},
			{" to='localhost'", "<ping xmlns='urn:xmpp:ping'/>", "bad-request"},
		} {
			el := next("<iq type='set' id='s1'" + tc.to + ">" + session + tc.extra + "</iq>")
			if el.AttrValue("id") != "s1" || stanzaCond(el) != tc.cond || (tc.cond == "" && el.AttrValue("type") != "result") {
				t.Fatalf("session%s%s answered %s, want %q", tc.to, tc.extra, el, tc.cond)
			}
		}
	})
	t.Run("white space after starttls", func(t *testing.T) {
		raw := s.DialRaw(t)
		raw.Open(t, s.Domain)
		raw.Write(t, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n ")
		if el := readEl(t, raw); el.Name != "proceed" {
			t.Fatalf("got %s, want proceed", el)
		}
	})
	mustServe(t, s, user, "pw")
}

// TestRegistrationNits covers XEP-0077 §3.2 and §3.3 details: <remove/>
// with siblings is a bad request and removes nothing; the username in a
// password change is compared as a localpart ("Alice" is alice).
func TestRegistrationNits(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "old")
	r, _ := loginRaw(t, s, "alice", "old", "r")
	r.Write(t, "<iq type='set' id='rm'><query xmlns='"+nsIQRegister+"'><remove/><username>alice</username></query></iq>")
	if el := readEl(t, r); stanzaCond(el) != "bad-request" {
		t.Fatalf("remove with a sibling answered %s", el)
	}
	r.Write(t, "<iq type='set' id='pw'><query xmlns='"+nsIQRegister+"'><username>Alice</username><password>new</password></query></iq>")
	if el := readEl(t, r); el.AttrValue("type") != "result" {
		t.Fatalf("password change as Alice answered %s", el)
	}
	mustServe(t, s, alice, "new")
}

// TestMUCConformance covers XEP-0045 rules: a client's muc#user <x/> or
// <delay/> in a groupchat message is not passed on (a claimed real JID);
// in a non-anonymous members-only room members read the member list
// (§9.5); nobody bans themselves (§9.1, conflict) and a ban frees the
// reserved nick; an over-long subject, room name or access entry is
// refused (the store would refuse every later save of the room); in a
// semi-anonymous room an occupant cannot filter the archive
// by real JID; a multi-item admin request that empties a temporary room
// is answered.
func TestMUCConformance(t *testing.T) {
	s := servertest.Start(t)
	cs := mcUsers(t, s, "owner", "bob", "carol")
	owner, bob, carol := cs[0], cs[1], cs[2]
	room := mcRoom("rules")
	mcCreate(t, owner, room, "Owner", "muc#roomconfig_persistentroom", "1")
	mcJoin(t, bob, room, "Bob", "")

	t.Run("spoofed muc#user and delay", func(t *testing.T) {
		mcSend(t, bob, "<message to='%s' type='groupchat' id='sp1'><body>hi</body><x xmlns='%s#user'><item jid='boss@localhost'/></x><delay xmlns='urn:xmpp:delay' stamp='2001-01-01T00:00:00Z'/></message>", room, mcNS)
		el := mcHear(t, owner, room+"/Bob", "hi")
		if el.Child("x", mcNS+"#user") != nil || el.Child("delay", "urn:xmpp:delay") != nil {
			t.Fatalf("client's <x/> or <delay/> passed on: %s", el)
		}
	})
	t.Run("semi-anonymous archive by real JID", func(t *testing.T) {
		q := mtQuery{to: room, fields: []string{mtField("with", "owner@localhost")}}
		if el, _ := mtDo(t, bob, q); mcCond(el) != "forbidden" {
			t.Fatalf("bob's 'with' query answered %s", el)
		}
		if el, _ := mtDo(t, owner, q); el.AttrValue("type") != "result" {
			t.Fatalf("the owner's 'with' query answered %s", el)
		}
	})
	t.Run("over-long subject", func(t *testing.T) {
		id := mcID("subj")
		mcSend(t, owner, "<message to='%s' type='groupchat' id='%s'><subject>%s</subject></message>", room, id, strings.Repeat("s", 70000))
		e := owner.Next(t, mcWait, servertest.Named("message", "id", id))
		if e.AttrValue("type") != "error" || mcCond(e) != "not-acceptable" {
			t.Fatalf("long subject answered %s", e)
		}
		mcFail(t, owner, room, "set", mcForm("muc#roomconfig_roomname", strings.Repeat("n", 2000)), "not-acceptable")
		mcFail(t, owner, room, "set", mcForm("switchboard#access", strings.Repeat("a", 4000)+"@localhost"), "not-acceptable")
		if got := mcConfig(t, owner, room)["switchboard#access"]; len(got) != 0 {
			t.Fatalf("refused access list kept: %d entries", len(got))
		}
	})
	t.Run("member list in a non-anonymous members-only room", func(t *testing.T) {
		mcOK(t, owner, room, "set", mcForm("muc#roomconfig_whois", "anyone", "muc#roomconfig_membersonly", "1"))
		mcOK(t, owner, room, "set", mcAdminItem("", "affiliation", "member", "jid", "bob@localhost"))
		mcOK(t, owner, room, "set", mcAdminItem("", "affiliation", "member", "jid", "carol@localhost"))
		if got := mcAffiliations(t, bob, room, "member"); strings.Join(got, " ") != "bob@localhost carol@localhost" {
			t.Fatalf("members as bob reads them: %v", got)
		}
		if got := mcAffiliations(t, bob, room, "owner"); strings.Join(got, " ") != "owner@localhost" {
			t.Fatalf("owners as bob reads them: %v", got)
		}
		mcFail(t, bob, room, "get", mcAdminItem("", "affiliation", "outcast"), "forbidden")
	})
	t.Run("bans", func(t *testing.T) {
		mcFail(t, owner, room, "set", mcAdminItem("", "affiliation", "outcast", "jid", "owner@localhost"), "conflict")
		mcOK(t, owner, room, "set", mcAdminItem("", "affiliation", "admin", "jid", "bob@localhost"))
		mcFail(t, bob, room, "set", mcAdminItem("", "affiliation", "outcast", "jid", "bob@localhost"), "conflict")
		mcFail(t, bob, room, "set", mcAdminItem("", "affiliation", "outcast", "jid", "owner@localhost"), "not-allowed")
		mcOK(t, carol, room, "set", "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field><field var='muc#register_roomnick'><value>Cee</value></field></x></query>")
		mcOK(t, owner, room, "set", mcAdminItem("", "affiliation", "outcast", "jid", "carol@localhost"))
		mcOK(t, owner, room, "set", mcAdminItem("", "affiliation", "none", "jid", "carol@localhost"))
		mcOK(t, owner, room, "set", mcAdminItem("", "affiliation", "member", "jid", "bob@localhost"))
		mcSend(t, bob, "<presence to='%s/Bob' type='unavailable'/>", room)
		mcJoin(t, bob, room, "Cee", "")
	})

	t.Run("admin request that empties a temporary room", func(t *testing.T) {
		temp := mcRoom("temp")
		mcCreate(t, owner, temp, "Owner", "muc#roomconfig_persistentroom", "0")
		mcJoin(t, bob, temp, "Bob", "")
		mcLeave(t, owner, temp, "Owner")
		res, _ := mcIQ(t, owner, temp, "set", "<query xmlns='"+mcNSAdmin+"'><item affiliation='outcast' jid='bob@localhost'/><item affiliation='outcast' jid='carol@localhost'/></query>")
		if res.AttrValue("type") != "result" {
			t.Fatalf("two bans answered %s", res)
		}
	})
}
