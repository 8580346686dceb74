package xmpptest

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
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

// HandlerError checks what a handler returned for a request it must
// refuse: a stanza error with condition cond, or, when cond is "", an
// error that is not a stanza error (a failure of the server's own, which
// the router answers with internal-server-error and no detail).
func HandlerError(t testing.TB, res *xmpp.Stanza, err error, cond stanza.Condition) {
	t.Helper()
	var se stanza.Error
	isStanza := errors.As(err, &se)
	switch {
	case err == nil:
		t.Fatalf("answered %v, want an error", res)
	case cond != "" && (!isStanza || se.Condition != cond):
		t.Fatalf("error %v, want %s", err, cond)
	case cond == "" && isStanza:
		t.Fatalf("error %v is a stanza error; a failure of ours must be internal-server-error", err)
	}
}

// Canonical writes an element in a canonical form: {namespace}name, its
// attributes but namespace declarations in order of name, its trimmed
// text and its children. Two elements have equal forms when they are the
// same XML, however prefixes, quotes and redundant namespace
// declarations were written.
func Canonical(e *wire.Element) string {
	var attrs []string
	for _, a := range e.Attrs {
		if a.Name != "xmlns" && !strings.HasPrefix(a.Name, "xmlns:") {
			attrs = append(attrs, a.Name+"="+a.Value)
		}
	}
	slices.Sort(attrs)
	var b strings.Builder
	b.WriteString("{" + e.Space + "}" + e.Name + "[" + strings.Join(attrs, " ") + "](" + strings.TrimSpace(e.Text))
	for _, c := range e.Children {
		b.WriteString(Canonical(c))
	}
	b.WriteString(")")
	return b.String()
}

// OpenStore opens a store in a temporary directory, closed when the test
// ends, with an account for each of accounts (bare JIDs; their
// credentials log nobody in): the sub-stores that keep data only for
// accounts need them.
func OpenStore(t testing.TB, accounts ...jid.JID) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"), store.Options{})
	if err != nil {
		t.Fatalf("xmpptest: open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	cred := func(n int) store.ScramCredential {
		return store.ScramCredential{Salt: []byte("salt"), Iterations: 4096, StoredKey: make([]byte, n), ServerKey: make([]byte, n)}
	}
	for _, a := range accounts {
		u := store.User{Host: a.Domainpart(), Local: a.Localpart(), SHA1: cred(sha1.Size), SHA256: cred(sha256.Size), Created: time.Now()}
		if err := db.Users().Create(t.Context(), u); err != nil {
			t.Fatalf("xmpptest: create %s: %v", a, err)
		}
	}
	return db
}
