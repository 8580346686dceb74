package store

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

const lobby = "lobby@conference.example.org"

func TestRoomInbox(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	ri := db.RoomInbox()
	t0 := time.UnixMicro(1_700_000_000_000_000).UTC()
	apply := func(changes ...RoomInboxChange) {
		t.Helper()
		if skipped, err := ri.Apply(ctx, changes); err != nil || skipped != 0 {
			t.Fatalf("Apply(%+v) = %d skipped, %v", changes, skipped, err)
		}
	}
	list := func(owner string) []RoomInboxEntry {
		t.Helper()
		l, err := ri.List(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	apply(
		RoomInboxChange{Owner: juliet, Room: lobby, Joined: t0},
		// Following again keeps the first join.
		RoomInboxChange{Owner: juliet, Room: lobby, Joined: t0.Add(time.Hour)},
		RoomInboxChange{Owner: juliet, Room: "balcony@conference.example.org", Joined: t0},
		// A look-alike owner is another list.
		RoomInboxChange{Owner: juliet + "x", Room: lobby, Joined: t0},
	)
	apply(RoomInboxChange{Owner: juliet, Room: lobby, Joined: t0.Add(2 * time.Hour)})
	want := []RoomInboxEntry{{Room: "balcony@conference.example.org", Joined: t0}, {Room: lobby, Joined: t0}}
	if got := list(juliet); !slices.Equal(got, want) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}

	// Joins of rooms already followed write nothing.
	pageWrites := func() int64 { st := db.bolt.Stats(); return st.TxStats.GetWrite() }
	writes := pageWrites()
	apply(RoomInboxChange{Owner: juliet, Room: lobby, Joined: t0}, RoomInboxChange{Owner: juliet + "x", Room: lobby, Joined: t0})
	if got := pageWrites(); got != writes {
		t.Errorf("repeated joins wrote %d pages", got-writes)
	}

	// Read markers only move forwards.
	apply(RoomInboxChange{Owner: juliet, Room: lobby, ReadID: 500})
	apply(RoomInboxChange{Owner: juliet, Room: lobby, ReadID: 300})
	if got := list(juliet)[1]; got.ReadID != 500 || !got.Joined.Equal(t0) {
		t.Fatalf("after markers 500, 300: %+v, want read 500, joined unchanged", got)
	}
	// A marker for a room not followed adds it.
	apply(RoomInboxChange{Owner: juliet, Room: "garden@conference.example.org", Joined: t0, ReadID: 7})
	if got := list(juliet); len(got) != 3 || got[1].Room != "garden@conference.example.org" || got[1].ReadID != 7 {
		t.Fatalf("after a marker to a new room: %+v", got)
	}

	if n, err := ri.Remove(ctx, juliet, lobby, "nowhere@conference.example.org"); err != nil || n != 1 {
		t.Fatalf("Remove = %d, %v; want 1", n, err)
	}
	if got := list(juliet); len(got) != 2 || slices.ContainsFunc(got, func(e RoomInboxEntry) bool { return e.Room == lobby }) {
		t.Fatalf("after Remove: %+v", got)
	}
	if got := list(juliet + "x"); len(got) != 1 {
		t.Fatalf("the look-alike's list: %+v", got)
	}

	// Invalid changes are refused; the batch's others are written.
	for i, bad := range []RoomInboxChange{{Room: lobby}, {Owner: juliet}, {Owner: strings.Repeat("u", 4000) + "@example.org", Room: lobby}} {
		room := fmt.Sprintf("ok%d@conference.example.org", i)
		if _, err := ri.Apply(ctx, []RoomInboxChange{bad, {Owner: juliet, Room: room, ReadID: 9}, bad}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "changes refused: 2") {
			t.Errorf("Apply(%+v) = %v, want ErrInvalid for 2 changes", bad, err)
		}
		if got := list(juliet); len(got) != 3+i || !slices.ContainsFunc(got, func(e RoomInboxEntry) bool { return e.Room == room && e.ReadID == 9 }) {
			t.Fatalf("after a batch with invalid changes: %+v, want %s added", got, room)
		}
	}
	// Refused changes alone: nothing to write, still an error.
	if _, err := ri.Apply(ctx, []RoomInboxChange{{Owner: juliet}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply of an invalid change alone = %v, want ErrInvalid", err)
	}
}

func TestRoomInboxQuota(t *testing.T) {
	ctx := t.Context()
	db := openNoSync(t)
	ri := db.RoomInbox()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketRoomInbox))
		for i := range MaxRoomInbox {
			if err := b.Put(append(lp(juliet), fmt.Sprintf("room%04d@conference.example.org", i)...), encodeRoomInboxEntry(nil, RoomInboxEntry{})); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A new room is skipped; a followed one still takes its marker, and
	// another account is not concerned.
	skipped, err := ri.Apply(ctx, []RoomInboxChange{
		{Owner: juliet, Room: lobby, Joined: time.Now()},
		{Owner: juliet, Room: "room0001@conference.example.org", ReadID: 9},
		{Owner: "romeo@example.net", Room: lobby, Joined: time.Now()},
	})
	if err != nil || skipped != 1 {
		t.Fatalf("Apply at the quota = %d skipped, %v; want 1", skipped, err)
	}
	l, err := ri.List(ctx, juliet)
	if err != nil || len(l) != MaxRoomInbox || l[1].ReadID != 9 {
		t.Fatalf("list at the quota: %d rooms, second %+v, %v", len(l), l[1], err)
	}
	if l, err := ri.List(ctx, "romeo@example.net"); err != nil || len(l) != 1 {
		t.Fatalf("romeo's list = %+v, %v", l, err)
	}
	// Skipped and refused changes in one batch: both are reported.
	skipped, err = ri.Apply(ctx, []RoomInboxChange{
		{Owner: juliet, Room: "garden@conference.example.org", Joined: time.Now()},
		{Owner: juliet},
	})
	if !errors.Is(err, ErrInvalid) || skipped != 1 {
		t.Fatalf("Apply at the quota with an invalid change = %d skipped, %v; want 1 and ErrInvalid", skipped, err)
	}
}

func TestUsersDeleteDropsRoomInbox(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	if err := db.Users().Create(ctx, testUser("example.org", "juliet")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RoomInbox().Apply(ctx, []RoomInboxChange{{Owner: juliet, Room: lobby, Joined: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Users().Delete(ctx, "example.org", "juliet"); err != nil {
		t.Fatal(err)
	}
	if l, err := db.RoomInbox().List(ctx, juliet); err != nil || len(l) != 0 {
		t.Fatalf("room inbox after deleting the account = %+v, %v", l, err)
	}
}

func TestArchiveSummary(t *testing.T) {
	ctx := t.Context()
	db := openNoSync(t)
	const (
		romeo = "romeo@example.net"
		nurse = "nurse@example.net"
	)
	// lobby's archive: 20 messages, romeo wrote 0, 5 and 10, nurse the
	// rest; a look-alike archive after it.
	var recs []ArchiveRecord
	for i := range 20 {
		with := nurse
		if i%5 == 0 && i <= 10 {
			with = romeo
		}
		recs = append(recs, ArchiveRecord{ID: rid(i), Archive: lobby, With: with, Flags: FlagNoUnread, Stanza: fmt.Appendf(nil, "<m%d/>", i)})
		recs = append(recs, ArchiveRecord{ID: rid(i) + 1, Archive: lobby + "x", With: romeo, Stanza: []byte("<other/>")})
	}
	putRecords(t, db, recs...)

	tests := []struct {
		name            string
		with            string
		notBefore, read uint64
		limit           int
		last, own       uint64
		unread          int
		more            bool
	}{
		{"since own last message", romeo, 0, 0, 100, rid(19), rid(10), 9, false},
		{"read marker after own message", romeo, 0, rid(15), 100, rid(19), rid(10), 4, false},
		{"read marker before own message", romeo, 0, rid(3), 100, rid(19), rid(10), 9, false},
		{"never posted", "tybalt@example.net", 0, 0, 100, rid(19), 0, 20, false},
		{"never posted, joined late", "tybalt@example.net", rid(12), 0, 100, rid(19), 0, 8, false},
		{"capped", "tybalt@example.net", 0, 0, 5, rid(19), 0, 5, true},
		{"negative limit counts nothing", "tybalt@example.net", 0, 0, -1, rid(19), 0, 0, true},
		{"cap reached exactly", "tybalt@example.net", rid(15), 0, 5, rid(19), 0, 5, false},
		{"all read", nurse, 0, rid(19), 100, rid(19), rid(19), 0, false},
		{"nothing since notBefore", romeo, rid(19) + 10, 0, 100, 0, rid(10), 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.Archive().Summary(ctx, lobby, tc.with, tc.notBefore, tc.read, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got.Last.ID != tc.last || got.OwnLast != tc.own || got.Unread != tc.unread || got.More != tc.more {
				t.Fatalf("Summary = last %d own %d unread %d more %v; want %d %d %d %v",
					got.Last.ID, got.OwnLast, got.Unread, got.More, tc.last, tc.own, tc.unread, tc.more)
			}
			if tc.last != 0 && (got.Last.Archive != lobby || string(got.Last.Stanza) != "<m19/>") {
				t.Fatalf("Last = %+v", got.Last)
			}
		})
	}
}

// TestArchiveSummaryIsOLimit checks that a summary of a large archive
// costs its limit, not the unread messages.
func TestArchiveSummaryIsOLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100,000-record archive")
	}
	db := openTest(t)
	la := newLargeArchive(100_000)
	la.build(t, db)
	const limit = 99
	var (
		sum   ArchiveSummary
		steps int
	)
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		s, err := newArchiveScan(tx, juliet, "", nil)
		if err != nil {
			return err
		}
		sum, err = s.summary(juliet, "tybalt@example.net", 0, 0, limit)
		steps = s.steps
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Unread != limit || !sum.More || sum.Last.ID != la.id(la.n-1) {
		t.Fatalf("Summary = %d unread, more %v, last %d", sum.Unread, sum.More, sum.Last.ID)
	}
	if steps > limit+5 {
		t.Errorf("summary took %d steps for a limit of %d", steps, limit)
	}
}

func TestRoomInboxCodec(t *testing.T) {
	for _, e := range []RoomInboxEntry{
		{Joined: time.UnixMicro(0).UTC()},
		{Joined: time.UnixMicro(1_700_000_000_000_001).UTC(), ReadID: math.MaxUint64},
		{Joined: time.UnixMicro(-5).UTC(), ReadID: 1},
	} {
		if got := checkStrictCodec(t, encodeRoomInboxEntry(nil, e), decodeRoomInboxEntry); got != e {
			t.Errorf("round trip of %+v = %+v", e, got)
		}
	}
}

func FuzzRoomInboxCodec(f *testing.F) {
	f.Add(encodeRoomInboxEntry(nil, RoomInboxEntry{Joined: time.UnixMicro(42), ReadID: 7}))
	f.Fuzz(func(t *testing.T, v []byte) {
		e, err := decodeRoomInboxEntry(v)
		if err != nil {
			return
		}
		if enc := encodeRoomInboxEntry(nil, e); string(enc) != string(v) {
			t.Fatalf("decode(%x) = %+v, re-encodes as %x", v, e, enc)
		}
	})
}

// A corrupt entry is left out of its owner's list and replaced by the next
// change to it; the other changes of the same batch still land.
func TestRoomInboxCorruptEntry(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	ri := db.RoomInbox()
	t0 := time.UnixMicro(1_700_000_000_000_000).UTC()
	balcony := "balcony@conference.example.org"
	if _, err := ri.Apply(ctx, []RoomInboxChange{
		{Owner: juliet, Room: lobby, Joined: t0},
		{Owner: juliet, Room: balcony, Joined: t0},
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketRoomInbox)).Put(append(lp(juliet), lobby...), []byte{0xff, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	got, err := ri.List(ctx, juliet)
	if want := []RoomInboxEntry{{Room: balcony, Joined: t0}}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("List with a corrupt entry = %+v, %v; want %+v", got, err, want)
	}
	other := juliet + "x"
	if _, err := ri.Apply(ctx, []RoomInboxChange{
		{Owner: juliet, Room: lobby, Joined: t0.Add(time.Hour), ReadID: 7},
		{Owner: other, Room: lobby, Joined: t0},
	}); err != nil {
		t.Fatalf("Apply over a corrupt entry: %v", err)
	}
	got, err = ri.List(ctx, juliet)
	want := []RoomInboxEntry{{Room: balcony, Joined: t0}, {Room: lobby, Joined: t0.Add(time.Hour), ReadID: 7}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("List after the replacement = %+v, %v; want %+v", got, err, want)
	}
	if got, err := ri.List(ctx, other); err != nil || len(got) != 1 {
		t.Fatalf("List(%s) = %+v, %v; want the lobby", other, got, err)
	}
}
