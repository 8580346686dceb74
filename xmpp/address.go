package xmpp

import (
	"strings"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/wire"
)

// NSStanzaID is the namespace of XEP-0359 stanza and origin ids.
const NSStanzaID = "urn:xmpp:sid:0"

// IsStanzaIDBy reports whether c is a XEP-0359 stanza-id that claims to be
// by j, however its 'by' address is written (SameAddress): only j may
// stamp those (§3), so a copy from anyone else is a spoof to remove. js
// is j.String(), or "" to have it formatted when c is a stanza-id.
func IsStanzaIDBy(c *wire.Element, j jid.JID, js string) bool {
	if c.Name != "stanza-id" || c.Space != NSStanzaID {
		return false
	}
	if js == "" {
		js = j.String()
	}
	return SameAddress(c.AttrValue("by"), j, js)
}

// SameAddress reports whether s, parsed as a JID, is j, whose string form
// is js. It pays PRECIS normalisation (RFC 7622 §3) only for a string that
// normalisation could change: s equal to js is j, and an ASCII string with
// no upper-case letter, no trailing dot on its domain, no IDNA label and no
// IP literal is its own normal form, so it is j only when it equals js.
// That leaves the parse to the rare spoof or odd spelling, which is what a
// filter comparing a 'by' or 'jid' attribute on every delivery needs.
func SameAddress(s string, j jid.JID, js string) bool {
	if s == js {
		return true
	}
	if canonicalASCII(s) {
		return false
	}
	p, err := jid.Parse(s)
	return err == nil && p.Equal(j)
}

// canonicalASCII reports whether s, if it is a valid JID at all, is
// already in the form jid.Parse gives it.
func canonicalASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || 'A' <= c && c <= 'Z' || c == '[' {
			return false
		}
	}
	return !strings.HasSuffix(s, ".") && !strings.Contains(s, "./") && !strings.Contains(s, "xn--")
}
