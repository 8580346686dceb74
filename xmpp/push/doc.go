// Package push publishes push notifications (XEP-0357 0.4.1) for the
// clients that ask for them: mobile apps whose operating system closes
// their connection in the background (iOS above all) learn through their
// vendor's push service that something waits for them, and connect.
//
// A client enables a push service with <enable jid node/> sent to its own
// account, with an optional publish-options data form (the app server's
// secret, say); it is stored (store.Push) with the resource that enabled
// it, and kept across restarts until the client disables it, the account
// holds more than MaxPerAccount (the oldest goes), the service answers
// MaxErrors notifications in a row with errors other than 'wait' (§7:
// "consider the particular JID and node combination to be disabled"), or
// the account is removed. The feature is announced on the account (§5).
//
// The server, from its domain (§6, version 0.3), publishes a
// <notification/> with a urn:xmpp:push:summary form to a service when a
// message worth a notification reaches the account while the client that
// enabled the service is not connected (xmpp.Connected: it has no session,
// or one that hibernates, one closed for good, or one whose client is
// late acknowledging what it was sent):
//   - a message stored offline (XEP-0160): every service whose resource
//     has no connected session;
//   - a message delivered to the account's other resources: the services
//     whose resource has no connected session, except for groupchat
//     messages (a client without a session is in no room; one whose
//     session is not connected is notified of those it took);
//   - a stream-management session that hibernates (XEP-0198 §5): its
//     service, if its client was sent something worth a notification and
//     did not acknowledge it; and each such message delivered to it while
//     it hibernates;
//   - a stream-management client that leaves the server's request for an
//     acknowledgement unanswered for c2s's MaxAckDelay, its connection
//     still up (a phone that lost its network without a word): its
//     service, of what it did not acknowledge; and each such message
//     delivered to it until it answers. If its session hibernates
//     meanwhile, those are not notified again.
//
// Worth a notification: a chat, normal or groupchat message with a body,
// an encrypted one (OMEMO, OpenPGP), an invitation to a room (XEP-0249 or
// mediated), a call (XEP-0353 propose), or the carbon copy of one received
// by another resource. Chat states, receipts, markers, a room's subject,
// headlines, errors, presence and IQs are not; nor are copies of what the
// user sent from another device.
//
// The summary says how many such messages the notification covers; the
// sender and the body are included only when the operator allows it
// (IncludeSender, IncludeBody): they go to a third party (§10). Without
// the body (not allowed, or an encrypted message, whose body is only a
// fallback text), a placeholder text (PlaceholderBody) tells the app to
// show an alert rather than wake silently, as Prosody's and ejabberd's
// defaults do. One notification per service is in flight at a time: what arrives
// meanwhile is published in one more when the service answers (or after
// Timeout), so a busy room cannot flood an app server.
package push
