package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/bbolt"
)

// Backup writes a consistent snapshot of the whole database to w and returns
// the number of bytes written. The output is a complete bbolt file that Open
// accepts. It runs inside one read transaction, so concurrent writers keep
// working, but a long backup delays reclaiming freed pages; cancelling ctx
// aborts it at the next write to w.
//
// The snapshot holds password-equivalent SCRAM keys: protect it like the
// data file (BackupFile creates it with mode 0600).
func (db *DB) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	cw := &ctxWriter{ctx: ctx, w: w}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(cw)
		if err != nil && cw.err != nil {
			// bbolt flattens some writer errors with %s; keep ours
			// matchable with errors.Is.
			err = cw.err
		}
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup %s: %w", db.path, err)
	}
	return n, nil
}

// BackupFile writes a snapshot to path atomically: it writes a temporary
// file (mode 0600) in the same directory, syncs it and renames it over path.
// path must not be the database's own file.
func (db *DB) BackupFile(ctx context.Context, path string) (n int64, err error) {
	if same, err := sameFile(path, db.path); err != nil {
		return 0, fmt.Errorf("store: backup to %s: %w", path, err)
	} else if same {
		return 0, fmt.Errorf("store: backup to %s: that is the live database file: %w", path, ErrInvalid)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return 0, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if n, err = db.Backup(ctx, tmp); err != nil {
		return n, err
	}
	if err = tmp.Sync(); err != nil {
		return n, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return n, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return n, fmt.Errorf("store: backup to %s: %w", path, err)
	}
	// Make the rename durable; not every platform can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return n, nil
}

// sameFile reports whether a and b name the same existing file.
func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// ctxWriter fails writes once ctx is done, so that a backup can be
// cancelled between chunks. It remembers the first error.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
	err error
}

func (cw *ctxWriter) Write(p []byte) (int, error) {
	if cw.err != nil {
		return 0, cw.err
	}
	if err := cw.ctx.Err(); err != nil {
		cw.err = err
		return 0, err
	}
	n, err := cw.w.Write(p)
	if err != nil {
		cw.err = err
	}
	return n, err
}
