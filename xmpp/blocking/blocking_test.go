package blocking

import (
	"testing"

	"mellium.im/xmpp/jid"
)

// TestBlockedMatching is the JID matching of XEP-0191 §6 (XEP-0016 §2.1).
func TestBlockedMatching(t *testing.T) {
	cases := []struct {
		name  string
		items []string
		jid   string
		want  bool
	}{
		{"empty list", nil, "romeo@example.net/orchard", false},
		{"full JID: same", []string{"romeo@example.net/orchard"}, "romeo@example.net/orchard", true},
		{"full JID: other resource", []string{"romeo@example.net/orchard"}, "romeo@example.net/garden", false},
		{"full JID: bare address", []string{"romeo@example.net/orchard"}, "romeo@example.net", false},
		{"bare JID: any resource", []string{"romeo@example.net"}, "romeo@example.net/orchard", true},
		{"bare JID: itself", []string{"romeo@example.net"}, "romeo@example.net", true},
		{"bare JID: other user", []string{"romeo@example.net"}, "benvolio@example.net", false},
		{"domain/resource: same", []string{"example.net/bot"}, "example.net/bot", true},
		// XEP-0016 §2.1 derives domain/resource from any address (an
		// occupant nick in every room of a service).
		{"domain/resource: user with that resource", []string{"example.net/bot"}, "romeo@example.net/bot", true},
		{"domain/resource: other resource", []string{"example.net/bot"}, "romeo@example.net/orchard", false},
		{"domain: itself", []string{"example.net"}, "example.net", true},
		{"domain: user", []string{"example.net"}, "romeo@example.net/orchard", true},
		{"domain: domain/resource", []string{"example.net"}, "example.net/bot", true},
		{"domain: subdomain", []string{"example.net"}, "room@chat.example.net/nick", true},
		{"domain: suffix that is no subdomain", []string{"example.net"}, "romeo@badexample.net", false},
		{"domain: parent domain", []string{"chat.example.net"}, "romeo@example.net", false},
		{"bare JID does not cover the subdomain", []string{"romeo@example.net"}, "romeo@chat.example.net", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := blocked(tc.items, jid.MustParse(tc.jid)); got != tc.want {
				t.Errorf("blocked(%v, %s) = %v, want %v", tc.items, tc.jid, got, tc.want)
			}
		})
	}
}

// TestExempt: an account's own resources and its own server are never
// blocked, whatever the list says.
func TestExempt(t *testing.T) {
	cases := []struct {
		from, to string
		want     bool
	}{
		{"juliet@capulet.lit/balcony", "juliet@capulet.lit/chamber", true},
		{"juliet@capulet.lit", "juliet@capulet.lit/chamber", true},
		{"capulet.lit", "juliet@capulet.lit/chamber", true},
		{"juliet@capulet.lit/chamber", "capulet.lit", true},
		{"romeo@capulet.lit/orchard", "juliet@capulet.lit/chamber", false},
		{"montague.lit", "juliet@capulet.lit/chamber", false},
		{"capulet.lit/bot", "juliet@capulet.lit/chamber", false},
		{"juliet@capulet.lit/chamber", "montague.lit", false},
	}
	for _, tc := range cases {
		if got := exempt(jid.MustParse(tc.from), jid.MustParse(tc.to)); got != tc.want {
			t.Errorf("exempt(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}
