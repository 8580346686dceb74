package store

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// ArchivePrefs are a user's archiving preferences (XEP-0313 §6.1):
// Default is "always", "roster" or "never"; Always and Never list JIDs.
type ArchivePrefs struct {
	Default string
	Always  []string
	Never   []string
}

const archivePrefsCodecV1 = 1

// maxPrefsJIDs bounds the lists of a preference record.
const maxPrefsJIDs = 1000

// ArchivePrefsStore is the sub-store of archiving preferences (bucket
// "mam_prefs", keyed lp(owner)). Get it from DB.ArchivePrefs.
type ArchivePrefsStore struct {
	db *DB
}

func encodeArchivePrefs(dst []byte, p ArchivePrefs) []byte {
	dst = append(dst, archivePrefsCodecV1)
	dst = appendString(dst, p.Default)
	dst = appendUvarint(dst, uint64(len(p.Always)))
	for _, j := range p.Always {
		dst = appendString(dst, j)
	}
	dst = appendUvarint(dst, uint64(len(p.Never)))
	for _, j := range p.Never {
		dst = appendString(dst, j)
	}
	return dst
}

func decodeArchivePrefs(v []byte) (ArchivePrefs, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != archivePrefsCodecV1 {
		return ArchivePrefs{}, fmt.Errorf("%w: archive prefs codec %d", ErrCorrupt, ver)
	}
	p := ArchivePrefs{Default: d.string()}
	list := func() []string {
		n := d.uvarint()
		if n > maxPrefsJIDs {
			d.fail(fmt.Errorf("%w: %d JIDs in archive prefs", ErrCorrupt, n))
			return nil
		}
		var out []string
		for i := uint64(0); i < n && d.err == nil; i++ {
			out = append(out, d.string())
		}
		return out
	}
	p.Always = list()
	p.Never = list()
	if err := d.done(); err != nil {
		return ArchivePrefs{}, fmt.Errorf("archive prefs: %w", err)
	}
	return p, nil
}

// Set replaces owner's preferences.
func (s *ArchivePrefsStore) Set(ctx context.Context, owner string, p ArchivePrefs) error {
	if err := validateJID("owner", owner); err != nil {
		return fmt.Errorf("store: set archive prefs: %w", err)
	}
	if len(p.Always) > maxPrefsJIDs || len(p.Never) > maxPrefsJIDs {
		return fmt.Errorf("store: set archive prefs of %s: too many JIDs: %w", owner, ErrInvalid)
	}
	val := encodeArchivePrefs(nil, p)
	err := s.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketArchivePrefs)
		if err != nil {
			return err
		}
		return b.Put(lp(owner), val)
	})
	if err != nil {
		return fmt.Errorf("store: set archive prefs of %s: %w", owner, err)
	}
	return nil
}

// Get returns owner's preferences, or ErrNotFound.
func (s *ArchivePrefsStore) Get(ctx context.Context, owner string) (ArchivePrefs, error) {
	if err := validateJID("owner", owner); err != nil {
		return ArchivePrefs{}, fmt.Errorf("store: get archive prefs: %w", err)
	}
	var p ArchivePrefs
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketArchivePrefs)
		if err != nil {
			return err
		}
		v := b.Get(lp(owner))
		if v == nil {
			return ErrNotFound
		}
		p, err = decodeArchivePrefs(v)
		return err
	})
	if err != nil {
		return ArchivePrefs{}, fmt.Errorf("store: get archive prefs of %s: %w", owner, err)
	}
	return p, nil
}

func deleteArchivePrefsOwner(tx *bbolt.Tx, owner string) error {
	b, err := bucket(tx, bucketArchivePrefs)
	if err != nil {
		return err
	}
	return b.Delete(lp(owner))
}
