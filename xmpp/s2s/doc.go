// Package s2s federates the server with other XMPP servers (RFC 6120 over
// server-to-server streams, qualified by jabber:server).
//
// Each direction has its own connection: the server sends its stanzas to a
// remote domain over an outgoing connection (one per pair of local and
// remote domain, a peer) and receives the remote domain's stanzas over
// the connection that domain's server opened (an inbound connection). A
// domain pair is authenticated with Server Dialback (XEP-0220), after
// STARTTLS (RFC 6120 §5) unless encryption is not required:
//
//   - outgoing, the server sends a dialback key for the pair
//     (<db:result/>), an HMAC of the pair and the stream id under its own
//     secret (XEP-0185), queues the pair's stanzas until the receiving
//     server reports the key valid, and sends them then; stanzas that
//     cannot go out are answered (RFC 6120 §10.4.3, XEP-0220) with
//     remote-server-not-found (no such server), remote-server-timeout (a
//     timeout, a dialback error, the stream closed), internal-server-error
//     (our key found invalid), not-allowed (the allow and deny lists) or
//     resource-constraint (a full queue, too many peers); presence of
//     availability and probes get no answer;
//   - inbound, the server checks a key it receives by opening a short
//     connection to the sending domain's own server and asking it
//     (<db:verify/>), and accepts the pair's stanzas once that server says
//     the key is valid;
//   - on any incoming connection, authenticated or not, it answers
//     <db:verify/> about the keys it issued itself.
//
// Certificates are not checked: TLS protects the stream, dialback names
// the domain (as Prosody and ejabberd do by default). Dialback answers
// that were not asked for on that stream are dropped (XEP-0220
// "Unsolicited Dialback").
//
// Stanzas are read in the client namespace, whatever the peer declared:
// the server translates between jabber:server and jabber:client (RFC 6120
// §4.8.3), so that the rest of the server sees one namespace.
//
// Incoming connections are bounded in all (Options.MaxInbound; beyond it
// a new one is closed with a resource-constraint stream error) and from
// one address (Options.MaxInboundPerIP; policy-violation, as for
// clients), each after a stream header of the server's own.
//
// Peers are found through the routes of the configuration, else DNS:
// the _xmpp-server._tcp SRV records of the domain (RFC 6120 §3.2.1), else
// the domain itself on port 5269 (§3.2.2).
package s2s
