// Package private serves XEP-0049 private XML storage (1.2): each
// account keeps arbitrary XML on the server that only its own resources
// read and write, such as older clients' bookmarks (XEP-0048 1.0),
// roster notes (XEP-0145) and preferences.
//
// A set stores each child of the query under its namespace, replacing
// what was stored there; several children of one namespace are stored
// and returned together (§2: a set or a result may hold several elements
// of one namespace), and a namespace whose elements are all empty is
// cleared. A get returns, for each child of the query, what is stored
// under its namespace, or the child as sent when nothing is. Only the
// account itself may do either: a request to another account (or from
// another server) is forbidden (§3, the preferred error). A query
// without a child is bad-request for a get (§2's "Bad Format", which
// RFC 6120 names bad-request) and not-acceptable for a set (§2); a child
// without a namespace of its own (none, or jabber:iq:private) is
// not-acceptable. Reserved namespaces are stored like any other (§3
// makes refusing them optional). One account's private XML is bounded
// in bytes ([private] max_bytes): beyond it a set stores nothing and is
// refused with resource-constraint.
//
// Bookmarks (XEP-0402 §5.3, announced on the account as
// urn:xmpp:bookmarks:1#compat): when the module is given the account's
// personal eventing service (Deps.Bookmarks), storage:bookmarks (XEP-0048
// 1.0, kept here by Psi, slixmpp and older clients) and the
// urn:xmpp:bookmarks:1 node (kept by Conversations, Dino, Gajim) are one
// list, whose rooms live in the node. A set of storage:bookmarks
// publishes an item for each new or changed room (its id the room's bare
// JID), leaves unchanged ones alone so that no notification goes out for
// them, keeps the XEP-0402 extensions the older form cannot hold, and
// retracts the rooms it no longer lists; the owner's resources that ask
// for the node are notified as for any publication. The rest of the
// element (URLs, a conference whose room is not a bare JID) stays in
// private XML storage. A get answers the node's rooms followed by that
// rest. The node, when the server creates it, is configured for private
// data as XEP-0223 and XEP-0402 ask: whitelist access (the owner alone),
// as many items as an account may keep, the last item never sent.
package private
