package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// archiveCodecV1 is the first byte of every value in mam; convCodecV1 that
// of every value in conv; archiveLastIDCodecV1 that of the meta value
// keyArchiveLastID.
const (
	archiveCodecV1       = 1
	convCodecV1          = 1
	archiveLastIDCodecV1 = 1
)

// Direction tells whether the archive's owner received or sent a message.
type Direction uint8

// Directions. The zero value is DirIn.
const (
	// DirIn: the archive's owner received the message (for a room: a
	// message the room received from an occupant).
	DirIn Direction = iota
	// DirOut: the archive's owner sent the message.
	DirOut
)

// String returns "in" or "out".
func (d Direction) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Record flags (ArchiveRecord.Flags).
const (
	// FlagNoUnread: an incoming record that does not count as unread in
	// its conversation (a chat state, a receipt, a message the owner has
	// already seen on another device).
	FlagNoUnread uint8 = 1 << iota
)

// archiveFlagsKnown holds every defined flag bit; the codec rejects others.
const archiveFlagsKnown = FlagNoUnread

// MaxArchiveStanza is the largest stanza ArchiveWriter.Append accepts, in
// bytes (ErrInvalid above). Ingress caps stanzas well below it.
const MaxArchiveStanza = 1 << 20

// ArchiveRecord is one archived message (XEP-0313).
type ArchiveRecord struct {
	// ID is unique across the database and strictly increasing in the
	// order of ArchiveWriter.Append calls. It is the archiving time in
	// Unix microseconds (see Time), bumped by one where needed to stay
	// unique. The writer assigns it; a caller's ID is ignored.
	ID uint64
	// Archive is the owner: an account's bare JID or a room's JID.
	Archive string
	// With is the other party: a bare JID, or for rooms the occupant's
	// real bare JID or nick as given. Must not be empty.
	With string
	// Direction tells whether the owner received or sent the message.
	Direction Direction
	// Flags is a set of Flag* bits.
	Flags uint8
	// Stanza is the message as archived.
	Stanza []byte
}

// Time returns the archiving time encoded in ID, in UTC.
func (r ArchiveRecord) Time() time.Time {
	return time.UnixMicro(int64(min(r.ID, math.MaxInt64))).UTC()
}

// validate checks what Append stores (ID aside).
func (r ArchiveRecord) validate() error {
	if err := validateJID("archive", r.Archive); err != nil {
		return err
	}
	if err := validateJID("with", r.With); err != nil {
		return err
	}
	switch {
	case r.Direction > DirOut:
		return fmt.Errorf("direction %s: %w", r.Direction, ErrInvalid)
	case r.Flags&^archiveFlagsKnown != 0:
		return fmt.Errorf("unknown flags %#x: %w", r.Flags&^archiveFlagsKnown, ErrInvalid)
	case len(r.Stanza) == 0 || len(r.Stanza) > MaxArchiveStanza:
		return fmt.Errorf("stanza must be 1 to %d bytes, got %d: %w", MaxArchiveStanza, len(r.Stanza), ErrInvalid)
	}
	return nil
}

// Archive is the message archive sub-store (XEP-0313 backing store) with
// its conversation index. Records are written by an ArchiveWriter (see
// NewWriter); Archive itself reads, deletes and expires them. Get it from
// DB.Archive.
//
// Buckets: mam (lp(archive) ‖ be64(id) → record), mam_with
// (lp(archive) ‖ lp(with) ‖ be64(id), an index per conversation), mam_time
// (be64(id) ‖ lp(archive), an index in time order for expiry), conv
// (lp(archive) ‖ with → conversation state), mam_count (see
// archive_count.go) and mam_journal (records not yet in the others; see
// archive_journal.go).
type Archive struct {
	db *DB

	mu     sync.Mutex // guards lastID
	lastID uint64     // highest id handed out (or committed before Open)

	// journalHigh is the newest id committed to the journal, indexedHigh
	// the newest up to which every journaled record is indexed: records
	// wait in the journal while indexedHigh < journalHigh.
	journalHigh, indexedHigh atomic.Uint64
	// readersWaiting counts reads waiting to index the journal
	// (catchUp): the writer raises a pass they wait for.
	readersWaiting atomic.Int32
}

// loadLastID initialises the id allocator from the file: the highest id
// ever committed, or the newest record if that is higher.
func (a *Archive) loadLastID(ctx context.Context) error {
	var last uint64
	err := a.db.view(ctx, func(tx *bbolt.Tx) error {
		meta, err := bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get([]byte(keyArchiveLastID)); v != nil {
			if last, err = decodeArchiveLastID(v); err != nil {
				return err
			}
		}
		times, err := bucket(tx, bucketMAMTime)
		if err != nil {
			return err
		}
		if k, _ := times.Cursor().Last(); k != nil {
			tk, err := parseArchiveTimeKey(k)
			if err != nil {
				return err
			}
			last = max(last, tk.id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive last id: %w", err)
	}
	a.mu.Lock()
	a.lastID = max(a.lastID, last, a.journalHigh.Load())
	a.mu.Unlock()
	return nil
}

// nextID hands out the next archive id: max(now in µs, last+1).
func (a *Archive) nextID(now time.Time) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := a.lastID + 1
	if us := now.UnixMicro(); us > 0 && uint64(us) > id {
		id = uint64(us)
	}
	a.lastID = id
	return id
}

// ArchiveQuery selects records of one archive. Filters (With, Start, End,
// IDs) define the result set; the cursors AfterID and BeforeID, Max and
// Last select one page of it.
type ArchiveQuery struct {
	// Archive is the owner; required.
	Archive string
	// With restricts the result to one conversation (exact match on
	// ArchiveRecord.With); "" matches every record.
	With string
	// Start and End are inclusive time bounds; a zero time leaves that
	// side open. Records carry microseconds: Start is rounded up and End
	// down to a microsecond.
	Start, End time.Time
	// AfterID and BeforeID are exclusive cursors; 0 means none. They bound
	// the page (XEP-0059 after/before, XEP-0313 after-id/before-id) but
	// not the result set that Count and Index describe. An id is a time,
	// so a caller that wants after-id to narrow the counted set as well
	// passes Start = time.UnixMicro(id+1) instead.
	AfterID, BeforeID uint64
	// IDs, if not empty, restricts the result to these ids (in id order;
	// duplicates and unknown ids are ignored); the other filters still
	// apply.
	IDs []uint64
	// Max is the page size; the caller caps it. 0 returns no records,
	// only Complete (and Count with WantCount). Negative is invalid.
	Max int
	// Last pages backwards: the page holds the newest Max records of the
	// range (before BeforeID, if set), XEP-0059 <before/>. Records are
	// still returned oldest first.
	Last bool
	// Index, if positive, asks for the page that starts at the record of
	// that position in the result set, counting from 0 (XEP-0059 §2.5);
	// past the end the page is empty. It excludes AfterID, BeforeID and
	// Last (ErrInvalid). The position is found from the archive counters:
	// O(slots + one slot's records), see archive_count.go.
	Index int
	// WantCount fills Count and Index. It reads counters, not records:
	// O(slots on the shorter side + two slots' records) for a time range,
	// O(1) without one, O(len(IDs)) with IDs (see archive_count.go); a
	// page after a cursor costs one more lookup for its Index, O(slots +
	// one slot's records).
	WantCount bool
}

// ArchivePage is one page of an archive query.
type ArchivePage struct {
	// Records holds the page, oldest first.
	Records []ArchiveRecord
	// Complete reports that no further matching record lies beyond the
	// page in the paging direction (newer for forward pages, older for
	// Last pages) within the query's bounds.
	Complete bool
	// Count is the number of records matching the filters (cursors
	// ignored); -1 unless WantCount.
	Count int
	// Index is the position of Records[0] among them, counting from 0;
	// -1 unless WantCount and the page is not empty. For a query with
	// ArchiveQuery.Index and WantCount it is that index.
	Index int
}

// archiveBounds returns the id range [lo, hi] of the time bounds; lo > hi
// when the range is empty. Ids are at least 1.
func archiveBounds(start, end time.Time) (lo, hi uint64) {
	lo, hi = 1, math.MaxUint64
	if !start.IsZero() {
		if us := ceilMicros(start); us > 1 {
			lo = uint64(us)
		}
	}
	if !end.IsZero() {
		us := floorMicros(end)
		if us < 1 {
			return 1, 0
		}
		hi = uint64(us)
	}
	return lo, hi
}

// floorMicros returns t in Unix microseconds, rounded down and clamped to
// the int64 range.
func floorMicros(t time.Time) int64 {
	const limit = math.MaxInt64/1_000_000 - 1
	sec := t.Unix()
	switch {
	case sec > limit:
		return math.MaxInt64
	case sec < -limit:
		return math.MinInt64
	}
	return sec*1_000_000 + int64(t.Nanosecond()/1000)
}

// ceilMicros returns t in Unix microseconds, rounded up.
func ceilMicros(t time.Time) int64 {
	us := floorMicros(t)
	if t.Nanosecond()%1000 != 0 && us < math.MaxInt64 {
		us++
	}
	return us
}

func (q *ArchiveQuery) validate() error {
	if err := validateJID("archive", q.Archive); err != nil {
		return err
	}
	if q.With != "" {
		if err := validateJID("with", q.With); err != nil {
			return err
		}
	}
	if q.Max < 0 {
		return fmt.Errorf("negative page size %d: %w", q.Max, ErrInvalid)
	}
	if q.Index < 0 || q.Index > 0 && (q.Last || q.AfterID != 0 || q.BeforeID != 0) {
		return fmt.Errorf("index %d with a cursor or a last page: %w", q.Index, ErrInvalid)
	}
	return nil
}

// Query returns one page of q.Archive's records. It costs O(Max) cursor
// steps however large the archive: time bounds and cursors are id bounds,
// found with one seek. WantCount and Index add counter reads, never a pass
// over the matching records (see ArchiveQuery).
func (a *Archive) Query(ctx context.Context, q ArchiveQuery) (ArchivePage, error) {
	if err := q.validate(); err != nil {
		return ArchivePage{}, fmt.Errorf("store: query archive: %w", err)
	}
	if err := a.catchUp(ctx); err != nil {
		return ArchivePage{}, fmt.Errorf("store: query archive %s: %w", q.Archive, err)
	}
	var page ArchivePage
	err := a.db.view(ctx, func(tx *bbolt.Tx) error {
		s, err := newArchiveScan(tx, q.Archive, q.With, q.IDs)
		if err != nil {
			return err
		}
		page, err = s.query(q)
		return err
	})
	if err != nil {
		return ArchivePage{}, fmt.Errorf("store: query archive %s: %w", q.Archive, err)
	}
	return page, nil
}

// Get returns one record of archive, or ErrNotFound.
func (a *Archive) Get(ctx context.Context, archive string, id uint64) (ArchiveRecord, error) {
	if err := validateJID("archive", archive); err != nil {
		return ArchiveRecord{}, fmt.Errorf("store: get archived message: %w", err)
	}
	if err := a.catchUp(ctx); err != nil {
		return ArchiveRecord{}, fmt.Errorf("store: get archived message %d of %s: %w", id, archive, err)
	}
	var rec ArchiveRecord
	err := a.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketMAM)
		if err != nil {
			return err
		}
		v := b.Get(appendBE64(lp(archive), id))
		if v == nil {
			return ErrNotFound
		}
		rec, err = decodeArchiveRecord(v)
		rec.ID, rec.Archive = id, archive
		return err
	})
	if err != nil {
		return ArchiveRecord{}, fmt.Errorf("store: get archived message %d of %s: %w", id, archive, err)
	}
	return rec, nil
}

// DeleteWith deletes archive's conversation with with: its records and its
// conversation entry. It returns how many records it deleted; other
// conversations and archives are untouched.
func (a *Archive) DeleteWith(ctx context.Context, archive, with string) (int, error) {
	if err := validateJID("archive", archive); err != nil {
		return 0, fmt.Errorf("store: delete archived conversation: %w", err)
	}
	if err := validateJID("with", with); err != nil {
		return 0, fmt.Errorf("store: delete archived conversation: %w", err)
	}
	var n int
	err := a.db.update(ctx, func(tx *bbolt.Tx) error {
		at, err := a.openWrite(tx)
		if err != nil {
			return err
		}
		n, err = at.deleteWith(archive, with)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: delete archived conversation %s of %s: %w", with, archive, err)
	}
	return n, nil
}

// DeleteArchive deletes every record and conversation of archive and
// returns how many records it deleted.
func (a *Archive) DeleteArchive(ctx context.Context, archive string) (int, error) {
	if err := validateJID("archive", archive); err != nil {
		return 0, fmt.Errorf("store: delete archive: %w", err)
	}
	var n int
	err := a.db.update(ctx, func(tx *bbolt.Tx) error {
		at, err := a.openWrite(tx)
		if err != nil {
			return err
		}
		n, err = at.deleteArchive(archive)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: delete archive %s: %w", archive, err)
	}
	return n, nil
}

// deleteOwner removes owner's archive and conversations (the
// Users.Delete cascade).
func (a *Archive) deleteOwner(tx *bbolt.Tx, owner string) error {
	at, err := a.openWrite(tx)
	if err != nil {
		return err
	}
	_, err = at.deleteArchive(owner)
	return err
}

// ExpireBefore deletes records archived before before, oldest first across
// all archives, at most limit (> 0) in one transaction, and returns how
// many it deleted: call it again while it returns limit. It walks the
// time index from its start, so each call costs O(limit). A conversation
// whose newest record expires has no records left and is removed too.
func (a *Archive) ExpireBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("store: expire archive: limit %d: %w", limit, ErrInvalid)
	}
	// Records with id < cutoff are older than before; ids start at 1.
	cutoff := uint64(max(ceilMicros(before), 1))
	var n int
	err := a.db.update(ctx, func(tx *bbolt.Tx) error {
		at, err := a.openWrite(tx)
		if err != nil {
			return err
		}
		n, err = at.expire(cutoff, limit)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: expire archive before %s: %w", before.UTC().Format(time.RFC3339Nano), err)
	}
	return n, nil
}

// Conversation is one entry of an archive's conversation list, kept up to
// date by the writer in the transaction that archives each record.
type Conversation struct {
	// With is the other party, as in ArchiveRecord.With.
	With string
	// LastID is the id (and time) of the newest record.
	LastID uint64
	// Unread counts incoming records (without FlagNoUnread) since the
	// owner last sent a message or marked the conversation read.
	Unread int
	// ReadID is the newest id the owner marked read (XEP-0333
	// displayed), 0 if none.
	ReadID uint64
}

// Conversations returns archive's conversations, newest LastID first (ties
// by With), at most limit of them (limit <= 0: all). It reads every
// conversation entry of the archive, not the records.
func (a *Archive) Conversations(ctx context.Context, archive string, limit int) ([]Conversation, error) {
	if err := validateJID("archive", archive); err != nil {
		return nil, fmt.Errorf("store: list conversations: %w", err)
	}
	if err := a.catchUp(ctx); err != nil {
		return nil, fmt.Errorf("store: list conversations of %s: %w", archive, err)
	}
	var convs []Conversation
	err := a.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketConv)
		if err != nil {
			return err
		}
		convs = nil
		prefix := lp(archive)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			cv, err := decodeConvState(v)
			if err != nil {
				return fmt.Errorf("conversation %q: %w", k[len(prefix):], err)
			}
			convs = append(convs, cv.conversation(string(k[len(prefix):])))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list conversations of %s: %w", archive, err)
	}
	slices.SortFunc(convs, func(x, y Conversation) int {
		return cmp.Or(cmp.Compare(y.LastID, x.LastID), cmp.Compare(x.With, y.With))
	})
	if limit > 0 && len(convs) > limit {
		convs = slices.Clip(convs[:limit])
	}
	return convs, nil
}

// ArchiveSummary is what a conversation list shows of a shared archive (a
// room's) for one of its parties; see Archive.Summary.
type ArchiveSummary struct {
	// Last is the newest record not before the summary's notBefore; its
	// ID is 0 if there is none.
	Last ArchiveRecord
	// OwnLast is the id of the party's own newest record (the newest
	// with With = the party), 0 if none.
	OwnLast uint64
	// Unread counts the records newer than the party's read marker, its
	// own last record and notBefore, at most the summary's limit; More
	// reports that there are more.
	Unread int
	More   bool
}

// Summary summarises archive for the party with: the newest record with
// an id of at least notBefore, the party's own newest record, and how many
// records are newer than all of readID, that record and notBefore (other
// parties' records, since the party's own are not newer than its last),
// counted up to limit. It walks the archive's keys back from the newest,
// reading one record: O(min(unread, limit)), whatever the archive's size.
func (a *Archive) Summary(ctx context.Context, archive, with string, notBefore, readID uint64, limit int) (ArchiveSummary, error) {
	if err := validateJID("archive", archive); err != nil {
		return ArchiveSummary{}, fmt.Errorf("store: summarise archive: %w", err)
	}
	if err := validateJID("with", with); err != nil {
		return ArchiveSummary{}, fmt.Errorf("store: summarise archive: %w", err)
	}
	if err := a.catchUp(ctx); err != nil {
		return ArchiveSummary{}, fmt.Errorf("store: summarise archive %s: %w", archive, err)
	}
	var sum ArchiveSummary
	err := a.db.view(ctx, func(tx *bbolt.Tx) error {
		s, err := newArchiveScan(tx, archive, "", nil)
		if err != nil {
			return err
		}
		sum, err = s.summary(archive, with, notBefore, readID, limit)
		return err
	})
	if err != nil {
		return ArchiveSummary{}, fmt.Errorf("store: summarise archive %s for %s: %w", archive, with, err)
	}
	return sum, nil
}

// summary is Summary inside the scan's transaction.
func (s *archiveScan) summary(archive, with string, notBefore, readID uint64, limit int) (ArchiveSummary, error) {
	var sum ArchiveSummary
	if v := s.at.conv.Get(convKey(archive, with)); v != nil {
		cv, err := decodeConvState(v)
		if err != nil {
			return sum, fmt.Errorf("conversation %s: %w", with, err)
		}
		sum.OwnLast = cv.lastID
	}
	base := max(readID, sum.OwnLast, max(notBefore, 1)-1)
	err := s.each(max(notBefore, 1), math.MaxUint64, true, func(id uint64, val []byte) (bool, error) {
		if sum.Last.ID == 0 {
			rec, err := decodeArchiveRecord(val)
			if err != nil {
				return false, fmt.Errorf("record %d: %w", id, err)
			}
			rec.ID, rec.Archive = id, archive
			sum.Last = rec
		}
		if id <= base {
			return false, nil
		}
		if sum.Unread >= limit { // >=: a negative limit is 0, not unbounded
			sum.More = true
			return false, nil
		}
		sum.Unread++
		return true, nil
	})
	return sum, err
}

// MarkRead records that the owner of archive has read the conversation
// with with up to id upTo (XEP-0333 displayed): ReadID becomes
// max(ReadID, upTo) and Unread the number of incoming records (without
// FlagNoUnread) newer than that and than the owner's newest outgoing
// record. It walks the conversation backwards from its newest record, so it
// costs O(Unread). Without a conversation entry it does nothing.
func (a *Archive) MarkRead(ctx context.Context, archive, with string, upTo uint64) error {
	if err := validateJID("archive", archive); err != nil {
		return fmt.Errorf("store: mark conversation read: %w", err)
	}
	if err := validateJID("with", with); err != nil {
		return fmt.Errorf("store: mark conversation read: %w", err)
	}
	err := a.db.update(ctx, func(tx *bbolt.Tx) error {
		at, err := a.openWrite(tx)
		if err != nil {
			return err
		}
		return at.markRead(archive, with, upTo)
	})
	if err != nil {
		return fmt.Errorf("store: mark conversation %s of %s read: %w", with, archive, err)
	}
	return nil
}

// archiveTx holds the archive buckets inside one transaction, and the
// counter changes (see archive_count.go) that its record writes and
// deletions collect: every operation applies them before it returns.
type archiveTx struct {
	mam, with, times, conv, counts *bbolt.Bucket
	deltas                         *countDeltas
}

func openArchiveTx(tx *bbolt.Tx) (archiveTx, error) {
	at := archiveTx{deltas: &countDeltas{}}
	for _, p := range []struct {
		b    **bbolt.Bucket
		name string
	}{{&at.mam, bucketMAM}, {&at.with, bucketMAMWith}, {&at.times, bucketMAMTime}, {&at.conv, bucketConv}, {&at.counts, bucketMAMCount}} {
		b, err := bucket(tx, p.name)
		if err != nil {
			return archiveTx{}, err
		}
		*p.b = b
	}
	// Records, with-index and time-index keys only ever grow at the end
	// of their archive's (or the time index's) range: a page that splits
	// is not written again, so fill it (bbolt's default, half full, suits
	// random inserts). Fewer, fuller pages: a quarter less garbage and a
	// sixth less time per commit of a steady-rate batch, half the pages.
	at.mam.FillPercent, at.with.FillPercent, at.times.FillPercent = appendFill, appendFill, appendFill
	return at, nil
}

// appendFill is the bbolt fill percent for buckets written in key order.
const appendFill = 1.0

// recordKey returns lp(archive) ‖ be64(id).
func recordKey(archive string, id uint64) []byte {
	return appendRecordKey(make([]byte, 0, len(archive)+maxVarintLen+8), archive, id)
}

// appendRecordKey appends recordKey(archive, id) to dst.
func appendRecordKey(dst []byte, archive string, id uint64) []byte {
	return appendBE64(appendString(dst, archive), id)
}

// appendWithKey appends a mam_with key, withPrefix(archive, with) ‖
// be64(id), to dst.
func appendWithKey(dst []byte, archive, with string, id uint64) []byte {
	return appendBE64(appendString(appendString(dst, archive), with), id)
}

// withPrefix returns lp(archive) ‖ lp(with).
func withPrefix(archive, with string) []byte {
	return appendString(lp(archive), with)
}

// convKey returns lp(archive) ‖ with.
func convKey(archive, with string) []byte {
	return append(lp(archive), with...)
}

// archiveEntry is a record ready to store: its value already encoded.
type archiveEntry struct {
	id            uint64
	archive, with string
	dir           Direction
	flags         uint8
	val           []byte
}

func newArchiveEntry(rec ArchiveRecord) archiveEntry {
	return archiveEntry{
		id: rec.ID, archive: rec.Archive, with: rec.With, dir: rec.Direction, flags: rec.Flags,
		val: encodeArchiveRecord(nil, rec),
	}
}

// put stores entries (in id order) with their index entries, updates
// their conversations and raises the persisted last id: one writer batch,
// or the journal's records and the batch that drains them.
// A corrupt conversation state is logged and replaced, so that one bad
// value cannot fail every later batch.
//
// mam and mam_with are written in their key order (conv in that of
// mam_with, the counters as they come): bbolt seeks from the root for
// every Put, and with 200 archives interleaved in id order consecutive
// puts land in different leaves; in key order they follow one another in
// the same leaf, whose path stays in the CPU's caches (a pass of 8,000
// records: a third less time to put). The time index is in id order
// already.
func (at archiveTx) put(tx *bbolt.Tx, log *slog.Logger, entries []archiveEntry) error {
	meta, err := bucket(tx, bucketMeta)
	if err != nil {
		return err
	}
	var maxID uint64
	for _, e := range entries {
		if err := at.times.Put(archiveTimeKey(nil, archiveTime{e.id, e.archive}), []byte{}); err != nil {
			return err
		}
		at.deltas.add(e.archive, e.with, e.id, 1)
		maxID = max(maxID, e.id)
	}
	keys := newEntryKeys(entries, func(dst []byte, e *archiveEntry) []byte {
		return appendRecordKey(dst, e.archive, e.id)
	})
	for _, k := range keys.order {
		if err := at.mam.Put(keys.key(k), entries[k.entry].val); err != nil {
			return err
		}
	}
	// With-index keys sort by conversation, then id: each group of keys
	// (one prefix, lp(archive) ‖ lp(with)) is one conversation's records,
	// in id order, for its state.
	keys = newEntryKeys(entries, func(dst []byte, e *archiveEntry) []byte {
		return appendWithKey(dst, e.archive, e.with, e.id)
	})
	for g := range keys.groups() {
		group := keys.group(g)
		first := &entries[group[0].entry]
		ck := convKey(first.archive, first.with)
		var cv convState
		if v := at.conv.Get(ck); v != nil {
			if cv, err = decodeConvState(v); err != nil {
				log.Error("store: replacing corrupt conversation state", "jid", first.archive, "with", first.with, "err", err)
				cv = convState{}
			}
		}
		for _, k := range group {
			if err := at.with.Put(keys.key(k), []byte{}); err != nil {
				return err
			}
			e := &entries[k.entry]
			cv.lastID = max(cv.lastID, e.id)
			switch {
			case e.dir == DirOut:
				cv.unread = 0
			case e.flags&FlagNoUnread == 0 && cv.unread < math.MaxUint32:
				cv.unread++
			}
		}
		if err := at.conv.Put(ck, encodeConvState(nil, cv)); err != nil {
			return err
		}
	}
	if err := at.deltas.apply(at.counts, log); err != nil {
		return err
	}
	var last uint64
	if v := meta.Get([]byte(keyArchiveLastID)); v != nil {
		// A corrupt value is replaced: the records themselves (mam_time)
		// also bound the next id at Open.
		last, _ = decodeArchiveLastID(v)
	}
	if maxID > last {
		return meta.Put([]byte(keyArchiveLastID), encodeArchiveLastID(nil, maxID))
	}
	return nil
}

// entryKeys is one key per entry, built into one buffer, and their
// order. Keys with the same prefix (see newEntryKeys) form a group:
// group g is order[starts[g]:starts[g+1]].
type entryKeys struct {
	buf    []byte
	order  []entryKey
	starts []int
}

// entryKey is entry's key: buf[start:end].
type entryKey struct {
	start, end, entry int
}

func (s entryKeys) key(k entryKey) []byte { return s.buf[k.start:k.end:k.end] }

// groups is the number of groups, in key order.
func (s entryKeys) groups() int { return len(s.starts) - 1 }

// group returns group g's keys, in key order.
func (s entryKeys) group(g int) []entryKey { return s.order[s.starts[g]:s.starts[g+1]] }

// newEntryKeys builds each entry's key with appendKey, into one buffer,
// and sorts them. Every key is a prefix (the archive, or the
// archive and the correspondent) ‖ be64(id), and a batch has many records
// per prefix: the keys are grouped by prefix, the few prefixes sorted, and
// a group sorted by id only when its ids do not already ascend (a batch's
// ids ascend in append order). This costs a map lookup per key where
// comparing whole keys cost a dozen comparisons. appendKey must append
// such a key, and no prefix may be a proper prefix of another (each part
// is length-prefixed, as appendString writes it): otherwise sorting by
// prefix first is not sorting by key. The keys of one prefix are a group
// of the result (entryKeys.group), the groups in key order.
func newEntryKeys(entries []archiveEntry, appendKey func(dst []byte, e *archiveEntry) []byte) entryKeys {
	s := entryKeys{order: make([]entryKey, len(entries))}
	keys := make([]entryKey, len(entries))
	groupOf := make([]int32, len(entries))
	groups := make(map[string]int32, min(len(entries), 256))
	var prefixes []string
	for i := range entries {
		start := len(s.buf)
		s.buf = appendKey(s.buf, &entries[i])
		if i == 0 {
			// Keys of one batch are mostly about as long as each other;
			// a long first one (a JID can take 3 KiB) must not size the
			// buffer for all: longer keys grow it as appends do.
			s.buf = slices.Grow(s.buf, min(len(s.buf), 96)*(len(entries)+len(entries)/4))
		}
		keys[i] = entryKey{start: start, end: len(s.buf), entry: i}
		p := s.buf[start : len(s.buf)-8]
		g, ok := groups[string(p)]
		if !ok {
			g = int32(len(prefixes))
			prefixes = append(prefixes, string(p))
			groups[prefixes[g]] = g
		}
		groupOf[i] = g
	}
	// rank[g] is group g's place among the sorted prefixes; start[r] is
	// where the group of rank r begins in s.order.
	byPrefix := make([]int32, len(prefixes))
	for g := range byPrefix {
		byPrefix[g] = int32(g)
	}
	slices.SortFunc(byPrefix, func(a, b int32) int { return strings.Compare(prefixes[a], prefixes[b]) })
	rank := make([]int32, len(prefixes))
	for r, g := range byPrefix {
		rank[g] = int32(r)
	}
	start := make([]int, len(prefixes)+1)
	for _, g := range groupOf {
		start[rank[g]+1]++
	}
	for r := 1; r < len(start); r++ {
		start[r] += start[r-1]
	}
	next := slices.Clone(start[:len(prefixes)])
	for i, g := range groupOf {
		r := rank[g]
		s.order[next[r]] = keys[i]
		next[r]++
	}
	s.starts = start
	for r := range prefixes {
		group := s.group(r)
		// Within a group the prefix is the same: be64(id) orders.
		byID := func(a, b entryKey) int { return cmp.Compare(entries[a.entry].id, entries[b.entry].id) }
		if !slices.IsSortedFunc(group, byID) {
			slices.SortFunc(group, byID)
		}
	}
	return s
}

// deleteRecord deletes one record and its index entries, and counts it
// out (at.deltas). with is the record's With.
func (at archiveTx) deleteRecord(archive, with string, id uint64) error {
	if err := at.mam.Delete(recordKey(archive, id)); err != nil {
		return err
	}
	at.deltas.add(archive, with, id, -1)
	if err := at.with.Delete(appendWithKey(nil, archive, with, id)); err != nil {
		return err
	}
	return at.times.Delete(archiveTimeKey(nil, archiveTime{id, archive}))
}

func (at archiveTx) deleteWith(archive, with string) (int, error) {
	prefix := withPrefix(archive, with)
	var ids []uint64
	c := at.with.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id, err := parseIDSuffix(k, len(prefix))
		if err != nil {
			return 0, err
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if err := at.deleteRecord(archive, with, id); err != nil {
			return 0, err
		}
	}
	if err := at.deltas.apply(at.counts, nil); err != nil {
		return 0, err
	}
	return len(ids), at.conv.Delete(convKey(archive, with))
}

func (at archiveTx) deleteArchive(archive string) (int, error) {
	prefix := lp(archive)
	var ids []uint64
	c := at.mam.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id, err := parseIDSuffix(k, len(prefix))
		if err != nil {
			return 0, err
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if err := at.mam.Delete(recordKey(archive, id)); err != nil {
			return 0, err
		}
		if err := at.times.Delete(archiveTimeKey(nil, archiveTime{id, archive})); err != nil {
			return 0, err
		}
	}
	// Every with-index, conversation and counter key of the archive
	// starts with lp(archive).
	for _, b := range []*bbolt.Bucket{at.with, at.conv, at.counts} {
		if err := deletePrefix(b, prefix); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

func (at archiveTx) expire(cutoff uint64, limit int) (int, error) {
	var keys []archiveTime
	c := at.times.Cursor()
	for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
		tk, err := parseArchiveTimeKey(k)
		if err != nil {
			return 0, err
		}
		if tk.id >= cutoff {
			break
		}
		keys = append(keys, tk)
	}
	if err := at.expireRecords(keys); err != nil {
		return 0, err
	}
	return len(keys), nil
}

// expireRecords deletes the records of an expiry walk. Expiry runs in id
// order: once a conversation's newest record goes, all of its older ones
// have gone too, and so does its conversation entry.
func (at archiveTx) expireRecords(keys []archiveTime) error {
	for _, tk := range keys {
		v := at.mam.Get(recordKey(tk.archive, tk.id))
		if v == nil {
			return fmt.Errorf("%w: time index names missing record %d of %s", ErrCorrupt, tk.id, tk.archive)
		}
		rec, err := decodeArchiveRecord(v)
		if err != nil {
			return fmt.Errorf("record %d of %s: %w", tk.id, tk.archive, err)
		}
		if err := at.deleteRecord(tk.archive, rec.With, tk.id); err != nil {
			return err
		}
		ck := convKey(tk.archive, rec.With)
		if v := at.conv.Get(ck); v != nil {
			if cv, err := decodeConvState(v); err != nil || cv.lastID <= tk.id {
				if err := at.conv.Delete(ck); err != nil {
					return err
				}
			}
		}
	}
	return at.deltas.apply(at.counts, nil)
}

func (at archiveTx) markRead(archive, with string, upTo uint64) error {
	ck := convKey(archive, with)
	v := at.conv.Get(ck)
	if v == nil {
		return nil
	}
	cv, err := decodeConvState(v)
	if err != nil {
		return err
	}
	cv.readID = max(cv.readID, upTo)
	cv.unread = 0
	if cv.readID < math.MaxUint64 {
		s := archiveScan{at: at, prefix: lp(archive), wprefix: withPrefix(archive, with)}
		err = s.each(cv.readID+1, math.MaxUint64, true, func(id uint64, val []byte) (bool, error) {
			val, err := s.value(id, val)
			if err != nil {
				return false, err
			}
			rec, err := decodeArchiveRecord(val)
			if err != nil {
				return false, fmt.Errorf("record %d: %w", id, err)
			}
			if rec.Direction == DirOut {
				return false, nil
			}
			if rec.Flags&FlagNoUnread == 0 && cv.unread < math.MaxUint32 {
				cv.unread++
			}
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	return at.conv.Put(ck, encodeConvState(nil, cv))
}

// archiveScan walks the records of one archive that pass the With and IDs
// filters, by id, in either direction. It counts its cursor steps and
// lookups so that tests can check that queries cost O(page).
type archiveScan struct {
	at      archiveTx
	prefix  []byte   // lp(archive): keys of mam
	wprefix []byte   // lp(archive) ‖ lp(with) for a With filter, else nil
	ids     []uint64 // sorted, distinct ids of an IDs filter, else nil
	steps   int
	key     []byte // scratch for lookups
}

// recordKey returns lp(archive) ‖ be64(id) in the scan's scratch buffer,
// valid until the next call.
func (s *archiveScan) recordKey(id uint64) []byte {
	s.key = appendBE64(append(s.key[:0], s.prefix...), id)
	return s.key
}

func newArchiveScan(tx *bbolt.Tx, archive, with string, ids []uint64) (*archiveScan, error) {
	at, err := openArchiveTx(tx)
	if err != nil {
		return nil, err
	}
	s := &archiveScan{at: at, prefix: lp(archive)}
	if with != "" {
		s.wprefix = withPrefix(archive, with)
	}
	if len(ids) > 0 {
		s.ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	}
	return s, nil
}

// each calls fn for every matching id in [lo, hi], ascending or (desc)
// descending, until fn returns false. val is the record's value when the
// walk has it at hand, else nil (see value).
func (s *archiveScan) each(lo, hi uint64, desc bool, fn func(id uint64, val []byte) (bool, error)) error {
	if lo > hi {
		return nil
	}
	switch {
	case s.ids != nil:
		return s.eachID(lo, hi, desc, fn)
	case s.wprefix != nil:
		return s.eachKey(s.at.with, s.wprefix, lo, hi, desc, func(id uint64, _ []byte) (bool, error) {
			return fn(id, nil)
		})
	default:
		return s.eachKey(s.at.mam, s.prefix, lo, hi, desc, fn)
	}
}

// eachKey walks the keys prefix ‖ be64(id) of b with id in [lo, hi].
func (s *archiveScan) eachKey(b *bbolt.Bucket, prefix []byte, lo, hi uint64, desc bool, fn func(uint64, []byte) (bool, error)) error {
	c := b.Cursor()
	var k, v []byte
	if desc {
		target := idKey(prefix, hi)
		k, v = c.Seek(target)
		s.steps++
		switch {
		case k == nil:
			k, v = c.Last()
			s.steps++
		case !bytes.Equal(k, target):
			k, v = c.Prev()
			s.steps++
		}
	} else {
		k, v = c.Seek(idKey(prefix, lo))
		s.steps++
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); s.steps++ {
		id, err := parseIDSuffix(k, len(prefix))
		if err != nil {
			return err
		}
		if id < lo || id > hi {
			return nil
		}
		if ok, err := fn(id, v); err != nil || !ok {
			return err
		}
		if desc {
			k, v = c.Prev()
		} else {
			k, v = c.Next()
		}
	}
	return nil
}

// eachID walks the ids of the IDs filter within [lo, hi] that exist (and
// are in the With conversation, if set).
func (s *archiveScan) eachID(lo, hi uint64, desc bool, fn func(uint64, []byte) (bool, error)) error {
	if lo > hi {
		return nil
	}
	from, _ := slices.BinarySearch(s.ids, lo)
	to, found := slices.BinarySearch(s.ids, hi)
	if found {
		to++
	}
	ids := s.ids[from:to]
	for i := range ids {
		id := ids[i]
		if desc {
			id = ids[len(ids)-1-i]
		}
		s.steps++
		v := s.at.mam.Get(s.recordKey(id))
		if v == nil {
			continue
		}
		if s.wprefix != nil {
			s.steps++
			s.key = appendBE64(append(s.key[:0], s.wprefix...), id)
			if !hasKey(s.at.with, s.key) {
				continue
			}
		}
		if ok, err := fn(id, v); err != nil || !ok {
			return err
		}
	}
	return nil
}

// value returns val, or looks up record id when val is nil.
func (s *archiveScan) value(id uint64, val []byte) ([]byte, error) {
	if val != nil {
		return val, nil
	}
	s.steps++
	if val = s.at.mam.Get(s.recordKey(id)); val == nil {
		return nil, fmt.Errorf("%w: conversation index names missing record %d", ErrCorrupt, id)
	}
	return val, nil
}

// query answers q (validated, for the scan's archive).
func (s *archiveScan) query(q ArchiveQuery) (ArchivePage, error) {
	page := ArchivePage{Count: -1, Index: -1}
	lo, hi := archiveBounds(q.Start, q.End)
	plo, phi := lo, hi
	if q.AfterID != 0 {
		if q.AfterID == math.MaxUint64 {
			plo, phi = 1, 0
		} else {
			plo = max(plo, q.AfterID+1)
		}
	}
	if q.BeforeID != 0 {
		phi = min(phi, q.BeforeID-1)
	}
	var counter *archiveCounter // nil with an IDs filter: those are counted one by one
	if s.ids == nil && (q.WantCount || q.Index > 0) {
		counter = newArchiveCounter(s, q.Archive, q.With)
	}
	if q.Index > 0 {
		from, ok, err := s.nth(counter, lo, hi, uint64(q.Index))
		if err != nil {
			return ArchivePage{}, err
		}
		if ok {
			plo = from
		} else {
			plo, phi = 1, 0
		}
	}
	more := false
	err := s.each(plo, phi, q.Last, func(id uint64, val []byte) (bool, error) {
		if len(page.Records) == q.Max {
			more = true
			return false, nil
		}
		val, err := s.value(id, val)
		if err != nil {
			return false, err
		}
		rec, err := decodeArchiveRecord(val)
		if err != nil {
			return false, fmt.Errorf("record %d: %w", id, err)
		}
		if q.With != "" && rec.With != q.With {
			return false, fmt.Errorf("%w: record %d is with %q, indexed with %q", ErrCorrupt, id, rec.With, q.With)
		}
		rec.ID, rec.Archive = id, q.Archive
		page.Records = append(page.Records, rec)
		return true, nil
	})
	if err != nil {
		return ArchivePage{}, err
	}
	if q.Last {
		slices.Reverse(page.Records)
	}
	page.Complete = !more
	if !q.WantCount {
		return page, nil
	}
	total, err := s.count(counter, lo, hi)
	if err != nil {
		return ArchivePage{}, err
	}
	page.Count = int(min(total, math.MaxInt))
	if len(page.Records) == 0 {
		return page, nil
	}
	switch first := page.Records[0].ID; {
	case q.Index > 0:
		page.Index = q.Index
	case !q.Last && q.AfterID == 0:
		page.Index = 0 // the page starts the result set
	case q.Last && q.BeforeID == 0:
		page.Index = page.Count - len(page.Records) // the page ends it
	default:
		before, err := s.count(counter, lo, first-1)
		if err != nil {
			return ArchivePage{}, err
		}
		page.Index = int(min(before, math.MaxInt))
	}
	return page, nil
}

// count returns the number of matching records with ids in [lo, hi]: from
// the counters, or for an IDs filter by looking the ids up.
func (s *archiveScan) count(c *archiveCounter, lo, hi uint64) (uint64, error) {
	if c != nil {
		return c.count(lo, hi)
	}
	var n uint64
	err := s.eachID(lo, hi, false, func(uint64, []byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

// nth returns the id of the matching record at position index (from 0)
// among those with ids in [lo, hi]; ok is false past the end.
func (s *archiveScan) nth(c *archiveCounter, lo, hi, index uint64) (id uint64, ok bool, err error) {
	if c == nil {
		var i uint64
		err = s.eachID(lo, hi, false, func(kid uint64, _ []byte) (bool, error) {
			if i == index {
				id, ok = kid, true
				return false, nil
			}
			i++
			return true, nil
		})
		return id, ok, err
	}
	before, err := c.below(lo)
	if err != nil || index > math.MaxUint64-before {
		return 0, false, err
	}
	id, ok, err = c.nth(before + index)
	if err != nil || !ok || id > hi {
		return 0, false, err
	}
	return id, true, nil
}

// parseIDSuffix reads the be64 id that ends key k after n prefix bytes.
func parseIDSuffix(k []byte, n int) (uint64, error) {
	id, rest, err := readBE64(k[n:])
	if err != nil || len(rest) != 0 {
		return 0, fmt.Errorf("%w: archive key %x", ErrCorrupt, k)
	}
	return id, nil
}

// archiveTime is a decoded mam_time key.
type archiveTime struct {
	id      uint64
	archive string
}

// archiveTimeKey appends the mam_time key be64(id) ‖ lp(archive).
func archiveTimeKey(dst []byte, tk archiveTime) []byte {
	return appendString(appendBE64(dst, tk.id), tk.archive)
}

// parseArchiveTimeKey decodes a mam_time key; the archive must not be
// empty.
func parseArchiveTimeKey(k []byte) (archiveTime, error) {
	d := decoder{buf: k}
	tk := archiveTime{id: d.be64(), archive: d.string()}
	if err := d.done(); err != nil {
		return archiveTime{}, fmt.Errorf("archive time key: %w", err)
	}
	if tk.archive == "" {
		return archiveTime{}, fmt.Errorf("%w: archive time key with empty archive", ErrCorrupt)
	}
	return tk, nil
}

// encodeArchiveRecord appends the mam value of rec (ID and Archive are in
// the key):
//
//	byte    codec version (1)
//	byte    Direction
//	bytes   With
//	byte    Flags
//	bytes   Stanza
func encodeArchiveRecord(dst []byte, rec ArchiveRecord) []byte {
	dst = append(dst, archiveCodecV1, byte(rec.Direction))
	dst = appendString(dst, rec.With)
	dst = append(dst, rec.Flags)
	return appendBytes(dst, rec.Stanza)
}

// decodeArchiveRecord decodes a mam value; ID and Archive are left zero, an
// empty Stanza decodes as nil. The result does not alias v.
func decodeArchiveRecord(v []byte) (ArchiveRecord, error) {
	rec, err := decodeArchiveHeader(v)
	if len(rec.Stanza) == 0 {
		rec.Stanza = nil
	} else {
		rec.Stanza = bytes.Clone(rec.Stanza)
	}
	return rec, err
}

// decodeArchiveHeader is decodeArchiveRecord with a Stanza that aliases v
// (empty, not nil, when empty): for callers that only check the value.
func decodeArchiveHeader(v []byte) (ArchiveRecord, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != archiveCodecV1 {
		return ArchiveRecord{}, fmt.Errorf("%w: archive codec version %d unknown", ErrCorrupt, ver)
	}
	var rec ArchiveRecord
	rec.Direction = Direction(d.byte())
	rec.With = d.string()
	rec.Flags = d.byte()
	if d.err == nil {
		b, rest, err := readBytes(d.buf)
		if err != nil {
			d.fail(err)
		} else {
			rec.Stanza, d.buf = b, rest
		}
	}
	if err := d.done(); err != nil {
		return ArchiveRecord{}, fmt.Errorf("archived message: %w", err)
	}
	switch {
	case rec.Direction > DirOut:
		return ArchiveRecord{}, fmt.Errorf("%w: archived message direction %d unknown", ErrCorrupt, rec.Direction)
	case rec.Flags&^archiveFlagsKnown != 0:
		return ArchiveRecord{}, fmt.Errorf("%w: archived message flags %#x unknown", ErrCorrupt, rec.Flags)
	}
	return rec, nil
}

// convState is a stored conversation entry (With is in the key).
type convState struct {
	lastID uint64
	unread uint32
	readID uint64
}

func (cv convState) conversation(with string) Conversation {
	return Conversation{With: with, LastID: cv.lastID, Unread: int(min(uint64(cv.unread), math.MaxInt)), ReadID: cv.readID}
}

// encodeConvState appends the conv value:
//
//	byte     codec version (1)
//	uvarint  LastID
//	uvarint  Unread (at most 2³²-1)
//	uvarint  ReadID
func encodeConvState(dst []byte, cv convState) []byte {
	dst = append(dst, convCodecV1)
	dst = appendUvarint(dst, cv.lastID)
	dst = appendUvarint(dst, uint64(cv.unread))
	return appendUvarint(dst, cv.readID)
}

// decodeConvState decodes a conv value.
func decodeConvState(v []byte) (convState, error) {
	d := decoder{buf: v}
	if ver := d.byte(); d.err == nil && ver != convCodecV1 {
		return convState{}, fmt.Errorf("%w: conversation codec version %d unknown", ErrCorrupt, ver)
	}
	var cv convState
	cv.lastID = d.uvarint()
	unread := d.uvarint()
	cv.readID = d.uvarint()
	if err := d.done(); err != nil {
		return convState{}, fmt.Errorf("conversation: %w", err)
	}
	if unread > math.MaxUint32 {
		return convState{}, fmt.Errorf("%w: unread count %d out of range", ErrCorrupt, unread)
	}
	cv.unread = uint32(unread)
	return cv, nil
}

// encodeArchiveLastID appends byte(1) ‖ uvarint(id).
func encodeArchiveLastID(dst []byte, id uint64) []byte {
	return appendUvarint(append(dst, archiveLastIDCodecV1), id)
}

func decodeArchiveLastID(v []byte) (uint64, error) {
	return decodeVersionedUvarint(v, archiveLastIDCodecV1, "archive last id")
}

// ExpireFunc deletes records older than their archive's cutoff (as
// cutoff returns it; the zero time keeps the archive's records), for
// per-host retention. It walks the time index from the record after
// resumeAfter, up to records older than latest (the newest cutoff of any
// archive), deleting at most limit and looking at most 16×limit entries in
// one transaction. It returns how many it deleted and the id to resume
// after; next is 0 when the walk reached its end.
func (a *Archive) ExpireFunc(ctx context.Context, latest time.Time, resumeAfter uint64, limit int, cutoff func(archive string) time.Time) (deleted int, next uint64, err error) {
	if limit <= 0 {
		return 0, 0, fmt.Errorf("store: expire archive: limit %d: %w", limit, ErrInvalid)
	}
	end := uint64(max(ceilMicros(latest), 1))
	cut := map[string]uint64{}
	err = a.db.update(ctx, func(tx *bbolt.Tx) error {
		deleted, next = 0, 0
		at, err := a.openWrite(tx)
		if err != nil {
			return err
		}
		var doomed []archiveTime
		scanned := 0
		c := at.times.Cursor()
		var start [8]byte
		binary.BigEndian.PutUint64(start[:], resumeAfter+1)
		for k, _ := c.Seek(start[:]); k != nil; k, _ = c.Next() {
			tk, err := parseArchiveTimeKey(k)
			if err != nil {
				return err
			}
			if tk.id >= end {
				break
			}
			if scanned >= 16*limit || len(doomed) >= limit {
				next = tk.id - 1
				break
			}
			scanned++
			cu, ok := cut[tk.archive]
			if !ok {
				if t := cutoff(tk.archive); !t.IsZero() {
					cu = uint64(max(ceilMicros(t), 1))
				}
				cut[tk.archive] = cu
			}
			if tk.id < cu {
				doomed = append(doomed, tk)
			}
		}
		if err := at.expireRecords(doomed); err != nil {
			return err
		}
		deleted = len(doomed)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: expire archive: %w", err)
	}
	return deleted, next, nil
}
