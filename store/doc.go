// Package store is Switchboard's persistence layer on bbolt
// (go.etcd.io/bbolt): one file, a few large buckets, typed sub-stores.
// It imports no other Switchboard package.
//
// # Opening
//
// Open creates the file (mode 0600, parent directory 0700) and migrates it.
// bbolt allows one process at a time: a second opener waits
// Options.LockTimeout and then fails with ErrLocked, so admin tools that open
// the file directly while the server runs get a clear message. Backup and
// BackupFile write a consistent snapshot from a read transaction.
//
// # Schema and migrations
//
// Bucket "meta", key "schema" holds the schema version as a uvarint: the
// number of migrations applied. Open applies the missing migrations in
// order in one write transaction, and refuses a file whose version is newer
// than SchemaVersion (ErrSchemaTooNew). Migrations create every bucket.
//
// # Encodings
//
//	lp(s)    uvarint(len(s)) ‖ s       length-prefixed; prefix-free, so
//	                                     lp("x") never prefixes lp("xa") ‖ …
//	be64(n)  8-byte big-endian uint64  byte order = numeric order
//	bytes(b) uvarint(len(b)) ‖ b       inside values
//
// Varints are canonical: decoders reject non-minimal encodings, truncated
// input and trailing bytes (ErrCorrupt), so decode∘encode is the identity.
// Every value starts with a codec-version byte. No gob or JSON.
//
// Keys that start with lp(owner) group by owner and are read with a cursor
// Seek(lp(owner)) while the key has that prefix, never with a full scan.
// Within one owner the rest of the key sorts in byte order; owners
// themselves sort by length, then bytes.
//
// # Buckets
//
// Owners are bare JID strings "local@host", normalised by the caller; every
// per-account key starts with lp(owner), except in the time-ordered
// mam_time, mam_journal and audit, and in vcard_profile, keyed like users
// so that a directory search walks it beside them. ∅ marks an empty value (the key holds everything).
// Times are Unix microseconds, read back in UTC.
//
//	bucket             key                                  value
//	meta               "schema"                             uvarint schema version
//	                   "archive_last_id"                    0x01 ‖ uvarint(highest archive id committed)
//	users              lp(host) ‖ localpart                 0x01 ‖ cred(SCRAM-SHA-1) ‖ cred(SCRAM-SHA-256) ‖ varint(created)
//	roster             lp(owner) ‖ contact                  0x01 ‖ bytes(name) ‖ uvarint(n) ‖ n×bytes(group) ‖ sub ‖ flags ‖ varint(added) ‖ uvarint(version)
//	roster_index       lp(owner) ‖ 0x00                     0x01 ‖ uvarint(version) ‖ uvarint(floor) ‖ uvarint(items) ‖ uvarint(tombstones)
//	                   lp(owner) ‖ 0x01 ‖ be64(v) ‖ contact   ∅  live item last changed at v
//	                   lp(owner) ‖ 0x02 ‖ be64(v) ‖ contact   ∅  tombstone: contact removed at v
//	                   lp(owner) ‖ 0x03 ‖ lp(contact) ‖ be64(v) ∅  the same tombstone, found by contact
//	sub_requests       lp(owner) ‖ requester                0x01 ‖ varint(received) ‖ bytes(stanza)
//	offline            lp(owner) ‖ be64(id)                 0x01 ‖ varint(stored) ‖ bytes(stanza)
//	offline_count      lp(owner)                            0x01 ‖ uvarint(messages)
//	blocklist          lp(owner) ‖ jid                      ∅
//	activity           lp(owner)                            0x01 ‖ varint(last logout) ‖ bytes(status stanza)
//	presence_override  lp(owner)                            0x01 ‖ bytes(show) ‖ bytes(status) ‖ bytes(call state) ‖ varint(set)
//	mam                lp(archive) ‖ be64(id)               0x01 ‖ direction ‖ bytes(with) ‖ flags ‖ bytes(stanza)
//	mam_with           lp(archive) ‖ lp(with) ‖ be64(id)    ∅
//	mam_time           be64(id) ‖ lp(archive)               ∅
//	conv               lp(archive) ‖ with                   0x01 ‖ uvarint(last id) ‖ uvarint(unread) ‖ uvarint(read id)
//	mam_count          lp(archive) ‖ 0x00 [‖ be32(slot)]      0x01 ‖ uvarint(records of the archive [in the slot])
//	                   lp(archive) ‖ 0x01 ‖ lp(with) [‖ be32(slot)] 0x01 ‖ uvarint(records with with [in the slot])
//	mam_journal        be64(id)                             0x01 ‖ bytes(archive) ‖ the record's mam value
//	audit              be64(id)                             0x01 ‖ varint(time) ‖ bytes(actor) ‖ bytes(action) ‖ bytes(target) ‖ bytes(detail)
//	room_inbox         lp(owner) ‖ room                     0x01 ‖ varint(joined) ‖ uvarint(read id)
//	rooms              lp(service) ‖ localpart              0x01 ‖ room (see Rooms below)
//	uploads            slot id (32 hex digits)              0x01 ‖ state ‖ bytes(owner) ‖ bytes(name) ‖ uvarint(size) ‖ bytes(content type) ‖ varint(created)
//	uploads_owner      lp(owner) ‖ slot id                  0x01 ‖ uvarint(size)
//	pep_nodes          lp(owner) ‖ node                     0x01 ‖ bytes(access) ‖ uvarint(n) ‖ n×bytes(group) ‖ uvarint(max items) ‖ bytes(send last) ‖ flags ‖ bytes(title) ‖ uvarint(newest seq)
//	pep_items          lp(owner) ‖ lp(node) ‖ be64(seq)     0x01 ‖ bytes(id) ‖ bytes(publisher) ‖ bytes(payload)
//	pep_usage          lp(owner)                            0x01 ‖ uvarint(bytes of the owner's items)
//	vcard              lp(owner)                            0x01 ‖ the vCard element's XML
//	vcard_profile      lp(host) ‖ localpart                 0x01 ‖ bytes(FN) ‖ bytes(given) ‖ bytes(family) ‖ bytes(nick) ‖ bytes(org unit) ‖ uvarint(n) ‖ n×bytes(email) ‖ uvarint(m) ‖ m×bytes(phone)
//	private            lp(owner) ‖ namespace                0x01 ‖ the namespace's elements, as XML
//
// where cred = bytes(salt) ‖ uvarint(iterations) ‖ bytes(StoredKey) ‖
// bytes(ServerKey). As RFC 5802 §3 recommends, the server keeps StoredKey
// and ServerKey, never the password or the salted password. They are still
// secrets: whoever reads them can impersonate the server to the user, and
// can log in as the user after observing one SCRAM exchange. Hence mode
// 0600 on the file and on backups. Host and localpart are stored
// as given: callers normalise them (RFC 7622) first.
//
// Users.Delete removes, in the same transaction, every per-account record
// of the other sub-stores (owner = local@host). It also releases what
// other owners keep about the account (releaseContacts): their roster
// items for it get subscription none, no pending request and no
// pre-approval, and their pending requests from it go; it returns what
// changed (Released), for a running server to tell them. Those items need
// not have a counterpart in the account's own roster (a pre-approval), so
// it scans the roster and sub_requests buckets whole, comparing key
// suffixes, while it holds the single writer: proportional to every
// roster on the server, which an account deletion (rare) can afford and a
// reverse index would cost on every roster write.
//
// A session of the account may still be bound for a moment after the
// delete (the server answers the removal, then closes it). Activities.Set
// and SubRequests.Put check that the owner is an account (accountExists)
// inside their transaction: they are written when a session ends and by
// another user's request, which that moment cannot stop. VCards.Set,
// Private.Set and Push.Put check it too: a session that outlives its
// account must not leave a vCard, private XML or push service for a later
// account of the same name, and all are rare writes. So does Offline.Restore, which puts back what a
// delivery took while the account may have been deleted. Roster, offline
// (Put), blocklist and archive writes do not check: the account's own
// sessions would have to write in that moment, and a check there would
// cost every write.
//
// # Shared commits
//
// Every commit syncs the file, and a sync costs more than the small
// writes of a roster change or an offline message. Rosters.Update,
// SubRequests, Offline, PresenceOverrides, Activities and Users.Create
// therefore write through DB.updateBatched (groupcommit.go): writes that
// arrive while a transaction commits share the next one (up to 1,024),
// and a lone write starts at once, with no timer to wait for. Their
// functions may run more than once: when one function in a shared
// transaction fails, the transaction rolls back, the others run again
// without it and it runs again alone in its caller's goroutine. Expected
// failures that precede any change (a full offline queue or request
// list, an existing account, a roster callback's error) are refusals:
// the transaction goes on without a rollback, so a flood of them does not
// make the others run again and again. If that commit fails, a refused
// write is decided again alone: its refusal may rest on another's write
// (an account created, a quota filled) that was not stored. A panic in bbolt's
// commit fails every write in it (the commit may be on disk: none runs
// again), and a refused one is decided again alone.
//
// # Rosters (RFC 6121 §2, roster versioning of §2.6 and XEP-0237 1.3)
//
// Each change to an owner's roster bumps a per-owner version by one and
// stamps it on the item; a deletion leaves a tombstone at its version. The
// version index lets Rosters.Since answer "what changed after v" with two
// cursor seeks, as roster pushes in version order (XEP-0237 §4.2). Only
// the newest MaxRosterTombstones tombstones per owner are kept; the floor
// records the newest pruned one, and versions below it (or above the
// current one) are unknown, so the caller sends the full roster. Deleting
// an account drops its version: a re-created account starts again at 0.
//
// # Other per-account records
//
//   - SubRequests: pending inbound subscription requests (RFC 6121
//     §3.1.3), re-delivered at every login until answered; at most
//     MaxSubRequests per owner (ErrQuota).
//   - Offline: XEP-0160 1.0.1 offline messages; ids come from the bucket
//     sequence, so they strictly increase across the database; a counter
//     per owner keeps Count and the quota check to one read. Restore
//     puts back what Take returned under the same ids, so that messages
//     a session could not take keep their place before newer ones.
//   - Blocklists: XEP-0191 1.3 blocked JIDs, stored as given.
//   - Activities: XEP-0012 2.0 last logout and last unavailable presence.
//   - PresenceOverrides: presence set from outside XMPP.
//   - Archive: the message archive and conversation list of the account
//     (see below).
//   - RoomInbox: the rooms the account follows in its conversation list,
//     with when it first entered each and the room archive id it has read
//     up to; written in batches on joins and displayed markers, never per
//     room message (unread counts come from Archive.Summary, O(limit)).
//   - PEP: XEP-0163 personal eventing nodes (their configuration) and
//     items, oldest first by a per-node sequence number, so the newest is
//     one seek; a usage counter per owner keeps the byte quota check to
//     one read. A publication's precondition check, auto-create, replace
//     by id, trim to MaxItems and quota run in one transaction.
//   - VCards: XEP-0054 vCards and, beside the users, the profile a
//     directory search (XEP-0055) reads of each; the two are written
//     together, and Update edits a vCard in one transaction.
//   - Private: XEP-0049 private XML, the elements of each namespace
//     together; a Set of several namespaces, and the owner's byte quota
//     check, are one transaction.
//   - Push: XEP-0357 push services by JID and node; Put replaces a pair
//     enabled again and drops the oldest beyond a bound in one
//     transaction. All reads the whole bucket, once, when a server
//     starts.
//
// # Message archive (XEP-0313 1.1.3, XEP-0359 0.7.0, XEP-0333 1.0.0)
//
// An archive belongs to an account (its bare JID) or a room (its JID).
// Record ids are unique across the database and are times: id =
// max(now in µs, previous id + 1), assigned by ArchiveWriter.Append before
// the record is durable so that the XEP-0359 stanza-id can be stamped
// before delivery. The highest id committed is kept in meta, so ids keep
// increasing across restarts even when the newest records were deleted.
// Because an id is a time, a time range is an id range: Archive.Query
// seeks to the first (or, paging backwards, the last) matching key of mam
// or, for one conversation, of mam_with, and reads one page plus one
// probe for "complete" — O(page) however large the archive. XEP-0059 RSM
// counts and indexes (WantCount, ArchiveQuery.Index) come from mam_count:
// a total and per-slot counters (a slot is the ids sharing their upper 32
// bits, 2³² µs ≈ 72 minutes) per archive and per conversation, written in
// the transaction that indexes or deletes the records (for journaled
// records, the one that indexes the journal). A count reads the
// slot counters between its bound and the nearer end of the archive and
// the keys of at most two slots, never the records of the range (see
// archive_count.go). mam_time orders every record by id, so retention
// (ExpireBefore, ExpireFunc) deletes from its start in bounded batches.
//
// ArchiveWriter is the archive's single writer (DESIGN.md §4–§5): callers
// queue records without blocking (bounded queue, ErrBusy when full) and
// one goroutine commits them in batches of up to MaxBatch records or
// MaxDelay, one bbolt transaction per batch; done callbacks run after the
// commit. A failed commit fails every record of its batch and stores
// none. Small batches (the writer keeps up and nobody waits) commit to
// mam_journal only, at the end of one bucket; the journal is indexed into
// mam, mam_with, mam_time, conv and mam_count once its records are
// IndexDelay old (1 s) or a full batch, by every other transaction that
// writes the archive before it does, by every archive read before it
// reads, and at Open after a crash (archive_journal.go; a failure there
// is logged, as before a read, and reads serve what is indexed). A journaled
// record is acknowledged (done) once the journal commit is durable; an
// entry that later fails to decode, or names an archive or correspondent
// no record could have, is logged and dropped. Indexing can still fail (a
// full disk, or a damaged file where an entry's indexes go), and while it
// does every archive write fails with it. Once a full
// batch is journaled (at most a quarter of a batch more: small batches are
// under a quarter), the next batch commits with its indexes and the
// journal's records in one transaction (passes failing or behind), and a
// failure reaches its callbacks. Indexing touches
// each active archive's tail pages once per pass instead of once per
// batch: at a steady rate that is most of a commit's cost. With
// WriterOptions.Background (Linux), small batches and journal passes
// commit on a SCHED_IDLE thread while the machine has idle CPU
// (cpuidle.go, idle_linux.go), so commits do not delay connection
// threads; a program that calls LendProcessors lends the Go runtime a
// processor while they run (processors.go).
//
// The conv bucket is the conversation list (like MongooseIM's inbox): per
// archive and party, the newest id, the unread count and the id read up
// to. It is updated where records are indexed (a batch's transaction, or
// the pass that indexes journaled batches): every record sets
// the newest id; an incoming record adds one unread unless flagged
// FlagNoUnread; an outgoing one clears the count. Archive.MarkRead
// (XEP-0333 displayed) recounts from the read marker.
//
// # Audit log
//
// Audit keeps administrative actions in bucket audit, keyed by ids that
// are times like archive ids (max(time in µs, previous id + 1)), so a
// listing since a time starts with one seek.
//
// # Rooms (XEP-0045 1.35.5)
//
// Rooms keeps persistent multi-user chat rooms, keyed like users by
// service domain then localpart: the room JID "lobby@conference.example.org"
// is lp("conference.example.org") ‖ "lobby", so Rooms.List of one service
// is one seek. Key order is localpart order, which is not quite JID order
// ("a" < "a.b" but "a.b@s" < "a@s"), so List sorts its result by JID.
// A room's value is one
// record (configuration, subject, affiliations, reserved nicks, access
// list, issue key, creation), rewritten whole by Rooms.Put:
//
//	room = kind ‖ whois ‖ flags ‖ bytes(name) ‖ bytes(description) ‖ bytes(password) ‖
//	       uvarint(max users) ‖ uvarint(history length) ‖ bytes(subject) ‖ bytes(subject nick) ‖ varint(subject set) ‖
//	       uvarint(n) ‖ n×(bytes(jid) ‖ affiliation) ‖ uvarint(n) ‖ n×(bytes(jid) ‖ bytes(nick)) ‖
//	       uvarint(n) ‖ n×bytes(access entry) ‖ bytes(issue key) ‖ varint(created) ‖ bytes(creator)
//
// Kind, whois and affiliation are one-byte enumerations (0 is invalid),
// flags one byte of eight booleans. Both maps are written in increasing
// JID order and decoders reject any other order, so equal rooms encode to
// equal bytes; the access list keeps its order. Put enforces the Max*
// limits of rooms.go (ErrInvalid), and decoders enforce them too
// (ErrCorrupt). Rooms are not per-account data: Users.Delete leaves them,
// and Rooms.Delete leaves the room's message archive.
//
// # Uploads (XEP-0363 1.1.0)
//
// Uploads keeps HTTP File Upload slots, keyed by their random 128-bit id
// in hex, with the requester, file name, size, declared content type,
// reservation time and state (reserved, then uploaded). The files
// themselves live in a directory the upload service owns, not in the
// database. uploads_owner indexes each account's slots with their sizes,
// so the quota check (in Uploads.Reserve, which checks and writes in one
// transaction; each upload counts at least UploadMinCharge) is one prefix
// seek; the hourly cleanup (Uploads.Expired) scans uploads. Users.Delete
// removes the account's uploads_owner entries, so that a later account of
// the same name starts with nothing used; the slots stay, and their files
// are served until they expire, as links to them are in other users'
// conversations.
//
// One file per sub-store, sharing codec.go.
package store
