package server_test

import (
	"testing"

	"switchboard/xmpp/server/servertest"
)

// TestSlixmppStreamManagement is the third-party client check of stream
// management (XEP-0198): slixmpp's xep_0198 plugin enables it with
// resumption, its connection is cut, a message arrives for it meanwhile,
// and it resumes the session on a new connection (the same full JID, no
// new session) and gets the message; its reply reaches the other client.
func TestSlixmppStreamManagement(t *testing.T) {
	requireSlixmpp(t)
	s := servertest.Start(t)
	s.AddUser(t, "alice", "alice-pw")
	s.AddUser(t, "bob", "bob-pw")
	body := "sm-" + randomHex(t)
	out, err := runSlixmppScript(t, s, "testdata/slixmpp_sm.py",
		"--user1", "alice", "--password1", "alice-pw",
		"--user2", "bob", "--password2", "bob-pw",
		"--body", body)
	if err != nil {
		t.Fatalf("slixmpp_sm.py: %v\n%s", err, out)
	}
	requireOutput(t, "slixmpp_sm.py", out,
		"OK: client 1 enabled stream management as alice@localhost/",
		"OK: client 1 received the first message\n",
		"OK: client 1 resumed as alice@localhost/",
		"and received the second message from bob@localhost/",
		"OK: client 2 received the reply from alice@localhost/",
		"\nOK\n",
	)
}
