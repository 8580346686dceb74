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
	rng := rand.New(rand.NewPCG(1, 2))
	users := []string{"a@example.org", "bb@example.org", "c@example.net", "dddd@example.org", "e@x.example"}
	var entries []archiveEntry
	for id := uint64(1_000_000); len(entries) < 500; id++ {
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
	put := func(db *DB, batches [][]archiveEntry) {
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
	one, batch := openNoSync(t), openNoSync(t)
	var single [][]archiveEntry
	for i := range entries {
		single = append(single, entries[i:i+1])
	}
	put(one, single)
	// Two batches: the second starts from the states the first left.
	put(batch, [][]archiveEntry{entries[:200], entries[200:]})
	for _, name := range []string{bucketMAM, bucketMAMWith, bucketMAMTime, bucketConv, bucketMAMCount, bucketMeta} {
		a, b := dumpBucket(t, one, name), dumpBucket(t, batch, name)
		if len(a) == 0 {
			t.Fatalf("bucket %s: empty", name)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("bucket %s differs after a batch put from one record at a time", name)
		}
	}
	convs, err := batch.Archive().Conversations(t.Context(), users[0], 0)
	if err != nil || len(convs) == 0 {
		t.Fatalf("Conversations = %v, %v", convs, err)
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
