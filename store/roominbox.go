package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// roomInboxCodecV1 is the first byte of every value in room_inbox.
const roomInboxCodecV1 = 1

// MaxRoomInbox bounds the rooms one account follows (RoomInbox.Apply skips
// a change beyond it and counts it).
const MaxRoomInbox = 1000

// RoomInboxEntry is a room in an account's conversation list.
type RoomInboxEntry struct {
	// Room is the room's bare JID.
	Room string
	// Joined is when the account first entered the room (microseconds,
	// UTC); messages before it are not unread.
	Joined time.Time
	// ReadID is the newest id of the room's archive the account marked
	// read (XEP-0333 displayed, from any device), 0 if none.
	ReadID uint64
}

// RoomInbox keeps, per account, the rooms it follows and how far it has
// read each (bucket room_inbox: lp(owner) ‖ room → 0x01 ‖ varint(joined µs)
// ‖ uvarint(read id)). It is written when an account enters a room and
// when it sends a displayed marker to one, in batches (Apply), never per
// room message: the unread count is computed when the list is read, from
// the room's archive (Archive.Summary). Get it from DB.RoomInbox.
type RoomInbox struct {
	db *DB
}

// RoomInboxChange is one change to an account's list: follow Room, joined
// at Joined, unless it is followed already (then Joined is ignored), and
// raise its read marker to ReadID (0: leave it).
type RoomInboxChange struct {
	Owner, Room string
	Joined      time.Time
	ReadID      uint64
}

// Apply makes changes in one transaction. A change that would make an
// account follow more than MaxRoomInbox rooms is skipped; Apply returns how
// many were. Invalid changes are left out and the others written: the
// error is then an ErrInvalid that says how many were refused (a batch
// carries everyone's joins and markers, which one bad change must not
// hold back). Changes that change nothing (joins of rooms already followed, markers
// behind the stored one) cost a read: when all are such, Apply does not
// write at all. A stored entry that does not decode is logged and replaced
// by the change.
func (ri *RoomInbox) Apply(ctx context.Context, changes []RoomInboxChange) (skipped int, err error) {
	var refused error
	refusedN := 0
	changes = slices.DeleteFunc(slices.Clone(changes), func(c RoomInboxChange) bool {
		err := cmp.Or(validateJID("owner", c.Owner), validateJID("room", c.Room))
		if err != nil {
			refusedN++
			refused = cmp.Or(refused, err)
		}
		return err != nil
	})
	if refused != nil {
		refused = fmt.Errorf("store: room inbox: changes refused: %d, the first: %w", refusedN, refused)
	}
	// A read pass keeps what changes something.
	err = ri.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketRoomInbox)
		if err != nil {
			return err
		}
		changes = slices.DeleteFunc(changes, func(c RoomInboxChange) bool {
			v := b.Get(append(lp(c.Owner), c.Room...))
			if v == nil {
				return false
			}
			e, err := decodeRoomInboxEntry(v)
			return err == nil && e.ReadID >= c.ReadID
		})
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: room inbox: %w", err)
	}
	if len(changes) == 0 {
		return 0, refused
	}
	// In key order (lp(owner), then room; exact for owners shorter than
	// 128 bytes, whose length prefix is one byte): the writes walk the
	// tree once.
	slices.SortFunc(changes, func(a, b RoomInboxChange) int {
		return cmp.Or(cmp.Compare(len(a.Owner), len(b.Owner)), strings.Compare(a.Owner, b.Owner), strings.Compare(a.Room, b.Room))
	})
	err = ri.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketRoomInbox)
		if err != nil {
			return err
		}
		skipped = 0
		for _, c := range changes {
			key := append(lp(c.Owner), c.Room...)
			e := RoomInboxEntry{Joined: c.Joined}
			if v := b.Get(key); v != nil {
				old, err := decodeRoomInboxEntry(v)
				switch {
				case err != nil:
					// One bad value must not fail every later batch,
					// which carries everyone's joins and markers: it
					// is replaced.
					ri.db.log.Error("store: replacing corrupt room inbox entry", "jid", c.Owner, "room", c.Room, "err", err)
				case old.ReadID >= c.ReadID:
					continue
				default:
					e = old
				}
			} else if countPrefix(b, lp(c.Owner), MaxRoomInbox) >= MaxRoomInbox {
				skipped++
				continue
			}
			e.ReadID = max(e.ReadID, c.ReadID)
			if err := b.Put(key, encodeRoomInboxEntry(nil, e)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: room inbox: %w", err)
	}
	return skipped, refused
}

// List returns owner's rooms in room order; an entry that does not decode
// is logged and left out.
func (ri *RoomInbox) List(ctx context.Context, owner string) ([]RoomInboxEntry, error) {
	if err := validateJID("owner", owner); err != nil {
		return nil, fmt.Errorf("store: list room inbox: %w", err)
	}
	var out []RoomInboxEntry
	err := ri.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketRoomInbox)
		if err != nil {
			return err
		}
		out = nil
		prefix := lp(owner)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			e, err := decodeRoomInboxEntry(v)
			if err != nil {
				// Left out rather than failing the whole list; the
				// next join or marker for the room replaces it.
				ri.db.log.Error("store: skipping corrupt room inbox entry", "jid", owner, "room", string(k[len(prefix):]), "err", err)
				continue
			}
			e.Room = string(k[len(prefix):])
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list room inbox of %s: %w", owner, err)
	}
	return out, nil
}

// Remove takes rooms off owner's list and returns how many were there.
func (ri *RoomInbox) Remove(ctx context.Context, owner string, rooms ...string) (int, error) {
	if err := validateJID("owner", owner); err != nil {
		return 0, fmt.Errorf("store: remove from room inbox: %w", err)
	}
	n := 0
	err := ri.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketRoomInbox)
		if err != nil {
			return err
		}
		n = 0
		for _, room := range rooms {
			key := append(lp(owner), room...)
			if b.Get(key) == nil {
				continue
			}
			if err := b.Delete(key); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: remove from room inbox of %s: %w", owner, err)
	}
	return n, nil
}

// deleteRoomInboxOwner removes owner's list (the Users.Delete cascade).
func deleteRoomInboxOwner(tx *bbolt.Tx, owner string) error {
	b, err := bucket(tx, bucketRoomInbox)
	if err != nil {
		return err
	}
	return deletePrefix(b, lp(owner))
}

// encodeRoomInboxEntry appends the room_inbox value of e (Room is in the
// key):
//
//	byte     codec version (1)
//	varint   Joined, Unix microseconds
//	uvarint  ReadID
func encodeRoomInboxEntry(dst []byte, e RoomInboxEntry) []byte {
	dst = append(dst, roomInboxCodecV1)
	dst = appendVarint(dst, e.Joined.UnixMicro())
	return appendUvarint(dst, e.ReadID)
}

// decodeRoomInboxEntry decodes a room_inbox value; Room is left empty.
func decodeRoomInboxEntry(v []byte) (RoomInboxEntry, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != roomInboxCodecV1 {
		return RoomInboxEntry{}, fmt.Errorf("%w: room inbox codec version %d unknown", ErrCorrupt, ver)
	}
	joined := d.varint()
	read := d.uvarint()
	if err := d.done(); err != nil {
		return RoomInboxEntry{}, fmt.Errorf("room inbox entry: %w", err)
	}
	return RoomInboxEntry{Joined: time.UnixMicro(joined).UTC(), ReadID: read}, nil
}
