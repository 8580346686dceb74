// Package session answers the RFC 3921 §3 session establishment request,
// kept for old clients: RFC 6120 dropped it, and the stream feature is
// offered as optional, so the request does nothing but succeed. RFC 3921's
// own example addresses it to the domain; clients also send it with no
// 'to' or to their own bare JID.
package session
