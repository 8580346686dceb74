package xmpp

import (
	"strings"

	"mellium.im/xmpp/jid"
)

// JIDCache remembers the last few addresses one connection parsed, so that
// a conversation does not pay PRECIS normalisation (RFC 7622) on every
// stanza. It is not safe for concurrent use; each connection owns one. The
// zero value is ready and small: the slots are allocated with the first
// address stored, so a session that never addresses anyone holds none.
type JIDCache struct {
	slots *jidCacheSlots
	next  int
}

type jidCacheSlots struct {
	keys [8]string
	vals [8]jid.JID
}

// Parse returns the parsed address, from the cache when it was seen
// recently.
func (c *JIDCache) Parse(s string) (jid.JID, error) {
	if c == nil {
		return jid.Parse(s)
	}
	sl := c.slots
	if sl != nil && s != "" {
		for i := range sl.keys {
			if sl.keys[i] == s {
				return sl.vals[i], nil
			}
		}
	}
	j, err := jid.Parse(s)
	if err != nil {
		return j, err
	}
	if sl == nil {
		sl = new(jidCacheSlots)
		c.slots = sl
	}
	// Clone: s may alias a stanza's buffer, which the cache must not pin.
	sl.keys[c.next], sl.vals[c.next] = strings.Clone(s), j
	c.next = (c.next + 1) % len(sl.keys)
	return j, nil
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
