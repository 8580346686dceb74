// Package component serves external components: programs that connect to
// the server with the Jabber Component Protocol (XEP-0114, the
// jabber:component:accept namespace) and serve a domain of their own
// through it, such as a gateway to a phone system or a bot framework's
// component.
//
// Each configured component has a domain and a shared secret. A component
// opens a stream to its domain; the server answers with a header carrying
// a fresh stream id, and the component proves it knows the secret with
// <handshake/>: the lowercase hex SHA-1 of the stream id followed by the
// secret. The server answers an empty <handshake/>, and from then on:
//
//   - every stanza the router has for the component's domain, or for an
//     address at it, is queued for the component (bounded like a
//     federation peer's queue; beyond it, answered with
//     resource-constraint) and written by the connection's writer;
//   - while the component is not connected, such stanzas are answered with
//     service-unavailable (presence of availability and probes get no
//     answer, as for an unreachable server, RFC 6120 §10.4.3), and what was
//     still queued when a connection ended is answered the same way;
//   - stanzas the component sends are routed like any other. Their 'from'
//     must be at the component's domain (XEP-0114 §3: <invalid-from/>
//     otherwise, RFC 6120 §4.9.3.9); one without 'from' is sent from the
//     domain itself (as Prosody does); one without 'to' is answered with
//     bad-request, one with a malformed address with jid-malformed.
//
// Stream errors follow XEP-0114 §3 and RFC 6120 §4.9.3: invalid-namespace
// for a stream that is not jabber:component:accept, improper-addressing
// for a header without 'to', host-unknown for a domain that is not a
// configured component, not-authorized for a wrong handshake or anything
// sent before it, conflict when the component is connected already (the
// first connection stays, as Prosody's default), connection-timeout when
// the handshake does not come within Options.HandshakeTimeout,
// unsupported-stanza-type for anything but a stanza after it, and
// system-shutdown at Shutdown (after what was queued is written).
//
// At most Options.MaxPending connections (16) may wait for their handshake
// at once, each for Options.HandshakeTimeout; beyond them a new connection
// is closed with resource-constraint.
//
// The protocol has no TLS: the listener belongs on loopback or a trusted
// network. A captured handshake is worth nothing on another stream (it
// hashes the stream id), but with the stream id it allows guessing a weak
// secret offline: secrets should be long and random. TraceXML does not
// log it.
package component
