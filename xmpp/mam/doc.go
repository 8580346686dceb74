// Package mam keeps every user's message history and answers queries for
// it: XEP-0313 Message Archive Management (urn:xmpp:mam:2, 1.1.3) with
// XEP-0059 Result Set Management (1.0) paging, XEP-0359 Unique and Stable
// Stanza IDs (0.7) stamped on archived messages with the archive as 'by',
// archiving preferences (always / never / roster), and a conversation list
// with unread counts (namespace urn:switchboard:conversations:0), where
// "read" follows the XEP-0333 displayed markers the user sends from any of
// their devices. The list also holds the rooms the user follows
// (type='groupchat'), which package muc supplies through Deps.Rooms: which
// rooms, and how their unread counts are kept without a write per room
// message, is described in muc/inbox.go.
//
// Archiving goes through the store's group-commit writer: the id (and so
// the stanza-id) is assigned before delivery; the record becomes durable
// within a batch (DESIGN §5). A message a user sends is archived in the
// kernel's MessageOut hooks, which hand the archived copy, stamped with
// the stanza-id of the sender's archive, to message carbons: the <sent/>
// copies the sender's other devices get carry it (XEP-0280 with
// XEP-0359 §3), so they can match them with what the archive returns.
// The message routed to the recipient carries only the recipient's
// archive's id. A private message through a room (XEP-0045 §7.5) reaches
// each session of an occupant joined from several as its own copy; the
// recipient's archive keeps one record and every copy carries its id.
//
// # Result sets (XEP-0059)
//
// Every answer to a query carries, in its <fin/>, the RSM <first/> and
// <last/> of the page, <first/> with its 'index' (§2.2), and the <count/>
// of the whole result set, whatever <max/> asked for; <max>0</max> (§2.6)
// answers the count alone. A request with <index>N</index> (§2.5) gets the
// page that starts at position N of the result set, and <first index='N'>;
// at or past the end the page is empty. <index/> together with <after/> or
// <before/> is ambiguous and answered bad-request.
//
// The result set is what the form selects: with, start, end, ids, and
// after-id and before-id, which narrow it like start and end (an id is a
// time); RSM <after/> and <before/> are cursors within it and change
// neither the count nor the positions.
//
// Counting never reads the records counted. The store keeps, in the
// transaction that archives or deletes messages, a total and per-slot
// counters (a slot is 2³² µs, about 72 minutes) for each archive and each
// of its conversations (store/archive_count.go). So:
//
//   - without a time bound (no start, end, after-id or before-id), the
//     count is one counter read, the index of a first or last page is
//     derived from it, and the index of a page inside the set costs the
//     slot counters between the page and the nearer end of the archive;
//   - with a time bound, the count adds the slot counters between the
//     bound and the nearer end of the archive, plus the keys of the
//     bound's own slot (a slot's messages at most): "the last 50 messages
//     with X since 7 days" reads about 140 counters and two slots, not the
//     week's messages;
//   - an ids query is counted by looking the named ids up (at most the
//     request's ids);
//   - a page at an index finds its first message the same way, from the
//     nearer end of the archive.
//
// Every query shape is therefore counted, and no count is omitted. The
// cost is in counters, which grows with the archive's age in slots (about
// 8,800 a year), not with its size; BenchmarkArchiveQueryLarge in package
// store measures it on a 1,000,000-message archive. The counts are exact
// (retention and conversation deletion update the counters in their own
// transaction); a count may still differ from what a later page shows when
// messages arrive or expire between two requests, as XEP-0059 allows for
// dynamic result sets.
package mam
