package store

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// countModel is the expected content of one archive: its records in id
// order.
type countModel struct {
	ids   []uint64
	withs []string
}

// expect answers q (WantCount) over the model the slow way.
func (m countModel) expect(q ArchiveQuery) ArchivePage {
	lo, hi := archiveBounds(q.Start, q.End)
	var set []uint64
	for i, id := range m.ids {
		if id >= lo && id <= hi && (q.With == "" || m.withs[i] == q.With) && (q.IDs == nil || slices.Contains(q.IDs, id)) {
			set = append(set, id)
		}
	}
	page := ArchivePage{Count: len(set), Index: -1}
	var pick []uint64
	switch {
	case q.Index > 0:
		if q.Index < len(set) {
			pick = set[q.Index:min(q.Index+q.Max, len(set))]
		}
		page.Complete = q.Index+q.Max >= len(set)
	case q.Last:
		var before []uint64
		for _, id := range set {
			if (q.BeforeID == 0 || id < q.BeforeID) && (q.AfterID == 0 || id > q.AfterID) {
				before = append(before, id)
			}
		}
		pick = before[max(len(before)-q.Max, 0):]
		page.Complete = len(before) <= q.Max
	default:
		var after []uint64
		for _, id := range set {
			if (q.BeforeID == 0 || id < q.BeforeID) && (q.AfterID == 0 || id > q.AfterID) {
				after = append(after, id)
			}
		}
		pick = after[:min(q.Max, len(after))]
		page.Complete = len(after) <= q.Max
	}
	for _, id := range pick {
		page.Records = append(page.Records, ArchiveRecord{ID: id})
	}
	if len(pick) > 0 {
		page.Index = slices.Index(set, pick[0])
	}
	return page
}

// TestArchiveCounts compares counts, indexes and pages by index with a
// model, over records spread across many counter slots (dense runs and
// gaps of many slots), before and after deletions and expiry.
func TestArchiveCounts(t *testing.T) {
	ctx := t.Context()
	db := openNoSync(t)
	rng := rand.New(rand.NewPCG(1, 2))
	withs := []string{"romeo@example.net", "nurse@example.net", "tybalt@example.net", "lobby@conference.example.org"}
	var (
		model countModel
		recs  []ArchiveRecord
	)
	id := archiveBase
	for i := range 3000 {
		switch {
		case i%400 < 100: // a dense run inside one slot or two
			id += 1 + rng.Uint64N(1<<20)
		case i%400 < 110: // gaps of many slots
			id += rng.Uint64N(40 << archiveSlotShift)
		default:
			id += rng.Uint64N(1 << (archiveSlotShift + 1))
		}
		w := withs[rng.IntN(len(withs))]
		model.ids = append(model.ids, id)
		model.withs = append(model.withs, w)
		recs = append(recs, ArchiveRecord{ID: id, Archive: juliet, With: w, Stanza: testStanza})
		// A neighbour archive whose counters sort next to juliet's.
		if i%3 == 0 {
			recs = append(recs, ArchiveRecord{ID: id + 1, Archive: juliet + "x", With: w, Stanza: testStanza})
		}
	}
	buildArchive(t, db, len(recs), 500, func(i int) ArchiveRecord { return recs[i] })
	assertArchiveConsistent(t, db)

	// anyID returns an id near the archive's: a record's, or one between
	// records, or outside the archive.
	first, last := model.ids[0], model.ids[len(model.ids)-1]
	anyID := func() uint64 {
		switch rng.IntN(4) {
		case 0:
			return model.ids[rng.IntN(len(model.ids))]
		case 1:
			return first - 5 + rng.Uint64N(last-first+10)
		case 2:
			return slotStart(uint32(model.ids[rng.IntN(len(model.ids))] >> archiveSlotShift))
		}
		return model.ids[rng.IntN(len(model.ids))] + 1
	}
	check := func(t *testing.T, m countModel, n int) {
		t.Helper()
		for range n {
			q := ArchiveQuery{Archive: juliet, Max: rng.IntN(30), WantCount: true}
			if rng.IntN(2) == 0 {
				q.With = withs[rng.IntN(len(withs))]
			}
			if rng.IntN(2) == 0 {
				q.Start = time.UnixMicro(int64(anyID()))
			}
			if rng.IntN(3) == 0 {
				q.End = time.UnixMicro(int64(anyID()))
			}
			if rng.IntN(10) == 0 {
				q.IDs = []uint64{anyID(), anyID(), anyID(), anyID()}
			}
			switch rng.IntN(5) {
			case 0:
				q.AfterID = anyID()
			case 1:
				q.Last = true
			case 2:
				q.Last, q.BeforeID = true, anyID()
			case 3:
				q.Index = rng.IntN(len(m.ids)/4 + 10)
			}
			got, err := db.Archive().Query(ctx, q)
			if err != nil {
				t.Fatalf("Query(%+v) = %v", q, err)
			}
			want := m.expect(q)
			if !slices.Equal(ids(got.Records), ids(want.Records)) || got.Complete != want.Complete || got.Count != want.Count || got.Index != want.Index {
				t.Fatalf("Query(%+v):\ngot  %v complete %v count %d index %d\nwant %v complete %v count %d index %d",
					q, ids(got.Records), got.Complete, got.Count, got.Index, ids(want.Records), want.Complete, want.Count, want.Index)
			}
		}
	}
	t.Run("queries", func(t *testing.T) { check(t, model, 3000) })

	// Deleting a conversation and expiring the oldest records keep the
	// counters exact.
	if _, err := db.Archive().DeleteWith(ctx, juliet, withs[1]); err != nil {
		t.Fatal(err)
	}
	cut := model.ids[len(model.ids)/3]
	for {
		n, err := db.Archive().ExpireBefore(ctx, time.UnixMicro(int64(cut)), 100)
		if err != nil {
			t.Fatal(err)
		}
		if n < 100 {
			break
		}
	}
	var kept countModel
	for i, id := range model.ids {
		if id >= cut && model.withs[i] != withs[1] {
			kept.ids = append(kept.ids, id)
			kept.withs = append(kept.withs, model.withs[i])
		}
	}
	assertArchiveConsistent(t, db)
	t.Run("after deletion and expiry", func(t *testing.T) { check(t, kept, 1500) })

	// Per-archive retention (ExpireFunc) as well.
	cut2 := kept.ids[len(kept.ids)/2]
	var resume uint64
	for {
		_, next, err := db.Archive().ExpireFunc(ctx, time.UnixMicro(int64(cut2)), resume, 50, func(archive string) time.Time {
			if archive == juliet {
				return time.UnixMicro(int64(cut2))
			}
			return time.Time{}
		})
		if err != nil {
			t.Fatal(err)
		}
		if next == 0 {
			break
		}
		resume = next
	}
	var kept2 countModel
	for i, id := range kept.ids {
		if id >= cut2 {
			kept2.ids = append(kept2.ids, id)
			kept2.withs = append(kept2.withs, kept.withs[i])
		}
	}
	assertArchiveConsistent(t, db)
	t.Run("after per-archive expiry", func(t *testing.T) { check(t, kept2, 1000) })

	if _, err := db.Archive().DeleteArchive(ctx, juliet); err != nil {
		t.Fatal(err)
	}
	assertArchiveConsistent(t, db)
	t.Run("after deleting the archive", func(t *testing.T) { check(t, countModel{}, 200) })
}

// TestArchiveCountsThroughWriter checks the counters the writer keeps.
func TestArchiveCountsThroughWriter(t *testing.T) {
	ctx := t.Context()
	db := openNoSync(t)
	w := startWriter(t, db, WriterOptions{MaxBatch: 7})
	for i := range 100 {
		with := "romeo@example.net"
		if i%3 == 0 {
			with = "nurse@example.net"
		}
		mustAppend(t, w, msg(juliet, with, Direction(i%2)))
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	assertArchiveConsistent(t, db)
	for _, tc := range []struct {
		with string
		want int
	}{{"", 100}, {"nurse@example.net", 34}, {"romeo@example.net", 66}, {"tybalt@example.net", 0}} {
		page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: juliet, With: tc.with, Max: 10, Last: true, WantCount: true})
		if err != nil || page.Count != tc.want || (tc.want > 0 && page.Index != tc.want-10) {
			t.Errorf("with %q: Count, Index = %d, %d, %v; want %d, %d", tc.with, page.Count, page.Index, err, tc.want, tc.want-10)
		}
	}
}

func TestArchiveQueryIndexInvalid(t *testing.T) {
	db := queryFixture(t)
	for _, q := range []ArchiveQuery{
		{Archive: juliet, Index: -1, Max: 1},
		{Archive: juliet, Index: 2, Last: true, Max: 1},
		{Archive: juliet, Index: 2, AfterID: rid(1), Max: 1},
		{Archive: juliet, Index: 2, BeforeID: rid(5), Max: 1},
	} {
		if _, err := db.Archive().Query(t.Context(), q); !errors.Is(err, ErrInvalid) {
			t.Errorf("Query(%+v) = %v, want ErrInvalid", q, err)
		}
	}
}

// TestMigrateFromSchema5 opens a file written before the archive counters
// existed: the migration counts its records.
func TestMigrateFromSchema5(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	recs := []ArchiveRecord{
		{ID: archiveBase, Archive: juliet, With: "romeo@example.net", Stanza: testStanza},
		{ID: archiveBase + 5<<archiveSlotShift, Archive: juliet, With: "nurse@example.net", Stanza: testStanza},
		{ID: archiveBase + 9<<archiveSlotShift, Archive: juliet, With: "romeo@example.net", Stanza: testStanza},
		{ID: archiveBase + 9<<archiveSlotShift + 1, Archive: "romeo@example.net", With: juliet, Stanza: testStanza},
	}
	rawBolt(t, path, func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return err
		}
		for _, m := range migrations()[:5] {
			if err := m.apply(tx); err != nil {
				return err
			}
		}
		if err := meta.Put([]byte(keySchema), appendUvarint(nil, 5)); err != nil {
			return err
		}
		// The records as the schema-5 writer stored them.
		for _, r := range recs {
			puts := []struct {
				bucket   string
				key, val []byte
			}{
				{bucketMAM, recordKey(r.Archive, r.ID), encodeArchiveRecord(nil, r)},
				{bucketMAMWith, appendBE64(withPrefix(r.Archive, r.With), r.ID), []byte{}},
				{bucketMAMTime, archiveTimeKey(nil, archiveTime{r.ID, r.Archive}), []byte{}},
				{bucketConv, convKey(r.Archive, r.With), encodeConvState(nil, convState{lastID: r.ID})},
			}
			for _, p := range puts {
				if err := tx.Bucket([]byte(p.bucket)).Put(p.key, p.val); err != nil {
					return err
				}
			}
		}
		return nil
	})
	db := openAt(t, path, Options{})
	if v := schemaOf(t, db); v != SchemaVersion {
		t.Fatalf("schema after Open = %d, want %d", v, SchemaVersion)
	}
	// Conversation LastIDs need the newest record per conversation only;
	// the fixture wrote them in id order.
	assertArchiveConsistent(t, db)
	page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: juliet, With: "romeo@example.net", Max: 1, Last: true, WantCount: true})
	if err != nil || page.Count != 2 || page.Index != 1 {
		t.Fatalf("count after migration = %d, index %d, %v; want 2, 1", page.Count, page.Index, err)
	}
}

func TestArchiveCountCodec(t *testing.T) {
	for _, n := range []uint64{1, 127, 128, 1 << 40, math.MaxUint64} {
		if got := checkStrictCodec(t, encodeArchiveCount(nil, n), decodeArchiveCount); got != n {
			t.Errorf("round trip of %d = %d", n, got)
		}
	}
	if _, err := decodeArchiveCount([]byte{2, 1}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown codec version: %v, want ErrCorrupt", err)
	}
}

func FuzzArchiveCountCodec(f *testing.F) {
	f.Add(encodeArchiveCount(nil, 300))
	f.Fuzz(func(t *testing.T, v []byte) {
		n, err := decodeArchiveCount(v)
		if err != nil {
			return
		}
		if enc := encodeArchiveCount(nil, n); string(enc) != string(v) {
			t.Fatalf("decode(%x) = %d, re-encodes as %x", v, n, enc)
		}
	})
}

// countDeltas.apply adds each counter's change to what is stored, deletes
// a counter that reaches zero or would go below it, replaces a corrupt
// one, and starts the next batch empty.
func TestCountDeltasApply(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	db := openNoSync(t)
	count := func(n uint64) []byte { return encodeArchiveCount(nil, n) }
	stored := map[string][]byte{
		"grows":     count(5),
		"to zero":   count(1),
		"corrupt":   {9, 9},
		"no change": count(4),
	}
	var d countDeltas
	d.bump([]byte("grows"), 2)
	d.bump([]byte("to zero"), -1)
	d.bump([]byte("corrupt"), 1)
	d.bump([]byte("below zero"), -1) // not stored
	d.bump([]byte("no change"), 1)
	d.bump([]byte("no change"), -1)
	d.bump([]byte("new"), 3)
	want := map[string]uint64{"grows": 7, "corrupt": 1, "no change": 4, "new": 3}
	read := func(tx *bbolt.Tx) map[string]uint64 {
		got := map[string]uint64{}
		err := tx.Bucket([]byte(bucketMAMCount)).ForEach(func(k, v []byte) error {
			n, err := decodeArchiveCount(v)
			got[string(k)] = n
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketMAMCount))
		for k, v := range stored {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		if err := d.apply(b, log); err != nil {
			return err
		}
		// Every value put is still what it was when the transaction ends
		// (bbolt keeps values, not copies, until then).
		if got := read(tx); !maps.Equal(got, want) {
			t.Errorf("counters in the transaction: %v, want %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"replacing corrupt archive counter", "archive counter below zero"} {
		if strings.Count(logs.String(), line) != 1 {
			t.Errorf("log %q, want one %q", logs.String(), line)
		}
	}
	// The next batch starts empty.
	d.bump([]byte("new"), 1)
	want["new"] = 4
	err = db.bolt.Update(func(tx *bbolt.Tx) error {
		return d.apply(tx.Bucket([]byte(bucketMAMCount)), log)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		if got := read(tx); !maps.Equal(got, want) {
			t.Errorf("counters after the second batch: %v, want %v", got, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
