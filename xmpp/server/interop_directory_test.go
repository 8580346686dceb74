package server_test

import (
	"slices"
	"testing"

	"switchboard/xmpp/server/servertest"
)

// TestSlixmppDirectory: slixmpp's xep_0054 publishes and reads vCards and
// its xep_0055 stanzas search the directory (testdata/slixmpp_directory.py);
// then a Go client finds the vCard slixmpp published.
func TestSlixmppDirectory(t *testing.T) {
	requireSlixmpp(t)
	s := servertest.Start(t)
	s.AddUser(t, "alice", "alice-pw")
	bob := s.AddUser(t, "bob", prPassword)
	b := prLogin(t, s, bob, "desk")
	pepCheckResult(t, dirSetCard(t, b, dirCard("Bob Builder", "Bob", "Builder", "Engineering", "+1 555 5678", "")))

	out, err := runSlixmppScript(t, s, "testdata/slixmpp_directory.py",
		"--user", "alice", "--password", "alice-pw",
		"--peer", "bob", "--peer-name", "Bob Builder", "--peer-ext", "5678")
	if err != nil {
		t.Fatalf("slixmpp_directory.py: %v\n%s", err, out)
	}
	requireOutput(t, "slixmpp_directory.py", out,
		"OK: published and read back the vCard of alice@localhost\n",
		"OK: read the vCard of bob@localhost: Bob Builder\n",
		"OK: the domain offers jabber:iq:search\n",
		"OK: the search form has the extension field\n",
		"OK: the search by extension found bob@localhost (Bob Builder)\n",
		"\nOK\n",
	)

	if got := dirCardText(t, dirGetCard(t, b, "alice@"+s.Domain), "ORG/ORGUNIT"); got != "Sales" {
		t.Fatalf("the department slixmpp published: %q", got)
	}
	if got, _ := dirSearch(t, b, dirForm("{"+dirFields+"}department=sales")); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("search by the department slixmpp published found %v", got)
	}
}
