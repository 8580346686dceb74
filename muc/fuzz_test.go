package muc

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/mam"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

// emptyArchive answers every room archive query with an empty result.
type emptyArchive struct{}

func (emptyArchive) QueryRoomArchive(_ context.Context, _ jid.JID, st *xmpp.Stanza, _ mam.RoomView) (*xmpp.Stanza, error) {
	return st.Result(nil), nil
}

func (emptyArchive) FormatID(id uint64) string { return strconv.FormatUint(id, 10) }

// fuzzSeeds are stanzas of every use case, addressed to the room (or an
// occupant, "Alice") from whichever occupant the fuzzer picks.
var fuzzSeeds = []string{
	`<presence to='r@conf.example.org/Bob'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='2' maxchars='-1' seconds='x' since='2026-01-01T00:00:00Z'/><password>p</password></x></presence>`,
	`<presence to='r@conf.example.org/Alice'/>`,
	`<presence to='r@conf.example.org/Other' type='unavailable'/>`,
	`<presence to='r@conf.example.org/Bob' type='error'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
	`<message to='r@conf.example.org' type='groupchat'><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='r@conf.example.org' id='x'/></message>`,
	`<message to='r@conf.example.org' type='groupchat'><subject>topic</subject></message>`,
	`<message to='r@conf.example.org/Alice' type='chat'><body>pm</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`,
	`<message to='r@conf.example.org'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='dave@example.org'><reason>r</reason></invite><invite to=''/></x></message>`,
	`<message to='r@conf.example.org'><x xmlns='http://jabber.org/protocol/muc#user'><decline to='alice@example.org'><reason>no</reason></decline></x></message>`,
	`<message to='r@conf.example.org' type='error'><error type='cancel'><recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
	`<message to='r@conf.example.org'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field><field var='muc#role'><value>participant</value></field></x></message>`,
	`<message to='r@conf.example.org'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field><field var='muc#roomnick'><value>Bob</value></field><field var='muc#jid'><value>bob@example.org/b</value></field><field var='muc#request_allow'><value>true</value></field></x></message>`,
	`<iq to='r@conf.example.org' type='set' id='1'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_moderatedroom'><value>1</value></field><field var='muc#roomconfig_membersonly'><value>true</value></field><field var='muc#roomconfig_maxusers'><value>-1</value></field><field var='switchboard#access'><value>group:x</value><value>domain:example.org</value></field></x></query></iq>`,
	`<iq to='r@conf.example.org' type='set' id='2'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='cancel'/></query></iq>`,
	`<iq to='r@conf.example.org' type='set' id='3'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy jid='alt@conf.example.org'><reason>bye</reason></destroy></query></iq>`,
	`<iq to='r@conf.example.org' type='set' id='4'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Bob' role='none'><reason>out</reason></item><item jid='example.org' affiliation='outcast'/></query></iq>`,
	`<iq to='r@conf.example.org' type='get' id='5'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query></iq>`,
	`<iq to='r@conf.example.org' type='set' id='6'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='muc#register_roomnick'><value>Alice</value></field></x></query></iq>`,
	`<iq to='r@conf.example.org' type='set' id='7'><query xmlns='jabber:iq:register'><remove/></query></iq>`,
	`<iq to='r@conf.example.org' type='get' id='8'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>`,
	`<iq to='r@conf.example.org/Alice' type='get' id='9'><ping xmlns='urn:xmpp:ping'/></iq>`,
	`<iq to='r@conf.example.org/Alice' type='get' id='10'><vCard xmlns='vcard-temp'/></iq>`,
	`<iq to='r@conf.example.org/Bob' type='result' id='muc-iq-1'/>`,
}

// fuzzSenders are the full JIDs the fuzzer sends from: the owner, a
// second user, a user with two sessions, and an outsider.
var fuzzSenders = []jid.JID{
	jid.MustParse("alice@example.org/a"),
	jid.MustParse("bob@example.org/b"),
	jid.MustParse("bob@example.org/b2"),
	jid.MustParse("carol@other.example/c"),
}

// FuzzRoom feeds arbitrary stanzas to a room in which Alice (owner) and
// Bob are joined: no input may panic, every stanza the room sends must
// serialise to XML that parses again, and the occupant indexes must stay
// consistent.
func FuzzRoom(f *testing.F) {
	for _, s := range fuzzSeeds {
		for i := range fuzzSenders {
			f.Add(uint8(i), []byte(s))
		}
	}
	db, err := store.Open(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	w := db.Archive().NewWriter(store.WriterOptions{})
	w.Start(context.Background())
	f.Cleanup(func() { _ = w.Stop(context.Background()) })
	rt := &xmpptest.Recorder{}
	svc, err := New(Options{Domain: "conf.example.org", Host: "example.org", Secret: []byte("fuzz")},
		Deps{Rooms: db.Rooms(), History: db.Archive(), Writer: w, MAM: emptyArchive{}, Router: rt})
	if err != nil {
		f.Fatal(err)
	}
	rj := jid.MustParse("r@conf.example.org")
	stanza := func(t *testing.T, from jid.JID, s string) *xmpp.Stanza {
		el, err := wire.Parse([]byte(s), wire.NewScope(wire.NSClient))
		if err != nil {
			t.Fatalf("seed %s: %v", s, err)
		}
		st, err := xmpp.NewStanza(el)
		if err != nil {
			t.Fatalf("seed %s: %v", s, err)
		}
		return st.With(from, st.To)
	}
	f.Fuzz(func(t *testing.T, sender uint8, data []byte) {
		ctx := context.Background()
		r := newRoom(svc, rj)
		r.dispatch(ctx, stanza(t, fuzzSenders[0], `<presence to='r@conf.example.org/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`))
		r.dispatch(ctx, stanza(t, fuzzSenders[0], `<iq to='r@conf.example.org' type='set' id='c'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`))
		r.dispatch(ctx, stanza(t, fuzzSenders[1], `<presence to='r@conf.example.org/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`))
		r.dispatch(ctx, stanza(t, fuzzSenders[2], `<presence to='r@conf.example.org/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`))
		rt.Take()

		el, err := wire.Parse(data, wire.NewScope(wire.NSClient))
		if err != nil {
			return
		}
		st, err := xmpp.NewStanza(el)
		if err != nil {
			return
		}
		// The router delivers only stanzas for this room, stamped with
		// the sender.
		to := rj
		if st.To.Bare().Equal(rj) {
			to = st.To
		}
		r.dispatch(ctx, st.With(fuzzSenders[int(sender)%len(fuzzSenders)], to))

		for _, out := range rt.Take() {
			if _, err := wire.Parse(out.Bytes(), wire.NewScope(wire.NSClient)); err != nil {
				t.Fatalf("the room sent XML that does not parse (%v): %s", err, out.Bytes())
			}
		}
		for full, nick := range r.byJID {
			o := r.occupants[nick]
			if o == nil || !o.hasSession(jid.MustParse(full)) {
				t.Fatalf("session %s indexed under %q, which does not hold it", full, nick)
			}
		}
		for nick, o := range r.occupants {
			if o.nick != nick || len(o.sessions) == 0 {
				t.Fatalf("occupant %q: nick %q, %d sessions", nick, o.nick, len(o.sessions))
			}
			for _, s := range o.sessions {
				if r.byJID[s.String()] != nick {
					t.Fatalf("session %s of %q not indexed", s, nick)
				}
			}
		}
	})
}
