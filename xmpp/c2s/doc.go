// Package c2s accepts client connections and runs their streams.
//
// It implements the server side of RFC 6120 stream negotiation itself —
// stream headers (§4.7), STARTTLS (§5) and direct TLS (XEP-0368), SASL
// (§6, with the mechanisms of package auth and XEP-0440 channel-binding
// advertisement), resource binding (§7) and the legacy session feature
// (RFC 3921 §3, advertised optional; its request is answered by package
// session) — and pre-authentication in-band registration (XEP-0077 §3.1).
//
// Each connection has at most two goroutines: the ingress loop, the only
// reader, which frames and parses elements with package wire, stamps 'from'
// (RFC 6120 §8.1.2.1) and hands stanzas to the router; and, once a resource
// is bound and only while something is queued, the writer, which drains a
// bounded outbox and writes each batch with one call. On plain TCP, the
// goroutine that routed a message to a session with nothing queued may
// stand in for that session's writer (xmpp.Deferred): it writes the
// message itself, as far as the socket takes it without waiting, and a
// writer starts only for the rest. Writes never overlap.
// Deliver never blocks: a session whose outbox overflows is closed with a
// policy-violation stream error. An idle session thus holds one goroutine,
// and a small one: after half a second without input the ingress loop moves
// to a fresh goroutine whose stack has not grown, which on plain TCP waits
// for input without a read buffer.
//
// Stream management (XEP-0198, sm.go) is offered after authentication.
// Once a client enables it, the ingress loop counts the stanzas it handles
// and answers <r/>; the writer keeps each stanza it writes until the
// client's 'h' covers it and asks for an acknowledgement after a batch,
// and again after an 'h' that leaves some unacknowledged. A request left
// unanswered for Options.MaxAckDelay makes the client lagging (not
// xmpp.Connected) until it answers, and Router.AckDelayed learns what it
// has not acknowledged.
// Sessions that enabled it never use the stand-in write of xmpp.Deferred,
// and those without it pay one nil check per stanza. A resumable session
// whose transport fails hibernates: bound, available, with no goroutine,
// collecting what is delivered (within the outbox limits) until a new
// connection of the same account resumes it, takes it off a connection
// still open (conflict), or the resumption timeout, a server close or an
// overflow ends it. The resuming connection's transport, decoder and
// goroutine then serve the old session. What an ended session was given
// but never acknowledged goes back to the router (Router.Unacknowledged).
// The 'h' of the last Options.ResumeCountsKept resumable sessions that
// ended is kept (ended.go) for the <failed/> of a resumption that comes
// too late. A session the server closes, and a hibernation that ends,
// leave the account's available resources at once (Router.Leaving), while
// the one's writer flushes and the other hands over.
//
// Client State Indication (XEP-0352 1.0.0, csi.go) is offered after
// authentication when Options.CSIQueue is positive. While a client is
// inactive, DeliverDeferred holds what can wait beside the queue, dropping
// a held presence or chat state that a newer one from the same sender
// replaces; anything that starts the writer (an urgent stanza, <active/>,
// CSIQueue stanzas or half of the outbox's bytes held, the session's end)
// queues what is held first. Active sessions pay a boolean and three nil
// checks of the hold per delivery (its outbox count, the release before
// queueing, the writer's kick).
//
// Serve accepts TCP connections; ServeConn serves a stream on a transport
// set up elsewhere, such as a WebSocket (package ws, RFC 7395) or a BOSH
// session (package bosh, XEP-0206), which is secure when TLS runs below it
// and never offers STARTTLS.
//
// Stream errors follow RFC 6120 §4.9: the server's stream header is always
// sent before an error, and the stream is then closed.
package c2s
