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
// per-account key starts with lp(owner). ∅ marks an empty value (the key
// holds everything). Times are Unix microseconds, read back in UTC.
//
//	bucket             key                                  value
//	meta               "schema"                             uvarint schema version
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
// of the other sub-stores (owner = local@host).
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
//     per owner keeps Count and the quota check to one read.
//   - Blocklists: XEP-0191 1.3 blocked JIDs, stored as given.
//   - Activities: XEP-0012 2.0 last logout and last unavailable presence.
//   - PresenceOverrides: presence set from outside XMPP.
//
// Planned buckets (DESIGN.md §5): mam, mam_with, rooms, pep, vcards,
// uploads, audit — one file per sub-store, sharing codec.go.
package store
