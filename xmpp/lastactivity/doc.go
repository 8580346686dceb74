// Package lastactivity answers XEP-0012 Last Activity (2.0) queries: to a
// server domain with the server's uptime (§5), and to an account's bare JID
// on the user's behalf (§4) with the time since the user's last resource
// went offline and its last status text — 0 while the user is online — to
// the user and to contacts subscribed to the user's presence only.
package lastactivity
