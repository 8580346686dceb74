package store

import (
	"errors"
	"fmt"
	"path/filepath"
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
			for {
				db.group.mu.Lock()
				n := len(db.group.queue)
				db.group.mu.Unlock()
				if n >= want {
					break
				}
				time.Sleep(time.Millisecond)
			}
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

// A write runs again when a function before it in the shared transaction
// fails, and sees the data as if the failed function never ran.
func TestGroupCommitRerunSeesRolledBackState(t *testing.T) {
	db := openTest(t)
	wait := sharedCommit(t, db, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = db.updateBatched(t.Context(), func(tx *bbolt.Tx) error {
			if err := gcPut("ghost")(tx); err != nil {
				return err
			}
			return errors.New("fail")
		})
	})
	// Queued second, so it runs after the failing one in the shared
	// transaction.
	for {
		db.group.mu.Lock()
		n := len(db.group.queue)
		db.group.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var sawGhost []bool
	var err error
	wg.Go(func() {
		err = db.updateBatched(t.Context(), func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("gc"))
			if err != nil {
				return err
			}
			sawGhost = append(sawGhost, b.Get([]byte("ghost")) != nil)
			return b.Put([]byte("second"), []byte("2"))
		})
	})
	wait()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(sawGhost) == 0 || sawGhost[len(sawGhost)-1] {
		t.Errorf("runs saw the failed write's key: %v (the last run must not)", sawGhost)
	}
	if got := gcKeys(t, db); !got["second"] || got["ghost"] {
		t.Errorf("stored %v, want second and not ghost", got)
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
