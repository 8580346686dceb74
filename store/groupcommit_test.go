package store

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// sharedCommit starts a write whose function holds the committer until
// want more calls are queued behind it, so that those calls share the
// next transaction. It returns once that write runs, with a wait for it.
func sharedCommit(t *testing.T, db *DB, want int) func() {
	t.Helper()
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		var once sync.Once
		done <- db.updateBatched(t.Context(), func(tx *bbolt.Tx) error {
			once.Do(func() { close(started) })
			queueLen(t, db, want)
			b, err := tx.CreateBucketIfNotExists([]byte("gc"))
			if err != nil {
				return err
			}
			return b.Put([]byte("first"), []byte("1"))
		})
	}()
	<-started
	return func() {
		t.Helper()
		if err := <-done; err != nil {
			t.Fatalf("first write: %v", err)
		}
	}
}

func gcPut(key string) func(tx *bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("gc"))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), []byte(key))
	}
}

func gcKeys(t *testing.T, db *DB) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("gc"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			got[string(k)] = true
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Writes queued while a commit runs share the next one; a function that
// fails in the shared transaction gets its own error, leaves nothing
// stored, and the others are stored; a function that panics there panics
// in its caller, and the others are stored.
func TestGroupCommitSharesAndIsolatesFailures(t *testing.T) {
	db := openTest(t)
	const writers = 20
	wait := sharedCommit(t, db, writers+2)
	before := lastTxID(t, db)

	errBoom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			errs[i] = db.updateBatched(t.Context(), gcPut(fmt.Sprintf("k%02d", i)))
		})
	}
	var failRuns atomic.Int32
	var failErr error
	wg.Go(func() {
		failErr = db.updateBatched(t.Context(), func(tx *bbolt.Tx) error {
			failRuns.Add(1)
			if err := gcPut("failed")(tx); err != nil {
				return err
			}
			return errBoom
		})
	})
	var panicked any
	wg.Go(func() {
		defer func() { panicked = recover() }()
		_ = db.updateBatched(t.Context(), func(tx *bbolt.Tx) error {
			if err := gcPut("panicked")(tx); err != nil {
				return err
			}
			panic("in a write")
		})
	})
	wait()
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if !errors.Is(failErr, errBoom) {
		t.Errorf("failing write returned %v, want %v", failErr, errBoom)
	}
	if n := failRuns.Load(); n != 2 {
		t.Errorf("failing function ran %d times, want 2 (shared, then alone)", n)
	}
	if panicked != "in a write" {
		t.Errorf("caller of the panicking write recovered %v, want its panic", panicked)
	}
	got := gcKeys(t, db)
	for i := range writers {
		if k := fmt.Sprintf("k%02d", i); !got[k] {
			t.Errorf("%s not stored", k)
		}
	}
	if got["failed"] || got["panicked"] {
		t.Errorf("a failed write left data: %v", got)
	}
	// The first write's commit, then the shared ones: the 20 good
	// writes are in the first shared transaction or, after the two
	// failures (each one rollback), in the one that retries them.
	if commits := lastTxID(t, db) - before; commits > 2 {
		t.Errorf("%d queued writes took %d commits after the first, want 1", writers, commits-1)
	}
}

// queueLen waits until n calls wait in db's group commit.
func queueLen(t *testing.T, db *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d calls queued after a minute", n)
		}
		db.group.mu.Lock()
		got := len(db.group.queue)
		db.group.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// A write runs again when a function after it in the shared transaction
// fails, and the re-run sees the data without its first run's writes.
func TestGroupCommitRerunSeesRolledBackState(t *testing.T) {
	db := openTest(t)
	wait := sharedCommit(t, db, 2)
	var wg sync.WaitGroup
	var sawSecond []bool
	var err error
	wg.Go(func() {
		err = db.updateBatched(t.Context(), func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("gc"))
			if err != nil {
				return err
			}
			sawSecond = append(sawSecond, b.Get([]byte("second")) != nil)
			return b.Put([]byte("second"), []byte("2"))
		})
	})
	queueLen(t, db, 1) // queued first: it runs before the failing one
	wg.Go(func() {
		_ = db.updateBatched(t.Context(), func(tx *bbolt.Tx) error {
			if err := gcPut("ghost")(tx); err != nil {
				return err
			}
			return errors.New("fail")
		})
	})
	wait()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(sawSecond) != 2 || sawSecond[0] || sawSecond[1] {
		t.Errorf("runs saw their own earlier write: %v, want [false false] (run, rolled back, run again)", sawSecond)
	}
	if got := gcKeys(t, db); !got["second"] || got["ghost"] {
		t.Errorf("stored %v, want second and not ghost", got)
	}
}

// Refusals (failures before any change) do not roll back the writes they
// share a transaction with: every function runs once, one commit, and each
// refusing caller gets its own error.
func TestGroupCommitRefusalsCostNoRollback(t *testing.T) {
	db := openTest(t)
	const writers = 40
	wait := sharedCommit(t, db, writers)
	before := lastTxID(t, db)
	var runs atomic.Int32
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = db.updateBatched(t.Context(), func(tx *bbolt.Tx) error {
				runs.Add(1)
				if i%2 == 1 {
					return refuse(fmt.Errorf("write %d: %w", i, ErrQuota))
				}
				return gcPut(fmt.Sprintf("k%02d", i))(tx)
			})
		})
	}
	wait()
	wg.Wait()
	got := gcKeys(t, db)
	for i, err := range errs {
		k := fmt.Sprintf("k%02d", i)
		if i%2 == 1 {
			if !errors.Is(err, ErrQuota) || !strings.Contains(err.Error(), fmt.Sprintf("write %d:", i)) {
				t.Errorf("refusing write %d returned %v, want its own ErrQuota", i, err)
			}
			if got[k] {
				t.Errorf("refusing write %d stored %s", i, k)
			}
			continue
		}
		if err != nil || !got[k] {
			t.Errorf("write %d: %v, stored %v", i, err, got[k])
		}
	}
	if n := runs.Load(); n != writers {
		t.Errorf("%d function runs for %d writes, want one each", n, writers)
	}
	if commits := lastTxID(t, db) - before; commits != 2 {
		t.Errorf("%d commits (the first write's, then the shared ones), want 2", commits)
	}
}

// More than maxSharedCalls queued writes are all committed, in
// transactions of at most maxSharedCalls.
func TestGroupCommitMoreThanOneTransactionQueued(t *testing.T) {
	db := openTest(t)
	const writers = maxSharedCalls + 76
	wait := sharedCommit(t, db, writers)
	before := lastTxID(t, db)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { errs[i] = db.updateBatched(t.Context(), gcPut(fmt.Sprintf("k%04d", i))) })
	}
	wait()
	wg.Wait()
	got := gcKeys(t, db)
	for i, err := range errs {
		if k := fmt.Sprintf("k%04d", i); err != nil || !got[k] {
			t.Fatalf("write %d: %v, stored %v", i, err, got[k])
		}
	}
	if commits := lastTxID(t, db) - before; commits != 3 {
		t.Errorf("%d commits (the first write's, then %d queued writes), want 3", commits, writers)
	}
}

// A function that ends its goroutine (runtime.Goexit, as t.Fatal does)
// ends its caller's goroutine, not the committer's work: the others in
// its transaction are committed and later writes still are.
func TestGroupCommitGoexit(t *testing.T) {
	db := openTest(t)
	wait := sharedCommit(t, db, 3)
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() { errA = db.updateBatched(t.Context(), gcPut("a")) })
	queueLen(t, db, 1)
	returned := make(chan bool, 1)
	wg.Go(func() {
		ok := false
		defer func() { returned <- ok }()
		_ = db.updateBatched(t.Context(), func(tx *bbolt.Tx) error {
			if err := gcPut("exit")(tx); err != nil {
				return err
			}
			runtime.Goexit()
			return nil
		})
		ok = true
	})
	queueLen(t, db, 2)
	wg.Go(func() { errB = db.updateBatched(t.Context(), gcPut("b")) })
	wait()
	wg.Wait()
	if <-returned {
		t.Error("updateBatched returned to a caller whose function called Goexit")
	}
	if errA != nil || errB != nil {
		t.Fatalf("the other writes: %v, %v", errA, errB)
	}
	if err := db.updateBatched(t.Context(), gcPut("later")); err != nil {
		t.Fatalf("a write after the Goexit: %v", err)
	}
	if got := gcKeys(t, db); !got["a"] || !got["b"] || !got["later"] || got["exit"] {
		t.Errorf("stored %v, want a, b and later, not exit", got)
	}
}

// Concurrent roster updates of one owner share commits and every one of
// them is applied: the version counts every change, also after a reopen.
func TestRosterUpdateConcurrentSharesCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	const writers = 100
	before := lastTxID(t, db)
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			_, _, _, errs[i] = db.Rosters().Update(t.Context(), "a@x", fmt.Sprintf("c%d@x", i), func(it *RosterItem, exists bool) (UpdateOp, error) {
				it.Subscription = SubBoth
				return UpdatePut, nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if commits := lastTxID(t, db) - before; commits >= writers {
		t.Errorf("%d concurrent updates took %d commits, want fewer", writers, commits)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Options{})
	items, ver, err := db.Rosters().Items(t.Context(), "a@x")
	if err != nil || len(items) != writers || ver != writers {
		t.Fatalf("after reopen: %d items, version %d, %v; want %d, %d", len(items), ver, err, writers, writers)
	}
}

// TestGroupCommitRefusalAfterFailedCommit: a refusal that rests on another
// call's write in the same transaction is not given when that transaction
// fails to commit; the refused call decides again alone.
func TestGroupCommitRefusalAfterFailedCommit(t *testing.T) {
	// MaxSize makes the commit fail when the file must grow past it.
	bdb, err := bbolt.Open(filepath.Join(t.TempDir(), "gc.db"), 0o600, &bbolt.Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	g := &groupCommit{bolt: bdb, log: slog.New(slog.DiscardHandler)}
	create := func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		if b.Get([]byte("alice")) != nil {
			return refuse(ErrExists)
		}
		if err := b.Put([]byte("alice"), []byte("x")); err != nil {
			return err
		}
		return b.Put([]byte("big"), make([]byte, 4<<20))
	}
	a := groupCall{fn: create, done: make(chan error, 1)}
	b := groupCall{fn: create, done: make(chan error, 1)}
	g.commit([]groupCall{a, b})
	if err := <-a.done; err == nil || err == errRunAlone {
		t.Fatalf("the creating call: %v, want the commit's error", err)
	}
	if err := <-b.done; err != errRunAlone {
		t.Fatalf("the refused call: %v, want errRunAlone (its refusal rested on a write never stored)", err)
	}
	if err := bdb.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("b")).Get([]byte("alice")) != nil {
			return errors.New("alice stored")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommitCommitPanicLogged: a panic in bbolt's commit of a shared
// transaction (here an OnCommit handler, which runs once the commit is on
// disk) fails every call rather than running it again (it would write
// twice), and is logged once with its stack.
func TestGroupCommitCommitPanicLogged(t *testing.T) {
	bdb, err := bbolt.Open(filepath.Join(t.TempDir(), "gc.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var logs strings.Builder
	g := &groupCommit{bolt: bdb, log: slog.New(slog.NewTextHandler(&logs, nil))}
	a := groupCall{fn: gcPut("a"), done: make(chan error, 1)}
	b := groupCall{fn: func(tx *bbolt.Tx) error {
		tx.OnCommit(func() { panic("in commit") })
		return gcPut("b")(tx)
	}, done: make(chan error, 1)}
	// A call that refused changed nothing: it is sent back to be decided
	// alone, as after a failed commit.
	r := groupCall{fn: func(*bbolt.Tx) error { return refuse(ErrExists) }, done: make(chan error, 1)}
	g.commit([]groupCall{a, r, b})
	for name, c := range map[string]groupCall{"a": a, "b": b} {
		if err := <-c.done; !errors.Is(err, errCommitPanicked) || !strings.Contains(err.Error(), "in commit") {
			t.Errorf("call %s: %v, want errCommitPanicked with the panic", name, err)
		}
	}
	if err := <-r.done; err != errRunAlone {
		t.Errorf("the refusing call: %v, want errRunAlone", err)
	}
	// The commit is on disk: both were written, and their callers are
	// not sent back to write them again.
	if err := bdb.View(func(tx *bbolt.Tx) error {
		for _, k := range []string{"a", "b"} {
			if tx.Bucket([]byte("gc")) == nil || tx.Bucket([]byte("gc")).Get([]byte(k)) == nil {
				return fmt.Errorf("%s not written", k)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if n := strings.Count(out, "level=ERROR"); n != 1 || !strings.Contains(out, "in commit") || !strings.Contains(out, "groupcommit_test.go") {
		t.Fatalf("logged %d errors, want one with the panic and its stack:\n%s", n, out)
	}
}
