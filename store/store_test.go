package store

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestOpenCreatesFileAndDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "nested", "switchboard.db")
	db := openAt(t, path, Options{})
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %v, want 0600", perm)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("created directory mode = %v, want no group/other bits", perm)
	}
}

func TestOpenRestrictsLooseMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openAt(t, path, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode after reopen = %v, want 0600", perm)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	openAt(t, path, Options{})

	for _, readOnly := range []bool{false, true} {
		start := time.Now()
		db, err := Open(t.Context(), path, Options{LockTimeout: 100 * time.Millisecond, ReadOnly: readOnly})
		if err == nil {
			_ = db.Close()
			t.Fatalf("second Open (read-only %v) succeeded while the file is open", readOnly)
		}
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second Open (read-only %v) = %v, want ErrLocked", readOnly, err)
		}
		if !strings.Contains(err.Error(), "in use by another process") || !strings.Contains(err.Error(), path) {
			t.Errorf("error %q should say the file is in use and name %s", err, path)
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("ErrLocked took %v with a 100ms timeout", elapsed)
		}
	}
}

func TestOpenReleasesLockOnClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	openAt(t, path, Options{LockTimeout: 100 * time.Millisecond})
}

func TestOpenInvalidOptions(t *testing.T) {
	dir := t.TempDir()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		path    string
		opts    Options
		wantErr error
	}{
		{"empty path", t.Context(), "", Options{}, ErrInvalid},
		{"negative timeout", t.Context(), filepath.Join(dir, "a"), Options{LockTimeout: -time.Second}, ErrInvalid},
		{"cancelled", cancelled, filepath.Join(dir, "b"), Options{}, context.Canceled},
		{"read-only missing file", t.Context(), filepath.Join(dir, "c"), Options{ReadOnly: true}, os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(tc.ctx, tc.path, tc.opts)
			if err == nil {
				_ = db.Close()
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Open = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestSchemaVersionMatchesMigrations(t *testing.T) {
	if got := len(migrations()); got != SchemaVersion {
		t.Fatalf("len(migrations()) = %d, SchemaVersion = %d", got, SchemaVersion)
	}
}

// rawBolt creates a bbolt file at path and runs fn in a write transaction.
func rawBolt(t *testing.T, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	b, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func schemaOf(t *testing.T, db *DB) uint64 {
	t.Helper()
	var v uint64
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		v, err = readSchema(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpenMigrations(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(tx *bbolt.Tx) error
		wantErr error
	}{
		{"empty bbolt file", func(*bbolt.Tx) error { return nil }, nil},
		{"meta bucket without schema", func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucket([]byte(bucketMeta))
			return err
		}, nil},
		{"newer schema", func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte(bucketMeta))
			if err != nil {
				return err
			}
			return b.Put([]byte(keySchema), appendUvarint(nil, SchemaVersion+1))
		}, ErrSchemaTooNew},
		{"garbage schema", func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte(bucketMeta))
			if err != nil {
				return err
			}
			return b.Put([]byte(keySchema), []byte{0x80})
		}, ErrCorrupt},
		{"foreign bbolt file", func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucket([]byte("somebody-else"))
			return err
		}, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			rawBolt(t, path, tc.prepare)
			db, err := Open(t.Context(), path, Options{})
			if !errors.Is(err, tc.wantErr) {
				if err == nil {
					_ = db.Close()
				}
				t.Fatalf("Open = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = db.Close() })
			if v := schemaOf(t, db); v != SchemaVersion {
				t.Errorf("schema after Open = %d, want %d", v, SchemaVersion)
			}
			if err := db.Users().Create(t.Context(), testUser("example.org", "juliet")); err != nil {
				t.Errorf("Create after migration: %v", err)
			}
		})
	}
}

func TestOpenNewerSchemaAfterUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchema), appendUvarint(nil, SchemaVersion+7))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{false, true} {
		db, err := Open(t.Context(), path, Options{ReadOnly: readOnly})
		if err == nil {
			_ = db.Close()
		}
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("Open(read-only %v) of newer schema = %v, want ErrSchemaTooNew", readOnly, err)
		}
		t.Log(err)
	}
}

func TestOpenReadOnlyUnmigrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	rawBolt(t, path, func(*bbolt.Tx) error { return nil })
	db, err := Open(t.Context(), path, Options{ReadOnly: true})
	if err == nil {
		_ = db.Close()
	}
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only Open of unmigrated file = %v, want ErrReadOnly", err)
	}
}

func TestCloseTwice(t *testing.T) {
	db := openTest(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := db.Users().Get(t.Context(), "example.org", "juliet"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	if _, err := db.Backup(t.Context(), io.Discard); !errors.Is(err, ErrClosed) {
		t.Fatalf("Backup after Close = %v, want ErrClosed", err)
	}
}

// schema2Buckets are the buckets migration 2 creates.
var schema2Buckets = []string{
	bucketRoster, bucketRosterIndex, bucketSubRequests, bucketOffline,
	bucketOfflineCount, bucketBlocklist, bucketActivity, bucketPresenceOverride,
}

func TestMigrateFromSchema1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	juliet := testUser("example.org", "juliet")
	// A file as the schema-1 build left it: migration 1 only, one user.
	rawBolt(t, path, func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		if err := migrations()[0].apply(tx); err != nil {
			return err
		}
		if err := meta.Put([]byte(keySchema), appendUvarint(nil, 1)); err != nil {
			return err
		}
		val, err := encodeUser(nil, juliet)
		if err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketUsers)).Put(userKey(juliet.Host, juliet.Local), val)
	})

	db := openAt(t, path, Options{})
	if v := schemaOf(t, db); v != SchemaVersion {
		t.Fatalf("schema after Open = %d, want %d", v, SchemaVersion)
	}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		for _, name := range schema2Buckets {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %q missing after migration", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Users().Get(ctx, "example.org", "juliet")
	if err != nil {
		t.Fatalf("user after migration: %v", err)
	}
	assertUser(t, got, juliet)
	if _, ver, _ := mustUpdate(t, db.Rosters(), "juliet@example.org", "romeo@example.net", putItem("Romeo", SubBoth)); ver != 1 {
		t.Fatalf("first roster version = %d", ver)
	}
	if _, err := db.Offline().Put(ctx, "juliet@example.org", []byte("<m/>"), codecTime, 0); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Opening again is a no-op for the schema and keeps everything.
	db = openAt(t, path, Options{ReadOnly: true})
	if v := schemaOf(t, db); v != SchemaVersion {
		t.Fatalf("schema after reopen = %d", v)
	}
	if n, err := db.Rosters().Count(ctx, "juliet@example.org"); err != nil || n != 1 {
		t.Fatalf("roster count after reopen = %d, %v", n, err)
	}
	if n, err := db.Offline().Count(ctx, "juliet@example.org"); err != nil || n != 1 {
		t.Fatalf("offline count after reopen = %d, %v", n, err)
	}
}

func TestOpenReadOnlySchema1(t *testing.T) {
	// A read-only opener cannot migrate a schema-1 file.
	path := filepath.Join(t.TempDir(), "db")
	rawBolt(t, path, func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		if err := migrations()[0].apply(tx); err != nil {
			return err
		}
		return meta.Put([]byte(keySchema), appendUvarint(nil, 1))
	})
	db, err := Open(t.Context(), path, Options{ReadOnly: true})
	if err == nil {
		_ = db.Close()
	}
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only Open of schema-1 file = %v, want ErrReadOnly", err)
	}
}

// schema3Buckets are the buckets migration 3 creates.
var schema3Buckets = []string{bucketMAM, bucketMAMWith, bucketMAMTime, bucketConv, bucketAudit}

func TestMigrateFromSchema2(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	juliet := testUser("example.org", "juliet")
	// A file as the schema-2 build left it: a user with an offline
	// message, no archive buckets and no archive id in meta.
	rawBolt(t, path, func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		for _, m := range migrations()[:2] {
			if err := m.apply(tx); err != nil {
				return err
			}
		}
		if err := meta.Put([]byte(keySchema), appendUvarint(nil, 2)); err != nil {
			return err
		}
		val, err := encodeUser(nil, juliet)
		if err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketUsers)).Put(userKey(juliet.Host, juliet.Local), val); err != nil {
			return err
		}
		msg := encodeOfflineMessage(nil, OfflineMessage{Stored: codecTime, Stanza: []byte("<m/>")})
		if err := tx.Bucket([]byte(bucketOffline)).Put(appendBE64(lp("juliet@example.org"), 1), msg); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketOfflineCount)).Put(lp("juliet@example.org"), encodeOfflineCount(nil, 1))
	})
	// A read-only opener cannot migrate it.
	if db, err := Open(ctx, path, Options{ReadOnly: true}); !errors.Is(err, ErrReadOnly) {
		if err == nil {
			_ = db.Close()
		}
		t.Fatalf("read-only Open of schema-2 file = %v, want ErrReadOnly", err)
	}

	db := openAt(t, path, Options{})
	if v := schemaOf(t, db); v != SchemaVersion {
		t.Fatalf("schema after Open = %d, want %d", v, SchemaVersion)
	}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		for _, name := range append(slices.Clone(schema2Buckets), schema3Buckets...) {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %q missing after migration", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Users().Get(ctx, "example.org", "juliet")
	if err != nil {
		t.Fatalf("user after migration: %v", err)
	}
	assertUser(t, got, juliet)
	if n, err := db.Offline().Count(ctx, "juliet@example.org"); err != nil || n != 1 {
		t.Fatalf("offline count after migration = %d, %v", n, err)
	}
	w := db.Archive().NewWriter(WriterOptions{})
	w.Start(ctx)
	id, err := w.Append(ArchiveRecord{Archive: "juliet@example.org", With: "romeo@example.net", Stanza: []byte("<m/>")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Audit().Add(ctx, AuditEntry{Actor: "cli", Action: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, path, Options{ReadOnly: true})
	if v := schemaOf(t, db); v != SchemaVersion {
		t.Fatalf("schema after reopen = %d", v)
	}
	if rec, err := db.Archive().Get(ctx, "juliet@example.org", id); err != nil || string(rec.Stanza) != "<m/>" {
		t.Fatalf("archived record after reopen = %+v, %v", rec, err)
	}
	if entries, err := db.Audit().List(ctx, time.Time{}, 0, nil); err != nil || len(entries) != 1 {
		t.Fatalf("audit after reopen = %+v, %v", entries, err)
	}
}

func TestMigrateFromSchema4(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	juliet := testUser("example.org", "juliet")
	prefs := ArchivePrefs{Default: "roster", Always: []string{"romeo@example.net"}}
	// A file as the schema-4 build left it: a user with archive
	// preferences, no rooms bucket.
	rawBolt(t, path, func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		for _, m := range migrations()[:4] {
			if err := m.apply(tx); err != nil {
				return err
			}
		}
		if err := meta.Put([]byte(keySchema), appendUvarint(nil, 4)); err != nil {
			return err
		}
		val, err := encodeUser(nil, juliet)
		if err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketUsers)).Put(userKey(juliet.Host, juliet.Local), val); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketArchivePrefs)).Put(lp("juliet@example.org"), encodeArchivePrefs(nil, prefs))
	})
	// A read-only opener cannot migrate it.
	if db, err := Open(ctx, path, Options{ReadOnly: true}); !errors.Is(err, ErrReadOnly) {
		if err == nil {
			_ = db.Close()
		}
		t.Fatalf("read-only Open of schema-4 file = %v, want ErrReadOnly", err)
	}

	db := openAt(t, path, Options{})
	if v := schemaOf(t, db); v != SchemaVersion {
		t.Fatalf("schema after Open = %d, want %d", v, SchemaVersion)
	}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte(bucketRooms)) == nil {
			t.Errorf("bucket %q missing after migration", bucketRooms)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Users().Get(ctx, "example.org", "juliet")
	if err != nil {
		t.Fatalf("user after migration: %v", err)
	}
	assertUser(t, got, juliet)
	if p, err := db.ArchivePrefs().Get(ctx, "juliet@example.org"); err != nil || p.Default != "roster" {
		t.Fatalf("archive prefs after migration = %+v, %v", p, err)
	}
	if n, err := db.Rooms().Count(ctx, ""); err != nil || n != 0 {
		t.Fatalf("rooms after migration = %d, %v", n, err)
	}
	room := fullRoom("lobby@conference.example.org")
	if err := db.Rooms().Put(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, path, Options{ReadOnly: true})
	if v := schemaOf(t, db); v != SchemaVersion {
		t.Fatalf("schema after reopen = %d", v)
	}
	if r, err := db.Rooms().Get(ctx, room.JID); err != nil || !reflect.DeepEqual(r, room) {
		t.Fatalf("room after reopen = %+v, %v", r, err)
	}
}
