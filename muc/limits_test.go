package muc

import (
	"context"
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/xmpptest"
)

// TestAdminSetAffiliationLimit: a muc#admin set that would take the room
// past the affiliations the store keeps is refused whole (not-acceptable)
// rather than applied, which would make every later save of the room
// fail; the stored room is unchanged.
func TestAdminSetAffiliationLimit(t *testing.T) {
	ctx := t.Context()
	db, w := openTestStore(t)
	rj := jid.MustParse("full@conf.example.org")
	alice := jid.MustParse("alice@example.org/a")
	rec := DefaultRoom(rj, "full", false, alice, 20)
	rec.Persistent = true
	for i := len(rec.Affiliations); i < store.MaxRoomAffiliations; i++ {
		rec.Affiliations[fmt.Sprintf("u%d@example.org", i)] = affMember
	}
	if err := db.Rooms().Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rt := &xmpptest.Recorder{}
	svc, err := New(Options{Domain: "conf.example.org", Host: "example.org", Secret: []byte("limits")},
		Deps{Rooms: db.Rooms(), History: db.Archive(), Writer: w, MAM: emptyArchive{}, Router: rt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)

	routeXML(t, svc, alice, "<iq id='full' to='full@conf.example.org' type='set'><query xmlns='"+NSAdmin+"'>"+
		"<item jid='u1@example.org' affiliation='none'/><item jid='new1@example.org' affiliation='member'/>"+
		"<item jid='new2@example.org' affiliation='member'/></query></iq>")
	if err := svc.do(ctx, rj, func(context.Context, *room) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var answer *xmpp.Stanza
	for _, st := range rt.Take() {
		if st.ID == "full" {
			answer = st
		}
	}
	if answer == nil || answer.Type != xmpp.TypeError || answer.El.Child("error", "").Child("not-acceptable", xmpp.NSStanzas) == nil {
		t.Fatalf("answer %v, want not-acceptable", answer)
	}
	got, err := db.Rooms().Get(ctx, rj.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Affiliations) != store.MaxRoomAffiliations || got.Affiliations["u1@example.org"] != affMember || got.Affiliations["new1@example.org"] != "" {
		t.Fatalf("stored room has %d affiliations (u1 %q, new1 %q); want it unchanged", len(got.Affiliations), got.Affiliations["u1@example.org"], got.Affiliations["new1@example.org"])
	}
}
