package pep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/config"
	"switchboard/xmpp/wire"
)

// Namespaces of XEP-0060 as PEP uses them.
const (
	NS       = "http://jabber.org/protocol/pubsub"
	NSOwner  = NS + "#owner"
	NSEvent  = NS + "#event"
	NSErrors = NS + "#errors"
	// NSNodeConfig is the FORM_TYPE of node configuration forms.
	NSNodeConfig = NS + "#node_config"
	// NSPublishOptions is the FORM_TYPE of publish-options forms.
	NSPublishOptions = NS + "#publish-options"
)

// Access models (XEP-0060 §4.5).
const (
	AccessOpen      = "open"
	AccessPresence  = "presence"
	AccessRoster    = "roster"
	AccessWhitelist = "whitelist"
)

// send_last_published_item values (XEP-0060 §16.4.3).
const (
	SendNever            = "never"
	SendOnSub            = "on_sub"
	SendOnSubAndPresence = "on_sub_and_presence"
)

const (
	capsQueryTimeout     = 30 * time.Second
	maxPendingQueries    = 1024
	maxKnownCaps         = 4096
	maxTrackedPerAccount = 256
	maxTrackedAccounts   = 65536
	idPrefixCaps         = "pep-caps-"
	idPrefixNotification = "pep-"
)

// Contacts answers who shares presence with whom (the roster module).
type Contacts interface {
	// IsSubscriber reports whether contact may see user's presence.
	IsSubscriber(ctx context.Context, user, contact jid.JID) (bool, error)
	// Subscribers are the contacts that receive the user's presence.
	Subscribers(ctx context.Context, user jid.JID) ([]jid.JID, error)
	// Subscriptions are the contacts whose presence the user receives.
	Subscriptions(ctx context.Context, user jid.JID) ([]jid.JID, error)
}

// Options are the per-account limits; zero values take
// config.PEPDefaults.
type Options struct {
	// MaxNodes is how many nodes an account may have.
	MaxNodes int
	// MaxItems is the most items a node keeps, and what "max" means in
	// pubsub#max_items.
	MaxItems int
	// MaxBytes bounds the size of an account's items.
	MaxBytes int64
	Logger   *slog.Logger
}

// Deps are the module's collaborators.
type Deps struct {
	Store    *store.PEP
	Rosters  *store.Rosters
	Contacts Contacts
	Sessions xmpp.Sessions
	Router   xmpp.Router
	// IsLocal reports whether a domain is served here.
	IsLocal func(domain string) bool
	// Blocks reports whether user blocked contact (XEP-0191); nil
	// blocks nobody.
	Blocks func(ctx context.Context, user, contact jid.JID) bool
	Now    func() time.Time
}

// Module is the PEP service of every account.
type Module struct {
	opts Options
	deps Deps
	log  *slog.Logger
	seq  atomic.Uint64
	// idSalt makes the ids of the server's own queries unguessable.
	idSalt string

	mu sync.Mutex
	// known maps a verified caps key to the nodes it asks for.
	known map[string]map[string]bool
	// own maps a full JID whose caps did not verify (or use a hash we do
	// not check) to its caps key and the nodes its owner answered.
	own map[string]ownCaps
	// pending are the disco#info queries in flight, by id.
	pending map[string]*query
	// asking maps a caps key to the id of its query in flight.
	asking map[string]string
	// seen maps a local full JID to the caps key of its last broadcast
	// presence, so that only initial presence or changed caps send the
	// last items (XEP-0163 §4.3.3).
	seen     map[string]string
	seenPeak xmpp.MapPeak
	// remote maps a local account to the full JIDs of other servers'
	// users that sent it available presence, with their caps keys:
	// where its notifications go beyond this server (XEP-0163 §4.3.1).
	remote map[string]map[string]string
}

type ownCaps struct {
	key   string
	nodes map[string]bool
}

// query is a disco#info request for a caps key; waiters get the last
// items once it is answered.
type query struct {
	key     string
	askKey  string
	node    string
	to      jid.JID
	sent    time.Time
	waiters map[string]waiter
}

// waiter is a resource waiting for its interests to be known, and the
// accounts whose last items it is to get.
type waiter struct {
	full   jid.JID
	owners []jid.JID
	// asker is the account that asks full about its capabilities: for
	// another server's user, the account that follows it (m.remote).
	asker jid.JID
	// prev is the key full announced before: the nodes it asked for
	// already had their last items.
	prev string
}

// withOwners is w waiting for the last items of owners too.
func (w waiter) withOwners(owners []jid.JID) waiter {
	all := slices.Clone(w.owners)
	for _, o := range owners {
		if !slices.ContainsFunc(all, o.Equal) {
			all = append(all, o)
		}
	}
	w.owners = all
	return w
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module.
func New(opts Options, deps Deps) (*Module, error) {
	if deps.Store == nil || deps.Rosters == nil || deps.Contacts == nil || deps.Sessions == nil || deps.Router == nil || deps.IsLocal == nil {
		return nil, errors.New("pep: missing dependency")
	}
	def := config.PEPDefaults()
	if opts.MaxNodes <= 0 {
		opts.MaxNodes = def.MaxNodes
	}
	if opts.MaxItems <= 0 {
		opts.MaxItems = def.MaxItems
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = def.MaxBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	var salt [6]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, fmt.Errorf("pep: %w", err)
	}
	return &Module{
		opts: opts, deps: deps, log: log, idSalt: hex.EncodeToString(salt[:]),
		known: map[string]map[string]bool{}, own: map[string]ownCaps{},
		pending: map[string]*query{}, asking: map[string]string{},
		seen: map[string]string{}, remote: map[string]map[string]string{},
	}, nil
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "pep" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, hooks *xmpp.Hooks) error {
	reg.AddIdentity(xmpp.Identity{Target: xmpp.TargetAccount, Category: "pubsub", Type: "pep"})
	for _, f := range []string{
		"access-open", "access-presence", "access-roster", "access-whitelist",
		"auto-create", "auto-subscribe", "config-node", "create-and-configure", "create-nodes",
		"delete-items", "delete-nodes", "filtered-notifications", "item-ids", "last-published",
		"persistent-items", "presence-notifications", "publish", "publish-options", "purge-nodes",
		"retract-items", "retrieve-default", "retrieve-items",
	} {
		reg.AddFeature(xmpp.TargetAccount, NS+"#"+f)
	}
	reg.AddFeature(xmpp.TargetAccount, NS)
	for _, h := range []struct {
		typ, space string
		fn         xmpp.IQHandler
	}{
		{xmpp.TypeGet, NS, m.pubsubGet},
		{xmpp.TypeSet, NS, m.pubsubSet},
		{xmpp.TypeGet, NSOwner, m.ownerRequest},
		{xmpp.TypeSet, NSOwner, m.ownerRequest},
	} {
		if err := reg.HandleIQ(m.Name(), xmpp.TargetAccount, h.typ, h.space, "pubsub", h.fn); err != nil {
			return err
		}
	}
	hooks.Inbound.Add(m.inbound)
	hooks.PresenceBroadcast.Add(m.localPresence)
	hooks.PresenceIn.Add(m.remotePresence)
	hooks.SubscriptionApproved.Add(m.approved)
	hooks.SessionClosed.Add(func(_ context.Context, ev xmpp.SessionEvent) { m.forgetLocal(ev.JID.String()) })
	return nil
}

// owner is the account an IQ addresses: its 'to', or the sender's own.
func owner(st *xmpp.Stanza) jid.JID {
	if xmpp.IsZero(st.To) {
		return st.From.Bare()
	}
	return st.To.Bare()
}

// pubsubError is a stanza error with a XEP-0060 application condition.
func pubsubError(st *xmpp.Stanza, cond stanza.Condition, app string, text string) *xmpp.Stanza {
	var el *wire.Element
	if app != "" {
		el = wire.New(app, NSErrors)
	}
	return st.ErrorReplyApp(xmpp.StanzaError(cond, text), el)
}

func unsupported(st *xmpp.Stanza, feature string) *xmpp.Stanza {
	return st.ErrorReplyApp(xmpp.StanzaError(stanza.FeatureNotImplemented, ""),
		wire.New("unsupported", NSErrors, wire.Attr{Name: "feature", Value: feature}))
}

// children splits a pubsub element into its one request and the
// accompanying elements named in extras (publish-options with publish,
// configure with create); ok is false for anything else.
func children(ps *wire.Element, space string, extras ...string) (verb *wire.Element, extra map[string]*wire.Element, ok bool) {
	extra = map[string]*wire.Element{}
outer:
	for _, c := range ps.Children {
		if c.Space != space {
			return nil, nil, false
		}
		for _, name := range extras {
			if c.Name == name {
				if _, dup := extra[name]; dup {
					return nil, nil, false
				}
				extra[name] = c
				continue outer
			}
		}
		if verb != nil {
			return nil, nil, false
		}
		verb = c
	}
	return verb, extra, verb != nil
}

func (m *Module) pubsubGet(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	verb, _, ok := children(st.Payload(), NS, "options")
	if !ok {
		return nil, xmpp.StanzaError(stanza.BadRequest, "expected one pubsub request")
	}
	switch verb.Name {
	case "items":
		return m.items(ctx, st, verb)
	case "subscriptions":
		return unsupported(st, "retrieve-subscriptions"), nil
	case "affiliations":
		return unsupported(st, "retrieve-affiliations"), nil
	case "default":
		return unsupported(st, "retrieve-default-sub"), nil
	case "options":
		return unsupported(st, "subscription-options"), nil
	}
	return nil, xmpp.StanzaError(stanza.FeatureNotImplemented, "")
}

func (m *Module) pubsubSet(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	verb, extra, ok := children(st.Payload(), NS, "publish-options", "configure", "options")
	if !ok {
		return nil, xmpp.StanzaError(stanza.BadRequest, "expected one pubsub request")
	}
	switch verb.Name {
	case "subscribe", "unsubscribe":
		// Subscriptions follow presence (XEP-0163 §4.1, auto-subscribe).
		return unsupported(st, "subscribe"), nil
	}
	if !st.ToOwnAccount() {
		// One publisher per node: the account (XEP-0163 §3.2).
		return pubsubError(st, stanza.Forbidden, "", ""), nil
	}
	switch verb.Name {
	case "publish":
		return m.publish(ctx, st, verb, extra["publish-options"])
	case "retract":
		return m.retract(ctx, st, verb)
	case "create":
		return m.create(ctx, st, verb, extra["configure"])
	}
	return nil, xmpp.StanzaError(stanza.FeatureNotImplemented, "")
}

// ownerRequest answers the owner's requests (XEP-0060 §8), get and set:
// a node's configuration (read or submitted), the default configuration,
// deletion and purge.
func (m *Module) ownerRequest(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	verb, _, ok := children(st.Payload(), NSOwner)
	if !ok {
		return nil, xmpp.StanzaError(stanza.BadRequest, "expected one pubsub request")
	}
	if !st.ToOwnAccount() {
		return pubsubError(st, stanza.Forbidden, "", ""), nil
	}
	set := st.Type == xmpp.TypeSet
	switch {
	case verb.Name == "subscriptions":
		return unsupported(st, "manage-subscriptions"), nil
	case verb.Name == "affiliations":
		return unsupported(st, "modify-affiliations"), nil
	case verb.Name == "default" && !set:
		return st.Result(wire.New("pubsub", NSOwner).AddChild(
			wire.New("default", NSOwner).AddChild(m.configForm(m.defaults(""), "form")))), nil
	case verb.Name == "configure":
	case (verb.Name == "delete" || verb.Name == "purge") && set:
	default:
		return nil, xmpp.StanzaError(stanza.FeatureNotImplemented, "")
	}
	node := verb.AttrValue("node")
	if node == "" {
		return pubsubError(st, stanza.BadRequest, "nodeid-required", ""), nil
	}
	own := owner(st)
	if verb.Name != "configure" {
		purge := verb.Name == "purge"
		n, err := m.deps.Store.Delete(ctx, own.String(), node, purge)
		if errors.Is(err, store.ErrNotFound) {
			return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
		}
		if err != nil {
			return nil, fmt.Errorf("pep: %s: %w", verb.Name, err)
		}
		// XEP-0060 §8.4.2 and §8.5.2: subscribers hear of it.
		if purge || n.NotifyDelete {
			m.notify(ctx, own, n, wire.New(verb.Name, NSEvent, wire.Attr{Name: "node", Value: node}))
		}
		return st.Result(nil), nil
	}
	n, err := m.deps.Store.Node(ctx, own.String(), node)
	if errors.Is(err, store.ErrNotFound) {
		return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
	}
	if err != nil {
		return nil, fmt.Errorf("pep: configure: %w", err)
	}
	if !set {
		return st.Result(wire.New("pubsub", NSOwner).AddChild(
			wire.New("configure", NSOwner, wire.Attr{Name: "node", Value: node}).AddChild(m.configForm(n, "form")))), nil
	}
	x := verb.Child("x", xmpp.NSData)
	if x == nil || x.AttrValue("type") == "cancel" {
		return st.Result(nil), nil
	}
	if x.AttrValue("type") != "submit" {
		return nil, xmpp.StanzaError(stanza.BadRequest, "expected a submitted form")
	}
	if err := m.applyForm(&n, x, NSNodeConfig); err != nil {
		return nil, err
	}
	if err := m.deps.Store.Configure(ctx, own.String(), n); err != nil {
		return nil, fmt.Errorf("pep: configure: %w", err)
	}
	return st.Result(nil), nil
}

// defaults is the configuration of a new node (XEP-0163 §5).
func (m *Module) defaults(node string) store.PEPNode {
	return store.PEPNode{
		Node: node, Access: AccessPresence, MaxItems: 1, SendLast: SendOnSubAndPresence,
		NotifyRetract: true, NotifyDelete: true,
	}
}

func (m *Module) publish(ctx context.Context, st *xmpp.Stanza, pub, options *wire.Element) (*xmpp.Stanza, error) {
	node := pub.AttrValue("node")
	if node == "" {
		// Instant nodes are not supported (XEP-0060 §7.1.3.3).
		return pubsubError(st, stanza.BadRequest, "nodeid-required", ""), nil
	}
	var item *wire.Element
	for _, c := range pub.Children {
		if c.Space != NS || c.Name != "item" || item != nil {
			// §7.1.3.6: one item per publication.
			return pubsubError(st, stanza.BadRequest, "invalid-payload", "one item per publication"), nil
		}
		item = c
	}
	if item == nil {
		return pubsubError(st, stanza.BadRequest, "item-required", ""), nil
	}
	if len(item.Children) != 1 {
		if len(item.Children) == 0 {
			return pubsubError(st, stanza.BadRequest, "payload-required", ""), nil
		}
		return pubsubError(st, stanza.BadRequest, "invalid-payload", "one payload per item"), nil
	}
	id := item.AttrValue("id")
	if id == "" {
		id = m.newID("")
	}
	if len(id) > store.MaxPEPItemIDLen || len(node) > store.MaxPEPNodeLen {
		return nil, xmpp.StanzaError(stanza.NotAcceptable, "node or item id too long")
	}
	create := m.defaults(node)
	var opts *wire.Element
	var createErr error
	if options != nil {
		if opts = options.Child("x", xmpp.NSData); opts != nil {
			// Options a new node cannot have fail its creation;
			// an existing node fails the precondition instead.
			createErr = m.applyForm(&create, opts, NSPublishOptions)
		}
	}
	payload := item.Children[0]
	stored := payload.AppendXML(nil, "")
	if int64(len(stored)) > m.opts.MaxBytes {
		// XEP-0060 §7.1.3.4.
		return pubsubError(st, stanza.NotAcceptable, "payload-too-big", ""), nil
	}
	err := m.publishItem(ctx, st.From, store.PEPPublish{
		Item:      store.PEPItem{ID: id, Payload: stored},
		Create:    create,
		CreateErr: createErr,
		Check: func(n store.PEPNode) error {
			if opts == nil {
				return nil
			}
			want := n
			if err := m.applyForm(&want, opts, NSPublishOptions); err != nil || !sameConfig(want, n) {
				return errPrecondition
			}
			return nil
		},
	}, payload)
	switch {
	case errors.Is(err, errPrecondition):
		// XEP-0060 §7.1.5.
		return pubsubError(st, stanza.Conflict, "precondition-not-met", ""), nil
	case errors.Is(err, store.ErrQuota):
		return nil, xmpp.StanzaError(stanza.ResourceConstraint, "the account's personal eventing storage is full")
	case err != nil:
		return nil, err
	}
	return st.Result(wire.New("pubsub", NS).AddChild(
		wire.New("publish", NS, wire.Attr{Name: "node", Value: node}).AddChild(
			wire.New("item", NS, wire.Attr{Name: "id", Value: id})))), nil
}

var errPrecondition = errors.New("pep: precondition not met")

// publishItem stores an item that publisher publishes to its own account
// (pub's Owner, Limits and Item.Publisher are filled in here) and
// notifies the node's subscribers of payload.
func (m *Module) publishItem(ctx context.Context, publisher jid.JID, pub store.PEPPublish, payload *wire.Element) error {
	own := publisher.Bare()
	pub.Owner = own.String()
	pub.Item.Publisher = publisher.String()
	pub.Limits = store.PEPLimits{MaxNodes: m.opts.MaxNodes, MaxBytes: m.opts.MaxBytes}
	n, _, err := m.deps.Store.Publish(ctx, pub)
	if err != nil {
		return fmt.Errorf("pep: publish: %w", err)
	}
	ev := wire.New("items", NSEvent, wire.Attr{Name: "node", Value: n.Node}).AddChild(
		wire.New("item", NSEvent, wire.Attr{Name: "id", Value: pub.Item.ID}).AddChild(payload))
	m.notify(ctx, own, n, ev)
	return nil
}

// sameConfig reports whether two configurations agree on every field a
// form sets (publish-options preconditions).
func sameConfig(a, b store.PEPNode) bool {
	return a.Access == b.Access && slices.Equal(a.RosterGroups, b.RosterGroups) && a.MaxItems == b.MaxItems &&
		a.SendLast == b.SendLast && a.NotifyRetract == b.NotifyRetract && a.NotifyDelete == b.NotifyDelete &&
		a.Title == b.Title
}

func (m *Module) retract(ctx context.Context, st *xmpp.Stanza, r *wire.Element) (*xmpp.Stanza, error) {
	node := r.AttrValue("node")
	if node == "" {
		return pubsubError(st, stanza.BadRequest, "nodeid-required", ""), nil
	}
	item := r.Child("item", NS)
	if item == nil || item.AttrValue("id") == "" {
		return pubsubError(st, stanza.BadRequest, "item-required", ""), nil
	}
	if len(r.Children) != 1 {
		return nil, xmpp.StanzaError(stanza.BadRequest, "one item per retraction")
	}
	notify, _ := xmpp.ParseFormBool(r.AttrValue("notify")) // XEP-0060 §7.2.2.1: xs:boolean
	err := m.retractItem(ctx, owner(st), node, item.AttrValue("id"), notify)
	if errors.Is(err, store.ErrNotFound) {
		return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
	}
	if err != nil {
		return nil, err
	}
	return st.Result(nil), nil
}

// retractItem removes an item of own's node and notifies the node's
// subscribers when the node says so or notify asks (XEP-0060 §7.2.2.1).
// A missing node or item is store.ErrNotFound.
func (m *Module) retractItem(ctx context.Context, own jid.JID, node, id string, notify bool) error {
	n, err := m.deps.Store.Retract(ctx, own.String(), node, id)
	if err != nil {
		return fmt.Errorf("pep: retract: %w", err)
	}
	if n.NotifyRetract || notify {
		m.notify(ctx, own, n, wire.New("items", NSEvent, wire.Attr{Name: "node", Value: node}).AddChild(
			wire.New("retract", NSEvent, wire.Attr{Name: "id", Value: id})))
	}
	return nil
}

func (m *Module) create(ctx context.Context, st *xmpp.Stanza, c, configure *wire.Element) (*xmpp.Stanza, error) {
	node := c.AttrValue("node")
	if node == "" {
		return pubsubError(st, stanza.NotAcceptable, "nodeid-required", "instant nodes are not supported"), nil
	}
	if len(node) > store.MaxPEPNodeLen {
		return nil, xmpp.StanzaError(stanza.NotAcceptable, "node name too long")
	}
	n := m.defaults(node)
	if configure != nil {
		if x := configure.Child("x", xmpp.NSData); x != nil {
			if err := m.applyForm(&n, x, NSNodeConfig); err != nil {
				return nil, err
			}
		}
	}
	err := m.deps.Store.Create(ctx, owner(st).String(), n, store.PEPLimits{MaxNodes: m.opts.MaxNodes})
	switch {
	case errors.Is(err, store.ErrExists):
		return nil, xmpp.StanzaError(stanza.Conflict, "")
	case errors.Is(err, store.ErrQuota):
		return nil, xmpp.StanzaError(stanza.ResourceConstraint, "too many nodes")
	case err != nil:
		return nil, fmt.Errorf("pep: create: %w", err)
	}
	return st.Result(nil), nil
}

func (m *Module) items(ctx context.Context, st *xmpp.Stanza, it *wire.Element) (*xmpp.Stanza, error) {
	node := it.AttrValue("node")
	if node == "" {
		return pubsubError(st, stanza.BadRequest, "nodeid-required", ""), nil
	}
	max := 0
	if v := it.AttrValue("max_items"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, xmpp.StanzaError(stanza.BadRequest, "max_items must be a positive integer")
		}
		max = n
	}
	var ids []string
	for _, c := range it.Children {
		if c.Space == NS && c.Name == "item" {
			if id := c.AttrValue("id"); id != "" {
				ids = append(ids, id)
			}
		}
	}
	own := owner(st)
	if len(node) > store.MaxPEPNodeLen {
		return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
	}
	items, denied, err := m.readItems(ctx, own, st.From, node, max, ids)
	if errors.Is(err, store.ErrNotFound) {
		return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
	}
	if err != nil {
		return nil, fmt.Errorf("pep: items: %w", err)
	}
	if denied != nil {
		return pubsubError(st, denied.cond, denied.app, ""), nil
	}
	res := wire.New("items", NS, wire.Attr{Name: "node", Value: node})
	for _, item := range items {
		e := wire.New("item", NS, wire.Attr{Name: "id", Value: item.ID})
		if p, err := parsePayload(item.Payload); err == nil {
			e.AddChild(p)
		} else {
			m.log.Error("pep: stored payload", xmpp.LogJID, own.String(), "node", node, xmpp.LogErr, err)
		}
		res.AddChild(e)
	}
	return st.Result(wire.New("pubsub", NS).AddChild(res)), nil
}

// readItems reads own's node for reader: with ids, those of its items
// that exist, otherwise the newest max (all when max <= 0), oldest first;
// or why reader may not read them. A missing node is store.ErrNotFound.
func (m *Module) readItems(ctx context.Context, own, reader jid.JID, node string, max int, ids []string) ([]store.PEPItem, *denial, error) {
	n, items, err := m.deps.Store.Items(ctx, own.String(), node, max, ids)
	if err != nil {
		return nil, nil, err
	}
	if denied := m.access(ctx, own, n, reader); denied != nil {
		return nil, denied, nil
	}
	return items, nil, nil
}

func parsePayload(b []byte) (*wire.Element, error) {
	return wire.Parse(b, wire.NewScope(""))
}

type denial struct {
	cond stanza.Condition
	app  string
}

// access checks whether who may read the owner's node (XEP-0060 §6.5.9,
// XEP-0163 §4.1): nil if allowed.
func (m *Module) access(ctx context.Context, own jid.JID, n store.PEPNode, who jid.JID) *denial {
	if who.Bare().Equal(own) {
		return nil
	}
	if m.deps.Blocks != nil && m.deps.Blocks(ctx, own, who) {
		// XEP-0060 §6.5.9.8: blocked.
		return &denial{stanza.Forbidden, ""}
	}
	switch n.Access {
	case AccessOpen:
		return nil
	case AccessPresence:
		ok, err := m.deps.Contacts.IsSubscriber(ctx, own, who)
		if err != nil {
			m.log.Error("pep: roster", xmpp.LogJID, own.String(), xmpp.LogErr, err)
			return &denial{stanza.InternalServerError, ""}
		}
		if ok {
			return nil
		}
		return &denial{stanza.NotAuthorized, "presence-subscription-required"}
	case AccessRoster:
		item, err := m.deps.Rosters.Item(ctx, own.String(), who.Bare().String())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			m.log.Error("pep: roster", xmpp.LogJID, own.String(), xmpp.LogErr, err)
			return &denial{stanza.InternalServerError, ""}
		}
		for _, g := range item.Groups {
			for _, allowed := range n.RosterGroups {
				if g == allowed {
					return nil
				}
			}
		}
		return &denial{stanza.NotAuthorized, "not-in-roster-group"}
	}
	return &denial{stanza.NotAllowed, "closed-node"}
}

func (m *Module) newID(prefix string) string {
	return prefix + m.idSalt + "-" + strconv.FormatUint(m.seq.Add(1), 36)
}
