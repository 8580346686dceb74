// Package servertest starts a real server on loopback ports for tests and
// connects real clients to it: mellium.im/xmpp sessions (over TCP, or over
// WebSocket) for the flows users meet, and raw stream and WebSocket
// clients for protocol edge cases.
package servertest
