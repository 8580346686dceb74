package store

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// randomEntries returns n entries over archives archives, each with up to
// three correspondents; ids ascend unless shuffled.
func randomEntries(r *rand.Rand, n, archives int, shuffled bool) []archiveEntry {
	entries := make([]archiveEntry, n)
	for i := range entries {
		a := r.IntN(archives)
		entries[i] = archiveEntry{
			id:      uint64(1000 + i),
			archive: fmt.Sprintf("user%d@example.org", a),
			with:    fmt.Sprintf("peer%d@example.net", r.IntN(3)),
		}
	}
	if shuffled {
		r.Shuffle(n, func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	}
	return entries
}

var keyFuncs = map[string]func(dst []byte, e *archiveEntry) []byte{
	"record": func(dst []byte, e *archiveEntry) []byte { return appendRecordKey(dst, e.archive, e.id) },
	"with":   func(dst []byte, e *archiveEntry) []byte { return appendWithKey(dst, e.archive, e.with, e.id) },
}

// newEntryKeys orders the keys as bytes.Compare does, and each key is
// its entry's.
func TestNewEntryKeysOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for name, appendKey := range keyFuncs {
		for _, tc := range []struct {
			n, archives int
			shuffled    bool
		}{{0, 1, false}, {1, 1, false}, {50, 1, false}, {500, 40, false}, {500, 40, true}, {2048, 200, false}, {300, 300, true}} {
			entries := randomEntries(r, tc.n, tc.archives, tc.shuffled)
			keys := newEntryKeys(entries, appendKey)
			if len(keys.order) != len(entries) {
				t.Fatalf("%s %+v: %d keys for %d entries", name, tc, len(keys.order), len(entries))
			}
			seen := make([]bool, len(entries))
			for i, k := range keys.order {
				if want := appendKey(nil, &entries[k.entry]); !bytes.Equal(keys.key(k), want) {
					t.Fatalf("%s %+v: key %x is not entry %d's (%x)", name, tc, keys.key(k), k.entry, want)
				}
				if seen[k.entry] {
					t.Fatalf("%s %+v: entry %d twice", name, tc, k.entry)
				}
				seen[k.entry] = true
				if i > 0 && bytes.Compare(keys.key(keys.order[i-1]), keys.key(k)) >= 0 {
					t.Fatalf("%s %+v: keys %d and %d out of order", name, tc, i-1, i)
				}
			}
			// The groups cover the keys in order, one prefix each.
			n, prefixes := 0, map[string]bool{}
			for g := range keys.groups() {
				group := keys.group(g)
				if len(group) == 0 || &group[0] != &keys.order[n] {
					t.Fatalf("%s %+v: group %d does not start at key %d", name, tc, g, n)
				}
				prefix := func(k entryKey) string { return string(keys.key(k)[:k.end-k.start-8]) }
				p := prefix(group[0])
				for _, k := range group {
					if prefix(k) != p {
						t.Fatalf("%s %+v: group %d mixes prefixes %x and %x", name, tc, g, p, prefix(k))
					}
				}
				if prefixes[p] {
					t.Fatalf("%s %+v: prefix %x in two groups", name, tc, p)
				}
				prefixes[p] = true
				n += len(group)
			}
			if n != len(keys.order) {
				t.Fatalf("%s %+v: groups hold %d of %d keys", name, tc, n, len(keys.order))
			}
		}
	}
}

// A long first key does not size the buffer for every key.
func TestNewEntryKeysLongFirstKey(t *testing.T) {
	entries := randomEntries(rand.New(rand.NewPCG(3, 4)), DefaultWriterMaxBatch, 200, false)
	entries[0].with = strings.Repeat("w", maxJID)
	keys := newEntryKeys(entries, keyFuncs["with"])
	need := len(keys.buf)
	if c := cap(keys.buf); c > 4*need {
		t.Fatalf("buffer of %d bytes for %d bytes of keys", c, need)
	}
}

func BenchmarkNewEntryKeys(b *testing.B) {
	entries := randomEntries(rand.New(rand.NewPCG(1, 2)), 2048, 200, false)
	for _, name := range slices.Sorted(maps.Keys(keyFuncs)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				newEntryKeys(entries, keyFuncs[name])
			}
		})
	}
}
