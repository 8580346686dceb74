package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"

	"go.etcd.io/bbolt"
)

// Archive counters (bucket mam_count) answer XEP-0059 counts and indexes
// without reading the records they count. Every archive has two kinds of
// scope: the whole archive, and each of its conversations. A scope has a
// total and one counter per slot of ids, a slot being the ids that share
// their upper 32 bits (2³² µs, about 71.6 minutes of archiving time):
//
//	lp(archive) ‖ 0x00                          total of the archive
//	lp(archive) ‖ 0x00 ‖ be32(slot)             its records in that slot
//	lp(archive) ‖ 0x01 ‖ lp(with)               total of one conversation
//	lp(archive) ‖ 0x01 ‖ lp(with) ‖ be32(slot)  its records in that slot
//
// each holding archiveCountCodecV1 ‖ uvarint(n), n > 0 (a counter that
// drops to zero is deleted, so only slots with records have a key). The
// writer updates them in the transaction that stores the records, and
// every deletion (DeleteWith, DeleteArchive, expiry) in the transaction
// that deletes them.
//
// The number of records of a scope below an id x is found from whichever
// end of the scope has fewer slots: the sum of the slot counters on that
// side plus a key count inside x's own slot (one slot's records at most),
// subtracted from the total when counted from the newer end. A range
// count is two such lookups (or one key count when the range lies in one
// slot), so a count costs O(slots on the shorter side + records in two
// slots), never a pass over the records of the range.
const archiveCountCodecV1 = 1

// archiveSlotShift: a slot is id >> archiveSlotShift.
const archiveSlotShift = 32

// Scope tags after lp(archive) in mam_count keys.
const (
	countScopeAll  = 0x00
	countScopeWith = 0x01
)

// countScope returns the key of a scope's total: lp(archive) ‖ 0x00 for
// the whole archive (with == ""), else lp(archive) ‖ 0x01 ‖ lp(with).
func countScope(archive, with string) []byte {
	k := lp(archive)
	if with == "" {
		return append(k, countScopeAll)
	}
	return appendString(append(k, countScopeWith), with)
}

// slotKey appends be32(slot) to a scope's key.
func slotKey(scope []byte, slot uint32) []byte {
	return binary.BigEndian.AppendUint32(bytes.Clone(scope), slot)
}

// countDeltas collects counter changes of one transaction, by counter key,
// so that a batch writes each counter once, in key order. The zero value
// is ready to use.
type countDeltas struct {
	index  map[string]int32 // key → its place in deltas
	deltas []countDelta
	buf    []byte // scratch for keys
}

// countDelta is the change to one counter.
type countDelta struct {
	key string
	n   int64
}

// add records delta records (±1) with id in archive's conversation with.
func (d *countDeltas) add(archive, with string, id uint64, delta int64) {
	slot := uint32(id >> archiveSlotShift)
	k := appendString(d.buf[:0], archive)
	n := len(k)
	k = append(k, countScopeAll)
	d.bump(k, delta)
	k = binary.BigEndian.AppendUint32(k, slot)
	d.bump(k, delta)
	k = appendString(append(k[:n], countScopeWith), with)
	d.bump(k, delta)
	k = binary.BigEndian.AppendUint32(k, slot)
	d.bump(k, delta)
	d.buf = k
}

// bump adds delta to the counter key (which it copies if new).
func (d *countDeltas) bump(key []byte, delta int64) {
	if i, ok := d.index[string(key)]; ok {
		d.deltas[i].n += delta
		return
	}
	if d.index == nil {
		d.index = map[string]int32{}
	}
	k := string(key)
	d.index[k] = int32(len(d.deltas))
	d.deltas = append(d.deltas, countDelta{key: k, n: delta})
}

// apply writes the collected changes to b, in key order (each put still
// seeks from the root, but neighbouring keys share a leaf that the first
// put has already made a node of), and empties d. A counter that reaches zero is deleted;
// one that would go below zero (the file was damaged) is deleted too, and
// a corrupt value is replaced, both logged when log is not nil.
func (d *countDeltas) apply(b *bbolt.Bucket, log *slog.Logger) error {
	defer d.reset()
	slices.SortFunc(d.deltas, func(a, b countDelta) int { return strings.Compare(a.key, b.key) })
	// bbolt keeps the values put (it copies keys only) until the
	// transaction ends: they are appended to one buffer, sized for all
	// of them, and never written over.
	vals := make([]byte, 0, len(d.deltas)*(1+binary.MaxVarintLen64))
	for _, c := range d.deltas {
		if c.n == 0 {
			continue
		}
		key := append(d.buf[:0], c.key...)
		d.buf = key
		var cur uint64
		if v := b.Get(key); v != nil {
			n, err := decodeArchiveCount(v)
			if err != nil && log != nil {
				log.Error("store: replacing corrupt archive counter", "key", fmt.Sprintf("%x", key), "err", err)
			}
			cur = n
		}
		n := int64(min(cur, math.MaxInt64)) + c.n
		if n <= 0 {
			if n < 0 && log != nil {
				log.Error("store: archive counter below zero, removed", "key", fmt.Sprintf("%x", key), "value", n)
			}
			if err := b.Delete(key); err != nil {
				return err
			}
			continue
		}
		start := len(vals)
		vals = encodeArchiveCount(vals, uint64(n))
		if err := b.Put(key, vals[start:len(vals):len(vals)]); err != nil {
			return err
		}
	}
	return nil
}

// reset empties d (an apply that failed leaves nothing behind).
func (d *countDeltas) reset() {
	clear(d.index)
	d.deltas = d.deltas[:0]
}

// encodeArchiveCount appends archiveCountCodecV1 ‖ uvarint(n).
func encodeArchiveCount(dst []byte, n uint64) []byte {
	return appendUvarint(append(dst, archiveCountCodecV1), n)
}

// decodeArchiveCount decodes a mam_count value.
func decodeArchiveCount(v []byte) (uint64, error) {
	return decodeVersionedUvarint(v, archiveCountCodecV1, "archive counter")
}

// countArchive fills an empty mam_count bucket from the records (the
// migration that introduced the counters).
func countArchive(tx *bbolt.Tx) error {
	at, err := openArchiveTx(tx)
	if err != nil {
		return err
	}
	c := at.mam.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		archive, rest, err := readBytes(k)
		if err != nil {
			return err
		}
		id, err := parseIDSuffix(rest, 0)
		if err != nil {
			return err
		}
		rec, err := decodeArchiveRecord(v)
		if err != nil {
			return fmt.Errorf("record %d of %s: %w", id, archive, err)
		}
		at.deltas.add(string(archive), rec.With, id, 1)
	}
	return at.deltas.apply(at.counts, nil)
}

// archiveCounter counts the records of one scope of a scan: the whole
// archive, or the conversation of the scan's With filter.
type archiveCounter struct {
	s      *archiveScan
	scope  []byte
	keys   *bbolt.Bucket // the index whose keys are kprefix ‖ be64(id)
	prefix []byte

	loaded      bool
	total       uint64
	first, last uint32 // slots of the oldest and newest counter; valid when total > 0
}

func newArchiveCounter(s *archiveScan, archive, with string) *archiveCounter {
	c := &archiveCounter{s: s, scope: countScope(archive, with), keys: s.at.mam, prefix: s.prefix}
	if s.wprefix != nil {
		c.keys, c.prefix = s.at.with, s.wprefix
	}
	return c
}

// load reads the scope's total and the slots of its oldest and newest
// counters.
func (c *archiveCounter) load() error {
	if c.loaded {
		return nil
	}
	c.loaded = true
	b := c.s.at.counts
	c.s.steps++
	if v := b.Get(c.scope); v != nil {
		n, err := decodeArchiveCount(v)
		if err != nil {
			return err
		}
		c.total = n
	}
	if c.total == 0 {
		return nil
	}
	cur := b.Cursor()
	k, _ := cur.Seek(slotKey(c.scope, 0))
	c.s.steps++
	slot, ok := c.slotOf(k)
	if !ok {
		return fmt.Errorf("%w: archive total %d without slot counters", ErrCorrupt, c.total)
	}
	c.first = slot
	k, _ = cur.Seek(slotKey(c.scope, math.MaxUint32))
	c.s.steps++
	if k == nil || !bytes.Equal(k, slotKey(c.scope, math.MaxUint32)) {
		if k == nil {
			k, _ = cur.Last()
		} else {
			k, _ = cur.Prev()
		}
		c.s.steps++
	}
	if c.last, ok = c.slotOf(k); !ok {
		return fmt.Errorf("%w: archive slot counters out of order", ErrCorrupt)
	}
	return nil
}

// slotOf returns the slot of a slot counter key of the scope.
func (c *archiveCounter) slotOf(k []byte) (uint32, bool) {
	if len(k) != len(c.scope)+4 || !bytes.HasPrefix(k, c.scope) {
		return 0, false
	}
	return binary.BigEndian.Uint32(k[len(c.scope):]), true
}

// slots calls fn with each slot counter in [from, to], ascending or (desc)
// descending, until fn returns false.
func (c *archiveCounter) slots(from, to uint32, desc bool, fn func(slot uint32, n uint64) bool) error {
	if from > to {
		return nil
	}
	cur := c.s.at.counts.Cursor()
	var k, v []byte
	if desc {
		target := slotKey(c.scope, to)
		k, v = cur.Seek(target)
		switch {
		case k == nil:
			k, v = cur.Last()
		case !bytes.Equal(k, target):
			k, v = cur.Prev()
		}
	} else {
		k, v = cur.Seek(slotKey(c.scope, from))
	}
	for {
		c.s.steps++
		slot, ok := c.slotOf(k)
		if !ok || slot < from || slot > to {
			return nil
		}
		n, err := decodeArchiveCount(v)
		if err != nil {
			return err
		}
		if !fn(slot, n) {
			return nil
		}
		if desc {
			k, v = cur.Prev()
		} else {
			k, v = cur.Next()
		}
	}
}

// slotSum adds the slot counters in [from, to].
func (c *archiveCounter) slotSum(from, to uint32) (uint64, error) {
	var sum uint64
	err := c.slots(from, to, false, func(_ uint32, n uint64) bool {
		sum += n
		return true
	})
	return sum, err
}

// keyCount counts the index keys with ids in [lo, hi].
func (c *archiveCounter) keyCount(lo, hi uint64) (uint64, error) {
	var n uint64
	err := c.s.eachKey(c.keys, c.prefix, lo, hi, false, func(uint64, []byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

func slotStart(slot uint32) uint64 { return uint64(slot) << archiveSlotShift }
func slotEnd(slot uint32) uint64   { return slotStart(slot) | math.MaxUint32 }

// below returns the number of the scope's records with ids below x.
func (c *archiveCounter) below(x uint64) (uint64, error) {
	if err := c.load(); err != nil || c.total == 0 || x <= 1 {
		return 0, err
	}
	slot := uint32(x >> archiveSlotShift)
	switch {
	case slot < c.first:
		return 0, nil
	case slot > c.last:
		return c.total, nil
	}
	if slot-c.first <= c.last-slot {
		// From the oldest end: full slots before x's, then x's own.
		var n uint64
		if slot > c.first {
			var err error
			if n, err = c.slotSum(c.first, slot-1); err != nil {
				return 0, err
			}
		}
		in, err := c.keyCount(slotStart(slot), x-1)
		return n + in, err
	}
	// From the newest end: the total minus what lies at or above x.
	var above uint64
	var err error
	if x == slotStart(slot) {
		above, err = c.slotSum(slot, c.last)
	} else {
		above, err = c.slotSum(slot+1, c.last)
		if err == nil {
			var in uint64
			in, err = c.keyCount(x, slotEnd(slot))
			above += in
		}
	}
	if err != nil {
		return 0, err
	}
	if above > c.total {
		return 0, fmt.Errorf("%w: archive counters disagree (%d above, total %d)", ErrCorrupt, above, c.total)
	}
	return c.total - above, nil
}

// count returns the number of the scope's records with ids in [lo, hi].
func (c *archiveCounter) count(lo, hi uint64) (uint64, error) {
	if lo > hi {
		return 0, nil
	}
	if lo>>archiveSlotShift == hi>>archiveSlotShift {
		return c.keyCount(lo, hi)
	}
	if err := c.load(); err != nil {
		return 0, err
	}
	from, err := c.below(lo)
	if err != nil {
		return 0, err
	}
	to := c.total
	if hi < math.MaxUint64 {
		if to, err = c.below(hi + 1); err != nil {
			return 0, err
		}
	}
	if to < from {
		return 0, fmt.Errorf("%w: archive counters disagree (%d below %d, %d below %d)", ErrCorrupt, from, lo, to, hi+1)
	}
	return to - from, nil
}

// nth returns the id of the scope's record of rank r (0 = oldest), found
// from whichever end is nearer by rank; ok is false when r >= the total.
func (c *archiveCounter) nth(r uint64) (id uint64, ok bool, err error) {
	if err := c.load(); err != nil || r >= c.total {
		return 0, false, err
	}
	desc := r >= c.total/2
	skip := r // records to pass over before the one wanted
	if desc {
		skip = c.total - 1 - r
	}
	var (
		acc   uint64
		found bool
		at    uint32
	)
	err = c.slots(c.first, c.last, desc, func(slot uint32, n uint64) bool {
		if acc+n > skip {
			found, at = true, slot
			return false
		}
		acc += n
		return true
	})
	if err != nil {
		return 0, false, err
	}
	if found {
		err = c.s.eachKey(c.keys, c.prefix, slotStart(at), slotEnd(at), desc, func(kid uint64, _ []byte) (bool, error) {
			if acc == skip {
				id, ok = kid, true
				return false, nil
			}
			acc++
			return true, nil
		})
		if err != nil {
			return 0, false, err
		}
	}
	if !ok {
		return 0, false, fmt.Errorf("%w: archive counters name record %d of %d, the index has fewer", ErrCorrupt, r, c.total)
	}
	return id, true, nil
}
