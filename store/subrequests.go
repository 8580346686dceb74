package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// MaxSubRequests is the most pending inbound subscription requests kept
// per owner; SubRequests.Put of a further requester fails with ErrQuota.
const MaxSubRequests = 1000

// subRequestCodecV1 is the first byte of every value in sub_requests.
const subRequestCodecV1 = 1

// SubRequest is a pending inbound subscription request (RFC 6121 §3.1.3):
// someone asked to see the owner's presence and the owner has not answered
// yet.
type SubRequest struct {
	// From is the requester's bare JID.
	From string
	// Stanza is the subscribe presence as received, re-delivered at
	// every login until answered. May be nil.
	Stanza []byte
	// Received is stored with microsecond precision and read back in UTC.
	Received time.Time
}

// SubRequests is the sub-store of pending inbound subscription requests
// (bucket "sub_requests"), kept until the owner approves or denies them.
// Get it from DB.SubRequests.
type SubRequests struct {
	db *DB
}

// Put stores req for owner, replacing an earlier request from the same
// requester. A zero Received is set to the current time. It fails with
// ErrQuota when owner already has MaxSubRequests pending requests and
// req.From is not one of them, and with ErrNotFound when owner is not an
// account (local@host in users): a request that arrives as its account is
// deleted is not kept for an account created later under the same name.
func (s *SubRequests) Put(ctx context.Context, owner string, req SubRequest) error {
	if err := validateSubRequestKey(owner, req.From); err != nil {
		return fmt.Errorf("store: put subscription request: %w", err)
	}
	if req.Received.IsZero() {
		req.Received = time.Now()
	}
	val := encodeSubRequest(nil, req)
	prefix := lp(owner)
	key := append(bytes.Clone(prefix), req.From...)
	err := s.db.updateBatched(ctx, func(tx *bbolt.Tx) error {
		if ok, err := accountExists(tx, owner); err != nil {
			return err
		} else if !ok {
			return refuse(ErrNotFound)
		}
		b, err := bucket(tx, bucketSubRequests)
		if err != nil {
			return err
		}
		if b.Get(key) == nil && countPrefix(b, prefix, MaxSubRequests) >= MaxSubRequests {
			return refuse(fmt.Errorf("%d requests pending: %w", MaxSubRequests, ErrQuota))
		}
		return b.Put(key, val)
	})
	if err != nil {
		return fmt.Errorf("store: put subscription request from %s to %s: %w", req.From, owner, err)
	}
	return nil
}

// Delete removes owner's pending request from from. It is not an error if
// there is none.
func (s *SubRequests) Delete(ctx context.Context, owner, from string) error {
	if err := validateSubRequestKey(owner, from); err != nil {
		return fmt.Errorf("store: delete subscription request: %w", err)
	}
	err := s.db.updateBatched(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSubRequests)
		if err != nil {
			return err
		}
		return b.Delete(append(lp(owner), from...))
	})
	if err != nil {
		return fmt.Errorf("store: delete subscription request from %s to %s: %w", from, owner, err)
	}
	return nil
}

// Get returns owner's pending request from from, or ErrNotFound.
func (s *SubRequests) Get(ctx context.Context, owner, from string) (SubRequest, error) {
	if err := validateSubRequestKey(owner, from); err != nil {
		return SubRequest{}, fmt.Errorf("store: get subscription request: %w", err)
	}
	var req SubRequest
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSubRequests)
		if err != nil {
			return err
		}
		v := b.Get(append(lp(owner), from...))
		if v == nil {
			return ErrNotFound
		}
		req, err = decodeSubRequest(v)
		return err
	})
	if err != nil {
		return SubRequest{}, fmt.Errorf("store: get subscription request from %s to %s: %w", from, owner, err)
	}
	req.From = from
	return req, nil
}

// List returns owner's pending requests, oldest Received first (ties by
// From); nil if none.
func (s *SubRequests) List(ctx context.Context, owner string) ([]SubRequest, error) {
	if err := validateJID("owner", owner); err != nil {
		return nil, fmt.Errorf("store: list subscription requests: %w", err)
	}
	var reqs []SubRequest
	prefix := lp(owner)
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSubRequests)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			from := k[len(prefix):]
			if len(from) == 0 {
				return fmt.Errorf("%w: subscription request key without requester", ErrCorrupt)
			}
			req, err := decodeSubRequest(v)
			if err != nil {
				return fmt.Errorf("request from %q: %w", from, err)
			}
			req.From = string(from)
			reqs = append(reqs, req)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list subscription requests of %s: %w", owner, err)
	}
	slices.SortFunc(reqs, func(a, b SubRequest) int {
		return cmp.Or(a.Received.Compare(b.Received), cmp.Compare(a.From, b.From))
	})
	return reqs, nil
}

func validateSubRequestKey(owner, from string) error {
	if err := validateJID("owner", owner); err != nil {
		return err
	}
	return validateJID("requester", from)
}

// deleteSubRequestsOwner removes all of owner's pending requests.
func deleteSubRequestsOwner(tx *bbolt.Tx, owner string) error {
	b, err := bucket(tx, bucketSubRequests)
	if err != nil {
		return err
	}
	return deletePrefix(b, lp(owner))
}

// countPrefix counts the keys of b that start with prefix, stopping at
// limit.
func countPrefix(b *bbolt.Bucket, prefix []byte, limit int) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && n < limit; k, _ = c.Next() {
		n++
	}
	return n
}

// encodeSubRequest appends the value encoding of req (From is in the key):
//
//	byte    codec version (1)
//	varint  Received, Unix microseconds
//	bytes   Stanza
func encodeSubRequest(dst []byte, req SubRequest) []byte {
	dst = append(dst, subRequestCodecV1)
	dst = appendVarint(dst, req.Received.UnixMicro())
	return appendBytes(dst, req.Stanza)
}

// decodeSubRequest decodes a sub_requests value. From is left empty; an
// empty Stanza decodes as nil. The result does not alias v.
func decodeSubRequest(v []byte) (SubRequest, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != subRequestCodecV1 {
		return SubRequest{}, fmt.Errorf("%w: subscription request codec version %d unknown", ErrCorrupt, ver)
	}
	micros := d.varint()
	stanza := d.bytes()
	if err := d.done(); err != nil {
		return SubRequest{}, fmt.Errorf("subscription request: %w", err)
	}
	return SubRequest{Stanza: stanza, Received: time.UnixMicro(micros).UTC()}, nil
}
