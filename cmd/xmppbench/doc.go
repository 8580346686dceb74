// Command xmppbench is a load generator for XMPP servers: it speaks
// client-to-server XMPP over loopback to any server — Switchboard, Prosody,
// ejabberd — and reports throughput, latency and, given the server's PID,
// its CPU time and memory from /proc.
//
//	xmppbench [global flags] login|idle|chat|muc|presence [scenario flags]
//
// Scenarios:
//
//   - login: full connect + SASL + bind cycles; logins/s and latency.
//   - idle: N authenticated sessions with presence; server RSS per session,
//     held for --duration, checking none is dropped.
//   - chat: users in pairs exchanging 1:1 messages; delivered/s, latency,
//     loss, server CPU per message.
//   - muc: K occupants in one room, M of them sending; fan-out
//     deliveries/s and latency.
//   - presence: every user with R mutual contacts (set up with real
//     subscription stanzas, or with --setup=false already in the
//     rosters), then everyone logs in at once; time until every user has
//     seen all its contacts online.
//
// Protocols used, client side:
//
//   - RFC 6120 (XMPP Core): stream negotiation §4, STARTTLS §5 (the
//     certificate is not verified: loopback load tool), SASL §6 without
//     channel binding, resource binding §7; the RFC 3921 session IQ only
//     when a server still requires it.
//   - RFC 5802 / RFC 7677: SCRAM-SHA-1 and SCRAM-SHA-256, and PLAIN
//     (RFC 4616). With --scram-cache (default) an own SCRAM client caches
//     ClientKey/ServerKey per account as real clients do; otherwise
//     mellium.im/sasl runs PBKDF2 on every login.
//   - RFC 6121 (XMPP IM): roster get and pushes §2, subscription
//     handshakes §3, initial presence §4.
//   - XEP-0077 In-Band Registration 2.4 (account creation, --register).
//   - XEP-0045 Multi-User Chat 1.35.5: join with <history maxstanzas='0'/>,
//     instant room creation §10.1.2.
//   - XEP-0199 XMPP Ping 2.0.1: server pings are answered.
//
// The client side is deliberately cheap — one reader goroutine per
// connection, switchboard/xmpp/wire for framing, messages parsed only to
// the end of their start tag (the scenarios read their id and type alone;
// malformed content inside a message therefore goes unnoticed), pre-built
// stanza bytes, send time stamps in stanza ids — so that the server, not
// the tool, is measured; every result also reports the tool's own CPU
// (client_cpu_pct).
package main
