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
//	bucket  key                  value
//	meta    "schema"             uvarint schema version
//	users   lp(host) ‖ localpart 0x01 ‖ cred(SCRAM-SHA-1) ‖ cred(SCRAM-SHA-256) ‖ varint(created, Unix µs)
//
// where cred = bytes(salt) ‖ uvarint(iterations) ‖ bytes(StoredKey) ‖
// bytes(ServerKey). As RFC 5802 §3 recommends, the server keeps StoredKey
// and ServerKey, never the password or the salted password. They are still
// secrets: whoever reads them can impersonate the server to the user, and
// can log in as the user after observing one SCRAM exchange. Hence mode
// 0600 on the file and on backups. Host and localpart are stored
// as given: callers normalise them (RFC 7622) first.
//
// Planned buckets (DESIGN.md §5): roster, offline, mam, mam_with, rooms,
// pep, vcards, uploads, audit — one file per sub-store, sharing codec.go.
package store
