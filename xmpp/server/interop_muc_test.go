package server_test

import (
	"testing"

	"switchboard/xmpp/server/servertest"
)

// TestSlixmppRoom is the third-party client check of multi-user chat
// (XEP-0045): two slixmpp clients with the xep_0045 plugin join a room,
// the first creating it as an instant room (201, muc#owner), the second
// finding the first among the occupants, and exchange groupchat messages;
// the sender gets its own message back.
func TestSlixmppRoom(t *testing.T) {
	requireSlixmpp(t)
	s := servertest.Start(t)
	s.AddUser(t, "alice", "alice's pässword")
	s.AddUser(t, "bob", "bob's secret")
	room := "room-" + randomHex(t) + "@conference.localhost"
	body1, body2 := "hello room "+randomHex(t), "hello back "+randomHex(t)
	out, err := runSlixmppScript(t, s, "testdata/slixmpp_room.py",
		"--user1", "alice", "--password1", "alice's pässword",
		"--user2", "bob", "--password2", "bob's secret",
		"--room", room, "--body1", body1, "--body2", body2)
	if err != nil {
		t.Fatalf("slixmpp_room.py: %v\n%s", err, out)
	}
	requireOutput(t, "slixmpp_room.py", out,
		"client 1: joined "+room+"/One with status [110, 170, 201], occupants []",
		"client 1: configured an instant room\n",
		"client 2: joined "+room+"/Two with status [110, 170], occupants ['One']",
		"client 1: sees "+room+"/Two arrive",
		"OK: client 2 received '"+body1+"' from "+room+"/One; answering\n",
		"OK: client 1 got its own message back from "+room+"/One\n",
		"OK: client 1 received '"+body2+"' from "+room+"/Two\n",
		"\nOK\n",
	)
}
