package store

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// activityCodecV1 is the first byte of every value in activity.
const activityCodecV1 = 1

// Activity is what an account left behind when its last session ended:
// the time for XEP-0012 last-activity queries and the last unavailable
// presence.
type Activity struct {
	// LastLogout is when the last session ended; a zero LastLogout is
	// stored as the current time. Stored with microsecond precision and
	// read back in UTC.
	LastLogout time.Time
	// Status is the last unavailable presence stanza; may be nil.
	Status []byte
}

// Activities is the last-activity sub-store (bucket "activity", keyed
// lp(owner)). Get it from DB.Activity.
type Activities struct {
	db *DB
}

// Set replaces owner's last activity. It stores nothing if owner is not
// an account (local@host in users): the last session of an account that
// was just removed ends after the removal, and its record would be
// inherited by an account created later under the same name.
func (a *Activities) Set(ctx context.Context, owner string, act Activity) error {
	if err := validateJID("owner", owner); err != nil {
		return fmt.Errorf("store: set activity: %w", err)
	}
	if act.LastLogout.IsZero() {
		act.LastLogout = time.Now()
	}
	val := encodeActivity(nil, act)
	// Batched: when many sessions end together (an office's network
	// drops, a restart) their writes share commits instead of paying one
	// sync each.
	err := a.db.updateBatched(ctx, func(tx *bbolt.Tx) error {
		if ok, err := accountExists(tx, owner); err != nil || !ok {
			return err
		}
		b, err := bucket(tx, bucketActivity)
		if err != nil {
			return err
		}
		return b.Put(lp(owner), val)
	})
	if err != nil {
		return fmt.Errorf("store: set activity of %s: %w", owner, err)
	}
	return nil
}

// Get returns owner's last activity, or ErrNotFound if none was recorded.
func (a *Activities) Get(ctx context.Context, owner string) (Activity, error) {
	if err := validateJID("owner", owner); err != nil {
		return Activity{}, fmt.Errorf("store: get activity: %w", err)
	}
	var act Activity
	err := a.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketActivity)
		if err != nil {
			return err
		}
		v := b.Get(lp(owner))
		if v == nil {
			return ErrNotFound
		}
		act, err = decodeActivity(v)
		return err
	})
	if err != nil {
		return Activity{}, fmt.Errorf("store: get activity of %s: %w", owner, err)
	}
	return act, nil
}

// deleteActivityOwner removes owner's last activity.
func deleteActivityOwner(tx *bbolt.Tx, owner string) error {
	b, err := bucket(tx, bucketActivity)
	if err != nil {
		return err
	}
	return b.Delete(lp(owner))
}

// encodeActivity appends:
//
//	byte    codec version (1)
//	varint  LastLogout, Unix microseconds
//	bytes   Status
func encodeActivity(dst []byte, act Activity) []byte {
	dst = append(dst, activityCodecV1)
	dst = appendVarint(dst, act.LastLogout.UnixMicro())
	return appendBytes(dst, act.Status)
}

// decodeActivity decodes an activity value; an empty Status decodes as
// nil. The result does not alias v.
func decodeActivity(v []byte) (Activity, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != activityCodecV1 {
		return Activity{}, fmt.Errorf("%w: activity codec version %d unknown", ErrCorrupt, ver)
	}
	micros := d.varint()
	status := d.bytes()
	if err := d.done(); err != nil {
		return Activity{}, fmt.Errorf("activity: %w", err)
	}
	return Activity{LastLogout: time.UnixMicro(micros).UTC(), Status: status}, nil
}
