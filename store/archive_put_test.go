package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.etcd.io/bbolt"
)

// TestArchivePutBatchEqualsOneByOne checks that a batch put (whose buckets
// are written in key order, not id order) leaves the archive buckets
// exactly as putting its records one at a time in id order does:
// records, indexes, conversation states (last id, unread count) and
// counters, for interleaved archives and conversations in both
// directions, with and without FlagNoUnread.
func TestArchivePutBatchEqualsOneByOne(t *testing.T) {
	entries := mixedEntries(rand.New(rand.NewPCG(1, 2)), 500)
	one, batch := openNoSync(t), openNoSync(t)
	putOneByOne(t, one, entries)
	// Two batches: the second starts from the states the first left.
	putBatches(t, batch, entries[:200], entries[200:])
	assertSameArchive(t, one, batch)
	convs, err := batch.Archive().Conversations(t.Context(), entries[0].archive, 0)
	if err != nil || len(convs) == 0 {
		t.Fatalf("Conversations = %v, %v", convs, err)
	}
}

// TestArchiveJournalAndBatchEqualsOneByOne: a writer batch committed with
// its indexes shares one put with the journaled records before it
// (drainJournal), and conversations and counters span both: the archive
// buckets end as putting every record one at a time leaves them, and the
// journal is emptied.
func TestArchiveJournalAndBatchEqualsOneByOne(t *testing.T) {
	entries := mixedEntries(rand.New(rand.NewPCG(3, 4)), 500)
	one, both := openNoSync(t), openNoSync(t)
	putOneByOne(t, one, entries)
	journaled, batch := entries[:300], entries[300:]
	journalEntries(t, both, journaled)
	w := both.Archive().NewWriter(WriterOptions{})
	if err := w.store(batch, false); err != nil {
		t.Fatal(err)
	}
	if j, m := journalKeys(t, both); j != 0 || m != len(entries) {
		t.Fatalf("journaled %d, indexed %d; want 0, %d", j, m, len(entries))
	}
	assertSameArchive(t, one, both)
	if both.archive.journalPending() {
		t.Error("journal still pending after its records were indexed")
	}
}

// mixedEntries returns n entries in id order among five users, each
// stored by the sender (DirOut) or the recipient (DirIn, a quarter of
// them with FlagNoUnread): interleaved archives and conversations.
func mixedEntries(rng *rand.Rand, n int) []archiveEntry {
	users := []string{"a@example.org", "bb@example.org", "c@example.net", "dddd@example.org", "e@x.example"}
	var entries []archiveEntry
	for id := uint64(1_000_000); len(entries) < n; id++ {
		from, to := users[rng.IntN(len(users))], users[rng.IntN(len(users))]
		if from == to {
			continue
		}
		rec := ArchiveRecord{ID: id, Archive: from, With: to, Direction: DirOut, Stanza: testStanza}
		if rng.IntN(2) == 0 {
			rec.Archive, rec.With, rec.Direction = to, from, DirIn
			if rng.IntN(4) == 0 {
				rec.Flags = FlagNoUnread
			}
		}
		entries = append(entries, newArchiveEntry(rec))
	}
	return entries
}

// putBatches puts each batch in a transaction of its own.
func putBatches(t *testing.T, db *DB, batches ...[]archiveEntry) {
	t.Helper()
	for _, b := range batches {
		if err := db.bolt.Update(func(tx *bbolt.Tx) error {
			at, err := openArchiveTx(tx)
			if err != nil {
				return err
			}
			return at.put(tx, db.log, b)
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// putOneByOne puts entries one at a time, in order.
func putOneByOne(t *testing.T, db *DB, entries []archiveEntry) {
	t.Helper()
	for i := range entries {
		putBatches(t, db, entries[i:i+1])
	}
}

// assertSameArchive checks that want and got hold the same records,
// indexes, conversation states and counters, byte for byte.
func assertSameArchive(t *testing.T, want, got *DB) {
	t.Helper()
	for _, name := range []string{bucketMAM, bucketMAMWith, bucketMAMTime, bucketConv, bucketMAMCount, bucketMeta} {
		a, b := dumpBucket(t, want, name), dumpBucket(t, got, name)
		if len(a) == 0 {
			t.Fatalf("bucket %s: empty", name)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("bucket %s differs from putting one record at a time", name)
		}
	}
}

// dumpBucket returns every key and value of a top-level bucket.
func dumpBucket(t *testing.T, db *DB, name string) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
			fmt.Fprintf(&out, "%x=%x\n", k, v)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
