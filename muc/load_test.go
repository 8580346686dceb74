package muc

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/xmpptest"
)

// failingRooms is the room store whose reads fail while failReads is set;
// it counts the writes that reach it.
type failingRooms struct {
	*store.Rooms
	failReads atomic.Bool
	writes    atomic.Int32
}

var errDisk = errors.New("disk on fire")

func (f *failingRooms) Get(ctx context.Context, j string) (store.Room, error) {
	if f.failReads.Load() {
		return store.Room{}, errDisk
	}
	return f.Rooms.Get(ctx, j)
}

func (f *failingRooms) List(ctx context.Context, service string) ([]store.Room, error) {
	if f.failReads.Load() {
		return nil, errDisk
	}
	return f.Rooms.List(ctx, service)
}

func (f *failingRooms) Put(ctx context.Context, r store.Room) error {
	f.writes.Add(1)
	return f.Rooms.Put(ctx, r)
}

func (f *failingRooms) Delete(ctx context.Context, j string) error {
	f.writes.Add(1)
	return f.Rooms.Delete(ctx, j)
}

// TestRoomLoadError: while the store cannot read a stored room, every
// stanza to it is refused with internal-server-error of type wait (try
// later), and nothing is written: a join does not create the room anew
// (which would make the joiner its owner and overwrite the stored
// record). Once reads work again, the stored room is the one joined.
func TestRoomLoadError(t *testing.T) {
	ctx := t.Context()
	db, w := openTestStore(t)

	rj := jid.MustParse("kept@conf.example.org")
	kept := DefaultRoom(rj, "kept", false, jid.MustParse("alice@example.org"), 20)
	kept.Name = "Kept room"
	if err := db.Rooms().Put(ctx, kept); err != nil {
		t.Fatal(err)
	}
	before, err := db.Rooms().Get(ctx, rj.String())
	if err != nil {
		t.Fatal(err)
	}

	rooms := &failingRooms{Rooms: db.Rooms()}
	rooms.failReads.Store(true)
	rt := &xmpptest.Recorder{}
	svc, err := New(Options{Domain: "conf.example.org", Host: "example.org", Secret: []byte("load")},
		Deps{Rooms: rooms, History: db.Archive(), Writer: w, MAM: emptyArchive{}, Router: rt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	bob := jid.MustParse("bob@example.org/b")
	send := func(t *testing.T, xml string) {
		t.Helper()
		routeXML(t, svc, bob, xml)
	}
	// barrier waits for the room's goroutine to handle what was sent
	// before, and returns what it sent meanwhile.
	barrier := func(t *testing.T) []*xmpp.Stanza {
		t.Helper()
		err := svc.do(ctx, rj, func(context.Context, *room) error { return nil })
		if rooms.failReads.Load() && err == nil {
			t.Fatal("an admin operation on a room that could not be loaded succeeded")
		}
		return rt.Take()
	}

	for _, tc := range []struct {
		name string
		kind xmpp.Kind
		xml  string
	}{
		{"join", xmpp.KindPresence, "<presence id='j1' to='kept@conf.example.org/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>"},
		{"groupchat", xmpp.KindMessage, "<message id='m1' to='kept@conf.example.org' type='groupchat'><body>hi</body></message>"},
		{"disco", xmpp.KindIQ, "<iq id='i1' to='kept@conf.example.org' type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"},
		{"owner", xmpp.KindIQ, "<iq id='i2' to='kept@conf.example.org' type='set'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send(t, tc.xml)
			out := barrier(t)
			if len(out) != 1 {
				t.Fatalf("the room sent %d stanzas, want one error: %v", len(out), out)
			}
			e := out[0]
			errEl := e.El.Child("error", "")
			if e.Kind != tc.kind || e.Type != xmpp.TypeError || !e.To.Equal(bob) || errEl == nil ||
				errEl.AttrValue("type") != "wait" || errEl.Child("internal-server-error", xmpp.NSStanzas) == nil {
				t.Fatalf("answer %s, want a %s error internal-server-error of type wait to %s", e.Bytes(), tc.name, bob)
			}
		})
	}
	if n := rooms.writes.Load(); n != 0 {
		t.Fatalf("%d writes to the store while the room could not be read", n)
	}
	after, err := db.Rooms().Get(ctx, rj.String())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("stored room changed:\n%+v\nwas\n%+v", after, before)
	}

	// Reads work again: the next stanza loads the stored room, which
	// Bob joins as what he is there (no affiliation), not as its creator.
	rooms.failReads.Store(false)
	send(t, "<presence id='j2' to='kept@conf.example.org/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	var self *xmpp.Stanza
	for _, st := range barrier(t) {
		if st.Kind == xmpp.KindPresence && st.Type == "" && st.To.Equal(bob) && st.From.Resourcepart() == "Bob" {
			self = st
		}
	}
	if self == nil {
		t.Fatal("no self-presence after the store recovered")
	}
	x := self.El.Child("x", NSUser)
	if it := x.Child("item", NSUser); it == nil || it.AttrValue("affiliation") != affNone {
		t.Fatalf("Bob's self-presence: %s", self.Bytes())
	}
	for _, c := range x.Children {
		if c.Name == "status" && c.AttrValue("code") == "201" {
			t.Fatalf("the room was created anew: %s", self.Bytes())
		}
	}
	after, err = db.Rooms().Get(ctx, rj.String())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("stored room changed by the join:\n%+v\nwas\n%+v", after, before)
	}
}
