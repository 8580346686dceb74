package server_test

import (
	"slices"
	"strings"
	"testing"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

const privNS = "jabber:iq:private"

// privQuery returns the children of a private XML result's query, in
// canonical form, failing unless el is a result with a query.
func privQuery(t testing.TB, el *wire.Element) []string {
	t.Helper()
	pepCheckResult(t, el)
	q := el.Child("query", privNS)
	if q == nil {
		t.Fatalf("no query in %s", el)
	}
	var out []string
	for _, c := range q.Children {
		out = append(out, xmpptest.Canonical(c))
	}
	return out
}

func privGet(t testing.TB, c *servertest.Client, children string) []string {
	t.Helper()
	return privQuery(t, pepIQ(t, c, "<iq type='get'><query xmlns='%s'>%s</query></iq>", privNS, children))
}

func privSet(t testing.TB, c *servertest.Client, children string) *wire.Element {
	t.Helper()
	return pepIQ(t, c, "<iq type='set'><query xmlns='%s'>%s</query></iq>", privNS, children)
}

// privWant compares canonical forms with the XML of want.
func privWant(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	for i, w := range want {
		want[i] = xmpptest.Canonical(xmpptest.Element(t, w))
	}
	pepEqual(t, what, got, want...)
}

// TestPrivateStorage: XEP-0049 over a real socket, from two resources of
// one account and from another account.
func TestPrivateStorage(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Private.MaxBytes = 600 }))
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	a := prLogin(t, s, alice, "pc")
	a2 := prLogin(t, s, alice, "phone")
	b := prLogin(t, s, bob, "pc")

	const empty = "<storage xmlns='storage:bookmarks'/>"
	const marks = "<storage xmlns='storage:bookmarks'><conference jid='lobby@conference.localhost' autojoin='true' name='Lobby'><nick>Alice</nick></conference></storage>"
	const notes = "<storage xmlns='storage:rosternotes'><note jid='bob@localhost' cdate='2026-11-22T10:00:00Z'>Sales, ext. 5678</note></storage>"

	// Nothing stored: the request's element as sent.
	privWant(t, "before any set", privGet(t, a, empty), empty)

	pepCheckResult(t, privSet(t, a, marks))
	privWant(t, "the other resource's get", privGet(t, a2, empty), marks)
	privWant(t, "a get to the own bare JID",
		privQuery(t, pepIQ(t, a2, "<iq type='get' to='%s'><query xmlns='%s'>%s</query></iq>", alice, privNS, empty)), marks)

	// Two namespaces in one set; each is read on its own, and together.
	const marks2 = "<storage xmlns='storage:bookmarks'><url url='https://example.com' name='Docs'/></storage>"
	pepCheckResult(t, privSet(t, a, marks2+notes))
	privWant(t, "bookmarks after the set of two", privGet(t, a, empty), marks2)
	privWant(t, "both namespaces", privGet(t, a2, "<storage xmlns='storage:rosternotes'/>"+empty), notes, marks2)

	// Several elements of one namespace are stored and read together
	// (§2), and prefixed elements keep their namespaces.
	const prefs1 = "<p:prefs xmlns:p='urn:example:prefs'><p:theme>dark</p:theme></p:prefs>"
	const prefs2 = "<extra xmlns='urn:example:prefs' level='2'/>"
	pepCheckResult(t, privSet(t, a, prefs1+prefs2))
	privWant(t, "two elements of one namespace", privGet(t, a2, "<prefs xmlns='urn:example:prefs'/>"),
		"<prefs xmlns='urn:example:prefs'><theme>dark</theme></prefs>", prefs2)

	// An empty element clears its namespace; the others stay.
	pepCheckResult(t, privSet(t, a, empty))
	privWant(t, "bookmarks after clearing", privGet(t, a, empty), empty)
	privWant(t, "notes after clearing the bookmarks", privGet(t, a, "<storage xmlns='storage:rosternotes'/>"), notes)

	// §3: only the owner.
	pepCheckError(t, pepIQ(t, b, "<iq type='get' to='%s'><query xmlns='%s'>%s</query></iq>", alice, privNS, empty), "auth", "forbidden", "")
	pepCheckError(t, pepIQ(t, b, "<iq type='set' to='%s'><query xmlns='%s'>%s</query></iq>", alice, privNS, marks), "auth", "forbidden", "")
	privWant(t, "bob's own storage", privGet(t, b, "<storage xmlns='storage:rosternotes'/>"), "<storage xmlns='storage:rosternotes'/>")

	// §2: a query without a child; a child without its own namespace.
	pepCheckError(t, privSet(t, a, ""), "modify", "not-acceptable", "")
	pepCheckError(t, pepIQ(t, a, "<iq type='get'><query xmlns='%s'/></iq>", privNS), "modify", "bad-request", "")
	pepCheckError(t, privSet(t, a, "<storage/>"), "modify", "not-acceptable", "")
	pepCheckError(t, privSet(t, a, "<storage xmlns=''/>"), "modify", "not-acceptable", "")
	pepCheckError(t, privSet(t, a, "<x xmlns='urn:"+strings.Repeat("n", 1100)+"'/>"), "modify", "not-acceptable", "")
	pepCheckError(t, privSet(t, a, strings.Repeat("<x xmlns='urn:x'/>", 65)), "modify", "not-acceptable", "")

	// The quota: a set beyond it stores nothing, not even its other
	// namespaces.
	big := "<storage xmlns='storage:bookmarks'><url url='https://example.com/" + strings.Repeat("a", 600) + "'/></storage>"
	pepCheckError(t, privSet(t, a, "<z xmlns='urn:z'>new</z>"+big), "wait", "resource-constraint", "")
	privWant(t, "after the refused set", privGet(t, a, "<z xmlns='urn:z'/>"+empty), "<z xmlns='urn:z'/>", empty)
	privWant(t, "notes after the refused set", privGet(t, a, "<storage xmlns='storage:rosternotes'/>"), notes)

	// The feature is announced on the account.
	info := pepIQ(t, a, "<iq type='get' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", alice)
	if !slices.Contains(mcFeatures(info), privNS) {
		t.Fatalf("account disco#info lacks %s: %s", privNS, info)
	}
}

// TestBookmarksCompat: bookmarks kept in private XML storage (XEP-0048
// 1.0, as Psi and slixmpp keep them) and in the XEP-0402 node (as
// Conversations, Dino and Gajim keep them) are one list (XEP-0402 §5.3,
// announced as urn:xmpp:bookmarks:1#compat).
func TestBookmarksCompat(t *testing.T) {
	const bm2 = "urn:xmpp:bookmarks:1"
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	a := prLogin(t, s, alice, "desk")
	p := prLogin(t, s, alice, "phone")
	pepOnline(t, a, newPEPCaps(), true)
	pepOnline(t, p, newPEPCaps(bm2+"+notify"), true)
	lobby, support, sales := "lobby@conference."+s.Domain, "support@conference."+s.Domain, "sales@conference."+s.Domain

	info := pepIQ(t, p, "<iq type='get' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", alice)
	if !slices.Contains(mcFeatures(info), bm2+"#compat") {
		t.Fatalf("account disco#info lacks %s#compat: %s", bm2, info)
	}

	// The desk stores two rooms, a URL and a conference whose room is
	// not a JID; the phone is told of the two rooms.
	url := "<url name='Wiki' url='https://wiki.example.com'/>"
	odd := "<conference jid='not a room' name='Odd'/>"
	pepCheckResult(t, privSet(t, a, "<storage xmlns='storage:bookmarks'>"+
		"<conference jid='"+lobby+"' name='Lobby' autojoin='true'><nick>Alice</nick></conference>"+
		"<conference jid='"+support+"' name='Support'><nick>Al</nick><password>s3cret</password></conference>"+
		url+odd+"</storage>"))
	pepEqual(t, "the phone's notifications", pepEvents(prSync(t, p), alice, bm2), lobby, support)
	items := pepItems(t, p, alice, bm2, "")
	pepEqual(t, "the node's items", pepItemIDs(items), lobby, support)
	privWant(t, "the lobby's item", []string{xmpptest.Canonical(items.Child("pubsub", pepNS).Child("items", pepNS).Children[0].FirstChild())},
		"<conference xmlns='"+bm2+"' name='Lobby' autojoin='true'><nick>Alice</nick></conference>")

	// The phone adds a room as Conversations does, with its publish
	// options: the node the server created meets them.
	salesItem := "<conference xmlns='" + bm2 + "' name='Sales' autojoin='true'><nick>Al</nick><extensions><state xmlns='urn:example:client' pinned='true'/></extensions></conference>"
	pepCheckResult(t, pepPublish(t, p, bm2, sales, salesItem, pepOptions(
		"pubsub#persist_items", "true", "pubsub#max_items", "max",
		"pubsub#send_last_published_item", "never", "pubsub#access_model", "whitelist")))
	prSync(t, p)
	privWant(t, "the desk's bookmarks", privGet(t, a, "<storage xmlns='storage:bookmarks'/>"),
		"<storage xmlns='storage:bookmarks'>"+
			"<conference jid='"+lobby+"' name='Lobby' autojoin='true'><nick>Alice</nick></conference>"+
			"<conference jid='"+support+"' name='Support'><nick>Al</nick><password>s3cret</password></conference>"+
			"<conference jid='"+sales+"' name='Sales' autojoin='true'><nick>Al</nick></conference>"+
			url+odd+"</storage>")

	// The desk renames the lobby, changes its nick in sales and drops
	// support: the phone is told of the removal and the two changes,
	// and sales keeps the extensions the desk cannot see.
	pepCheckResult(t, privSet(t, a, "<storage xmlns='storage:bookmarks'>"+
		"<conference jid='"+lobby+"' name='Lobby 2' autojoin='true'><nick>Alice</nick></conference>"+
		"<conference jid='"+sales+"' name='Sales' autojoin='1'><nick>Al2</nick></conference>"+
		url+"</storage>"))
	pepEqual(t, "the phone's notifications of the change", pepEvents(prSync(t, p), alice, bm2), "-"+support, lobby, sales)
	items = pepItems(t, p, alice, bm2, "")
	pepEqual(t, "the node's items after the change", pepItemIDs(items), lobby, sales)
	privWant(t, "sales after the desk's change", []string{xmpptest.Canonical(items.Child("pubsub", pepNS).Child("items", pepNS).Children[1].FirstChild())},
		"<conference xmlns='"+bm2+"' name='Sales' autojoin='true'><nick>Al2</nick><extensions><state xmlns='urn:example:client' pinned='true'/></extensions></conference>")

	// The same list again changes nothing, and tells nobody.
	pepCheckResult(t, privSet(t, a, "<storage xmlns='storage:bookmarks'>"+
		"<conference jid='"+lobby+"' name='Lobby 2' autojoin='true'><nick>Alice</nick></conference>"+
		"<conference jid='"+sales+"' name='Sales' autojoin='true'><nick>Al2</nick></conference>"+
		url+"</storage>"))
	pepEqual(t, "notifications of an unchanged list", pepEvents(prSync(t, p), alice, bm2))

	// The phone retracts the lobby; the desk's list follows.
	pepCheckResult(t, pepIQ(t, p, "<iq type='set'><pubsub xmlns='%s'><retract node='%s' notify='true'><item id='%s'/></retract></pubsub></iq>", pepNS, bm2, lobby))
	privWant(t, "the desk's bookmarks after the phone's retraction", privGet(t, a, "<storage xmlns='storage:bookmarks'/>"),
		"<storage xmlns='storage:bookmarks'><conference jid='"+sales+"' name='Sales' autojoin='true'><nick>Al2</nick></conference>"+url+"</storage>")

	// An empty list removes every room.
	pepCheckResult(t, privSet(t, a, "<storage xmlns='storage:bookmarks'/>"))
	pepEqual(t, "the node after an empty list", pepItemIDs(pepItems(t, p, alice, bm2, "")))
	privWant(t, "the desk's bookmarks after an empty list", privGet(t, a, "<storage xmlns='storage:bookmarks'/>"), "<storage xmlns='storage:bookmarks'/>")
}

// TestBookmarksCompatPrivateNode: the XEP-0402 node stays private. A node
// a client created with the defaults (presence access, one item) is made
// private (XEP-0223 §3, XEP-0402 §3.3) before the older form's rooms go
// in, so a contact learns nothing; a list longer than the node may hold
// is refused before anything changes, and swapping a room at the limit
// loses none.
func TestBookmarksCompatPrivateNode(t *testing.T) {
	const bm2 = "urn:xmpp:bookmarks:1"
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.PEP.MaxItems = 2 }))
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	prSubscribe(t, s, alice, bob, true)
	caps := newPEPCaps(bm2 + "+notify")
	a := prLogin(t, s, alice, "desk")
	b := prLogin(t, s, bob, "pc")
	pepOnline(t, a, caps, true)
	pepOnline(t, b, caps, false)
	r1, r2, r3 := "one@conference."+s.Domain, "two@conference."+s.Domain, "three@conference."+s.Domain
	conf := func(room string) string { return "<conference jid='" + room + "'/>" }

	// A client publishes with the defaults: bob, a contact, is told.
	pepCheckResult(t, pepPublish(t, a, bm2, r1, "<conference xmlns='"+bm2+"'/>", ""))
	pepEqual(t, "bob told of the presence-access node", pepEvents(prSync(t, b), alice, bm2), r1)
	prSync(t, a)

	pepCheckResult(t, privSet(t, a, "<storage xmlns='storage:bookmarks'>"+conf(r1)+conf(r2)+"</storage>"))
	pepEqual(t, "bob told of the private node", pepEvents(prSync(t, b), alice, bm2))
	pepCheckError(t, pepItems(t, b, alice, bm2, ""), "cancel", "not-allowed", "closed-node")
	pepEqual(t, "the node's items", pepItemIDs(pepItems(t, a, alice, bm2, "")), r1, r2)
	cfg := pepIQ(t, a, "<iq type='get'><pubsub xmlns='%s'><configure node='%s'/></pubsub></iq>", pepNSOwner, bm2)
	for _, want := range []string{"whitelist", "never"} {
		if !strings.Contains(cfg.String(), ">"+want+"<") {
			t.Fatalf("the node's configuration lacks %s: %s", want, cfg)
		}
	}

	// Three rooms do not fit: nothing changes.
	pepCheckError(t, privSet(t, a, "<storage xmlns='storage:bookmarks'>"+conf(r1)+conf(r2)+conf(r3)+"</storage>"),
		"wait", "resource-constraint", "")
	pepEqual(t, "the node after the refused list", pepItemIDs(pepItems(t, a, alice, bm2, "")), r1, r2)

	// Swapping a room at the limit keeps the other.
	pepCheckResult(t, privSet(t, a, "<storage xmlns='storage:bookmarks'>"+conf(r1)+conf(r3)+"</storage>"))
	pepEqual(t, "the node after the swap", pepItemIDs(pepItems(t, a, alice, bm2, "")), r1, r3)
}
