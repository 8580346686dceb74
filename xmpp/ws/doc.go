// Package ws serves XMPP client streams over WebSocket (RFC 7395), the
// transport of browser clients such as Converse.js.
//
// Handler performs the WebSocket opening handshake (RFC 6455 §4.2) for the
// "xmpp" subprotocol on an HTTP/1.1 request and hands the connection, as a
// Conn, to the client stream server (package c2s), which negotiates and
// serves it as it does a TCP stream: authentication, binding, limits and
// routing are the same.
//
// Conn translates between the two framings, so that c2s sees an ordinary
// XML stream:
//   - inbound, each text message is one element (RFC 7395, "XML Framing"),
//     UTF-8; an <open/> of the framing namespace becomes a stream header
//     (a second one only after c2s restarted the stream: StreamRestart),
//     a <close/> the stream's closing tag, and any other message is
//     passed on as it came once it is checked to hold whole elements and
//     no stream header (several whole elements are let through, as other
//     servers do);
//   - outbound, what c2s writes is cut into its top-level elements, one
//     message each: a stream header becomes <open/>, the closing tag
//     <close/>, and each element declares the namespaces it used to take
//     from the stream header (jabber:client, and the stream prefix of
//     <stream:features/> and <stream:error/>), since each message is
//     parsed on its own. The scanner (wire.ScanUnit, shared with BOSH) is
//     not the decoder: it reads what c2s wrote, trusted and well-formed,
//     and copies start tags with their attribute values still escaped,
//     where the decoder would parse and unescape them.
//
// STARTTLS is never offered on such a stream (RFC 7395, "Use of TLS"): TLS is the
// HTTPS connection's, and its state is given to c2s for SASL channel
// binding. Violations of the WebSocket framing (RFC 6455 §5: an unmasked
// frame, reserved bits, an unknown opcode, a binary message, a message over
// the size limit, text that is not UTF-8) end the stream with a stream
// error and then a Close frame with the matching status code (§7.4.1).
//
// Package hostmeta advertises the endpoint (XEP-0156: RelWebSocket).
package ws
