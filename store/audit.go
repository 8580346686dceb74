package store

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// auditCodecV1 is the first byte of every value in audit.
const auditCodecV1 = 1

// Limits on AuditEntry fields, in bytes; larger values fail with
// ErrInvalid.
const (
	MaxAuditFieldLen  = 3071 // Actor, Action, Target: a JID fits
	MaxAuditDetailLen = 65535
)

// AuditEntry is one administrative action, kept for traceability.
type AuditEntry struct {
	// ID is assigned by Audit.Add: unique, increasing in the order of
	// Add calls, and at least Time in Unix microseconds.
	ID uint64
	// Time is when the action happened; a zero Time is stored as the
	// current time. Stored with microsecond precision, read back in UTC.
	Time time.Time
	// Actor is who did it (an admin JID, "cli", "api:token-name").
	Actor string
	// Action is what was done ("user.delete", "archive.delete");
	// required.
	Action string
	// Target is what it was done to (a JID, a room); may be empty.
	Target string
	// Detail is free text; never put secrets in it.
	Detail string
}

// Validate checks e against the limits Audit.Add enforces (an empty
// Action, fields longer than MaxAuditFieldLen or MaxAuditDetailLen): a
// caller that must record an action can refuse it before doing it.
func (e AuditEntry) Validate() error {
	switch {
	case e.Action == "":
		return fmt.Errorf("empty action: %w", ErrInvalid)
	case len(e.Actor) > MaxAuditFieldLen || len(e.Action) > MaxAuditFieldLen || len(e.Target) > MaxAuditFieldLen:
		return fmt.Errorf("actor, action and target must be at most %d bytes: %w", MaxAuditFieldLen, ErrInvalid)
	case len(e.Detail) > MaxAuditDetailLen:
		return fmt.Errorf("detail of %d bytes exceeds %d: %w", len(e.Detail), MaxAuditDetailLen, ErrInvalid)
	}
	return nil
}

// Audit is the admin audit log (bucket "audit", keyed be64(id)). Ids are
// times like archive ids, so List seeks to its start. Get it from
// DB.Audit.
type Audit struct {
	db *DB
}

// Add appends e (its ID is ignored) and returns the id assigned:
// max(Time in µs, previous id + 1).
func (a *Audit) Add(ctx context.Context, e AuditEntry) (uint64, error) {
	if err := e.Validate(); err != nil {
		return 0, fmt.Errorf("store: add audit entry: %w", err)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	val := encodeAuditEntry(nil, e)
	var id uint64
	err := a.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketAudit)
		if err != nil {
			return err
		}
		id = 1
		if k, _ := b.Cursor().Last(); k != nil {
			last, err := parseIDSuffix(k, 0)
			if err != nil {
				return err
			}
			id = last + 1
		}
		if us := floorMicros(e.Time); us > 0 && uint64(us) > id {
			id = uint64(us)
		}
		return b.Put(be64(id), val)
	})
	if err != nil {
		return 0, fmt.Errorf("store: add audit entry %s: %w", e.Action, err)
	}
	return id, nil
}

// auditCheckEvery is how many entries List reads between looks at its
// context.
const auditCheckEvery = 1024

// List returns the entries whose Time is not before since and that keep
// accepts (nil: all), in id order (oldest first for entries added with a
// zero Time), at most limit of them (limit <= 0: all): limit counts kept
// entries. It seeks to since; it does not read older entries. It ends
// with ctx's error when ctx ends while it reads.
func (a *Audit) List(ctx context.Context, since time.Time, limit int, keep func(AuditEntry) bool) ([]AuditEntry, error) {
	var entries []AuditEntry
	err := a.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketAudit)
		if err != nil {
			return err
		}
		entries = nil
		// An entry's id is at least its Time in µs, so every entry at
		// or after since has an id at or after floor(since).
		var from uint64
		if !since.IsZero() {
			from = uint64(max(floorMicros(since), 0))
		}
		c := b.Cursor()
		read := 0
		for k, v := c.Seek(be64(from)); k != nil && (limit <= 0 || len(entries) < limit); k, v = c.Next() {
			// A listing that keeps few entries can read the whole log:
			// it ends when its caller is gone (an admin command
			// cancelled, as at shutdown).
			if read++; read%auditCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			id, err := parseIDSuffix(k, 0)
			if err != nil {
				return err
			}
			e, err := decodeAuditEntry(v)
			if err != nil {
				return fmt.Errorf("audit entry %d: %w", id, err)
			}
			if !since.IsZero() && e.Time.Before(since) {
				continue
			}
			e.ID = id
			if keep != nil && !keep(e) {
				continue
			}
			entries = append(entries, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list audit entries: %w", err)
	}
	return entries, nil
}

// encodeAuditEntry appends the audit value of e (ID is in the key):
//
//	byte    codec version (1)
//	varint  Time, Unix microseconds
//	bytes   Actor
//	bytes   Action
//	bytes   Target
//	bytes   Detail
func encodeAuditEntry(dst []byte, e AuditEntry) []byte {
	dst = append(dst, auditCodecV1)
	dst = appendVarint(dst, e.Time.UnixMicro())
	dst = appendString(dst, e.Actor)
	dst = appendString(dst, e.Action)
	dst = appendString(dst, e.Target)
	return appendString(dst, e.Detail)
}

// decodeAuditEntry decodes an audit value; ID is left zero.
func decodeAuditEntry(v []byte) (AuditEntry, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != auditCodecV1 {
		return AuditEntry{}, fmt.Errorf("%w: audit codec version %d unknown", ErrCorrupt, ver)
	}
	var e AuditEntry
	micros := d.varint()
	e.Actor = d.string()
	e.Action = d.string()
	e.Target = d.string()
	e.Detail = d.string()
	if err := d.done(); err != nil {
		return AuditEntry{}, fmt.Errorf("audit entry: %w", err)
	}
	e.Time = time.UnixMicro(micros).UTC()
	return e, nil
}
