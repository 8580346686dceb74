package offline

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Namespaces.
const (
	NSDelay    = "urn:xmpp:delay"
	NSHints    = xmpp.NSHints
	NSOffline  = "msgoffline" // XEP-0160 §4 disco feature
	NSChatStat = xmpp.NSChatStates
)

// DefaultQuota is the per-user limit when none is configured.
const DefaultQuota = 1000

// Sessions finds a user's sessions.
type Sessions interface {
	xmpp.Sessions
}

// Options configure the module.
type Options struct {
	// Quota returns the bound on stored messages per user of a host
	// (nil: DefaultQuota; 0: no storage; negative: unlimited).
	Quota  func(host string) int
	Logger *slog.Logger
	Now    func() time.Time
}

// Module is offline storage.
type Module struct {
	opts     Options
	store    *store.Offline
	sessions Sessions
	log      *slog.Logger
	// hooks are the server's, for OfflineStored (set by Register).
	hooks *xmpp.Hooks

	// mu guards delivering: the accounts whose stored messages are
	// being delivered, one delivery at a time per account (deliver),
	// each with the resource a delivery asked for meanwhile (zero if
	// none), served when the running one ends.
	mu         sync.Mutex
	delivering map[string]xmpp.Resource
	peak       xmpp.MapPeak
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module.
func New(opts Options, st *store.Offline, sessions Sessions) (*Module, error) {
	if st == nil || sessions == nil {
		return nil, errors.New("offline: missing dependency")
	}
	if opts.Quota == nil {
		opts.Quota = func(string) int { return DefaultQuota }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Module{opts: opts, store: st, sessions: sessions, log: opts.Logger, delivering: make(map[string]xmpp.Resource)}, nil
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "offline" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, hooks *xmpp.Hooks) error {
	reg.AddFeature(xmpp.TargetHost, NSOffline)
	m.hooks = hooks
	hooks.Undeliverable.Add(m.storeMessage)
	// Every available presence, not only the initial one: a resource
	// that raises its priority from negative to non-negative gets what
	// was stored meanwhile (XEP-0160 §3).
	hooks.PresenceBroadcast.Add(m.presence)
	return nil
}

// storable reports whether a message is worth keeping: it has content a
// person reads (XEP-0160 §3, XEP-0334 §4), not just a chat state. A
// no-store hint forbids even this temporary storage (XEP-0334 §4.2); a
// no-permanent-store hint (§4.1) does not (§3.3 names offline delivery as
// the storage it allows), and the archive keeps no copy of such a message.
func storable(el *wire.Element) (keep, silent bool) {
	hasContent := false
	for _, c := range el.Children {
		switch {
		case c.Space == NSHints:
			switch c.Name {
			case "no-store":
				return false, true
			case "store":
				return true, false
			}
			// Any other hint (no-permanent-store, no-copy) is
			// neither content nor its absence: the other children
			// decide.
		case c.Space == NSChatStat, c.Space == "urn:xmpp:receipts", c.Space == xmpp.NSChatMarkers,
			c.Name == "thread" && c.Space == xmpp.NSClient:
		default:
			hasContent = true
		}
	}
	return hasContent, !hasContent
}

// storeMessage is the Undeliverable hook: it stores the message with a
// delay stamp, or drops a content-less one silently; over quota it lets
// the router bounce it.
func (m *Module) storeMessage(ctx context.Context, st *xmpp.Stanza) bool {
	if st.Kind != xmpp.KindMessage {
		return false
	}
	keep, silent := storable(st.El)
	if !keep {
		return silent
	}
	now := m.opts.Now().UTC()
	delay := wire.New("delay", NSDelay,
		wire.Attr{Name: "from", Value: st.To.Domainpart()},
		wire.Attr{Name: "stamp", Value: now.Format("2006-01-02T15:04:05.000Z")},
	).SetText("Offline Storage")
	stamped := st.WithElement(st.El.Append(delay))
	owner := st.To.Bare().String()
	quota := m.opts.Quota(st.To.Domainpart())
	if quota == 0 {
		return false // storage disabled: the router bounces it
	}
	if _, err := m.store.Put(ctx, owner, stamped.Bytes(), now, quota); err != nil {
		if errors.Is(err, store.ErrQuota) {
			m.log.Info("offline storage full", xmpp.LogJID, owner)
		} else {
			m.log.Error("offline: store", xmpp.LogJID, owner, xmpp.LogErr, err)
		}
		return false
	}
	if m.hooks != nil {
		m.hooks.OfflineStored.Run(ctx, stamped)
	}
	// A resource may have become available with a non-negative priority
	// between the router's attempt and the Put, and have found nothing
	// to deliver then: hand the message over now rather than at its
	// next presence.
	if r, ok := bestResource(m.sessions.Sessions(st.To.Bare())); ok {
		m.deliver(ctx, r)
	}
	return true
}

// bestResource returns the available resource with the highest
// non-negative priority.
func bestResource(resources []xmpp.Resource) (xmpp.Resource, bool) {
	var best xmpp.Resource
	found := false
	for _, r := range resources {
		if r.Available && r.Priority >= 0 && (!found || r.Priority > best.Priority) {
			best, found = r, true
		}
	}
	return best, found
}

// presence is the PresenceBroadcast hook: it delivers the stored messages
// to a resource that is available with a non-negative priority
// (XEP-0160 §3), whether by its initial presence or by a later one that
// raised its priority.
func (m *Module) presence(ctx context.Context, st *xmpp.Stanza) {
	if st.Type != "" {
		return
	}
	for _, r := range m.sessions.Sessions(st.From.Bare()) {
		if r.JID.Equal(st.From) && r.Available && r.Priority >= 0 {
			m.deliver(ctx, r)
			return
		}
	}
}

// deliver sends the user's stored messages to the resource target, oldest
// first; those it cannot take stay stored, and go to another available
// resource if there is one now.
//
// An account's deliveries run one at a time. Two can be asked for at once
// (a resource's presence, and a message stored just after the router
// found no available resource): each would take what was stored when it
// began, and their messages would reach the client interleaved, out of
// order. A delivery asked for while one runs is left to the one running,
// which serves it when it ends (the last resource asked for, with what
// was stored by then).
func (m *Module) deliver(ctx context.Context, target xmpp.Resource) {
	owner := target.JID.Bare().String()
	// Left to a delivery that runs whatever is stored now: it may hold
	// the messages (taken, not yet put back after a refusal).
	m.mu.Lock()
	if _, running := m.delivering[owner]; running {
		m.delivering[owner] = target
		m.mu.Unlock()
		return
	}
	m.delivering[owner] = xmpp.Resource{}
	m.peak.Grew(len(m.delivering))
	m.mu.Unlock()
	ended := false
	defer func() {
		// A panic recovered above must not leave the account's
		// deliveries waiting for one that is gone.
		if !ended {
			m.mu.Lock()
			m.endLocked(owner)
			m.mu.Unlock()
		}
	}()
	for ok := true; ; {
		if ok {
			m.deliverTo(ctx, owner, target, true)
		}
		m.mu.Lock()
		next := m.delivering[owner]
		if next.Session == nil {
			// Under the lock that found nothing asked for: a
			// request after it starts a delivery of its own.
			m.endLocked(owner)
			ended = true
			m.mu.Unlock()
			return
		}
		m.delivering[owner] = xmpp.Resource{}
		m.mu.Unlock()
		// Asked for a while ago: the resource may have gone
		// unavailable, or lowered its priority, since (XEP-0160 §3).
		// With none to deliver to, the loop still looks again for a
		// request that came meanwhile.
		target, ok = m.current(next)
	}
}

// endLocked ends owner's delivery; m.mu is held.
func (m *Module) endLocked(owner string) {
	delete(m.delivering, owner)
	m.delivering = xmpp.CompactMap(m.delivering, &m.peak)
}

// current returns r as it is now if it is still available with a
// non-negative priority, else the account's best resource that is.
func (m *Module) current(r xmpp.Resource) (xmpp.Resource, bool) {
	all := m.sessions.Sessions(r.JID.Bare())
	for _, now := range all {
		if now.Session == r.Session && now.Available && now.Priority >= 0 {
			return now, true
		}
	}
	return bestResource(all)
}

// stored reports whether anything is stored for owner. Most presences
// find nothing: looking first spares them Take's write transaction.
func (m *Module) stored(ctx context.Context, owner string) bool {
	n, err := m.store.Count(ctx, owner)
	if err != nil {
		m.log.Error("offline: count", xmpp.LogJID, owner, xmpp.LogErr, err)
	}
	return err == nil && n > 0
}

// deliverTo is deliver, with the account's delivery already begun; after
// a refusal it tries another resource only if again is set, so that two
// sessions that both go away cannot pass the messages back and forth.
func (m *Module) deliverTo(ctx context.Context, owner string, target xmpp.Resource, again bool) {
	if !m.stored(ctx, owner) {
		return
	}
	msgs, err := m.store.Take(ctx, owner)
	if err != nil {
		m.log.Error("offline: take", xmpp.LogJID, owner, xmpp.LogErr, err)
		return
	}
	for i, msg := range msgs {
		el, err := wire.Parse(msg.Stanza, wire.NewScope(wire.NSClient))
		if err != nil {
			m.log.Error("offline: stored message unreadable", xmpp.LogJID, owner, xmpp.LogErr, err)
			continue
		}
		p, err := xmpp.NewStanza(el)
		if err != nil {
			continue
		}
		if !target.Session.Deliver(p) {
			// The session went away: keep the rest for next time,
			// in their place before what was stored meanwhile.
			if err := m.store.Restore(ctx, owner, msgs[i:]); err != nil {
				m.log.Error("offline: restore", xmpp.LogJID, owner, xmpp.LogErr, err)
				return
			}
			// A resource that became available while they were
			// taken found nothing stored (its presence's delivery
			// came between Take and Restore): without this they
			// would wait for its next presence.
			if !again {
				return
			}
			others := slices.DeleteFunc(m.sessions.Sessions(target.JID.Bare()), func(r xmpp.Resource) bool { return r.Session == target.Session })
			if r, ok := bestResource(others); ok {
				m.deliverTo(ctx, owner, r, false)
			}
			return
		}
	}
}
