package store

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// Bucket names. Every top-level bucket is created by a migration.
const (
	bucketMeta  = "meta"
	bucketUsers = "users"

	// Added by migration 2.
	bucketRoster           = "roster"
	bucketRosterIndex      = "roster_index"
	bucketSubRequests      = "sub_requests"
	bucketOffline          = "offline"
	bucketOfflineCount     = "offline_count"
	bucketBlocklist        = "blocklist"
	bucketActivity         = "activity"
	bucketPresenceOverride = "presence_override"

	// Added by migration 3.
	bucketMAM     = "mam"
	bucketMAMWith = "mam_with"
	bucketMAMTime = "mam_time"
	bucketConv    = "conv"
	bucketAudit   = "audit"

	// Added by migration 4.
	bucketArchivePrefs = "mam_prefs"

	// Added by migration 5.
	bucketRooms = "rooms"

	// Added by migration 6.
	bucketMAMCount = "mam_count"

	// Added by migration 7.
	bucketRoomInbox = "room_inbox"

	// Added by migration 8.
	bucketMAMJournal = "mam_journal"

	// Added by migration 9.
	bucketUploads      = "uploads"
	bucketUploadsOwner = "uploads_owner"

	// Added by migration 10.
	bucketPEPNodes = "pep_nodes"
	bucketPEPItems = "pep_items"
	bucketPEPUsage = "pep_usage"

	// Added by migration 11.
	bucketVCard        = "vcard"
	bucketVCardProfile = "vcard_profile"

	// Added by migration 12.
	bucketPrivate = "private"

	// Added by migration 13.
	bucketPush = "push"
)

// keySchema in the meta bucket holds the schema version as a uvarint: the
// number of migrations applied to the file.
const keySchema = "schema"

// keyArchiveLastID in the meta bucket holds the highest archive id ever
// committed (archiveLastIDCodecV1 ‖ uvarint), so that ids keep increasing
// across restarts even when the newest records were deleted.
const keyArchiveLastID = "archive_last_id"

// SchemaVersion is the schema version this build writes. It equals the
// number of migrations; Open brings older files up to it.
const SchemaVersion = 13

// A migration moves the file from schema version i to i+1, where i is its
// index in migrations(). Migrations are append-only: never edit or reorder
// a released one, add a new one instead (and bump SchemaVersion).
type migration struct {
	name  string
	apply func(tx *bbolt.Tx) error
}

// migrations returns the ordered migration list. It is a function, not a
// package variable, so that nothing can modify it.
func migrations() []migration {
	return []migration{
		{name: "create users bucket", apply: func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte(bucketUsers))
			return err
		}},
		{name: "create roster, subscription request, offline, blocklist, activity and presence override buckets", apply: func(tx *bbolt.Tx) error {
			for _, name := range []string{
				bucketRoster, bucketRosterIndex, bucketSubRequests, bucketOffline,
				bucketOfflineCount, bucketBlocklist, bucketActivity, bucketPresenceOverride,
			} {
				if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "create message archive, conversation and audit buckets", apply: func(tx *bbolt.Tx) error {
			for _, name := range []string{bucketMAM, bucketMAMWith, bucketMAMTime, bucketConv, bucketAudit} {
				if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "create archive preferences bucket", apply: func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte(bucketArchivePrefs))
			return err
		}},
		{name: "create rooms bucket", apply: func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte(bucketRooms))
			return err
		}},
		{name: "create archive counters and count the archived messages", apply: func(tx *bbolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists([]byte(bucketMAMCount)); err != nil {
				return err
			}
			return countArchive(tx)
		}},
		{name: "create room inbox bucket", apply: func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte(bucketRoomInbox))
			return err
		}},
		{name: "create archive journal bucket", apply: func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte(bucketMAMJournal))
			return err
		}},
		{name: "create upload buckets", apply: func(tx *bbolt.Tx) error {
			for _, name := range []string{bucketUploads, bucketUploadsOwner} {
				if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "create personal eventing buckets", apply: func(tx *bbolt.Tx) error {
			for _, name := range []string{bucketPEPNodes, bucketPEPItems, bucketPEPUsage} {
				if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "create vCard and directory profile buckets", apply: func(tx *bbolt.Tx) error {
			for _, name := range []string{bucketVCard, bucketVCardProfile} {
				if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "create private XML storage bucket", apply: func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte(bucketPrivate))
			return err
		}},
		{name: "create push notification bucket", apply: func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte(bucketPush))
			return err
		}},
	}
}

// readSchema returns the schema version stored in tx. A file without a meta
// bucket is version 0 if it is empty, and rejected if it holds other
// buckets (it is some other program's bbolt file).
func readSchema(tx *bbolt.Tx) (uint64, error) {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		if k, _ := tx.Cursor().First(); k != nil {
			return 0, fmt.Errorf("%w: not a switchboard database (no %q bucket, found bucket %q)", ErrCorrupt, bucketMeta, k)
		}
		return 0, nil
	}
	v := meta.Get([]byte(keySchema))
	if v == nil {
		return 0, nil
	}
	d := decoder{buf: v}
	n := d.uvarint()
	if err := d.done(); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return n, nil
}

// migrate brings the file up to SchemaVersion. All pending migrations and
// the version bump run in one transaction: a crash leaves the old version.
func (db *DB) migrate(ctx context.Context) error {
	ms := migrations()
	var have uint64
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		have, err = readSchema(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: open %s: %w", db.path, err)
	}
	switch {
	case have > uint64(len(ms)):
		return fmt.Errorf("store: open %s: file has schema version %d, this build supports up to %d (upgrade switchboard): %w",
			db.path, have, len(ms), ErrSchemaTooNew)
	case have == uint64(len(ms)):
		return nil
	case db.readOnly:
		return fmt.Errorf("store: open %s: file has schema version %d, this build needs %d; open it read-write once to migrate: %w",
			db.path, have, len(ms), ErrReadOnly)
	}

	var applied []migration
	err = db.update(ctx, func(tx *bbolt.Tx) error {
		applied = applied[:0]
		// We hold the exclusive file lock, but re-read inside the write
		// transaction anyway so the decision and the writes agree.
		have, err := readSchema(tx)
		if err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		for i := have; i < uint64(len(ms)); i++ {
			if err := ms[i].apply(tx); err != nil {
				return fmt.Errorf("migration %d (%s): %w", i+1, ms[i].name, err)
			}
			applied = append(applied, ms[i])
		}
		return meta.Put([]byte(keySchema), appendUvarint(nil, uint64(len(ms))))
	})
	if err != nil {
		return fmt.Errorf("store: open %s: migrate: %w", db.path, err)
	}
	from := len(ms) - len(applied)
	for i, m := range applied {
		db.log.Info("store migration applied", "path", db.path, "schema", from+i+1, "migration", m.name)
	}
	return nil
}
