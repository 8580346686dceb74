package xmpptest

import (
	"context"
	"sync"
	"testing"
	"time"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Recorder is an xmpp.Router that keeps what it is given.
type Recorder struct {
	mu  sync.Mutex
	out []*xmpp.Stanza
}

var _ xmpp.Router = (*Recorder)(nil)

// Route implements xmpp.Router.
func (r *Recorder) Route(_ context.Context, st *xmpp.Stanza) {
	r.mu.Lock()
	r.out = append(r.out, st)
	r.mu.Unlock()
}

// Take returns what was routed since the last Take.
func (r *Recorder) Take() []*xmpp.Stanza {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.out
	r.out = nil
	return out
}

// Stanza parses xml, one stanza in jabber:client, or fails the test.
func Stanza(t testing.TB, xml string) *xmpp.Stanza {
	t.Helper()
	el, err := wire.Parse([]byte(xml), wire.NewScope(wire.NSClient))
	if err != nil {
		t.Fatalf("xmpptest: parse %s: %v", xml, err)
	}
	st, err := xmpp.NewStanza(el)
	if err != nil {
		t.Fatalf("xmpptest: stanza %s: %v", xml, err)
	}
	return st
}

// Element parses xml, one element with no namespace in scope (each
// declares its own), or fails the test.
func Element(t testing.TB, xml string) *wire.Element {
	t.Helper()
	el, err := wire.Parse([]byte(xml), wire.NewScope(""))
	if err != nil {
		t.Fatalf("xmpptest: parse %s: %v", xml, err)
	}
	return el
}

// Clock is a manually advanced clock, safe for concurrent use; its Now
// stands in for time.Now.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d ahead.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
