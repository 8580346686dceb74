// Package auth implements the server side of SASL authentication for
// client-to-server streams (RFC 6120 §6), the derivation of stored SCRAM
// credentials, and login throttling.
//
// Mechanisms, strongest first:
//
//   - SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS: SCRAM with channel binding
//     (RFC 5802 §6, RFC 7677). Channel binding types: tls-exporter
//     (RFC 9266) on TLS 1.3, tls-unique (RFC 5929 §3) on TLS 1.2 and
//     earlier, and tls-server-end-point (RFC 5929 §4) when
//     [Options.ServerCertificate] is set, since [tls.ConnectionState] does
//     not carry the server's own certificate.
//   - SCRAM-SHA-256 (RFC 7677) and SCRAM-SHA-1 (RFC 5802).
//   - PLAIN (RFC 4616), offered only over TLS unless configured otherwise.
//
// The exchange follows RFC 6120 §6.4 (an absent initial response is answered
// with an empty challenge) and failures carry the conditions of RFC 6120
// §6.5. [Server.ChannelBindings] provides the list advertised with XEP-0440
// (SASL Channel-Binding Type Capability, checked against version 0.4.1, whose
// §4 requires servers to implement tls-server-end-point: set
// [Options.ServerCertificate] to comply).
//
// A client that sends the gs2 flag "y" although the server offers a -PLUS
// mechanism on that connection is refused (RFC 5802 §6: the mechanism list
// was tampered with).
//
// Stored credentials follow RFC 5802 §3 (SaltedPassword, StoredKey,
// ServerKey); passwords are prepared with the OpaqueString profile of
// RFC 8265 (the successor of SASLprep, RFC 4013) and usernames with the
// UsernameCaseMapped profile plus the checks of RFC 7622 §3.3, as for XMPP
// localparts.
//
// An unknown user is indistinguishable from a wrong password: SCRAM answers
// the client-first message with a salt derived from the username and a
// secret ([Options.DecoySecret]) and fails at the proof with not-authorized;
// PLAIN runs PBKDF2 against such a decoy too.
//
// The package never logs; errors never contain passwords or SASL payloads.
package auth
