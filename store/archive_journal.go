package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"go.etcd.io/bbolt"
)

// The archive journal (bucket mam_journal) takes the writer's small
// batches: be64(id) → journalCodecV1 ‖ bytes(archive) ‖ the record's mam
// value. A commit there is durable like any other but writes a few pages
// at the end of one bucket, where indexing a batch writes each archive's
// tail pages in mam and mam_with and its entries in conv and mam_count: a
// commit's cost grows with the archives it touches, not with its records,
// so at a steady rate most of it went to rewriting the same pages many
// times a second. The journal is indexed (applied to those buckets and
// emptied) in one transaction per pass: by the writer once its records
// are IndexDelay old or a full batch, and first thing in every other
// transaction that writes the archive (drainJournal), so that records
// stay in id order per archive; a reader applies it first too
// (Archive.catchUp), so nothing reads a record that is only journaled
// unless that indexing fails (the read then serves the indexed records).
// Open applies what a crash left (logging a failure, as a read does). A
// read-only DB does not: its readers see the indexed records only (Open
// logs how many are not).
const journalCodecV1 = 1

// encodeJournalEntry appends e's journal value to dst.
func encodeJournalEntry(dst []byte, e archiveEntry) []byte {
	dst = append(dst, journalCodecV1)
	dst = appendString(dst, e.archive)
	return append(dst, e.val...)
}

// decodeJournalEntry decodes a journal key and value into an entry whose
// bytes do not alias them.
func decodeJournalEntry(k, v []byte) (archiveEntry, error) {
	id, err := parseIDSuffix(k, 0)
	if err != nil {
		return archiveEntry{}, fmt.Errorf("archive journal: %w", err)
	}
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != journalCodecV1 {
		return archiveEntry{}, fmt.Errorf("%w: archive journal codec version %d unknown", ErrCorrupt, ver)
	}
	archive := d.string()
	if d.err != nil {
		return archiveEntry{}, fmt.Errorf("archive journal entry %d: %w", id, d.err)
	}
	rec, err := decodeArchiveHeader(d.buf)
	if err != nil {
		return archiveEntry{}, fmt.Errorf("archive journal entry %d: %w", id, err)
	}
	// What ArchiveRecord.validate refuses is corruption here, and must
	// be dropped: a key longer than a JID could exceed bbolt's MaxKeySize
	// and fail the indexing, which would then fail every later archive
	// write.
	rec.Archive = archive
	if err := rec.validate(); err != nil {
		return archiveEntry{}, fmt.Errorf("%w: archive journal entry %d: %v", ErrCorrupt, id, err)
	}
	return archiveEntry{
		id: id, archive: archive, with: rec.With, dir: rec.Direction, flags: rec.Flags,
		val: bytes.Clone(d.buf),
	}, nil
}

// journal stores entries in the journal: one writer batch.
func journal(tx *bbolt.Tx, entries []archiveEntry) error {
	b, err := bucket(tx, bucketMAMJournal)
	if err != nil {
		return err
	}
	b.FillPercent = appendFill
	for _, e := range entries {
		// bbolt keeps the value until the commit: no shared buffer. A
		// JID's length prefix takes at most 2 bytes (≤ 3,071 bytes).
		v := encodeJournalEntry(make([]byte, 0, 3+len(e.archive)+len(e.val)), e)
		if err := b.Put(be64(e.id), v); err != nil {
			return err
		}
	}
	return nil
}

// openWrite opens the archive buckets for a transaction that writes them,
// after indexing the journal in it (drainJournal).
func (a *Archive) openWrite(tx *bbolt.Tx) (archiveTx, error) {
	at, err := openArchiveTx(tx)
	if err != nil {
		return archiveTx{}, err
	}
	if err := a.drainJournal(tx, at, a.db.log, nil); err != nil {
		return archiveTx{}, err
	}
	return at, nil
}

// drainJournal indexes every journaled record and empties the journal,
// storing batch (a writer batch, or nil) with its indexes in the same
// put: the batch's ids follow the journal's (the writer queues records
// in id order, and Open starts ids past the journal's), so the entries
// stay in id order, as put wants them. A journal entry that does not
// decode is logged and dropped: one bad value must not fail every later
// archive write. Once tx commits, every record journaled before tx
// began is known indexed (Archive.indexedHigh). The journal never holds
// much more than a batch (see ArchiveWriter.run), so one transaction
// takes it all. Both it and put log to log.
func (a *Archive) drainJournal(tx *bbolt.Tx, at archiveTx, log *slog.Logger, batch []archiveEntry) error {
	j, err := bucket(tx, bucketMAMJournal)
	if err != nil {
		return err
	}
	// Under the write lock: every journal commit whose id is in
	// journalHigh already finished (the writer stores it after the
	// commit), so this transaction sees it.
	high := a.journalHigh.Load()
	var entries []archiveEntry
	c := j.Cursor()
	k, v := c.First()
	empty := k == nil
	for ; k != nil; k, v = c.Next() {
		e, err := decodeJournalEntry(k, v)
		if err != nil {
			log.Error("store: dropping a corrupt archive journal entry", "key", fmt.Sprintf("%x", k), "err", err)
			continue
		}
		entries = append(entries, e)
	}
	if len(entries) > 0 {
		high = max(high, entries[len(entries)-1].id)
		batch = append(entries, batch...)
	}
	if len(batch) > 0 {
		if err := at.put(tx, log, batch); err != nil {
			return err
		}
	}
	if !empty {
		// Dropping the bucket frees its pages at once, where deleting
		// key by key seeks for each and rebalances.
		if err := tx.DeleteBucket([]byte(bucketMAMJournal)); err != nil {
			return fmt.Errorf("empty archive journal: %w", err)
		}
		if _, err := tx.CreateBucket([]byte(bucketMAMJournal)); err != nil {
			return fmt.Errorf("empty archive journal: %w", err)
		}
	}
	if high > 0 {
		tx.OnCommit(func() { a.noteIndexed(high) })
	}
	return nil
}

// noteIndexed records that every journaled record up to id is indexed.
func (a *Archive) noteIndexed(id uint64) { storeMax(&a.indexedHigh, id) }

// noteJournaled records that the journal holds records up to id.
func (a *Archive) noteJournaled(id uint64) { storeMax(&a.journalHigh, id) }

// storeMax raises *p to v if v is higher.
func storeMax(p *atomic.Uint64, v uint64) {
	for {
		cur := p.Load()
		if v <= cur || p.CompareAndSwap(cur, v) {
			return
		}
	}
}

// journalPending reports whether records may wait in the journal.
func (a *Archive) journalPending() bool {
	return a.indexedHigh.Load() < a.journalHigh.Load()
}

// catchUp indexes the journal before a read, when records wait there. A
// read-only DB cannot: it reads what is indexed. While it waits for
// bbolt's write lock it counts in readersWaiting, which raises a pass the
// writer may be running at idle priority. If indexing fails (a full
// disk, say) the read goes on with the indexed records: only ctx's end
// fails it.
func (a *Archive) catchUp(ctx context.Context) error {
	if !a.journalPending() || a.db.readOnly {
		return nil
	}
	a.readersWaiting.Add(1)
	defer a.readersWaiting.Add(-1)
	if err := a.indexJournal(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("index archive journal: %w", ctxErr)
		}
		a.db.log.Error("store: could not index the archive journal before a read; reading the indexed records only", "err", err)
	}
	return nil
}

// errNothingJournaled rolls back an indexJournal transaction that found
// the journal already indexed (by the writer or another read meanwhile):
// an empty commit would still write and sync bbolt's meta page.
var errNothingJournaled = errors.New("nothing journaled")

// indexJournal indexes the whole journal in one transaction, if it holds
// anything once the write lock is taken.
func (a *Archive) indexJournal(ctx context.Context) error {
	err := a.db.update(ctx, func(tx *bbolt.Tx) error {
		// The bucket, not journalPending: indexedHigh is raised in
		// OnCommit, which bbolt runs after releasing the write lock, so
		// a read that waited for the lock may still see records
		// pending that the transaction before it indexed.
		j, err := bucket(tx, bucketMAMJournal)
		if err != nil {
			return err
		}
		if k, _ := j.Cursor().First(); k == nil {
			// Under the write lock every journal commit noted in
			// journalHigh has finished: all of it is indexed.
			a.noteIndexed(a.journalHigh.Load())
			return errNothingJournaled
		}
		_, err = a.openWrite(tx)
		return err
	})
	if err != nil && !errors.Is(err, errNothingJournaled) {
		return fmt.Errorf("index archive journal: %w", err)
	}
	return nil
}

// loadJournal reads the newest journaled id at Open (journalHigh) and,
// unless the DB is read-only, indexes what a crash left in the journal.
func (a *Archive) loadJournal(ctx context.Context) error {
	var n int
	err := a.db.view(ctx, func(tx *bbolt.Tx) error {
		j, err := bucket(tx, bucketMAMJournal)
		if err != nil {
			return err
		}
		if k, _ := j.Cursor().Last(); k != nil {
			// A malformed key is dropped when the journal is indexed.
			if id, err := parseIDSuffix(k, 0); err == nil {
				a.noteJournaled(id)
			}
			n = j.Stats().KeyN
		}
		return nil
	})
	if err != nil || n == 0 {
		return err
	}
	if a.db.readOnly {
		a.db.log.Warn("store: archived messages not yet indexed; reads miss them until the file is opened read-write", "records", n)
		return nil
	}
	// A failure is logged, as before a read: the server still starts,
	// reads serve the indexed records, and each later write of the
	// archive retries (and fails while the entry that fails stays).
	if err := a.indexJournal(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("index archive journal: %w", ctxErr)
		}
		a.db.log.Error("store: could not index the archive journal at open; reading the indexed records only", "records", n, "err", err)
		return nil
	}
	a.db.log.Info("store: indexed the archive journal", "records", n)
	return nil
}
