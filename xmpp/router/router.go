package router

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

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
)

// Resource conflict policies (RFC 6120 §7.7.2.2).
const (
	ConflictKickOld = "kick_old"
	ConflictRefuse  = "refuse"
	ConflictRandom  = "random"
)

// UserDirectory tells whether an account exists.
type UserDirectory interface {
	Exists(ctx context.Context, host, local string) (bool, error)
}

// Options configure a Router.
type Options struct {
	// Hosts are the local domains.
	Hosts []string
	// ResourceConflict is one of the Conflict* policies.
	ResourceConflict string
	// MaxSessionsPerUser caps concurrent resources of one account.
	MaxSessionsPerUser int
	Logger             *slog.Logger
}

// Deps are the Router's collaborators.
type Deps struct {
	Registry *xmpp.Registry
	Hooks    *xmpp.Hooks
	Users    UserDirectory
}

type userKey struct{ local, domain string }

// resource is an immutable view of one bound session.
type resource struct {
	name      string
	full      jid.JID
	sess      xmpp.Session
	available bool
	priority  int
	presence  *xmpp.Stanza // last broadcast presence, nil before initial presence
	// interested: the resource requested the roster and gets roster
	// pushes (RFC 6121 §2.1.6).
	interested bool
	// leaving: the session was available and is closing, or hands over
	// what it was given (Leaving); Unbind broadcasts its unavailable
	// presence.
	leaving bool
}

type user struct {
	mu  sync.Mutex                  // serialises writers of res
	res atomic.Pointer[[]*resource] // immutable snapshot
}

func (u *user) snapshot() []*resource {
	if p := u.res.Load(); p != nil {
		return *p
	}
	return nil
}

// Router is the in-process router and session manager.
type Router struct {
	opts  Options
	log   *slog.Logger
	reg   *xmpp.Registry
	hooks *xmpp.Hooks
	users UserDirectory
	hosts map[string]bool

	mu       sync.RWMutex
	sessions map[userKey]*user
	// sessionsPeak lets Unbind shrink sessions after many users left.
	sessionsPeak xmpp.MapPeak
	components   map[string]xmpp.Component
	// external marks the components that are other programs
	// (XEP-0114): the server does not answer them as its own.
	external map[string]bool
	count    atomic.Int64
	// remote carries stanzas to other servers (federation); nil without.
	remote atomic.Pointer[Remote]
}

// Remote carries stanzas addressed to domains the server does not serve to
// the servers that do (RFC 6120 §10.4).
type Remote interface {
	Route(ctx context.Context, st *xmpp.Stanza)
}

// SetRemote sets where stanzas to other domains go; before it is set (or
// with nil) they are answered with remote-server-not-found, except
// presence of availability and probes, which get no answer.
func (r *Router) SetRemote(rem Remote) {
	if rem == nil {
		r.remote.Store(nil)
		return
	}
	r.remote.Store(&rem)
}

// Serves reports whether domain is one of the server's hosts or the domain
// of one of its components (a room or upload service, an external
// component).
func (r *Router) Serves(domain string) bool {
	if r.hosts[domain] {
		return true
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.components[domain] != nil
}

var _ xmpp.Router = (*Router)(nil)

// New returns a Router.
func New(opts Options, deps Deps) (*Router, error) {
	if len(opts.Hosts) == 0 {
		return nil, errors.New("router: no hosts")
	}
	switch opts.ResourceConflict {
	case "":
		opts.ResourceConflict = ConflictKickOld
	case ConflictKickOld, ConflictRefuse, ConflictRandom:
	default:
		return nil, fmt.Errorf("router: unknown resource conflict policy %q", opts.ResourceConflict)
	}
	if opts.MaxSessionsPerUser <= 0 {
		opts.MaxSessionsPerUser = 10
	}
	if deps.Registry == nil || deps.Hooks == nil || deps.Users == nil {
		return nil, errors.New("router: missing dependency")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Router{
		opts: opts, log: opts.Logger, reg: deps.Registry, hooks: deps.Hooks, users: deps.Users,
		hosts:      map[string]bool{},
		sessions:   map[userKey]*user{},
		components: map[string]xmpp.Component{},
		external:   map[string]bool{},
	}
	for _, h := range opts.Hosts {
		r.hosts[h] = true
	}
	return r, nil
}

// IsLocal reports whether domain is one of the server's hosts.
func (r *Router) IsLocal(domain string) bool { return r.hosts[domain] }

// AddComponent routes every stanza for c.Domain() to c.
func (r *Router) AddComponent(c xmpp.Component) error { return r.add(c, false) }

// AddExternal routes every stanza for c.Domain() to c, an external
// component (XEP-0114): a program of its own, which the server's services
// answer as they answer another server's users (TargetRemote), not as one
// of the server's own services.
func (r *Router) AddExternal(c xmpp.Component) error { return r.add(c, true) }

func (r *Router) add(c xmpp.Component, external bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := c.Domain()
	if r.hosts[d] || r.components[d] != nil {
		return fmt.Errorf("router: domain %s already served", d)
	}
	r.components[d] = c
	r.external[d] = external
	return nil
}

// IsComponent reports whether one of the server's own services (rooms,
// uploads) serves domain. An external component (AddExternal) is not one:
// its addresses may be people, such as a gateway's phone contacts.
func (r *Router) IsComponent(domain string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.components[domain] != nil && !r.external[domain]
}

// SessionCount returns the number of bound sessions.
func (r *Router) SessionCount() int { return int(r.count.Load()) }

func keyOf(j jid.JID) userKey { return userKey{j.Localpart(), j.Domainpart()} }

// Bind binds sess as a resource of the account bare, applying the resource
// conflict policy. An empty resource gets a server-generated one
// (RFC 6120 §7.6). It returns the full JID or a stanza error
// (conflict, resource-constraint).
func (r *Router) Bind(ctx context.Context, sess xmpp.Session, bare jid.JID, resourcepart string) (jid.JID, error) {
	if resourcepart == "" {
		resourcepart = randomResource()
	}
	full, err := bare.WithResource(resourcepart)
	if err != nil {
		return jid.JID{}, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}
	}
	var kicked xmpp.Session
	var kickedRes *resource
	r.mu.Lock()
	u := r.sessions[keyOf(bare)]
	if u == nil {
		u = &user{}
		r.sessions[keyOf(bare)] = u
		r.sessionsPeak.Grew(len(r.sessions))
	}
	u.mu.Lock()
	old := u.snapshot()
	idx := -1
	for i, res := range old {
		if res.name == full.Resourcepart() {
			idx = i
		}
	}
	if idx >= 0 && givesWay(old[idx]) {
		// A session waiting for its client to resume it (XEP-0198),
		// or ending and handing over (Leaving), has no connection to
		// protect: the new bind replaces it, whatever the policy (its
		// client lost the session's state).
	} else if idx >= 0 {
		switch r.opts.ResourceConflict {
		case ConflictRefuse:
			u.mu.Unlock()
			r.mu.Unlock()
			return jid.JID{}, xmpp.StanzaError(stanza.Conflict, "resource in use")
		case ConflictRandom:
			if f, err := bare.WithResource(full.Resourcepart() + "." + randomResource()[:8]); err == nil {
				full = f
			} else {
				// The suffix made it too long: a resource of our own.
				full, _ = bare.WithResource(randomResource())
			}
			idx = -1
		}
	}
	if idx < 0 && len(old) >= r.opts.MaxSessionsPerUser {
		// A session waiting for a resumption, or ending (leaving),
		// gives way before a connected one is refused.
		for i, res := range old {
			if givesWay(res) {
				idx = i
				break
			}
		}
		if idx < 0 {
			u.mu.Unlock()
			r.mu.Unlock()
			return jid.JID{}, xmpp.StanzaError(stanza.ResourceConstraint, "too many sessions")
		}
	}
	next := make([]*resource, 0, len(old)+1)
	for i, res := range old {
		if i == idx {
			kicked, kickedRes = res.sess, res
			continue
		}
		next = append(next, res)
	}
	next = append(next, &resource{name: full.Resourcepart(), full: full, sess: sess})
	u.res.Store(&next)
	u.mu.Unlock()
	r.mu.Unlock()
	if kicked == nil {
		r.count.Add(1)
	}
	if kicked != nil {
		// The same resource, or a hibernating session of another
		// making room.
		gone := kickedRes.full
		r.log.Info("resource conflict: closing old session", xmpp.LogJID, gone.String())
		// RFC 6120 §7.7.2.2: terminate the existing session.
		kicked.Close("conflict", "replaced by a new connection")
		// Its Unbind will not find it: its presence ends here.
		r.sessionGone(ctx, kickedRes)
	}
	r.hooks.SessionBound.Run(ctx, xmpp.SessionEvent{Session: sess, JID: full})
	return full, nil
}

// givesWay reports whether a new bind may replace res whatever the
// conflict policy and the session limit: its session hibernates, or it
// ended and hands over what it was given (leaving).
func givesWay(res *resource) bool { return res.leaving || xmpp.Hibernating(res.sess) }

// Hibernated tells the modules (the Hibernated hooks) that sess's
// transport failed and it waits for its client to resume it, with what
// the client was sent and did not acknowledge, and what waits to be
// written (XEP-0198 §5).
func (r *Router) Hibernated(ctx context.Context, sess xmpp.Session, pending []*xmpp.Stanza) {
	r.hooks.Hibernated.Run(ctx, xmpp.Unreached{Session: sess, JID: sess.JID(), Pending: pending})
}

// AckDelayed tells the modules (the AckDelayed hooks) that sess's client
// has not acknowledged what it was sent (XEP-0198 §4) for too long, with
// what it did not acknowledge and what waits to be written.
func (r *Router) AckDelayed(ctx context.Context, sess xmpp.Session, pending []*xmpp.Stanza) {
	r.hooks.AckDelayed.Run(ctx, xmpp.Unreached{Session: sess, JID: sess.JID(), Pending: pending})
}

func randomResource() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "sb-" + hex.EncodeToString(b[:])
}

// Unbind removes sess, bound as full, and ends its presence
// (sessionGone).
func (r *Router) Unbind(ctx context.Context, sess xmpp.Session, full jid.JID) {
	var gone *resource
	r.mu.Lock()
	if u := r.sessions[keyOf(full)]; u != nil {
		u.mu.Lock()
		old := u.snapshot()
		next := make([]*resource, 0, len(old))
		for _, res := range old {
			if res.sess == sess {
				gone = res
				continue
			}
			next = append(next, res)
		}
		if len(next) == 0 {
			delete(r.sessions, keyOf(full))
			r.sessions = xmpp.CompactMap(r.sessions, &r.sessionsPeak)
		}
		u.res.Store(&next)
		u.mu.Unlock()
	}
	r.mu.Unlock()
	if gone == nil {
		return
	}
	r.count.Add(-1)
	r.sessionGone(ctx, gone)
}

// sessionGone follows a resource taken off its account's list (Unbind, or
// a Bind that replaced it): if it was available, or leaving (Leaving), its
// unavailable presence is broadcast as RFC 6121 §4.5.2 requires when a
// session ends without one; then the SessionClosed hook runs.
func (r *Router) sessionGone(ctx context.Context, res *resource) {
	if res.available || res.leaving {
		unavailable := xmpp.Build(xmpp.KindPresence, xmpp.TypeUnavailable, "", res.full, jid.JID{})
		r.broadcastOwn(ctx, res.full, unavailable)
		r.hooks.PresenceBroadcast.Run(ctx, unavailable)
	}
	r.hooks.SessionClosed.Run(ctx, xmpp.SessionEvent{Session: res.sess, JID: res.full})
}

// Unacknowledged takes the stanzas an ended session sess was given but
// whose receipt its client never acknowledged (XEP-0198 §4), "in the same
// way that it would treat a stanza sent to an unavailable resource". The
// session may still be bound (a hibernating session unbinds after it hands
// over, so that its contacts see it leave once that is settled): it has
// left the account's available resources first (Leaving), and its
// unavailable presence is broadcast when it unbinds. A new session of the
// same resource (kick_old) is another session: it takes what is handed
// over.
//   - A chat or normal message goes to the account's other available resources
//     with the highest non-negative priority, as one to the bare JID would
//     (RFC 6121 §8.5.2.1.1; one that had it already, routed there or as a
//     carbon copy, gets it twice, with the same stanza-id), else to offline
//     storage (the Undeliverable hook), else back to its sender as
//     service-unavailable. Nothing is archived again: it keeps the
//     stanza-id the archive gave it.
//   - Copies forwarded to the session (XEP-0297: carbons, archive query
//     results) and messages from the account itself (carbons, personal
//     eventing) were the session's alone: dropped, as are groupchat,
//     headline and error messages, and presence. So is a chat state
//     alone (XEP-0085): stale once the session is gone, it would show
//     "typing" on another device long after (such a session may have
//     held many for an inactive client, XEP-0352).
//   - A request (IQ get or set) is answered with service-unavailable, as
//     for a resource that is gone (RFC 6121 §8.5.3.2.3); responses are
//     dropped.
func (r *Router) Unacknowledged(ctx context.Context, sess xmpp.Session, sts []*xmpp.Stanza) {
	bare := sess.JID().Bare()
	checked, exists := false, false
	// Where they go is decided once, from one list of the account's
	// resources: looked up again for each, a resource that becomes
	// available in between would take the later ones live while the
	// earlier ones wait in offline storage, out of order.
	var others []*resource
	for _, st := range sts {
		if st.IsIQRequest() {
			r.bounce(ctx, st, stanza.ServiceUnavailable, "")
			continue
		}
		if !redeliverable(st, bare) {
			continue
		}
		if !checked {
			// The account may have been deleted (its sessions closed
			// with it): nothing is stored for it then. Asked of the
			// user store: the session handing over may still be
			// bound, and proves nothing.
			checked, exists = true, r.stored(ctx, bare)
			others = r.others(bare, sess)
		}
		if !exists {
			r.bounce(ctx, st, stanza.ServiceUnavailable, "")
			continue
		}
		r.redeliverTo(ctx, st, bare, others)
	}
}

// Leaving takes a session that is closing, or that hands over what it was
// given, off the account's available resources while it stays bound: it
// takes nothing more, and nothing more is routed to it. Modules that look
// for the account's available resources pass it over (offline storage,
// which hands a message it stored to the best of them, would otherwise
// take back everything stored for each message routed meanwhile, and put
// it back when the session refused it). It is marked leaving, so that
// Unbind still broadcasts its unavailable presence, and a new bind of its
// resource replaces it (givesWay). A session no longer bound, or not
// available, is left as it is.
func (r *Router) Leaving(sess xmpp.Session) {
	r.updateWhere(sess.JID(), func(res *resource) bool { return res.sess == sess && res.available },
		func(res *resource) { res.available, res.leaving = false, true })
}

// redeliverable reports whether a message that a resource of bare could
// not take goes to the account's other resources or offline storage
// (redeliver): a chat or normal message from someone else, neither a copy
// forwarded to that session (XEP-0297: carbons, archive query results,
// the session's alone) nor a chat state alone (XEP-0085: stale by then,
// it would show "typing" long after).
func redeliverable(st *xmpp.Stanza, bare jid.JID) bool {
	if st.Kind != xmpp.KindMessage {
		return false
	}
	switch st.Type {
	case "", xmpp.TypeChat, xmpp.TypeNormal:
	default:
		return false
	}
	if st.From.Equal(bare) || forwarded(st) {
		return false
	}
	_, chatState := xmpp.ChatStateOnly(st.El)
	return !chatState
}

// redeliver delivers a redeliverable message to a local account that has
// been through MessageIn (archived, stamped) but that its resource failed
// did not take (a session closing, or one ended with what it held): as to
// the bare JID (RFC 6121 §8.5.3.2.1), to the other available resources
// with the highest non-negative priority, else to offline storage, else
// back to its sender. failed may still be bound; it is passed over. The
// Delivered hooks do not run: they ran with the first delivery, if there
// was one.
func (r *Router) redeliver(ctx context.Context, st *xmpp.Stanza, failed xmpp.Session) {
	bare := failed.JID().Bare()
	r.redeliverTo(ctx, st, bare, r.others(bare, failed))
}

// others returns bare's resources but failed's session. The failed
// session, not its address: a new session of the same resource (a
// reconnection that replaced it, kick_old) takes what failed did not.
func (r *Router) others(bare jid.JID, failed xmpp.Session) []*resource {
	return slices.DeleteFunc(slices.Clone(r.lookup(bare)), func(res *resource) bool { return res.sess == failed })
}

// redeliverTo is redeliver to a given list of the account's resources.
func (r *Router) redeliverTo(ctx context.Context, st *xmpp.Stanza, bare jid.JID, others []*resource) {
	if !st.To.Equal(bare) {
		st = st.With(st.From, bare)
	}
	r.deliverOrStore(ctx, st, others)
}

// deliverOrStore delivers a chat or normal message to the resources with
// the highest non-negative priority among resources, else to offline
// storage (the Undeliverable hooks), else back to its sender. It returns
// the resources it went to.
func (r *Router) deliverOrStore(ctx context.Context, st *xmpp.Stanza, resources []*resource) []jid.JID {
	if to := r.deliverHighest(ctx, st, resources); len(to) > 0 {
		return to
	}
	if !r.hooks.Undeliverable.Run(ctx, st) {
		r.bounce(ctx, st, stanza.ServiceUnavailable, "")
	}
	return nil
}

// forwarded reports whether a message wraps a forwarded one (XEP-0297), as
// carbons and archive query results do.
func forwarded(st *xmpp.Stanza) bool {
	for _, c := range st.El.Children {
		if c.Child("forwarded", xmpp.NSForward) != nil {
			return true
		}
	}
	return false
}

// CloseAll closes every session with the stream error condition.
func (r *Router) CloseAll(cond, text string) {
	r.mu.RLock()
	var all []xmpp.Session
	for _, u := range r.sessions {
		for _, res := range u.snapshot() {
			all = append(all, res.sess)
		}
	}
	r.mu.RUnlock()
	for _, s := range all {
		s.Close(cond, text)
	}
}

// CloseUser closes every session of the account.
func (r *Router) CloseUser(bare jid.JID, cond, text string) {
	for _, res := range r.lookup(bare) {
		res.sess.Close(cond, text)
	}
}

func (r *Router) lookup(j jid.JID) []*resource {
	r.mu.RLock()
	u := r.sessions[keyOf(j)]
	r.mu.RUnlock()
	if u == nil {
		return nil
	}
	return u.snapshot()
}

// Resources returns the full JIDs bound for the account, for admin tools
// and tests.
func (r *Router) Resources(bare jid.JID) []jid.JID {
	var out []jid.JID
	for _, res := range r.lookup(bare) {
		out = append(out, res.full)
	}
	return out
}

// RouteFromClient routes a stanza a local client sent (its sender already
// stamped): an available presence is rewritten by the PresenceOut hooks
// first; the UserSend hooks see it then, and, for a message, the
// MessageOut hooks (archive, sent carbons), whose result is not routed.
func (r *Router) RouteFromClient(ctx context.Context, st *xmpp.Stanza) {
	if st.Kind == xmpp.KindPresence && st.Type == "" {
		st = r.hooks.PresenceOut.Run(ctx, st)
	}
	if r.hooks.UserSend.Run(ctx, st) {
		return
	}
	if st.Kind == xmpp.KindMessage {
		r.hooks.MessageOut.Run(ctx, st)
	}
	r.Route(ctx, st)
}

// Route implements xmpp.Router.
func (r *Router) Route(ctx context.Context, st *xmpp.Stanza) {
	if r.hooks.Inbound.Run(ctx, st) {
		return
	}
	if xmpp.IsZero(st.To) {
		r.routeNoTo(ctx, st)
		return
	}
	domain := st.To.Domainpart()
	if !r.hosts[domain] {
		r.mu.RLock()
		c := r.components[domain]
		r.mu.RUnlock()
		if c != nil {
			c.Route(ctx, st)
			return
		}
		if rem := r.remote.Load(); rem != nil {
			(*rem).Route(ctx, st)
			return
		}
		// Without federation, RFC 6120 §10.4.3.
		if st.IsAvailabilityOrProbe() {
			return
		}
		r.bounce(ctx, st, stanza.RemoteServerNotFound, "")
		return
	}
	if st.To.Localpart() == "" {
		r.routeHost(ctx, st)
		return
	}
	if st.To.Resourcepart() != "" {
		r.routeFull(ctx, st)
		return
	}
	r.routeBare(ctx, st)
}

// routeNoTo handles a stanza without 'to' from a local client
// (RFC 6120 §10.3).
func (r *Router) routeNoTo(ctx context.Context, st *xmpp.Stanza) {
	if !r.hosts[st.From.Domainpart()] || st.From.Localpart() == "" {
		return
	}
	switch st.Kind {
	case xmpp.KindPresence:
		r.broadcastPresence(ctx, st)
	case xmpp.KindMessage:
		// RFC 6120 §10.3.1: as if addressed to the sender's bare JID.
		r.routeBare(ctx, st.With(st.From, st.From.Bare()))
	case xmpp.KindIQ:
		r.handleIQ(ctx, xmpp.TargetAccount, st)
	}
}

// routeHost handles a stanza addressed to a local domain.
func (r *Router) routeHost(ctx context.Context, st *xmpp.Stanza) {
	switch st.Kind {
	case xmpp.KindIQ:
		t := xmpp.TargetHost
		if from := st.From.Domainpart(); !xmpp.IsZero(st.From) && !r.hosts[from] && !r.IsComponent(from) {
			// Another server's user, or an external component.
			t = xmpp.TargetRemote
		}
		r.handleIQ(ctx, t, st)
	case xmpp.KindMessage:
		// No server-side message handling: RFC 6120 §10.5.4 allows
		// silently ignoring it; errors are never answered.
	case xmpp.KindPresence:
		// Presence to the server itself carries no meaning here.
	}
}

func (r *Router) handleIQ(ctx context.Context, t xmpp.Target, st *xmpp.Stanza) {
	if !st.IsIQRequest() {
		return // a response to nothing we track: ignore
	}
	if len(st.El.Children) != 1 {
		// RFC 6120 §8.2.3: a get or set has exactly one child.
		r.bounce(ctx, st, stanza.BadRequest, "IQ get/set must have exactly one child")
		return
	}
	h := r.reg.IQ(t, st)
	if h == nil {
		r.bounce(ctx, st, stanza.ServiceUnavailable, "")
		return
	}
	reply, err := h(ctx, st)
	if err != nil {
		se := xmpp.AsStanzaError(err)
		if se.Condition == stanza.InternalServerError {
			r.log.Error("IQ handler failed", xmpp.LogJID, st.From.String(), xmpp.LogID, st.ID, xmpp.LogErr, err)
		}
		if e := st.ErrorReply(se); e != nil {
			r.Route(ctx, e)
		}
		return
	}
	if reply != nil {
		r.Route(ctx, reply)
	}
}

// bounce answers st with an error unless st is itself an error or an IQ
// response (ErrorReply answers neither).
func (r *Router) bounce(ctx context.Context, st *xmpp.Stanza, cond stanza.Condition, text string) {
	if xmpp.IsZero(st.From) {
		return
	}
	if e := st.ErrorReply(xmpp.StanzaError(cond, text)); e != nil {
		r.Route(ctx, e)
	}
}

func (r *Router) exists(ctx context.Context, j jid.JID) bool {
	return len(r.lookup(j)) > 0 || r.stored(ctx, j)
}

// stored reports whether the account j exists in the user store, whatever
// its sessions.
func (r *Router) stored(ctx context.Context, j jid.JID) bool {
	ok, err := r.users.Exists(ctx, j.Domainpart(), j.Localpart())
	if err != nil {
		r.log.Error("user lookup failed", xmpp.LogJID, j.String(), xmpp.LogErr, err)
		return false
	}
	return ok
}

// routeBare applies RFC 6121 §8.5.1 and §8.5.2.
func (r *Router) routeBare(ctx context.Context, st *xmpp.Stanza) {
	if st.Kind == xmpp.KindIQ {
		if !r.exists(ctx, st.To) {
			if st.IsIQRequest() {
				r.bounce(ctx, st, stanza.ServiceUnavailable, "")
			}
			return
		}
		// §8.5.2.1.3: the server answers on the user's behalf.
		r.handleIQ(ctx, xmpp.TargetAccount, st)
		return
	}
	if st.Kind == xmpp.KindPresence && r.hooks.PresenceIn.Run(ctx, st) {
		return
	}
	resources := r.lookup(st.To)
	if st.Kind == xmpp.KindPresence {
		// §8.5.2.1.2: directed presence (and, without a roster module,
		// subscription states) to every available resource; probes are
		// the presence module's (nothing is revealed without it).
		if st.Type != xmpp.TypeProbe {
			r.deliverAvailable(ctx, st, resources, false)
		}
		return
	}
	// Messages.
	switch st.Type {
	case xmpp.TypeError:
		// §8.5.2.1.1 and §8.5.2.2.1: silently ignore, whether or not
		// a resource is available.
	case xmpp.TypeGroupchat:
		r.bounce(ctx, st, stanza.ServiceUnavailable, "")
	case xmpp.TypeHeadline:
		// Not archived, but a forged stanza-id is removed all the same.
		st = r.hooks.MessageIn.Run(ctx, st)
		r.deliverAvailable(ctx, st, resources, true)
	default:
		if len(resources) == 0 && !r.exists(ctx, st.To) {
			r.bounce(ctx, st, stanza.ServiceUnavailable, "")
			return
		}
		// Archived (and stamped with a stanza-id) before it is
		// delivered or stored offline.
		st = r.hooks.MessageIn.Run(ctx, st)
		if to := r.deliverOrStore(ctx, st, resources); len(to) > 0 {
			r.hooks.Delivered.Run(ctx, xmpp.Delivery{Stanza: st, To: to})
		}
	}
}

// deliver delivers st to sess. A message may leave the start of the
// session's writer to the routing goroutine (xmpp.DeliverIn): after its
// delivery its route runs only the Delivered hooks, which do not wait.
// Other stanzas' routes may go on to commits (presence, subscriptions).
// A message routed from inside another route (an archive query's results,
// from its IQ's handler) waits for that route's end too, but only the
// first one per session: a second delivery starts the session's writer.
func deliver(ctx context.Context, sess xmpp.Session, st *xmpp.Stanza) bool {
	if st.Kind == xmpp.KindMessage {
		return xmpp.DeliverIn(ctx, sess, st)
	}
	return sess.Deliver(st)
}

// deliverAvailable delivers to every available resource (with a
// non-negative priority when nonNegative); it reports whether any took it.
func (r *Router) deliverAvailable(ctx context.Context, st *xmpp.Stanza, resources []*resource, nonNegative bool) bool {
	any := false
	for _, res := range resources {
		if !res.available || (nonNegative && res.priority < 0) {
			continue
		}
		if deliver(ctx, res.sess, st) {
			any = true
		}
	}
	return any
}

// deliverHighest delivers to the available resources with the highest
// non-negative priority (RFC 6121 §8.5.2.1.1, option "most available").
func (r *Router) deliverHighest(ctx context.Context, st *xmpp.Stanza, resources []*resource) []jid.JID {
	best := -1
	for _, res := range resources {
		if res.available && res.priority > best {
			best = res.priority
		}
	}
	if best < 0 {
		return nil
	}
	var to []jid.JID
	for _, res := range resources {
		if res.available && res.priority == best && deliver(ctx, res.sess, st) {
			to = append(to, res.full)
		}
	}
	return to
}

// routeFull applies RFC 6121 §8.5.3.
func (r *Router) routeFull(ctx context.Context, st *xmpp.Stanza) {
	if st.Kind == xmpp.KindPresence {
		switch st.Type {
		case xmpp.TypeProbe, xmpp.TypeSubscribe, xmpp.TypeSubscribed, xmpp.TypeUnsubscribe, xmpp.TypeUnsubscribed:
			// §8.5.3.1: probes (§4.3) and subscription states (§3)
			// are the server's business even when the resource is
			// connected: as if addressed to the bare JID.
			r.routeBare(ctx, st.With(st.From, st.To.Bare()))
			return
		}
	}
	resources := r.lookup(st.To)
	for _, res := range resources {
		if res.name == st.To.Resourcepart() {
			// §8.5.3.1: deliver to the connected resource. An error
			// too goes through MessageIn: it is not archived, but a
			// forged stanza-id is removed all the same (XEP-0359 §3).
			if st.Kind == xmpp.KindMessage {
				st = r.hooks.MessageIn.Run(ctx, st)
			}
			ok := deliver(ctx, res.sess, st)
			if !ok && st.Kind == xmpp.KindIQ {
				r.bounce(ctx, st, stanza.ServiceUnavailable, "")
			}
			if !ok && redeliverable(st, res.full.Bare()) {
				// The session is closing (a slow consumer, a
				// session ending after stream management's
				// hibernation): as if the resource were gone.
				r.redeliver(ctx, st, res.sess)
				return
			}
			if ok && st.Kind == xmpp.KindMessage {
				r.hooks.Delivered.Run(ctx, xmpp.Delivery{Stanza: st, To: []jid.JID{res.full}})
			}
			return
		}
	}
	// §8.5.3.2: no resource matches.
	switch st.Kind {
	case xmpp.KindMessage:
		switch st.Type {
		case xmpp.TypeGroupchat:
			r.bounce(ctx, st, stanza.ServiceUnavailable, "")
		case xmpp.TypeError:
		default:
			r.routeBare(ctx, st)
		}
	case xmpp.KindPresence:
		switch st.Type {
		case "", xmpp.TypeUnavailable, xmpp.TypeError:
			// §8.5.3.2.2: silently ignore.
		default:
			// Subscription states and probes: as if to the bare JID.
			r.routeBare(ctx, st.With(st.From, st.To.Bare()))
		}
	case xmpp.KindIQ:
		if st.IsIQRequest() {
			r.bounce(ctx, st, stanza.ServiceUnavailable, "")
		}
	}
}

// broadcastPresence records a session's broadcast presence (RFC 6121 §4.2
// initial, §4.4 subsequent, §4.5 unavailable) and sends it to the user's own
// available resources; the presence module fans it out to contacts through
// the PresenceBroadcast hook.
func (r *Router) broadcastPresence(ctx context.Context, st *xmpp.Stanza) {
	switch st.Type {
	case "", xmpp.TypeUnavailable:
	default:
		return
	}
	available := st.Type == ""
	if available {
		st = r.hooks.BroadcastPresence.Run(ctx, st)
	}
	prio := 0
	if p := st.El.ChildText("priority", xmpp.NSClient); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < -128 || n > 127 {
			r.bounce(ctx, st, stanza.BadRequest, "priority must be an integer from -128 to 127")
			return
		}
		prio = n
	}
	r.mu.RLock()
	u := r.sessions[keyOf(st.From)]
	r.mu.RUnlock()
	if u == nil {
		return
	}
	u.mu.Lock()
	old := u.snapshot()
	next := make([]*resource, len(old))
	initial := false
	var self *resource // the sender's resource, nil if not bound
	for i, res := range old {
		if res.name == st.From.Resourcepart() {
			if res.leaving {
				// Closing (Leaving): what its client sends until
				// its transport closes changes nothing. It would
				// be taken for an initial presence, and an
				// unavailable one would be broadcast twice
				// (Unbind sends one).
				u.mu.Unlock()
				return
			}
			initial = available && !res.available
			c := *res
			c.available, c.priority = available, prio
			if available {
				c.presence = st
			} else {
				c.presence = nil
			}
			res = &c
			self = res
		}
		next[i] = res
	}
	u.res.Store(&next)
	if initial {
		// §4.2.2: a user is implicitly subscribed to their own
		// presence, so the new resource gets the presence of the
		// account's other available resources, as they get its own.
		// Under the lock: another resource's change queues after this
		// (its broadcastOwn reads the new snapshot), so a resource
		// that just went unavailable is not shown available after.
		// Deliver only queues; it never calls back into the router.
		// The new resource was not available in old: it is not among
		// those delivered.
		selfStr := self.full.String()
		for _, res := range old {
			if res.available && res.presence != nil {
				self.sess.Deliver(res.presence.WithTo(self.full, selfStr))
			}
		}
	}
	u.mu.Unlock()
	if self == nil {
		return
	}
	r.broadcastOwn(ctx, st.From, st)
	if !available {
		// The now-unavailable sender still sees its own presence.
		for _, res := range old {
			if res.name == st.From.Resourcepart() && res.available {
				res.sess.Deliver(st.With(st.From, st.From))
			}
		}
	}
	r.hooks.PresenceBroadcast.Run(ctx, st)
	if initial {
		r.hooks.InitialPresence.Run(ctx, st)
	}
}

// broadcastOwn sends a presence from one resource to every available
// resource of the same account, the sender included (RFC 6121 §4.2.2).
func (r *Router) broadcastOwn(ctx context.Context, from jid.JID, st *xmpp.Stanza) {
	for _, res := range r.lookup(from) {
		if res.available {
			res.sess.Deliver(st.With(from, res.full))
		}
	}
}

// SetInterested marks a resource as interested in roster pushes.
func (r *Router) SetInterested(full jid.JID) {
	r.updateResource(full, func(res *resource) { res.interested = true })
}

// updateResource applies fn to a copy of the resource named by full.
func (r *Router) updateResource(full jid.JID, fn func(*resource)) {
	name := full.Resourcepart()
	r.updateWhere(full, func(res *resource) bool { return res.name == name }, fn)
}

// updateWhere applies fn to a copy of each resource of full's account that
// match reports, in a new snapshot; with none, the snapshot stays.
func (r *Router) updateWhere(full jid.JID, match func(*resource) bool, fn func(*resource)) {
	r.mu.RLock()
	u := r.sessions[keyOf(full)]
	r.mu.RUnlock()
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.snapshot()
	var next []*resource
	for i, res := range old {
		if !match(res) {
			continue
		}
		if next == nil {
			next = slices.Clone(old)
		}
		c := *res
		fn(&c)
		next[i] = &c
	}
	if next != nil {
		u.res.Store(&next)
	}
}

// Sessions returns the bound resources of an account.
func (r *Router) Sessions(bare jid.JID) []xmpp.Resource {
	res := r.lookup(bare)
	out := make([]xmpp.Resource, 0, len(res))
	for _, x := range res {
		out = append(out, xmpp.Resource{JID: x.full, Available: x.available, Priority: x.priority,
			Interested: x.interested, Presence: x.presence, Session: x.sess})
	}
	return out
}

// Presence returns the last available presence of each available resource
// of the account (for probes and admin tools).
func (r *Router) Presence(bare jid.JID) []*xmpp.Stanza {
	var out []*xmpp.Stanza
	for _, res := range r.lookup(bare) {
		if res.available && res.presence != nil {
			out = append(out, res.presence)
		}
	}
	return out
}
