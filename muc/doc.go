// Package muc is the multi-user chat service: XEP-0045 Multi-User Chat
// (1.35.5) rooms at conference.<domain>, and issue chats at issues.<domain>
// whose room names are issue keys (TEST-123) and whose archive is the
// issue's comment log.
//
// Each room is an actor: one goroutine owns its state and drains a bounded
// inbox (full: resource-constraint); it stops when empty and idle, and
// reloads from the store on the next stanza (DESIGN §4).
//
// Implemented: joining with the errors of §7.2 (registration-required,
// not-authorized, forbidden, conflict, service-unavailable of type wait
// when full, not-allowed when creation is refused, item-not-found while
// locked; jid-malformed for a nick of spaces only, §17.1), room locking: a
// room created by a join is closed to all but its owners until they
// configure it or accept the defaults (§10.1.1; a cancelled initial
// configuration destroys it; room_lock_timeout opens it with the
// defaults), a presence without the MUC <x/> from a non-occupant answered
// with a kick (110, 307, 333; §7.2.18), occupant presence with status
// codes (100, 110, 170, 201, 210, 301, 303, 307, 321, 322, 332, 333; 104,
// 172 and 173 in configuration change notices), custom exit messages
// (§7.14), nickname changes, multi-session nicknames, a join from a
// session already joined answered as a full synchronisation (§17.1),
// groupchat messages reflected with their ids (muc#stable_id, on the
// service and its rooms) and archived in the room's XEP-0313 archive with
// XEP-0359 stanza ids and XEP-0421 (1.0.1) occupant ids (the results carry no
// 'to', and the senders' real JIDs for whoever may see them: XEP-0313
// §6.1.2), history on join (maxchars, maxstanzas, seconds, since)
// carrying those stanza ids, the subject (sent on joining with a <delay/>
// of when it was set and the setter's occupant id; a subject with a body or a thread is no subject
// change, §8.1), private messages, IQs between occupants forwarded to the
// real JID without revealing either side (§17.4; vCard requests to the
// bare JID), mediated invitations and their declines (§7.8.2),
// registration with a room reserving a nick and granting membership
// (§7.10, 210 when it renames an occupant) and its discovery
// (x-roomuser-item, §7.12), voice requests and their approval by
// moderators (§7.13, §8.6), the room configuration form (muc#roomconfig),
// owner/admin/member/outcast affiliations and moderator/participant/
// visitor roles (grant, revoke, kick, ban, voice; kicks and bans name the
// <actor/>; nobody revokes the voice of an affiliation at or above their
// own, §8.4; a muc#admin set of several items is applied whole or not at
// all, §9.2), destruction with an alternate venue, ghost removal on
// delivery errors (§18.1.2, 333), 332 to occupants when the service stops
// (§11.2), XEP-0410 self-ping, room disco with muc#roominfo. The archive
// outlives its room (it is evidence, and the host's retention expires
// it); a room created again under the same name does not see it, since
// history and archive queries start at the room's creation. An issue
// chat's archive is kept whatever the retention.
//
// Business rooms: a creation ACL; private rooms whose access lists of
// users, groups ("group:NAME") and whole domains ("domain:example.org")
// grant membership, applied to occupants at once; a company-wide room whose
// members are every user of the host; issue chats, open at once (never
// locked), named by the issue key as typed (TEST-123) while the room JID
// is case-folded (RFC 7622).
//
// Rooms a user has entered appear in the user's conversation list (package
// mam), with unread counts from XEP-0333 displayed markers and no write per
// room message: see inbox.go.
package muc
