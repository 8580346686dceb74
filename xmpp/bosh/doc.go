// Package bosh serves XMPP client streams over BOSH (XEP-0124, with
// XEP-0206's XMPP binding): long-polled HTTP requests, the transport of
// browser clients that predate WebSocket or sit behind proxies that refuse
// it (Converse.js and Strophe.js speak both).
//
// Handler serves the endpoint (Path). A request without a 'sid' creates a
// session, which is handed, as a net.Conn, to the client stream server
// (package c2s), which negotiates and serves it as it does a TCP stream:
// authentication, binding, limits and routing are the same. The session
// translates between the two:
//   - inbound, the creation request and each restart request
//     (xmpp:restart, XEP-0206 §5) stand for a stream header, a restart let
//     through only once SASL succeeded (StreamRestart, as for a
//     WebSocket); the children of each <body/> are the stream's content,
//     forwarded in 'rid' order (XEP-0124 §14.2) after the wrapper is
//     parsed whole (a stanza that does not declare its namespace takes
//     jabber:client, XEP-0206 §3); a type='terminate' request ends the
//     stream after its payload (XEP-0124 §13);
//   - outbound, what the server writes is cut into top-level elements
//     (wire.ScanUnit), each declaring what it took from the stream header
//     (wire.InheritedDecl), and waits for a response: a request is held
//     (at most 'hold', which is 1 at most) until there is something to
//     send or its 'wait' passes. The server's end of the stream becomes a
//     type='terminate' response, with condition='remote-stream-error'
//     and the <stream:error/> after the stanzas written before it
//     (XEP-0206 §8).
//
// The first response carries the session creation attributes: 'sid',
// 'wait', 'requests' (hold+1), 'hold', 'inactivity', 'polling', 'ver',
// 'from', 'xmpp:version' and 'xmpp:restartlogic'. The last 'requests'
// responses are kept, so that a request the client sends again (its
// connection broke) gets the same response (§14.3); a request sent again
// that was not yet answered takes the place of the first, which gets a
// recoverable error (type='error'). A request outside the window, an
// unknown 'sid' or a response no longer kept gets item-not-found; a
// malformed <body/> bad-request; a body over MaxBody policy-violation.
// All are answered with HTTP 200 and a terminal binding condition, never
// an HTTP error (§17.1: those are for legacy clients only).
//
// A session with no request held for Options.Inactivity ends: the stream
// server reads the end of its stream, as from a connection that broke.
// What the server writes meanwhile waits, up to MaxBody; beyond that its
// writes block, as on a socket whose buffer is full, so that its own write
// timeout and outbox limits apply. The other way, once more than MaxBody
// waits for the stream server to read (its rate limit, a login's
// throttle), the client's further requests wait, unprocessed, as a
// client's writes wait on a socket the server does not read; the window
// bounds how many. A request refused before it could be read (malformed,
// too large) ends the session its 'sid' names, since its client takes it
// for ended. Responses carry nosniff and a sandboxing CSP, and a client's
// 'content' type is taken only if it is an XML type: a response holds what
// others sent, on the server's origin.
//
// STARTTLS is never offered: TLS is the HTTPS connection's (XEP-0206 §4).
// A session created over HTTPS counts as secure, without channel binding,
// since its requests may come on different connections. Responses allow
// any origin (CORS), and OPTIONS preflights are answered.
//
// Not offered: request acknowledgements ('ack', §9), session pauses
// ('maxpause', §10), compressed bodies ('accept', §7.2), multiple streams
// (§19) and key sequences (§15). A client's 'route' is ignored: the
// handler serves its own server's hosts only.
package bosh
