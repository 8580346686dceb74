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
// makes refusing them optional). A query holds at most 64 children, and
// a namespace at most 1,024 bytes (store.MaxPrivateNamespace): beyond
// either it is not-acceptable. One account's private XML is bounded in
// bytes ([private] max_bytes): a set that adds to it beyond the bound
// stores nothing and is refused with resource-constraint; one that
// shrinks it is taken even over the bound (after the bound was lowered).
//
// Bookmarks (XEP-0402 §5.3, announced on the account as
// urn:xmpp:bookmarks:1#compat): when the module is given the account's
// personal eventing service (Deps.Bookmarks), storage:bookmarks (XEP-0048
// 1.0, kept here by Psi, slixmpp and older clients) and the
// urn:xmpp:bookmarks:1 node (kept by Conversations, Dino, Gajim) are one
// list, whose rooms live in the node, one item per room with the room's
// bare JID as its id. A set of storage:bookmarks first retracts the rooms
// it no longer lists, then publishes an item for each new or changed
// room (under the id the room already has), leaving unchanged ones alone
// so that no notification goes out for them; the XEP-0402 extensions the
// older form cannot hold are kept. The owner's resources that ask for the
// node are notified as for any publication. The rest of the element
// (URLs, a conference whose room is not a bare JID) stays in private XML
// storage. A get answers the node's rooms followed by that rest. Items
// the older form cannot give back as they are (a payload that is not a
// conference, an id that is not a room's bare JID) are neither shown nor
// removed through it. A list of more rooms than the node may hold
// (the node's item limit, [pep] max_items) is refused with
// resource-constraint before anything is stored. The node is kept
// private (XEP-0223, XEP-0402 §3.3): created, or if a client created it
// otherwise reconfigured, with whitelist access (the owner alone), as
// many items as a node may hold, and the last item never sent.
//
// The two halves are not one transaction: private XML storage is written
// first (and checked against its quota), then the node item by item. If
// the node's byte quota fails halfway, the rooms before the failure are
// in the node and the client gets resource-constraint. Two sets at once
// from two devices may interleave their items.
package private
