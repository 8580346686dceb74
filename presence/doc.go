// Package presence distributes availability (RFC 6121 §4): a resource's
// broadcast presence goes to the contacts subscribed to the user (§4.2.2,
// §4.4.2, §4.5.2); a resource that becomes available probes the contacts the
// user is subscribed to (§4.2.2) and probes are answered on behalf of local
// users, revealing nothing to non-subscribers (§4.3.2); directed presence is
// tracked so that its recipients learn when the sender goes offline (§4.6);
// the last unavailable presence is kept for probes and last activity.
//
// <show/> and <status/> pass through unchanged unless an override set from
// outside (the admin socket, e.g. "dnd: on a call" from the phone system)
// replaces them, with its call state, in every presence the user's
// resources broadcast; every contact and every device of the user sees the
// same availability and status message.
package presence
