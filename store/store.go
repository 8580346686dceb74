package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrNotFound is returned when the requested record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned when creating a record that already exists.
	ErrExists = errors.New("store: already exists")
	// ErrLocked is returned by Open when the file lock cannot be taken
	// within Options.LockTimeout.
	ErrLocked = errors.New("store: database is in use by another process (probably a running server; stop it or use the admin API)")
	// ErrSchemaTooNew is returned by Open when the file was written by a
	// newer build with a schema this build does not know.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this build supports")
	// ErrReadOnly is returned by writes on a DB opened with Options.ReadOnly.
	ErrReadOnly = errors.New("store: database opened read-only")
	// ErrInvalid is returned for arguments that cannot be stored (empty or
	// over-long JID parts, incomplete credentials).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrCorrupt is returned when a stored key or value cannot be decoded.
	ErrCorrupt = errors.New("store: corrupt record")
	// ErrClosed is returned by operations on a closed DB.
	ErrClosed = errors.New("store: database closed")
	// ErrQuota is returned when a per-account limit is reached (offline
	// messages, pending subscription requests).
	ErrQuota = errors.New("store: quota exceeded")
	// ErrBusy is returned by ArchiveWriter.Append when its queue is full:
	// the record was not accepted and no id was assigned.
	ErrBusy = errors.New("store: archive writer queue full")
)

// DefaultLockTimeout is used when Options.LockTimeout is zero.
const DefaultLockTimeout = time.Second

// fileMode is the mode of the data file: SCRAM StoredKey/ServerKey are
// password-equivalent for an attacker who can read them.
const (
	fileMode os.FileMode = 0o600
	dirMode  os.FileMode = 0o700
)

// Options configures Open.
type Options struct {
	// LockTimeout bounds the wait for the exclusive file lock (shared when
	// ReadOnly). Zero means DefaultLockTimeout; negative is invalid.
	LockTimeout time.Duration
	// ReadOnly opens an existing, already migrated file without writing to
	// it. Several read-only openers may share the file, but not with a
	// read-write opener.
	ReadOnly bool
	// Logger receives lifecycle and migration messages. Nil discards them.
	Logger *slog.Logger
}

// DB is an open Switchboard database. It is safe for concurrent use.
type DB struct {
	bolt     *bbolt.DB
	path     string
	readOnly bool
	log      *slog.Logger
	closed   atomic.Bool
	group    groupCommit // see updateBatched

	users     *Users
	rosters   *Rosters
	subReqs   *SubRequests
	offline   *Offline
	blocks    *Blocklists
	activity  *Activities
	overrides *PresenceOverrides
	prefs     *ArchivePrefsStore
	archive   *Archive
	audit     *Audit
	rooms     *Rooms
	inbox     *RoomInbox
	uploads   *Uploads
	pep       *PEP
	vcards    *VCards
	private   *Private
	push      *Push
}

// Open opens the database at path, creating it (and its parent directory,
// mode 0700) if needed, with file mode 0600. An existing file with looser
// permissions is tightened to 0600 (read-write opens) or reported (read-only
// opens). Open then migrates the schema to SchemaVersion in one transaction.
//
// If another process (or another DB in this process) holds the file, Open
// fails after opts.LockTimeout with an error wrapping ErrLocked. A file
// written by a newer build fails with ErrSchemaTooNew.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, fmt.Errorf("store: open: empty path: %w", ErrInvalid)
	}
	if opts.LockTimeout < 0 {
		return nil, fmt.Errorf("store: open %s: negative lock timeout %s: %w", path, opts.LockTimeout, ErrInvalid)
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
	}
	bdb, err := bbolt.Open(path, fileMode, &bbolt.Options{
		Timeout:  opts.LockTimeout,
		ReadOnly: opts.ReadOnly,
		// The freelist is rebuilt on open instead of being written
		// with every commit: far fewer pages per archive batch. Data
		// durability is unchanged (every commit still syncs).
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: could not lock %s within %s", ErrLocked, path, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db := &DB{bolt: bdb, path: path, readOnly: opts.ReadOnly, log: log, group: groupCommit{bolt: bdb, log: log}}
	db.users = &Users{db: db}
	db.rosters = &Rosters{db: db}
	db.subReqs = &SubRequests{db: db}
	db.offline = &Offline{db: db}
	db.blocks = &Blocklists{db: db}
	db.pep = &PEP{db: db}
	db.vcards = &VCards{db: db}
	db.private = &Private{db: db}
	db.push = &Push{db: db}
	db.activity = &Activities{db: db}
	db.overrides = &PresenceOverrides{db: db}
	db.prefs = &ArchivePrefsStore{db: db}
	db.archive = &Archive{db: db}
	db.audit = &Audit{db: db}
	db.rooms = &Rooms{db: db}
	db.inbox = &RoomInbox{db: db}
	db.uploads = &Uploads{db: db}

	if err := db.checkMode(); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	if err := db.archive.loadJournal(ctx); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.archive.loadLastID(ctx); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	log.Info("store opened", "path", path, "schema", SchemaVersion, "read_only", opts.ReadOnly)
	return db, nil
}

// checkMode makes sure the data file is not readable by group or others.
func (db *DB) checkMode() error {
	fi, err := os.Stat(db.path)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", db.path, err)
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	if db.readOnly {
		db.log.Warn("store file is accessible by group or others; it holds password-equivalent credentials",
			"path", db.path, "mode", perm.String())
		return nil
	}
	if err := os.Chmod(db.path, fileMode); err != nil {
		return fmt.Errorf("store: open %s: restrict mode: %w", db.path, err)
	}
	db.log.Warn("store file was accessible by group or others; restricted to 0600",
		"path", db.path, "old_mode", perm.String())
	return nil
}

// Close closes the database. It waits for open transactions to finish.
// Later calls return nil; other methods then fail with ErrClosed.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", db.path, err)
	}
	db.log.Info("store closed", "path", db.path)
	return nil
}

// Path returns the path the database was opened with.
func (db *DB) Path() string { return db.path }

// Users returns the user-account sub-store.
func (db *DB) Users() *Users { return db.users }

// Rosters returns the roster sub-store (RFC 6121 §2 items with versions).
func (db *DB) Rosters() *Rosters { return db.rosters }

// SubRequests returns the sub-store of pending inbound subscription
// requests (RFC 6121 §3.1.3).
func (db *DB) SubRequests() *SubRequests { return db.subReqs }

// Offline returns the offline-message sub-store (XEP-0160).
func (db *DB) Offline() *Offline { return db.offline }

// PEP returns the sub-store of personal eventing nodes (XEP-0163).
func (db *DB) PEP() *PEP { return db.pep }

// VCards returns the vCard sub-store (XEP-0054) with the directory's
// profiles (XEP-0055).
func (db *DB) VCards() *VCards { return db.vcards }

// Private returns the private XML storage sub-store (XEP-0049).
func (db *DB) Private() *Private { return db.private }

// Push returns the push notification sub-store (XEP-0357).
func (db *DB) Push() *Push { return db.push }

// Blocklists returns the sub-store of blocked JIDs (XEP-0191).
func (db *DB) Blocklists() *Blocklists { return db.blocks }

// Activity returns the last-activity sub-store (XEP-0012).
func (db *DB) Activity() *Activities { return db.activity }

// PresenceOverrides returns the sub-store of externally set presence.
func (db *DB) PresenceOverrides() *PresenceOverrides { return db.overrides }

// ArchivePrefs returns the archiving preferences sub-store.
func (db *DB) ArchivePrefs() *ArchivePrefsStore { return db.prefs }

// Archive returns the message archive sub-store (XEP-0313) with its
// conversation index.
func (db *DB) Archive() *Archive { return db.archive }

// Audit returns the admin audit log.
func (db *DB) Audit() *Audit { return db.audit }

// Rooms returns the sub-store of persistent multi-user chat rooms
// (XEP-0045).
func (db *DB) Rooms() *Rooms { return db.rooms }

// RoomInbox returns the sub-store of the rooms each account follows in
// its conversation list, with its read markers.
func (db *DB) RoomInbox() *RoomInbox { return db.inbox }

// Uploads returns the sub-store of HTTP File Upload slots and files
// (XEP-0363).
func (db *DB) Uploads() *Uploads { return db.uploads }

// view runs fn in a read-only transaction after checking ctx.
func (db *DB) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return closedErr(db.bolt.View(fn))
}

// update runs fn in a read-write transaction after checking ctx.
func (db *DB) update(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := db.writable(ctx); err != nil {
		return err
	}
	return closedErr(db.bolt.Update(fn))
}

// updateBatched is update for small writes that many sessions may make
// at once (roster and subscription changes, offline messages, logouts):
// writes that arrive while another commits share the next transaction
// and its sync (groupCommit). A lone write starts at once. fn may run
// more than once (when a function in a shared transaction fails, the
// others run again), so it must only change the transaction and the
// variables it sets afresh on every run. The caller waits until its
// write is durable.
func (db *DB) updateBatched(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := db.writable(ctx); err != nil {
		return err
	}
	return closedErr(db.group.do(fn))
}

// writable is ctx's error, or ErrReadOnly if the database was opened
// read-only.
func (db *DB) writable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.readOnly {
		return ErrReadOnly
	}
	return nil
}

// closedErr translates bbolt's "not open" into ErrClosed, so that callers
// need not import bbolt.
func closedErr(err error) error {
	if errors.Is(err, bbolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// deletePrefix deletes every key of b that starts with prefix. It collects
// the keys first: deleting under a live cursor can skip entries.
func deletePrefix(b *bbolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// hasKey reports whether b holds key. Unlike Get it does not depend on the
// value being non-empty.
func hasKey(b *bbolt.Bucket, key []byte) bool {
	k, _ := b.Cursor().Seek(key)
	return k != nil && bytes.Equal(k, key)
}

// countKeys counts the keys of a bucket that start with prefix, reading
// keys only.
func (db *DB) countKeys(ctx context.Context, name string, prefix []byte) (int, error) {
	var n int
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, name)
		if err != nil {
			return err
		}
		n = countPrefix(b, prefix, math.MaxInt)
		return nil
	})
	return n, err
}

// bucket returns the named top-level bucket, or an error if the schema is
// missing it (a damaged file: migrations always create every bucket).
func bucket(tx *bbolt.Tx, name string) (*bbolt.Bucket, error) {
	b := tx.Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("%w: bucket %q missing", ErrCorrupt, name)
	}
	return b, nil
}
