package xmpp

import (
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/wire"
)

// IsStanzaIDBy matches a stanza-id by j however 'by' is written, and
// nothing else.
func TestIsStanzaIDBy(t *testing.T) {
	room := jid.MustParse("room@conference.example.org")
	for _, tc := range []struct {
		name string
		el   *wire.Element
		want bool
	}{
		{"by the room", wire.New("stanza-id", NSStanzaID, wire.Attr{Name: "by", Value: "room@conference.example.org"}), true},
		{"by the room, written otherwise", wire.New("stanza-id", NSStanzaID, wire.Attr{Name: "by", Value: "ROOM@Conference.Example.org."}), true},
		{"by another", wire.New("stanza-id", NSStanzaID, wire.Attr{Name: "by", Value: "alice@example.org"}), false},
		{"no by", wire.New("stanza-id", NSStanzaID), false},
		{"origin-id", wire.New("origin-id", NSStanzaID, wire.Attr{Name: "by", Value: "room@conference.example.org"}), false},
		{"another namespace", wire.New("stanza-id", "urn:example", wire.Attr{Name: "by", Value: "room@conference.example.org"}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, js := range []string{"", room.String()} {
				if got := IsStanzaIDBy(tc.el, room, js); got != tc.want {
					t.Errorf("js %q: %v, want %v", js, got, tc.want)
				}
			}
		})
	}
}

func TestSameAddress(t *testing.T) {
	room := jid.MustParse("room@conference.example.org")
	full := jid.MustParse("alice@example.org/Phone")
	cases := []struct {
		s    string
		j    jid.JID
		want bool
	}{
		{"room@conference.example.org", room, true},
		{"Room@Conference.Example.ORG", room, true}, // a spoof spelled differently
		{"room@conference.example.org.", room, true},
		{"room@conference.example.org/x", room, false},
		{"other@conference.example.org", room, false},
		{"room@conference.example.net", room, false},
		{"", room, false},
		{"@bad", room, false},
		{"alice@example.org/Phone", full, true},
		{"ALICE@example.org/Phone", full, true},
		{"alice@example.org/phone", full, false}, // the resource keeps its case
		{"alice@example.org", full, false},
		{"ｒｏｏｍ@conference.example.org", room, true}, // full-width letters map to ASCII
		{"room@xn--exmple-cua.org", jid.MustParse("room@exämple.org"), true},
		{"room@exämple.org", jid.MustParse("room@exämple.org"), true},
	}
	for _, tc := range cases {
		if got := SameAddress(tc.s, tc.j, tc.j.String()); got != tc.want {
			t.Errorf("SameAddress(%q, %s) = %v, want %v", tc.s, tc.j, got, tc.want)
		}
	}
}

// FuzzSameAddress: the shortcut answers as parsing and comparing would.
func FuzzSameAddress(f *testing.F) {
	targets := []jid.JID{
		jid.MustParse("room@conference.example.org"),
		jid.MustParse("alice@example.org/Phone"),
		jid.MustParse("example.org"),
		jid.MustParse("room@exämple.org"),
		jid.MustParse("a@[::1]"),
	}
	for _, s := range []string{"room@conference.example.org", "Room@conference.example.org", "room@conference.example.org.",
		"alice@example.org/Phone", "a@b./c", "[::1]", "a@[::1]", "a@[0::1]", "room@xn--exmple-cua.org",
		"ｒｏｏｍ@conference.example.org", "Example.Org", "a@b/ c"} {
		for k := range targets {
			f.Add(s, uint8(k))
		}
	}
	f.Fuzz(func(t *testing.T, s string, k uint8) {
		j := targets[int(k)%len(targets)]
		p, err := jid.Parse(s)
		want := err == nil && p.Equal(j)
		if got := SameAddress(s, j, j.String()); got != want {
			t.Fatalf("SameAddress(%q, %s) = %v, parse and compare say %v", s, j, got, want)
		}
	})
}
