package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func seedUsers(t *testing.T, db *DB) []User {
	t.Helper()
	users := []User{testUser("example.org", "juliet"), testUser("example.org", "romeo"), testUser("example.net", "nurse")}
	for _, u := range users {
		if err := db.Users().Create(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	return users
}

func assertHasUsers(t *testing.T, db *DB, want []User) {
	t.Helper()
	for _, u := range want {
		got, err := db.Users().Get(t.Context(), u.Host, u.Local)
		if err != nil {
			t.Fatal(err)
		}
		assertUser(t, got, u)
	}
	if n, err := db.Users().Count(t.Context(), ""); err != nil || n != len(want) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(want))
	}
}

func TestBackup(t *testing.T) {
	db := openTest(t)
	want := seedUsers(t, db)

	var buf bytes.Buffer
	n, err := db.Backup(t.Context(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("Backup returned %d, wrote %d bytes", n, buf.Len())
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The source stays open: the snapshot is an independent file.
	restored := openAt(t, path, Options{})
	assertHasUsers(t, restored, want)
}

func TestBackupFile(t *testing.T) {
	db := openTest(t)
	want := seedUsers(t, db)

	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, []byte("old backup, replaced atomically"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := db.BackupFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != n {
		t.Errorf("backup size %d, BackupFile returned %d", fi.Size(), n)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("backup mode = %v, want 0600", perm)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("backup directory holds %d entries, want only the backup", len(entries))
	}
	assertHasUsers(t, openAt(t, path, Options{ReadOnly: true}), want)
}

func TestBackupErrors(t *testing.T) {
	db := openTest(t)
	seedUsers(t, db)

	t.Run("onto the live file", func(t *testing.T) {
		if _, err := db.BackupFile(t.Context(), db.Path()); !errors.Is(err, ErrInvalid) {
			t.Fatalf("BackupFile(own path) = %v, want ErrInvalid", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := db.Backup(ctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Backup(cancelled) = %v, want context.Canceled", err)
		}
		dir := t.TempDir()
		if _, err := db.BackupFile(ctx, filepath.Join(dir, "b.db")); !errors.Is(err, context.Canceled) {
			t.Fatalf("BackupFile(cancelled) = %v, want context.Canceled", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("failed BackupFile left %d files", len(entries))
		}
	})
	t.Run("cancelled mid-backup", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		w := cancelWriter{cancel: cancel}
		if _, err := db.Backup(ctx, w); !errors.Is(err, context.Canceled) {
			t.Fatalf("Backup cancelled after first write = %v, want context.Canceled", err)
		}
	})
	t.Run("writer fails", func(t *testing.T) {
		errDisk := errors.New("disk full")
		if _, err := db.Backup(t.Context(), failWriter{errDisk}); !errors.Is(err, errDisk) {
			t.Fatalf("Backup(failing writer) = %v, want %v", err, errDisk)
		}
	})
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// cancelWriter cancels its context on the first write.
type cancelWriter struct{ cancel context.CancelFunc }

func (w cancelWriter) Write(p []byte) (int, error) {
	w.cancel()
	return len(p), nil
}
