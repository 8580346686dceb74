package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// More XEP-0045 use cases over real sockets: room locking, groupchat 1.0
// joins, nick registration, voice requests, IQs between occupants, the
// actor of kicks and bans, declined invitations, ghosts, service shutdown.

const mcNSRegister = "jabber:iq:register"

// mcNoneBefore fails if any element up to the barrier (an IQ answered by
// the room after it handled everything c sent before) matches match.
func mcNoneBefore(t testing.TB, c *servertest.Client, room string, match func(*wire.Element) bool, what string) {
	t.Helper()
	_, before := mcOK(t, c, room, "get", "<query xmlns='"+mcNSInfo+"'/>")
	if got := mcWhere(before, match); len(got) > 0 {
		t.Fatalf("%s: %s", what, got[0])
	}
}

// TestMUCRoomLocking: a room created by a join is locked until its owner
// configures it (XEP-0045 §10.1.1): others get item-not-found (§7.2.10);
// a reserved room opens when its form is submitted; cancelling the initial
// configuration destroys the room; an unconfigured room opens by itself
// after room_lock_timeout.
func TestMUCRoomLocking(t *testing.T) {
	t.Parallel()
	const lockTimeout = 300 * time.Millisecond
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Hosts[0].RoomLockTimeout = config.Duration(lockTimeout)
	}))
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]

	t.Run("reserved", func(t *testing.T) {
		room := mcRoom("reserved")
		mcJoin(t, alice, room, "Alice", "")
		if cond := mcJoinFails(t, bob, room, "Bob", ""); cond != "item-not-found" {
			t.Fatalf("join of a locked room: %s, want item-not-found", cond)
		}
		rooms, _ := mcOK(t, bob, mcService, "get", "<query xmlns='"+mcNSItems+"'/>")
		if slices.Contains(mcItems(rooms), room) {
			t.Fatalf("a locked room is listed: %v", mcItems(rooms))
		}
		if form := mcConfig(t, alice, room); len(form["muc#roomconfig_roomname"]) == 0 {
			t.Fatalf("configuration form of a locked room: %v", form)
		}
		mcOK(t, alice, room, "set", mcForm("muc#roomconfig_roomname", "Reserved"))
		mcJoin(t, bob, room, "Bob", "")
	})

	t.Run("cancelled", func(t *testing.T) {
		room := mcRoom("cancelled")
		mcJoin(t, alice, room, "Alice", "")
		res, before := mcIQ(t, alice, room, "set", "<query xmlns='"+mcNSOwner+"'><x xmlns='"+mcNSData+"' type='cancel'/></query>")
		if res.AttrValue("type") != "result" {
			t.Fatalf("cancel: %s", res)
		}
		gone := mcWhere(before, mcPresence(room+"/Alice", "unavailable"))
		if len(gone) == 0 {
			gone = []*wire.Element{alice.Next(t, mcWait, mcPresence(room+"/Alice", "unavailable"))}
		}
		if x := gone[0].Child("x", mcNSUser); x == nil || x.Child("destroy", mcNSUser) == nil {
			t.Fatalf("the creator's exit from a cancelled room lacks <destroy/>: %s", gone[0])
		}
		mcFail(t, alice, room, "get", "<query xmlns='"+mcNSInfo+"'/>", "item-not-found")
	})

	t.Run("timeout", func(t *testing.T) {
		room := mcRoom("unconfigured")
		mcJoin(t, alice, room, "Alice", "")
		deadline := time.Now().Add(mcWait)
		for {
			cond := mcJoinFailsOrJoins(t, bob, room, "Bob")
			if cond == "" {
				break
			}
			if cond != "item-not-found" || time.Now().After(deadline) {
				t.Fatalf("join of an unconfigured room: %s", cond)
			}
			time.Sleep(lockTimeout / 10) // bounded retry while the lock runs out
		}
		alice.Next(t, mcWait, mcPresence(room+"/Bob", ""))
	})

	t.Run("issue chats are not locked", func(t *testing.T) {
		// Typed in capitals; the room JID is case-folded.
		room := "test-77@" + mcIssues
		mcSend(t, alice, "<presence to='TEST-77@%s/Alice'><x xmlns='%s'/></presence>", mcIssues, mcNS)
		mcUntil(t, alice, mcSubject(room))
		mcJoin(t, bob, room, "Bob", "")
		info, _ := mcOK(t, bob, room, "get", "<query xmlns='"+mcNSInfo+"'/>")
		if id := info.Child("query", mcNSInfo).Child("identity", mcNSInfo); id == nil || id.AttrValue("name") != "TEST-77" {
			t.Fatalf("issue chat identity (the key as typed): %s", info)
		}
	})
}

// mcJoinFailsOrJoins sends a join and returns "" if it was accepted (the
// join is then complete) or the error condition.
func mcJoinFailsOrJoins(t testing.TB, c *servertest.Client, room, nick string) string {
	t.Helper()
	occ := room + "/" + nick
	mcSend(t, c, "<presence to='%s'><x xmlns='%s'/></presence>", occ, mcNS)
	var joined bool
	e := c.Next(t, mcWait, func(e *wire.Element) bool {
		if mcPresence(occ, "")(e) && slices.Contains(mcStatuses(e), "110") {
			joined = true
		}
		return mcPresence(occ, "error")(e) || joined && mcSubject(room)(e)
	})
	if joined {
		return ""
	}
	return mcCond(e)
}

// TestMUCGroupchat10Join: presence without the MUC <x/> from someone who
// is not in the room is answered with a kick (110, 307, 333; §7.2.18), and
// nobody sees it join.
func TestMUCGroupchat10Join(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	room := mcRoom("gc10")
	mcCreate(t, alice, room, "Alice")

	mcSend(t, bob, "<presence to='%s/Bob'/>", room)
	kick := bob.Next(t, mcWait, mcPresence(room+"/Bob", "unavailable"))
	if st := mcStatuses(kick); !slices.Contains(st, "110") || !slices.Contains(st, "307") || !slices.Contains(st, "333") {
		t.Fatalf("answer to a groupchat 1.0 join: %s", kick)
	}
	mcNoneBefore(t, alice, room, mcPresence(room+"/Bob", ""), "a groupchat 1.0 join was let in")
	// The same with the <x/> joins.
	mcJoin(t, bob, room, "Bob", "")
}

// TestMUCNickModified: a nick the room normalises (RFC 7622: NFC) comes
// back with status 210 in the self-presence, under the normalised nick.
func TestMUCNickModified(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	room := mcRoom("norm")
	mcCreate(t, alice, room, "Alice")

	const typed, normal = "A\u030angstrom", "\u00c5ngstrom"
	mcSend(t, bob, "<presence to='%s/%s'><x xmlns='%s'/></presence>", room, typed, mcNS)
	self := bob.Next(t, mcWait, func(e *wire.Element) bool {
		return e.Name == "presence" && slices.Contains(mcStatuses(e), "110")
	})
	if self.AttrValue("from") != room+"/"+normal || !slices.Contains(mcStatuses(self), "210") {
		t.Fatalf("self-presence for a normalised nick: %s", self)
	}
	if p := alice.Next(t, mcWait, mcPresence(room+"/"+normal, "")); slices.Contains(mcStatuses(p), "210") {
		t.Fatalf("210 is for the occupant itself: %s", p)
	}
	// A nick typed as the room keeps it gets no 210.
	self, _ = mcJoin(t, alice, room, "Alice", "")
	if slices.Contains(mcStatuses(self), "210") {
		t.Fatalf("210 for an unchanged nick: %s", self)
	}
}

// TestMUCNickRegistration: registering with a room (§7.10) reserves a
// nick and grants membership; the reserved nick is discoverable (§7.12)
// and refused to others; registering while in the room renames the
// occupant (303, then 210); <remove/> releases it; a members-only room
// lets only members register.
func TestMUCNickRegistration(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room := mcRoom("reg")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")
	alice.Next(t, mcWait, mcPresence(room+"/Bob", ""))

	form, _ := mcOK(t, bob, room, "get", "<query xmlns='"+mcNSRegister+"'/>")
	x := form.Child("query", mcNSRegister).Child("x", mcNSData)
	if v := mcFormValues(x); x == nil || v["FORM_TYPE"][0] != "http://jabber.org/protocol/muc#register" {
		t.Fatalf("registration form: %s", form)
	} else if _, ok := v["muc#register_roomnick"]; !ok {
		t.Fatalf("registration form without muc#register_roomnick: %s", form)
	}
	register := func(nick string) string {
		return "<query xmlns='" + mcNSRegister + "'><x xmlns='" + mcNSData + "' type='submit'>" +
			"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>" +
			"<field var='muc#register_roomnick'><value>" + nick + "</value></field></x></query>"
	}
	_, before := mcOK(t, bob, room, "set", register("Robert"))
	// Bob is renamed: 303 under the old nick, then 210 under the new.
	got := before
	if len(mcWhere(got, mcPresence(room+"/Robert", ""))) == 0 {
		got = append(got, mcUntil(t, bob, mcPresence(room+"/Robert", ""))...)
	}
	if old := mcWhere(got, mcPresence(room+"/Bob", "unavailable")); len(old) == 0 || !slices.Contains(mcStatuses(old[0]), "303") {
		t.Fatalf("no 303 for the registration's rename in %v", got)
	}
	renamed := mcWhere(got, mcPresence(room+"/Robert", ""))
	if st := mcStatuses(renamed[0]); !slices.Contains(st, "210") || !slices.Contains(st, "110") ||
		mcItem(renamed[0]).AttrValue("affiliation") != "member" {
		t.Fatalf("presence after registration: %s", renamed[0])
	}
	// 210 is for the renamed occupant only (§7.10, like §7.2.5).
	if p := alice.Next(t, mcWait, mcPresence(room+"/Robert", "")); mcItem(p).AttrValue("affiliation") != "member" ||
		slices.Contains(mcStatuses(p), "210") {
		t.Fatalf("others' view of the registered occupant: %s", p)
	}
	if m := mcAffiliations(t, alice, room, "member"); !slices.Contains(m, "bob@localhost") {
		t.Fatalf("members after registration: %v", m)
	}

	again, _ := mcOK(t, bob, room, "get", "<query xmlns='"+mcNSRegister+"'/>")
	if q := again.Child("query", mcNSRegister); q.Child("registered", mcNSRegister) == nil || q.ChildText("username", mcNSRegister) != "Robert" {
		t.Fatalf("registered user's query: %s", again)
	}
	nick, _ := mcOK(t, bob, room, "get", "<query xmlns='"+mcNSInfo+"' node='x-roomuser-item'/>")
	if id := nick.Child("query", mcNSInfo).Child("identity", mcNSInfo); id == nil || id.AttrValue("name") != "Robert" {
		t.Fatalf("reserved nick discovery: %s", nick)
	}
	none, _ := mcOK(t, carol, room, "get", "<query xmlns='"+mcNSInfo+"' node='x-roomuser-item'/>")
	if len(none.Child("query", mcNSInfo).Children) != 0 {
		t.Fatalf("reserved nick of an unregistered user: %s", none)
	}

	mcFail(t, carol, room, "set", register("Robert"), "conflict")
	mcFail(t, carol, room, "set", "<query xmlns='"+mcNSRegister+"'><x xmlns='"+mcNSData+"' type='submit'/></query>", "bad-request")
	mcLeave(t, bob, room, "Robert")
	if cond := mcJoinFails(t, carol, room, "Robert", ""); cond != "conflict" {
		t.Fatalf("joining under a registered nick: %s, want conflict", cond)
	}

	mcOK(t, bob, room, "set", "<query xmlns='"+mcNSRegister+"'><remove/></query>")
	mcFail(t, bob, room, "set", "<query xmlns='"+mcNSRegister+"'><remove/></query>", "item-not-found")
	if m := mcAffiliations(t, alice, room, "member"); slices.Contains(m, "bob@localhost") {
		t.Fatalf("members after unregistration: %v", m)
	}
	mcJoin(t, carol, room, "Robert", "")

	closed := mcRoom("reg-members")
	mcCreate(t, alice, closed, "Alice", "muc#roomconfig_membersonly", "1")
	mcFail(t, carol, closed, "get", "<query xmlns='"+mcNSRegister+"'/>", "not-allowed")
	mcFail(t, carol, closed, "set", register("Carol"), "not-allowed")
}

// TestMUCVoiceRequest: a visitor in a moderated room asks for voice
// (§7.13); moderators get the approval form, only they may approve it
// (§8.6), and approval makes the visitor a participant who may speak.
func TestMUCVoiceRequest(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room := mcRoom("voice")
	mcCreate(t, alice, room, "Alice", "muc#roomconfig_moderatedroom", "1")
	self, _ := mcJoin(t, bob, room, "Bob", "")
	if mcItem(self).AttrValue("role") != "visitor" {
		t.Fatalf("Bob in a moderated room: %s", self)
	}
	mcJoin(t, carol, room, "Carol", "")
	if cond := mcSayFails(t, bob, room, "may I?"); cond != "forbidden" {
		t.Fatalf("visitor speaking: %s", cond)
	}

	request := "<x xmlns='" + mcNSData + "' type='submit'>" +
		"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>" +
		"<field var='muc#role'><value>participant</value></field></x>"
	mcSend(t, bob, "<message to='%s' id='%s'>%s</message>", room, mcID("voice"), request)
	approval := alice.Next(t, mcWait, func(e *wire.Element) bool {
		return e.Name == "message" && e.AttrValue("from") == room && e.Child("x", mcNSData) != nil
	})
	v := mcFormValues(approval.Child("x", mcNSData))
	if approval.Child("x", mcNSData).AttrValue("type") != "form" || v["muc#roomnick"][0] != "Bob" ||
		!strings.HasPrefix(v["muc#jid"][0], "bob@localhost/") || len(v["muc#request_allow"]) == 0 {
		t.Fatalf("voice approval form: %s", approval)
	}
	// Asking again at once is refused.
	id := mcID("voice")
	mcSend(t, bob, "<message to='%s' id='%s'>%s</message>", room, id, request)
	if e := bob.Next(t, mcWait, servertest.Named("message", "id", id)); mcCond(e) != "resource-constraint" {
		t.Fatalf("second voice request at once: %s", e)
	}

	answer := func(allow string) string {
		return "<x xmlns='" + mcNSData + "' type='submit'>" +
			"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>" +
			"<field var='muc#role'><value>participant</value></field>" +
			"<field var='muc#roomnick'><value>Bob</value></field>" +
			"<field var='muc#request_allow'><value>" + allow + "</value></field></x>"
	}
	// Only moderators decide.
	id = mcID("approve")
	mcSend(t, carol, "<message to='%s' id='%s'>%s</message>", room, id, answer("true"))
	if e := carol.Next(t, mcWait, servertest.Named("message", "id", id)); mcCond(e) != "forbidden" {
		t.Fatalf("a visitor approving voice: %s", e)
	}
	// A refusal changes nothing.
	mcSend(t, alice, "<message to='%s' id='%s'>%s</message>", room, mcID("approve"), answer("false"))
	mcNoneBefore(t, alice, room, mcPresence(room+"/Bob", ""), "a refused voice request changed Bob's role")

	mcSend(t, alice, "<message to='%s' id='%s'>%s</message>", room, mcID("approve"), answer("true"))
	for _, c := range []*servertest.Client{alice, bob, carol} {
		if p := c.Next(t, mcWait, mcPresence(room+"/Bob", "")); mcItem(p).AttrValue("role") != "participant" {
			t.Fatalf("%s: Bob after approval: %s", c.JID, p)
		}
	}
	mcSay(t, bob, room, "thank you")
	mcHear(t, alice, room+"/Bob", "thank you")
}

// TestMUCIQBetweenOccupants: IQs to an occupant JID go to the occupant's
// real JID (§17.4); only the occupant the request went to can answer it;
// a vCard request goes to the occupant's bare JID, answered by its
// server; an unknown nick is item-not-found.
func TestMUCIQBetweenOccupants(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room := mcRoom("iq")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")
	mcJoin(t, carol, room, "Carol", "")

	mcForwardPing(t, bob, alice, room, "Bob", "Alice")

	id := mcID("spoof")
	mcSend(t, bob, "<iq type='get' id='%s' to='%s/Alice'><ping xmlns='%s'/></iq>", id, room, mcNSPing)
	fwd := alice.Next(t, mcWait, func(e *wire.Element) bool {
		return e.Name == "iq" && e.AttrValue("type") == "get" && e.AttrValue("from") == room+"/Bob"
	})
	// Carol cannot answer for Alice.
	mcSend(t, carol, "<iq type='error' id='%s' to='%s/Bob'><error type='cancel'><item-not-found xmlns='%s'/></error></iq>",
		fwd.AttrValue("id"), room, mcNSStanzas)
	mcSend(t, alice, "<iq type='result' id='%s' to='%s/Bob'/>", fwd.AttrValue("id"), room)
	if ans := bob.Next(t, mcWait, servertest.Named("iq", "id", id)); ans.AttrValue("type") != "result" || ans.AttrValue("from") != room+"/Alice" {
		t.Fatalf("answer to a forwarded IQ after a spoofed one: %s", ans)
	}

	id = mcID("vcard")
	mcSend(t, bob, "<iq type='get' id='%s' to='%s/Alice'><vCard xmlns='vcard-temp'/></iq>", id, room)
	if ans := bob.Next(t, mcWait, servertest.Named("iq", "id", id)); ans.AttrValue("from") != room+"/Alice" {
		t.Fatalf("answer to a vCard request through the room: %s", ans)
	}
	mcNoneBefore(t, alice, room, func(e *wire.Element) bool {
		return e.Name == "iq" && e.Child("vCard", "vcard-temp") != nil
	}, "a vCard request reached a session instead of the account")

	mcFail(t, bob, room+"/Nobody", "get", "<ping xmlns='"+mcNSPing+"'/>", "item-not-found")
}

// TestMUCActorAndDecline: kicks and bans name the moderator who did them
// (<actor nick/>, §8.2, §9.1); an invitee's decline reaches the inviter
// (§7.8.2), and a decline without an invitation is refused.
func TestMUCActorAndDecline(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol", "dave")
	alice, bob, carol, dave := cl[0], cl[1], cl[2], cl[3]
	room := mcRoom("actor")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")
	mcJoin(t, carol, room, "Carol", "")

	mcOK(t, alice, room, "set", mcAdminItem("spam", "nick", "Bob", "role", "none"))
	kicked := bob.Next(t, mcWait, mcPresence(room+"/Bob", "unavailable"))
	if it := mcItem(kicked); !slices.Contains(mcStatuses(kicked), "307") || it.Child("actor", mcNSUser) == nil ||
		it.Child("actor", mcNSUser).AttrValue("nick") != "Alice" || it.ChildText("reason", mcNSUser) != "spam" {
		t.Fatalf("kick without actor or reason: %s", kicked)
	}
	mcOK(t, alice, room, "set", mcAdminItem("", "jid", "carol@localhost", "affiliation", "outcast"))
	banned := carol.Next(t, mcWait, mcPresence(room+"/Carol", "unavailable"))
	if it := mcItem(banned); !slices.Contains(mcStatuses(banned), "301") || it.Child("actor", mcNSUser).AttrValue("nick") != "Alice" {
		t.Fatalf("ban without actor: %s", banned)
	}

	// Available, so that the invitation and the decline (to bare JIDs)
	// are not stored offline.
	mcSend(t, dave, "<presence/>")
	mcSend(t, alice, "<presence/>")
	mcSend(t, alice, "<message to='%s'><x xmlns='%s'><invite to='dave@localhost'><reason>join us</reason></invite></x></message>", room, mcNSUser)
	dave.Next(t, mcWait, func(e *wire.Element) bool {
		x := e.Child("x", mcNSUser)
		return e.Name == "message" && x != nil && x.Child("invite", mcNSUser) != nil
	})
	mcSend(t, dave, "<message to='%s'><x xmlns='%s'><decline to='alice@localhost'><reason>busy</reason></decline></x></message>", room, mcNSUser)
	dec := alice.Next(t, mcWait, func(e *wire.Element) bool {
		x := e.Child("x", mcNSUser)
		return e.Name == "message" && e.AttrValue("from") == room && x != nil && x.Child("decline", mcNSUser) != nil
	})
	if d := dec.Child("x", mcNSUser).Child("decline", mcNSUser); d.AttrValue("from") != "dave@localhost" || d.ChildText("reason", mcNSUser) != "busy" {
		t.Fatalf("decline as the inviter sees it: %s", dec)
	}
	// Nothing left to decline: neither again, nor for someone never
	// invited (the room relays nothing of its own accord).
	for _, c := range []*servertest.Client{dave, bob} {
		id := mcID("decline")
		mcSend(t, c, "<message to='%s' id='%s'><x xmlns='%s'><decline to='alice@localhost'/></x></message>", room, id, mcNSUser)
		if e := c.Next(t, mcWait, servertest.Named("message", "id", id)); mcCond(e) != "not-acceptable" {
			t.Fatalf("%s: decline without an invitation: %s", c.JID, e)
		}
	}
}

// TestMUCGhostRemoval: a delivery error from an occupant's address for
// something the room sent it removes the occupant, with 333 (§18.1.2,
// §11.1); other errors do not.
func TestMUCGhostRemoval(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	room := mcRoom("ghosts")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")
	alice.Next(t, mcWait, mcPresence(room+"/Bob", ""))

	bounce := func(cond string) string {
		return "<message type='error' to='" + room + "/Alice'><body>hi</body><error type='cancel'><" + cond + " xmlns='" + mcNSStanzas + "'/></error></message>"
	}
	mcSend(t, bob, "%s", bounce("not-acceptable"))
	mcNoneBefore(t, alice, room, mcPresence(room+"/Bob", "unavailable"), "a non-delivery error removed an occupant")

	mcSend(t, bob, "%s", bounce("recipient-unavailable"))
	p := alice.Next(t, mcWait, mcPresence(room+"/Bob", "unavailable"))
	if !slices.Contains(mcStatuses(p), "333") {
		t.Fatalf("ghost removal without 333: %s", p)
	}
}

// TestMUCServiceShutdown: when the server stops, occupants are told that
// the room service is going down (332, §11.2) before their streams close.
func TestMUCServiceShutdown(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	room := mcRoom("shutdown")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c   *servertest.Client
		occ string
	}{{alice, room + "/Alice"}, {bob, room + "/Bob"}} {
		p := tc.c.Next(t, mcWait, mcPresence(tc.occ, "unavailable"))
		if st := mcStatuses(p); !slices.Contains(st, "332") || !slices.Contains(st, "110") || p.Child("occupant-id", mcNSOccID) == nil {
			t.Fatalf("%s: removal at shutdown without 332, 110 or the occupant id (XEP-0421 §4): %s", tc.c.JID, p)
		}
	}
}
