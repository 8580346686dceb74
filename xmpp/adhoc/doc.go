// Package adhoc serves the server's commands with XEP-0050 Ad-Hoc Commands
// (1.3): discovery of the commands a requester may run (disco#items on the
// node http://jabber.org/protocol/commands of the server), and execution —
// a first request returns the command's data form and opens a session, a
// submission runs it and completes with a note. Sessions are bounded per
// account and in all, expire, and answer misuse with the §4.4
// application conditions. The commands themselves are data that modules
// add to the registry (xmpp.Command).
package adhoc
