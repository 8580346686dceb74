package server_test

import (
	"testing"

	"switchboard/xmpp/server/servertest"
)

// TestSlixmppCSI is the third-party client check of Client State
// Indication (XEP-0352): slixmpp's xep_0352 plugin finds it offered; while
// inactive, slixmpp gets a contact's latest status alone, with the next
// message; active again, it gets each status as it is sent
// (testdata/slixmpp_csi.py).
func TestSlixmppCSI(t *testing.T) {
	requireSlixmpp(t)
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", ftPassword)
	bob := s.AddUser(t, "bob", ftPassword)
	ftSubscribe(t, s, alice, bob, true)
	body := "csi-" + randomHex(t)
	out, err := runSlixmppScript(t, s, "testdata/slixmpp_csi.py",
		"--user1", "alice", "--password1", ftPassword,
		"--user2", "bob", "--password2", ftPassword,
		"--body", body)
	if err != nil {
		t.Fatalf("slixmpp_csi.py: %v\n%s", err, out)
	}
	requireOutput(t, "slixmpp_csi.py", out,
		"OK: client 1 found CSI among the stream features\n",
		"OK: inactive, client 1 saw the latest status alone, with the message\n",
		"OK: active, client 1 saw the next status at once\n",
		"\nOK\n",
	)
}
