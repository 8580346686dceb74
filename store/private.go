package store

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// privateCodecV1 is the first byte of every value in the private bucket.
const privateCodecV1 = 1

// MaxPrivateNamespace bounds the namespace of a private XML element, in
// bytes: it is part of a key.
const MaxPrivateNamespace = 1024

// PrivateItem is what private XML storage (XEP-0049) keeps under one
// namespace: the serialised elements of that namespace, each declaring
// it. An empty XML removes what is stored under NS.
type PrivateItem struct {
	NS  string
	XML []byte
}

// Private is the private XML storage sub-store (XEP-0049): bucket
// "private", keyed lp(owner) ‖ namespace, holds the serialised elements of
// each namespace of each account. Get it from DB.Private.
type Private struct {
	db *DB
}

// Get returns the elements owner stored under ns, or ErrNotFound. The
// result does not alias the database.
func (p *Private) Get(ctx context.Context, owner, ns string) ([]byte, error) {
	if err := validatePrivate(owner, ns); err != nil {
		return nil, fmt.Errorf("store: get private xml: %w", err)
	}
	var out []byte
	err := p.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketPrivate)
		if err != nil {
			return err
		}
		val := b.Get(append(lp(owner), ns...))
		if val == nil {
			return ErrNotFound
		}
		out, err = decodeVersionedBytes(val, privateCodecV1, "private xml")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: get private xml %q of %s: %w", ns, owner, err)
	}
	return out, nil
}

// Set stores items for owner in one transaction: all of them or, on an
// error, none. Each replaces what was stored under its namespace; an item
// with an empty XML removes it. Set fails with ErrQuota if it adds to
// what owner stores and owner would then store more than maxBytes in all
// (the items' XML and namespaces),
// and with ErrNotFound if owner is not an account, so that a session
// outliving its account's removal stores nothing a later account of the
// same name would inherit.
func (p *Private) Set(ctx context.Context, owner string, items []PrivateItem, maxBytes int) error {
	for _, it := range items {
		if err := validatePrivate(owner, it.NS); err != nil {
			return fmt.Errorf("store: set private xml: %w", err)
		}
	}
	prefix := lp(owner)
	err := p.db.update(ctx, func(tx *bbolt.Tx) error {
		if ok, err := accountExists(tx, owner); err != nil {
			return err
		} else if !ok {
			return ErrNotFound
		}
		b, err := bucket(tx, bucketPrivate)
		if err != nil {
			return err
		}
		grew := 0 // what the writes add to the owner's bytes
		for _, it := range items {
			k := append(bytes.Clone(prefix), it.NS...)
			if old := b.Get(k); old != nil {
				grew -= len(it.NS) + len(old) - 1
			}
			if len(it.XML) == 0 {
				err = b.Delete(k)
			} else {
				err = b.Put(k, append([]byte{privateCodecV1}, it.XML...))
				grew += len(it.NS) + len(it.XML)
			}
			if err != nil {
				return err
			}
		}
		if grew <= 0 {
			// Nothing grew: an account over a lowered quota can
			// still clear or shrink what it stores.
			return nil
		}
		// The writes above are visible to this cursor; on ErrQuota the
		// transaction rolls them back.
		used := 0
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			used += len(k) - len(prefix) + len(v) - 1
		}
		if used > maxBytes {
			return fmt.Errorf("%w: %d bytes of private xml, %d allowed", ErrQuota, used, maxBytes)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: set private xml of %s: %w", owner, err)
	}
	return nil
}

// validatePrivate checks an owner and a namespace.
func validatePrivate(owner, ns string) error {
	if _, _, err := splitOwner(owner); err != nil {
		return err
	}
	if ns == "" || len(ns) > MaxPrivateNamespace {
		return fmt.Errorf("namespace must be 1 to %d bytes, got %d: %w", MaxPrivateNamespace, len(ns), ErrInvalid)
	}
	return nil
}

// deletePrivateOwner removes owner's private XML.
func deletePrivateOwner(tx *bbolt.Tx, owner string) error {
	b, err := bucket(tx, bucketPrivate)
	if err != nil {
		return err
	}
	return deletePrefix(b, lp(owner))
}
