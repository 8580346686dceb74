package server_test

import (
	"context"
	"testing"
	"time"

	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

func mucHasStatus(e *wire.Element, code string) bool {
	x := e.Child("x", "http://jabber.org/protocol/muc#user")
	if x == nil {
		return false
	}
	for _, s := range x.Children {
		if s.Name == "status" && s.AttrValue("code") == code {
			return true
		}
	}
	return false
}

// TestMUCSmoke: create a room, a second user joins and gets the first's
// presence, messages fan out with stanza ids, a late joiner gets history
// and the subject, a nick change is announced.
func TestMUCSmoke(t *testing.T) {
	s := servertest.Start(t)
	ctx := context.Background()
	const w = 5 * time.Second
	alice := s.MustLogin(t, s.AddUser(t, "alice", "pw"), "pw", servertest.ClientOptions{Resource: "a"})
	bob := s.MustLogin(t, s.AddUser(t, "bob", "pw"), "pw", servertest.ClientOptions{Resource: "b"})
	carol := s.MustLogin(t, s.AddUser(t, "carol", "pw"), "pw", servertest.ClientOptions{Resource: "c"})
	room := "team@conference.localhost"

	if err := alice.SendRaw(ctx, "<presence to='"+room+"/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"); err != nil {
		t.Fatal(err)
	}
	self := alice.Next(t, w, servertest.Named("presence", "from", room+"/Alice"))
	if !mucHasStatus(self, "110") || !mucHasStatus(self, "201") {
		t.Fatalf("creator's self-presence lacks 110/201: %s", self)
	}
	alice.Next(t, w, servertest.Named("message", "type", "groupchat")) // subject
	// Accept the default configuration (an instant room), which unlocks
	// the room for others (XEP-0045 §10.1.2).
	if err := alice.SendRaw(ctx, "<iq type='set' id='instant' to='"+room+"'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"); err != nil {
		t.Fatal(err)
	}
	if res := alice.Next(t, w, servertest.Named("iq", "id", "instant")); res.AttrValue("type") != "result" {
		t.Fatalf("instant room: %s", res)
	}

	if err := bob.SendRaw(ctx, "<presence to='"+room+"/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>"); err != nil {
		t.Fatal(err)
	}
	bob.Next(t, w, servertest.Named("presence", "from", room+"/Alice"))
	if p := bob.Next(t, w, servertest.Named("presence", "from", room+"/Bob")); !mucHasStatus(p, "110") {
		t.Fatalf("bob's self-presence: %s", p)
	}
	alice.Next(t, w, servertest.Named("presence", "from", room+"/Bob"))
	bob.Next(t, w, servertest.Named("message", "type", "groupchat")) // subject

	if err := bob.SendRaw(ctx, "<message to='"+room+"' type='groupchat'><body>hello room</body></message>"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*servertest.Client{alice, bob} {
		m := c.Next(t, w, servertest.Named("message", "from", room+"/Bob"))
		if m.ChildText("body", "") != "hello room" || m.Child("stanza-id", "urn:xmpp:sid:0") == nil || m.Child("occupant-id", "urn:xmpp:occupant-id:0") == nil {
			t.Fatalf("groupchat message: %s", m)
		}
	}
	// A non-occupant may not post.
	if err := carol.SendRaw(ctx, "<message to='"+room+"' type='groupchat' id='np'><body>x</body></message>"); err != nil {
		t.Fatal(err)
	}
	if e := carol.Next(t, w, servertest.Named("message", "id", "np")); e.AttrValue("type") != "error" {
		t.Fatalf("non-occupant post: %s", e)
	}
	// Late joiner: history then subject.
	if err := carol.SendRaw(ctx, "<presence to='"+room+"/Carol'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='5'/></x></presence>"); err != nil {
		t.Fatal(err)
	}
	h := carol.Next(t, w, func(e *wire.Element) bool { return e.Name == "message" && e.ChildText("body", "") == "hello room" })
	if h.Child("delay", "urn:xmpp:delay") == nil {
		t.Fatalf("history without delay: %s", h)
	}
	// Nick conflict and nick change.
	if err := carol.SendRaw(ctx, "<presence to='"+room+"/Alice'/>"); err != nil {
		t.Fatal(err)
	}
	if e := carol.Next(t, w, servertest.Named("presence", "type", "error")); e.Child("error", "").Child("conflict", "") == nil {
		t.Fatalf("nick conflict: %s", e)
	}
	if err := bob.SendRaw(ctx, "<presence to='"+room+"/Robert'/>"); err != nil {
		t.Fatal(err)
	}
	un := alice.Next(t, w, servertest.Named("presence", "from", room+"/Bob", "type", "unavailable"))
	if !mucHasStatus(un, "303") {
		t.Fatalf("nick change lacks 303: %s", un)
	}
	alice.Next(t, w, servertest.Named("presence", "from", room+"/Robert"))
}
