// Package xmpp is the kernel of the server: the Stanza that is routed
// between sessions (immutable once routed; Stamp is for the ingress), the
// interfaces that connect sessions, the router and feature modules
// (Router, Session, Component, Module), Deferred (a routing goroutine's
// writes to the sessions it delivered to, made when its route ends: see
// DeliverIn), the Registry of server-handled
// IQs and disco features, typed hooks, and the mapping of Go
// errors to stanza errors (RFC 6120 §8.3). It performs no I/O.
//
// Namespaces of the core protocols are constants here (NSxxx). Log keys
// are fixed (LogConn, LogJID, ...) so that logs of all packages line up.
package xmpp
