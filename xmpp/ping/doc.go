// Package ping answers XEP-0199 XMPP Ping (version 2.0.1) requests sent to
// a server domain or, on the user's behalf, to an account's bare JID.
package ping
