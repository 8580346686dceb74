package blocking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Namespaces.
const (
	NS       = "urn:xmpp:blocking"
	NSErrors = "urn:xmpp:blocking:errors"
)

// MaxItems bounds a blocklist.
const MaxItems = 1000

// Router is what the module needs of the router.
type Router interface {
	xmpp.Router
	xmpp.Sessions
}

// Module implements blocking.
type Module struct {
	store  *store.Blocklists
	router Router
	subs   Subscriptions
	log    *slog.Logger
	pushID atomic.Uint64

	mu sync.RWMutex
	// cache holds loaded blocklists by owner (nil slice: empty list).
	cache map[string][]string
	// gen counts blocklist changes, so that a list loaded while one was
	// changed is not cached over the change.
	gen uint64
	// interested: resources that fetched their blocklist (§3.2).
	interested map[string]bool
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module.
// Subscriptions tells whether a contact may see a user's presence.
type Subscriptions interface {
	IsSubscriber(ctx context.Context, user, contact jid.JID) (bool, error)
}

// SetSubscriptions gives the module presence subscription information, so
// that blocking sends unavailable presence and unblocking the current
// presence only to contacts allowed to see it (§3.3, §3.4).
func (m *Module) SetSubscriptions(s Subscriptions) { m.subs = s }

func (m *Module) subscribed(ctx context.Context, user, contact jid.JID) bool {
	if m.subs == nil {
		return true
	}
	ok, err := m.subs.IsSubscriber(ctx, user, contact)
	return err == nil && ok
}

func New(st *store.Blocklists, router Router, log *slog.Logger) (*Module, error) {
	if st == nil || router == nil {
		return nil, errors.New("blocking: missing dependency")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Module{store: st, router: router, log: log, cache: map[string][]string{}, interested: map[string]bool{}}, nil
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "blocking" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, hooks *xmpp.Hooks) error {
	t := xmpp.TargetAccount
	reg.AddFeature(xmpp.TargetHost|xmpp.TargetAccount, NS)
	if err := reg.HandleIQ(m.Name(), t, xmpp.TypeGet, NS, "blocklist", m.get); err != nil {
		return err
	}
	if err := reg.HandleIQ(m.Name(), t, xmpp.TypeSet, NS, "block", m.change(true)); err != nil {
		return err
	}
	if err := reg.HandleIQ(m.Name(), t, xmpp.TypeSet, NS, "unblock", m.change(false)); err != nil {
		return err
	}
	hooks.Inbound.Add(m.inbound)
	hooks.UserSend.Add(m.outbound)
	hooks.SessionClosed.Add(func(_ context.Context, ev xmpp.SessionEvent) {
		m.mu.Lock()
		delete(m.interested, ev.JID.String())
		m.mu.Unlock()
	})
	return nil
}

// list returns the owner's blocklist, loading it once.
func (m *Module) list(ctx context.Context, owner string) ([]string, error) {
	m.mu.RLock()
	l, ok := m.cache[owner]
	gen := m.gen
	m.mu.RUnlock()
	if ok {
		return l, nil
	}
	l, err := m.store.List(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("blocking: list %s: %w", owner, err)
	}
	m.mu.Lock()
	// A change since the load may have been read before it: keep such a
	// list out of the cache, the next lookup loads again.
	if m.gen == gen {
		if len(m.cache) >= maxCached {
			// Lookups for any address of a local domain land here:
			// start over rather than grow without bound.
			m.cache = map[string][]string{}
		}
		m.cache[owner] = l
	}
	m.mu.Unlock()
	return l, nil
}

// exempt reports whether a stanza between from and to is outside blocking:
// between an account's own resources, or between a user and the user's own
// server (a user blocking the own domain blocks its other users, not the
// server's answers and pushes).
func exempt(from, to jid.JID) bool {
	if from.Bare().Equal(to.Bare()) {
		return true
	}
	server := func(j, of jid.JID) bool {
		return j.Localpart() == "" && j.Resourcepart() == "" && j.Domainpart() == of.Domainpart()
	}
	return server(from, to) || server(to, from)
}

// blocked reports whether j matches an item (XEP-0191 §6, consistent with
// XEP-0016 §2.1): a full JID matches only itself, a bare JID any of its
// resources, domain/resource only that resource of the domain, and a domain
// the domain itself, every address at it and every address at a subdomain
// of it.
func blocked(items []string, j jid.JID) bool {
	if len(items) == 0 || xmpp.IsZero(j) {
		return false
	}
	full, bare := j.String(), j.Bare().String()
	domain := j.Domainpart()
	domRes := domain + "/" + j.Resourcepart()
	for _, it := range items {
		switch {
		case it == full || it == bare || it == domain || (j.Resourcepart() != "" && it == domRes):
			return true
		case !strings.ContainsAny(it, "@/") && strings.HasSuffix(domain, "."+it):
			return true
		}
	}
	return false
}

func (m *Module) get(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !st.ToOwnAccount() {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	l, err := m.list(ctx, st.From.Bare().String())
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.interested[st.From.String()] = true
	m.mu.Unlock()
	q := wire.New("blocklist", NS)
	for _, it := range l {
		q.AddChild(wire.New("item", NS, wire.Attr{Name: "jid", Value: it}))
	}
	return st.Result(q), nil
}

func (m *Module) change(block bool) xmpp.IQHandler {
	return func(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
		if !st.ToOwnAccount() {
			return nil, xmpp.StanzaError(stanza.Forbidden, "")
		}
		owner := st.From.Bare().String()
		var items []string
		for _, c := range st.Payload().Children {
			if c.Name != "item" || c.Space != NS {
				continue
			}
			j, err := jid.Parse(c.AttrValue("jid"))
			if err != nil || c.AttrValue("jid") == "" {
				return nil, xmpp.StanzaError(stanza.JIDMalformed, "")
			}
			items = append(items, j.String())
		}
		if block && len(items) == 0 {
			// §3.3: a block without items is a bad request.
			return nil, xmpp.StanzaError(stanza.BadRequest, "")
		}
		before, err := m.list(ctx, owner)
		if err != nil {
			return nil, err
		}
		if block {
			if len(before)+len(items) > MaxItems {
				return nil, xmpp.StanzaError(stanza.ResourceConstraint, "blocklist full")
			}
			err = m.store.Add(ctx, owner, items...)
		} else {
			err = m.store.Remove(ctx, owner, items...)
		}
		if err != nil {
			return nil, fmt.Errorf("blocking: update %s: %w", owner, err)
		}
		m.mu.Lock()
		delete(m.cache, owner)
		m.gen++
		m.mu.Unlock()
		m.router.Route(ctx, st.Result(nil))
		m.push(ctx, st.From.Bare(), st.Payload())
		user := st.From.Bare()
		if !block && len(items) == 0 {
			items = before // unblock all
		}
		for _, it := range items {
			to, err := jid.Parse(it)
			if err != nil || to.Localpart() == "" || !m.subscribed(ctx, user, to) {
				continue
			}
			for _, r := range m.router.Sessions(user) {
				switch {
				case !r.Available:
				case block:
					// §3.3: a blocked contact sees the user go offline.
					m.router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeUnavailable, "", r.JID, to))
				case r.Presence != nil:
					// §3.4: an unblocked contact sees the user again.
					m.router.Route(ctx, r.Presence.With(r.JID, to))
				}
			}
		}
		return nil, nil
	}
}

// push sends the change to the resources that fetched the blocklist (§3.3).
func (m *Module) push(ctx context.Context, bare jid.JID, payload *wire.Element) {
	for _, r := range m.router.Sessions(bare) {
		m.mu.RLock()
		ok := m.interested[r.JID.String()]
		m.mu.RUnlock()
		if !ok {
			continue
		}
		id := "block" + strconv.FormatUint(m.pushID.Add(1), 10)
		m.router.Route(ctx, xmpp.Build(xmpp.KindIQ, xmpp.TypeSet, id, bare, r.JID, payload))
	}
}

// inbound drops stanzas from blocked entities to a local user (§3.3), and
// the presence the server sends on a local user's behalf (broadcasts, probe
// answers) to entities the user blocked (§3.3: the user's server must not
// route the user's stanzas to them).
func (m *Module) inbound(ctx context.Context, st *xmpp.Stanza) bool {
	if xmpp.IsZero(st.To) || xmpp.IsZero(st.From) || exempt(st.From, st.To) {
		return false
	}
	if m.presenceOut(ctx, st) {
		return true
	}
	if st.To.Localpart() == "" || !m.router.IsLocal(st.To.Domainpart()) {
		return false
	}
	l, err := m.list(ctx, st.BareTo())
	if err != nil {
		m.log.Error("blocking: load", xmpp.LogJID, st.To.String(), xmpp.LogErr, err)
		return false
	}
	if !blocked(l, st.From) {
		return false
	}
	if st.Kind == xmpp.KindPresence {
		return true
	}
	// Errors and IQ responses are dropped unanswered (ErrorReply).
	if e := st.ErrorReply(xmpp.StanzaError(stanza.ServiceUnavailable, "")); e != nil {
		m.router.Route(ctx, e)
	}
	return true
}

// presenceOut reports whether st is available presence or a probe the
// server sends on behalf of a local user to an entity the user blocked.
// Unavailable presence passes: it is what the blocked entity must see
// (§3.3), and the user appears offline to it anyway.
func (m *Module) presenceOut(ctx context.Context, st *xmpp.Stanza) bool {
	if st.Kind != xmpp.KindPresence || (st.Type != "" && st.Type != xmpp.TypeProbe) ||
		st.From.Localpart() == "" || !m.router.IsLocal(st.From.Domainpart()) {
		return false
	}
	return m.Blocks(ctx, st.From, st.To)
}

// Blocks reports whether user's blocklist covers contact. A blocklist
// that cannot be read is logged and blocks nothing.
func (m *Module) Blocks(ctx context.Context, user, contact jid.JID) bool {
	l, err := m.list(ctx, user.Bare().String())
	if err != nil {
		m.log.Error("blocking: load", xmpp.LogJID, user.String(), xmpp.LogErr, err)
		return false
	}
	return blocked(l, contact)
}

// outbound refuses the user's stanzas to blocked entities (§3.3).
func (m *Module) outbound(ctx context.Context, st *xmpp.Stanza) bool {
	if xmpp.IsZero(st.To) || exempt(st.From, st.To) {
		return false
	}
	if !m.Blocks(ctx, st.From, st.To) {
		return false
	}
	if st.Kind == xmpp.KindPresence {
		return true
	}
	// The application condition goes inside <error/>, of type cancel
	// as in the example of §3.3: resending cannot help. Errors and IQ
	// responses are dropped unanswered (ErrorReplyApp returns nil).
	se := xmpp.StanzaError(stanza.NotAcceptable, "")
	se.Type = stanza.Cancel
	reply := st.ErrorReplyApp(se, wire.New("blocked", NSErrors))
	if reply == nil {
		return true
	}
	// Straight to the sending session: routed, the error would come
	// from the blocked entity and be dropped by inbound.
	for _, r := range m.router.Sessions(st.From.Bare()) {
		if r.JID.Equal(st.From) {
			r.Session.Deliver(reply)
		}
	}
	return true
}

// maxCached bounds the cache of loaded blocklists.
const maxCached = 100000

// AccountsChanged forgets the cached blocklists: an account was created or
// deleted (a re-created account must not inherit a deleted one's list).
func (m *Module) AccountsChanged(string) {
	m.mu.Lock()
	m.gen++
	m.cache = map[string][]string{}
	m.mu.Unlock()
}
