package xmpp

import (
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"
)

func TestJIDCache(t *testing.T) {
	var c JIDCache
	cases := []struct {
		in, want string
		bad      bool
	}{
		{"Alice@Example.COM/Phone", "alice@example.com/Phone", false},
		{"Alice@Example.COM/Phone", "alice@example.com/Phone", false}, // cached
		{"bob@localhost", "bob@localhost", false},
		{"@bad", "", true},
		{"", "", true},
	}
	for _, tc := range cases {
		j, err := c.Parse(tc.in)
		if tc.bad != (err != nil) {
			t.Fatalf("Parse(%q) err = %v", tc.in, err)
		}
		if !tc.bad && j.String() != tc.want {
			t.Fatalf("Parse(%q) = %s, want %s", tc.in, j, tc.want)
		}
	}
	// More addresses than slots: every answer stays right.
	for i := 0; i < 40; i++ {
		s := fmt.Sprintf("u%d@localhost/r", i%11)
		j, err := c.Parse(s)
		if err != nil || j.String() != s {
			t.Fatalf("Parse(%q) = %s, %v", s, j, err)
		}
	}
	var nilCache *JIDCache
	if j, err := nilCache.Parse("a@b"); err != nil || j.String() != "a@b" {
		t.Fatalf("nil cache: %s %v", j, err)
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
