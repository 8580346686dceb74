package presence

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Router is what presence needs of the router and session manager.
type Router interface {
	xmpp.Router
	xmpp.Sessions
}

// UserDirectory tells whether a local account exists.
type UserDirectory interface {
	Exists(ctx context.Context, host, local string) (bool, error)
}

// Contacts answers who is subscribed to whom (the roster module, with
// shared contacts included).
type Contacts interface {
	// Subscribers receive the user's presence.
	Subscribers(ctx context.Context, user jid.JID) ([]jid.JID, error)
	// Subscriptions are the contacts whose presence the user receives.
	Subscriptions(ctx context.Context, user jid.JID) ([]jid.JID, error)
	// IsSubscriber reports whether contact may see user's presence.
	IsSubscriber(ctx context.Context, user, contact jid.JID) (bool, error)
}

// Deps are the module's collaborators.
type Deps struct {
	Contacts Contacts
	Activity *store.Activities
	// Overrides holds presence set from outside (optional).
	Overrides *store.PresenceOverrides
	Router    Router
	Users     UserDirectory
	Logger    *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Module implements presence distribution.
type Module struct {
	deps Deps
	log  *slog.Logger

	mu sync.Mutex
	// directed maps a sender's full JID to the addresses it sent
	// directed available presence to (RFC 6121 §4.6), so that they get
	// its unavailable presence.
	directed map[string]map[string]jid.JID
	// overrides mirrors the stored overrides by bare JID.
	overrides map[string]store.PresenceOverride
	// original is each available resource's own last presence, before
	// any override.
	original     map[string]*xmpp.Stanza
	originalPeak xmpp.MapPeak // compacts original (xmpp.CompactMap)
}

var _ xmpp.Module = (*Module)(nil)

// New returns the presence module.
func New(deps Deps) (*Module, error) {
	if deps.Contacts == nil || deps.Activity == nil || deps.Router == nil || deps.Users == nil {
		return nil, errors.New("presence: missing dependency")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Module{deps: deps, log: deps.Logger, directed: map[string]map[string]jid.JID{},
		overrides: map[string]store.PresenceOverride{}, original: map[string]*xmpp.Stanza{}}, nil
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "presence" }

// Register implements xmpp.Module.
func (m *Module) Register(_ *xmpp.Registry, hooks *xmpp.Hooks) error {
	if err := m.loadOverrides(context.Background()); err != nil {
		return err
	}
	if m.deps.Overrides != nil {
		hooks.BroadcastPresence.Add(m.transform)
	}
	hooks.PresenceBroadcast.Add(m.broadcast)
	hooks.InitialPresence.Add(m.probeContacts)
	hooks.PresenceIn.Add(m.presenceIn)
	hooks.UserSend.Add(m.userSend)
	hooks.SessionClosed.Add(m.sessionClosed)
	return nil
}

// sessionClosed sends unavailable presence to the entities a session that
// never broadcast presence sent directed presence to (RFC 6121 §4.6.3).
func (m *Module) sessionClosed(ctx context.Context, ev xmpp.SessionEvent) {
	m.mu.Lock()
	targets := m.directed[ev.JID.String()]
	delete(m.directed, ev.JID.String())
	delete(m.original, ev.JID.String())
	m.original = xmpp.CompactMap(m.original, &m.originalPeak)
	m.mu.Unlock()
	for _, to := range targets {
		m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeUnavailable, "", ev.JID, to))
	}
}

// broadcast sends a resource's broadcast presence to the contacts
// subscribed to the user (RFC 6121 §4.2.2, §4.4.2, §4.5.2) and, for
// unavailable presence, to the entities it sent directed presence to
// (§4.6.3).
func (m *Module) broadcast(ctx context.Context, st *xmpp.Stanza) {
	user := st.From.Bare()
	subscribers, err := m.deps.Contacts.Subscribers(ctx, user)
	if err != nil {
		m.log.Error("presence: roster", xmpp.LogJID, user.String(), xmpp.LogErr, err)
		return
	}
	sent := map[string]bool{}
	for _, contact := range subscribers {
		addr := contact.String()
		sent[addr] = true
		m.deps.Router.Route(ctx, st.WithTo(contact, addr))
	}
	if st.Type != xmpp.TypeUnavailable {
		return
	}
	m.mu.Lock()
	targets := m.directed[st.From.String()]
	delete(m.directed, st.From.String())
	m.mu.Unlock()
	for _, to := range targets {
		if !sent[to.Bare().String()] {
			m.deps.Router.Route(ctx, st.With(st.From, to))
		}
	}
	// The last resource going offline leaves its unavailable presence
	// for probes (§4.3.2) and last activity (XEP-0012).
	for _, r := range m.deps.Router.Sessions(user) {
		if r.Available && !r.JID.Equal(st.From) {
			return
		}
	}
	act := store.Activity{LastLogout: m.deps.Now(), Status: append([]byte(nil), st.With(st.From, jid.JID{}).Bytes()...)}
	if err := m.deps.Activity.Set(ctx, user.String(), act); err != nil {
		m.log.Error("presence: store last presence", xmpp.LogJID, user.String(), xmpp.LogErr, err)
	}
}

// probeContacts sends probes for the contacts the user is subscribed to,
// when a resource becomes available (RFC 6121 §4.2.2). The user's own
// other resources are not probed: the router gives the new resource their
// presence.
func (m *Module) probeContacts(ctx context.Context, st *xmpp.Stanza) {
	user := st.From.Bare()
	contacts, err := m.deps.Contacts.Subscriptions(ctx, user)
	if err != nil {
		m.log.Error("presence: roster", xmpp.LogJID, user.String(), xmpp.LogErr, err)
		return
	}
	for _, contact := range contacts {
		// From the full JID, so that the answers reach only the new
		// resource (§4.3.1 allows either).
		m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeProbe, "", st.From, contact))
	}
}

// presenceIn answers probes on behalf of local users (RFC 6121 §4.3.2).
func (m *Module) presenceIn(ctx context.Context, st *xmpp.Stanza) bool {
	if st.Type != xmpp.TypeProbe {
		return false
	}
	user, prober := st.To.Bare(), st.From
	if xmpp.IsZero(prober) {
		return true
	}
	exists, err := m.deps.Users.Exists(ctx, user.Domainpart(), user.Localpart())
	if err != nil {
		m.log.Error("presence: user lookup", xmpp.LogJID, user.String(), xmpp.LogErr, err)
		return true
	}
	if !exists {
		m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeUnsubscribed, "", user, prober.Bare()))
		return true
	}
	ok, err := m.deps.Contacts.IsSubscriber(ctx, user, prober)
	if err != nil {
		m.log.Error("presence: roster item", xmpp.LogJID, user.String(), xmpp.LogErr, err)
		return true
	}
	if !ok {
		// Not subscribed: reveal nothing; "unsubscribed" lets the
		// prober's server correct its state (§4.3.2).
		m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeUnsubscribed, "", user, prober.Bare()))
		return true
	}
	answered := false
	for _, r := range m.deps.Router.Sessions(user) {
		if r.Available && r.Presence != nil {
			m.deps.Router.Route(ctx, r.Presence.With(r.JID, prober))
			answered = true
		}
	}
	if answered {
		return true
	}
	act, err := m.deps.Activity.Get(ctx, user.String())
	if err == nil && len(act.Status) > 0 {
		if el, err := wire.Parse(act.Status, wire.NewScope(wire.NSClient)); err == nil {
			if p, err := xmpp.NewStanza(el); err == nil {
				from := p.From
				if xmpp.IsZero(from) {
					from = user
				}
				m.deps.Router.Route(ctx, p.With(from, prober))
				return true
			}
		}
	}
	m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeUnavailable, "", user, prober))
	return true
}

// userSend tracks directed presence (RFC 6121 §4.6).
func (m *Module) userSend(_ context.Context, st *xmpp.Stanza) bool {
	if st.Kind != xmpp.KindPresence || xmpp.IsZero(st.To) {
		return false
	}
	key := st.From.String()
	switch st.Type {
	case "":
		m.mu.Lock()
		set := m.directed[key]
		if set == nil {
			set = map[string]jid.JID{}
			m.directed[key] = set
		}
		if len(set) < 1000 {
			set[st.To.String()] = st.To
		}
		m.mu.Unlock()
	case xmpp.TypeUnavailable:
		m.mu.Lock()
		delete(m.directed[key], st.To.String())
		m.mu.Unlock()
	}
	return false
}
