package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/config"
	"switchboard/xmpp/server"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// Multi-user chat (XEP-0045) over real sockets. Every wait for something
// that must arrive is bounded by mcWait; the absence of something is
// checked up to a barrier (an IQ answered by the room's actor, which
// handles stanzas in order, or a ping to the server), never after a sleep.

const (
	mcWait     = 5 * time.Second
	mcPassword = "mc secret"

	mcNS         = "http://jabber.org/protocol/muc"
	mcNSUser     = "http://jabber.org/protocol/muc#user"
	mcNSAdmin    = "http://jabber.org/protocol/muc#admin"
	mcNSOwner    = "http://jabber.org/protocol/muc#owner"
	mcNSData     = "jabber:x:data"
	mcNSStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	mcNSSID      = "urn:xmpp:sid:0"
	mcNSOccID    = "urn:xmpp:occupant-id:0"
	mcNSMAM      = "urn:xmpp:mam:2"
	mcNSForward  = "urn:xmpp:forward:0"
	mcNSPing     = "urn:xmpp:ping"
	mcNSDelay    = "urn:xmpp:delay"
	mcNSInfo     = "http://jabber.org/protocol/disco#info"
	mcNSItems    = "http://jabber.org/protocol/disco#items"
	mcNSRoomConf = "http://jabber.org/protocol/muc#roomconfig"
	mcNSRoomInfo = "http://jabber.org/protocol/muc#roominfo"

	mcService = "conference.localhost"
	mcIssues  = "issues.localhost"
)

var mcSeq atomic.Uint64

// mcID returns a unique stanza id.
func mcID(prefix string) string { return prefix + strconv.FormatUint(mcSeq.Add(1), 10) }

// mcRoom is the JID of a room on the conference service.
func mcRoom(name string) string { return name + "@" + mcService }

// mcUsers creates the accounts and logs one client in for each.
func mcUsers(t testing.TB, s *servertest.Server, names ...string) []*servertest.Client {
	t.Helper()
	out := make([]*servertest.Client, 0, len(names))
	for _, n := range names {
		out = append(out, s.MustLogin(t, s.AddUser(t, n, mcPassword), mcPassword, servertest.ClientOptions{Resource: "r"}))
	}
	return out
}

// mcLogin logs another session of an existing account in.
func mcLogin(t testing.TB, s *servertest.Server, bare, resource string) *servertest.Client {
	t.Helper()
	return s.MustLogin(t, jid.MustParse(bare), mcPassword, servertest.ClientOptions{Resource: resource})
}

// mcSend writes one stanza. The context is never done (see
// servertest.Login).
func mcSend(t testing.TB, c *servertest.Client, format string, args ...any) {
	t.Helper()
	s := fmt.Sprintf(format, args...)
	if err := c.SendRaw(context.Background(), s); err != nil {
		t.Fatalf("%s: send %s: %v", c.JID, s, err)
	}
}

// mcUntil returns every element up to and including the first one
// matching match, which is last.
func mcUntil(t testing.TB, c *servertest.Client, match func(*wire.Element) bool) []*wire.Element {
	t.Helper()
	var got []*wire.Element
	c.Next(t, mcWait, func(e *wire.Element) bool {
		got = append(got, e)
		return match(e)
	})
	return got
}

// mcIQ sends an IQ of type typ to to with payload and returns its answer
// and every element received before it.
func mcIQ(t testing.TB, c *servertest.Client, to, typ, payload string) (res *wire.Element, before []*wire.Element) {
	t.Helper()
	id := mcID("mc")
	toAttr := ""
	if to != "" {
		toAttr = " to='" + to + "'"
	}
	mcSend(t, c, "<iq type='%s' id='%s'%s>%s</iq>", typ, id, toAttr, payload)
	got := mcUntil(t, c, func(e *wire.Element) bool {
		return e.Name == "iq" && e.AttrValue("id") == id && (e.AttrValue("type") == "result" || e.AttrValue("type") == "error")
	})
	return got[len(got)-1], got[:len(got)-1]
}

// mcOK is mcIQ that requires a result.
func mcOK(t testing.TB, c *servertest.Client, to, typ, payload string) (res *wire.Element, before []*wire.Element) {
	t.Helper()
	res, before = mcIQ(t, c, to, typ, payload)
	if res.AttrValue("type") != "result" {
		t.Fatalf("%s: iq %s to %s %s answered %s", c.JID, typ, to, payload, res)
	}
	return res, before
}

// mcFail is mcIQ that requires an error with condition cond.
func mcFail(t testing.TB, c *servertest.Client, to, typ, payload, cond string) *wire.Element {
	t.Helper()
	res, _ := mcIQ(t, c, to, typ, payload)
	if got := mcCond(res); res.AttrValue("type") != "error" || got != cond {
		t.Fatalf("%s: iq %s to %s %s answered %s, want error %s", c.JID, typ, to, payload, res, cond)
	}
	return res
}

// mcSync is a barrier through the server: everything routed to c before
// the ping's answer is returned.
func mcSync(t testing.TB, c *servertest.Client) []*wire.Element {
	t.Helper()
	_, before := mcOK(t, c, "localhost", "get", "<ping xmlns='"+mcNSPing+"'/>")
	return before
}

// mcRoomSync is a barrier through a room's actor: the room handles
// stanzas one at a time, so whatever it sent c before answering the
// disco#info query (sent after c observed the event it waits for) has
// been delivered by the time the answer arrives.
func mcRoomSync(t testing.TB, c *servertest.Client, room string) []*wire.Element {
	t.Helper()
	res, before := mcIQ(t, c, room, "get", "<query xmlns='"+mcNSInfo+"'/>")
	if res.AttrValue("type") != "result" && mcCond(res) != "item-not-found" {
		t.Fatalf("%s: room barrier on %s answered %s", c.JID, room, res)
	}
	return before
}

// mcCond is the condition of an error stanza, or "".
func mcCond(e *wire.Element) string {
	if e.AttrValue("type") != "error" {
		return ""
	}
	er := e.Child("error", "")
	if er == nil {
		return ""
	}
	for _, c := range er.Children {
		if c.Space == mcNSStanzas && c.Name != "text" {
			return c.Name
		}
	}
	return ""
}

// mcStatuses are the muc#user status codes of e, sorted.
func mcStatuses(e *wire.Element) []string {
	x := e.Child("x", mcNSUser)
	if x == nil {
		return nil
	}
	var out []string
	for _, s := range x.Children {
		if s.Name == "status" && s.Space == mcNSUser {
			out = append(out, s.AttrValue("code"))
		}
	}
	sort.Strings(out)
	return out
}

// mcItem is the muc#user item of e (or nil).
func mcItem(e *wire.Element) *wire.Element {
	if x := e.Child("x", mcNSUser); x != nil {
		return x.Child("item", mcNSUser)
	}
	return nil
}

// mcPresence matches a presence from the occupant JID occ of type typ
// ("" available).
func mcPresence(occ, typ string) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("from") == occ && e.AttrValue("type") == typ
	}
}

// mcBody matches a message (not an error) with that body.
func mcBody(body string) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		return e.Name == "message" && e.AttrValue("type") != "error" && e.ChildText("body", "") == body
	}
}

// mcSubject matches the subject message of room: a groupchat message
// with a subject and no body (XEP-0045 §7.2.15).
func mcSubject(room string) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		from := e.AttrValue("from")
		return e.Name == "message" && e.AttrValue("type") == "groupchat" && e.Child("subject", "") != nil &&
			e.Child("body", "") == nil && (from == room || strings.HasPrefix(from, room+"/"))
	}
}

func mcWhere(els []*wire.Element, match func(*wire.Element) bool) []*wire.Element {
	var out []*wire.Element
	for _, e := range els {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// mcJoin joins c to room as nick with the MUC <x/> (whose inner XML is
// inner) and returns its self-presence and everything received up to and
// including the subject, which ends a join.
func mcJoin(t testing.TB, c *servertest.Client, room, nick, inner string) (self *wire.Element, got []*wire.Element) {
	t.Helper()
	occ := room + "/" + nick
	mcSend(t, c, "<presence to='%s'><x xmlns='%s'>%s</x></presence>", occ, mcNS, inner)
	got = mcUntil(t, c, func(e *wire.Element) bool {
		if mcPresence(occ, "error")(e) {
			t.Fatalf("%s: join %s refused: %s", c.JID, occ, e)
		}
		if mcPresence(occ, "")(e) && slices.Contains(mcStatuses(e), "110") {
			self = e
		}
		return self != nil && mcSubject(room)(e)
	})
	return self, got
}

// mcJoinFails sends a join and returns the condition of the error
// presence.
func mcJoinFails(t testing.TB, c *servertest.Client, room, nick, inner string) string {
	t.Helper()
	occ := room + "/" + nick
	mcSend(t, c, "<presence to='%s'><x xmlns='%s'>%s</x></presence>", occ, mcNS, inner)
	e := c.Next(t, mcWait, func(e *wire.Element) bool {
		if mcPresence(occ, "")(e) {
			t.Fatalf("%s: join %s accepted, want an error: %s", c.JID, occ, e)
		}
		return mcPresence(occ, "error")(e)
	})
	return mcCond(e)
}

// mcSay sends a groupchat message to room.
func mcSay(t testing.TB, c *servertest.Client, room, body string) {
	t.Helper()
	mcSend(t, c, "<message to='%s' type='groupchat' id='%s'><body>%s</body></message>", room, mcID("gc"), body)
}

// mcHear waits for the groupchat message with body from occupant occ and
// returns it.
func mcHear(t testing.TB, c *servertest.Client, occ, body string) *wire.Element {
	t.Helper()
	return c.Next(t, mcWait, func(e *wire.Element) bool {
		return mcBody(body)(e) && e.AttrValue("from") == occ && e.AttrValue("type") == "groupchat"
	})
}

// mcSayFails sends a groupchat message and returns the error condition.
func mcSayFails(t testing.TB, c *servertest.Client, room, body string) string {
	t.Helper()
	id := mcID("gc")
	mcSend(t, c, "<message to='%s' type='groupchat' id='%s'><body>%s</body></message>", room, id, body)
	e := c.Next(t, mcWait, func(e *wire.Element) bool {
		if mcBody(body)(e) {
			t.Fatalf("%s: message %q to %s was accepted", c.JID, body, room)
		}
		return e.Name == "message" && e.AttrValue("id") == id && e.AttrValue("type") == "error"
	})
	return mcCond(e)
}

// mcForm is a submitted muc#roomconfig form; values are the fields in
// order (var, value, var, value...), and a var may repeat for multiple
// values.
func mcForm(fields ...string) string {
	var b strings.Builder
	b.WriteString("<query xmlns='" + mcNSOwner + "'><x xmlns='" + mcNSData + "' type='submit'>")
	b.WriteString("<field var='FORM_TYPE'><value>" + mcNSRoomConf + "</value></field>")
	vals := map[string][]string{}
	var order []string
	for i := 0; i+1 < len(fields); i += 2 {
		if _, ok := vals[fields[i]]; !ok {
			order = append(order, fields[i])
		}
		vals[fields[i]] = append(vals[fields[i]], fields[i+1])
	}
	for _, v := range order {
		b.WriteString("<field var='" + v + "'>")
		for _, val := range vals[v] {
			if val != "" {
				b.WriteString("<value>" + val + "</value>")
			}
		}
		b.WriteString("</field>")
	}
	b.WriteString("</x></query>")
	return b.String()
}

// mcAdminItem is a muc#admin query with one item of the given attributes
// (name, value pairs) and an optional reason.
func mcAdminItem(reason string, attrs ...string) string {
	var b strings.Builder
	b.WriteString("<query xmlns='" + mcNSAdmin + "'><item")
	for i := 0; i+1 < len(attrs); i += 2 {
		b.WriteString(" " + attrs[i] + "='" + attrs[i+1] + "'")
	}
	b.WriteString(">")
	if reason != "" {
		b.WriteString("<reason>" + reason + "</reason>")
	}
	b.WriteString("</item></query>")
	return b.String()
}

// mcFeatures are the disco#info features of a result.
func mcFeatures(res *wire.Element) []string {
	var out []string
	if q := res.Child("query", mcNSInfo); q != nil {
		for _, f := range q.Children {
			if f.Name == "feature" {
				out = append(out, f.AttrValue("var"))
			}
		}
	}
	return out
}

// mcItems are the JIDs of a disco#items result.
func mcItems(res *wire.Element) []string {
	var out []string
	if q := res.Child("query", mcNSItems); q != nil {
		for _, it := range q.Children {
			out = append(out, it.AttrValue("jid"))
		}
	}
	return out
}

// mcFormValues reads the fields of a data form.
func mcFormValues(x *wire.Element) map[string][]string {
	out := map[string][]string{}
	if x == nil {
		return out
	}
	for _, f := range x.Children {
		if f.Name != "field" {
			continue
		}
		v := f.AttrValue("var")
		out[v] = []string{}
		for _, val := range f.Children {
			if val.Name == "value" {
				out[v] = append(out[v], val.Text)
			}
		}
	}
	return out
}

// mcConfig fetches a room's configuration form as values.
func mcConfig(t testing.TB, owner *servertest.Client, room string) map[string][]string {
	t.Helper()
	res, _ := mcOK(t, owner, room, "get", "<query xmlns='"+mcNSOwner+"'/>")
	q := res.Child("query", mcNSOwner)
	if q == nil || q.Child("x", mcNSData) == nil || q.Child("x", mcNSData).AttrValue("type") != "form" {
		t.Fatalf("configuration of %s: %s", room, res)
	}
	return mcFormValues(q.Child("x", mcNSData))
}

// mcAffiliations lists the JIDs of one affiliation, sorted.
func mcAffiliations(t testing.TB, c *servertest.Client, room, aff string) []string {
	t.Helper()
	res, _ := mcOK(t, c, room, "get", mcAdminItem("", "affiliation", aff))
	var out []string
	for _, it := range res.Child("query", mcNSAdmin).Children {
		if it.AttrValue("affiliation") != aff {
			t.Fatalf("%s list holds %s", aff, it)
		}
		out = append(out, it.AttrValue("jid"))
	}
	sort.Strings(out)
	return out
}

// mcInstant is the owner's acceptance of the default configuration (an
// instant room, §10.1.2), which also unlocks a new room.
const mcInstant = "<query xmlns='" + mcNSOwner + "'><x xmlns='" + mcNSData + "' type='submit'/></query>"

// mcCreate creates room with owner as nick and accepts the default
// configuration (an instant room, §10.1.2), then applies the form fields.
func mcCreate(t testing.TB, owner *servertest.Client, room, nick string, fields ...string) {
	t.Helper()
	self, _ := mcJoin(t, owner, room, nick, "")
	if !slices.Contains(mcStatuses(self), "201") {
		t.Fatalf("creator's self-presence lacks 201: %s", self)
	}
	mcOK(t, owner, room, "set", mcInstant)
	if len(fields) > 0 {
		mcOK(t, owner, room, "set", mcForm(fields...))
	}
}

// mcLeave sends unavailable presence and waits for the room's answer.
func mcLeave(t testing.TB, c *servertest.Client, room, nick string) *wire.Element {
	t.Helper()
	occ := room + "/" + nick
	mcSend(t, c, "<presence to='%s' type='unavailable'/>", occ)
	return c.Next(t, mcWait, mcPresence(occ, "unavailable"))
}

// mcNotice matches a message from the room itself carrying muc#user
// status code code (a configuration change, §10.2.1).
func mcNotice(room, code string) func(*wire.Element) bool {
	return func(e *wire.Element) bool {
		return e.Name == "message" && e.AttrValue("from") == room && slices.Contains(mcStatuses(e), code)
	}
}

// TestMUCCreateConfigure: the creator gets 201 and the owner affiliation;
// only owners read the configuration form; a submitted form changes the
// name, members-only, password, persistence, moderation and anonymity, and
// occupants learn of it (104, 172); the new settings apply to joins.
func TestMUCCreateConfigure(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room := mcRoom("config")

	self, _ := mcJoin(t, alice, room, "Alice", "")
	if st := mcStatuses(self); !slices.Contains(st, "110") || !slices.Contains(st, "201") || slices.Contains(st, "100") {
		t.Fatalf("creator's self-presence in a semi-anonymous room: status %v: %s", st, self)
	}
	if it := mcItem(self); it == nil || it.AttrValue("affiliation") != "owner" || it.AttrValue("role") != "moderator" {
		t.Fatalf("creator's item: %s", self)
	}
	// §7.2.10: locked until its owner configures it; then open.
	if cond := mcJoinFails(t, bob, room, "Bob", ""); cond != "item-not-found" {
		t.Fatalf("join of a locked room: %s, want item-not-found", cond)
	}
	mcFail(t, bob, room, "get", "<query xmlns='"+mcNSInfo+"'/>", "item-not-found")
	mcOK(t, alice, room, "set", mcInstant)
	mcJoin(t, bob, room, "Bob", "")
	alice.Next(t, mcWait, mcPresence(room+"/Bob", ""))

	mcFail(t, bob, room, "get", "<query xmlns='"+mcNSOwner+"'/>", "forbidden")
	mcFail(t, bob, room, "set", mcForm("muc#roomconfig_roomname", "Hijacked"), "forbidden")
	form := mcConfig(t, alice, room)
	for _, f := range []string{
		"FORM_TYPE", "muc#roomconfig_roomname", "muc#roomconfig_persistentroom", "muc#roomconfig_membersonly",
		"muc#roomconfig_moderatedroom", "muc#roomconfig_passwordprotectedroom", "muc#roomconfig_roomsecret",
		"muc#roomconfig_whois", "muc#roomconfig_maxusers", "switchboard#access",
	} {
		if _, ok := form[f]; !ok {
			t.Errorf("configuration form lacks %s: %v", f, form)
		}
	}
	if v := form["FORM_TYPE"]; len(v) != 1 || v[0] != mcNSRoomConf {
		t.Errorf("FORM_TYPE %v", v)
	}
	if v := form["muc#roomconfig_whois"]; len(v) != 1 || v[0] != "moderators" {
		t.Errorf("default whois %v, want moderators", v)
	}

	// Bob becomes a member first, so that members-only keeps him.
	mcOK(t, alice, room, "set", mcAdminItem("", "jid", "bob@localhost", "affiliation", "member"))
	_, before := mcOK(t, alice, room, "set", mcForm(
		"muc#roomconfig_roomname", "Planning",
		"muc#roomconfig_membersonly", "1",
		"muc#roomconfig_passwordprotectedroom", "1",
		"muc#roomconfig_roomsecret", "s3cret",
		"muc#roomconfig_persistentroom", "1",
		"muc#roomconfig_moderatedroom", "1",
		"muc#roomconfig_whois", "anyone",
	))
	// The owner's notice comes before the answer to the form.
	if n := mcWhere(before, mcNotice(room, "172")); len(n) != 1 || !slices.Contains(mcStatuses(n[0]), "104") {
		t.Errorf("owner's configuration change notices: %v", n)
	}
	if n := bob.Next(t, mcWait, mcNotice(room, "172")); !slices.Contains(mcStatuses(n), "104") {
		t.Errorf("configuration change notice without 104: %s", n)
	}
	form = mcConfig(t, alice, room)
	for f, want := range map[string]string{
		"muc#roomconfig_roomname": "Planning", "muc#roomconfig_membersonly": "1",
		"muc#roomconfig_passwordprotectedroom": "1", "muc#roomconfig_roomsecret": "s3cret",
		"muc#roomconfig_persistentroom": "1", "muc#roomconfig_moderatedroom": "1", "muc#roomconfig_whois": "anyone",
	} {
		if v := form[f]; len(v) != 1 || v[0] != want {
			t.Errorf("after submit %s = %v, want %s", f, v, want)
		}
	}
	info, _ := mcOK(t, carol, room, "get", "<query xmlns='"+mcNSInfo+"'/>")
	feats := mcFeatures(info)
	for _, f := range []string{"muc_membersonly", "muc_passwordprotected", "muc_persistent", "muc_moderated", "muc_nonanonymous"} {
		if !slices.Contains(feats, f) {
			t.Errorf("disco#info lacks %s: %v", f, feats)
		}
	}
	if id := info.Child("query", mcNSInfo).Child("identity", mcNSInfo); id == nil || id.AttrValue("name") != "Planning" {
		t.Errorf("room identity: %s", info)
	}

	// The new settings apply to joins.
	if c := mcJoinFails(t, carol, room, "Carol", ""); c != "registration-required" {
		t.Fatalf("non-member joins a members-only room: %s", c)
	}
	mcOK(t, alice, room, "set", mcAdminItem("", "jid", "carol@localhost", "affiliation", "member"))
	if c := mcJoinFails(t, carol, room, "Carol", ""); c != "not-authorized" {
		t.Fatalf("join without the password: %s", c)
	}
	if c := mcJoinFails(t, carol, room, "Carol", "<password>wrong</password>"); c != "not-authorized" {
		t.Fatalf("join with a wrong password: %s", c)
	}
	self, got := mcJoin(t, carol, room, "Carol", "<password>s3cret</password>")
	if st := mcStatuses(self); !slices.Contains(st, "100") || !slices.Contains(st, "110") || slices.Contains(st, "201") {
		t.Fatalf("self-presence in a non-anonymous room: status %v: %s", st, self)
	}
	// Non-anonymous: Carol sees the real JIDs of the others.
	if p := mcWhere(got, mcPresence(room+"/Alice", "")); len(p) != 1 || !strings.HasPrefix(mcItem(p[0]).AttrValue("jid"), "alice@localhost") {
		t.Fatalf("Alice's presence in a non-anonymous room: %v", p)
	}
}

// TestMUCInstantRoom: an empty submission accepts the defaults
// (§10.1.2); a temporary room ends with its last occupant.
func TestMUCInstantRoom(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	alice := mcUsers(t, s, "alice")[0]
	room := mcRoom("instant")
	self, _ := mcJoin(t, alice, room, "Alice", "")
	if !slices.Contains(mcStatuses(self), "201") {
		t.Fatalf("self-presence lacks 201: %s", self)
	}
	mcOK(t, alice, room, "set", "<query xmlns='"+mcNSOwner+"'><x xmlns='"+mcNSData+"' type='submit'/></query>")
	info, _ := mcOK(t, alice, room, "get", "<query xmlns='"+mcNSInfo+"'/>")
	if f := mcFeatures(info); !slices.Contains(f, "muc_temporary") || !slices.Contains(f, "muc_open") {
		t.Fatalf("instant room features: %v", f)
	}
	mcLeave(t, alice, room, "Alice")
	mcFail(t, alice, room, "get", "<query xmlns='"+mcNSInfo+"'/>", "item-not-found")
}

// TestMUCDestroy: the owner destroys a persistent room naming an
// alternate venue; every occupant gets unavailable presence with
// <destroy jid=…><reason/>, and the room is gone.
func TestMUCDestroy(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room, venue := mcRoom("doomed"), mcRoom("phoenix")
	mcCreate(t, alice, room, "Alice", "muc#roomconfig_persistentroom", "1")
	mcJoin(t, bob, room, "Bob", "")
	mcJoin(t, carol, room, "Carol", "")

	mcFail(t, bob, room, "set", "<query xmlns='"+mcNSOwner+"'><destroy/></query>", "forbidden")
	_, before := mcOK(t, alice, room, "set", "<query xmlns='"+mcNSOwner+"'><destroy jid='"+venue+"'><reason>Moving on</reason></destroy></query>")
	check := func(c *servertest.Client, p *wire.Element) {
		t.Helper()
		d := p.Child("x", mcNSUser).Child("destroy", mcNSUser)
		if d == nil || d.AttrValue("jid") != venue || d.ChildText("reason", mcNSUser) != "Moving on" {
			t.Fatalf("%s: unavailable on destroy: %s", c.JID, p)
		}
	}
	if p := mcWhere(before, mcPresence(room+"/Alice", "unavailable")); len(p) != 1 {
		t.Fatalf("owner's unavailable on destroy: %v", before)
	} else {
		check(alice, p[0])
	}
	check(bob, bob.Next(t, mcWait, mcPresence(room+"/Bob", "unavailable")))
	check(carol, carol.Next(t, mcWait, mcPresence(room+"/Carol", "unavailable")))
	mcFail(t, carol, room, "get", "<query xmlns='"+mcNSInfo+"'/>", "item-not-found")
	items, _ := mcOK(t, carol, mcService, "get", "<query xmlns='"+mcNSItems+"'/>")
	for _, it := range items.Child("query", mcNSItems).Children {
		if it.AttrValue("jid") == room {
			t.Fatalf("destroyed room still listed: %s", items)
		}
	}
	// Self-ping tells former occupants they are out.
	mcFail(t, bob, room+"/Bob", "get", "<ping xmlns='"+mcNSPing+"'/>", "not-acceptable")
}

// TestMUCJoinLeave: self-presence carries 110, and 100 in a non-anonymous
// room only; real JIDs go to moderators, or to everyone when whois is
// anyone. Leaving, by unavailable presence or by ending the session (the
// presence module then sends unavailable for the directed presence), is
// announced to the others; self-ping answers while joined only (XEP-0410).
func TestMUCJoinLeave(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]

	for _, tc := range []struct {
		name, whois string
		nonAnon     bool
	}{
		{"semi-anonymous", "moderators", false},
		{"non-anonymous", "anyone", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := mcRoom("join-" + tc.whois)
			mcCreate(t, alice, room, "Alice", "muc#roomconfig_whois", tc.whois)
			self, got := mcJoin(t, bob, room, "Bob", "")
			if st := mcStatuses(self); !slices.Contains(st, "110") || slices.Contains(st, "100") != tc.nonAnon {
				t.Fatalf("self-presence status %v (non-anonymous %v): %s", st, tc.nonAnon, self)
			}
			if it := mcItem(self); it == nil || it.AttrValue("role") != "participant" || it.AttrValue("affiliation") != "none" {
				t.Fatalf("self item: %s", self)
			}
			if self.Child("occupant-id", mcNSOccID) == nil {
				t.Errorf("self-presence without occupant id: %s", self)
			}
			// The others' presence comes before the self-presence.
			var seenAlice, seenSelf bool
			for _, e := range got {
				switch {
				case mcPresence(room+"/Alice", "")(e):
					seenAlice = true
					if seenSelf {
						t.Errorf("Alice's presence after the self-presence")
					}
					if hasJID := mcItem(e).AttrValue("jid") != ""; hasJID != tc.nonAnon {
						t.Errorf("Alice's presence to a participant shows a real JID: %v, want %v: %s", hasJID, tc.nonAnon, e)
					}
				case e == self:
					seenSelf = true
				}
			}
			if !seenAlice {
				t.Fatalf("no presence of Alice in %v", got)
			}
			// A moderator always sees real JIDs.
			p := alice.Next(t, mcWait, mcPresence(room+"/Bob", ""))
			if j := mcItem(p).AttrValue("jid"); !strings.HasPrefix(j, "bob@localhost/") || slices.Contains(mcStatuses(p), "110") {
				t.Fatalf("Bob's presence to the moderator: %s", p)
			}
			mcOK(t, bob, room+"/Bob", "get", "<ping xmlns='"+mcNSPing+"'/>")
			// §17.4: an IQ to another occupant reaches its real JID,
			// from the sender's occupant JID and with an id of the
			// room's; the answer comes back the same way.
			mcForwardPing(t, bob, alice, room, "Bob", "Alice")
			out := mcLeave(t, bob, room, "Bob")
			if st := mcStatuses(out); !slices.Contains(st, "110") {
				t.Fatalf("own unavailable presence lacks 110: %s", out)
			}
			if p := alice.Next(t, mcWait, mcPresence(room+"/Bob", "unavailable")); slices.Contains(mcStatuses(p), "110") {
				t.Fatalf("others' view of the leave: %s", p)
			}
			mcFail(t, bob, room+"/Bob", "get", "<ping xmlns='"+mcNSPing+"'/>", "not-acceptable")
			mcLeave(t, alice, room, "Alice")
		})
	}

	// A client that lost track of the room joins again: a full
	// synchronisation (XEP-0045 §17.1), not a mere presence update.
	t.Run("join while joined", func(t *testing.T) {
		room := mcRoom("resync")
		mcCreate(t, alice, room, "Alice")
		mcSay(t, alice, room, "said before")
		mcHear(t, alice, room+"/Alice", "said before")
		mcJoin(t, bob, room, "Bob", "")
		alice.Next(t, mcWait, mcPresence(room+"/Bob", ""))
		self, got := mcJoin(t, bob, room, "Bob", "")
		if st := mcStatuses(self); slices.Contains(st, "201") {
			t.Fatalf("resync self-presence: %s", self)
		}
		if len(mcWhere(got, mcPresence(room+"/Alice", ""))) != 1 || len(mcWhere(got, mcBody("said before"))) != 1 {
			t.Fatalf("resync lacks the others' presence or the history: %v", got)
		}
		if p := alice.Next(t, mcWait, mcPresence(room+"/Bob", "")); slices.Contains(mcStatuses(p), "110") {
			t.Fatalf("others' view of the resync: %s", p)
		}
		info, _ := mcOK(t, alice, room, "get", "<query xmlns='"+mcNSInfo+"'/>")
		if occ := mcFormValues(info.Child("query", mcNSInfo).Child("x", mcNSData))["muc#roominfo_occupants"]; len(occ) != 1 || occ[0] != "2" {
			t.Fatalf("occupants after the resync: %v", occ)
		}
		mcLeave(t, bob, room, "Bob")
		mcLeave(t, alice, room, "Alice")
	})

	for _, tc := range []struct {
		name    string
		initial bool // the session sent initial presence before joining
	}{
		{"session ends without presence", false},
		{"session ends after initial presence", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := mcRoom(fmt.Sprintf("gone-%v", tc.initial))
			mcCreate(t, alice, room, "Alice")
			c := mcLogin(t, s, "bob@localhost", "gone")
			if tc.initial {
				mcSend(t, c, "<presence/>")
				mcSync(t, c)
			}
			mcJoin(t, c, room, "Bob", "")
			alice.Next(t, mcWait, mcPresence(room+"/Bob", ""))
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			c.Closed(t, mcWait)
			p := alice.Next(t, mcWait, mcPresence(room+"/Bob", "unavailable"))
			if it := mcItem(p); it == nil || it.AttrValue("role") != "none" {
				t.Fatalf("unavailable of a closed session: %s", p)
			}
			info, _ := mcOK(t, alice, room, "get", "<query xmlns='"+mcNSInfo+"'/>")
			occ := mcFormValues(info.Child("query", mcNSInfo).Child("x", mcNSData))["muc#roominfo_occupants"]
			if len(occ) != 1 || occ[0] != "1" {
				t.Fatalf("occupants after the session ended: %v", occ)
			}
		})
	}
}

// TestMUCNicks: a nick in use is refused with conflict; a nick change is
// announced as unavailable with 303 and the new nick, then presence under
// the new nick; the old nick is free again.
func TestMUCNicks(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room := mcRoom("nicks")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")

	for _, nick := range []string{"Alice", "Bob"} {
		if c := mcJoinFails(t, carol, room, nick, ""); c != "conflict" {
			t.Fatalf("joining as %s: %s, want conflict", nick, c)
		}
	}
	mcJoin(t, carol, room, "Carol", "")
	// A change to a nick in use is refused too, and changes nothing.
	mcSend(t, carol, "<presence to='%s/Bob'/>", room)
	if e := carol.Next(t, mcWait, mcPresence(room+"/Bob", "error")); mcCond(e) != "conflict" {
		t.Fatalf("nick change to a nick in use: %s", e)
	}

	mcSend(t, bob, "<presence to='%s/Robert'/>", room)
	for _, c := range []*servertest.Client{alice, bob, carol} {
		un := c.Next(t, mcWait, mcPresence(room+"/Bob", "unavailable"))
		st := mcStatuses(un)
		if !slices.Contains(st, "303") || mcItem(un).AttrValue("nick") != "Robert" || slices.Contains(st, "110") != (c == bob) {
			t.Fatalf("%s: nick change announcement: %s", c.JID, un)
		}
		av := c.Next(t, mcWait, mcPresence(room+"/Robert", ""))
		if slices.Contains(mcStatuses(av), "110") != (c == bob) {
			t.Fatalf("%s: presence under the new nick: %s", c.JID, av)
		}
	}
	mcSay(t, bob, room, "renamed")
	for _, c := range []*servertest.Client{alice, bob, carol} {
		mcHear(t, c, room+"/Robert", "renamed")
	}
	mcLeave(t, carol, room, "Carol")
	mcJoin(t, carol, room, "Bob", "")

	// A second session of Alice's under another nick may not take the
	// nick of her first: both stay in the room.
	desk := mcLogin(t, s, "alice@localhost", "desk")
	mcJoin(t, desk, room, "Alice at her desk", "")
	mcSend(t, desk, "<presence to='%s/Alice'/>", room)
	if e := desk.Next(t, mcWait, mcPresence(room+"/Alice", "error")); mcCond(e) != "conflict" {
		t.Fatalf("nick change onto the user's other nick: %s", e)
	}
	mcSay(t, carol, room, "both of you?")
	mcHear(t, alice, room+"/Bob", "both of you?")
	mcHear(t, desk, room+"/Bob", "both of you?")
}

// TestMUCFanout: groupchat messages reach every session of every
// occupant with one stanza id, including two sessions of one user joined
// with the same nick; a second session joining or leaving is not
// announced to the others.
func TestMUCFanout(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	phone, bob, carol := cl[0], cl[1], cl[2]
	desk := mcLogin(t, s, "alice@localhost", "desk")
	room := mcRoom("fanout")
	mcCreate(t, bob, room, "Bob")
	mcJoin(t, carol, room, "Carol", "")
	mcJoin(t, phone, room, "Alice", "")
	for _, c := range []*servertest.Client{bob, carol} {
		c.Next(t, mcWait, mcPresence(room+"/Alice", ""))
	}
	self, got := mcJoin(t, desk, room, "Alice", "")
	if it := mcItem(self); it.AttrValue("jid") != "" && !strings.HasPrefix(it.AttrValue("jid"), "alice@localhost/") {
		t.Fatalf("second session's self-presence: %s", self)
	}
	for _, nick := range []string{"Bob", "Carol"} {
		if len(mcWhere(got, mcPresence(room+"/"+nick, ""))) != 1 {
			t.Fatalf("second session lacks %s's presence: %v", nick, got)
		}
	}
	// The others (and the first session) do not see the second join.
	for _, c := range []*servertest.Client{bob, carol, phone} {
		if p := mcWhere(mcRoomSync(t, c, room), mcPresence(room+"/Alice", "")); len(p) != 0 {
			t.Fatalf("%s saw the second session join: %v", c.JID, p)
		}
	}

	everyone := []*servertest.Client{phone, desk, bob, carol}
	ids := map[string]bool{}
	mcSend(t, bob, "<message to='%s' type='groupchat' id='fan1'><body>to all sessions</body></message>", room)
	for _, c := range everyone {
		m := mcHear(t, c, room+"/Bob", "to all sessions")
		if m.AttrValue("id") != "fan1" {
			t.Fatalf("%s: message id not kept (muc#stable_id): %s", c.JID, m)
		}
		sid := m.Child("stanza-id", mcNSSID)
		if sid == nil || sid.AttrValue("by") != room || sid.AttrValue("id") == "" {
			t.Fatalf("%s: message without the room's stanza id: %s", c.JID, m)
		}
		ids[sid.AttrValue("id")] = true
		if m.AttrValue("to") != c.JID.String() {
			t.Fatalf("%s: message addressed to %s", c.JID, m.AttrValue("to"))
		}
	}
	if len(ids) != 1 {
		t.Fatalf("one message, stanza ids %v", ids)
	}
	// A stanza id in the room's name from a sender is dropped.
	mcSend(t, carol, "<message to='%s' type='groupchat'><body>forged id</body><stanza-id xmlns='%s' by='%s' id='forged'/></message>", room, mcNSSID, room)
	for _, c := range everyone {
		m := mcHear(t, c, room+"/Carol", "forged id")
		if sids := mcWhere(m.Children, servertest.Named("stanza-id")); len(sids) != 1 || sids[0].AttrValue("id") == "forged" {
			t.Fatalf("%s: stanza ids of a message that came with a forged one: %s", c.JID, m)
		}
	}
	// Both sessions speak as Alice.
	mcSay(t, desk, room, "from the desk")
	for _, c := range everyone {
		if m := mcHear(t, c, room+"/Alice", "from the desk"); m.Child("occupant-id", mcNSOccID) == nil {
			t.Fatalf("%s: message without occupant id: %s", c.JID, m)
		}
	}

	// The phone leaves: Alice stays, as the desk.
	mcLeave(t, phone, room, "Alice")
	for _, c := range []*servertest.Client{bob, carol, desk} {
		if p := mcWhere(mcRoomSync(t, c, room), mcPresence(room+"/Alice", "unavailable")); len(p) != 0 {
			t.Fatalf("%s saw Alice leave while a session stays: %v", c.JID, p)
		}
	}
	mcSay(t, carol, room, "after the phone left")
	for _, c := range []*servertest.Client{desk, bob, carol} {
		mcHear(t, c, room+"/Carol", "after the phone left")
	}
	if m := mcWhere(mcSync(t, phone), mcBody("after the phone left")); len(m) != 0 {
		t.Fatalf("a session that left still gets messages: %v", m)
	}
	mcLeave(t, desk, room, "Alice")
	for _, c := range []*servertest.Client{bob, carol} {
		c.Next(t, mcWait, mcPresence(room+"/Alice", "unavailable"))
	}
}

// TestMUCHistory: a joining occupant gets the history, oldest first,
// with delays, before the subject, limited by <history/> (§7.2.15).
func TestMUCHistory(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	room := mcRoom("history")
	mcCreate(t, alice, room, "Alice")
	bodies := []string{"one", "two", "three", "four", "five"}
	ids := map[string]string{} // body → stanza id
	for _, b := range bodies {
		mcSay(t, alice, room, b)
		ids[b] = mcHear(t, alice, room+"/Alice", b).Child("stanza-id", mcNSSID).AttrValue("id")
	}

	// history joins and returns the bodies of the history and their
	// stamps.
	history := func(t *testing.T, inner string) (got, stamps []string) {
		t.Helper()
		_, els := mcJoin(t, bob, room, "Bob", inner)
		for _, e := range els {
			if e.Name != "message" || e.ChildText("body", "") == "" {
				continue
			}
			d := e.Child("delay", mcNSDelay)
			if d == nil || d.AttrValue("from") != room || e.AttrValue("from") != room+"/Alice" || e.AttrValue("type") != "groupchat" {
				t.Fatalf("history message: %s", e)
			}
			if sid := e.Child("stanza-id", mcNSSID); sid == nil || sid.AttrValue("by") != room || sid.AttrValue("id") != ids[e.ChildText("body", "")] {
				t.Fatalf("history message without the stanza id it had live (%s): %s", ids[e.ChildText("body", "")], e)
			}
			got = append(got, e.ChildText("body", ""))
			stamps = append(stamps, d.AttrValue("stamp"))
		}
		mcLeave(t, bob, room, "Bob")
		return got, stamps
	}
	all, stamps := history(t, "")
	if !slices.Equal(all, bodies) {
		t.Fatalf("default history %v, want %v", all, bodies)
	}
	for i := 1; i < len(stamps); i++ {
		if stamps[i] <= stamps[i-1] {
			t.Fatalf("history stamps not increasing: %v", stamps)
		}
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name, inner string
		want        []string
	}{
		{"maxstanzas", "<history maxstanzas='2'/>", bodies[3:]},
		{"maxstanzas zero", "<history maxstanzas='0'/>", nil},
		{"maxchars zero", "<history maxchars='0'/>", nil},
		{"maxchars too small for one", "<history maxchars='10'/>", nil},
		{"maxchars large", "<history maxchars='100000'/>", bodies},
		{"seconds", "<history seconds='3600'/>", bodies},
		{"seconds zero", "<history seconds='0'/>", nil},
		{"since", "<history since='" + stamps[2] + "'/>", bodies[2:]},
		{"since in the future", "<history since='" + future + "'/>", nil},
		{"since and maxstanzas", "<history since='" + stamps[1] + "' maxstanzas='2'/>", bodies[3:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := history(t, tc.inner); !slices.Equal(got, tc.want) {
				t.Fatalf("history with %s: %v, want %v", tc.inner, got, tc.want)
			}
		})
	}
}

// TestMUCJoinErrors: the refusals of §7.2 for a joining user.
func TestMUCJoinErrors(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Hosts[0].RoomCreators = "listed"
		c.Hosts[0].RoomCreatorList = []string{"alice@localhost"}
	}))
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, room string) // run by the owner, Alice, in the room
		nick  string
		inner string
		want  string
	}{
		{"members only", func(t *testing.T, room string) {
			mcOK(t, alice, room, "set", mcForm("muc#roomconfig_membersonly", "1"))
		}, "Bob", "", "registration-required"},
		{"no password", func(t *testing.T, room string) {
			mcOK(t, alice, room, "set", mcForm("muc#roomconfig_passwordprotectedroom", "1", "muc#roomconfig_roomsecret", "pw"))
		}, "Bob", "", "not-authorized"},
		{"wrong password", func(t *testing.T, room string) {
			mcOK(t, alice, room, "set", mcForm("muc#roomconfig_passwordprotectedroom", "1", "muc#roomconfig_roomsecret", "pw"))
		}, "Bob", "<password>nope</password>", "not-authorized"},
		{"banned", func(t *testing.T, room string) {
			mcOK(t, alice, room, "set", mcAdminItem("", "jid", "bob@localhost", "affiliation", "outcast"))
		}, "Bob", "", "forbidden"},
		{"full", func(t *testing.T, room string) {
			mcOK(t, alice, room, "set", mcForm("muc#roomconfig_maxusers", "2"))
			mcJoin(t, carol, room, "Carol", "")
		}, "Bob", "", "service-unavailable"},
		{"nick in use", func(t *testing.T, room string) {}, "Alice", "", "conflict"},
		{"creation refused", nil, "Bob", "", "not-allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := mcRoom("refuse-" + strings.ReplaceAll(tc.name, " ", "-"))
			if tc.setup != nil {
				mcCreate(t, alice, room, "Alice")
				tc.setup(t, room)
			}
			if c := mcJoinFails(t, bob, room, tc.nick, tc.inner); c != tc.want {
				t.Fatalf("join refused with %s, want %s", c, tc.want)
			}
			// The refused user is no occupant.
			mcFail(t, bob, room+"/"+tc.nick, "get", "<ping xmlns='"+mcNSPing+"'/>", "not-acceptable")
		})
	}
	// The owner passes the password check (§7.2.6 applies to others).
	t.Run("owner needs no password", func(t *testing.T) {
		room := mcRoom("owner-pw")
		mcCreate(t, alice, room, "Alice", "muc#roomconfig_passwordprotectedroom", "1", "muc#roomconfig_roomsecret", "pw")
		mcJoin(t, bob, room, "Bob", "<password>pw</password>")
	})
}

// TestMUCCreationACL: Host.RoomCreators decides who may create rooms;
// joining an existing room is not creating it.
func TestMUCCreationACL(t *testing.T) {
	t.Parallel()
	users := []string{"alice@localhost", "bob@localhost", "carol@localhost", "dave@example.org"}
	for _, tc := range []struct {
		policy string
		list   []string
		may    []bool // per user
	}{
		{"everyone", nil, []bool{true, true, true, true}},
		{"local", nil, []bool{true, true, true, false}},
		{"admins", nil, []bool{true, false, false, false}},
		{"listed", []string{"carol@localhost", "group:creators"}, []bool{false, true, true, false}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
				h := &c.Hosts[0]
				h.Admins = []string{"alice@localhost"}
				h.Groups = []config.SharedGroup{{Name: "creators", Members: []string{"bob"}}}
				h.RoomCreators, h.RoomCreatorList = tc.policy, tc.list
				other := config.HostDefaults("example.org")
				c.Hosts = append(c.Hosts, other)
			}))
			var clients []*servertest.Client
			for _, u := range users {
				local, host, _ := strings.Cut(u, "@")
				if err := s.Accounts().Create(t.Context(), host, local, mcPassword); err != nil {
					t.Fatal(err)
				}
				clients = append(clients, mcLogin(t, s, u, "r"))
			}
			for i, c := range clients {
				room := mcRoom(fmt.Sprintf("acl-%d", i))
				if !tc.may[i] {
					if cond := mcJoinFails(t, c, room, "N", ""); cond != "not-allowed" {
						t.Fatalf("%s creating a room under %q: %s, want not-allowed", users[i], tc.policy, cond)
					}
					continue
				}
				self, _ := mcJoin(t, c, room, "N", "")
				if !slices.Contains(mcStatuses(self), "201") {
					t.Fatalf("%s: created room without 201: %s", users[i], self)
				}
				mcOK(t, c, room, "set", mcInstant)
			}
			// Anyone may join a room that exists.
			creator := slices.Index(tc.may, true)
			for i, c := range clients {
				if i != creator {
					mcJoin(t, c, mcRoom(fmt.Sprintf("acl-%d", creator)), fmt.Sprintf("Guest%d", i), "")
				}
			}
		})
	}
}

// TestMUCAffiliationsRoles: owners and admins change affiliations (§9,
// §10) and moderators roles (§8); each change is announced in presence;
// voice in a moderated room, kick (307), ban (301), and removal from a
// members-only room (321).
func TestMUCAffiliationsRoles(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol", "dave", "eve", "frank")
	alice, bob, carol, dave, eve, frank := cl[0], cl[1], cl[2], cl[3], cl[4], cl[5]
	room := mcRoom("roles")
	mcCreate(t, alice, room, "Alice", "muc#roomconfig_moderatedroom", "1")
	for _, o := range []struct {
		c    *servertest.Client
		nick string
	}{{bob, "Bob"}, {carol, "Carol"}, {eve, "Eve"}, {frank, "Frank"}} {
		self, _ := mcJoin(t, o.c, room, o.nick, "")
		if r := mcItem(self).AttrValue("role"); r != "visitor" {
			t.Fatalf("%s joins a moderated room as %s, want visitor", o.nick, r)
		}
	}
	for _, c := range []*servertest.Client{alice, bob, carol, eve, frank} {
		mcRoomSync(t, c, room)
	}
	// changed checks at each of watchers the presence announcing that
	// nick now has aff and role.
	changed := func(t *testing.T, nick, aff, role string, watchers ...*servertest.Client) {
		t.Helper()
		for _, c := range watchers {
			p := c.Next(t, mcWait, mcPresence(room+"/"+nick, ""))
			if it := mcItem(p); it.AttrValue("affiliation") != aff || it.AttrValue("role") != role {
				t.Fatalf("%s: %s's presence after the change: %s, want %s/%s", c.JID, nick, p, aff, role)
			}
		}
	}

	t.Run("affiliations", func(t *testing.T) {
		_, before := mcOK(t, alice, room, "set", mcAdminItem("", "jid", "bob@localhost", "affiliation", "admin"))
		if p := mcWhere(before, mcPresence(room+"/Bob", "")); len(p) != 1 || mcItem(p[0]).AttrValue("affiliation") != "admin" {
			t.Fatalf("owner's view of the admin grant: %v", before)
		}
		changed(t, "Bob", "admin", "moderator", bob, carol, eve, frank)
		mcOK(t, alice, room, "set", mcAdminItem("", "jid", "carol@localhost", "affiliation", "member"))
		changed(t, "Carol", "member", "participant", bob, carol, eve, frank)
		mcOK(t, alice, room, "set", mcAdminItem("", "jid", "dave@localhost", "affiliation", "owner"))

		if got := mcAffiliations(t, alice, room, "owner"); !slices.Equal(got, []string{"alice@localhost", "dave@localhost"}) {
			t.Fatalf("owners %v", got)
		}
		// An owner need not be in the room to act as one.
		if got := mcAffiliations(t, dave, room, "admin"); !slices.Equal(got, []string{"bob@localhost"}) {
			t.Fatalf("admins as seen by an absent owner %v", got)
		}
		if got := mcAffiliations(t, alice, room, "admin"); !slices.Equal(got, []string{"bob@localhost"}) {
			t.Fatalf("admins %v", got)
		}
		if got := mcAffiliations(t, bob, room, "member"); !slices.Equal(got, []string{"carol@localhost"}) {
			t.Fatalf("members as seen by an admin %v", got)
		}
		mcFail(t, carol, room, "get", mcAdminItem("", "affiliation", "admin"), "forbidden")
		// Admins manage members, not owners or admins.
		mcFail(t, bob, room, "set", mcAdminItem("", "jid", "carol@localhost", "affiliation", "owner"), "forbidden")
		mcFail(t, bob, room, "set", mcAdminItem("", "jid", "alice@localhost", "affiliation", "none"), "forbidden")
		mcFail(t, carol, room, "set", mcAdminItem("", "jid", "eve@localhost", "affiliation", "member"), "forbidden")
		// A room keeps an owner.
		mcOK(t, alice, room, "set", mcAdminItem("", "jid", "dave@localhost", "affiliation", "none"))
		mcFail(t, alice, room, "set", mcAdminItem("", "jid", "alice@localhost", "affiliation", "admin"), "conflict")
		if got := mcAffiliations(t, alice, room, "owner"); !slices.Equal(got, []string{"alice@localhost"}) {
			t.Fatalf("owners %v", got)
		}
	})

	t.Run("voice", func(t *testing.T) {
		if c := mcSayFails(t, eve, room, "may I?"); c != "forbidden" {
			t.Fatalf("visitor's message: %s, want forbidden", c)
		}
		// Participants do not moderate.
		mcFail(t, carol, room, "set", mcAdminItem("", "nick", "Eve", "role", "participant"), "forbidden")
		mcOK(t, bob, room, "set", mcAdminItem("", "nick", "Eve", "role", "participant"))
		changed(t, "Eve", "none", "participant", alice, carol, eve, frank)
		mcSay(t, eve, room, "now I may")
		for _, c := range []*servertest.Client{alice, bob, carol, eve, frank} {
			mcHear(t, c, room+"/Eve", "now I may")
		}
		res, _ := mcOK(t, bob, room, "get", mcAdminItem("", "role", "participant"))
		var nicks []string
		for _, it := range res.Child("query", mcNSAdmin).Children {
			nicks = append(nicks, it.AttrValue("nick"))
		}
		sort.Strings(nicks)
		if !slices.Equal(nicks, []string{"Carol", "Eve"}) {
			t.Fatalf("participants %v", nicks)
		}
		mcOK(t, bob, room, "set", mcAdminItem("", "nick", "Eve", "role", "visitor"))
		changed(t, "Eve", "none", "visitor", alice, carol, eve, frank)
		if c := mcSayFails(t, eve, room, "and now?"); c != "forbidden" {
			t.Fatalf("silenced visitor's message: %s, want forbidden", c)
		}
	})

	t.Run("kick", func(t *testing.T) {
		mcFail(t, carol, room, "set", mcAdminItem("", "nick", "Eve", "role", "none"), "forbidden")
		mcFail(t, bob, room, "set", mcAdminItem("", "nick", "Alice", "role", "none"), "not-allowed")
		mcOK(t, bob, room, "set", mcAdminItem("Spam", "nick", "Eve", "role", "none"))
		for _, c := range []*servertest.Client{alice, carol, eve, frank} {
			p := c.Next(t, mcWait, mcPresence(room+"/Eve", "unavailable"))
			st := mcStatuses(p)
			if !slices.Contains(st, "307") || slices.Contains(st, "110") != (c == eve) {
				t.Fatalf("%s: kick announcement: %s", c.JID, p)
			}
			if it := mcItem(p); it.AttrValue("role") != "none" || it.ChildText("reason", mcNSUser) != "Spam" {
				t.Fatalf("%s: kick announcement's item (role none, reason inside, §8.2): %s", c.JID, p)
			}
		}
		mcFail(t, eve, room+"/Eve", "get", "<ping xmlns='"+mcNSPing+"'/>", "not-acceptable")
		// A kicked user may come back.
		mcJoin(t, eve, room, "Eve", "")
		for _, c := range []*servertest.Client{alice, bob, carol, frank} {
			c.Next(t, mcWait, mcPresence(room+"/Eve", ""))
		}
	})

	t.Run("ban", func(t *testing.T) {
		mcFail(t, carol, room, "set", mcAdminItem("", "jid", "frank@localhost", "affiliation", "outcast"), "forbidden")
		mcOK(t, bob, room, "set", mcAdminItem("Trolling", "jid", "frank@localhost", "affiliation", "outcast"))
		for _, c := range []*servertest.Client{alice, carol, eve, frank} {
			p := c.Next(t, mcWait, mcPresence(room+"/Frank", "unavailable"))
			st := mcStatuses(p)
			it := mcItem(p)
			if !slices.Contains(st, "301") || slices.Contains(st, "110") != (c == frank) ||
				it.AttrValue("affiliation") != "outcast" || it.ChildText("reason", mcNSUser) != "Trolling" {
				t.Fatalf("%s: ban announcement: %s", c.JID, p)
			}
		}
		if c := mcJoinFails(t, frank, room, "Frank", ""); c != "forbidden" {
			t.Fatalf("banned user rejoins: %s", c)
		}
		if got := mcAffiliations(t, bob, room, "outcast"); !slices.Equal(got, []string{"frank@localhost"}) {
			t.Fatalf("outcasts %v", got)
		}
	})

	t.Run("membership removed", func(t *testing.T) {
		mcOK(t, alice, room, "set", mcAdminItem("", "jid", "eve@localhost", "affiliation", "member"))
		changed(t, "Eve", "member", "participant", bob, carol, eve)
		_, before := mcOK(t, alice, room, "set", mcForm("muc#roomconfig_membersonly", "1"))
		if p := mcWhere(before, func(e *wire.Element) bool { return e.Name == "presence" && e.AttrValue("type") == "unavailable" }); len(p) != 0 {
			t.Fatalf("members-only removed members: %v", p)
		}
		mcOK(t, alice, room, "set", mcAdminItem("Reorganisation", "jid", "carol@localhost", "affiliation", "none"))
		for _, c := range []*servertest.Client{bob, carol, eve} {
			p := c.Next(t, mcWait, mcPresence(room+"/Carol", "unavailable"))
			if st := mcStatuses(p); !slices.Contains(st, "321") || slices.Contains(st, "110") != (c == carol) {
				t.Fatalf("%s: removal announcement: %s", c.JID, p)
			}
		}
		if c := mcJoinFails(t, carol, room, "Carol", ""); c != "registration-required" {
			t.Fatalf("former member rejoins: %s", c)
		}
	})
}

// TestMUCAccessList: a private room's access list (switchboard#access)
// grants membership to users, groups and domains; a change that removes
// an occupant's access removes the occupant at once (322).
func TestMUCAccessList(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Hosts[0].Groups = []config.SharedGroup{{Name: "devs", Members: []string{"gina"}}}
		c.Hosts = append(c.Hosts, config.HostDefaults("example.org"))
	}))
	cl := mcUsers(t, s, "alice", "bob", "carol", "gina")
	alice, bob, carol, gina := cl[0], cl[1], cl[2], cl[3]
	if err := s.Accounts().Create(t.Context(), "example.org", "dave", mcPassword); err != nil {
		t.Fatal(err)
	}
	dave := mcLogin(t, s, "dave@example.org", "r")
	room := mcRoom("private")
	mcCreate(t, alice, room, "Alice", "muc#roomconfig_membersonly", "1",
		"switchboard#access", "bob@localhost", "switchboard#access", "group:devs", "switchboard#access", "domain:example.org")
	if got := mcConfig(t, alice, room)["switchboard#access"]; !slices.Equal(got, []string{"bob@localhost", "group:devs", "domain:example.org"}) {
		t.Fatalf("access list reads back as %v", got)
	}
	if c := mcJoinFails(t, carol, room, "Carol", ""); c != "registration-required" {
		t.Fatalf("user outside the access list: %s", c)
	}
	for _, o := range []struct {
		c    *servertest.Client
		nick string
	}{{bob, "Bob"}, {gina, "Gina"}, {dave, "Dave"}} {
		self, _ := mcJoin(t, o.c, room, o.nick, "")
		if it := mcItem(self); it.AttrValue("affiliation") != "member" {
			t.Fatalf("%s's affiliation through the access list: %s", o.nick, self)
		}
	}
	mcRoomSync(t, alice, room)
	mcRoomSync(t, gina, room)

	_, before := mcOK(t, alice, room, "set", mcForm("switchboard#access", "group:devs"))
	for _, nick := range []string{"Bob", "Dave"} {
		if p := mcWhere(before, mcPresence(room+"/"+nick, "unavailable")); len(p) != 1 || !slices.Contains(mcStatuses(p[0]), "322") {
			t.Fatalf("owner's view of %s's removal: %v", nick, before)
		}
	}
	for _, o := range []struct {
		c    *servertest.Client
		nick string
	}{{bob, "Bob"}, {dave, "Dave"}} {
		p := o.c.Next(t, mcWait, mcPresence(room+"/"+o.nick, "unavailable"))
		if st := mcStatuses(p); !slices.Contains(st, "322") || !slices.Contains(st, "110") {
			t.Fatalf("%s's removal: %s", o.nick, p)
		}
		if c := mcJoinFails(t, o.c, room, o.nick, ""); c != "registration-required" {
			t.Fatalf("%s rejoins after the change: %s", o.nick, c)
		}
	}
	got := mcRoomSync(t, gina, room)
	if len(mcWhere(got, mcPresence(room+"/Bob", "unavailable"))) != 1 || len(mcWhere(got, mcPresence(room+"/Dave", "unavailable"))) != 1 ||
		len(mcWhere(got, mcPresence(room+"/Gina", "unavailable"))) != 0 {
		t.Fatalf("remaining member's view of the change: %v", got)
	}
}

// TestMUCInvite: a mediated invitation (§7.8.2) reaches the invitee from
// the room with the inviter, the reason, the password and a body; in a
// members-only room an admin's invitation grants membership.
func TestMUCInvite(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	// The invitation goes to Carol's bare JID: she is available.
	mcSend(t, carol, "<presence/>")
	mcSync(t, carol)
	room := mcRoom("invite")
	mcCreate(t, alice, room, "Alice", "muc#roomconfig_membersonly", "1",
		"muc#roomconfig_passwordprotectedroom", "1", "muc#roomconfig_roomsecret", "pw")
	// Not an occupant: no invitations.
	mcSend(t, bob, "<message to='%s' id='inv0'><x xmlns='%s'><invite to='carol@localhost'/></x></message>", room, mcNSUser)
	if e := bob.Next(t, mcWait, servertest.Named("message", "id", "inv0")); e.AttrValue("type") != "error" {
		t.Fatalf("invitation by a non-occupant: %s", e)
	}

	mcSend(t, alice, "<message to='%s'><x xmlns='%s'><invite to='carol@localhost'><reason>Join us</reason></invite></x></message>", room, mcNSUser)
	m := carol.Next(t, mcWait, func(e *wire.Element) bool {
		return e.Name == "message" && e.AttrValue("from") == room && e.Child("x", mcNSUser) != nil
	})
	x := m.Child("x", mcNSUser)
	inv := x.Child("invite", mcNSUser)
	if inv == nil || inv.AttrValue("from") != "alice@localhost" || inv.ChildText("reason", mcNSUser) != "Join us" {
		t.Fatalf("invitation: %s", m)
	}
	if x.ChildText("password", mcNSUser) != "pw" || m.ChildText("body", "") == "" {
		t.Fatalf("invitation without password or body: %s", m)
	}
	self, _ := mcJoin(t, carol, room, "Carol", "<password>pw</password>")
	if it := mcItem(self); it.AttrValue("affiliation") != "member" {
		t.Fatalf("invited user's affiliation: %s", self)
	}
}

// TestMUCPrivateMessages: occupants message each other through their
// occupant JIDs (§7.5), unless the room allows it to moderators only.
func TestMUCPrivateMessages(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room := mcRoom("pm")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")

	// The client marks it as a MUC PM (§7.5) and tries to pass a stanza
	// id off as the room's.
	mcSend(t, bob, "<message to='%s/Alice' type='chat' id='pm1'><body>psst</body><x xmlns='%s'/><stanza-id xmlns='%s' by='%s' id='forged'/></message>",
		room, mcNSUser, mcNSSID, room)
	m := alice.Next(t, mcWait, mcBody("psst"))
	if m.AttrValue("from") != room+"/Bob" || m.AttrValue("type") != "chat" || m.AttrValue("id") != "pm1" ||
		len(mcWhere(m.Children, servertest.Named("x"))) != 1 || m.Child("x", mcNSUser) == nil || m.AttrValue("to") != alice.JID.String() {
		t.Fatalf("private message: %s", m)
	}
	// The room's address written otherwise names the room as well, for a
	// client that compares it as a JID (RFC 7622 §3.2).
	mcSend(t, bob, "<message to='%s/Alice' type='chat' id='pm1b'><body>psst again</body><stanza-id xmlns='%s' by='%s.' id='forged'/></message>",
		room, mcNSSID, strings.ToUpper(room))
	m2 := alice.Next(t, mcWait, mcBody("psst again"))
	for _, m := range []*wire.Element{m, m2} {
		for _, sid := range mcWhere(m.Children, servertest.Named("stanza-id")) {
			if xmpp.IsStanzaIDBy(sid, jid.MustParse(room), room) {
				t.Fatalf("private message with the sender's stanza id in the room's name: %s", m)
			}
		}
	}
	mcSend(t, alice, "<message to='%s/Bob' type='chat'><body>yes?</body></message>", room)
	if m := bob.Next(t, mcWait, mcBody("yes?")); m.AttrValue("from") != room+"/Alice" {
		t.Fatalf("answer: %s", m)
	}
	// Nobody else gets them.
	mcJoin(t, carol, room, "Carol", "")
	if got := mcWhere(mcRoomSync(t, carol, room), func(e *wire.Element) bool { return e.ChildText("body", "") != "" }); len(got) != 0 {
		t.Fatalf("third occupant got %v", got)
	}

	for _, tc := range []struct {
		name string
		from *servertest.Client
		to   string
		want string
	}{
		{"no such occupant", bob, room + "/Nobody", "item-not-found"},
		{"not an occupant", alice, mcRoom("elsewhere") + "/Bob", "not-acceptable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := mcID("pm")
			mcSend(t, tc.from, "<message to='%s' type='chat' id='%s'><body>hello?</body></message>", tc.to, id)
			if e := tc.from.Next(t, mcWait, servertest.Named("message", "id", id)); mcCond(e) != tc.want {
				t.Fatalf("private message to %s: %s, want %s", tc.to, e, tc.want)
			}
		})
	}

	t.Run("moderators only", func(t *testing.T) {
		mcOK(t, alice, room, "set", mcForm("muc#roomconfig_allowpm", "moderators"))
		mcSend(t, bob, "<message to='%s/Carol' type='chat' id='pm2'><body>blocked</body></message>", room)
		if e := bob.Next(t, mcWait, servertest.Named("message", "id", "pm2")); mcCond(e) != "not-allowed" {
			t.Fatalf("participant's private message: %s", e)
		}
		mcSend(t, alice, "<message to='%s/Carol' type='chat'><body>from the moderator</body></message>", room)
		carol.Next(t, mcWait, mcBody("from the moderator"))
	})
}

// TestMUCSubject: moderators change the subject (§8.1), participants
// only if the room allows it; joiners get the current subject last.
func TestMUCSubject(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room := mcRoom("subject")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")

	mcSend(t, alice, "<message to='%s' type='groupchat'><subject>Release 2.0</subject></message>", room)
	for _, c := range []*servertest.Client{alice, bob} {
		m := c.Next(t, mcWait, mcSubject(room))
		if m.ChildText("subject", "") != "Release 2.0" || m.AttrValue("from") != room+"/Alice" {
			t.Fatalf("%s: subject change: %s", c.JID, m)
		}
	}
	id := mcID("subj")
	mcSend(t, bob, "<message to='%s' type='groupchat' id='%s'><subject>Mine now</subject></message>", room, id)
	if e := bob.Next(t, mcWait, servertest.Named("message", "id", id, "type", "error")); mcCond(e) != "forbidden" {
		t.Fatalf("participant's subject change: %s", e)
	}
	_, got := mcJoin(t, carol, room, "Carol", "")
	if m := got[len(got)-1]; m.ChildText("subject", "") != "Release 2.0" || m.AttrValue("from") != room+"/Alice" {
		t.Fatalf("joiner's subject: %s", m)
	}

	mcOK(t, alice, room, "set", mcForm("muc#roomconfig_changesubject", "1"))
	mcSend(t, bob, "<message to='%s' type='groupchat'><subject>Release 2.1</subject></message>", room)
	for _, c := range []*servertest.Client{alice, bob, carol} {
		if m := c.Next(t, mcWait, mcSubject(room)); m.ChildText("subject", "") != "Release 2.1" || m.AttrValue("from") != room+"/Bob" {
			t.Fatalf("%s: participant's subject change: %s", c.JID, m)
		}
	}
	info, _ := mcOK(t, carol, room, "get", "<query xmlns='"+mcNSInfo+"'/>")
	x := info.Child("query", mcNSInfo).Child("x", mcNSData)
	if v := mcFormValues(x); len(v["muc#roominfo_subject"]) != 1 || v["muc#roominfo_subject"][0] != "Release 2.1" || v["FORM_TYPE"][0] != mcNSRoomInfo {
		t.Fatalf("room info: %s", info)
	}
	// The subject changes are not history: a joiner's history holds no
	// subject before the current one.
	mcLeave(t, carol, room, "Carol")
	_, got = mcJoin(t, carol, room, "Carol", "")
	if subj := mcWhere(got, func(e *wire.Element) bool { return e.Child("subject", "") != nil }); len(subj) != 1 {
		t.Fatalf("joiner got %d subject messages: %v", len(subj), subj)
	}
}

// TestMUCPersistence: a persistent room keeps its configuration,
// affiliations, subject and history across a restart of the server.
func TestMUCPersistence(t *testing.T) {
	t.Parallel()
	cfg := servertest.Config(t.TempDir())
	s := servertest.StartConfig(t, cfg)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice := cl[0]
	room := mcRoom("kept")
	mcCreate(t, alice, room, "Alice", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_roomname", "Kept room",
		"muc#roomconfig_membersonly", "1", "muc#roomconfig_whois", "anyone", "muc#roomconfig_roomdesc", "Survives restarts")
	mcOK(t, alice, room, "set", mcAdminItem("", "jid", "bob@localhost", "affiliation", "member"))
	mcOK(t, alice, room, "set", mcAdminItem("", "jid", "carol@localhost", "affiliation", "admin"))
	mcSend(t, alice, "<message to='%s' type='groupchat'><subject>Before the restart</subject></message>", room)
	alice.Next(t, mcWait, mcSubject(room))
	var ids []string
	bodies := []string{"first", "second", "third"}
	for _, b := range bodies {
		mcSay(t, alice, room, b)
		ids = append(ids, mcHear(t, alice, room+"/Alice", b).Child("stanza-id", mcNSSID).AttrValue("id"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	s = servertest.StartConfig(t, cfg)
	alice = mcLogin(t, s, "alice@localhost", "again")
	bob := mcLogin(t, s, "bob@localhost", "again")
	form := mcConfig(t, alice, room)
	for f, want := range map[string]string{
		"muc#roomconfig_persistentroom": "1", "muc#roomconfig_roomname": "Kept room", "muc#roomconfig_membersonly": "1",
		"muc#roomconfig_whois": "anyone", "muc#roomconfig_roomdesc": "Survives restarts",
	} {
		if v := form[f]; len(v) != 1 || v[0] != want {
			t.Errorf("after the restart %s = %v, want %s", f, v, want)
		}
	}
	for aff, want := range map[string][]string{"owner": {"alice@localhost"}, "admin": {"carol@localhost"}, "member": {"bob@localhost"}} {
		if got := mcAffiliations(t, alice, room, aff); !slices.Equal(got, want) {
			t.Errorf("after the restart %s list %v, want %v", aff, got, want)
		}
	}
	items, _ := mcOK(t, bob, mcService, "get", "<query xmlns='"+mcNSItems+"'/>")
	if !slices.Contains(mcItems(items), room) {
		t.Errorf("persistent room not listed after the restart: %s", items)
	}
	self, got := mcJoin(t, bob, room, "Bob", "")
	if st := mcStatuses(self); slices.Contains(st, "201") || !slices.Contains(st, "100") {
		t.Errorf("self-presence after the restart: %s", self)
	}
	var history []string
	for _, e := range mcWhere(got, func(e *wire.Element) bool { return e.ChildText("body", "") != "" }) {
		history = append(history, e.ChildText("body", ""))
	}
	if !slices.Equal(history, bodies) {
		t.Errorf("history after the restart %v, want %v", history, bodies)
	}
	if subj := got[len(got)-1]; subj.ChildText("subject", "") != "Before the restart" || subj.AttrValue("from") != room+"/Alice" {
		t.Errorf("subject after the restart: %s", subj)
	}
	// New messages get new stanza ids.
	mcSay(t, bob, room, "fourth")
	id := mcHear(t, bob, room+"/Bob", "fourth").Child("stanza-id", mcNSSID).AttrValue("id")
	if id == "" || slices.Contains(ids, id) {
		t.Errorf("stanza id %q after the restart, earlier %v", id, ids)
	}
}

// TestMUCCompanyRoom: the company room is persistent and members-only,
// and its members are the host's users, those created later included;
// users of another host are refused.
func TestMUCCompanyRoom(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Hosts[0].CompanyRoom = "company"
		c.Hosts = append(c.Hosts, config.HostDefaults("example.org"))
	}))
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	if err := s.Accounts().Create(t.Context(), "example.org", "dave", mcPassword); err != nil {
		t.Fatal(err)
	}
	dave := mcLogin(t, s, "dave@example.org", "r")
	room := mcRoom("company")

	items, _ := mcOK(t, alice, mcService, "get", "<query xmlns='"+mcNSItems+"'/>")
	if !slices.Contains(mcItems(items), room) {
		t.Fatalf("company room not listed: %s", items)
	}
	info, _ := mcOK(t, alice, room, "get", "<query xmlns='"+mcNSInfo+"'/>")
	if f := mcFeatures(info); !slices.Contains(f, "muc_membersonly") || !slices.Contains(f, "muc_persistent") {
		t.Fatalf("company room features %v", f)
	}
	for _, o := range []struct {
		c    *servertest.Client
		nick string
	}{{alice, "Alice"}, {bob, "Bob"}} {
		self, _ := mcJoin(t, o.c, room, o.nick, "")
		if st, it := mcStatuses(self), mcItem(self); slices.Contains(st, "201") || it.AttrValue("affiliation") != "member" {
			t.Fatalf("%s in the company room: %s", o.nick, self)
		}
	}
	// A user created while the server runs is a member at once.
	newbie := mcUsers(t, s, "newbie")[0]
	mcJoin(t, newbie, room, "Newbie", "")
	mcSay(t, newbie, room, "hello company")
	for _, c := range []*servertest.Client{alice, bob, newbie} {
		mcHear(t, c, room+"/Newbie", "hello company")
	}
	if c := mcJoinFails(t, dave, room, "Dave", ""); c != "registration-required" {
		t.Fatalf("user of another host joins the company room: %s", c)
	}
	// Nor does he read its archive.
	mcFail(t, dave, room, "set", "<query xmlns='"+mcNSMAM+"'/>", "forbidden")
	if _, before := mcOK(t, bob, room, "set", "<query xmlns='"+mcNSMAM+"'/>"); len(mcWhere(before, func(e *wire.Element) bool {
		return e.Child("result", mcNSMAM) != nil
	})) != 1 {
		t.Fatalf("member's archive query: %v", before)
	}
}

// TestMUCIssueChats: joining an issue key on issues.<domain> creates a
// persistent, non-anonymous room whose messages are archived; the admin
// export of its history has the author, the body and the stanza id the
// occupants saw.
func TestMUCIssueChats(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "admin.sock")
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Listen.AdminSocket = sock
		c.Hosts = append(c.Hosts, config.HostDefaults("example.org"))
	}))
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	if err := s.Accounts().Create(t.Context(), "example.org", "dave", mcPassword); err != nil {
		t.Fatal(err)
	}
	dave := mcLogin(t, s, "dave@example.org", "r")
	// Room JIDs are normalised: the localpart is case-folded.
	room := "test-123@" + mcIssues

	mcSend(t, alice, "<presence to='TEST-123@%s/Alice'><x xmlns='%s'/></presence>", mcIssues, mcNS)
	self := alice.Next(t, mcWait, func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("from") == room+"/Alice"
	})
	if e := self.AttrValue("type"); e != "" {
		t.Fatalf("joining an issue chat: %s", self)
	}
	if st := mcStatuses(self); !slices.Contains(st, "201") || !slices.Contains(st, "110") || !slices.Contains(st, "100") {
		t.Fatalf("issue chat creator's self-presence: %s", self)
	}
	alice.Next(t, mcWait, mcSubject(room))
	info, _ := mcOK(t, alice, room, "get", "<query xmlns='"+mcNSInfo+"'/>")
	if f := mcFeatures(info); !slices.Contains(f, "muc_persistent") || !slices.Contains(f, "muc_nonanonymous") {
		t.Fatalf("issue chat features %v", f)
	}
	mcJoin(t, bob, room, "Bob", "")
	// Only the host's users open issue chats.
	if c := mcJoinFails(t, dave, "test-999@"+mcIssues, "Dave", ""); c != "not-allowed" {
		t.Fatalf("user of another host opens an issue chat: %s", c)
	}

	type comment struct{ by, nick, author, body, id string }
	comments := []comment{
		{nick: "Alice", author: "alice@localhost", body: "Reproduced on 2.1"},
		{nick: "Bob", author: "bob@localhost", body: "Fixed in build 42, \"quoted\" & <escaped>"},
	}
	for i, c := range comments {
		sender := alice
		if c.nick == "Bob" {
			sender = bob
		}
		body := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(c.body)
		mcSend(t, sender, "<message to='%s' type='groupchat'><body>%s</body></message>", room, body)
		m := mcHear(t, sender, room+"/"+c.nick, c.body)
		comments[i].id = m.Child("stanza-id", mcNSSID).AttrValue("id")
	}

	resp, err := server.AdminCall(t.Context(), sock, server.AdminRequest{Command: server.CmdHistoryExport,
		Args: map[string]string{"archive": room, "format": "jsonl", "actor": "test"}})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if len(resp.Result) != len(comments) {
		t.Fatalf("export of %d lines, want %d: %v", len(resp.Result), len(comments), resp.Result)
	}
	for i, line := range resp.Result {
		var r struct{ ID, Time, From, With, Body string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		c := comments[i]
		if r.Body != c.body || r.With != c.author || r.From != room+"/"+c.nick || r.ID != c.id || r.Time == "" {
			t.Errorf("export line %d: %+v, want author %s body %q stanza id %s", i, r, c.author, c.body, c.id)
		}
	}
}

// TestMUCArchive: a MAM query to the room returns its messages with the
// stanza ids the occupants got (XEP-0313 §5); a hidden room's archive is
// for occupants and members only.
func TestMUCArchive(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob", "carol")
	alice, bob, carol := cl[0], cl[1], cl[2]
	room := mcRoom("archive")
	mcCreate(t, alice, room, "Alice")
	mcJoin(t, bob, room, "Bob", "")
	type msg struct{ nick, body, id string }
	var sent []msg
	for i := range 4 {
		sender, other, nick := alice, bob, "Alice"
		if i%2 == 1 {
			sender, other, nick = bob, alice, "Bob"
		}
		body := fmt.Sprintf("archived %d", i)
		mcSay(t, sender, room, body)
		m := mcHear(t, sender, room+"/"+nick, body)
		sent = append(sent, msg{nick, body, m.Child("stanza-id", mcNSSID).AttrValue("id")})
		if o := mcHear(t, other, room+"/"+nick, body); o.Child("stanza-id", mcNSSID).AttrValue("id") != sent[i].id {
			t.Fatalf("occupants got different stanza ids: %s", o)
		}
	}

	query := func(t *testing.T, c *servertest.Client) []msg {
		t.Helper()
		qid := mcID("q")
		res, before := mcOK(t, c, room, "set", "<query xmlns='"+mcNSMAM+"' queryid='"+qid+"'/>")
		if fin := res.Child("fin", mcNSMAM); fin == nil || fin.AttrValue("complete") != "true" {
			t.Fatalf("MAM answer: %s", res)
		}
		var got []msg
		for _, e := range before {
			r := e.Child("result", mcNSMAM)
			if e.Name != "message" || r == nil {
				continue
			}
			if e.AttrValue("from") != room || r.AttrValue("queryid") != qid {
				t.Fatalf("MAM result: %s", e)
			}
			f := r.Child("forwarded", mcNSForward)
			m := f.Child("message", "")
			if f.Child("delay", mcNSDelay) == nil || m == nil {
				t.Fatalf("MAM result without delay or message: %s", e)
			}
			from := m.AttrValue("from")
			got = append(got, msg{strings.TrimPrefix(from, room+"/"), m.ChildText("body", ""), r.AttrValue("id")})
		}
		return got
	}
	if got := query(t, bob); !slices.Equal(got, sent) {
		t.Fatalf("room archive %v, want %v", got, sent)
	}
	// Public room: a non-occupant may read it too.
	if got := query(t, carol); !slices.Equal(got, sent) {
		t.Fatalf("room archive for a visitor %v, want %v", got, sent)
	}
	// Only those who may join without more ado read the archive from
	// outside the room.
	for _, tc := range []struct {
		name   string
		fields []string
	}{
		{"hidden", []string{"muc#roomconfig_publicroom", "0"}},
		{"members only", []string{"muc#roomconfig_membersonly", "1"}},
		{"password", []string{"muc#roomconfig_passwordprotectedroom", "1", "muc#roomconfig_roomsecret", "pw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mcRoom("archive-" + strings.ReplaceAll(tc.name, " ", "-"))
			mcCreate(t, alice, r, "Alice", tc.fields...)
			mcSay(t, alice, r, "not for outsiders")
			mcHear(t, alice, r+"/Alice", "not for outsiders")
			mcFail(t, carol, r, "set", "<query xmlns='"+mcNSMAM+"'/>", "forbidden")
			mcOK(t, alice, r, "set", "<query xmlns='"+mcNSMAM+"'/>")
		})
	}
}

// TestMUCDisco: the service, its public rooms, a room's features and
// muc#roominfo form, and the host's list of services (XEP-0030, §6).
func TestMUCDisco(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "bob")
	alice, bob := cl[0], cl[1]
	mcCreate(t, alice, mcRoom("listed"), "Alice", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_roomname", "Listed")
	mcCreate(t, alice, mcRoom("temporary"), "Alice")
	mcCreate(t, alice, mcRoom("hidden"), "Alice", "muc#roomconfig_publicroom", "0")
	mcCreate(t, alice, mcRoom("hiddenkept"), "Alice", "muc#roomconfig_publicroom", "0", "muc#roomconfig_persistentroom", "1")
	mcJoin(t, bob, mcRoom("listed"), "Bob", "")

	host, _ := mcOK(t, bob, "localhost", "get", "<query xmlns='"+mcNSItems+"'/>")
	if got := mcItems(host); !slices.Contains(got, mcService) || !slices.Contains(got, mcIssues) {
		t.Fatalf("host items %v", got)
	}
	svc, _ := mcOK(t, bob, mcService, "get", "<query xmlns='"+mcNSInfo+"'/>")
	id := svc.Child("query", mcNSInfo).Child("identity", mcNSInfo)
	if id == nil || id.AttrValue("category") != "conference" || !slices.Contains(mcFeatures(svc), mcNS) {
		t.Fatalf("service info: %s", svc)
	}
	items, _ := mcOK(t, bob, mcService, "get", "<query xmlns='"+mcNSItems+"'/>")
	if got := mcItems(items); !slices.Equal(got, []string{mcRoom("listed"), mcRoom("temporary")}) {
		t.Fatalf("public rooms %v", got)
	}
	for _, it := range items.Child("query", mcNSItems).Children {
		if it.AttrValue("jid") == mcRoom("listed") && it.AttrValue("name") != "Listed" {
			t.Errorf("room item: %s", it)
		}
	}

	info, _ := mcOK(t, bob, mcRoom("listed"), "get", "<query xmlns='"+mcNSInfo+"'/>")
	feats := mcFeatures(info)
	for _, f := range []string{mcNS, mcNS + "#stable_id", "muc_public", "muc_persistent", "muc_open", "muc_unmoderated", "muc_unsecured", "muc_semianonymous"} {
		if !slices.Contains(feats, f) {
			t.Errorf("room features lack %s: %v", f, feats)
		}
	}
	v := mcFormValues(info.Child("query", mcNSInfo).Child("x", mcNSData))
	if len(v["FORM_TYPE"]) != 1 || v["FORM_TYPE"][0] != mcNSRoomInfo || len(v["muc#roominfo_occupants"]) != 1 || v["muc#roominfo_occupants"][0] != "2" {
		t.Fatalf("muc#roominfo form %v", v)
	}
	info, _ = mcOK(t, bob, mcRoom("hidden"), "get", "<query xmlns='"+mcNSInfo+"'/>")
	if f := mcFeatures(info); !slices.Contains(f, "muc_hidden") || !slices.Contains(f, "muc_temporary") {
		t.Fatalf("hidden room features %v", f)
	}
}

// TestMUCRoomReuse: a room that ended (a temporary room whose last
// occupant left, a destroyed room) takes its history with it: whoever
// creates a room of the same name later does not read the old one.
func TestMUCRoomReuse(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	cl := mcUsers(t, s, "alice", "carol")
	alice, carol := cl[0], cl[1]
	for _, tc := range []struct {
		name       string
		persistent string
		end        func(t *testing.T, room string)
	}{
		{"temporary room emptied", "0", func(t *testing.T, room string) { mcLeave(t, alice, room, "Alice") }},
		{"persistent room destroyed", "1", func(t *testing.T, room string) {
			mcOK(t, alice, room, "set", "<query xmlns='"+mcNSOwner+"'><destroy/></query>")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := mcRoom("reuse-" + strings.ReplaceAll(tc.name, " ", "-"))
			mcCreate(t, alice, room, "Alice", "muc#roomconfig_persistentroom", tc.persistent)
			mcSay(t, alice, room, "secret plans")
			mcHear(t, alice, room+"/Alice", "secret plans")
			tc.end(t, room)
			self, got := mcJoin(t, carol, room, "Carol", "")
			if !slices.Contains(mcStatuses(self), "201") {
				t.Fatalf("room not created anew: %s", self)
			}
			if h := mcWhere(got, mcBody("secret plans")); len(h) != 0 {
				t.Fatalf("new room's history holds the old room's messages: %v", h)
			}
			res, before := mcOK(t, carol, room, "set", "<query xmlns='"+mcNSMAM+"'/>")
			if h := mcWhere(before, func(e *wire.Element) bool { return e.Child("result", mcNSMAM) != nil }); len(h) != 0 {
				t.Fatalf("new room's archive holds the old room's messages: %v %s", h, res)
			}
		})
	}
}

// mcForwardPing has from (occupant fromNick) ping occupant toNick through
// the room; to answers; the answer must reach from with its own id, from
// room/toNick, and neither side may see the other's real JID.
func mcForwardPing(t testing.TB, from, to *servertest.Client, room, fromNick, toNick string) {
	t.Helper()
	id := mcID("fwd")
	mcSend(t, from, "<iq type='get' id='%s' to='%s/%s'><ping xmlns='%s'/></iq>", id, room, toNick, mcNSPing)
	fwd := to.Next(t, mcWait, func(e *wire.Element) bool {
		return e.Name == "iq" && e.AttrValue("type") == "get" && e.AttrValue("from") == room+"/"+fromNick
	})
	if fwd.AttrValue("id") == id || strings.Contains(fwd.String(), from.JID.Bare().String()) {
		t.Fatalf("forwarded IQ keeps the sender's id or shows its JID: %s", fwd)
	}
	mcSend(t, to, "<iq type='result' id='%s' to='%s/%s'/>", fwd.AttrValue("id"), room, fromNick)
	ans := from.Next(t, mcWait, func(e *wire.Element) bool { return e.Name == "iq" && e.AttrValue("id") == id })
	if ans.AttrValue("type") != "result" || ans.AttrValue("from") != room+"/"+toNick || strings.Contains(ans.String(), to.JID.Bare().String()) {
		t.Fatalf("answer to a forwarded IQ: %s", ans)
	}
}
