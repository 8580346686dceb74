// Package pep is the XEP-0163 (Personal Eventing Protocol 1.2.2) service of
// every account: the XEP-0060 publish-subscribe subset PEP needs, on the
// account's bare JID.
//
// Covered: publish with auto-create and publish-options preconditions
// (§7.1.5: conflict with precondition-not-met), item retrieval (all, the
// newest max_items, or by id), retraction, node creation (with a
// configuration form), configuration, deletion and purge by the owner; the
// access models presence (the default), open, roster (the owner's roster
// groups) and whitelist (the owner alone). Only the owner publishes.
//
// Notifications follow presence (XEP-0163 §4.3): the owner's available
// resources and the available resources of the contacts who receive the
// owner's presence and whom the node's access model admits get them, each
// only if its XEP-0115 entity capabilities ask for the node ("node+notify",
// XEP-0060 §9.2). The module reads the capabilities of local resources
// from the presence the router keeps, and those of other servers' users
// from the presence they send the account (followed only for contacts who
// receive the account's presence). It asks a resource with an unknown
// verification string for its disco#info, checks the string (XEP-0115
// §5.4) and keeps what it learnt by string; an unverified answer is kept
// for that resource alone, and the next resource announcing the string is
// asked (§5.4 3.9). A local resource whose string was forgotten is asked
// again when a notification would go to it. A resource's initial presence, or
// presence with new capabilities, brings it the newest item of each node
// it newly asks for (send_last_published_item on_sub_and_presence) from
// its own account and the local accounts whose presence it receives; other
// servers send theirs. A contact whose subscription the owner approves
// (or pre-approved) is a new subscriber (XEP-0163 §4.3.4): a local
// contact's available resources get the newest item of each node they ask
// for and may read at once (or with the answer about their capabilities);
// another server's contact is probed, when the owner has a subscription to
// its presence, and its answer brings them. Without that subscription no
// presence of the contact reaches the owner, and it gets no items or
// notifications (XEP-0163 §4.3.2 allows that). Nothing is sent to a
// contact, or a contact's resource, the owner blocked.
//
// Not covered: explicit subscriptions (subscribe answers
// feature-not-implemented: subscriptions are implied by presence),
// affiliation and subscription management, collection nodes, and the
// XEP-0033 replyto address on notifications. The roster model reads the
// owner's roster groups, not the configured shared groups.
//
// Publish-options are preconditions (XEP-0060 §7.1.5): for an existing node
// every field must be known and match (conflict with precondition-not-met);
// a new node is created with them, or not at all (not-acceptable).
//
// Limits: nodes per account, items per node (also what pubsub#max_items
// "max" means) and bytes of items per account; beyond them a publication
// gets resource-constraint, and an item larger than the whole allowance
// not-acceptable with payload-too-big. Capability queries in flight, learnt
// verification strings and other servers' resources followed per account
// are bounded too.
//
// Other modules read, publish and retract on an account's behalf through
// ItemsFor, PublishFor and RetractFor: the vCard module's avatar
// conversion (XEP-0398).
//
// The server itself uses an account's nodes as private storage (XEP-0223)
// through PrivateItems, PublishPrivate and RetractPrivate: the private XML
// storage module keeps older clients' bookmarks in step with XEP-0402's
// node through them, with the same notifications as a client's
// publication.
package pep
