package server_test

import (
	"testing"

	"switchboard/xmpp/server/servertest"
)

// TestSlixmppPrivate: slixmpp's xep_0048 bookmarks, kept in private XML
// storage by its xep_0049 plugin, are shared by two clients of one user
// and refused to another user (testdata/slixmpp_private.py); then a Go
// client reads the bookmarks slixmpp stored, in private XML storage and
// in the XEP-0402 node the server keeps in step.
func TestSlixmppPrivate(t *testing.T) {
	requireSlixmpp(t)
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	s.AddUser(t, "bob", prPassword)
	room := "lobby@conference." + s.Domain
	out, err := runSlixmppScript(t, s, "testdata/slixmpp_private.py",
		"--user", "alice", "--password", prPassword,
		"--other", "bob", "--other-password", prPassword, "--room", room)
	if err != nil {
		t.Fatalf("slixmpp_private.py: %v\n%s", err, out)
	}
	requireOutput(t, "slixmpp_private.py", out,
		"OK: the desk stored its bookmarks\n",
		"OK: the phone read the bookmark of "+room+"\n",
		"OK: another user is forbidden\n",
		"OK: the desk read the phone's change\n",
		"\nOK\n",
	)

	a := prLogin(t, s, alice, "go")
	privWant(t, "the bookmarks slixmpp stored", privGet(t, a, "<storage xmlns='storage:bookmarks'/>"),
		"<storage xmlns='storage:bookmarks'>"+
			"<conference jid='"+room+"' name='Lobby' autojoin='true'><nick>Alice</nick></conference>"+
			"<conference jid='support@conference."+s.Domain+"' name='Support'><nick>Al</nick></conference></storage>")
	pepEqual(t, "the XEP-0402 bookmarks", pepItemIDs(pepItems(t, a, alice, "urn:xmpp:bookmarks:1", "")), room, "support@conference."+s.Domain)
}
