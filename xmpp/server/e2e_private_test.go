package server_test

import (
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
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
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
	if !strings.Contains(info.String(), "var=\""+privNS+"\"") && !strings.Contains(info.String(), "var='"+privNS+"'") {
		t.Fatalf("account disco#info lacks %s: %s", privNS, info)
	}
}
