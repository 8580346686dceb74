package roster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Namespaces.
const (
	NS            = "jabber:iq:roster"
	NSVersioning  = "urn:xmpp:features:rosterver"    // XEP-0237 stream feature
	NSPreApproval = "urn:xmpp:features:pre-approval" // RFC 6121 §3.4.1 stream feature
)

// Limits on item contents (RFC 6121 §2.3.3 lets the server set them).
const (
	MaxNameLen   = 1023
	MaxGroupLen  = 1023
	MaxGroups    = 64
	DefaultLimit = 5000
)

// Router is what the roster needs of the router and session manager.
type Router interface {
	xmpp.Router
	xmpp.Sessions
	// IsComponent reports whether domain is one of the server's own
	// services (rooms, uploads), not a host of user accounts (an external
	// component, such as a gateway, may be one).
	IsComponent(domain string) bool
}

// UserDirectory tells whether a local account exists.
type UserDirectory interface {
	Exists(ctx context.Context, host, local string) (bool, error)
}

// Options configure the module.
type Options struct {
	// MaxItems bounds a roster's size (default DefaultLimit).
	MaxItems int
	// Hosts are the per-host policies (shared roster, monitors).
	Hosts  map[string]HostPolicy
	Logger *slog.Logger
}

// Deps are the module's collaborators.
type Deps struct {
	Rosters  *store.Rosters
	Requests *store.SubRequests
	Router   Router
	Users    UserDirectory
	// Directory lists a host's accounts (shared roster); optional.
	Directory Directory
	// Blocks reports whether user blocks contact (XEP-0191); optional.
	// A pending request from a blocked contact is kept but not shown.
	Blocks func(ctx context.Context, user, contact jid.JID) bool
}

// Module implements rosters and subscriptions.
type Module struct {
	opts   Options
	deps   Deps
	log    *slog.Logger
	pushID atomic.Uint64

	mu    sync.RWMutex
	users map[string][]string // cached account lists by host (shared roster)

	// approved is the server's SubscriptionApproved hook, once
	// registered.
	approved *xmpp.Hook[*xmpp.Stanza]
}

var _ xmpp.Module = (*Module)(nil)

// New returns the roster module.
func New(opts Options, deps Deps) (*Module, error) {
	if deps.Rosters == nil || deps.Requests == nil || deps.Router == nil || deps.Users == nil {
		return nil, errors.New("roster: missing dependency")
	}
	if opts.MaxItems <= 0 {
		opts.MaxItems = DefaultLimit
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Module{opts: opts, deps: deps, log: opts.Logger, users: map[string][]string{}}, nil
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "roster" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, hooks *xmpp.Hooks) error {
	if err := reg.HandleIQ(m.Name(), xmpp.TargetAccount, xmpp.TypeGet, NS, "query", m.get); err != nil {
		return err
	}
	if err := reg.HandleIQ(m.Name(), xmpp.TargetAccount, xmpp.TypeSet, NS, "query", m.set); err != nil {
		return err
	}
	hooks.UserSend.Add(m.userSend)
	hooks.PresenceIn.Add(m.presenceIn)
	hooks.InitialPresence.Add(m.initialPresence)
	m.approved = &hooks.SubscriptionApproved
	return nil
}

func owner(j jid.JID) string { return j.Bare().String() }

// itemElement renders a roster item (RFC 6121 §2.1.2).
func itemElement(it store.RosterItem, remove bool) *wire.Element {
	e := wire.New("item", NS, wire.Attr{Name: "jid", Value: it.Contact})
	if remove {
		e.Attrs = append(e.Attrs, wire.Attr{Name: "subscription", Value: "remove"})
		return e
	}
	if it.Name != "" {
		e.Attrs = append(e.Attrs, wire.Attr{Name: "name", Value: it.Name})
	}
	e.Attrs = append(e.Attrs, wire.Attr{Name: "subscription", Value: it.Subscription.String()})
	if it.Ask {
		e.Attrs = append(e.Attrs, wire.Attr{Name: "ask", Value: "subscribe"})
	}
	if it.Approved {
		e.Attrs = append(e.Attrs, wire.Attr{Name: "approved", Value: "true"})
	}
	for _, g := range it.Groups {
		e.AddChild(wire.New("group", NS).SetText(g))
	}
	return e
}

func ver(v uint64) string { return strconv.FormatUint(v, 10) }

// get answers a roster get (RFC 6121 §2.1.3) with XEP-0237 versioning:
// an up-to-date version gets an empty result, a known older one the
// changes as pushes, anything else the full roster.
func (m *Module) get(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !st.ToOwnAccount() {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	o := owner(st.From)
	m.deps.Router.SetInterested(st.From)
	items, current, sharedView, err := m.view(ctx, st.From.Bare())
	if err != nil {
		return nil, err
	}
	q := st.Payload()
	if v, ok := q.Attr("ver"); ok && v != "" {
		if v == current {
			// XEP-0237 §3: up to date: an empty result.
			return st.Result(nil), nil
		}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil && !sharedView {
			changed, removed, _, ok, err := m.deps.Rosters.Since(ctx, o, n)
			if err != nil {
				return nil, fmt.Errorf("roster: since: %w", err)
			}
			if ok {
				// XEP-0237 §3: empty result, then the changes as
				// pushes to this resource only, in version order,
				// each with the version of its change (so that an
				// interrupted client resumes correctly).
				m.deps.Router.Route(ctx, st.Result(nil))
				type change struct {
					el  *wire.Element
					ver uint64
				}
				all := make([]change, 0, len(changed)+len(removed))
				for _, it := range removed {
					all = append(all, change{itemElement(it, true), it.Version})
				}
				for _, it := range changed {
					all = append(all, change{itemElement(it, false), it.Version})
				}
				sort.Slice(all, func(i, j int) bool { return all[i].ver < all[j].ver })
				for _, c := range all {
					m.deliverPush(ctx, st.From, c.el, c.ver)
				}
				return nil, nil
			}
		}
	}
	res := wire.New("query", NS, wire.Attr{Name: "ver", Value: current})
	for _, it := range items {
		res.AddChild(itemElement(it, false))
	}
	return st.Result(res), nil
}

// set handles a roster set (RFC 6121 §2.3, removal §2.5) with the error
// cases of §2.3.3 and §2.5.3.
func (m *Module) set(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !st.ToOwnAccount() {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	q := st.Payload()
	if len(q.Children) != 1 || q.Children[0].Name != "item" || q.Children[0].Space != NS {
		return nil, xmpp.StanzaError(stanza.BadRequest, "a roster set contains exactly one item")
	}
	el := q.Children[0]
	contact, err := jid.Parse(el.AttrValue("jid"))
	if err != nil || el.AttrValue("jid") == "" {
		return nil, xmpp.StanzaError(stanza.JIDMalformed, "invalid item JID")
	}
	contact = contact.Bare()
	user := st.From.Bare()
	if contact.Equal(user) {
		return nil, xmpp.StanzaError(stanza.NotAllowed, "you cannot add yourself")
	}
	o, c := user.String(), contact.String()
	if el.AttrValue("subscription") == "remove" {
		if err := m.removeItem(ctx, user, contact); err != nil {
			return nil, err
		}
		return st.Result(nil), nil
	}
	name := el.AttrValue("name")
	if len(name) > MaxNameLen {
		return nil, xmpp.StanzaError(stanza.NotAcceptable, "name too long")
	}
	var groups []string
	seen := map[string]bool{}
	for _, g := range el.Children {
		if g.Name != "group" || g.Space != NS {
			continue
		}
		switch {
		case g.Text == "":
			return nil, xmpp.StanzaError(stanza.NotAcceptable, "empty group name")
		case len(g.Text) > MaxGroupLen || !utf8.ValidString(g.Text):
			return nil, xmpp.StanzaError(stanza.NotAcceptable, "group name too long")
		case seen[g.Text]:
			return nil, xmpp.StanzaError(stanza.BadRequest, "duplicate group")
		}
		seen[g.Text] = true
		groups = append(groups, g.Text)
	}
	if len(groups) > MaxGroups {
		return nil, xmpp.StanzaError(stanza.NotAcceptable, "too many groups")
	}
	pol := m.opts.Hosts[user.Domainpart()]
	monitor := pol.MonitorGroup != "" && slices.Contains(groups, pol.MonitorGroup)
	if monitor && (contact.Localpart() == "" || m.deps.Router.IsComponent(contact.Domainpart())) {
		// Only people can be monitored, not rooms or services.
		return nil, xmpp.StanzaError(stanza.NotAcceptable, "only user JIDs can be monitored")
	}
	count, err := m.deps.Rosters.Count(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("roster: count: %w", err)
	}
	// The 'subscription' (other than remove) and 'ask' attributes of a
	// set are ignored (RFC 6121 §2.1.2.5, §2.1.2.2).
	item, version, changed, err := m.deps.Rosters.Update(ctx, o, c, func(it *store.RosterItem, exists bool) (store.UpdateOp, error) {
		if !exists && count >= m.opts.MaxItems {
			return store.UpdateKeep, xmpp.StanzaError(stanza.NotAllowed, "roster full")
		}
		if !exists {
			it.Added = time.Now()
		}
		it.Name, it.Groups = name, groups
		return store.UpdatePut, nil
	})
	if err != nil {
		return nil, err
	}
	if changed {
		m.push(ctx, user, itemElement(m.viewItem(ctx, user, item), false), version)
	}
	if monitor {
		m.enforceMonitors(ctx, user, c)
	}
	return st.Result(nil), nil
}

// removeItem deletes an item (RFC 6121 §2.5.2), cancelling subscriptions
// in both directions.
func (m *Module) removeItem(ctx context.Context, user, contact jid.JID) error {
	o, c := user.String(), contact.String()
	pendingIn := m.pendingIn(ctx, o, c)
	var before store.RosterItem
	var existed bool
	_, version, changed, err := m.deps.Rosters.Update(ctx, o, c, func(it *store.RosterItem, exists bool) (store.UpdateOp, error) {
		before, existed = *it, exists
		if !exists {
			return store.UpdateKeep, nil
		}
		return store.UpdateDelete, nil
	})
	if err != nil {
		return err
	}
	if !existed && !pendingIn {
		if m.isShared(ctx, user, c) {
			// Shared by the configuration: it cannot be removed.
			return xmpp.StanzaError(stanza.NotAllowed, "the contact is shared by the server configuration")
		}
		return xmpp.StanzaError(stanza.ItemNotFound, "")
	}
	s := State{Sub: before.Subscription, PendingOut: before.Ask, PendingIn: pendingIn}
	if pendingIn {
		if err := m.deps.Requests.Delete(ctx, o, c); err != nil {
			m.log.Error("roster: delete request", xmpp.LogJID, o, xmpp.LogErr, err)
		}
	}
	if changed {
		if m.isShared(ctx, user, c) {
			// The contact stays, shared by the configuration.
			m.push(ctx, user, itemElement(m.viewItem(ctx, user, store.RosterItem{Contact: c}), false), version)
		} else {
			m.push(ctx, user, itemElement(store.RosterItem{Contact: c}, true), version)
		}
	}
	m.cancelSubscriptions(ctx, user, contact, s)
	return nil
}

// cancelSubscriptions tells contact that user, in state s with it, drops
// every subscription and request between them (RFC 6121 §2.5.2):
// unsubscribe if the user was subscribed (or asked), unsubscribed with
// unavailable presence from each available resource if the contact was
// (or asked).
func (m *Module) cancelSubscriptions(ctx context.Context, user, contact jid.JID, s State) {
	if s.hasTo() || s.PendingOut {
		m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeUnsubscribe, "", user, contact))
	}
	if s.hasFrom() || s.PendingIn {
		m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeUnsubscribed, "", user, contact))
		m.sendUnavailable(ctx, user, contact)
	}
}

// AccountRemoval tells the owners of the roster items and requests that
// deleting user's account released (store.Users.Delete, which has already
// ended every subscription with the account: XEP-0077 §3.2 says the server
// SHOULD cancel them). Call it after the delete, while the account's
// sessions are still bound. Each owner gets the roster push of its changed
// item (RFC 6121 §2.1.6) and, on its available resources, the presence a
// cancellation by the account would have brought (§3.2, §3.3):
// unsubscribed where it was subscribed to the account or had asked to be,
// unsubscribe where the account was subscribed to it or had asked, and
// unavailable from the account's available resources where it saw them.
// These are delivered, not routed: the rosters already say none, and the
// inbound rules would drop them as changing nothing. So they are not
// delivered to an owner who blocks the account (XEP-0191 §3.5), as the
// Inbound hooks would have decided; the routed unavailable is dropped
// there.
func (m *Module) AccountRemoval(ctx context.Context, user jid.JID, released []store.Released) {
	user = user.Bare()
	for _, rel := range released {
		owner, err := jid.Parse(rel.Owner)
		if err != nil {
			continue
		}
		if rel.After.Contact != "" {
			m.push(ctx, owner, itemElement(m.viewItem(ctx, owner, rel.After), false), rel.Version)
		}
		if m.deps.Blocks != nil && m.deps.Blocks(ctx, owner, user) {
			continue
		}
		before := State{Sub: rel.Before.Subscription, PendingOut: rel.Before.Ask}
		var tell []string
		if before.hasTo() || before.PendingOut {
			tell = append(tell, xmpp.TypeUnsubscribed)
		}
		if before.hasFrom() || rel.RequestDropped {
			tell = append(tell, xmpp.TypeUnsubscribe)
		}
		for _, r := range m.deps.Router.Sessions(owner) {
			if !r.Available {
				continue
			}
			for _, typ := range tell {
				r.Session.Deliver(xmpp.Build(xmpp.KindPresence, typ, "", user, r.JID))
			}
		}
		if before.hasTo() {
			m.sendUnavailable(ctx, user, owner)
		}
	}
}

// push sends a roster push to every interested resource of the user
// (RFC 6121 §2.1.6).
func (m *Module) push(ctx context.Context, user jid.JID, item *wire.Element, version uint64) {
	for _, r := range m.deps.Router.Sessions(user) {
		if r.Interested {
			m.deliverPush(ctx, r.JID, item, version)
		}
	}
}

func (m *Module) deliverPush(ctx context.Context, to jid.JID, item *wire.Element, version uint64) {
	id := "push" + strconv.FormatUint(m.pushID.Add(1), 10)
	q := wire.New("query", NS, wire.Attr{Name: "ver", Value: ver(version)}).AddChild(item)
	m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindIQ, xmpp.TypeSet, id, to.Bare(), to, q))
}

func (m *Module) pendingIn(ctx context.Context, o, c string) bool {
	_, err := m.deps.Requests.Get(ctx, o, c)
	return err == nil
}

func isSubscription(typ string) bool {
	switch typ {
	case xmpp.TypeSubscribe, xmpp.TypeSubscribed, xmpp.TypeUnsubscribe, xmpp.TypeUnsubscribed:
		return true
	}
	return false
}

// userSend processes subscription stanzas a local user sends (RFC 6121
// §3 "server processing of outbound ..." and Appendix A.2).
func (m *Module) userSend(ctx context.Context, st *xmpp.Stanza) bool {
	if st.Kind != xmpp.KindPresence || !isSubscription(st.Type) || xmpp.IsZero(st.To) {
		return false
	}
	user, contact := st.From.Bare(), st.To.Bare()
	if contact.Localpart() == "" && contact.Resourcepart() == "" && !m.deps.Router.IsLocal(contact.Domainpart()) {
		// Subscriptions to a bare domain (gateways) pass through.
		return false
	}
	if contact.Equal(user) {
		return true // a subscription to oneself is meaningless: drop it
	}
	o, c := user.String(), contact.String()
	pendingIn := m.pendingIn(ctx, o, c)
	var route, sendPresence, sendUnavailable bool
	item, version, changed, err := m.deps.Rosters.Update(ctx, o, c, func(it *store.RosterItem, exists bool) (store.UpdateOp, error) {
		// Update may call this more than once: only the last call counts.
		route, sendPresence, sendUnavailable = false, false, false
		s := State{Sub: it.Subscription, PendingOut: it.Ask, PendingIn: pendingIn}
		if st.Type == xmpp.TypeSubscribed && !pendingIn {
			// §3.4: pre-approval, unless the contact already has a
			// subscription.
			if s.hasFrom() || it.Approved {
				return store.UpdateKeep, nil
			}
			it.Approved = true
			if !exists {
				it.Added = time.Now()
			}
			return store.UpdatePut, nil
		}
		next, r := Outbound(s, st.Type)
		route = r
		if st.Type == xmpp.TypeUnsubscribed && it.Approved {
			it.Approved = false // cancels a pre-approval
			if next == s {
				return store.UpdatePut, nil
			}
		}
		if next == s {
			return store.UpdateKeep, nil
		}
		if !exists && next.Sub == store.SubNone && !next.PendingOut {
			// Declining a request (A.2.4, None + Pending In) only
			// drops the request: the requester is not added to the
			// roster.
			return store.UpdateKeep, nil
		}
		sendPresence = st.Type == xmpp.TypeSubscribed && next.hasFrom()
		sendUnavailable = st.Type == xmpp.TypeUnsubscribed && s.hasFrom()
		if st.Type == xmpp.TypeSubscribed {
			it.Approved = false
		}
		it.Subscription, it.Ask = next.Sub, next.PendingOut
		if !exists {
			it.Added = time.Now()
		}
		return store.UpdatePut, nil
	})
	if err != nil {
		m.log.Error("roster: outbound subscription", xmpp.LogJID, o, xmpp.LogErr, err)
		return true
	}
	if (st.Type == xmpp.TypeSubscribed || st.Type == xmpp.TypeUnsubscribed) && pendingIn && route {
		if err := m.deps.Requests.Delete(ctx, o, c); err != nil {
			m.log.Error("roster: delete request", xmpp.LogJID, o, xmpp.LogErr, err)
		}
	}
	if changed {
		m.push(ctx, user, itemElement(m.viewItem(ctx, user, item), false), version)
	}
	if route {
		// §3.1.2: the user's server stamps the bare JID.
		m.deps.Router.Route(ctx, st.With(user, contact))
	}
	if sendPresence {
		m.subscribed(ctx, user, contact) // an approval
	}
	if sendUnavailable {
		m.sendUnavailable(ctx, user, contact)
	}
	return true
}

// subscribed follows a subscription of contact to user's presence that
// the user approved or had pre-approved: the contact now sees each
// available resource's presence (RFC 6121 §3.1.5), and then, the
// 'subscribed' and that presence gone out, the SubscriptionApproved hook
// runs.
func (m *Module) subscribed(ctx context.Context, user, contact jid.JID) {
	for _, r := range m.deps.Router.Sessions(user) {
		if r.Available && r.Presence != nil {
			m.deps.Router.Route(ctx, r.Presence.With(r.JID, contact))
		}
	}
	if m.approved != nil {
		m.approved.Run(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeSubscribed, "", user, contact))
	}
}

// sendUnavailable sends unavailable presence from each of the user's
// available resources to the contact (RFC 6121 §3.2.2).
func (m *Module) sendUnavailable(ctx context.Context, user, contact jid.JID) {
	for _, r := range m.deps.Router.Sessions(user) {
		if r.Available {
			m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeUnavailable, "", r.JID, contact))
		}
	}
}

// presenceIn processes subscription stanzas addressed to a local user
// (RFC 6121 §3 "server processing of inbound ..." and Appendix A.3).
func (m *Module) presenceIn(ctx context.Context, st *xmpp.Stanza) bool {
	if !isSubscription(st.Type) || xmpp.IsZero(st.From) {
		return false
	}
	user, contact := st.To.Bare(), st.From.Bare()
	exists, err := m.deps.Users.Exists(ctx, user.Domainpart(), user.Localpart())
	if err != nil {
		m.log.Error("roster: user lookup", xmpp.LogJID, user.String(), xmpp.LogErr, err)
		return true
	}
	if !exists {
		if st.Type == xmpp.TypeSubscribe {
			// §3.1.3: no such user: the request is refused.
			m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeUnsubscribed, "", user, contact))
		}
		return true
	}
	o, c := user.String(), contact.String()
	pendingIn := m.pendingIn(ctx, o, c)
	// Contacts shared by the configuration are subscribed already.
	shared := m.isShared(ctx, user, c)
	var deliver, autoReply, storeRequest, dropRequest, sendPresence, sendUnavailable bool
	item, version, changed, err := m.deps.Rosters.Update(ctx, o, c, func(it *store.RosterItem, exists bool) (store.UpdateOp, error) {
		// Update may call this more than once: only the last call counts.
		deliver, autoReply, storeRequest, dropRequest, sendPresence, sendUnavailable = false, false, false, false, false, false
		s := State{Sub: it.Subscription, PendingOut: it.Ask, PendingIn: pendingIn}
		// §3.3.3: a contact that unsubscribes from the user's presence
		// gets unavailable presence from each available resource. A
		// shared contact keeps its subscription, so it keeps seeing.
		sendUnavailable = st.Type == xmpp.TypeUnsubscribe && s.hasFrom() && !shared
		if st.Type == xmpp.TypeSubscribe {
			if s.hasFrom() || shared {
				autoReply = true // §3.1.3: already subscribed
				return store.UpdateKeep, nil
			}
			if it.Approved && exists {
				// §3.4: pre-approved: accept on the user's behalf.
				it.Approved = false
				it.Subscription = s.withFrom(true).Sub
				autoReply, sendPresence = true, true
				return store.UpdatePut, nil
			}
		}
		next, d := Inbound(s, st.Type)
		deliver = d
		storeRequest = next.PendingIn && !pendingIn
		dropRequest = !next.PendingIn && pendingIn
		if next.Sub == s.Sub && next.PendingOut == s.PendingOut {
			return store.UpdateKeep, nil
		}
		if !exists {
			// Inbound requests alone never create roster items.
			return store.UpdateKeep, nil
		}
		it.Subscription, it.Ask = next.Sub, next.PendingOut
		return store.UpdatePut, nil
	})
	if err != nil {
		m.log.Error("roster: inbound subscription", xmpp.LogJID, o, xmpp.LogErr, err)
		return true
	}
	if storeRequest {
		req := store.SubRequest{From: c, Stanza: append([]byte(nil), st.With(contact, user).Bytes()...), Received: time.Now()}
		if err := m.deps.Requests.Put(ctx, o, req); err != nil {
			m.log.Warn("roster: store request", xmpp.LogJID, o, xmpp.LogErr, err)
			deliver = false
		}
	}
	if dropRequest {
		if err := m.deps.Requests.Delete(ctx, o, c); err != nil {
			m.log.Error("roster: delete request", xmpp.LogJID, o, xmpp.LogErr, err)
		}
	}
	if changed {
		m.push(ctx, user, itemElement(m.viewItem(ctx, user, item), false), version)
	}
	if autoReply {
		m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeSubscribed, "", user, contact))
	}
	if sendPresence {
		m.subscribed(ctx, user, contact) // a pre-approval taken up
	}
	if sendUnavailable {
		m.sendUnavailable(ctx, user, contact)
	}
	if deliver {
		// Delivered to every available resource; a request that
		// finds none waits for the next initial presence.
		in := st.With(contact, user)
		for _, r := range m.deps.Router.Sessions(user) {
			if r.Available {
				r.Session.Deliver(in)
			}
		}
	}
	return true
}

// initialPresence re-delivers the pending subscription requests to a
// resource that becomes available (RFC 6121 §3.1.3: until answered).
func (m *Module) initialPresence(ctx context.Context, st *xmpp.Stanza) {
	reqs, err := m.deps.Requests.List(ctx, owner(st.From))
	if err != nil {
		m.log.Error("roster: list requests", xmpp.LogJID, st.From.String(), xmpp.LogErr, err)
		return
	}
	if len(reqs) == 0 {
		return
	}
	var sess xmpp.Session
	for _, r := range m.deps.Router.Sessions(st.From.Bare()) {
		if r.JID.Equal(st.From) {
			sess = r.Session
		}
	}
	if sess == nil {
		return
	}
	for _, req := range reqs {
		if m.deps.Blocks != nil {
			// XEP-0191 §3.5: nothing from a blocked entity reaches
			// the user, a request received before the block included.
			if from, err := jid.Parse(req.From); err == nil && m.deps.Blocks(ctx, st.From, from) {
				continue
			}
		}
		el, err := wire.Parse(req.Stanza, wire.NewScope(wire.NSClient))
		if err != nil {
			continue
		}
		p, err := xmpp.NewStanza(el)
		if err != nil {
			continue
		}
		sess.Deliver(p)
	}
}
