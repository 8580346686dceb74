// Package muc is the multi-user chat service: XEP-0045 Multi-User Chat
// (1.34) rooms at conference.<domain>, and issue chats at issues.<domain>
// whose room names are issue keys (TEST-123) and whose archive is the
// issue's comment log.
//
// Each room is an actor: one goroutine owns its state and drains a bounded
// inbox (full: resource-constraint); it stops when empty and idle, and
// reloads from the store on the next stanza (DESIGN §4).
//
// Implemented: joining with the errors of §7.2 (registration-required,
// not-authorized, forbidden, conflict, service-unavailable when full,
// not-allowed when creation is refused), occupant presence with status
// codes (100, 110, 170, 201, 301, 303, 307, 321, 322; 104, 172 and 173 in
// configuration change notices), nickname changes, multi-session
// nicknames, a join from a session already joined answered as a full
// synchronisation (§17.1), groupchat messages reflected with their ids
// (muc#stable_id) and archived in the room's XEP-0313 archive with
// XEP-0359 stanza ids and XEP-0421 occupant ids, history on join
// (maxchars, maxstanzas, seconds, since) carrying those stanza ids,
// subject, private messages, mediated invitations, the room configuration
// form (muc#roomconfig), owner/admin/member/outcast affiliations and
// moderator/participant/visitor roles (grant, revoke, kick, ban, voice),
// destruction with an alternate venue, XEP-0410 self-ping, room disco with
// muc#roominfo. The archive outlives its room (it is evidence, and the
// host's retention expires it); a room created again under the same name
// does not see it, since history and archive queries start at the room's
// creation. An issue chat's archive is kept whatever the retention.
//
// Business rooms: a creation ACL; private rooms whose access lists of
// users, groups ("group:NAME") and whole domains ("domain:example.org")
// grant membership, applied to occupants at once; a company-wide room whose
// members are every user of the host.
package muc
