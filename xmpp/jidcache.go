package xmpp

import (
	"strings"

	"mellium.im/xmpp/jid"
)

// JIDCache remembers the last few addresses one connection parsed, so that
// a conversation does not pay PRECIS normalisation (RFC 7622) on every
// stanza. It is not safe for concurrent use; each connection owns one.
type JIDCache struct {
	keys [8]string
	vals [8]jid.JID
	next int
}

// Parse returns the parsed address, from the cache when it was seen
// recently.
func (c *JIDCache) Parse(s string) (jid.JID, error) {
	if c == nil {
		return jid.Parse(s)
	}
	for i := range c.keys {
		if c.keys[i] == s && s != "" {
			return c.vals[i], nil
		}
	}
	j, err := jid.Parse(s)
	if err != nil {
		return j, err
	}
	// Clone: s may alias a stanza's buffer, which the cache must not pin.
	c.keys[c.next], c.vals[c.next] = strings.Clone(s), j
	c.next = (c.next + 1) % len(c.keys)
	return j, nil
}
