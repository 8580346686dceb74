package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/bbolt"
)

// startWriter starts a writer on db and stops it at cleanup.
func startWriter(t testing.TB, db *DB, opts WriterOptions) *ArchiveWriter {
	t.Helper()
	w := db.Archive().NewWriter(opts)
	w.Start(t.Context())
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

// mustAppend appends rec and fails the test on error.
func mustAppend(t testing.TB, w *ArchiveWriter, rec ArchiveRecord) uint64 {
	t.Helper()
	id, err := w.Append(rec, nil)
	if err != nil {
		t.Fatalf("Append(%+v): %v", rec, err)
	}
	return id
}

func msg(archive, with string, dir Direction) ArchiveRecord {
	return ArchiveRecord{Archive: archive, With: with, Direction: dir, Stanza: testStanza}
}

func TestArchiveWriterConcurrentAppends(t *testing.T) {
	const goroutines, perGoroutine = 8, 300
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	db.bolt.NoSync = true
	w := startWriter(t, db, WriterOptions{MaxBatch: 64})

	var (
		mu        sync.Mutex
		committed int
		wg        sync.WaitGroup
	)
	perG := make([][]uint64, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				rec := msg(fmt.Sprintf("user%d@example.org", g%3), fmt.Sprintf("contact%d@example.net", i%5), Direction(i%2))
				id, err := w.Append(rec, func(err error) {
					if err != nil {
						t.Errorf("commit: %v", err)
						return
					}
					mu.Lock()
					committed++
					mu.Unlock()
				})
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				if n := len(perG[g]); n > 0 && id <= perG[g][n-1] {
					t.Errorf("goroutine %d: id %d after %d", g, id, perG[g][n-1])
				}
				perG[g] = append(perG[g], id)
			}
		})
	}
	wg.Wait()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	all := slices.Concat(perG...)
	slices.Sort(all)
	if len(slices.Compact(slices.Clone(all))) != goroutines*perGoroutine {
		t.Fatalf("ids are not unique")
	}
	mu.Lock()
	if committed != len(all) {
		t.Fatalf("%d done callbacks after Flush, want %d", committed, len(all))
	}
	mu.Unlock()
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	assertArchiveConsistent(t, db)

	// Durable: a fresh open finds every record, in id order.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Options{ReadOnly: true})
	var found []uint64
	for u := range 3 {
		page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: fmt.Sprintf("user%d@example.org", u), Max: goroutines * perGoroutine})
		if err != nil || !page.Complete {
			t.Fatalf("Query: %v, complete %v", err, page.Complete)
		}
		for _, r := range page.Records {
			if string(r.Stanza) != string(testStanza) {
				t.Fatalf("record %d stanza %q", r.ID, r.Stanza)
			}
		}
		found = append(found, ids(page.Records)...)
	}
	slices.Sort(found)
	if !slices.Equal(found, all) {
		t.Fatalf("after reopen found %d records, want %d", len(found), len(all))
	}
}

func TestArchiveWriterDoneAfterDurable(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	w := startWriter(t, db, WriterOptions{MaxDelay: -1})
	done := make(chan int, 10)
	var got []uint64
	for i := range 10 {
		id, err := w.Append(msg(juliet, "romeo@example.net", Direction(i%2)), func(err error) {
			if err != nil {
				t.Errorf("done(%d): %v", i, err)
			}
			// Records i and all before it are visible once done runs.
			page, err := db.Archive().Query(context.Background(), ArchiveQuery{Archive: juliet, Max: 0, WantCount: true})
			if err != nil || page.Count < i+1 {
				t.Errorf("done(%d): %d records committed, %v", i, page.Count, err)
			}
			done <- i
		})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	for i := range 10 {
		if j := <-done; j != i {
			t.Errorf("done callback %d came as number %d", j, i)
		}
	}
	// Stop without Flush: nothing is pending, Stop is idempotent.
	for range 2 {
		if err := w.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Options{})
	for _, id := range got {
		if _, err := db.Archive().Get(ctx, juliet, id); err != nil {
			t.Errorf("record %d after reopen: %v", id, err)
		}
	}
}

func TestArchiveWriterStopFlushes(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	// A long delay: only Stop makes the batch commit.
	w := db.Archive().NewWriter(WriterOptions{MaxDelay: time.Hour})
	var (
		mu    sync.Mutex
		calls int
	)
	for range 5 {
		if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), func(err error) {
			if err != nil {
				t.Errorf("done: %v", err)
			}
			mu.Lock()
			calls++
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Never started: Stop starts it and drains the queue.
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if calls != 5 {
		t.Errorf("%d done callbacks after Stop, want 5", calls)
	}
	mu.Unlock()
	page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: juliet, Max: 0, WantCount: true})
	if err != nil || page.Count != 5 {
		t.Fatalf("records after Stop = %d, %v", page.Count, err)
	}
	if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Stop = %v, want ErrClosed", err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("Flush after Stop = %v", err)
	}
	w.Start(ctx) // no effect after Stop
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("second Stop = %v", err)
	}
}

func TestArchiveWriterStartContextEnds(t *testing.T) {
	db := openTest(t)
	w := db.Archive().NewWriter(WriterOptions{MaxDelay: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	w.Start(ctx)
	done := make(chan error, 1)
	if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("record queued before the context ended: %v", err)
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after the context ended = %v, want ErrClosed", err)
	}
}

func TestArchiveWriterFailedCommit(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	w := db.Archive().NewWriter(WriterOptions{})
	errs := make(chan error, 3)
	for range 3 {
		if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), func(err error) { errs <- err }); err != nil {
			t.Fatal(err)
		}
	}
	// The DB goes away before the writer commits.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Stop = %v, want ErrClosed", err)
	}
	for range 3 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("done = %v, want ErrClosed", err)
		}
	}
	if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append on closed DB = %v, want ErrClosed", err)
	}
}

func TestArchiveWriterFailedFlush(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	w := db.Archive().NewWriter(WriterOptions{})
	if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	w.Start(ctx)
	if err := w.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush = %v, want ErrClosed", err)
	}
	// The failure was reported; later flushes have nothing pending.
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("second Flush = %v", err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("Stop = %v", err)
	}
}

func TestArchiveWriterBusy(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	w := db.Archive().NewWriter(WriterOptions{QueueSize: 4})
	var last uint64
	for range 4 {
		last = mustAppend(t, w, msg(juliet, "romeo@example.net", DirIn))
	}
	for range 3 {
		if id, err := w.Append(msg(juliet, "romeo@example.net", DirIn), func(error) { t.Error("done called for a refused record") }); !errors.Is(err, ErrBusy) || id != 0 {
			t.Fatalf("Append to a full queue = %d, %v; want ErrBusy", id, err)
		}
	}
	db.archive.mu.Lock()
	if db.archive.lastID != last {
		t.Errorf("a refused Append assigned an id: last %d, want %d", db.archive.lastID, last)
	}
	db.archive.mu.Unlock()
	w.Start(ctx)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if id := mustAppend(t, w, msg(juliet, "romeo@example.net", DirIn)); id <= last {
		t.Fatalf("id after the queue drained = %d, want above %d", id, last)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestArchiveWriterInvalid(t *testing.T) {
	db := openTest(t)
	w := startWriter(t, db, WriterOptions{})
	good := msg(juliet, "romeo@example.net", DirIn)
	tests := map[string]func(*ArchiveRecord){
		"no archive":     func(r *ArchiveRecord) { r.Archive = "" },
		"no with":        func(r *ArchiveRecord) { r.With = "" },
		"long with":      func(r *ArchiveRecord) { r.With = strings.Repeat("w", maxJID+1) },
		"no stanza":      func(r *ArchiveRecord) { r.Stanza = nil },
		"huge stanza":    func(r *ArchiveRecord) { r.Stanza = make([]byte, MaxArchiveStanza+1) },
		"bad direction":  func(r *ArchiveRecord) { r.Direction = 2 },
		"unknown flag":   func(r *ArchiveRecord) { r.Flags = 0x80 },
		"unknown flag 2": func(r *ArchiveRecord) { r.Flags = FlagNoUnread | 2 },
	}
	for name, mutate := range tests {
		rec := good
		mutate(&rec)
		if id, err := w.Append(rec, nil); !errors.Is(err, ErrInvalid) || id != 0 {
			t.Errorf("%s: Append = %d, %v; want ErrInvalid", name, id, err)
		}
	}
	mustAppend(t, w, good)
}

func TestArchiveWriterReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro := openAt(t, path, Options{ReadOnly: true})
	w := ro.Archive().NewWriter(WriterOptions{})
	if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Append on read-only DB = %v, want ErrReadOnly", err)
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestArchiveWriterCopiesStanza(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	w := startWriter(t, db, WriterOptions{})
	stanza := []byte("<m>1</m>")
	id := mustAppend(t, w, ArchiveRecord{Archive: juliet, With: "romeo@example.net", Stanza: stanza})
	stanza[3] = '2'
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := db.Archive().Get(ctx, juliet, id)
	if err != nil || string(rec.Stanza) != "<m>1</m>" {
		t.Fatalf("Get = %q, %v; want the stanza as appended", rec.Stanza, err)
	}
}

func TestArchiveIDsAcrossRestart(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	w := startWriter(t, db, WriterOptions{})
	var last uint64
	for range 20 {
		id := mustAppend(t, w, msg(juliet, "romeo@example.net", DirIn))
		if id <= last {
			t.Fatalf("id %d after %d", id, last)
		}
		last = id
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// The newest records go away; the persisted last id still counts.
	if _, err := db.Archive().DeleteArchive(ctx, juliet); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, path, Options{})
	// Even with a clock far behind, the next id is above the last one.
	if id := db.Archive().nextID(time.Unix(1, 0)); id != last+1 {
		t.Fatalf("first id after reopen with an old clock = %d, want %d", id, last+1)
	}
	w = startWriter(t, db, WriterOptions{})
	if id := mustAppend(t, w, msg(juliet, "romeo@example.net", DirIn)); id <= last+1 {
		t.Fatalf("id after reopen = %d, want above %d", id, last+1)
	}
	if id := db.Archive().nextID(time.UnixMicro(int64(last) + 1_000_000_000)); id != last+1_000_000_000 {
		t.Fatalf("id with the clock ahead = %d, want the clock %d", id, last+1_000_000_000)
	}
}

func TestArchiveIDsFromRecordsWithoutMeta(t *testing.T) {
	// A file whose meta value is missing (or lost) still starts above its
	// newest record.
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	const future = uint64(1) << 60
	putRecords(t, db, ArchiveRecord{ID: future, Archive: juliet, With: "romeo@example.net", Stanza: testStanza})
	if err := db.bolt.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Delete([]byte(keyArchiveLastID))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Options{})
	if id := db.Archive().nextID(time.Now()); id != future+1 {
		t.Fatalf("next id = %d, want %d", id, future+1)
	}
}

func TestArchiveWriterBatchFullCommitsAtOnce(t *testing.T) {
	// MaxDelay is an hour: the batch commits because it is full.
	db := openTest(t)
	w := startWriter(t, db, WriterOptions{MaxBatch: 3, MaxDelay: time.Hour})
	done := make(chan error, 3)
	for range 3 {
		if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestArchiveWriterRoomWhileCollecting(t *testing.T) {
	// The batch (up to 1,000 records, MaxDelay an hour) is far larger
	// than the queue (4): senders waiting for room must get it as the
	// writer drains the queue, not once the batch is complete.
	db := openNoSync(t)
	w := startWriter(t, db, WriterOptions{MaxBatch: 1000, QueueSize: 4, MaxDelay: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	const n = 200
	for i := range n {
		if _, err := w.AppendWait(ctx, msg(juliet, "romeo@example.net", DirIn), nil); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	page, err := db.Archive().Query(t.Context(), ArchiveQuery{Archive: juliet, Max: 0, WantCount: true})
	if err != nil || page.Count != n {
		t.Fatalf("records = %d, %v; want %d", page.Count, err, n)
	}
}

func TestArchiveWriterBatchTakesWhatQueuedWhileItSlept(t *testing.T) {
	// The writer sleeps while it collects: when MaxDelay ends (or a
	// Flush kicks it) the batch must take what was queued meanwhile,
	// not leave it for the next window.
	db := openTest(t)
	synctest.Test(t, func(t *testing.T) {
		w := db.Archive().NewWriter(WriterOptions{MaxDelay: 10 * time.Millisecond})
		w.Start(t.Context())
		var mu sync.Mutex
		committed := map[string]bool{}
		appendRec := func(name string) {
			if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), func(err error) {
				mu.Lock()
				committed[name] = err == nil
				mu.Unlock()
			}); err != nil {
				t.Fatal(err)
			}
		}
		appendRec("a")
		time.Sleep(5 * time.Millisecond)
		synctest.Wait()
		appendRec("b")
		time.Sleep(6 * time.Millisecond) // a's MaxDelay has passed
		synctest.Wait()
		mu.Lock()
		if !committed["a"] || !committed["b"] {
			t.Errorf("after MaxDelay: committed %v, want a and b in one batch", committed)
		}
		mu.Unlock()
		if err := w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestArchiveWriterMaxDelay(t *testing.T) {
	db := openTest(t)
	synctest.Test(t, func(t *testing.T) {
		w := db.Archive().NewWriter(WriterOptions{MaxDelay: 10 * time.Millisecond})
		w.Start(t.Context())
		var got error = errors.New("not yet")
		var mu sync.Mutex
		if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), func(err error) {
			mu.Lock()
			got = err
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(9 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if got == nil {
			t.Error("committed before MaxDelay")
		}
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if got != nil {
			t.Errorf("after MaxDelay: %v", got)
		}
		mu.Unlock()
		if err := w.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestArchiveWriterFlushCutsDelay(t *testing.T) {
	db := openTest(t)
	w := startWriter(t, db, WriterOptions{MaxDelay: time.Hour})
	id := mustAppend(t, w, msg(juliet, "romeo@example.net", DirIn))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Archive().Get(t.Context(), juliet, id); err != nil {
		t.Fatal(err)
	}
	// Nothing pending: Flush returns at once.
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestArchiveWriterFlushContext(t *testing.T) {
	db := openTest(t)
	w := db.Archive().NewWriter(WriterOptions{})
	mustAppend(t, w, msg(juliet, "romeo@example.net", DirIn))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// Not started: the record cannot commit, Flush gives up with ctx.
	if err := w.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush = %v, want context.Canceled", err)
	}
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestConversations(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	w := startWriter(t, db, WriterOptions{MaxDelay: -1})
	const romeo, nurse, paris = "romeo@example.net", "nurse@example.net", "paris@example.net"
	app := func(with string, dir Direction, flags uint8) uint64 {
		t.Helper()
		rec := msg(juliet, with, dir)
		rec.Flags = flags
		return mustAppend(t, w, rec)
	}
	conv := func(with string) Conversation {
		t.Helper()
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		convs, err := db.Archive().Conversations(ctx, juliet, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range convs {
			if c.With == with {
				return c
			}
		}
		t.Fatalf("no conversation with %s in %+v", with, convs)
		return Conversation{}
	}

	app(romeo, DirIn, 0)
	app(romeo, DirIn, 0)
	r3 := app(romeo, DirIn, 0)
	if c := conv(romeo); c.Unread != 3 || c.LastID != r3 || c.ReadID != 0 {
		t.Fatalf("after 3 incoming: %+v", c)
	}
	out := app(romeo, DirOut, 0)
	if c := conv(romeo); c.Unread != 0 || c.LastID != out {
		t.Fatalf("after replying: %+v", c)
	}
	in1 := app(romeo, DirIn, 0)
	in2 := app(romeo, DirIn, 0)
	quiet := app(romeo, DirIn, FlagNoUnread)
	if c := conv(romeo); c.Unread != 2 || c.LastID != quiet {
		t.Fatalf("after 2 incoming and a no-unread one: %+v", c)
	}
	n1 := app(nurse, DirIn, 0)
	p1 := app(paris, DirOut, 0)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	convs, err := db.Archive().Conversations(ctx, juliet, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Conversation{{paris, p1, 0, 0}, {nurse, n1, 1, 0}, {romeo, quiet, 2, 0}}
	if !slices.Equal(convs, want) {
		t.Fatalf("Conversations = %+v\nwant %+v", convs, want)
	}
	if convs, err := db.Archive().Conversations(ctx, juliet, 2); err != nil || !slices.Equal(convs, want[:2]) {
		t.Fatalf("Conversations(limit 2) = %+v, %v", convs, err)
	}
	// The other party's archive is separate: nothing was archived there.
	if convs, err := db.Archive().Conversations(ctx, romeo, 0); err != nil || convs != nil {
		t.Fatalf("Conversations(romeo) = %+v, %v", convs, err)
	}

	tests := []struct {
		name         string
		upTo         uint64
		unread       int
		readID       uint64
		appendBefore func()
	}{
		{"read the first of two", in1, 1, in1, nil},
		{"stale marker changes nothing", r3, 1, in1, nil},
		{"read all", in2, 0, in2, nil},
		{"read past the newest", quiet + 100, 0, quiet + 100, nil},
	}
	for _, tc := range tests {
		if err := db.Archive().MarkRead(ctx, juliet, romeo, tc.upTo); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c := conv(romeo); c.Unread != tc.unread || c.ReadID != tc.readID || c.LastID != quiet {
			t.Fatalf("%s: %+v, want unread %d, read id %d", tc.name, c, tc.unread, tc.readID)
		}
	}

	// New incoming messages count again; a marker before an outgoing
	// message counts only what came after it.
	app(nurse, DirIn, 0)
	app(nurse, DirOut, 0)
	n4 := app(nurse, DirIn, 0)
	app(nurse, DirIn, 0)
	if c := conv(nurse); c.Unread != 2 {
		t.Fatalf("nurse: %+v, want 2 unread", c)
	}
	if err := db.Archive().MarkRead(ctx, juliet, nurse, n1); err != nil {
		t.Fatal(err)
	}
	if c := conv(nurse); c.Unread != 2 || c.ReadID != n1 {
		t.Fatalf("nurse after marking an old message read: %+v, want 2 unread", c)
	}
	if err := db.Archive().MarkRead(ctx, juliet, nurse, n4); err != nil {
		t.Fatal(err)
	}
	if c := conv(nurse); c.Unread != 1 || c.ReadID != n4 {
		t.Fatalf("nurse after marking n4 read: %+v, want 1 unread", c)
	}

	// No conversation: nothing to do.
	if err := db.Archive().MarkRead(ctx, juliet, "tybalt@example.net", 5); err != nil {
		t.Fatalf("MarkRead without a conversation = %v", err)
	}
	if _, err := db.Archive().Conversations(ctx, "", 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Conversations(empty) = %v, want ErrInvalid", err)
	}
	assertArchiveConsistent(t, db)
}

// appendRetry appends rec, waiting for the writer while its queue is
// full (back-pressure as a caller would apply it).
func appendRetry(tb testing.TB, w *ArchiveWriter, rec ArchiveRecord) {
	for {
		_, err := w.Append(rec, nil)
		if !errors.Is(err, ErrBusy) {
			if err != nil {
				tb.Error(err)
			}
			return
		}
		_ = w.Flush(context.Background())
	}
}

// BenchmarkArchiveAppend measures archiving throughput through the writer
// with fsync on commit, until everything appended is durable.
func BenchmarkArchiveAppend(b *testing.B) {
	b.Run("sequential", func(b *testing.B) {
		db := openTest(b)
		w := startWriter(b, db, WriterOptions{})
		rec := msg(juliet, "romeo@example.net", DirIn)
		b.ReportAllocs()
		start, n := time.Now(), 0
		for b.Loop() {
			appendRetry(b, w, rec)
			n++
		}
		if err := w.Flush(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
	})
	b.Run("parallel", func(b *testing.B) {
		db := openTest(b)
		w := startWriter(b, db, WriterOptions{})
		var next atomic.Int64
		b.ReportAllocs()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			rec := msg(fmt.Sprintf("user%d@example.org", next.Add(1)), "romeo@example.net", DirIn)
			for pb.Next() {
				appendRetry(b, w, rec)
			}
		})
		if err := w.Flush(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	})
	// Every record to another of 10,000 archives and conversations: no
	// two records of a batch share per-archive state (the worst case for
	// the conversation and count updates of a batch).
	b.Run("distinct", func(b *testing.B) {
		db := openTest(b)
		w := startWriter(b, db, WriterOptions{})
		recs := make([]ArchiveRecord, 10_000)
		for i := range recs {
			recs[i] = msg(fmt.Sprintf("user%d@example.org", i), fmt.Sprintf("contact%d@example.net", i), DirIn)
		}
		b.ReportAllocs()
		start, n := time.Now(), 0
		for b.Loop() {
			appendRetry(b, w, recs[n%len(recs)])
			n++
		}
		if err := w.Flush(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
	})
}

func TestArchiveWriterFlushManyBatches(t *testing.T) {
	// Flush must not wait MaxDelay for each of the batches it covers.
	db := openNoSync(t)
	w := db.Archive().NewWriter(WriterOptions{MaxBatch: 2, MaxDelay: time.Hour})
	for range 9 {
		mustAppend(t, w, msg(juliet, "romeo@example.net", DirIn))
	}
	w.Start(t.Context())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: juliet, Max: 0, WantCount: true})
	if err != nil || page.Count != 9 {
		t.Fatalf("records after Flush = %d, %v", page.Count, err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
