package server_test

import (
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// TestSlixmppFriends is the third-party client check of subscriptions and
// presence (RFC 6121 §3, §4): two slixmpp clients on existing accounts,
// with automatic subscription handling off, become friends by request and
// acceptance both ways, each sees the other's presence (client 2's show
// 'away' and status intact), and a chat message goes from client 1 to
// client 2. Afterwards both rosters hold a mutual subscription.
func TestSlixmppFriends(t *testing.T) {
	requireSlixmpp(t)
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "alice's pässword")
	bob := s.AddUser(t, "bob", "bob's secret")
	status := "Out for lunch " + randomHex(t)
	body := "hello friend " + randomHex(t)
	out, err := runSlixmppScript(t, s, "testdata/slixmpp_friends.py",
		"--user1", "alice", "--password1", "alice's pässword",
		"--user2", "bob", "--password2", "bob's secret",
		"--status", status, "--body", body)
	if err != nil {
		t.Fatalf("slixmpp_friends.py: %v\n%s", err, out)
	}
	requireOutput(t, "slixmpp_friends.py", out,
		// Subscription stanzas come from the bare JID (RFC 6121 §3.1.2).
		"client 2: friend request from alice@localhost: accepting and asking back\n",
		"client 1: bob@localhost accepted the friend request\n",
		"client 1: accepting the request of bob@localhost\n",
		"OK: client 1 sees bob@localhost/",
		"away: '"+status+"'",
		"OK: client 2 sees alice@localhost/",
		"both friends see each other: client 1 sends the message\n",
		"OK: bob@localhost/",
		"received '"+body+"' from alice@localhost/",
	)

	// The server's side of the friendship: both items are "both".
	for _, tc := range []struct {
		user     jid.JID
		password string
		contact  string
	}{
		{alice, "alice's pässword", bob.String()},
		{bob, "bob's secret", alice.String()},
	} {
		c := s.MustLogin(t, tc.user, tc.password, servertest.ClientOptions{Resource: "check"})
		rtSend(t, c, "<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>")
		res := c.Next(t, wait, rtMatch("iq", "", "roster1"))
		var item *wire.Element
		if q := res.Child("query", "jabber:iq:roster"); q != nil {
			for _, it := range q.Children {
				if it.Name == "item" && it.AttrValue("jid") == tc.contact {
					item = it
				}
			}
		}
		if item == nil || item.AttrValue("subscription") != "both" || item.AttrValue("ask") != "" {
			t.Errorf("%s's roster item for %s = %v, want subscription both without ask (roster %s)", tc.user, tc.contact, item, res)
		}
	}
}
