package muc

import (
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

func TestArchivable(t *testing.T) {
	body := func() *wire.Element { return wire.New("body", xmpp.NSClient).SetText("hello") }
	hint := func(name string) *wire.Element { return wire.New(name, xmpp.NSHints) }
	room := jid.MustParse("room@rooms.example.org")
	from := jid.MustParse("room@rooms.example.org/nick")
	for _, tc := range []struct {
		name     string
		children []*wire.Element
		want     bool
	}{
		{"body", []*wire.Element{body()}, true},
		{"subject only", []*wire.Element{wire.New("subject", xmpp.NSClient).SetText("topic")}, false},
		{"chat state only", []*wire.Element{wire.New("composing", "http://jabber.org/protocol/chatstates")}, false},
		{"no-store", []*wire.Element{body(), hint("no-store")}, false},
		{"no-permanent-store", []*wire.Element{body(), hint("no-permanent-store")}, false},
		{"no-copy does not stop archiving", []*wire.Element{body(), hint("no-copy")}, true},
		{"hint name in another namespace", []*wire.Element{body(), wire.New("no-store", "urn:example")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := xmpp.Build(xmpp.KindMessage, xmpp.TypeGroupchat, "m1", from, room, tc.children...)
			if got := archivable(st); got != tc.want {
				t.Fatalf("archivable(%s) = %v, want %v", st.Bytes(), got, tc.want)
			}
		})
	}
}
