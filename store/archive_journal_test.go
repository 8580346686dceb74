package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// journalKeys returns how many records wait in the journal and how many
// are in mam, read directly.
func journalKeys(t *testing.T, db *DB) (journaled, indexed int) {
	t.Helper()
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		journaled = tx.Bucket([]byte(bucketMAMJournal)).Stats().KeyN
		indexed = tx.Bucket([]byte(bucketMAM)).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return journaled, indexed
}

// appendCommitted appends recs and waits until each is committed (its
// done callback), without a Flush: a Flush waiting for a batch commits it
// past the journal.
func appendCommitted(t *testing.T, w *ArchiveWriter, recs ...ArchiveRecord) []uint64 {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(recs))
	ids := make([]uint64, 0, len(recs))
	for _, rec := range recs {
		wg.Add(1)
		id, err := w.Append(rec, func(err error) {
			errs <- err
			wg.Done()
		})
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		ids = append(ids, id)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	return ids
}

// journalOnly writes recs to the journal directly, as a writer's commit
// would, and records them as journaled.
func journalOnly(t *testing.T, db *DB, recs ...ArchiveRecord) {
	t.Helper()
	entries := make([]archiveEntry, len(recs))
	for i, rec := range recs {
		entries[i] = newArchiveEntry(rec)
	}
	journalEntries(t, db, entries)
}

// journalEntries is journalOnly for entries already encoded.
func journalEntries(t *testing.T, db *DB, entries []archiveEntry) {
	t.Helper()
	if err := db.bolt.Update(func(tx *bbolt.Tx) error { return journal(tx, entries) }); err != nil {
		t.Fatal(err)
	}
	db.archive.noteJournaled(entries[len(entries)-1].id)
}

func TestArchiveJournalReadIndexesFirst(t *testing.T) {
	db := openNoSync(t)
	w := startWriter(t, db, WriterOptions{MaxBatch: 1024, IndexDelay: time.Hour})
	recs := []ArchiveRecord{
		msg(juliet, "romeo@example.net", DirIn),
		msg(juliet, "romeo@example.net", DirIn),
		msg(juliet, "nurse@example.net", DirOut),
	}
	ids := appendCommitted(t, w, recs...)
	if j, m := journalKeys(t, db); j != 3 || m != 0 {
		t.Fatalf("after small commits: %d journaled, %d indexed; want 3, 0", j, m)
	}
	// Every kind of read indexes the journal first.
	reads := []struct {
		name string
		read func(db *DB) (string, error)
		want string
	}{
		{"Get", func(db *DB) (string, error) {
			rec, err := db.Archive().Get(t.Context(), juliet, ids[2])
			return rec.With, err
		}, "nurse@example.net"},
		{"Query", func(db *DB) (string, error) {
			page, err := db.Archive().Query(t.Context(), ArchiveQuery{Archive: juliet, Max: 10, WantCount: true})
			return fmt.Sprintf("%d records, count %d", len(page.Records), page.Count), err
		}, "3 records, count 3"},
		{"Conversations", func(db *DB) (string, error) {
			convs, err := db.Archive().Conversations(t.Context(), juliet, 10)
			var b strings.Builder
			for _, c := range convs {
				fmt.Fprintf(&b, "%s:%d ", c.With, c.Unread)
			}
			return b.String(), err
		}, "nurse@example.net:0 romeo@example.net:2 "},
		{"Summary", func(db *DB) (string, error) {
			sum, err := db.Archive().Summary(t.Context(), juliet, "romeo@example.net", 0, 0, 10)
			return fmt.Sprintf("last %v, own last %v", sum.Last.ID == ids[2], sum.OwnLast == ids[1]), err
		}, "last true, own last true"},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			// Journal the records again for each read: it must not
			// depend on an earlier one.
			db2 := openNoSync(t)
			for i, rec := range recs {
				rec.ID = ids[i]
				journalOnly(t, db2, rec)
			}
			if j, m := journalKeys(t, db2); j != 3 || m != 0 {
				t.Fatalf("journaled %d, indexed %d; want 3, 0", j, m)
			}
			got, err := r.read(db2)
			if err != nil || got != r.want {
				t.Fatalf("%s = %q, %v; want %q", r.name, got, err, r.want)
			}
			if j, m := journalKeys(t, db2); j != 0 || m != 3 {
				t.Errorf("after %s: journaled %d, indexed %d; want 0, 3", r.name, j, m)
			}
		})
	}
}

func TestArchiveJournalReadWaitingIsCounted(t *testing.T) {
	// A read waiting to index the journal counts in readersWaiting (which
	// raises a pass the writer runs at idle priority) until it has the
	// write lock.
	db := openNoSync(t)
	// Hold bbolt's write lock, as a running pass would.
	tx, err := db.bolt.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	db.archive.noteJournaled(rid(0))
	read := make(chan error, 1)
	go func() {
		_, err := db.Archive().Query(context.Background(), ArchiveQuery{Archive: juliet, Max: 1})
		read <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for db.archive.readersWaiting.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	waiting := db.archive.readersWaiting.Load()
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if waiting != 1 {
		t.Errorf("readersWaiting = %d while a read waited for the write lock, want 1", waiting)
	}
	if err := <-read; err != nil {
		t.Fatalf("Query: %v", err)
	}
	if n := db.archive.readersWaiting.Load(); n != 0 {
		t.Errorf("readersWaiting = %d after the read, want 0", n)
	}
	// A read whose context ends while it waits fails with that error
	// and is no longer counted.
	tx, err = db.bolt.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	db.archive.noteJournaled(rid(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Archive().Query(ctx, ArchiveQuery{Archive: juliet, Max: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("Query with an ended context = %v, want context.Canceled", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := db.archive.readersWaiting.Load(); n != 0 {
		t.Errorf("readersWaiting = %d after a cancelled read, want 0", n)
	}
}

func TestArchiveJournalIndexedByWriter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  WriterOptions
		count int
	}{
		// Indexed once the records are IndexDelay old...
		{"after the delay", WriterOptions{MaxBatch: 1024, IndexDelay: 20 * time.Millisecond}, 5},
		// ...or once a full batch of them waits.
		{"a full batch", WriterOptions{MaxBatch: 8, MaxDelay: -1, IndexDelay: time.Hour}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openNoSync(t)
			w := startWriter(t, db, tc.opts)
			for range tc.count {
				appendCommitted(t, w, msg(juliet, "romeo@example.net", DirIn))
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				j, m := journalKeys(t, db)
				if j == 0 && m == tc.count {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("journaled %d, indexed %d after 10 s; want 0, %d", j, m, tc.count)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// Records a read has indexed no longer count towards the full batch that
// raises a pass: after 7 of 8 are journaled and a read indexes them, the
// next records stay in the journal.
func TestArchiveJournalCountRestartsAfterARead(t *testing.T) {
	db := openNoSync(t)
	w := startWriter(t, db, WriterOptions{MaxBatch: 8, MaxDelay: -1, IndexDelay: time.Hour})
	for range 7 {
		appendCommitted(t, w, msg(juliet, "romeo@example.net", DirIn))
	}
	if _, err := db.Archive().Query(t.Context(), ArchiveQuery{Archive: juliet, Max: 10}); err != nil {
		t.Fatal(err)
	}
	if j, m := journalKeys(t, db); j != 0 || m != 7 {
		t.Fatalf("after the read: journaled %d, indexed %d; want 0, 7", j, m)
	}
	// The writer handles records in order: once the second is
	// committed, a pass the first one raised would have run.
	appendCommitted(t, w, msg(juliet, "romeo@example.net", DirIn))
	appendCommitted(t, w, msg(juliet, "romeo@example.net", DirIn))
	if j, m := journalKeys(t, db); j != 2 || m != 7 {
		t.Errorf("journaled %d, indexed %d; want 2, 7 (no pass before a full batch since the read)", j, m)
	}
}

func TestArchiveJournalStopIndexes(t *testing.T) {
	db := openNoSync(t)
	w := db.Archive().NewWriter(WriterOptions{MaxBatch: 1024, IndexDelay: time.Hour})
	w.Start(t.Context())
	appendCommitted(t, w, msg(juliet, "romeo@example.net", DirIn), msg(juliet, "romeo@example.net", DirOut))
	if j, _ := journalKeys(t, db); j != 2 {
		t.Fatalf("journaled %d before Stop, want 2", j)
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if j, m := journalKeys(t, db); j != 0 || m != 2 {
		t.Fatalf("after Stop: journaled %d, indexed %d; want 0, 2", j, m)
	}
}

func TestArchiveJournalBigBatchAfterJournal(t *testing.T) {
	// A batch that is not small (here: a Flush waits for it) is indexed
	// at once, after the journaled records before it: the conversation
	// state counts both, in id order.
	db := openNoSync(t)
	w := startWriter(t, db, WriterOptions{MaxBatch: 1024, IndexDelay: time.Hour})
	first := appendCommitted(t, w, msg(juliet, "romeo@example.net", DirIn), msg(juliet, "romeo@example.net", DirIn))
	last := mustAppend(t, w, msg(juliet, "romeo@example.net", DirIn))
	if err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if j, m := journalKeys(t, db); j != 0 || m != 3 {
		t.Fatalf("after a flushed batch: journaled %d, indexed %d; want 0, 3", j, m)
	}
	convs, err := db.Archive().Conversations(t.Context(), juliet, 10)
	if err != nil || len(convs) != 1 || convs[0].Unread != 3 || convs[0].LastID != last || last <= first[1] {
		t.Fatalf("Conversations = %+v, %v; want 3 unread, last id %d", convs, err, last)
	}
}

func TestArchiveJournalWritesIndexFirst(t *testing.T) {
	// Every transaction that writes the archive applies the journal
	// first: a deletion must not miss journaled records (which would
	// come back when indexed later).
	tests := []struct {
		name  string
		write func(db *DB) error
		want  int // records left in juliet's archive
	}{
		{"DeleteArchive", func(db *DB) error { _, err := db.Archive().DeleteArchive(t.Context(), juliet); return err }, 0},
		{"DeleteWith", func(db *DB) error {
			_, err := db.Archive().DeleteWith(t.Context(), juliet, "romeo@example.net")
			return err
		}, 1},
		{"ExpireBefore", func(db *DB) error {
			_, err := db.Archive().ExpireBefore(t.Context(), time.UnixMicro(int64(rid(2))), 100)
			return err
		}, 1},
		{"Users.Delete", func(db *DB) error { _, err := db.Users().Delete(t.Context(), "example.org", "juliet"); return err }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openNoSync(t)
			if err := db.Users().Create(t.Context(), testUser("example.org", "juliet")); err != nil {
				t.Fatal(err)
			}
			journalOnly(t, db,
				ArchiveRecord{ID: rid(0), Archive: juliet, With: "romeo@example.net", Stanza: testStanza},
				ArchiveRecord{ID: rid(1), Archive: juliet, With: "romeo@example.net", Stanza: testStanza},
				ArchiveRecord{ID: rid(2), Archive: juliet, With: "nurse@example.net", Stanza: testStanza})
			// Nothing reads between the journal and the write.
			db.archive.indexedHigh.Store(db.archive.journalHigh.Load())
			if err := tc.write(db); err != nil {
				t.Fatal(err)
			}
			if j, m := journalKeys(t, db); j != 0 || m != tc.want {
				t.Fatalf("journaled %d, indexed %d; want 0, %d", j, m, tc.want)
			}
		})
	}
}

func TestArchiveJournalOpenAfterCrash(t *testing.T) {
	// Records journaled when the process died are indexed at the next
	// Open, and ids keep increasing past them.
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	future := uint64(time.Now().Add(time.Hour).UnixMicro())
	journalOnly(t, db,
		ArchiveRecord{ID: future, Archive: juliet, With: "romeo@example.net", Stanza: testStanza},
		ArchiveRecord{ID: future + 1, Archive: juliet, With: "romeo@example.net", Stanza: testStanza})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Read-only: the journal is left alone (and logged); ids still
	// account for it.
	var logs bytes.Buffer
	ro := openAt(t, path, Options{ReadOnly: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "not yet indexed") || !strings.Contains(logs.String(), "records=2") {
		t.Errorf("read-only Open logged %q; want the journaled record count", logs.String())
	}
	if id := ro.archive.nextID(time.Now()); id <= future+1 {
		t.Errorf("read-only next id %d, want > %d", id, future+1)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, path, Options{})
	if j, m := journalKeys(t, db); j != 0 || m != 2 {
		t.Fatalf("after Open: journaled %d, indexed %d; want 0, 2", j, m)
	}
	w := startWriter(t, db, WriterOptions{})
	if id := mustAppend(t, w, msg(juliet, "romeo@example.net", DirIn)); id <= future+1 {
		t.Errorf("next id %d, want > %d", id, future+1)
	}
	if err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	page, err := db.Archive().Query(t.Context(), ArchiveQuery{Archive: juliet, Max: 10})
	if err != nil || len(page.Records) != 3 || page.Records[0].ID != future {
		t.Fatalf("Query = %d records, %v; want the two journaled records and the new one", len(page.Records), err)
	}
}

// TestArchiveJournalCorruptEntry: a journal entry that does not decode,
// or whose archive or with no JID can have (its index keys would exceed
// bbolt's MaxKeySize, and the failing indexing would fail every later
// archive write), is logged and dropped, whether a read or a writer batch
// indexes the journal; the others are indexed and later writes work.
// Every kind of corrupt entry is tried both ways.
func TestArchiveJournalCorruptEntry(t *testing.T) {
	overlong := func(archive, with string) []byte {
		return encodeJournalEntry(nil, newArchiveEntry(ArchiveRecord{ID: rid(1), Archive: archive, With: with, Stanza: testStanza}))
	}
	const logged = "corrupt archive journal entry"
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"undecodable", []byte{journalCodecV1, 3, 'x'}},
		{"overlong archive", overlong(strings.Repeat("a", 40000), "romeo@example.net")},
		{"overlong with", overlong(juliet, strings.Repeat("w", 40000))},
	} {
		for _, viaWriter := range []bool{false, true} {
			name := tc.name + "/via a read"
			if viaWriter {
				name = tc.name + "/via a writer batch"
			}
			t.Run(name, func(t *testing.T) {
				var logs lockedBuffer
				db := openAt(t, filepath.Join(t.TempDir(), "db"), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				db.bolt.NoSync = true
				journalOnly(t, db,
					ArchiveRecord{ID: rid(0), Archive: juliet, With: "romeo@example.net", Stanza: testStanza},
					ArchiveRecord{ID: rid(2), Archive: juliet, With: "romeo@example.net", Stanza: testStanza})
				err := db.bolt.Update(func(tx *bbolt.Tx) error {
					return tx.Bucket([]byte(bucketMAMJournal)).Put(be64(rid(1)), tc.value)
				})
				if err != nil {
					t.Fatal(err)
				}
				// A batch of MaxBatch goes with the indexes, so it
				// drains the journal in its own transaction; a
				// writer's own journal passes never run (IndexDelay).
				w := startWriter(t, db, WriterOptions{MaxBatch: 1, IndexDelay: time.Hour})
				// Nothing has indexed the journal yet: what follows
				// is the first to.
				if j, m := journalKeys(t, db); j != 3 || m != 0 {
					t.Fatalf("before indexing: journaled %d, indexed %d; want 3, 0", j, m)
				}
				if !db.archive.journalPending() {
					t.Fatal("the journal is not pending before indexing: a read would not index it")
				}
				if strings.Contains(logs.String(), logged) {
					t.Fatalf("logged %q before anything indexed the journal", logs.String())
				}
				var want []uint64 // ids in juliet's archive, in order
				if viaWriter {
					// No read before the writer's batch: it indexes the
					// journal.
					want = append(appendCommitted(t, w, msg(juliet, "romeo@example.net", DirOut)), rid(0), rid(2))
					slices.Sort(want)
					if j, m := journalKeys(t, db); j != 0 || m != 3 {
						t.Fatalf("after the writer's batch: journaled %d, indexed %d; want 0, 3", j, m)
					}
				} else {
					// The read indexes the journal (catchUp) before it
					// reads.
					want = []uint64{rid(0), rid(2)}
					checkJulietIDs(t, db, "the read", want)
					if j, m := journalKeys(t, db); j != 0 || m != 2 {
						t.Fatalf("after the read: journaled %d, indexed %d; want 0, 2", j, m)
					}
				}
				if n := strings.Count(logs.String(), logged); n != 1 {
					t.Errorf("logged the dropped entry %d times, want 1: %q", n, logs.String())
				}
				if db.archive.journalPending() {
					t.Error("records still pending after the journal was indexed")
				}
				checkJulietIDs(t, db, "after indexing", want)
				// Later writes work: through the journal (a read then
				// a writer batch indexes it) and with the indexes.
				// (An id from the allocator: ids grow past the writer's.)
				later := db.archive.nextID(time.Now())
				journalOnly(t, db, ArchiveRecord{ID: later, Archive: juliet, With: "romeo@example.net", Stanza: testStanza})
				want = append(want, later)
				checkJulietIDs(t, db, "a later journaled record", want)
				want = append(want, appendCommitted(t, w, msg(juliet, "nurse@example.net", DirIn))...)
				slices.Sort(want)
				checkJulietIDs(t, db, "a later writer batch", want)
				if _, err := db.Archive().DeleteWith(t.Context(), juliet, "nurse@example.net"); err != nil {
					t.Fatalf("DeleteWith after the corrupt entry: %v", err)
				}
				if j, _ := journalKeys(t, db); j != 0 {
					t.Errorf("journaled %d after the later writes, want 0", j)
				}
				if n := strings.Count(logs.String(), logged); n != 1 {
					t.Errorf("logged the dropped entry %d times after later writes, want 1", n)
				}
			})
		}
	}
}

// checkJulietIDs checks that juliet's archive holds exactly the records
// want, in id order.
func checkJulietIDs(t *testing.T, db *DB, step string, want []uint64) {
	t.Helper()
	page, err := db.Archive().Query(t.Context(), ArchiveQuery{Archive: juliet, Max: 10})
	if err != nil {
		t.Fatalf("%s: Query: %v", step, err)
	}
	got := make([]uint64, len(page.Records))
	for i, r := range page.Records {
		got[i] = r.ID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: juliet's archive holds ids %v, want %v (the good records)", step, got, want)
	}
}

func TestJournalEntryCodec(t *testing.T) {
	e := newArchiveEntry(ArchiveRecord{ID: rid(3), Archive: juliet, With: "romeo@example.net", Direction: DirOut, Flags: FlagNoUnread, Stanza: testStanza})
	k, v := be64(e.id), encodeJournalEntry(nil, e)
	got, err := decodeJournalEntry(k, v)
	if err != nil || got.id != e.id || got.archive != e.archive || got.with != e.with || got.dir != e.dir || got.flags != e.flags || !bytes.Equal(got.val, e.val) {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", e, got, err)
	}
	bad := []struct {
		name string
		k, v []byte
	}{
		{"short key", k[:7], v},
		{"long key", append(bytes.Clone(k), 0), v},
		{"unknown version", k, append([]byte{2}, v[1:]...)},
		{"no archive", k, encodeJournalEntry(nil, archiveEntry{val: e.val})},
		{"truncated record", k, v[:len(v)-1]},
		{"trailing byte", k, append(bytes.Clone(v), 0)},
		{"empty", k, nil},
		{"archive longer than a JID", k, encodeJournalEntry(nil, archiveEntry{archive: strings.Repeat("a", maxJID+1), val: e.val})},
		{"with longer than a JID", k, encodeJournalEntry(nil, newArchiveEntry(ArchiveRecord{ID: rid(3), Archive: juliet, With: strings.Repeat("w", maxJID+1), Stanza: testStanza}))},
	}
	for _, tc := range bad {
		if _, err := decodeJournalEntry(tc.k, tc.v); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v, want ErrCorrupt", tc.name, err)
		}
	}
}

func FuzzJournalEntryCodec(f *testing.F) {
	e := newArchiveEntry(ArchiveRecord{ID: rid(3), Archive: juliet, With: "romeo@example.net", Stanza: testStanza})
	f.Add(append(be64(e.id), encodeJournalEntry(nil, e)...))
	f.Add(append(be64(1), journalCodecV1, 0))
	f.Add([]byte{})
	decode := func(b []byte) (archiveEntry, error) {
		if len(b) < 8 {
			return archiveEntry{}, fmt.Errorf("%w: short", ErrCorrupt)
		}
		return decodeJournalEntry(b[:8], b[8:])
	}
	encode := func(dst []byte, e archiveEntry) []byte {
		return encodeJournalEntry(append(dst, be64(e.id)...), e)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decode, encode)
	})
}

func TestArchiveJournalMalformedKeyAtOpen(t *testing.T) {
	// A journal key that is not an id is dropped at Open (logged), and
	// does not feed the id allocator.
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketMAMJournal)).Put([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte{journalCodecV1})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	db = openAt(t, path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if j, _ := journalKeys(t, db); j != 0 {
		t.Errorf("journaled %d after Open, want 0", j)
	}
	if !strings.Contains(logs.String(), "corrupt archive journal entry") {
		t.Errorf("Open logged %q; want the corrupt entry", logs.String())
	}
	if id := db.archive.nextID(time.Now()); id > uint64(time.Now().Add(time.Hour).UnixMicro()) {
		t.Errorf("next id %d taken from a malformed journal key", id)
	}
}

func TestArchiveJournalBoundedWhenIndexingFails(t *testing.T) {
	// Passes that keep failing must not let the journal grow: past a
	// full batch journaled, records commit with their indexes, and the
	// failure reaches their callbacks.
	var logs lockedBuffer
	db := openAt(t, filepath.Join(t.TempDir(), "db"), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	db.bolt.NoSync = true
	// A nested bucket where juliet's conversation state goes: every
	// write of that conversation's state fails.
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		_, err := tx.Bucket([]byte(bucketConv)).CreateBucket(convKey(juliet, "romeo@example.net"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	const maxBatch = 8
	w := startWriter(t, db, WriterOptions{MaxBatch: maxBatch, MaxDelay: -1, IndexDelay: time.Hour})
	for i := range maxBatch {
		appendCommitted(t, w, msg(juliet, "romeo@example.net", DirIn))
		if j, _ := journalKeys(t, db); j != i+1 {
			t.Fatalf("journaled %d after %d records, want %d", j, i+1, i+1)
		}
	}
	done := make(chan error, 1)
	if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("a record past a full journal committed although indexing fails")
	}
	// The pass after the eighth commit ran before the ninth.
	if !strings.Contains(logs.String(), "archive journal indexing failed") {
		t.Errorf("a failed pass was not logged: %q", logs.String())
	}
	if j, _ := journalKeys(t, db); j != maxBatch {
		t.Errorf("journaled %d, want %d (bounded)", j, maxBatch)
	}
	// A commit with the indexes indexes the journal first: when that
	// fails no pass follows it to fail again (the next is due by age).
	for range 3 {
		done := make(chan error, 1)
		if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err == nil {
			t.Error("a record past a full journal committed although indexing fails")
		}
	}
	if n := strings.Count(logs.String(), "archive journal indexing failed"); n != 1 {
		t.Errorf("%d failed passes logged, want 1 (the one after the full journal)", n)
	}
}

// TestArchiveJournalOpenSurvivesIndexingFailure: a journal that cannot be
// indexed at Open is logged, as before a read; the DB opens and serves
// what is indexed.
func TestArchiveJournalOpenSurvivesIndexingFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	db.bolt.NoSync = true
	w := startWriter(t, db, WriterOptions{MaxDelay: -1, IndexDelay: time.Hour})
	// romeo's record is indexed; juliet's stays journaled and cannot be
	// indexed (a nested bucket where its conversation state goes).
	mustAppend(t, w, msg("romeo@example.net", juliet, DirOut))
	if err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := db.Archive().indexJournal(t.Context()); err != nil {
		t.Fatal(err)
	}
	if j, i := journalKeys(t, db); j != 0 || i != 1 {
		t.Fatalf("after Flush: journaled %d, indexed %d, want 0 and 1", j, i)
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		_, err := tx.Bucket([]byte(bucketConv)).CreateBucket(convKey(juliet, "romeo@example.net"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	appendCommitted(t, w, msg(juliet, "romeo@example.net", DirIn))
	if j, _ := journalKeys(t, db); j != 1 {
		t.Fatalf("journaled %d, want 1", j)
	}
	// A crash: the file as it is, without Stop's last pass.
	bdb := db.bolt
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	again, err := Open(t.Context(), path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Open with a journal that cannot be indexed: %v", err)
	}
	defer again.Close()
	if !strings.Contains(logs.String(), "could not index the archive journal at open") {
		t.Errorf("the failure was not logged: %q", logs.String())
	}
	page, err := again.Archive().Query(t.Context(), ArchiveQuery{Archive: "romeo@example.net", Max: 10})
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("romeo's archive after Open: %+v, %v", page, err)
	}
}

// TestArchiveJournalIndexSkipsEmptyJournal: indexJournal decides on the
// bucket under the write lock, not on the counters (raised only after a
// commit releases the lock): with records noted as pending but the
// journal empty it commits nothing and settles the counters.
func TestArchiveJournalIndexSkipsEmptyJournal(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "db"), Options{})
	a := db.Archive()
	a.noteJournaled(a.indexedHigh.Load() + 5) // as between a pass's commit and its OnCommit
	before := lastTxID(t, db)
	if err := a.indexJournal(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := lastTxID(t, db); after != before {
		t.Errorf("an empty journal was committed (txid %d -> %d)", before, after)
	}
	if a.journalPending() {
		t.Error("records still noted as pending after finding the journal empty")
	}
}
