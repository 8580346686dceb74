package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// TestUserProfile: an administrator sets the directory fields of a vCard
// through a running server's admin socket (the user's own fields, such
// as a photo, stay), colleagues find the user by extension and read the
// vCard, and removing the extension takes it out of the search; then the
// same command works on the data file with the server stopped.
func TestUserProfile(t *testing.T) {
	s, data := startWithSocket(t, "alice@localhost", "bob@localhost")
	alice := s.MustLogin(t, jid.MustParse("alice@localhost"), "pw", servertest.ClientOptions{Resource: "a"})
	bob := s.MustLogin(t, jid.MustParse("bob@localhost"), "pw", servertest.ClientOptions{Resource: "b"})

	iq := func(c *servertest.Client, id, payload string) *wire.Element {
		t.Helper()
		if err := c.SendRaw(context.Background(), "<iq id='"+id+"' "+payload+"</iq>"); err != nil {
			t.Fatal(err)
		}
		el := c.Next(t, 5*time.Second, servertest.Named("iq", "id", id))
		if el.AttrValue("type") != "result" {
			t.Fatalf("IQ %s: %s", id, el)
		}
		return el
	}
	iq(alice, "own", "type='set'><vCard xmlns='vcard-temp'><FN>Al</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO></vCard>")

	out := mustRun(t, "", append(data, "user", "profile", "alice@localhost", "--name", "Alice Liddell", "--extension", "1234", "--department", "Sales")...)
	for _, want := range []string{"name: Alice Liddell", "extension: 1234", "department: Sales"} {
		if !slices.Contains(lines(out), want) {
			t.Fatalf("profile output lacks %q:\n%s", want, out)
		}
	}
	search := func(ext string) []string {
		t.Helper()
		res := iq(bob, "s-"+ext, "type='set' to='localhost'><query xmlns='jabber:iq:search'><x xmlns='jabber:x:data' type='submit'><field var='{urn:switchboard:directory:0}extension'><value>"+ext+"</value></field></x></query>")
		var found []string
		x := res.Child("query", "jabber:iq:search").Child("x", "jabber:x:data")
		if x == nil {
			return nil // no match: an empty <query/>
		}
		for _, it := range x.Children {
			for _, f := range it.Children {
				if it.Name == "item" && f.AttrValue("var") == "jid" {
					found = append(found, f.ChildText("value", "jabber:x:data"))
				}
			}
		}
		return found
	}
	if got := search("1234"); !slices.Equal(got, []string{"alice@localhost"}) {
		t.Fatalf("search by extension found %v", got)
	}
	card := iq(bob, "get", "type='get' to='alice@localhost'><vCard xmlns='vcard-temp'/>").Child("vCard", "vcard-temp")
	if card.ChildText("FN", "vcard-temp") != "Alice Liddell" || card.Child("PHOTO", "vcard-temp") == nil ||
		card.Child("TEL", "vcard-temp").ChildText("NUMBER", "vcard-temp") != "1234" {
		t.Fatalf("alice's vCard after the admin's change: %s", card)
	}

	mustRun(t, "", append(data, "user", "profile", "alice@localhost", "--extension", "")...)
	if got := search("1234"); len(got) != 0 {
		t.Fatalf("search after removing the extension found %v", got)
	}
	if _, _, err := run(t, "", append(data, "user", "profile", "nobody@localhost", "--name", "X")...); err == nil || !strings.Contains(err.Error(), "nobody@localhost") {
		t.Fatalf("profile of a missing account: %v", err)
	}
	// What would not parse back as XML is refused: the stored vCard
	// stays readable.
	// (Invalid UTF-8 cannot reach a running server: the socket's JSON
	// replaces it. The data file's path below refuses it.)
	for _, bad := range []string{"two\nlines", "bell\x07", "\uFFFE"} {
		if _, _, err := run(t, "", append(data, "user", "profile", "alice@localhost", "--name", bad)...); err == nil {
			t.Fatalf("name %q was accepted", bad)
		}
	}
	if got := iq(bob, "get2", "type='get' to='alice@localhost'><vCard xmlns='vcard-temp'/>").Child("vCard", "vcard-temp"); got.ChildText("FN", "vcard-temp") != "Alice Liddell" {
		t.Fatalf("alice's vCard after the refused names: %s", got)
	}
	// Showing is not recorded; the audit detail names the fields given,
	// an empty one (removed) apart from those left out.
	if shown := lines(mustRun(t, "", append(data, "user", "profile", "alice@localhost")...)); !slices.Contains(shown, "name: Alice Liddell") || !slices.Contains(shown, "extension: ") {
		t.Fatalf("profile shown: %q", shown)
	}
	audit := mustRun(t, "", append(data, "audit")...)
	if n := strings.Count(audit, "\tuser.profile\talice@localhost"); n != 2 {
		t.Fatalf("%d user.profile entries, want 2 (the two changes):\n%s", n, audit)
	}
	if !strings.Contains(audit, "\tuser.profile\talice@localhost\textension=\"\"\n") {
		t.Fatalf("audit log lacks the removal of the extension alone:\n%s", audit)
	}

	// With the server stopped, on the data file.
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "", append(data, "user", "profile", "alice@localhost", "--email", "alice@example.com")...)
	if !slices.Contains(lines(out), "email: alice@example.com") || !slices.Contains(lines(out), "name: Alice Liddell") {
		t.Fatalf("offline profile output:\n%s", out)
	}
	if _, _, err := run(t, "", append(data, "user", "profile", "alice@localhost", "--name", "bad utf-8 \xff")...); err == nil {
		t.Fatal("a name of invalid UTF-8 was accepted")
	}
}
