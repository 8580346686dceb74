package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"go.etcd.io/bbolt"
)

// Defaults for WriterOptions.
const (
	DefaultWriterMaxBatch = 8192
	// DefaultWriterMaxDelay lets a batch collect for 50 ms. A commit's cost
	// is mostly the pages it dirties (each active archive's tail pages),
	// which grow far slower than its records: at 5,000 msgs/s, 50 ms
	// batches take a third less CPU per message than 10 ms ones. Records
	// are delivered before they commit; a Flush (every archive read) cuts
	// the wait short.
	DefaultWriterMaxDelay  = 50 * time.Millisecond
	DefaultWriterQueueSize = 8192
	// DefaultWriterIndexDelay: journaled records are indexed after a
	// second (or once a full batch of them waits). At 5,000 msgs/s with
	// 200 active archives, indexing every 50 ms batch cost ~30 µs of CPU
	// per record, the journal plus one pass a second ~10.
	DefaultWriterIndexDelay = time.Second
)

// Background commits (WriterOptions.Background).
const (
	// boostAfter is how often the writer checks a running background
	// commit: one whose thread waited for a CPU more than maxWaitShare
	// of the last boostAfter (its run delay; waiting for the disk does
	// not count) is raised to normal priority. Where the kernel keeps
	// no run delay, the rule is a CPU share under minShare. The machine
	// has no idle CPU for it, and meanwhile it holds bbolt's write lock
	// and a Go processor, which a stop-the-world phase of the collector
	// waits for.
	boostAfter   = 50 * time.Millisecond
	maxWaitShare = 0.5
	minShare     = 0.5
	// starvedFor is how long the writer then commits at normal priority.
	starvedFor = 10 * time.Second
	// passPatience is how long an index pass may starve at idle
	// priority before it is raised: meanwhile it holds bbolt's write
	// lock (every other write of the DB waits) and a Go processor.
	passPatience = 250 * time.Millisecond
)

// WriterOptions configures an ArchiveWriter.
type WriterOptions struct {
	// MaxBatch is the most records committed in one transaction. Zero or
	// negative means DefaultWriterMaxBatch.
	MaxBatch int
	// MaxDelay is how long the first record of a batch waits for more
	// records to share its transaction. Zero means DefaultWriterMaxDelay;
	// negative means no wait: commit whatever is queued as soon as the
	// previous commit is done. A Flush or Stop cuts the wait short.
	MaxDelay time.Duration
	// QueueSize bounds the records appended but not yet committed; when
	// it is reached Append fails with ErrBusy. Zero or negative means
	// DefaultWriterQueueSize.
	QueueSize int
	// IndexDelay is how long records may wait in the archive's journal
	// (see archive_journal.go) before the writer indexes them; it also
	// indexes them once MaxBatch of them wait. A batch goes to the
	// journal while the writer keeps up (the batch and the records
	// queued behind it are each under a quarter of MaxBatch) and nobody
	// waits for it; otherwise it is indexed at once, after the journal.
	// Zero means DefaultWriterIndexDelay; negative means no journal.
	IndexDelay time.Duration
	// Background commits batches, while the writer keeps up, on an OS
	// thread of idle CPU priority (Linux SCHED_IDLE; elsewhere it has no
	// effect), so that a commit — milliseconds of CPU — never delays
	// threads serving connections: they preempt it whenever they wake.
	// A batch commits at normal priority instead when it holds a quarter
	// of MaxBatch or more, or as many records wait (the writer is busy or
	// behind), when a Flush or Stop waits for it, when less than a
	// quarter of the machine's CPU time was idle since the last look
	// (minIdleShare), and for starvedFor after a background commit
	// starved (its thread waited for a CPU more than half of a boostAfter,
	// or where the kernel does not say, ran less than half of it), which
	// also raises that commit's thread to normal priority. Journal index
	// passes also run there; see storeInBackground for when one is
	// raised. Raising a thread's priority takes CAP_SYS_NICE or an
	// RLIMIT_NICE of 20 or more; without it (or elsewhere than on Linux)
	// every batch commits at normal priority, as every later one does if
	// a raised thread cannot be given idle priority again. The thread
	// holds a Go processor while it waits for CPU: while background
	// commits run, and for a few seconds after the last, the process has
	// one processor more (GOMAXPROCS; processorLoan) if the program turned
	// that on (LendProcessors) and the environment does not set
	// GOMAXPROCS to a positive number.
	Background bool
	// Logger receives commit failures (Error) and lifecycle messages.
	// Nil uses the DB's logger.
	Logger *slog.Logger
}

// ArchiveWriter is the single writer of the message archive (DESIGN §4–§5):
// Append assigns an id at once and queues the record; one goroutine
// commits queued records in batches ("group commit"), up to MaxBatch
// records or MaxDelay per bbolt transaction, either with their indexes
// and conversation updates or, while it keeps up, to the journal that a
// later pass indexes (archive_journal.go). Create it with Archive.NewWriter, run it with
// Start, and Stop it before closing the DB. Use one writer per DB: ids are
// unique in any case, but conversation state assumes records of one
// conversation commit in id order. It is safe for concurrent use.
type ArchiveWriter struct {
	a        *Archive
	maxBatch int
	maxDelay time.Duration
	// indexDelay is IndexDelay (negative: no journal). journaled counts
	// the records this writer journaled since the journal was last seen
	// empty, journaledAt is when the first of them was committed; both
	// owned by the writer goroutine.
	indexDelay  time.Duration
	journaled   int
	journaledAt time.Time
	log         *slog.Logger
	startOnce   sync.Once
	exited      chan struct{} // closed when the goroutine has drained the queue and returned

	// background asks Start for the idle-priority committer; bg is its
	// job channel (nil without one), owned by the writer goroutine like
	// normalUntil, the time before which commits stay at normal priority.
	// boostAfter, maxWaitShare and minShare are the constants (changed
	// in tests).
	background   bool
	boostAfter   time.Duration
	maxWaitShare float64
	minShare     float64
	bg           chan func() error
	bgResult     chan error
	bgExited     chan struct{}
	bgThread     int // the committer's OS thread id
	// lowerPriority is setThreadIdlePriority (changed in tests).
	lowerPriority func(tid int) error
	bgRaised      bool           // its priority was raised (storeInBackground)
	loan          *processorLoan // nil: GOMAXPROCS left alone
	normalUntil   time.Time
	idleCPU       idleMeter

	// queue holds appended records in id order. Capacity QueueSize;
	// Append checks for room under mu and fails with ErrBusy when it is
	// full, so a send never blocks. Closed (under mu) by close.
	queue chan pendingRecord
	// kick (capacity 1) asks the goroutine to commit the batch it is
	// collecting now rather than after MaxDelay. A full kick is enough.
	kick chan struct{}
	// While the goroutine collects a batch it does not receive from the
	// queue record by record (each would wake it: a scheduler round trip
	// and often a futex call on the sender's path, per record); it sleeps
	// until MaxDelay, a kick, or wake (capacity 1), which Append signals
	// once the queue holds wakeAt records: what fills the batch, or half
	// the queue. wakeAt (under mu) is math.MaxInt at other times.
	wake chan struct{}

	mu       sync.Mutex // guards the fields below; held while assigning an id and queueing
	wakeAt   int
	closed   bool
	appended uint64 // sequence number of the last record queued
	finished uint64 // sequence number of the last record committed or failed
	waiters  []*flushWaiter
	// room is closed (and replaced) each time the goroutine takes a batch
	// off the queue, waking AppendWait callers waiting for room.
	room chan struct{}
}

// pendingRecord is a queued record.
type pendingRecord struct {
	seq   uint64
	entry archiveEntry
	done  func(error)
}

// flushWaiter is a Flush (or Stop) waiting for the records with sequence
// numbers in (from, target] to finish.
type flushWaiter struct {
	from, target uint64
	err          error         // first failure among those records
	ch           chan struct{} // closed when finished >= target
}

// NewWriter returns a writer for the archive; call Start to run it.
func (a *Archive) NewWriter(opts WriterOptions) *ArchiveWriter {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultWriterMaxBatch
	}
	if opts.MaxDelay == 0 {
		opts.MaxDelay = DefaultWriterMaxDelay
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultWriterQueueSize
	}
	if opts.IndexDelay == 0 {
		opts.IndexDelay = DefaultWriterIndexDelay
	}
	log := opts.Logger
	if log == nil {
		log = a.db.log
	}
	w := &ArchiveWriter{
		a:             a,
		maxBatch:      opts.MaxBatch,
		maxDelay:      opts.MaxDelay,
		indexDelay:    opts.IndexDelay,
		log:           log,
		background:    opts.Background,
		boostAfter:    boostAfter,
		maxWaitShare:  maxWaitShare,
		minShare:      minShare,
		idleCPU:       idleMeter{read: readCPUTimes},
		lowerPriority: setThreadIdlePriority,
		loan:          loanFor(opts.Background),
		exited:        make(chan struct{}),
		queue:         make(chan pendingRecord, opts.QueueSize),
		kick:          make(chan struct{}, 1),
		wake:          make(chan struct{}, 1),
		room:          make(chan struct{}),
	}
	w.wakeAt = math.MaxInt
	return w
}

// Start runs the writer's goroutine. Later calls do nothing. When ctx ends
// the writer stops as if Stop had been called: it refuses new records,
// commits the queued ones and exits (Stop still waits for that).
func (w *ArchiveWriter) Start(ctx context.Context) {
	w.startOnce.Do(func() {
		if w.background {
			w.startBackground()
		}
		go w.run(ctx)
	})
}

// Append assigns rec an id, queues it and returns the id; rec.ID is
// ignored. It never blocks: with the queue full it fails with ErrBusy and
// assigns nothing. It fails with ErrInvalid for a record that cannot be
// stored (see ArchiveRecord), ErrClosed after Stop or DB.Close, and
// ErrReadOnly on a read-only DB. Append copies rec.Stanza.
//
// done, if not nil, is called exactly once for an accepted record: with
// nil once the record is committed (durable), or with the error of the
// failed commit, in which case nothing of its batch was stored. done runs
// on the writer's goroutine: it must be quick, and must not call Flush or
// Stop (Append is fine).
func (w *ArchiveWriter) Append(rec ArchiveRecord, done func(error)) (uint64, error) {
	if err := rec.validate(); err != nil {
		return 0, fmt.Errorf("store: archive message: %w", err)
	}
	switch {
	case w.a.db.readOnly:
		return 0, fmt.Errorf("store: archive message for %s: %w", rec.Archive, ErrReadOnly)
	case w.a.db.closed.Load():
		return 0, fmt.Errorf("store: archive message for %s: %w", rec.Archive, ErrClosed)
	}
	// Encode (and so copy) before taking the lock; the id is in the key.
	entry := newArchiveEntry(rec)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return 0, fmt.Errorf("store: archive message for %s: writer stopped: %w", rec.Archive, ErrClosed)
	case len(w.queue) == cap(w.queue):
		// The writer sleeping on a batch takes the queue now.
		select {
		case w.wake <- struct{}{}:
		default:
		}
		return 0, fmt.Errorf("store: archive message for %s: %d records pending: %w", rec.Archive, cap(w.queue), ErrBusy)
	}
	// Only senders hold mu, so the room checked above is still there, and
	// ids enter the queue in increasing order.
	entry.id = w.a.nextID(time.Now())
	w.appended++
	w.queue <- pendingRecord{seq: w.appended, entry: entry, done: done}
	if len(w.queue) >= w.wakeAt {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return entry.id, nil
}

// MaxAppendWait bounds how long AppendWait holds a sender back when the
// writer's queue is full (the disk does not keep up): the sender is slowed
// rather than its message left out; only past this bound (a disk that has
// stopped) is a message delivered unarchived, and logged by the caller.
const MaxAppendWait = 10 * time.Second

// AppendWait is Append that waits, until ctx ends or for MaxAppendWait at
// most, for room in a full queue instead of failing with ErrBusy:
// archiving slows the callers down rather than losing records when the
// disk cannot keep up. Without a full queue it costs what Append does.
func (w *ArchiveWriter) AppendWait(ctx context.Context, rec ArchiveRecord, done func(error)) (uint64, error) {
	id, err := w.Append(rec, done)
	if !errors.Is(err, ErrBusy) {
		return id, err
	}
	limit := time.NewTimer(MaxAppendWait)
	defer limit.Stop()
	for {
		// Take the wake-up channel before trying again, so that room
		// made after that try is not missed.
		w.mu.Lock()
		room := w.room
		w.mu.Unlock()
		id, err := w.Append(rec, done)
		if !errors.Is(err, ErrBusy) {
			return id, err
		}
		select {
		case <-room:
		case <-ctx.Done():
			return 0, err
		case <-limit.C:
			return 0, err
		}
	}
}

// Flush waits until every record appended before the call is committed
// (or failed), and returns the first commit error among them. It waits
// for Start if the writer has not started; ctx bounds the wait.
func (w *ArchiveWriter) Flush(ctx context.Context) error {
	w.mu.Lock()
	wt := w.addWaiter()
	w.mu.Unlock()
	return w.wait(ctx, wt, nil)
}

// Stop refuses further records (Append fails with ErrClosed), commits the
// queued ones and ends the goroutine, starting it first if Start was never
// called. It returns the first commit error among the records still
// queued, or ctx's error if ctx ends first (the goroutine then finishes
// the queue on its own; call Stop again to wait for it). It is idempotent.
func (w *ArchiveWriter) Stop(ctx context.Context) error {
	w.Start(context.WithoutCancel(ctx))
	w.mu.Lock()
	wt := w.addWaiter()
	w.closeLocked()
	w.mu.Unlock()
	return w.wait(ctx, wt, w.exited)
}

// addWaiter registers a waiter for the records appended so far; nil if
// they are all finished. mu is held.
func (w *ArchiveWriter) addWaiter() *flushWaiter {
	if w.finished >= w.appended {
		return nil
	}
	wt := &flushWaiter{from: w.finished, target: w.appended, ch: make(chan struct{})}
	w.waiters = append(w.waiters, wt)
	return wt
}

// wait waits for wt (if any) and then for also (if not nil).
func (w *ArchiveWriter) wait(ctx context.Context, wt *flushWaiter, also <-chan struct{}) error {
	if wt != nil {
		select {
		case w.kick <- struct{}{}:
		default:
		}
		select {
		case <-wt.ch:
		case <-ctx.Done():
			w.mu.Lock()
			w.waiters = slices.DeleteFunc(w.waiters, func(x *flushWaiter) bool { return x == wt })
			w.mu.Unlock()
			return fmt.Errorf("store: archive writer: %w", ctx.Err())
		}
	}
	if also != nil {
		select {
		case <-also:
		case <-ctx.Done():
			return fmt.Errorf("store: archive writer: %w", ctx.Err())
		}
	}
	if wt != nil && wt.err != nil {
		return fmt.Errorf("store: archive writer: %w", wt.err)
	}
	return nil
}

// madeRoom wakes the AppendWait callers waiting for room in the queue;
// mu is held.
func (w *ArchiveWriter) madeRoom() {
	close(w.room)
	w.room = make(chan struct{})
}

// closeLocked stops accepting records and closes the queue; mu is held.
func (w *ArchiveWriter) closeLocked() {
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
}

// run is the writer goroutine: it commits batches until the queue is
// closed and drained.
func (w *ArchiveWriter) run(ctx context.Context) {
	defer close(w.exited)
	defer w.stopBackground()
	w.log.Info("archive writer started", "max_batch", w.maxBatch, "max_delay", w.maxDelay, "queue", cap(w.queue),
		"background", w.bg != nil)
	stopping := ctx.Done()
	// Grown as batches need: at low rates a batch is a few hundred
	// records, and the slice is scanned by every collection.
	batch := make([]pendingRecord, 0, min(w.maxBatch, 256))
	var timer, indexTimer *time.Timer
	for {
		batch = batch[:0]
		open := true
		// Wait for the first record, indexing the journal when its
		// records are due.
		for len(batch) == 0 && open {
			var due <-chan time.Time
			if w.journaled > 0 {
				d := time.Until(w.journaledAt.Add(w.indexDelay))
				if d <= 0 {
					w.index(false)
					continue
				}
				if indexTimer == nil {
					indexTimer = time.NewTimer(d)
				} else {
					indexTimer.Reset(d)
				}
				due = indexTimer.C
			}
			select {
			case p, ok := <-w.queue:
				if ok {
					batch = append(batch, p)
				} else {
					open = false
				}
			case <-due:
				w.index(false)
			case <-stopping:
				stopping = nil
				w.mu.Lock()
				w.closeLocked()
				w.mu.Unlock()
			}
		}
		// Take what is already queued, then wait up to maxDelay for more,
		// unless a Flush or Stop is waiting.
		w.mu.Lock()
		urgent := len(w.waiters) > 0
		w.mu.Unlock()
		var expired <-chan time.Time
		if w.maxDelay > 0 && !urgent {
			if timer == nil {
				timer = time.NewTimer(w.maxDelay)
			} else {
				timer.Reset(w.maxDelay)
			}
			expired = timer.C
		}
	collect:
		for open && len(batch) < w.maxBatch {
			took := len(batch)
			for drained := false; !drained && len(batch) < w.maxBatch; {
				select {
				case p, ok := <-w.queue:
					if !ok {
						open = false
						break collect
					}
					batch = append(batch, p)
				default:
					drained = true
				}
			}
			if len(batch) > took {
				// Senders may wait for room (AppendWait) that this
				// drain made: not until the batch is complete.
				w.mu.Lock()
				w.madeRoom()
				w.mu.Unlock()
			}
			if expired == nil || len(batch) >= w.maxBatch {
				break
			}
			// Under mu, which Append holds from its send to its look at
			// wakeAt: records queued from here on see wakeAt, those
			// queued since the drain are counted now.
			wakeAt := min(w.maxBatch-len(batch), max(1, cap(w.queue)/2))
			w.mu.Lock()
			w.wakeAt = wakeAt
			queued := len(w.queue)
			w.mu.Unlock()
			if queued >= wakeAt {
				continue
			}
			select {
			case <-w.wake:
			case <-expired:
				// One last drain: what was queued while it slept
				// belongs in this batch.
				expired = nil
			case <-w.kick:
				timer.Stop()
				expired = nil
			case <-stopping:
				stopping = nil
				w.mu.Lock()
				w.closeLocked()
				w.mu.Unlock()
			}
		}
		if timer != nil && expired != nil {
			timer.Stop()
		}
		// The batch left the queue: wake those waiting for room.
		w.mu.Lock()
		w.wakeAt = math.MaxInt
		w.madeRoom()
		urgent = len(w.waiters) > 0
		w.mu.Unlock()
		if len(batch) > 0 {
			keepsUp := keepsUp(len(batch), w.maxBatch, len(w.queue), urgent)
			bg := keepsUp && w.mayIdle()
			// Past a full batch journaled (passes failing, or behind),
			// commit with the indexes: the journal stays bounded and
			// an indexing failure reaches the records' callbacks.
			toJournal := keepsUp && w.indexDelay > 0 && w.journaled < w.maxBatch
			w.commit(batch, toJournal, bg)
			// Drop the committed records' references for the collector.
			clear(batch)
			// A pass due by age runs when the loop next waits. After a
			// commit with the indexes none: it indexed the journal's
			// records with the batch, or failed to just now.
			if toJournal && w.journaled >= w.maxBatch {
				w.index(false)
			}
		}
		if !open {
			// Leave the journal empty on a clean stop, at normal
			// priority: Stop waits for it.
			if w.journaled > 0 {
				w.index(true)
			}
			w.log.Info("archive writer stopped")
			return
		}
	}
}

// keepsUp reports whether the writer keeps up with a batch of n records:
// the batch and the records queued behind it are each less than a
// quarter of a full batch, and nobody waits for it (urgent). Such a batch
// goes to the journal, and to the idle-priority committer (mayIdle).
func keepsUp(n, maxBatch, queued int, urgent bool) bool {
	return n < maxBatch/4 && queued < maxBatch/4 && !urgent
}

// mayIdle reports whether a commit may go to the idle-priority committer:
// there is one, no starvation was seen lately (normalUntil) and the
// machine had idle CPU time since the last look.
func (w *ArchiveWriter) mayIdle() bool {
	return w.bg != nil && !time.Now().Before(w.normalUntil) && w.idleCPU.hasIdleCPU()
}

// commit stores batch in one transaction, in the journal if toJournal,
// on the idle-priority committer if background, then reports the outcome
// to the done callbacks and to Flush waiters.
func (w *ArchiveWriter) commit(batch []pendingRecord, toJournal, background bool) {
	entries := make([]archiveEntry, len(batch))
	for i, p := range batch {
		entries[i] = p.entry
	}
	err := w.runJob(func() error { return w.store(entries, toJournal) }, len(entries), false, background)
	if err != nil {
		err = fmt.Errorf("store: archive %d messages: %w", len(batch), err)
		w.log.Error("archive commit failed", "records", len(batch), "err", err)
	}
	if !w.a.journalPending() {
		// Indexed (by this commit, a pass or a read): count afresh.
		w.journaled = 0
	}
	if err == nil && toJournal {
		// Before Flush waiters learn of the commit: their reads must
		// index the journal first.
		w.a.noteJournaled(entries[len(entries)-1].id)
		if w.journaled == 0 {
			w.journaledAt = time.Now()
		}
		w.journaled += len(entries)
	}
	for _, p := range batch {
		if p.done != nil {
			p.done(err)
		}
	}
	lo, hi := batch[0].seq, batch[len(batch)-1].seq
	w.mu.Lock()
	w.finished = hi
	w.waiters = slices.DeleteFunc(w.waiters, func(wt *flushWaiter) bool {
		if err != nil && wt.err == nil && lo <= wt.target && hi > wt.from {
			wt.err = err
		}
		if w.finished >= wt.target {
			close(wt.ch)
			return true
		}
		return false
	})
	w.mu.Unlock()
}

// store commits entries in one transaction: in the journal if
// toJournal, else with their indexes, in one put with the journal's
// records (drainJournal). Queued records are committed even when the
// writer's context has ended: they were accepted.
func (w *ArchiveWriter) store(entries []archiveEntry, toJournal bool) error {
	return w.a.db.update(context.Background(), func(tx *bbolt.Tx) error {
		if toJournal {
			return journal(tx, entries)
		}
		at, err := openArchiveTx(tx)
		if err != nil {
			return err
		}
		return w.a.drainJournal(tx, at, w.log, entries)
	})
}

// index runs one pass over the journal: it indexes every journaled
// record in one transaction, on the idle-priority committer when it may
// (never when stopping: Stop waits for it). A failed pass is logged and
// retried after IndexDelay, or with the next commit once a full batch is
// journaled (which then goes past the journal, so that the failure
// reaches its records' callbacks).
func (w *ArchiveWriter) index(stopping bool) {
	if !w.a.journalPending() {
		w.journaled = 0
		return
	}
	pass := func() error { return w.a.indexJournal(context.Background()) }
	bg := !stopping && w.a.readersWaiting.Load() == 0 && w.mayIdle()
	if err := w.runJob(pass, w.journaled, true, bg); err != nil {
		w.log.Error("archive journal indexing failed; retrying later", "records", w.journaled, "err", err)
		w.journaledAt = time.Now()
		return
	}
	w.journaled = 0
}

// runJob runs a commit (job, of records records; an index pass if pass)
// on the idle-priority committer if background, else on this goroutine.
func (w *ArchiveWriter) runJob(job func() error, records int, pass, background bool) error {
	if background {
		return w.storeInBackground(job, records, pass)
	}
	return job()
}

// startBackground starts the idle-priority committer (commitLoop).
// Without support for the priority the writer commits everything itself.
func (w *ArchiveWriter) startBackground() {
	jobs := make(chan func() error)
	ready := make(chan error, 1)
	exited := make(chan struct{})
	var thread int
	onOwnThread(func() { w.commitLoop(&thread, jobs, ready, exited) })
	if err := <-ready; err != nil {
		<-exited
		w.log.Info("archive writer: committing at normal priority", "err", err)
		return
	}
	w.bg, w.bgResult, w.bgExited, w.bgThread = jobs, make(chan error, 1), exited, thread
}

// commitLoop is the idle-priority committer, on a thread locked by its
// goroutine (not the main thread) and never unlocked: the thread must not
// serve other goroutines at idle priority, and ends when this goroutine
// returns. It sets *thread, checks that the thread's priority can be
// raised again (see storeInBackground), and reports on ready; then it
// commits jobs until the channel closes.
func (w *ArchiveWriter) commitLoop(thread *int, jobs <-chan func() error, ready chan<- error, exited chan<- struct{}) {
	defer close(exited)
	*thread = threadID()
	if err := probeIdlePriority(*thread); err != nil {
		ready <- err
		return
	}
	if err := setThreadIdlePriority(*thread); err != nil {
		ready <- err
		return
	}
	ready <- nil
	for job := range jobs {
		w.bgResult <- job()
	}
}

// stopBackground ends the idle-priority committer, if any.
func (w *ArchiveWriter) stopBackground() {
	if w.bg != nil {
		close(w.bg)
		<-w.bgExited
		w.bg = nil
	}
}

// storeInBackground runs a commit (job, of records records) on the
// idle-priority committer and waits for it, with a Go processor lent
// meanwhile (w.loan). A Flush or Stop arriving
// meanwhile raises the commit's thread to normal priority: someone waits
// for it. So does starvation:
// every boostAfter the writer checks how long the committer waited for a
// CPU since the last check (threadStarved), and past the limit the
// machine lacks idle CPU (the commit holds bbolt's write lock, and a Go
// processor that the collector's stop-the-world phases would wait for);
// the next starvedFor of commits then run at normal priority. An index
// pass is different: its records are durable in the journal and it is
// long (tens of milliseconds), so short waits for idle CPU are fine; it
// alone is raised once appended records pile up behind it (a quarter of
// the queue), a read waits to index the journal (Archive.readersWaiting),
// or it starved over its first passPatience or longer. A raised thread is
// given idle priority again before the next job; if that fails the
// committer ends and the writer commits everything itself from then on.
func (w *ArchiveWriter) storeInBackground(job func() error, records int, pass bool) error {
	// The committer waits for this job: no commit runs on its thread.
	if w.bgRaised {
		if err := w.lowerPriority(w.bgThread); err != nil {
			// It would fail again for every commit: the committer
			// (its thread at normal priority) ends, and the writer
			// commits everything itself from now on.
			w.log.Warn("archive writer: cannot lower the committer's priority again; committing at normal priority from now on", "err", err)
			w.stopBackground()
			return job()
		}
		w.bgRaised = false
	}
	defer w.loan.borrow()()
	last := sampleThread(w.bgThread)
	start := last
	w.bg <- job
	tick := time.NewTicker(w.boostAfter)
	defer tick.Stop()
	kick, check := w.kick, tick.C
	for {
		select {
		case err := <-w.bgResult:
			return err
		case <-kick:
			// Taken from the run loop, which sees the waiter itself.
			// Raised: nothing left to check.
			kick, check = nil, nil
			w.raise()
			continue
		case <-check:
		}
		if pass {
			// Raised (this pass only) when records pile up behind it,
			// a read waits for it, or it starved for passPatience.
			now := sampleThread(w.bgThread)
			if len(w.queue) >= cap(w.queue)/4 || w.a.readersWaiting.Load() > 0 ||
				now.at.Sub(start.at) >= passPatience && w.threadStarved(start, now) {
				kick, check = nil, nil
				w.raise()
			}
			continue
		}
		now := sampleThread(w.bgThread)
		if !w.threadStarved(last, now) {
			last = now
			continue
		}
		w.raise()
		err := <-w.bgResult
		w.normalUntil = time.Now().Add(starvedFor)
		w.log.Warn("archive writer: a background commit lacked idle CPU; raised to normal priority, as are the next commits for a while",
			"records", records, "normal_for", starvedFor)
		return err
	}
}

// threadSample is what the writer reads of the committer's thread.
type threadSample struct {
	at        time.Time
	cpu       time.Duration // CPU time used
	runDelay  time.Duration // time waited for a CPU
	haveDelay bool          // runDelay is known
}

func sampleThread(tid int) threadSample {
	d, ok := threadRunDelay(tid)
	return threadSample{at: time.Now(), cpu: threadCPUTime(tid), runDelay: d, haveDelay: ok}
}

// threadStarved reports whether the committer lacked CPU between two
// samples: it waited on a run queue more than maxWaitShare of the time
// or, where run delays are unknown, ran less than minShare of it (which
// also counts disk waits).
func (w *ArchiveWriter) threadStarved(a, b threadSample) bool {
	elapsed := float64(b.at.Sub(a.at))
	if elapsed <= 0 {
		return false
	}
	if a.haveDelay && b.haveDelay {
		return float64(b.runDelay-a.runDelay)/elapsed > w.maxWaitShare
	}
	return float64(b.cpu-a.cpu)/elapsed < w.minShare
}

// raise gives the committer's thread normal priority (once per commit).
func (w *ArchiveWriter) raise() {
	if w.bgRaised {
		return
	}
	w.bgRaised = true
	if err := setNormalPriority(w.bgThread); err != nil {
		w.log.Warn("archive writer: could not raise a background commit's priority", "err", err)
	}
}
