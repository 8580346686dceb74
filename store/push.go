package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// pushCodecV1 is the first byte of every value in the push bucket.
const pushCodecV1 = 1

// MaxPushNode bounds the node of a push service, in bytes: it is part of
// a key.
const MaxPushNode = 1024

// PushService is an XMPP push service an account's client enabled
// (XEP-0357 §5): the server publishes notifications to Node at JID.
type PushService struct {
	// JID and Node identify the service: enabling the same pair again
	// replaces it (§5).
	JID, Node string
	// Resource is the resource that enabled it last: while that
	// resource is connected its client needs no notification.
	Resource string
	// Options is the serialised publish-options data form the client
	// gave, sent with every notification; nil when it gave none.
	Options []byte
	// Enabled is when it was last enabled.
	Enabled time.Time
}

// Push is the push notification sub-store (XEP-0357): bucket "push",
// keyed lp(owner) ‖ lp(service JID) ‖ node, holds the services each
// account enabled. Get it from DB.Push.
type Push struct {
	db *DB
}

// List returns owner's services, oldest enabled first. The result does
// not alias the database.
func (p *Push) List(ctx context.Context, owner string) ([]PushService, error) {
	if _, _, err := splitOwner(owner); err != nil {
		return nil, fmt.Errorf("store: list push services: %w", err)
	}
	var out []PushService
	err := p.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketPush)
		if err != nil {
			return err
		}
		out, err = pushServices(b, lp(owner))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list push services of %s: %w", owner, err)
	}
	return out, nil
}

// All calls fn for each account that has services, with them (oldest
// enabled first), until fn returns false. It reads the whole bucket in
// one transaction: a server loads the services when it starts.
func (p *Push) All(ctx context.Context, fn func(owner string, services []PushService) bool) error {
	err := p.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketPush)
		if err != nil {
			return err
		}
		// Keys group by owner (lp(owner) first): each owner's are read
		// as a whole, then the cursor goes on past them.
		c := b.Cursor()
		for k, _ := c.First(); k != nil; {
			owner, _, err := readBytes(k)
			if err != nil {
				return fmt.Errorf("%w: push key: %v", ErrCorrupt, err)
			}
			prefix := lp(string(owner))
			services, err := pushServices(b, prefix)
			if err != nil {
				return err
			}
			if !fn(string(owner), services) {
				return nil
			}
			k, _ = c.Seek(prefix)
			for k != nil && bytes.HasPrefix(k, prefix) {
				k, _ = c.Next()
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: all push services: %w", err)
	}
	return nil
}

// Put enables s for owner, replacing a service of the same JID and node.
// When owner then has more than most services, the oldest enabled are
// removed and returned. It fails with ErrNotFound if owner is not an
// account, so that a session outliving its account's removal stores
// nothing a later account of the same name would inherit.
func (p *Push) Put(ctx context.Context, owner string, s PushService, most int) ([]PushService, error) {
	if err := validatePush(owner, s.JID, s.Node); err != nil {
		return nil, fmt.Errorf("store: put push service: %w", err)
	}
	if most < 1 {
		return nil, fmt.Errorf("store: put push service: at most %d services: %w", most, ErrInvalid)
	}
	var dropped []PushService
	err := p.db.update(ctx, func(tx *bbolt.Tx) error {
		if ok, err := accountExists(tx, owner); err != nil {
			return err
		} else if !ok {
			return ErrNotFound
		}
		b, err := bucket(tx, bucketPush)
		if err != nil {
			return err
		}
		prefix := lp(owner)
		if err := b.Put(pushKey(prefix, s.JID, s.Node), encodePushService(s)); err != nil {
			return err
		}
		all, err := pushServices(b, prefix)
		if err != nil {
			return err
		}
		for len(all) > most {
			if err := b.Delete(pushKey(prefix, all[0].JID, all[0].Node)); err != nil {
				return err
			}
			dropped = append(dropped, all[0])
			all = all[1:]
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: put push service of %s: %w", owner, err)
	}
	return dropped, nil
}

// Remove disables owner's services at jid: the one of node, or every one
// when anyNode. It returns those it removed (none is not an error).
func (p *Push) Remove(ctx context.Context, owner, jid, node string, anyNode bool) ([]PushService, error) {
	if err := validatePush(owner, jid, node); err != nil {
		return nil, fmt.Errorf("store: remove push service: %w", err)
	}
	var removed []PushService
	err := p.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketPush)
		if err != nil {
			return err
		}
		all, err := pushServices(b, lp(owner))
		if err != nil {
			return err
		}
		for _, s := range all {
			if s.JID != jid || (!anyNode && s.Node != node) {
				continue
			}
			if err := b.Delete(pushKey(lp(owner), s.JID, s.Node)); err != nil {
				return err
			}
			removed = append(removed, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: remove push service of %s: %w", owner, err)
	}
	return removed, nil
}

// pushServices decodes the services under prefix, lp(owner), oldest
// enabled first.
func pushServices(b *bbolt.Bucket, prefix []byte) ([]PushService, error) {
	var out []PushService
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		jid, node, err := readBytes(k[len(prefix):])
		if err != nil {
			return nil, fmt.Errorf("%w: push key: %v", ErrCorrupt, err)
		}
		s, err := decodePushService(v)
		if err != nil {
			return nil, err
		}
		s.JID, s.Node = string(jid), string(node)
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b PushService) int { return a.Enabled.Compare(b.Enabled) })
	return out, nil
}

// pushKey returns prefix ‖ lp(jid) ‖ node, in a new slice.
func pushKey(prefix []byte, jid, node string) []byte {
	k := make([]byte, 0, len(prefix)+maxVarintLen+len(jid)+len(node))
	k = append(k, prefix...)
	k = appendString(k, jid)
	return append(k, node...)
}

// encodePushService returns v1 ‖ lp(resource) ‖ varint(enabled, µs) ‖
// lp(options).
func encodePushService(s PushService) []byte {
	v := make([]byte, 0, 1+2*maxVarintLen+len(s.Resource)+maxVarintLen+len(s.Options))
	v = append(v, pushCodecV1)
	v = appendString(v, s.Resource)
	v = appendVarint(v, s.Enabled.UnixMicro())
	return appendBytes(v, s.Options)
}

func decodePushService(v []byte) (PushService, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != pushCodecV1 {
		return PushService{}, fmt.Errorf("%w: push service codec version %d unknown", ErrCorrupt, ver)
	}
	s := PushService{Resource: d.string()}
	s.Enabled = time.UnixMicro(d.varint()).UTC()
	s.Options = d.bytes()
	if err := d.done(); err != nil {
		return PushService{}, fmt.Errorf("push service: %w", err)
	}
	return s, nil
}

// validatePush checks an owner, a service JID and a node.
func validatePush(owner, jid, node string) error {
	if _, _, err := splitOwner(owner); err != nil {
		return err
	}
	if err := validateJID("push service", jid); err != nil {
		return err
	}
	if len(node) > MaxPushNode {
		return fmt.Errorf("push node must be at most %d bytes, got %d: %w", MaxPushNode, len(node), ErrInvalid)
	}
	return nil
}

// deletePushOwner removes owner's push services.
func deletePushOwner(tx *bbolt.Tx, owner string) error {
	b, err := bucket(tx, bucketPush)
	if err != nil {
		return err
	}
	return deletePrefix(b, lp(owner))
}
