package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.etcd.io/bbolt"
)

// Defaults for WriterOptions.
const (
	DefaultWriterMaxBatch  = 8192
	DefaultWriterMaxDelay  = 10 * time.Millisecond
	DefaultWriterQueueSize = 8192
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
	// Logger receives commit failures (Error) and lifecycle messages.
	// Nil uses the DB's logger.
	Logger *slog.Logger
}

// ArchiveWriter is the single writer of the message archive (DESIGN §4–§5):
// Append assigns an id at once and queues the record; one goroutine
// commits queued records in batches ("group commit"), up to MaxBatch
// records or MaxDelay per bbolt transaction, together with their
// conversation updates. Create it with Archive.NewWriter, run it with
// Start, and Stop it before closing the DB. Use one writer per DB: ids are
// unique in any case, but conversation state assumes records of one
// conversation commit in id order. It is safe for concurrent use.
type ArchiveWriter struct {
	a         *Archive
	maxBatch  int
	maxDelay  time.Duration
	log       *slog.Logger
	startOnce sync.Once
	exited    chan struct{} // closed when the goroutine has drained the queue and returned

	// queue holds appended records in id order. Capacity QueueSize;
	// Append checks for room under mu and fails with ErrBusy when it is
	// full, so a send never blocks. Closed (under mu) by close.
	queue chan pendingRecord
	// kick (capacity 1) asks the goroutine to commit the batch it is
	// collecting now rather than after MaxDelay. A full kick is enough.
	kick chan struct{}

	mu       sync.Mutex // guards the fields below; held while assigning an id and queueing
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
	log := opts.Logger
	if log == nil {
		log = a.db.log
	}
	return &ArchiveWriter{
		a:        a,
		maxBatch: opts.MaxBatch,
		maxDelay: opts.MaxDelay,
		log:      log,
		exited:   make(chan struct{}),
		queue:    make(chan pendingRecord, opts.QueueSize),
		kick:     make(chan struct{}, 1),
		room:     make(chan struct{}),
	}
}

// Start runs the writer's goroutine. Later calls do nothing. When ctx ends
// the writer stops as if Stop had been called: it refuses new records,
// commits the queued ones and exits (Stop still waits for that).
func (w *ArchiveWriter) Start(ctx context.Context) {
	w.startOnce.Do(func() {
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
		return 0, fmt.Errorf("store: archive message for %s: %d records pending: %w", rec.Archive, cap(w.queue), ErrBusy)
	}
	// Only senders hold mu, so the room checked above is still there, and
	// ids enter the queue in increasing order.
	entry.id = w.a.nextID(time.Now())
	w.appended++
	w.queue <- pendingRecord{seq: w.appended, entry: entry, done: done}
	return entry.id, nil
}

// MaxAppendWait bounds how long archiving may hold a sender back when the
// writer's queue is full (the disk does not keep up): the sender is slowed
// rather than its message left out; only past this bound (a disk that has
// stopped) is a message delivered unarchived, and logged. Callers of
// AppendWait put it on their context.
const MaxAppendWait = 10 * time.Second

// AppendWait is Append that waits, until ctx ends, for room in a full
// queue instead of failing with ErrBusy: archiving slows the callers down
// rather than losing records when the disk cannot keep up.
func (w *ArchiveWriter) AppendWait(ctx context.Context, rec ArchiveRecord, done func(error)) (uint64, error) {
	for {
		// Take the wake-up channel before trying, so that room made
		// after a failed try is not missed.
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
	w.log.Info("archive writer started", "max_batch", w.maxBatch, "max_delay", w.maxDelay, "queue", cap(w.queue))
	stopping := ctx.Done()
	// Grown as batches need: at low rates a batch is a few hundred
	// records, and the slice is scanned by every collection.
	batch := make([]pendingRecord, 0, min(w.maxBatch, 256))
	var timer *time.Timer
	for {
		batch = batch[:0]
		open := true
		// Wait for the first record.
		for len(batch) == 0 && open {
			select {
			case p, ok := <-w.queue:
				if ok {
					batch = append(batch, p)
				} else {
					open = false
				}
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
			select {
			case p, ok := <-w.queue:
				if !ok {
					open = false
					break collect
				}
				batch = append(batch, p)
				continue
			default:
			}
			if expired == nil {
				break
			}
			select {
			case p, ok := <-w.queue:
				if !ok {
					open = false
					break collect
				}
				batch = append(batch, p)
			case <-expired:
				expired = nil
				break collect
			case <-w.kick:
				break collect
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
		close(w.room)
		w.room = make(chan struct{})
		w.mu.Unlock()
		if len(batch) > 0 {
			w.commit(batch)
			// Drop the committed records' references for the collector.
			clear(batch)
		}
		if !open {
			w.log.Info("archive writer stopped")
			return
		}
	}
}

// commit stores batch in one transaction, then reports the outcome to the
// done callbacks and to Flush waiters.
func (w *ArchiveWriter) commit(batch []pendingRecord) {
	entries := make([]archiveEntry, len(batch))
	for i, p := range batch {
		entries[i] = p.entry
	}
	// Queued records are committed even when the writer's context has
	// ended: they were accepted.
	err := w.a.db.update(context.Background(), func(tx *bbolt.Tx) error {
		at, err := openArchiveTx(tx)
		if err != nil {
			return err
		}
		return at.put(tx, w.log, entries)
	})
	if err != nil {
		err = fmt.Errorf("store: archive %d messages: %w", len(batch), err)
		w.log.Error("archive commit failed", "records", len(batch), "err", err)
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
