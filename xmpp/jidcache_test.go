package xmpp

import (
	"fmt"
	"testing"
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
