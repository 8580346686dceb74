package server_test

import (
	"testing"

	"switchboard/xmpp/server/servertest"
)

// TestSlixmppAvatar: a slixmpp client publishing its avatar with XEP-0084
// and one that knows only vCard avatars (XEP-0153) see each other's
// avatars through the server's conversion (XEP-0398;
// testdata/slixmpp_avatar.py).
func TestSlixmppAvatar(t *testing.T) {
	requireSlixmpp(t)
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	prSubscribe(t, s, alice, bob, true)
	out, err := runSlixmppScript(t, s, "testdata/slixmpp_avatar.py",
		"--user", "alice", "--password", prPassword, "--other", "bob", "--other-password", prPassword)
	if err != nil {
		t.Fatalf("slixmpp_avatar.py: %v\n%s", err, out)
	}
	requireOutput(t, "slixmpp_avatar.py", out,
		"OK: the phone published its avatar\n",
		"OK: the desk saw the avatar's hash in presence\n",
		"OK: the desk read the avatar in the vCard\n",
		"OK: the desk set its avatar in its vCard\n",
		"OK: the phone read the desk's avatar\n",
		"\nOK\n",
	)
}
