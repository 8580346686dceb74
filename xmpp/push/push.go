package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Namespaces and form types.
const (
	// NS is XEP-0357's namespace, and the account's disco feature.
	NS = "urn:xmpp:push:0"
	// NSPubSub is XEP-0060's namespace: notifications are publications.
	NSPubSub = "http://jabber.org/protocol/pubsub"
	// FormSummary is the FORM_TYPE of a notification's summary (§6).
	FormSummary = "urn:xmpp:push:summary"
	// FormPublishOptions is the FORM_TYPE of the form a client may
	// enable a service with, sent with each notification (§5).
	FormPublishOptions = "http://jabber.org/protocol/pubsub#publish-options"
)

// maxOptionsBytes bounds an enable's publish-options form, serialised:
// it is stored and sent with every notification.
const maxOptionsBytes = 4096

// Store keeps the services; *store.Push implements it.
type Store interface {
	All(ctx context.Context, fn func(owner string, services []store.PushService) bool) error
	Put(ctx context.Context, owner string, s store.PushService, most int) ([]store.PushService, error)
	Remove(ctx context.Context, owner, jid, node string, anyNode bool) ([]store.PushService, error)
}

// Options are the module's settings.
type Options struct {
	// IncludeSender and IncludeBody put the message's sender and body
	// into notifications (they go to the app's vendor).
	IncludeSender, IncludeBody bool
	// PlaceholderBody is sent as the body when the real one is not
	// (IncludeBody off, or an encrypted message); "" sends none.
	PlaceholderBody string
	// MaxPerAccount bounds an account's services. Positive.
	MaxPerAccount int
	// MaxErrors is how many notifications in a row a service may answer
	// with an error (other than 'wait') before it is disabled. Positive.
	MaxErrors int
	// Timeout is how long a notification waits for its answer; one
	// that gets none counts as an error. Positive.
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Deps are the module's collaborators.
type Deps struct {
	Store    Store
	Router   xmpp.Router
	Sessions xmpp.Sessions
}

// Module publishes push notifications.
type Module struct {
	opts Options
	deps Deps
	log  *slog.Logger

	// accounts maps an account's bare JID to its *account: read,
	// without a lock, for every message delivered or stored while any
	// account has a service (enabled > 0).
	accounts sync.Map
	enabled  atomic.Int64

	// writes serialises the changes to the store and to accounts (an
	// enable, a disable, a removal after errors), so that both agree.
	writes sync.Mutex

	// mu guards every account's services, inflight and closed.
	mu       sync.Mutex
	inflight map[string]*service
	seq      uint64
	// closed: Close ran; no notification is built from then on.
	closed bool
	// removals are the failing services' removals from the store under
	// way (disableFailing), which Close waits for.
	removals sync.WaitGroup
}

// account is an account's services; guarded by Module.mu.
type account struct {
	services []*service
}

// service is one enabled service with its notification state; guarded
// by Module.mu.
type service struct {
	store.PushService
	owner   jid.JID
	to      jid.JID
	options *wire.Element // the publish-options form, or nil
	// errors counts the notifications answered with errors since the
	// last success.
	errors int
	// id is the notification in flight ("" if none), timer its timeout.
	id    string
	timer *time.Timer
	// waiting counts the messages worth a notification that arrived
	// since the last one was sent; last is the newest of them.
	waiting int
	last    *wire.Element
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module; Load reads the stored services.
func New(opts Options, deps Deps) (*Module, error) {
	switch {
	case deps.Store == nil || deps.Router == nil || deps.Sessions == nil:
		return nil, errors.New("push: missing dependency")
	case opts.MaxPerAccount < 1:
		return nil, fmt.Errorf("push: max per account must be positive, got %d", opts.MaxPerAccount)
	case opts.MaxErrors < 1:
		return nil, fmt.Errorf("push: max errors must be positive, got %d", opts.MaxErrors)
	case opts.Timeout <= 0:
		return nil, fmt.Errorf("push: timeout must be positive, got %s", opts.Timeout)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Module{opts: opts, deps: deps, log: opts.Logger, inflight: map[string]*service{}}, nil
}

// Load reads the stored services. A service stored by an earlier build
// that no longer parses is skipped and logged.
func (m *Module) Load(ctx context.Context) error {
	m.writes.Lock()
	defer m.writes.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.deps.Store.All(ctx, func(owner string, services []store.PushService) bool {
		bare, err := jid.Parse(owner)
		if err != nil {
			m.log.Warn("push: stored owner", xmpp.LogJID, owner, xmpp.LogErr, err)
			return true
		}
		for _, ps := range services {
			if err := m.addLocked(bare, ps); err != nil {
				m.log.Warn("push: stored service", xmpp.LogJID, owner, "service", ps.JID, xmpp.LogErr, err)
			}
		}
		return true
	})
}

// Close stops publishing: the notifications in flight are forgotten,
// their timeouts stopped, no notification is built from then on (one
// built just before may still be routed), and the removals of failing
// services from the store under way end before it returns. The server
// calls it once the sessions have ended, before the store closes.
func (m *Module) Close() {
	m.mu.Lock()
	m.closed = true
	for _, s := range m.inflight {
		m.dropLocked(s)
	}
	m.mu.Unlock()
	m.removals.Wait()
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "push" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, hooks *xmpp.Hooks) error {
	reg.AddFeature(xmpp.TargetAccount, NS)
	if err := reg.HandleIQ(m.Name(), xmpp.TargetAccount, xmpp.TypeSet, NS, "enable", m.enable); err != nil {
		return err
	}
	if err := reg.HandleIQ(m.Name(), xmpp.TargetAccount, xmpp.TypeSet, NS, "disable", m.disable); err != nil {
		return err
	}
	hooks.Inbound.Add(m.answer)
	hooks.Delivered.Add(m.delivered)
	hooks.OfflineStored.Add(m.stored)
	hooks.Hibernated.Add(m.unreached)
	hooks.AckDelayed.Add(m.unreached)
	return nil
}

// AccountRemoved forgets a removed account's services (the store removed
// them with the account): a later account of the same name must not
// notify the removed one's devices.
func (m *Module) AccountRemoved(bare jid.JID) {
	m.writes.Lock()
	defer m.writes.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.accounts.Load(bare.String())
	if !ok {
		return
	}
	for _, s := range v.(*account).services {
		m.dropLocked(s)
	}
	m.accounts.Delete(bare.String())
	m.enabled.Add(-1)
}

// enable stores a service (§5). Enabling a JID and node again replaces
// the first, publish options included.
func (m *Module) enable(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !st.ToOwnAccount() {
		return nil, xmpp.StanzaError(stanza.Forbidden, "push notifications are enabled by the account's own clients")
	}
	p := st.Payload()
	to, node, err := serviceAddress(p)
	if err != nil {
		return nil, err
	}
	var options []byte
	for _, c := range p.Children {
		if c.Name != "x" || c.Space != xmpp.NSData {
			continue
		}
		if options != nil {
			return nil, xmpp.StanzaError(stanza.BadRequest, "at most one publish-options form")
		}
		if ft := xmpp.FormValues(c)["FORM_TYPE"]; len(ft) != 1 || ft[0] != FormPublishOptions {
			return nil, xmpp.StanzaError(stanza.BadRequest, "the form's FORM_TYPE must be "+FormPublishOptions)
		}
		options = c.AppendXML(nil, "")
		if len(options) > maxOptionsBytes {
			return nil, xmpp.StanzaError(stanza.NotAcceptable, fmt.Sprintf("publish options may take at most %d bytes", maxOptionsBytes))
		}
	}
	owner := st.From.Bare()
	ps := store.PushService{JID: to.String(), Node: node, Resource: st.From.Resourcepart(), Options: options, Enabled: m.opts.Now()}
	m.writes.Lock()
	defer m.writes.Unlock()
	dropped, err := m.deps.Store.Put(ctx, owner.String(), ps, m.opts.MaxPerAccount)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// The account was removed while this session was ending.
		return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
	case err != nil:
		return nil, fmt.Errorf("push: enable for %s: %w", owner, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range dropped {
		m.removeLocked(owner, d.JID, d.Node, false)
	}
	m.removeLocked(owner, ps.JID, ps.Node, false)
	if err := m.addLocked(owner, ps); err != nil {
		// The form was checked above; this is a bug.
		return nil, fmt.Errorf("push: enable for %s: %w", owner, err)
	}
	m.log.Info("push service enabled", xmpp.LogJID, st.From.String(), "service", ps.JID, "node", ps.Node)
	return st.Result(nil), nil
}

// disable removes the service of a JID and node, or every service of a
// JID when no node is given (§5). Disabling what is not enabled is not an
// error.
func (m *Module) disable(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !st.ToOwnAccount() {
		return nil, xmpp.StanzaError(stanza.Forbidden, "push notifications are disabled by the account's own clients")
	}
	p := st.Payload()
	to, node, err := serviceAddress(p)
	if err != nil {
		return nil, err
	}
	_, hasNode := p.Attr("node")
	anyNode := !hasNode
	owner := st.From.Bare()
	m.writes.Lock()
	defer m.writes.Unlock()
	if _, err := m.deps.Store.Remove(ctx, owner.String(), to.String(), node, anyNode); err != nil {
		return nil, fmt.Errorf("push: disable for %s: %w", owner, err)
	}
	m.mu.Lock()
	m.removeLocked(owner, to.String(), node, anyNode)
	m.mu.Unlock()
	m.log.Info("push service disabled", xmpp.LogJID, st.From.String(), "service", to.String(), "node", node)
	return st.Result(nil), nil
}

// serviceAddress reads an enable's or disable's service JID (required)
// and node.
func serviceAddress(p *wire.Element) (jid.JID, string, error) {
	v, ok := p.Attr("jid")
	if !ok || v == "" {
		return jid.JID{}, "", xmpp.StanzaError(stanza.BadRequest, "the push service's 'jid' is required")
	}
	to, err := jid.Parse(v)
	if err != nil {
		return jid.JID{}, "", xmpp.StanzaError(stanza.JIDMalformed, "the push service's 'jid' is not a JID")
	}
	node := p.AttrValue("node")
	if len(node) > store.MaxPushNode {
		return jid.JID{}, "", xmpp.StanzaError(stanza.NotAcceptable, fmt.Sprintf("a node may take at most %d bytes", store.MaxPushNode))
	}
	return to, node, nil
}

// addLocked adds a service (m.writes and m.mu held, or only m.writes
// while loading).
func (m *Module) addLocked(owner jid.JID, ps store.PushService) error {
	to, err := jid.Parse(ps.JID)
	if err != nil {
		return err
	}
	s := &service{PushService: ps, owner: owner, to: to}
	if len(ps.Options) > 0 {
		if s.options, err = wire.Parse(ps.Options, wire.NewScope("")); err != nil {
			return err
		}
	}
	v, ok := m.accounts.Load(owner.String())
	if !ok {
		v = &account{}
		m.accounts.Store(owner.String(), v)
		m.enabled.Add(1)
	}
	a := v.(*account)
	a.services = append(a.services, s)
	return nil
}

// removeLocked removes owner's service of jid and node (any node when
// anyNode); m.mu is held, and m.writes but when a failing service leaves
// memory before the store (settle).
func (m *Module) removeLocked(owner jid.JID, jid, node string, anyNode bool) {
	v, ok := m.accounts.Load(owner.String())
	if !ok {
		return
	}
	a := v.(*account)
	a.services = slices.DeleteFunc(a.services, func(s *service) bool {
		if s.JID != jid || (!anyNode && s.Node != node) {
			return false
		}
		m.dropLocked(s)
		return true
	})
	if len(a.services) == 0 {
		m.accounts.Delete(owner.String())
		m.enabled.Add(-1)
	}
}

// dropLocked forgets s's notification in flight: s is disabled.
func (m *Module) dropLocked(s *service) {
	if s.id != "" {
		delete(m.inflight, s.id)
		s.timer.Stop()
		s.id = ""
	}
}
