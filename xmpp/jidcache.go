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
