package store

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// Subscription is the subscription state of a roster item (RFC 6121
// §2.1.2.5), seen from the roster's owner.
type Subscription uint8

// Subscription states.
const (
	// SubNone: no presence subscription in either direction.
	SubNone Subscription = iota
	// SubTo: the owner receives the contact's presence.
	SubTo
	// SubFrom: the contact receives the owner's presence.
	SubFrom
	// SubBoth: both directions.
	SubBoth
)

// HasTo reports whether the owner receives the contact's presence (to or
// both).
func (s Subscription) HasTo() bool { return s == SubTo || s == SubBoth }

// HasFrom reports whether the contact receives the owner's presence (from
// or both).
func (s Subscription) HasFrom() bool { return s == SubFrom || s == SubBoth }

// String returns the RFC 6121 attribute value ("none", "to", "from",
// "both").
func (s Subscription) String() string {
	switch s {
	case SubNone:
		return "none"
	case SubTo:
		return "to"
	case SubFrom:
		return "from"
	case SubBoth:
		return "both"
	}
	return fmt.Sprintf("Subscription(%d)", uint8(s))
}

// Limits on what Rosters.Update stores; larger items fail with ErrInvalid.
// The roster module checks them first to answer with the right stanza
// error.
const (
	// MaxRosterNameLen is the longest item name, in bytes.
	MaxRosterNameLen = 1023
	// MaxRosterGroupLen is the longest group name, in bytes.
	MaxRosterGroupLen = 1023
	// MaxRosterGroups is the most groups one item may be in.
	MaxRosterGroups = 64
	// MaxRosterTombstones is how many deletions per owner are remembered
	// for incremental roster pushes; older ones are pruned.
	MaxRosterTombstones = 1000
)

// rosterCodecV1 is the first byte of every value in the roster bucket;
// rosterStateCodecV1 that of every roster state value in roster_index.
const (
	rosterCodecV1      = 1
	rosterStateCodecV1 = 1
)

// Key spaces of the roster_index bucket. Every key starts with
// lp(owner) ‖ space:
//
//	0x00                          roster state (version, floor, counts)
//	0x01 ‖ be64(version) ‖ contact   live item, by the version of its last change
//	0x02 ‖ be64(version) ‖ contact   tombstone, by the version of the deletion
//	0x03 ‖ lp(contact) ‖ be64(version) tombstone, by contact
//
// Index entries (0x01–0x03) carry everything in the key and have empty
// values.
const (
	rosterSpaceState byte = 0
	rosterSpaceLive  byte = 1
	rosterSpaceTomb  byte = 2
	rosterSpaceGone  byte = 3
)

// RosterItem is one contact in a user's roster (RFC 6121 §2.1.2).
type RosterItem struct {
	// Contact is the contact's bare JID, as given by the caller.
	Contact string
	// Name is the owner's handle for the contact; may be empty.
	Name string
	// Groups lists the item's groups in the order given: non-empty,
	// distinct names. Nil when there are none.
	Groups []string
	// Subscription is the subscription state.
	Subscription Subscription
	// Ask reports an outbound subscription request pending
	// (ask='subscribe').
	Ask bool
	// Approved reports a pre-approved inbound subscription (RFC 6121
	// §3.4).
	Approved bool
	// Added is the creation time, kept across updates; stored with
	// microsecond precision and read back in UTC.
	Added time.Time
	// Version is the roster version at which the item last changed. The
	// store sets it.
	Version uint64
}

// validate checks item against the limits above.
func (item *RosterItem) validate() error {
	if err := validateJID("contact", item.Contact); err != nil {
		return err
	}
	if len(item.Name) > MaxRosterNameLen {
		return fmt.Errorf("name of %d bytes exceeds %d: %w", len(item.Name), MaxRosterNameLen, ErrInvalid)
	}
	if len(item.Groups) > MaxRosterGroups {
		return fmt.Errorf("%d groups exceed %d: %w", len(item.Groups), MaxRosterGroups, ErrInvalid)
	}
	for i, g := range item.Groups {
		if g == "" || len(g) > MaxRosterGroupLen {
			return fmt.Errorf("group name must be 1 to %d bytes, got %d: %w", MaxRosterGroupLen, len(g), ErrInvalid)
		}
		if slices.Contains(item.Groups[:i], g) {
			return fmt.Errorf("duplicate group %q: %w", g, ErrInvalid)
		}
	}
	if item.Subscription > SubBoth {
		return fmt.Errorf("subscription %s: %w", item.Subscription, ErrInvalid)
	}
	return nil
}

// UpdateOp tells Rosters.Update what to do with the item its callback saw.
type UpdateOp uint8

// Update operations.
const (
	// UpdateKeep leaves the roster unchanged.
	UpdateKeep UpdateOp = iota
	// UpdatePut stores the item as the callback left it.
	UpdatePut
	// UpdateDelete removes the item, leaving a tombstone.
	UpdateDelete
)

// Rosters is the roster sub-store (buckets "roster" and "roster_index"):
// per owner, the live items, a version counter bumped by every change, and
// tombstones of recent deletions for incremental roster pushes (RFC 6121
// §2.6, XEP-0237). Get it from DB.Rosters.
//
// Owners and contacts are bare JID strings, already normalised by the
// caller; the store compares bytes.
type Rosters struct {
	db *DB
}

// Items returns owner's live items sorted by contact (byte order; nil if
// none) and the current roster version. An owner without a roster has
// version 0.
func (r *Rosters) Items(ctx context.Context, owner string) ([]RosterItem, uint64, error) {
	if err := validateJID("owner", owner); err != nil {
		return nil, 0, fmt.Errorf("store: roster items: %w", err)
	}
	var (
		items []RosterItem
		ver   uint64
	)
	err := r.db.view(ctx, func(tx *bbolt.Tx) error {
		rt, err := openRosterTx(tx, owner)
		if err != nil {
			return err
		}
		st, err := rt.state()
		if err != nil {
			return err
		}
		if st.items > 0 {
			// Bounded, so that a corrupt count cannot force a huge allocation.
			items = make([]RosterItem, 0, min(st.items, 4096))
		}
		c := rt.items.Cursor()
		for k, v := c.Seek(rt.prefix); k != nil && bytes.HasPrefix(k, rt.prefix); k, v = c.Next() {
			item, err := decodeRosterEntry(k[len(rt.prefix):], v)
			if err != nil {
				return err
			}
			items = append(items, item)
		}
		ver = st.version
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: roster items of %s: %w", owner, err)
	}
	return items, ver, nil
}

// Item returns one item of owner's roster, or ErrNotFound.
func (r *Rosters) Item(ctx context.Context, owner, contact string) (RosterItem, error) {
	if err := validateRosterKey(owner, contact); err != nil {
		return RosterItem{}, fmt.Errorf("store: roster item: %w", err)
	}
	var item RosterItem
	err := r.db.view(ctx, func(tx *bbolt.Tx) error {
		rt, err := openRosterTx(tx, owner)
		if err != nil {
			return err
		}
		v := rt.items.Get(rt.itemKey(contact))
		if v == nil {
			return ErrNotFound
		}
		item, err = decodeRosterEntry([]byte(contact), v)
		return err
	})
	if err != nil {
		return RosterItem{}, fmt.Errorf("store: roster item %s of %s: %w", contact, owner, err)
	}
	return item, nil
}

// Count returns the number of live items in owner's roster. It reads a
// stored counter, not the items.
func (r *Rosters) Count(ctx context.Context, owner string) (int, error) {
	if err := validateJID("owner", owner); err != nil {
		return 0, fmt.Errorf("store: count roster: %w", err)
	}
	var n uint64
	err := r.db.view(ctx, func(tx *bbolt.Tx) error {
		rt, err := openRosterTx(tx, owner)
		if err != nil {
			return err
		}
		st, err := rt.state()
		n = st.items
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: count roster of %s: %w", owner, err)
	}
	return int(min(n, math.MaxInt)), nil
}

// Update reads owner's item for contact, calls fn with it, and stores what
// fn decides, all in one write transaction.
//
// fn receives the stored item (exists=true) or, if there is none, a zero
// item with Contact set (exists=false); it may modify *item and returns:
//
//   - UpdateKeep: nothing changes.
//   - UpdatePut: *item is validated (ErrInvalid: Contact changed, limits
//     exceeded, empty or duplicate groups, unknown Subscription) and
//     stored. The store keeps Added of an existing item, sets a zero Added
//     of a new one to the current time, and sets Version. Putting an item
//     equal to the stored one is not a change.
//   - UpdateDelete: the item is removed and a tombstone left at the new
//     version (nothing happens if it does not exist). Only the newest
//     MaxRosterTombstones tombstones are kept.
//
// Every change bumps owner's roster version by one and stamps it on the
// item. Update returns the resulting item (zero if there is none after the
// call), the roster version after the call, and whether anything changed.
//
// fn is called inside the transaction: it must be quick and must not use
// the DB (bbolt allows one writer; a nested write deadlocks). The
// transaction may be shared with other writers (DB.updateBatched), so fn
// may be called more than once, each time with the item as stored then;
// only the last call's result and side effects on its own variables
// count, so fn must set every variable it reports through afresh on each
// call. If fn returns an error, nothing is stored and Update returns it
// wrapped (errors.Is matches it).
func (r *Rosters) Update(ctx context.Context, owner, contact string, fn func(item *RosterItem, exists bool) (UpdateOp, error)) (RosterItem, uint64, bool, error) {
	if err := validateRosterKey(owner, contact); err != nil {
		return RosterItem{}, 0, false, fmt.Errorf("store: update roster item: %w", err)
	}
	if fn == nil {
		return RosterItem{}, 0, false, fmt.Errorf("store: update roster item %s of %s: nil callback: %w", contact, owner, ErrInvalid)
	}
	var (
		res     RosterItem
		ver     uint64
		changed bool
	)
	// fn runs before anything is written: its error is a refusal, which
	// does not roll back the writes sharing the transaction, as long as
	// rt.update returns it unchanged (groupCommit.commit tells a refusal
	// by its type, not wrapped).
	checked := func(it *RosterItem, exists bool) (UpdateOp, error) {
		op, err := fn(it, exists)
		if err != nil {
			return op, refuse(err)
		}
		return op, nil
	}
	err := r.db.updateBatched(ctx, func(tx *bbolt.Tx) error {
		rt, err := openRosterTx(tx, owner)
		if err != nil {
			return err
		}
		res, ver, changed, err = rt.update(contact, checked)
		return err
	})
	if err != nil {
		return RosterItem{}, 0, false, fmt.Errorf("store: update roster item %s of %s: %w", contact, owner, err)
	}
	return res, ver, changed, nil
}

// Since returns what changed in owner's roster after version v, for
// incremental roster pushes (RFC 6121 §2.6.3, XEP-0237 §4.2): the live
// items whose last change is newer than v and the contacts removed after
// v (as items with only Contact and Version set), each ordered by version. A contact appears in at most one of the two
// lists. current is the roster version now.
//
// ok is false when v cannot be answered incrementally: v is newer than the
// current version, or older than the newest pruned tombstone. The caller
// then sends the whole roster. v == current gives ok with no changes.
func (r *Rosters) Since(ctx context.Context, owner string, v uint64) (changed, removed []RosterItem, current uint64, ok bool, err error) {
	if err := validateJID("owner", owner); err != nil {
		return nil, nil, 0, false, fmt.Errorf("store: roster changes: %w", err)
	}
	err = r.db.view(ctx, func(tx *bbolt.Tx) error {
		changed, removed, ok = nil, nil, false
		rt, err := openRosterTx(tx, owner)
		if err != nil {
			return err
		}
		st, err := rt.state()
		if err != nil {
			return err
		}
		current = st.version
		if v > st.version || v < st.floor {
			return nil
		}
		ok = true
		if v == st.version {
			return nil
		}
		err = rt.scanVersions(rosterSpaceLive, v+1, func(ver uint64, contact []byte) error {
			val := rt.items.Get(rt.itemKey(string(contact)))
			if val == nil {
				return fmt.Errorf("%w: roster index names missing item %q at version %d", ErrCorrupt, contact, ver)
			}
			item, err := decodeRosterEntry(contact, val)
			if err != nil {
				return err
			}
			if item.Version != ver {
				return fmt.Errorf("%w: roster index has %q at version %d, item says %d", ErrCorrupt, contact, ver, item.Version)
			}
			changed = append(changed, item)
			return nil
		})
		if err != nil {
			return err
		}
		return rt.scanVersions(rosterSpaceTomb, v+1, func(ver uint64, contact []byte) error {
			removed = append(removed, RosterItem{Contact: string(contact), Version: ver})
			return nil
		})
	})
	if err != nil {
		return nil, nil, 0, false, fmt.Errorf("store: roster changes of %s since %d: %w", owner, v, err)
	}
	return changed, removed, current, ok, nil
}

func validateRosterKey(owner, contact string) error {
	if err := validateJID("owner", owner); err != nil {
		return err
	}
	return validateJID("contact", contact)
}

// deleteRosterOwner removes owner's items, index entries and state.
func deleteRosterOwner(tx *bbolt.Tx, owner string) error {
	for _, name := range []string{bucketRoster, bucketRosterIndex} {
		b, err := bucket(tx, name)
		if err != nil {
			return err
		}
		if err := deletePrefix(b, lp(owner)); err != nil {
			return err
		}
	}
	return nil
}

// rosterTx is one owner's view of the roster buckets inside a transaction.
type rosterTx struct {
	items, index *bbolt.Bucket
	owner        string
	prefix       []byte // lp(owner)
}

func openRosterTx(tx *bbolt.Tx, owner string) (rosterTx, error) {
	items, err := bucket(tx, bucketRoster)
	if err != nil {
		return rosterTx{}, err
	}
	index, err := bucket(tx, bucketRosterIndex)
	if err != nil {
		return rosterTx{}, err
	}
	return rosterTx{items: items, index: index, owner: owner, prefix: lp(owner)}, nil
}

// itemKey returns lp(owner) ‖ contact.
func (rt rosterTx) itemKey(contact string) []byte {
	return append(bytes.Clone(rt.prefix), contact...)
}

// spaceKey returns lp(owner) ‖ space.
func (rt rosterTx) spaceKey(space byte) []byte {
	return append(bytes.Clone(rt.prefix), space)
}

// versionKey returns lp(owner) ‖ space ‖ be64(ver) ‖ contact.
func (rt rosterTx) versionKey(space byte, ver uint64, contact string) []byte {
	k := appendBE64(rt.spaceKey(space), ver)
	return append(k, contact...)
}

// goneKey returns lp(owner) ‖ 0x03 ‖ lp(contact) ‖ be64(ver); without ver
// (withVer false) the prefix that finds contact's tombstone.
func (rt rosterTx) goneKey(contact string, ver uint64, withVer bool) []byte {
	k := appendString(rt.spaceKey(rosterSpaceGone), contact)
	if withVer {
		k = appendBE64(k, ver)
	}
	return k
}

// state returns owner's roster state; zero if owner has none.
func (rt rosterTx) state() (rosterState, error) {
	v := rt.index.Get(rt.spaceKey(rosterSpaceState))
	if v == nil {
		return rosterState{}, nil
	}
	return decodeRosterState(v)
}

func (rt rosterTx) putState(st rosterState) error {
	return rt.index.Put(rt.spaceKey(rosterSpaceState), encodeRosterState(nil, st))
}

// scanVersions calls fn for each entry of space (live or tombstone) with
// version >= from, in version order. contact aliases the key: fn must copy
// it to keep it.
func (rt rosterTx) scanVersions(space byte, from uint64, fn func(ver uint64, contact []byte) error) error {
	prefix := rt.spaceKey(space)
	c := rt.index.Cursor()
	for k, _ := c.Seek(idKey(prefix, from)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ver, contact, err := parseRosterVersionKey(k[len(prefix):])
		if err != nil {
			return err
		}
		if err := fn(ver, contact); err != nil {
			return err
		}
	}
	return nil
}

// update is Rosters.Update inside the transaction.
func (rt rosterTx) update(contact string, fn func(*RosterItem, bool) (UpdateOp, error)) (RosterItem, uint64, bool, error) {
	st, err := rt.state()
	if err != nil {
		return RosterItem{}, 0, false, err
	}
	key := rt.itemKey(contact)
	old := rt.items.Get(key)
	exists := old != nil
	cur := RosterItem{Contact: contact}
	if exists {
		if cur, err = decodeRosterEntry([]byte(contact), old); err != nil {
			return RosterItem{}, 0, false, err
		}
	}
	item := cur
	item.Groups = slices.Clone(cur.Groups)
	op, err := fn(&item, exists)
	if err != nil {
		return RosterItem{}, 0, false, err
	}
	unchanged := func() (RosterItem, uint64, bool, error) {
		if !exists {
			return RosterItem{}, st.version, false, nil
		}
		return cur, st.version, false, nil
	}

	switch op {
	case UpdateKeep:
		return unchanged()

	case UpdatePut:
		if item.Contact != contact {
			return RosterItem{}, 0, false, fmt.Errorf("callback changed contact to %q: %w", item.Contact, ErrInvalid)
		}
		if err := item.validate(); err != nil {
			return RosterItem{}, 0, false, err
		}
		switch {
		case exists:
			item.Added = cur.Added
		case item.Added.IsZero():
			item.Added = time.Now()
		}
		item.Version = cur.Version
		if exists && bytes.Equal(encodeRosterItem(nil, item), old) {
			return unchanged()
		}
		if err := st.bump(); err != nil {
			return RosterItem{}, 0, false, err
		}
		item.Version = st.version
		if exists {
			if err := rt.index.Delete(rt.versionKey(rosterSpaceLive, cur.Version, contact)); err != nil {
				return RosterItem{}, 0, false, err
			}
		} else {
			if err := rt.dropTombstone(&st, contact); err != nil {
				return RosterItem{}, 0, false, err
			}
			st.items++
		}
		val := encodeRosterItem(nil, item)
		if err := rt.items.Put(key, val); err != nil {
			return RosterItem{}, 0, false, err
		}
		if err := rt.index.Put(rt.versionKey(rosterSpaceLive, item.Version, contact), nil); err != nil {
			return RosterItem{}, 0, false, err
		}
		if err := rt.putState(st); err != nil {
			return RosterItem{}, 0, false, err
		}
		// Return what Item would read back (Added in UTC, µs).
		stored, err := decodeRosterEntry([]byte(contact), val)
		return stored, st.version, true, err

	case UpdateDelete:
		if !exists {
			return unchanged()
		}
		if err := st.bump(); err != nil {
			return RosterItem{}, 0, false, err
		}
		if st.items == 0 {
			return RosterItem{}, 0, false, fmt.Errorf("%w: roster item count is zero with item %q present", ErrCorrupt, contact)
		}
		st.items--
		st.tombstones++
		if err := rt.items.Delete(key); err != nil {
			return RosterItem{}, 0, false, err
		}
		if err := rt.index.Delete(rt.versionKey(rosterSpaceLive, cur.Version, contact)); err != nil {
			return RosterItem{}, 0, false, err
		}
		if err := rt.index.Put(rt.versionKey(rosterSpaceTomb, st.version, contact), nil); err != nil {
			return RosterItem{}, 0, false, err
		}
		if err := rt.index.Put(rt.goneKey(contact, st.version, true), nil); err != nil {
			return RosterItem{}, 0, false, err
		}
		if err := rt.pruneTombstones(&st); err != nil {
			return RosterItem{}, 0, false, err
		}
		if err := rt.putState(st); err != nil {
			return RosterItem{}, 0, false, err
		}
		return RosterItem{}, st.version, true, nil
	}
	return RosterItem{}, 0, false, fmt.Errorf("callback returned unknown operation %d: %w", op, ErrInvalid)
}

// dropTombstone removes contact's tombstone, if any: the contact is back.
func (rt rosterTx) dropTombstone(st *rosterState, contact string) error {
	prefix := rt.goneKey(contact, 0, false)
	k, _ := rt.index.Cursor().Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil
	}
	ver, rest, err := readBE64(k[len(prefix):])
	if err != nil || len(rest) != 0 {
		return fmt.Errorf("%w: roster tombstone key of %q", ErrCorrupt, contact)
	}
	k = bytes.Clone(k)
	if err := rt.index.Delete(k); err != nil {
		return err
	}
	if err := rt.index.Delete(rt.versionKey(rosterSpaceTomb, ver, contact)); err != nil {
		return err
	}
	if st.tombstones == 0 {
		return fmt.Errorf("%w: roster tombstone count is zero with tombstone %q present", ErrCorrupt, contact)
	}
	st.tombstones--
	return nil
}

// pruneTombstones deletes the oldest tombstones beyond MaxRosterTombstones
// and raises the floor to the newest version pruned.
func (rt rosterTx) pruneTombstones(st *rosterState) error {
	prefix := rt.spaceKey(rosterSpaceTomb)
	for st.tombstones > MaxRosterTombstones {
		k, _ := rt.index.Cursor().Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return fmt.Errorf("%w: roster tombstone count %d but no tombstones", ErrCorrupt, st.tombstones)
		}
		ver, contact, err := parseRosterVersionKey(k[len(prefix):])
		if err != nil {
			return err
		}
		gone := rt.goneKey(string(contact), ver, true)
		if err := rt.index.Delete(bytes.Clone(k)); err != nil {
			return err
		}
		if err := rt.index.Delete(gone); err != nil {
			return err
		}
		st.floor = ver
		st.tombstones--
	}
	return nil
}

// parseRosterVersionKey splits be64(version) ‖ contact, the part of a live
// or tombstone index key after lp(owner) ‖ space. contact aliases k and is
// never empty.
func parseRosterVersionKey(k []byte) (uint64, []byte, error) {
	ver, contact, err := readBE64(k)
	if err != nil {
		return 0, nil, fmt.Errorf("roster index key: %w", err)
	}
	if len(contact) == 0 {
		return 0, nil, fmt.Errorf("%w: roster index key without contact", ErrCorrupt)
	}
	return ver, contact, nil
}

// decodeRosterEntry decodes a roster value and sets Contact from the key
// suffix.
func decodeRosterEntry(contact, v []byte) (RosterItem, error) {
	if len(contact) == 0 {
		return RosterItem{}, fmt.Errorf("%w: roster key without contact", ErrCorrupt)
	}
	item, err := decodeRosterItem(v)
	if err != nil {
		return RosterItem{}, fmt.Errorf("roster item %q: %w", contact, err)
	}
	item.Contact = string(contact)
	return item, nil
}

// Roster item flag bits.
const (
	rosterFlagAsk      = 1 << 0
	rosterFlagApproved = 1 << 1
	rosterFlagsKnown   = rosterFlagAsk | rosterFlagApproved
)

// encodeRosterItem appends the value encoding of item (everything but
// Contact, which is in the key):
//
//	byte     codec version (1)
//	bytes    Name
//	uvarint  number of groups, then bytes(group) for each, in order
//	byte     Subscription (0–3)
//	byte     flags: 0x01 Ask, 0x02 Approved
//	varint   Added, Unix microseconds
//	uvarint  Version
func encodeRosterItem(dst []byte, item RosterItem) []byte {
	dst = append(dst, rosterCodecV1)
	dst = appendString(dst, item.Name)
	dst = appendUvarint(dst, uint64(len(item.Groups)))
	for _, g := range item.Groups {
		dst = appendString(dst, g)
	}
	var flags byte
	if item.Ask {
		flags |= rosterFlagAsk
	}
	if item.Approved {
		flags |= rosterFlagApproved
	}
	dst = append(dst, byte(item.Subscription), flags)
	dst = appendVarint(dst, item.Added.UnixMicro())
	return appendUvarint(dst, item.Version)
}

// decodeRosterItem decodes a roster value. Contact is left empty; Groups is
// nil when there are none. The result does not alias v.
func decodeRosterItem(v []byte) (RosterItem, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != rosterCodecV1 {
		return RosterItem{}, fmt.Errorf("%w: roster codec version %d unknown", ErrCorrupt, ver)
	}
	var item RosterItem
	item.Name = d.string()
	n := d.uvarint()
	// Each group takes at least its length byte: bound the allocation by
	// the input before trusting n.
	if d.err == nil && n > uint64(len(d.buf)) {
		d.fail(fmt.Errorf("%w: %d groups in %d bytes", ErrCorrupt, n, len(d.buf)))
	}
	if d.err == nil && n > 0 {
		item.Groups = make([]string, 0, n)
		for range n {
			item.Groups = append(item.Groups, d.string())
		}
	}
	sub := d.byte()
	if d.err == nil && Subscription(sub) > SubBoth {
		d.fail(fmt.Errorf("%w: roster subscription %d", ErrCorrupt, sub))
	}
	flags := d.byte()
	if d.err == nil && flags&^rosterFlagsKnown != 0 {
		d.fail(fmt.Errorf("%w: roster flags %#x", ErrCorrupt, flags))
	}
	micros := d.varint()
	item.Version = d.uvarint()
	if err := d.done(); err != nil {
		return RosterItem{}, fmt.Errorf("roster item: %w", err)
	}
	item.Subscription = Subscription(sub)
	item.Ask = flags&rosterFlagAsk != 0
	item.Approved = flags&rosterFlagApproved != 0
	item.Added = time.UnixMicro(micros).UTC()
	return item, nil
}

// rosterState is the per-owner versioning record in roster_index.
type rosterState struct {
	version    uint64 // current roster version: the number of changes so far
	floor      uint64 // newest pruned tombstone version; Since(v < floor) is unknown
	items      uint64 // live items
	tombstones uint64 // retained tombstones
}

// bump advances the version for one change.
func (st *rosterState) bump() error {
	if st.version == ^uint64(0) {
		return fmt.Errorf("%w: roster version exhausted", ErrCorrupt)
	}
	st.version++
	return nil
}

// encodeRosterState appends:
//
//	byte     codec version (1)
//	uvarint  version
//	uvarint  floor
//	uvarint  live item count
//	uvarint  tombstone count
func encodeRosterState(dst []byte, st rosterState) []byte {
	dst = append(dst, rosterStateCodecV1)
	dst = appendUvarint(dst, st.version)
	dst = appendUvarint(dst, st.floor)
	dst = appendUvarint(dst, st.items)
	return appendUvarint(dst, st.tombstones)
}

// decodeRosterState decodes a roster state and checks its invariants:
// every live item and tombstone has its own version <= version, and the
// floor is a past version.
func decodeRosterState(v []byte) (rosterState, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != rosterStateCodecV1 {
		return rosterState{}, fmt.Errorf("%w: roster state codec version %d unknown", ErrCorrupt, ver)
	}
	st := rosterState{version: d.uvarint(), floor: d.uvarint(), items: d.uvarint(), tombstones: d.uvarint()}
	if err := d.done(); err != nil {
		return rosterState{}, fmt.Errorf("roster state: %w", err)
	}
	if st.floor > st.version || st.items > st.version || st.tombstones > st.version-st.items {
		return rosterState{}, fmt.Errorf("%w: roster state %+v inconsistent", ErrCorrupt, st)
	}
	return st, nil
}
