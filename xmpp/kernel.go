package xmpp

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"mellium.im/xmpp/jid"
)

// Namespaces of the core protocols.
const (
	NSClient    = "jabber:client"
	NSServer    = "jabber:server"
	NSStream    = "http://etherx.jabber.org/streams"
	NSStreamErr = "urn:ietf:params:xml:ns:xmpp-streams"
	NSTLS       = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL      = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind      = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSession   = "urn:ietf:params:xml:ns:xmpp-session"
	NSDiscoInfo = "http://jabber.org/protocol/disco#info"
	NSDiscoItem = "http://jabber.org/protocol/disco#items"
	// NSHints is XEP-0334 (message processing hints).
	NSHints = "urn:xmpp:hints"
	// NSChatStates is XEP-0085 (chat state notifications).
	NSChatStates = "http://jabber.org/protocol/chatstates"
	// NSChatMarkers is XEP-0333 (chat markers).
	NSChatMarkers = "urn:xmpp:chat-markers:0"
	// NSCarbons is XEP-0280 (message carbons).
	NSCarbons = "urn:xmpp:carbons:2"
	// NSForward is XEP-0297 (stanza forwarding: carbons, archive results).
	NSForward = "urn:xmpp:forward:0"
	// NSMUCUser is XEP-0045's muc#user namespace.
	NSMUCUser = "http://jabber.org/protocol/muc#user"
	// NSOMEMO is the namespace of OMEMO 0.3 (XEP-0384 before 0.4), the
	// end-to-end encryption clients use.
	NSOMEMO = "eu.siacs.conversations.axolotl"
	// NSOMEMO2 is OMEMO 0.4 and later (XEP-0384).
	NSOMEMO2 = "urn:xmpp:omemo:2"
	// NSOpenPGP is OpenPGP for XMPP (XEP-0373).
	NSOpenPGP = "urn:xmpp:openpgp:0"
	// NSLegacyPGP is XEP-0027's OpenPGP encryption.
	NSLegacyPGP = "jabber:x:encrypted"
	// NSConference is XEP-0249 (direct room invitations).
	NSConference = "jabber:x:conference"
	// NSJingleMessagePrefix starts the namespaces of XEP-0353 call
	// messages: version 0 and the later 1 that clients send too.
	NSJingleMessagePrefix = "urn:xmpp:jingle-message:"
)

// Log keys shared by all packages.
const (
	LogConn   = "conn"
	LogJID    = "jid"
	LogRemote = "remote"
	LogDomain = "domain"
	LogID     = "id"
	LogErr    = "err"
)

// Session is a bound stream that stanzas are delivered to.
type Session interface {
	// JID is the session's full JID.
	JID() jid.JID
	// Deliver queues st for writing. It never blocks and never calls
	// back into the router (the router delivers under an account's
	// lock); it returns false when the session is closed or its outbox
	// overflowed (in which case the session closes itself as a slow
	// consumer).
	Deliver(st *Stanza) bool
	// Close ends the session with the stream error condition cond
	// ("" for a normal close). It may call back into the router (a
	// client session leaves the account's available resources at once,
	// Router.Leaving): it must not be called under the router's locks.
	Close(cond, text string)
}

// Router routes stanzas between local sessions, the server, components and
// remote domains (RFC 6120 §10, RFC 6121 §8).
type Router interface {
	// Route delivers st according to its 'to' address. st.From must
	// already be trustworthy (stamped by the ingress).
	Route(ctx context.Context, st *Stanza)
}

// Component handles every stanza addressed to its domain (a MUC service,
// an upload service, an external component).
type Component interface {
	Domain() string
	Route(ctx context.Context, st *Stanza)
}

// IQHandler answers an IQ request. It returns the reply (a result or an
// error stanza), nil when it has sent the reply itself, or an error that
// the caller turns into an error reply (RFC 6120 §8.3).
type IQHandler func(ctx context.Context, st *Stanza) (*Stanza, error)

// Target says whose behalf an IQ handler answers on.
type Target uint8

const (
	// TargetHost is a server domain: <iq to='example.com'>.
	TargetHost Target = 1 << iota
	// TargetAccount is a user's bare JID, or no 'to' at all
	// (RFC 6120 §10.3.3, RFC 6121 §8.5.2.1.3).
	TargetAccount
	// TargetRemote is a server domain asked by a user of another
	// server (federation). Only the services registered for it answer
	// such users (discovery, ping, version, time, uptime); the others
	// serve the server's own accounts and keep state for their
	// sessions.
	TargetRemote
)

// Feature is a disco#info feature or identity a module adds.
type Feature struct {
	Target Target
	Var    string
}

// Identity is a disco#info identity.
type Identity struct {
	Target         Target
	Category, Type string
	Name           string
}

type iqKey struct {
	target Target
	typ    string
	space  string
	local  string
}

// Registry holds the IQ handlers and disco features of the server's
// modules. Registration happens at startup and ends with Freeze; lookups
// take a read lock, which is uncontended after Freeze.
type Registry struct {
	mu         sync.RWMutex
	frozen     bool
	iq         map[iqKey]IQHandler
	owners     map[iqKey]string
	features   []Feature
	identities []Identity
	commands   map[string]Command
	nodes      map[string]DiscoNode
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{iq: map[iqKey]IQHandler{}, owners: map[iqKey]string{}}
}

// HandleIQ registers h for IQs of type typ ("get" or "set") whose payload
// is <local xmlns=space>, addressed to the targets in t. module names the
// owner for error messages; a duplicate registration is an error.
func (r *Registry) HandleIQ(module string, t Target, typ, space, local string, h IQHandler) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.frozen {
		return fmt.Errorf("registry: %s: registration after startup", module)
	}
	for _, tg := range []Target{TargetHost, TargetAccount, TargetRemote} {
		if t&tg == 0 {
			continue
		}
		k := iqKey{tg, typ, space, local}
		if owner, ok := r.owners[k]; ok {
			return fmt.Errorf("registry: %s: IQ %s {%s}%s already handled by %s", module, typ, space, local, owner)
		}
		r.iq[k] = h
		r.owners[k] = module
	}
	return nil
}

// AddFeature advertises a disco#info feature on the targets.
func (r *Registry) AddFeature(t Target, vars ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range vars {
		r.features = append(r.features, Feature{Target: t, Var: v})
	}
}

// AddIdentity advertises a disco#info identity.
func (r *Registry) AddIdentity(id Identity) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.identities = append(r.identities, id)
}

// Freeze ends registration.
func (r *Registry) Freeze() {
	r.mu.Lock()
	r.frozen = true
	r.mu.Unlock()
}

// IQ returns the handler for an IQ request, or nil.
func (r *Registry) IQ(t Target, st *Stanza) IQHandler {
	p := st.Payload()
	if p == nil {
		return nil
	}
	r.mu.RLock()
	h := r.iq[iqKey{t, st.Type, p.Space, p.Name}]
	r.mu.RUnlock()
	return h
}

// Features returns the sorted, de-duplicated features for target t.
func (r *Registry) Features(t Target) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for _, f := range r.features {
		if f.Target&t != 0 && !seen[f.Var] {
			seen[f.Var] = true
			out = append(out, f.Var)
		}
	}
	sort.Strings(out)
	return out
}

// Identities returns the identities for target t.
func (r *Registry) Identities(t Target) []Identity {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Identity
	for _, id := range r.identities {
		if id.Target&t != 0 {
			out = append(out, id)
		}
	}
	return out
}

// Hook is a typed list of handlers run in registration order.
type Hook[E any] struct {
	mu  sync.RWMutex
	fns []func(context.Context, E)
}

// Add appends a handler.
func (h *Hook[E]) Add(fn func(context.Context, E)) {
	h.mu.Lock()
	h.fns = append(h.fns, fn)
	h.mu.Unlock()
}

// Run calls every handler with e.
func (h *Hook[E]) Run(ctx context.Context, e E) {
	h.mu.RLock()
	fns := h.fns
	h.mu.RUnlock()
	for _, fn := range fns {
		fn(ctx, e)
	}
}

// Filter is a typed list of handlers that may consume an event: Run stops
// at the first handler returning true and reports whether one did.
type Filter[E any] struct {
	mu  sync.RWMutex
	fns []func(context.Context, E) bool
}

// Add appends a handler.
func (f *Filter[E]) Add(fn func(context.Context, E) bool) {
	f.mu.Lock()
	f.fns = append(f.fns, fn)
	f.mu.Unlock()
}

// Run calls handlers until one returns true.
func (f *Filter[E]) Run(ctx context.Context, e E) bool {
	f.mu.RLock()
	fns := f.fns
	f.mu.RUnlock()
	for _, fn := range fns {
		if fn(ctx, e) {
			return true
		}
	}
	return false
}

// SessionEvent describes a session that was bound or closed.
type SessionEvent struct {
	Session Session
	JID     jid.JID
}

// Delivery describes a message delivered to local sessions.
type Delivery struct {
	Stanza *Stanza
	// To are the full JIDs of the sessions that took it.
	To []jid.JID
}

// Unreached describes a session whose client may not have what it was
// sent: the session hibernates, its client gone, until a resumption
// (XEP-0198 §5), or its client has not acknowledged what it was sent
// for too long (§4) while the connection is still up.
type Unreached struct {
	Session Session
	JID     jid.JID
	// Pending are the stanzas its client was sent and did not
	// acknowledge, then those still to be written.
	Pending []*Stanza
}

// Transform is a typed list of functions that may replace a value, run in
// registration order, each seeing the previous one's result.
type Transform[E any] struct {
	mu  sync.RWMutex
	fns []func(context.Context, E) E
}

// Add appends a function.
func (t *Transform[E]) Add(fn func(context.Context, E) E) {
	t.mu.Lock()
	t.fns = append(t.fns, fn)
	t.mu.Unlock()
}

// Run applies the functions in order.
func (t *Transform[E]) Run(ctx context.Context, e E) E {
	t.mu.RLock()
	fns := t.fns
	t.mu.RUnlock()
	for _, fn := range fns {
		e = fn(ctx, e)
	}
	return e
}

// Hooks are the events modules cooperate through.
type Hooks struct {
	// SessionBound runs after a resource is bound.
	SessionBound Hook[SessionEvent]
	// SessionClosed runs after a bound session ended.
	SessionClosed Hook[SessionEvent]
	// Inbound runs for every stanza before routing; a handler returning
	// true has consumed (dropped or answered) it.
	Inbound Filter[*Stanza]
	// Undeliverable runs for a message that no session could take
	// (RFC 6121 §8.5.2.2.1); a handler returning true stored it, otherwise
	// the router bounces it with service-unavailable.
	Undeliverable Filter[*Stanza]
	// PresenceOut may rewrite an available presence a local client
	// sends, broadcast or directed, before the UserSend filters see it
	// (the vCard module adds the avatar hash, XEP-0398 §4).
	PresenceOut Transform[*Stanza]
	// UserSend runs for every stanza a local client sends, after the
	// sender was stamped and before routing (Prosody's pre-*/ejabberd's
	// user_send_packet); a handler returning true has consumed it.
	UserSend Filter[*Stanza]
	// PresenceIn runs for a presence addressed to a local account (its
	// bare JID, or a full JID for subscription states and probes) before
	// the default delivery; a handler returning true has consumed it.
	PresenceIn Filter[*Stanza]
	// InitialPresence runs after a resource's first available presence
	// (RFC 6121 §4.2) was recorded and broadcast.
	InitialPresence Hook[*Stanza]
	// SubscriptionApproved runs after a local account approved a
	// contact's presence subscription (RFC 6121 §3.1.5, or the server
	// answering for a pre-approval, §3.4): the account's roster records
	// the contact's subscription, and the 'subscribed' and the account's
	// presence were routed to the contact. The stanza is that
	// 'subscribed', from the account's bare JID to the contact's.
	SubscriptionApproved Hook[*Stanza]
	// MessageOut runs for a message a local client sent, once the
	// UserSend filters let it through and before it is routed. Each
	// function gets the previous one's result and returns the copy the
	// next one sees; the routed message stays the original. The archive
	// archives the message here and returns it with the XEP-0359
	// stanza-id of the sender's archive; message carbons then copy that
	// to the sender's other resources (XEP-0280 <sent/>), so that every
	// device learns the archive id of what another device sent. The
	// archive must therefore be registered before carbons.
	MessageOut Transform[*Stanza]
	// MessageIn may replace a message addressed to a local account before
	// it is delivered or stored offline: chat, normal and headline messages
	// to the bare JID, and any non-error message to a connected full JID
	// (the archive stamps the stanza-id of what it keeps here, and strips
	// forged ones that claim to be by the account's archive).
	MessageIn Transform[*Stanza]
	// Delivered runs after a message was delivered to one or more local
	// sessions (message carbons copy it to the others). It must not wait
	// (on a commit, say): the recipients may be written only once the
	// route returns (see DeliverIn).
	Delivered Hook[Delivery]
	// BroadcastPresence may rewrite a resource's broadcast presence before
	// it is recorded and sent (presence set from outside replaces show
	// and status).
	BroadcastPresence Transform[*Stanza]
	// PresenceBroadcast runs after a session's broadcast presence
	// (available or unavailable) was recorded and sent to the user's own
	// resources; the presence module sends it on to contacts.
	PresenceBroadcast Hook[*Stanza]
	// OfflineStored runs after offline storage kept a message for an
	// account (XEP-0160), with the message as stored.
	OfflineStored Hook[*Stanza]
	// Hibernated runs when a session's transport failed and the session
	// waits for its client to resume it (XEP-0198 §5); not when the
	// transport was closed for a resumption already under way. Stanzas
	// routed to it later are queued as for any session (Delivered runs
	// for the messages); Hibernating(Session) says it is still
	// waiting.
	Hibernated Hook[Unreached]
	// AckDelayed runs when a session's client, its connection still
	// up, has not acknowledged what it was sent (XEP-0198 §4) for the
	// configured delay: its connection may have died without a word (a
	// phone that lost its network). Until the client acknowledges,
	// Connected(Session) is false; what it then did not acknowledge is
	// not reported again if the session hibernates.
	AckDelayed Hook[Unreached]
}

// Hibernating reports whether s waits for its client to resume it
// without a transport (XEP-0198 §5): a session with a Hibernating method
// (a client session, package c2s) that says so.
func Hibernating(s Session) bool {
	h, ok := s.(interface{ Hibernating() bool })
	return ok && h.Hibernating()
}

// Connected reports whether s's client is there to take what is routed
// to it: not so for a session that hibernates, one closed for good (by
// the server or its client), or one whose client is late acknowledging
// (AckDelayed). A session about to hibernate, or to hand over what it
// holds as it ends, counts as connected: what it takes is accounted for
// then (Hibernated; Unacknowledged stanzas go to other resources or
// offline storage). A session without a Connected method (other than a
// client session, package c2s) is connected.
func Connected(s Session) bool {
	c, ok := s.(interface{ Connected() bool })
	return !ok || c.Connected()
}

// Resource describes one bound resource of an account, for modules.
type Resource struct {
	JID       jid.JID
	Available bool
	Priority  int
	// Interested: the resource requested the roster (RFC 6121 §2.1.6).
	Interested bool
	// Presence is the last broadcast available presence, or nil.
	Presence *Stanza
	Session  Session
}

// Sessions is what modules may ask of the session manager.
type Sessions interface {
	// Sessions returns the bound resources of an account.
	Sessions(bare jid.JID) []Resource
	// SetInterested marks a resource as interested in roster pushes.
	SetInterested(full jid.JID)
	// IsLocal reports whether domain is served here.
	IsLocal(domain string) bool
}

// Module is a feature registered with the server at startup.
type Module interface {
	// Name is a short unique name ("disco", "ping").
	Name() string
	// Register adds the module's IQ handlers, features and hooks.
	Register(reg *Registry, hooks *Hooks) error
}
