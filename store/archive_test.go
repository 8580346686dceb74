package store

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// archiveBase is the id (and µs time) of the first record of the query
// fixtures.
const archiveBase uint64 = 1_700_000_000_000_000

var testStanza = []byte(`<message from="romeo@example.net/orchard" to="juliet@example.org" type="chat" id="m1"><body>Wherefore art thou?</body><stanza-id xmlns="urn:xmpp:sid:0" id="x" by="juliet@example.org"/></message>`)

// buildArchive stores gen(0), …, gen(n-1) (IDs set by gen) directly, in
// transactions of batch records without fsync, bypassing the writer; then
// it reloads the id allocator as Open would.
func buildArchive(tb testing.TB, db *DB, n, batch int, gen func(i int) ArchiveRecord) {
	tb.Helper()
	noSync := db.bolt.NoSync
	db.bolt.NoSync = true
	defer func() { db.bolt.NoSync = noSync }()
	entries := make([]archiveEntry, 0, min(batch, n))
	for i := 0; i < n; {
		entries = entries[:0]
		for ; i < n && len(entries) < batch; i++ {
			entries = append(entries, newArchiveEntry(gen(i)))
		}
		err := db.bolt.Update(func(tx *bbolt.Tx) error {
			at, err := openArchiveTx(tx)
			if err != nil {
				return err
			}
			return at.put(tx, db.log, entries)
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := db.bolt.Sync(); err != nil {
		tb.Fatal(err)
	}
	if err := db.archive.loadLastID(tb.Context()); err != nil {
		tb.Fatal(err)
	}
}

// putRecords stores recs directly in one transaction.
func putRecords(tb testing.TB, db *DB, recs ...ArchiveRecord) {
	tb.Helper()
	buildArchive(tb, db, len(recs), len(recs)+1, func(i int) ArchiveRecord { return recs[i] })
}

// rid is the id of fixture record i.
func rid(i int) uint64 { return archiveBase + uint64(i)*1000 }

// rtime is the time of fixture record i.
func rtime(i int) time.Time { return time.UnixMicro(int64(rid(i))) }

const juliet = "juliet@example.org"

// queryFixture stores ten records in juliet's archive, 1 ms apart: even
// ones with romeo, odd ones with nurse; plus look-alike archives.
func queryFixture(t testing.TB) *DB {
	db := openTest(t)
	var recs []ArchiveRecord
	for i := range 10 {
		with := "romeo@example.net"
		if i%2 == 1 {
			with = "nurse@example.net"
		}
		dir := DirIn
		if i%3 == 0 {
			dir = DirOut
		}
		recs = append(recs, ArchiveRecord{ID: rid(i), Archive: juliet, With: with, Direction: dir, Stanza: fmt.Appendf(nil, "<m%d/>", i)})
		// Interleaved records of archives whose keys could be confused
		// with juliet's.
		recs = append(recs,
			ArchiveRecord{ID: rid(i) + 1, Archive: juliet + "x", With: with, Stanza: []byte("<other/>")},
			ArchiveRecord{ID: rid(i) + 2, Archive: "juliet@example.or", With: with, Stanza: []byte("<other/>")},
		)
	}
	putRecords(t, db, recs...)
	return db
}

func ids(recs []ArchiveRecord) []uint64 {
	out := []uint64{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func rids(is ...int) []uint64 {
	out := []uint64{}
	for _, i := range is {
		out = append(out, rid(i))
	}
	return out
}

func TestArchiveQuery(t *testing.T) {
	db := queryFixture(t)
	const romeo, nurse = "romeo@example.net", "nurse@example.net"
	tests := []struct {
		name         string
		q            ArchiveQuery
		want         []uint64
		complete     bool
		count, index int // checked when q.WantCount
	}{
		{"all", ArchiveQuery{Max: 100}, rids(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), true, 0, 0},
		{"exactly full", ArchiveQuery{Max: 10}, rids(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), true, 0, 0},
		{"first page", ArchiveQuery{Max: 3}, rids(0, 1, 2), false, 0, 0},
		{"last page", ArchiveQuery{Max: 3, Last: true}, rids(7, 8, 9), false, 0, 0},
		{"last page exactly full", ArchiveQuery{Max: 10, Last: true}, rids(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), true, 0, 0},
		{"with", ArchiveQuery{With: romeo, Max: 100}, rids(0, 2, 4, 6, 8), true, 0, 0},
		{"with last", ArchiveQuery{With: romeo, Max: 2, Last: true}, rids(6, 8), false, 0, 0},
		{"with unknown", ArchiveQuery{With: "tybalt@example.net", Max: 5}, rids(), true, 0, 0},
		{"start exact", ArchiveQuery{Start: rtime(3), Max: 100}, rids(3, 4, 5, 6, 7, 8, 9), true, 0, 0},
		{"start rounds up", ArchiveQuery{Start: rtime(3).Add(time.Nanosecond), Max: 100}, rids(4, 5, 6, 7, 8, 9), true, 0, 0},
		{"end exact", ArchiveQuery{End: rtime(5), Max: 100}, rids(0, 1, 2, 3, 4, 5), true, 0, 0},
		{"end rounds down", ArchiveQuery{End: rtime(5).Add(-time.Nanosecond), Max: 100}, rids(0, 1, 2, 3, 4), true, 0, 0},
		{"start and end with", ArchiveQuery{With: nurse, Start: rtime(2), End: rtime(7), Max: 100}, rids(3, 5, 7), true, 0, 0},
		{"start after end", ArchiveQuery{Start: rtime(5), End: rtime(4), Max: 100}, rids(), true, 0, 0},
		{"end before epoch", ArchiveQuery{End: time.Unix(-5, 0), Max: 100}, rids(), true, 0, 0},
		{"start before epoch", ArchiveQuery{Start: time.Time{}.Add(time.Hour), Max: 2}, rids(0, 1), false, 0, 0},
		{"start far future", ArchiveQuery{Start: time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC), Max: 2}, rids(), true, 0, 0},
		{"after id", ArchiveQuery{AfterID: rid(4), Max: 100}, rids(5, 6, 7, 8, 9), true, 0, 0},
		{"after id between records", ArchiveQuery{AfterID: rid(4) + 1, Max: 2}, rids(5, 6), false, 0, 0},
		{"after last id", ArchiveQuery{AfterID: rid(9), Max: 100}, rids(), true, 0, 0},
		{"after max uint64", ArchiveQuery{AfterID: math.MaxUint64, Max: 100}, rids(), true, 0, 0},
		{"before id forward", ArchiveQuery{BeforeID: rid(4), Max: 100}, rids(0, 1, 2, 3), true, 0, 0},
		{"before id forward page", ArchiveQuery{BeforeID: rid(4), Max: 2}, rids(0, 1), false, 0, 0},
		{"before id last", ArchiveQuery{BeforeID: rid(4), Max: 2, Last: true}, rids(2, 3), false, 0, 0},
		{"before id last reaches start", ArchiveQuery{BeforeID: rid(2), Max: 2, Last: true}, rids(0, 1), true, 0, 0},
		{"before first id", ArchiveQuery{BeforeID: rid(0), Max: 2, Last: true}, rids(), true, 0, 0},
		{"before id 1", ArchiveQuery{BeforeID: 1, Max: 2, Last: true}, rids(), true, 0, 0},
		{"after and before", ArchiveQuery{AfterID: rid(2), BeforeID: rid(6), Max: 100}, rids(3, 4, 5), true, 0, 0},
		{"with and after id", ArchiveQuery{With: romeo, AfterID: rid(2), Max: 2}, rids(4, 6), false, 0, 0},
		{"with before id last", ArchiveQuery{With: romeo, BeforeID: rid(8), Max: 10, Last: true}, rids(0, 2, 4, 6), true, 0, 0},
		{"ids", ArchiveQuery{IDs: []uint64{rid(7), rid(1), rid(1), 999, rid(4), rid(4) + 1}, Max: 100}, rids(1, 4, 7), true, 0, 0},
		{"ids with", ArchiveQuery{IDs: []uint64{rid(7), rid(1), rid(4)}, With: romeo, Max: 100}, rids(4), true, 0, 0},
		{"ids page", ArchiveQuery{IDs: []uint64{rid(7), rid(1), rid(4)}, Max: 2}, rids(1, 4), false, 0, 0},
		{"ids last page", ArchiveQuery{IDs: []uint64{rid(7), rid(1), rid(4)}, Max: 2, Last: true}, rids(4, 7), false, 0, 0},
		{"ids and time", ArchiveQuery{IDs: []uint64{rid(7), rid(1), rid(4)}, Start: rtime(2), End: rtime(6), Max: 9}, rids(4), true, 0, 0},
		{"ids of another archive", ArchiveQuery{IDs: []uint64{rid(1) + 1, rid(2) + 2}, Max: 9}, rids(), true, 0, 0},
		{"ids and after id", ArchiveQuery{IDs: []uint64{rid(7), rid(1), rid(4)}, AfterID: rid(1), Max: 9}, rids(4, 7), true, 0, 0},
		{"max 0", ArchiveQuery{Max: 0}, rids(), false, 0, 0},
		{"max 0 empty", ArchiveQuery{Max: 0, AfterID: rid(9)}, rids(), true, 0, 0},

		{"count all", ArchiveQuery{Max: 3, WantCount: true}, rids(0, 1, 2), false, 10, 0},
		{"count last", ArchiveQuery{Max: 2, Last: true, WantCount: true}, rids(8, 9), false, 10, 8},
		{"count max 0", ArchiveQuery{Max: 0, WantCount: true}, rids(), false, 10, -1},
		{"count with after", ArchiveQuery{With: romeo, AfterID: rid(2), Max: 2, WantCount: true}, rids(4, 6), false, 5, 2},
		{"count with before last", ArchiveQuery{With: romeo, BeforeID: rid(8), Max: 2, Last: true, WantCount: true}, rids(4, 6), false, 5, 2},
		{"count start after", ArchiveQuery{Start: rtime(3), AfterID: rid(5), Max: 2, WantCount: true}, rids(6, 7), false, 7, 3},
		{"count empty page", ArchiveQuery{AfterID: rid(9), Max: 2, WantCount: true}, rids(), true, 10, -1},
		{"count ids", ArchiveQuery{IDs: []uint64{rid(7), rid(1), rid(4), 5}, Max: 1, Last: true, WantCount: true}, rids(7), false, 3, 2},
		{"count nothing", ArchiveQuery{With: "tybalt@example.net", Max: 2, WantCount: true}, rids(), true, 0, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Archive = juliet
			page, err := db.Archive().Query(t.Context(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(page.Records); !slices.Equal(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
			if page.Complete != tc.complete {
				t.Errorf("Complete = %v, want %v", page.Complete, tc.complete)
			}
			wantCount, wantIndex := -1, -1
			if tc.q.WantCount {
				wantCount, wantIndex = tc.count, tc.index
			}
			if page.Count != wantCount || page.Index != wantIndex {
				t.Errorf("Count, Index = %d, %d; want %d, %d", page.Count, page.Index, wantCount, wantIndex)
			}
			for _, r := range page.Records {
				i := int((r.ID - archiveBase) / 1000)
				if r.Archive != juliet || string(r.Stanza) != fmt.Sprintf("<m%d/>", i) || (r.With == "romeo@example.net") != (i%2 == 0) || (r.Direction == DirOut) != (i%3 == 0) {
					t.Errorf("record %+v does not match fixture %d", r, i)
				}
				if !r.Time().Equal(rtime(i)) || r.Time().Location() != time.UTC {
					t.Errorf("Time() = %v, want %v in UTC", r.Time(), rtime(i))
				}
			}
		})
	}
}

func TestArchiveQueryInvalid(t *testing.T) {
	db := openTest(t)
	for name, q := range map[string]ArchiveQuery{
		"no archive":    {Max: 1},
		"long archive":  {Archive: strings.Repeat("a", maxJID+1), Max: 1},
		"long with":     {Archive: juliet, With: strings.Repeat("w", maxJID+1), Max: 1},
		"negative page": {Archive: juliet, Max: -1},
	} {
		if _, err := db.Archive().Query(t.Context(), q); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Query = %v, want ErrInvalid", name, err)
		}
	}
}

// TestArchivePaging pages through the fixture forwards and backwards with
// every page size, as an RSM client would, and checks that Complete is
// set on the last page only.
func TestArchivePaging(t *testing.T) {
	db := queryFixture(t)
	ctx := t.Context()
	for _, with := range []string{"", "romeo@example.net"} {
		all, err := db.Archive().Query(ctx, ArchiveQuery{Archive: juliet, With: with, Max: 100})
		if err != nil {
			t.Fatal(err)
		}
		want := ids(all.Records)
		for size := 1; size <= len(want)+1; size++ {
			t.Run(fmt.Sprintf("with=%q/size=%d", with, size), func(t *testing.T) {
				// Forwards: <after>last id of the previous page</after>.
				var got []uint64
				q := ArchiveQuery{Archive: juliet, With: with, Max: size, WantCount: true}
				for pages := 0; ; pages++ {
					if pages > len(want)+1 {
						t.Fatal("forward paging does not end")
					}
					page, err := db.Archive().Query(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if page.Count != len(want) || (len(page.Records) > 0 && page.Index != len(got)) {
						t.Fatalf("page %d: Count, Index = %d, %d; want %d, %d", pages, page.Count, page.Index, len(want), len(got))
					}
					got = append(got, ids(page.Records)...)
					if wantComplete := len(got) == len(want); page.Complete != wantComplete {
						t.Fatalf("forward page %d (%v): Complete = %v, want %v", pages, ids(page.Records), page.Complete, wantComplete)
					}
					if page.Complete {
						break
					}
					q.AfterID = page.Records[len(page.Records)-1].ID
				}
				if !slices.Equal(got, want) {
					t.Fatalf("forward pages = %v, want %v", got, want)
				}

				// Backwards: <before/>, then <before>first id</before>.
				got = nil
				q = ArchiveQuery{Archive: juliet, With: with, Max: size, Last: true, WantCount: true}
				for pages := 0; ; pages++ {
					if pages > len(want)+1 {
						t.Fatal("backward paging does not end")
					}
					page, err := db.Archive().Query(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					got = append(ids(page.Records), got...)
					if len(page.Records) > 0 && page.Index != len(want)-len(got) {
						t.Fatalf("backward page %d: Index = %d, want %d", pages, page.Index, len(want)-len(got))
					}
					if wantComplete := len(got) == len(want); page.Complete != wantComplete {
						t.Fatalf("backward page %d (%v): Complete = %v, want %v", pages, ids(page.Records), page.Complete, wantComplete)
					}
					if page.Complete {
						break
					}
					q.BeforeID = page.Records[0].ID
				}
				if !slices.Equal(got, want) {
					t.Fatalf("backward pages = %v, want %v", got, want)
				}
			})
		}
	}
}

func TestArchiveIsolation(t *testing.T) {
	// "a@x" is a byte prefix of "a@xa"; with-values likewise.
	ctx := t.Context()
	db := openTest(t)
	putRecords(t, db,
		ArchiveRecord{ID: 10, Archive: "a@x", With: "b@y", Stanza: []byte("<1/>")},
		ArchiveRecord{ID: 11, Archive: "a@xa", With: "b@y", Stanza: []byte("<2/>")},
		ArchiveRecord{ID: 12, Archive: "a@x", With: "b@ya", Stanza: []byte("<3/>")},
		ArchiveRecord{ID: 13, Archive: "a@xa", With: "b@ya", Stanza: []byte("<4/>")},
		ArchiveRecord{ID: 14, Archive: "a@", With: "xb@y", Stanza: []byte("<5/>")},
	)
	tests := []struct {
		archive, with string
		want          []uint64
	}{
		{"a@x", "", []uint64{10, 12}},
		{"a@xa", "", []uint64{11, 13}},
		{"a@", "", []uint64{14}},
		{"a@x", "b@y", []uint64{10}},
		{"a@x", "b@ya", []uint64{12}},
		{"a@xa", "b@y", []uint64{11}},
		{"a", "", []uint64{}},
	}
	for _, tc := range tests {
		for _, last := range []bool{false, true} {
			page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: tc.archive, With: tc.with, Max: 10, Last: last, WantCount: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(page.Records); !slices.Equal(got, tc.want) || page.Count != len(tc.want) || !page.Complete {
				t.Errorf("Query(%s, with %q, last %v) = %v count %d complete %v; want %v", tc.archive, tc.with, last, got, page.Count, page.Complete, tc.want)
			}
		}
	}
	if _, err := db.Archive().Get(ctx, "a@xa", 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(a@xa, 10) = %v, want ErrNotFound", err)
	}
	rec, err := db.Archive().Get(ctx, "a@x", 10)
	if want := (ArchiveRecord{ID: 10, Archive: "a@x", With: "b@y", Stanza: []byte("<1/>")}); err != nil || !reflect.DeepEqual(rec, want) {
		t.Errorf("Get(a@x, 10) = %+v, %v; want %+v", rec, err, want)
	}
	if n, err := db.Archive().DeleteArchive(ctx, "a@x"); err != nil || n != 2 {
		t.Fatalf("DeleteArchive(a@x) = %d, %v", n, err)
	}
	page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: "a@xa", Max: 10})
	if err != nil || !slices.Equal(ids(page.Records), []uint64{11, 13}) {
		t.Fatalf("a@xa after deleting a@x = %v, %v", ids(page.Records), err)
	}
	if convs, err := db.Archive().Conversations(ctx, "a@xa", 0); err != nil || len(convs) != 2 {
		t.Fatalf("conversations of a@xa after deleting a@x = %v, %v", convs, err)
	}
	assertArchiveConsistent(t, db)
}

// archiveSteps runs q inside a read transaction and returns the page and
// the cursor steps and lookups it took.
func archiveSteps(tb testing.TB, db *DB, q ArchiveQuery) (ArchivePage, int) {
	tb.Helper()
	var (
		page  ArchivePage
		steps int
	)
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		s, err := newArchiveScan(tx, q.Archive, q.With, q.IDs)
		if err != nil {
			return err
		}
		page, err = s.query(q)
		steps = s.steps
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return page, steps
}

// largeArchive describes the archive built by buildLargeArchive: n
// records over span, with correspondents cycling through withs.
type largeArchive struct {
	n     int
	span  time.Duration
	first uint64
	withs []string
}

func newLargeArchive(n int) largeArchive {
	la := largeArchive{n: n, span: 90 * 24 * time.Hour, first: archiveBase}
	for i := range 50 {
		la.withs = append(la.withs, fmt.Sprintf("contact%02d@example.net", i))
	}
	return la
}

func (la largeArchive) id(i int) uint64 {
	return la.first + uint64(i)*uint64(la.span.Microseconds()/int64(la.n))
}

func (la largeArchive) newest() time.Time { return time.UnixMicro(int64(la.id(la.n - 1))) }

func (la largeArchive) build(tb testing.TB, db *DB) {
	buildArchive(tb, db, la.n, 10_000, func(i int) ArchiveRecord {
		return ArchiveRecord{
			ID: la.id(i), Archive: juliet, With: la.withs[(i*7)%len(la.withs)],
			Direction: Direction(i % 2), Stanza: testStanza,
		}
	})
}

func TestArchiveQueryLargeIsOPage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100,000-record archive")
	}
	db := openTest(t)
	la := newLargeArchive(100_000)
	la.build(t, db)
	// A neighbour archive, so that seeks cross archive boundaries.
	putRecords(t, db, ArchiveRecord{ID: 1, Archive: juliet + "x", With: la.withs[0], Stanza: testStanza})
	putRecords(t, db, ArchiveRecord{ID: math.MaxUint64 - 1, Archive: juliet + "x", With: la.withs[0], Stanza: testStanza})

	since := la.newest().Add(-7 * 24 * time.Hour)
	x := la.withs[3]
	const page = 50
	tests := []struct {
		name string
		q    ArchiveQuery
	}{
		{"last 50 with X since 7 days", ArchiveQuery{With: x, Start: since, Max: page, Last: true}},
		{"first 50 with X since 7 days", ArchiveQuery{With: x, Start: since, Max: page}},
		{"last 50 since 7 days", ArchiveQuery{Start: since, Max: page, Last: true}},
		{"first 50 since 7 days", ArchiveQuery{Start: since, Max: page}},
		{"50 with X after a cursor", ArchiveQuery{With: x, AfterID: la.id(la.n / 2), Max: page}},
		{"50 with X before a cursor", ArchiveQuery{With: x, BeforeID: la.id(la.n / 2), Max: page, Last: true}},
		{"50 in a time window", ArchiveQuery{Start: time.UnixMicro(int64(la.id(1000))), End: time.UnixMicro(int64(la.id(5000))), Max: page, Last: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Archive = juliet
			got, steps := archiveSteps(t, db, tc.q)
			if len(got.Records) != page || got.Complete {
				t.Fatalf("got %d records, complete %v; want a full page of %d", len(got.Records), got.Complete, page)
			}
			for i, r := range got.Records {
				if (tc.q.With != "" && r.With != tc.q.With) || r.Time().Before(since) && tc.q.Start.Equal(since) || (i > 0 && r.ID <= got.Records[i-1].ID) {
					t.Fatalf("record %d = %d with %s does not match", i, r.ID, r.With)
				}
			}
			// One seek, a step per record (plus a value lookup per
			// record through the with index) and one probe for Complete.
			if limit := 2*page + 5; steps > limit {
				t.Errorf("query took %d cursor steps for a page of %d, want at most %d", steps, page, limit)
			}
			t.Logf("%d steps", steps)
		})
	}

	// A count reads slot counters (one per 2³² µs) and the keys of at
	// most two slots, not the records of the range.
	slotsIn := func(from, to uint64) int { return int(to>>archiveSlotShift-from>>archiveSlotShift) + 1 }
	perSlot := la.n/slotsIn(la.id(0), la.id(la.n-1)) + 2
	newest := la.id(la.n - 1)
	mid := la.id(la.n / 2)
	counted := []struct {
		name  string
		q     ArchiveQuery
		slots int // slot counters the count may read
	}{
		{"count with X since 7 days", ArchiveQuery{With: x, Start: since, Max: page, Last: true, WantCount: true}, slotsIn(uint64(since.UnixMicro()), newest)},
		{"count since 7 days", ArchiveQuery{Start: since, Max: page, Last: true, WantCount: true}, slotsIn(uint64(since.UnixMicro()), newest)},
		{"count everything", ArchiveQuery{Max: page, Last: true, WantCount: true}, 0},
		{"count with X, index of a middle page", ArchiveQuery{With: x, AfterID: mid, Max: page, WantCount: true}, slotsIn(la.id(0), newest) / 2},
		{"index of a middle page", ArchiveQuery{BeforeID: mid, Max: page, Last: true, WantCount: true}, slotsIn(la.id(0), newest) / 2},
		{"page at an index", ArchiveQuery{Start: since, Index: 1000, Max: page, WantCount: true}, 2 * slotsIn(uint64(since.UnixMicro()), newest)},
	}
	for _, tc := range counted {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Archive = juliet
			got, steps := archiveSteps(t, db, tc.q)
			var set []uint64
			for i := range la.n {
				id := la.id(i)
				if (tc.q.With == "" || la.withs[(i*7)%len(la.withs)] == tc.q.With) && (tc.q.Start.IsZero() || !time.UnixMicro(int64(id)).Before(tc.q.Start)) {
					set = append(set, id)
				}
			}
			if len(got.Records) != page {
				t.Fatalf("got %d records, want %d", len(got.Records), page)
			}
			wantIndex := slices.Index(set, got.Records[0].ID)
			if got.Count != len(set) || got.Index != wantIndex || (tc.q.Index > 0 && wantIndex != tc.q.Index) {
				t.Fatalf("Count, Index = %d, %d; want %d, %d", got.Count, got.Index, len(set), wantIndex)
			}
			if limit := 2*page + 5 + tc.slots + 4*perSlot + 20; steps > limit {
				t.Errorf("query with count took %d steps for %d matches, want at most %d", steps, len(set), limit)
			}
			t.Logf("%d steps for %d matches", steps, len(set))
		})
	}
}

// assertArchiveConsistent checks that mam, mam_with and mam_time describe
// the same records, and that every conversation's LastID is its newest
// record.
func assertArchiveConsistent(t testing.TB, db *DB) {
	t.Helper()
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		at, err := openArchiveTx(tx)
		if err != nil {
			return err
		}
		type rec struct {
			archive, with string
			id            uint64
		}
		var fromMAM, fromWith, fromTime []rec
		newest := map[[2]string]uint64{}
		err = at.mam.ForEach(func(k, v []byte) error {
			a, rest, err := readBytes(k)
			if err != nil {
				return err
			}
			id, err := parseIDSuffix(rest, 0)
			if err != nil {
				return err
			}
			r, err := decodeArchiveRecord(v)
			if err != nil {
				return err
			}
			fromMAM = append(fromMAM, rec{string(a), r.With, id})
			key := [2]string{string(a), r.With}
			newest[key] = max(newest[key], id)
			return nil
		})
		if err != nil {
			return err
		}
		err = at.with.ForEach(func(k, _ []byte) error {
			a, rest, err := readBytes(k)
			if err != nil {
				return err
			}
			w, rest, err := readBytes(rest)
			if err != nil {
				return err
			}
			id, err := parseIDSuffix(rest, 0)
			if err != nil {
				return err
			}
			fromWith = append(fromWith, rec{string(a), string(w), id})
			return nil
		})
		if err != nil {
			return err
		}
		err = at.times.ForEach(func(k, _ []byte) error {
			tk, err := parseArchiveTimeKey(k)
			if err != nil {
				return err
			}
			v := at.mam.Get(recordKey(tk.archive, tk.id))
			if v == nil {
				return fmt.Errorf("time index names missing record %d of %s", tk.id, tk.archive)
			}
			r, err := decodeArchiveRecord(v)
			if err != nil {
				return err
			}
			fromTime = append(fromTime, rec{tk.archive, r.With, tk.id})
			return nil
		})
		if err != nil {
			return err
		}
		sortRecs := func(rs []rec) {
			slices.SortFunc(rs, func(a, b rec) int {
				return strings.Compare(fmt.Sprintf("%s|%s|%020d", a.archive, a.with, a.id), fmt.Sprintf("%s|%s|%020d", b.archive, b.with, b.id))
			})
		}
		sortRecs(fromMAM)
		sortRecs(fromWith)
		sortRecs(fromTime)
		if !slices.Equal(fromMAM, fromWith) || !slices.Equal(fromMAM, fromTime) {
			t.Errorf("archive indexes disagree:\nmam      %v\nmam_with %v\nmam_time %v", fromMAM, fromWith, fromTime)
		}
		convs := map[[2]string]uint64{}
		err = at.conv.ForEach(func(k, v []byte) error {
			a, w, err := readBytes(k)
			if err != nil {
				return err
			}
			cv, err := decodeConvState(v)
			if err != nil {
				return err
			}
			convs[[2]string{string(a), string(w)}] = cv.lastID
			return nil
		})
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(convs, newest) {
			t.Errorf("conversation LastIDs = %v, newest records = %v", convs, newest)
		}
		// The counters are exactly what counting the records gives.
		var deltas countDeltas
		for _, r := range fromMAM {
			deltas.add(r.archive, r.with, r.id, 1)
		}
		want := map[string]int64{}
		for _, c := range deltas.deltas {
			want[c.key] = c.n
		}
		got := map[string]int64{}
		err = at.counts.ForEach(func(k, v []byte) error {
			n, err := decodeArchiveCount(v)
			if err != nil {
				return err
			}
			got[string(k)] = int64(n)
			return nil
		})
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("archive counters disagree with the records:\ncounters %v\nrecords  %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestArchiveDeleteWith(t *testing.T) {
	ctx := t.Context()
	db := queryFixture(t)
	// nurse also talks in another archive: untouched.
	putRecords(t, db, ArchiveRecord{ID: rid(20), Archive: "romeo@example.net", With: "nurse@example.net", Stanza: []byte("<r/>")})
	assertArchiveConsistent(t, db)

	n, err := db.Archive().DeleteWith(ctx, juliet, "nurse@example.net")
	if err != nil || n != 5 {
		t.Fatalf("DeleteWith = %d, %v; want 5", n, err)
	}
	page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: juliet, Max: 100})
	if err != nil || !slices.Equal(ids(page.Records), rids(0, 2, 4, 6, 8)) {
		t.Fatalf("juliet's archive after DeleteWith = %v, %v", ids(page.Records), err)
	}
	convs, err := db.Archive().Conversations(ctx, juliet, 0)
	if err != nil || len(convs) != 1 || convs[0].With != "romeo@example.net" {
		t.Fatalf("Conversations after DeleteWith = %+v, %v", convs, err)
	}
	for _, archive := range []string{"romeo@example.net", juliet + "x", "juliet@example.or"} {
		page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: archive, With: "nurse@example.net", Max: 0, WantCount: true})
		if err != nil || page.Count == 0 {
			t.Errorf("%s lost its nurse records: %d, %v", archive, page.Count, err)
		}
	}
	assertArchiveConsistent(t, db)
	if n, err := db.Archive().DeleteWith(ctx, juliet, "nurse@example.net"); err != nil || n != 0 {
		t.Fatalf("second DeleteWith = %d, %v", n, err)
	}
	if _, err := db.Archive().DeleteWith(ctx, juliet, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("DeleteWith(empty with) = %v, want ErrInvalid", err)
	}
}

func TestArchiveDeleteArchive(t *testing.T) {
	ctx := t.Context()
	db := queryFixture(t)
	if n, err := db.Archive().DeleteArchive(ctx, juliet); err != nil || n != 10 {
		t.Fatalf("DeleteArchive = %d, %v; want 10", n, err)
	}
	page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: juliet, Max: 100, WantCount: true})
	if err != nil || len(page.Records) != 0 || page.Count != 0 || !page.Complete {
		t.Fatalf("Query after DeleteArchive = %+v, %v", page, err)
	}
	if convs, err := db.Archive().Conversations(ctx, juliet, 0); err != nil || convs != nil {
		t.Fatalf("Conversations after DeleteArchive = %+v, %v", convs, err)
	}
	for _, archive := range []string{juliet + "x", "juliet@example.or"} {
		if page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: archive, Max: 0, WantCount: true}); err != nil || page.Count != 10 {
			t.Errorf("%s after deleting juliet's archive: %d records, %v", archive, page.Count, err)
		}
	}
	assertArchiveConsistent(t, db)
}

func TestArchiveExpireBefore(t *testing.T) {
	ctx := t.Context()
	db := queryFixture(t) // 30 records, three archives, rid(0)…rid(9)+2
	// A conversation that keeps a newer record.
	putRecords(t, db, ArchiveRecord{ID: rid(50), Archive: juliet, With: "romeo@example.net", Stanza: []byte("<new/>")})
	cutoff := rtime(6) // records rid(0)…rid(5)+2 are older: 18 of them

	if _, err := db.Archive().ExpireBefore(ctx, cutoff, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ExpireBefore(limit 0) = %v, want ErrInvalid", err)
	}
	var batches []int
	for {
		n, err := db.Archive().ExpireBefore(ctx, cutoff, 4)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, n)
		assertArchiveConsistent(t, db)
		if n < 4 {
			break
		}
		if len(batches) > 10 {
			t.Fatal("expiry does not end")
		}
	}
	if want := []int{4, 4, 4, 4, 2}; !slices.Equal(batches, want) {
		t.Fatalf("batches = %v, want %v", batches, want)
	}
	page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: juliet, Max: 100})
	if err != nil || !slices.Equal(ids(page.Records), append(rids(6, 7, 8, 9), rid(50))) {
		t.Fatalf("juliet's archive after expiry = %v, %v", ids(page.Records), err)
	}
	for _, archive := range []string{juliet + "x", "juliet@example.or"} {
		page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: archive, Max: 100})
		if err != nil || len(page.Records) != 4 || page.Records[0].ID < rid(6) {
			t.Fatalf("%s after expiry = %v, %v", archive, ids(page.Records), err)
		}
	}

	// Expire everything but the newest record: conversations whose
	// records are all gone are dropped.
	if n, err := db.Archive().ExpireBefore(ctx, rtime(50), 1000); err != nil || n != 12 {
		t.Fatalf("ExpireBefore(all but one) = %d, %v; want 12", n, err)
	}
	convs, err := db.Archive().Conversations(ctx, juliet, 0)
	if err != nil || len(convs) != 1 || convs[0].LastID != rid(50) {
		t.Fatalf("Conversations after expiry = %+v, %v", convs, err)
	}
	for _, archive := range []string{juliet + "x", "juliet@example.or"} {
		if convs, err := db.Archive().Conversations(ctx, archive, 0); err != nil || convs != nil {
			t.Errorf("Conversations(%s) after expiring all = %+v, %v", archive, convs, err)
		}
	}
	assertArchiveConsistent(t, db)
	if n, err := db.Archive().ExpireBefore(ctx, time.Unix(-1, 0), 10); err != nil || n != 0 {
		t.Fatalf("ExpireBefore(1969) = %d, %v", n, err)
	}
}

func TestUsersDeleteDropsArchive(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	for _, u := range [][2]string{{"example.org", "juliet"}, {"example.org.uk", "juliet"}} {
		if err := db.Users().Create(ctx, testUser(u[0], u[1])); err != nil {
			t.Fatal(err)
		}
	}
	var recs []ArchiveRecord
	for i, archive := range []string{juliet, "juliet@example.org.uk", juliet, "romeo@example.net"} {
		recs = append(recs, ArchiveRecord{ID: rid(i), Archive: archive, With: "romeo@example.net", Stanza: []byte("<m/>")})
	}
	putRecords(t, db, recs...)
	if _, err := db.Users().Delete(ctx, "example.org", "juliet"); err != nil {
		t.Fatal(err)
	}
	assertArchiveConsistent(t, db)
	for archive, want := range map[string]int{juliet: 0, "juliet@example.org.uk": 1, "romeo@example.net": 1} {
		page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: archive, Max: 0, WantCount: true})
		if err != nil || page.Count != want {
			t.Errorf("%s after deleting juliet@example.org: %d records, %v; want %d", archive, page.Count, err, want)
		}
		convs, err := db.Archive().Conversations(ctx, archive, 0)
		if err != nil || len(convs) != want {
			t.Errorf("%s after deleting juliet@example.org: conversations %+v, %v", archive, convs, err)
		}
	}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketMAMTime)).ForEach(func(k, _ []byte) error {
			if tk, err := parseArchiveTimeKey(k); err != nil || tk.archive == juliet {
				t.Errorf("time index entry %+v, %v left", tk, err)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestArchiveTimeBounds(t *testing.T) {
	tests := []struct {
		name       string
		start, end time.Time
		lo, hi     uint64
	}{
		{"open", time.Time{}, time.Time{}, 1, math.MaxUint64},
		{"exact", time.UnixMicro(5), time.UnixMicro(9), 5, 9},
		{"sub-microsecond", time.Unix(0, 5001), time.Unix(0, 9999), 6, 9},
		{"before epoch", time.Unix(-10, 0), time.Time{}, 1, math.MaxUint64},
		{"end before epoch", time.Time{}, time.Unix(-10, 0), 1, 0},
		{"end at epoch", time.Time{}, time.Unix(0, 0), 1, 0},
		{"far future", time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(300001, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxInt64, math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if lo, hi := archiveBounds(tc.start, tc.end); lo != tc.lo || hi != tc.hi {
				t.Fatalf("archiveBounds = %d, %d; want %d, %d", lo, hi, tc.lo, tc.hi)
			}
		})
	}
}

func TestArchiveRecordCodec(t *testing.T) {
	for _, rec := range []ArchiveRecord{
		{With: "romeo@example.net", Stanza: testStanza},
		{With: "room nick", Direction: DirOut, Flags: FlagNoUnread, Stanza: []byte("<m/>")},
		{With: strings.Repeat("w", 300), Stanza: []byte(strings.Repeat("s", 70000))},
		{},
	} {
		got := checkStrictCodec(t, encodeArchiveRecord(nil, rec), decodeArchiveRecord)
		if !reflect.DeepEqual(got, rec) {
			t.Errorf("decode(encode(%+v)) = %+v", rec, got)
		}
	}
	for name, v := range map[string][]byte{
		"version":   {2, 0, 0, 0, 0},
		"direction": {archiveCodecV1, 2, 0, 0, 0},
		"flags":     {archiveCodecV1, 0, 0, 0x80, 0},
	} {
		if _, err := decodeArchiveRecord(v); !errors.Is(err, ErrCorrupt) {
			t.Errorf("unknown %s = %v, want ErrCorrupt", name, err)
		}
	}
	for _, cv := range []convState{{}, {lastID: 1 << 60, unread: math.MaxUint32, readID: 7}} {
		if got := checkStrictCodec(t, encodeConvState(nil, cv), decodeConvState); got != cv {
			t.Errorf("conversation %+v decoded as %+v", cv, got)
		}
	}
	if _, err := decodeConvState(append([]byte{convCodecV1, 0}, appendUvarint(appendUvarint(nil, math.MaxUint32+1), 0)...)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unread over 2^32-1 = %v, want ErrCorrupt", err)
	}
	for _, id := range []uint64{0, 1, math.MaxUint64} {
		if got := checkStrictCodec(t, encodeArchiveLastID(nil, id), decodeArchiveLastID); got != id {
			t.Errorf("last id %d decoded as %d", id, got)
		}
	}
	for _, tk := range []archiveTime{{1, "a@x"}, {math.MaxUint64, strings.Repeat("r", 200)}} {
		if got := checkStrictCodec(t, archiveTimeKey(nil, tk), parseArchiveTimeKey); got != tk {
			t.Errorf("time key %+v decoded as %+v", tk, got)
		}
	}
	if _, err := parseArchiveTimeKey(archiveTimeKey(nil, archiveTime{id: 1})); !errors.Is(err, ErrCorrupt) {
		t.Errorf("time key with empty archive = %v, want ErrCorrupt", err)
	}
}

func FuzzArchiveRecordCodec(f *testing.F) {
	f.Add(encodeArchiveRecord(nil, ArchiveRecord{With: "romeo@example.net", Stanza: testStanza}))
	f.Add(encodeArchiveRecord(nil, ArchiveRecord{Direction: DirOut, Flags: FlagNoUnread}))
	f.Add([]byte{archiveCodecV1, 1, 0x80, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeArchiveRecord, encodeArchiveRecord)
	})
}

func FuzzConvStateCodec(f *testing.F) {
	f.Add(encodeConvState(nil, convState{lastID: archiveBase, unread: 3, readID: archiveBase - 1}))
	f.Add(encodeConvState(nil, convState{}))
	f.Add([]byte{convCodecV1, 0xff, 0xff, 0xff, 0xff, 0x1f, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeConvState, encodeConvState)
	})
}

func FuzzArchiveLastIDCodec(f *testing.F) {
	f.Add(encodeArchiveLastID(nil, archiveBase))
	f.Add([]byte{archiveLastIDCodecV1, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeArchiveLastID, encodeArchiveLastID)
	})
}

func FuzzArchiveTimeKey(f *testing.F) {
	f.Add(archiveTimeKey(nil, archiveTime{archiveBase, juliet}))
	f.Add(archiveTimeKey(nil, archiveTime{1, ""}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, parseArchiveTimeKey, archiveTimeKey)
	})
}

// BenchmarkArchiveQueryLarge queries a 1,000,000-record archive (built
// once per run, directly, not through the writer). Every query is one
// page: its cost does not depend on the archive's size. The -count cases
// add the XEP-0059 count and index, read from the archive counters; the
// -index cases page by position (XEP-0059 §2.5).
func BenchmarkArchiveQueryLarge(b *testing.B) {
	db := openAt(b, filepath.Join(b.TempDir(), "large.db"), Options{})
	la := newLargeArchive(1_000_000)
	start := time.Now()
	la.build(b, db)
	b.Logf("built %d records in %v", la.n, time.Since(start).Round(time.Millisecond))

	since := la.newest().Add(-7 * 24 * time.Hour)
	x := la.withs[3]
	for _, bc := range []struct {
		name string
		q    ArchiveQuery
	}{
		{"with-last50-since7d", ArchiveQuery{With: x, Start: since, Max: 50, Last: true}},
		{"with-after-id-50", ArchiveQuery{With: x, AfterID: la.id(la.n / 2), Max: 50}},
		{"all-last50", ArchiveQuery{Max: 50, Last: true}},
		{"all-first50-since7d", ArchiveQuery{Start: since, Max: 50}},
		{"ids-10", ArchiveQuery{IDs: []uint64{la.id(10), la.id(20_000), la.id(500_000), la.id(999_999), 5}, Max: 50}},
		{"with-last50-since7d-count", ArchiveQuery{With: x, Start: since, Max: 50, Last: true, WantCount: true}},
		{"all-last50-since7d-count", ArchiveQuery{Start: since, Max: 50, Last: true, WantCount: true}},
		{"all-last50-count", ArchiveQuery{Max: 50, Last: true, WantCount: true}},
		{"with-last50-count", ArchiveQuery{With: x, Max: 50, Last: true, WantCount: true}},
		{"with-after-id-50-count", ArchiveQuery{With: x, AfterID: la.id(la.n / 2), Max: 50, WantCount: true}},
		{"all-after-id-50-count", ArchiveQuery{AfterID: la.id(la.n / 2), Max: 50, WantCount: true}},
		{"all-index-500000-count", ArchiveQuery{Index: la.n / 2, Max: 50, WantCount: true}},
		{"with-index-since7d-count", ArchiveQuery{With: x, Start: since, Index: 700, Max: 50, WantCount: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.q.Archive = juliet
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				page, err := db.Archive().Query(ctx, bc.q)
				if err != nil || len(page.Records) == 0 {
					b.Fatalf("Query = %d records, %v", len(page.Records), err)
				}
			}
		})
	}
}
