package store

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"go.etcd.io/bbolt"
)

// maxSharedCalls bounds how many writes share one transaction, so that
// one commit (and the wait of everyone in it) stays small.
const maxSharedCalls = 1024

// errRunAlone tells a caller of groupCommit.do to run its function in a
// transaction of its own: it failed or panicked in a shared one.
var errRunAlone = errors.New("store: run alone")

// errCommitPanicked is a call's answer when bbolt panicked in the commit
// of its shared transaction: whether it reached the disk is unknown.
var errCommitPanicked = errors.New("store: write transaction panicked in commit")

// refusal is an error a write function returns, through refuse, when it
// fails before changing anything (a quota, an existing account): the
// shared transaction goes on without a rollback and the caller gets err.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// refuse marks err as the failure of a write function that has changed
// nothing in the transaction. Only for functions run by updateBatched.
func refuse(err error) error { return refusal{err} }

// refused is err without the refusal mark.
func refused(err error) error {
	if r, ok := err.(refusal); ok {
		return r.err
	}
	return err
}

// groupCommit joins small writes that arrive while a commit is running
// into the next transaction, so that they share its page writes and its
// sync ("group commit"). A write that arrives while nothing commits
// starts at once: unlike bbolt's Batch, nobody waits for a timer, so a
// lone write is as fast as db.Update and a burst (a thousand users
// subscribing to each other, an office reconnecting) pays a few syncs
// instead of one each.
//
// One goroutine, started on demand and ended when the queue is empty,
// runs the commits. A function that fails rolls its transaction back;
// the others in it run again in the next one and the failed one runs
// again alone in its caller's goroutine, so functions must only change
// the transaction and variables they set afresh on every run. A function
// that fails before changing anything returns refuse(err) instead: the
// transaction goes on and only its caller gets err, so that a stream of
// expected failures (full offline queues) costs no rollbacks. A panic in
// bbolt's commit fails every call of that transaction that changed
// something with errCommitPanicked, logged once with its stack: the
// commit may already be on disk (bbolt runs OnCommit handlers after it),
// so running the calls again could write twice; a call that refused
// changed nothing and is decided again alone. A function that ends its goroutine
// (runtime.Goexit) committed nothing: every call of that transaction
// runs again alone in its caller. A caller waits for its transaction
// however its context ends, as it would for bbolt's Update.
type groupCommit struct {
	bolt *bbolt.DB
	log  *slog.Logger // not nil

	mu      sync.Mutex
	queue   []groupCall
	running bool
}

// groupCall is one write waiting in a groupCommit.
type groupCall struct {
	fn   func(*bbolt.Tx) error
	done chan error // buffered: the committer never blocks on it
}

// do runs fn in a read-write transaction, possibly shared with other
// calls, and returns when that transaction has committed (fn's writes
// are durable) or failed.
func (g *groupCommit) do(fn func(*bbolt.Tx) error) error {
	done := make(chan error, 1)
	g.mu.Lock()
	g.queue = append(g.queue, groupCall{fn: fn, done: done})
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	err := <-done
	if err == errRunAlone {
		// Here, not in the committer: a panic belongs to the caller
		// (the connection's recovery handles it) and a failure reaches
		// it unchanged.
		err = g.bolt.Update(fn)
	}
	return refused(err)
}

// run commits the queue until it is empty.
func (g *groupCommit) run() {
	var calls []groupCall
	finished := false
	defer func() {
		if finished {
			return
		}
		// Ended by a runtime.Goexit in a function (commit has sent
		// its calls back): hand the queue to a new committer.
		g.mu.Lock()
		g.running = len(g.queue) > 0
		restart := g.running
		g.mu.Unlock()
		if restart {
			go g.run()
		}
	}()
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxSharedCalls)
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			finished = true
			return
		}
		calls = append(calls[:0], g.queue[:n]...)
		rest := copy(g.queue, g.queue[n:])
		clear(g.queue[rest:])
		g.queue = g.queue[:rest]
		g.mu.Unlock()
		g.commit(calls)
		clear(calls)
	}
}

// commit runs calls in one transaction. A call that fails or panics is
// sent back to run alone and the others run again without it; a call
// that refuses gets its refusal once the others have committed, or runs
// again alone if the commit fails.
func (g *groupCommit) commit(calls []groupCall) {
	// calls holds the calls not answered yet: if bbolt panics, each
	// that changed something fails (errCommitPanicked) and each that
	// refused runs again alone; if a function ends the goroutine, each
	// runs again alone (answerAll).
	normal := false
	refusals := make([]error, len(calls)) // refusals[i] is calls[i]'s, in the try under way
	defer func() {
		if normal {
			return
		}
		// A panic in bbolt (the functions' own are caught by
		// runGuarded), or nil for a Goexit.
		answer := errRunAlone
		if p := recover(); p != nil {
			g.log.Error("store: shared write transaction panicked",
				"calls", len(calls), "panic", p, "stack", string(debug.Stack()))
			answer = fmt.Errorf("%w: %v", errCommitPanicked, p)
		}
		answerAll(calls, refusals, answer)
	}()
	for len(calls) > 0 {
		failed := -1
		// Afresh for each try: refusals[i] belongs to calls[i] as it
		// is now, and a transaction that fails to begin (a closed DB)
		// runs no function at all.
		refusals = refusals[:len(calls)]
		clear(refusals)
		err := g.bolt.Update(func(tx *bbolt.Tx) error {
			for i, c := range calls {
				err := runGuarded(c.fn, tx)
				// Returned as refuse made it: a refusal wrapped by a
				// function that changed something after it is a
				// failure, which rolls the transaction back.
				if _, ok := err.(refusal); ok {
					refusals[i] = err
					continue
				}
				if err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			// Committed, or the commit itself failed.
			answerAll(calls, refusals, err)
			normal = true
			return
		}
		calls[failed].done <- errRunAlone
		calls = append(calls[:failed], calls[failed+1:]...)
	}
	normal = true
}

// answerAll answers the calls of a transaction that ended with err (nil:
// committed): err for everyone in it but the refusals (refusals[i] is
// calls[i]'s, if any), which changed nothing. A refusal may rest on
// another call's write (an account created, a quota filled), so after a
// failed commit it is decided again alone (errRunAlone).
func answerAll(calls []groupCall, refusals []error, err error) {
	for i, c := range calls {
		switch {
		case refusals[i] == nil:
			c.done <- err
		case err == nil:
			c.done <- refusals[i]
		default:
			c.done <- errRunAlone
		}
	}
}

// runGuarded is fn(tx), with a panic turned into errRunAlone.
func runGuarded(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errRunAlone
		}
	}()
	return fn(tx)
}
