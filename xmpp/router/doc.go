// Package router delivers stanzas between local sessions, the server's own
// IQ handlers, components and remote domains (the Remote set with
// SetRemote: package s2s), and keeps the session table (the "session
// manager"). Users of other servers reach only the host IQ services
// registered for xmpp.TargetRemote.
//
// Delivery follows RFC 6120 §10 (server rules for processing XML stanzas)
// and RFC 6121 §8.5 (local user: no such user, bare JID with and without
// available resources, full JID with and without a matching resource).
// Resource conflicts on bind follow RFC 6120 §7.7.2.2 with a configurable
// policy.
//
// Concurrency: the session table is a map of users under an RWMutex; each
// user publishes an immutable snapshot of its resources through an
// atomic.Pointer, so delivery reads take no per-user lock. Lock order:
// Router.mu before user.mu before a session's own lock. Sessions are
// called with no router lock held, except one: broadcastPresence delivers
// the presence of a user's other resources to a new one under user.mu,
// so that an offline change cannot overtake it. That relies on
// xmpp.Session's contract: Deliver never blocks and never calls back into
// the router.
package router
