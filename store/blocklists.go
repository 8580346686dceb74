package store

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// Blocklists is the sub-store of blocked JIDs (XEP-0191), bucket
// "blocklist" keyed lp(owner) ‖ jid with empty values. Entries are kept as
// given — a bare JID, a full JID or a domain — and compared as bytes; the
// blocking module decides which entries match a stanza. Get it from
// DB.Blocklists.
type Blocklists struct {
	db *DB
}

// Add blocks jids for owner. Already blocked ones are left as they are. At
// least one JID is required (ErrInvalid).
func (b *Blocklists) Add(ctx context.Context, owner string, jids ...string) error {
	if err := validateBlocklist(owner, jids); err != nil {
		return fmt.Errorf("store: block: %w", err)
	}
	if len(jids) == 0 {
		return fmt.Errorf("store: block for %s: no JIDs: %w", owner, ErrInvalid)
	}
	prefix := lp(owner)
	err := b.db.update(ctx, func(tx *bbolt.Tx) error {
		bl, err := bucket(tx, bucketBlocklist)
		if err != nil {
			return err
		}
		for _, j := range jids {
			if err := bl.Put(append(bytes.Clone(prefix), j...), []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: block for %s: %w", owner, err)
	}
	return nil
}

// Remove unblocks jids for owner; JIDs that are not blocked are ignored.
// With no jids it clears owner's whole blocklist.
func (b *Blocklists) Remove(ctx context.Context, owner string, jids ...string) error {
	if err := validateBlocklist(owner, jids); err != nil {
		return fmt.Errorf("store: unblock: %w", err)
	}
	prefix := lp(owner)
	err := b.db.update(ctx, func(tx *bbolt.Tx) error {
		bl, err := bucket(tx, bucketBlocklist)
		if err != nil {
			return err
		}
		if len(jids) == 0 {
			return deletePrefix(bl, prefix)
		}
		for _, j := range jids {
			if err := bl.Delete(append(bytes.Clone(prefix), j...)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: unblock for %s: %w", owner, err)
	}
	return nil
}

// List returns owner's blocked JIDs in byte order (nil if none).
func (b *Blocklists) List(ctx context.Context, owner string) ([]string, error) {
	if err := validateJID("owner", owner); err != nil {
		return nil, fmt.Errorf("store: list blocked: %w", err)
	}
	var jids []string
	prefix := lp(owner)
	err := b.db.view(ctx, func(tx *bbolt.Tx) error {
		bl, err := bucket(tx, bucketBlocklist)
		if err != nil {
			return err
		}
		c := bl.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) == len(prefix) {
				return fmt.Errorf("%w: blocklist key without JID", ErrCorrupt)
			}
			jids = append(jids, string(k[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list blocked for %s: %w", owner, err)
	}
	return jids, nil
}

// Contains reports whether owner's blocklist holds exactly j.
func (b *Blocklists) Contains(ctx context.Context, owner, j string) (bool, error) {
	if err := validateBlocklist(owner, []string{j}); err != nil {
		return false, fmt.Errorf("store: is blocked: %w", err)
	}
	var ok bool
	err := b.db.view(ctx, func(tx *bbolt.Tx) error {
		bl, err := bucket(tx, bucketBlocklist)
		if err != nil {
			return err
		}
		ok = hasKey(bl, append(lp(owner), j...))
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: is %s blocked for %s: %w", j, owner, err)
	}
	return ok, nil
}

func validateBlocklist(owner string, jids []string) error {
	if err := validateJID("owner", owner); err != nil {
		return err
	}
	for _, j := range jids {
		if err := validateJID("blocked JID", j); err != nil {
			return err
		}
	}
	return nil
}

// deleteBlocklistOwner removes owner's blocklist.
func deleteBlocklistOwner(tx *bbolt.Tx, owner string) error {
	b, err := bucket(tx, bucketBlocklist)
	if err != nil {
		return err
	}
	return deletePrefix(b, lp(owner))
}
