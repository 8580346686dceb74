package store

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// presenceOverrideCodecV1 is the first byte of every value in
// presence_override.
const presenceOverrideCodecV1 = 1

// Limits on PresenceOverride fields, in bytes; larger values fail with
// ErrInvalid.
const (
	MaxOverrideShowLen      = 1023
	MaxOverrideStatusLen    = 65535
	MaxOverrideCallStateLen = 1023
)

// PresenceOverride is presence set for an account from outside XMPP (for
// example a phone system reporting a call). The presence module decides
// how it combines with the account's own presence.
type PresenceOverride struct {
	// Show is an RFC 6121 §4.7.2.1 show value ("away", "dnd", …) or
	// empty; the store does not check it.
	Show string
	// Status is a human-readable status text.
	Status string
	// CallState is an application-defined call state ("ringing", …).
	CallState string
	// Set is when the override was set; a zero Set is stored as the
	// current time. Stored with microsecond precision, read back in UTC.
	Set time.Time
}

func (o PresenceOverride) validate() error {
	switch {
	case len(o.Show) > MaxOverrideShowLen:
		return fmt.Errorf("show of %d bytes exceeds %d: %w", len(o.Show), MaxOverrideShowLen, ErrInvalid)
	case len(o.Status) > MaxOverrideStatusLen:
		return fmt.Errorf("status of %d bytes exceeds %d: %w", len(o.Status), MaxOverrideStatusLen, ErrInvalid)
	case len(o.CallState) > MaxOverrideCallStateLen:
		return fmt.Errorf("call state of %d bytes exceeds %d: %w", len(o.CallState), MaxOverrideCallStateLen, ErrInvalid)
	}
	return nil
}

// PresenceOverrides is the sub-store of externally set presence (bucket
// "presence_override", keyed lp(owner)). Get it from DB.PresenceOverrides.
type PresenceOverrides struct {
	db *DB
}

// Set replaces owner's override.
func (p *PresenceOverrides) Set(ctx context.Context, owner string, o PresenceOverride) error {
	if err := validateJID("owner", owner); err != nil {
		return fmt.Errorf("store: set presence override: %w", err)
	}
	if err := o.validate(); err != nil {
		return fmt.Errorf("store: set presence override of %s: %w", owner, err)
	}
	if o.Set.IsZero() {
		o.Set = time.Now()
	}
	val := encodePresenceOverride(nil, o)
	err := p.db.updateBatched(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketPresenceOverride)
		if err != nil {
			return err
		}
		return b.Put(lp(owner), val)
	})
	if err != nil {
		return fmt.Errorf("store: set presence override of %s: %w", owner, err)
	}
	return nil
}

// Clear removes owner's override. It is not an error if there is none.
func (p *PresenceOverrides) Clear(ctx context.Context, owner string) error {
	if err := validateJID("owner", owner); err != nil {
		return fmt.Errorf("store: clear presence override: %w", err)
	}
	err := p.db.updateBatched(ctx, func(tx *bbolt.Tx) error {
		return deletePresenceOverrideOwner(tx, owner)
	})
	if err != nil {
		return fmt.Errorf("store: clear presence override of %s: %w", owner, err)
	}
	return nil
}

// Get returns owner's override, or ErrNotFound.
func (p *PresenceOverrides) Get(ctx context.Context, owner string) (PresenceOverride, error) {
	if err := validateJID("owner", owner); err != nil {
		return PresenceOverride{}, fmt.Errorf("store: get presence override: %w", err)
	}
	var o PresenceOverride
	err := p.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketPresenceOverride)
		if err != nil {
			return err
		}
		v := b.Get(lp(owner))
		if v == nil {
			return ErrNotFound
		}
		o, err = decodePresenceOverride(v)
		return err
	})
	if err != nil {
		return PresenceOverride{}, fmt.Errorf("store: get presence override of %s: %w", owner, err)
	}
	return o, nil
}

// All returns every override by owner, for loading at startup. It reads
// the whole bucket, which holds one small record per overridden account.
func (p *PresenceOverrides) All(ctx context.Context) (map[string]PresenceOverride, error) {
	all := make(map[string]PresenceOverride)
	err := p.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketPresenceOverride)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			owner, rest, err := readBytes(k)
			if err != nil || len(owner) == 0 || len(rest) != 0 {
				return fmt.Errorf("%w: presence override key %x", ErrCorrupt, k)
			}
			o, err := decodePresenceOverride(v)
			if err != nil {
				return fmt.Errorf("presence override of %q: %w", owner, err)
			}
			all[string(owner)] = o
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: all presence overrides: %w", err)
	}
	return all, nil
}

// deletePresenceOverrideOwner removes owner's override.
func deletePresenceOverrideOwner(tx *bbolt.Tx, owner string) error {
	b, err := bucket(tx, bucketPresenceOverride)
	if err != nil {
		return err
	}
	return b.Delete(lp(owner))
}

// encodePresenceOverride appends:
//
//	byte    codec version (1)
//	bytes   Show
//	bytes   Status
//	bytes   CallState
//	varint  Set, Unix microseconds
func encodePresenceOverride(dst []byte, o PresenceOverride) []byte {
	dst = append(dst, presenceOverrideCodecV1)
	dst = appendString(dst, o.Show)
	dst = appendString(dst, o.Status)
	dst = appendString(dst, o.CallState)
	return appendVarint(dst, o.Set.UnixMicro())
}

// decodePresenceOverride decodes a presence_override value.
func decodePresenceOverride(v []byte) (PresenceOverride, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != presenceOverrideCodecV1 {
		return PresenceOverride{}, fmt.Errorf("%w: presence override codec version %d unknown", ErrCorrupt, ver)
	}
	o := PresenceOverride{Show: d.string(), Status: d.string(), CallState: d.string()}
	micros := d.varint()
	if err := d.done(); err != nil {
		return PresenceOverride{}, fmt.Errorf("presence override: %w", err)
	}
	o.Set = time.UnixMicro(micros).UTC()
	return o, nil
}
