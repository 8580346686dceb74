package store

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"
)

// offlineCodecV1 is the first byte of every value in offline;
// offlineCountCodecV1 that of every value in offline_count.
const (
	offlineCodecV1      = 1
	offlineCountCodecV1 = 1
)

// OfflineMessage is a message stored for a user who was offline (XEP-0160).
type OfflineMessage struct {
	// ID is assigned by Offline.Put; ids strictly increase across the
	// whole database, so they order messages by arrival.
	ID uint64
	// Stored is stored with microsecond precision and read back in UTC.
	Stored time.Time
	// Stanza is the message as it would have been delivered.
	Stanza []byte
}

// Offline is the offline-message sub-store (bucket "offline", keyed
// lp(owner) ‖ be64(id), and "offline_count", a per-owner counter so that
// Count and the quota check read one key). Get it from DB.Offline.
type Offline struct {
	db *DB
}

// Put stores stanza for owner and returns its id. A zero stored is set to
// the current time. It fails with ErrQuota if owner already has limit
// messages (limit <= 0: no limit) and with ErrInvalid for an empty stanza.
func (o *Offline) Put(ctx context.Context, owner string, stanza []byte, stored time.Time, limit int) (uint64, error) {
	if err := validateJID("owner", owner); err != nil {
		return 0, fmt.Errorf("store: put offline message: %w", err)
	}
	if len(stanza) == 0 {
		return 0, fmt.Errorf("store: put offline message for %s: empty stanza: %w", owner, ErrInvalid)
	}
	if stored.IsZero() {
		stored = time.Now()
	}
	var id uint64
	err := o.db.updateBatched(ctx, func(tx *bbolt.Tx) error {
		msgs, counts, err := offlineBuckets(tx)
		if err != nil {
			return err
		}
		prefix := lp(owner)
		n, err := offlineCount(counts, prefix)
		if err != nil {
			return err
		}
		if limit > 0 && n >= uint64(limit) {
			return refuse(fmt.Errorf("%d messages stored: %w", n, ErrQuota))
		}
		if id, err = msgs.NextSequence(); err != nil {
			return err
		}
		val := encodeOfflineMessage(nil, OfflineMessage{Stored: stored, Stanza: stanza})
		if err := msgs.Put(idKey(prefix, id), val); err != nil {
			return err
		}
		return counts.Put(prefix, encodeOfflineCount(nil, n+1))
	})
	if err != nil {
		return 0, fmt.Errorf("store: put offline message for %s: %w", owner, err)
	}
	return id, nil
}

// Take returns owner's messages, oldest first, and deletes them in the
// same transaction (nil if none).
func (o *Offline) Take(ctx context.Context, owner string) ([]OfflineMessage, error) {
	if err := validateJID("owner", owner); err != nil {
		return nil, fmt.Errorf("store: take offline messages: %w", err)
	}
	var msgs []OfflineMessage
	err := o.db.updateBatched(ctx, func(tx *bbolt.Tx) error {
		b, counts, err := offlineBuckets(tx)
		if err != nil {
			return err
		}
		prefix := lp(owner)
		if msgs, err = listOffline(b, prefix); err != nil {
			return err
		}
		if len(msgs) == 0 {
			// Nothing to delete; do not dirty the file.
			return nil
		}
		for _, m := range msgs {
			if err := b.Delete(idKey(prefix, m.ID)); err != nil {
				return err
			}
		}
		return counts.Delete(prefix)
	})
	if err != nil {
		return nil, fmt.Errorf("store: take offline messages of %s: %w", owner, err)
	}
	return msgs, nil
}

// Restore puts back messages Take returned for owner that could not be
// delivered, under their own ids, so that they keep their place before
// any stored since; the quota does not apply (they were stored within
// it). A message already stored again under its id is left as it is. It
// fails with ErrInvalid for an id Put never gave (zero, or above the
// store's last) or an empty stanza, and then restores none. For an
// account that no longer exists it restores nothing and succeeds: the
// account's deletion took its messages, and a later account of the same
// name must not get them.
func (o *Offline) Restore(ctx context.Context, owner string, msgs []OfflineMessage) error {
	if err := validateJID("owner", owner); err != nil {
		return fmt.Errorf("store: restore offline messages: %w", err)
	}
	if len(msgs) == 0 {
		return nil
	}
	err := o.db.updateBatched(ctx, func(tx *bbolt.Tx) error {
		if ok, err := accountExists(tx, owner); err != nil || !ok {
			return err
		}
		b, counts, err := offlineBuckets(tx)
		if err != nil {
			return err
		}
		prefix := lp(owner)
		n, err := offlineCount(counts, prefix)
		if err != nil {
			return err
		}
		last := b.Sequence()
		for _, m := range msgs {
			if m.ID == 0 || m.ID > last || len(m.Stanza) == 0 {
				return refuse(fmt.Errorf("message %d: not one Take returned: %w", m.ID, ErrInvalid))
			}
		}
		for _, m := range msgs {
			key := idKey(prefix, m.ID)
			if b.Get(key) != nil {
				continue
			}
			if err := b.Put(key, encodeOfflineMessage(nil, m)); err != nil {
				return err
			}
			n++
		}
		return counts.Put(prefix, encodeOfflineCount(nil, n))
	})
	if err != nil {
		return fmt.Errorf("store: restore offline messages of %s: %w", owner, err)
	}
	return nil
}

// List returns owner's messages, oldest first, without deleting them (nil
// if none).
func (o *Offline) List(ctx context.Context, owner string) ([]OfflineMessage, error) {
	if err := validateJID("owner", owner); err != nil {
		return nil, fmt.Errorf("store: list offline messages: %w", err)
	}
	var msgs []OfflineMessage
	err := o.db.view(ctx, func(tx *bbolt.Tx) error {
		b, _, err := offlineBuckets(tx)
		if err != nil {
			return err
		}
		msgs, err = listOffline(b, lp(owner))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list offline messages of %s: %w", owner, err)
	}
	return msgs, nil
}

// Count returns the number of messages stored for owner. It reads the
// counter, not the messages.
func (o *Offline) Count(ctx context.Context, owner string) (int, error) {
	if err := validateJID("owner", owner); err != nil {
		return 0, fmt.Errorf("store: count offline messages: %w", err)
	}
	var n uint64
	err := o.db.view(ctx, func(tx *bbolt.Tx) error {
		_, counts, err := offlineBuckets(tx)
		if err != nil {
			return err
		}
		n, err = offlineCount(counts, lp(owner))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: count offline messages of %s: %w", owner, err)
	}
	return int(min(n, math.MaxInt)), nil
}

func offlineBuckets(tx *bbolt.Tx) (msgs, counts *bbolt.Bucket, err error) {
	if msgs, err = bucket(tx, bucketOffline); err != nil {
		return nil, nil, err
	}
	if counts, err = bucket(tx, bucketOfflineCount); err != nil {
		return nil, nil, err
	}
	return msgs, counts, nil
}

// offlineCount reads the counter at key lp(owner); 0 if absent.
func offlineCount(counts *bbolt.Bucket, prefix []byte) (uint64, error) {
	v := counts.Get(prefix)
	if v == nil {
		return 0, nil
	}
	return decodeOfflineCount(v)
}

// listOffline reads the messages under prefix = lp(owner) in id order.
func listOffline(b *bbolt.Bucket, prefix []byte) ([]OfflineMessage, error) {
	var msgs []OfflineMessage
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		id, rest, err := readBE64(k[len(prefix):])
		if err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("%w: offline key %x", ErrCorrupt, k)
		}
		m, err := decodeOfflineMessage(v)
		if err != nil {
			return nil, fmt.Errorf("offline message %d: %w", id, err)
		}
		m.ID = id
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// deleteOfflineOwner removes owner's messages and counter.
func deleteOfflineOwner(tx *bbolt.Tx, owner string) error {
	msgs, counts, err := offlineBuckets(tx)
	if err != nil {
		return err
	}
	prefix := lp(owner)
	if err := deletePrefix(msgs, prefix); err != nil {
		return err
	}
	return counts.Delete(prefix)
}

// encodeOfflineMessage appends the value encoding of m (ID is in the key):
//
//	byte    codec version (1)
//	varint  Stored, Unix microseconds
//	bytes   Stanza
func encodeOfflineMessage(dst []byte, m OfflineMessage) []byte {
	dst = append(dst, offlineCodecV1)
	dst = appendVarint(dst, m.Stored.UnixMicro())
	return appendBytes(dst, m.Stanza)
}

// decodeOfflineMessage decodes an offline value. ID is left zero. The
// result does not alias v.
func decodeOfflineMessage(v []byte) (OfflineMessage, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != offlineCodecV1 {
		return OfflineMessage{}, fmt.Errorf("%w: offline codec version %d unknown", ErrCorrupt, ver)
	}
	micros := d.varint()
	stanza := d.bytes()
	if err := d.done(); err != nil {
		return OfflineMessage{}, fmt.Errorf("offline message: %w", err)
	}
	return OfflineMessage{Stored: time.UnixMicro(micros).UTC(), Stanza: stanza}, nil
}

// encodeOfflineCount appends byte(1) ‖ uvarint(n).
func encodeOfflineCount(dst []byte, n uint64) []byte {
	return appendUvarint(append(dst, offlineCountCodecV1), n)
}

func decodeOfflineCount(v []byte) (uint64, error) {
	return decodeVersionedUvarint(v, offlineCountCodecV1, "offline count")
}
