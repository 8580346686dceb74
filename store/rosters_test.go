package store

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

var errBoom = errors.New("boom")

// putItem returns an Update callback that sets name, subscription and
// groups and stores the item.
func putItem(name string, sub Subscription, groups ...string) func(*RosterItem, bool) (UpdateOp, error) {
	return func(it *RosterItem, _ bool) (UpdateOp, error) {
		it.Name, it.Subscription, it.Groups = name, sub, groups
		return UpdatePut, nil
	}
}

func deleteItem(*RosterItem, bool) (UpdateOp, error) { return UpdateDelete, nil }

func keepItem(*RosterItem, bool) (UpdateOp, error) { return UpdateKeep, nil }

func mustUpdate(t testing.TB, r *Rosters, owner, contact string, fn func(*RosterItem, bool) (UpdateOp, error)) (RosterItem, uint64, bool) {
	t.Helper()
	item, ver, changed, err := r.Update(t.Context(), owner, contact, fn)
	if err != nil {
		t.Fatalf("Update(%s, %s): %v", owner, contact, err)
	}
	return item, ver, changed
}

// rosterState reads owner's raw roster state.
func readRosterState(t *testing.T, db *DB, owner string) rosterState {
	t.Helper()
	var st rosterState
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		rt, err := openRosterTx(tx, owner)
		if err != nil {
			return err
		}
		st, err = rt.state()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// countRosterIndex counts owner's roster_index keys in space.
func countRosterIndex(t *testing.T, db *DB, owner string, space byte) int {
	t.Helper()
	var n int
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		prefix := append(lp(owner), space)
		n = countPrefix(tx.Bucket([]byte(bucketRosterIndex)), prefix, math.MaxInt)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rosterBatch runs fn on owner's roster in one write transaction, through
// the same code as Update: tests with thousands of changes stay fast.
func rosterBatch(t *testing.T, db *DB, owner string, fn func(rt rosterTx) error) {
	t.Helper()
	err := db.update(t.Context(), func(tx *bbolt.Tx) error {
		rt, err := openRosterTx(tx, owner)
		if err != nil {
			return err
		}
		return fn(rt)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSubscriptionString(t *testing.T) {
	tests := []struct {
		sub  Subscription
		want string
	}{
		{SubNone, "none"}, {SubTo, "to"}, {SubFrom, "from"}, {SubBoth, "both"}, {4, "Subscription(4)"},
	}
	for _, tc := range tests {
		if got := tc.sub.String(); got != tc.want {
			t.Errorf("Subscription(%d).String() = %q, want %q", uint8(tc.sub), got, tc.want)
		}
	}
}

func TestRosterItemCodec(t *testing.T) {
	tests := []struct {
		name string
		item RosterItem
	}{
		{"zero", RosterItem{Added: time.UnixMicro(0).UTC()}},
		{"full", RosterItem{Name: "Romeo", Groups: []string{"Friends", "Lovers"}, Subscription: SubBoth, Ask: true, Approved: true, Added: codecTime, Version: 1 << 40}},
		{"group order kept", RosterItem{Groups: []string{"z", "a", "m"}, Subscription: SubFrom, Added: codecTime, Version: 3}},
		{"ask only", RosterItem{Ask: true, Subscription: SubTo, Added: codecTime}},
		{"approved only", RosterItem{Approved: true, Added: codecTime}},
		{"pre-1970", RosterItem{Added: time.Date(1901, 1, 1, 0, 0, 0, 1000, time.UTC), Version: math.MaxUint64}},
		{"long name and group", RosterItem{Name: strings.Repeat("n", 300), Groups: []string{strings.Repeat("g", 200)}, Added: codecTime}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := encodeRosterItem(nil, tc.item)
			if enc[0] != rosterCodecV1 {
				t.Fatalf("codec byte = %d", enc[0])
			}
			got := checkStrictCodec(t, enc, decodeRosterItem)
			if !reflect.DeepEqual(got, tc.item) {
				t.Fatalf("decode(encode(x)) = %+v\nwant %+v", got, tc.item)
			}
		})
	}

	valid := encodeRosterItem(nil, RosterItem{Name: "x", Groups: []string{"g"}, Added: codecTime})
	// Offsets in valid: 0 version, 1–2 name, 3 group count, 4–5 group,
	// 6 subscription, 7 flags.
	mutate := func(i int, b byte) []byte {
		v := bytes.Clone(valid)
		v[i] = b
		return v
	}
	rejects := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown codec version", mutate(0, 2)},
		{"unknown subscription", mutate(6, 4)},
		{"unknown flag", mutate(7, 4)},
		{"group count beyond input", mutate(3, 100)},
		{"huge group count", append(append([]byte{rosterCodecV1, 0}, appendUvarint(nil, math.MaxUint64)...), 0, 0, 0, 0)},
	}
	for _, tc := range rejects {
		t.Run("reject "+tc.name, func(t *testing.T) {
			if _, err := decodeRosterItem(tc.in); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeRosterItem(%x) = %v, want ErrCorrupt", tc.in, err)
			}
		})
	}
}

func TestRosterStateCodec(t *testing.T) {
	for _, st := range []rosterState{
		{},
		{version: 7, floor: 3, items: 2, tombstones: 4},
		{version: math.MaxUint64, floor: math.MaxUint64, items: math.MaxUint64},
		{version: 2000, floor: 1000, items: 0, tombstones: 1000},
	} {
		enc := encodeRosterState(nil, st)
		if got := checkStrictCodec(t, enc, decodeRosterState); got != st {
			t.Errorf("decode(encode(%+v)) = %+v", st, got)
		}
	}
	for _, st := range []rosterState{
		{version: 1, floor: 2},
		{version: 1, items: 2},
		{version: 3, items: 2, tombstones: 2},
		{version: math.MaxUint64, items: math.MaxUint64, tombstones: 1},
	} {
		if _, err := decodeRosterState(encodeRosterState(nil, st)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeRosterState(%+v) = %v, want ErrCorrupt", st, err)
		}
	}
	if _, err := decodeRosterState([]byte{2, 0, 0, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("decodeRosterState(version 2) = %v, want ErrCorrupt", err)
	}
}

func TestRosterIndexKeys(t *testing.T) {
	rt := rosterTx{owner: "a@x", prefix: lp("a@x")}
	for _, space := range []byte{rosterSpaceLive, rosterSpaceTomb} {
		k := rt.versionKey(space, 42, "romeo@example.net")
		rest, ok := bytes.CutPrefix(k, append(lp("a@x"), space))
		if !ok {
			t.Fatalf("versionKey %x lacks owner/space prefix", k)
		}
		ver, contact, err := parseRosterVersionKey(rest)
		if err != nil || ver != 42 || string(contact) != "romeo@example.net" {
			t.Fatalf("parseRosterVersionKey = %d, %q, %v", ver, contact, err)
		}
	}
	// Keys of one space sort by version, whatever the contact.
	if bytes.Compare(rt.versionKey(rosterSpaceLive, 255, "z"), rt.versionKey(rosterSpaceLive, 256, "a")) >= 0 {
		t.Fatal("version keys do not sort by version")
	}
	// The by-contact prefix of "a" does not select the tombstone of "ab".
	if bytes.HasPrefix(rt.goneKey("ab", 1, true), rt.goneKey("a", 0, false)) {
		t.Fatal("goneKey prefix of a contact matches a longer contact")
	}
	for _, bad := range [][]byte{nil, make([]byte, 7), make([]byte, 8)} {
		if _, _, err := parseRosterVersionKey(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("parseRosterVersionKey(%x) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func FuzzRosterItemCodec(f *testing.F) {
	for _, it := range []RosterItem{
		{},
		{Name: "Romeo", Groups: []string{"Friends", "Lovers"}, Subscription: SubBoth, Ask: true, Approved: true, Added: codecTime, Version: 9},
		{Groups: []string{""}, Subscription: SubFrom, Added: time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		enc := encodeRosterItem(nil, it)
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{rosterCodecV1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{rosterCodecV1, 0, 0, 4, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeRosterItem, encodeRosterItem)
	})
}

func FuzzRosterStateCodec(f *testing.F) {
	f.Add(encodeRosterState(nil, rosterState{}))
	f.Add(encodeRosterState(nil, rosterState{version: 2020, floor: 1020, items: 3, tombstones: 1000}))
	f.Add([]byte{rosterStateCodecV1, 1, 2, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeRosterState, encodeRosterState)
	})
}

func FuzzRosterIndexKey(f *testing.F) {
	rt := rosterTx{owner: "a@x", prefix: lp("a@x")}
	f.Add(rt.versionKey(rosterSpaceLive, 7, "romeo@example.net")[len(rt.prefix)+1:], "a@x", "b@y", uint64(1))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1}, "x", "xa", uint64(math.MaxUint64))
	f.Add([]byte{}, "", "", uint64(0))
	f.Fuzz(func(t *testing.T, key []byte, c1, c2 string, ver uint64) {
		// Arbitrary bytes: parse never panics and re-encodes exactly.
		if v, contact, err := parseRosterVersionKey(key); err == nil {
			if got := appendBE64(nil, v); !bytes.Equal(append(got, contact...), key) {
				t.Fatalf("re-encoding of parsed key %x differs", key)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("parse error %v does not wrap ErrCorrupt", err)
		}
		if c1 == "" {
			return
		}
		k := rt.versionKey(rosterSpaceTomb, ver, c1)
		v, contact, err := parseRosterVersionKey(k[len(rt.prefix)+1:])
		if err != nil || v != ver || string(contact) != c1 {
			t.Fatalf("parse(versionKey(%d, %q)) = %d, %q, %v", ver, c1, v, contact, err)
		}
		// A contact's tombstone prefix selects only its own entry.
		if got := bytes.HasPrefix(rt.goneKey(c2, ver, true), rt.goneKey(c1, 0, false)); got != (c1 == c2) {
			t.Fatalf("goneKey(%q) has prefix of goneKey(%q): %v", c2, c1, got)
		}
	})
}

// stripAdded returns items with Added zeroed, for comparisons.
func stripAdded(items ...RosterItem) []RosterItem {
	out := slices.Clone(items)
	for i := range out {
		out[i].Added = time.Time{}
	}
	return out
}

func TestRostersUpdate(t *testing.T) {
	const owner, romeo = "juliet@example.org", "romeo@example.net"
	added := time.Date(2020, 2, 2, 2, 2, 2, 2000, time.UTC)
	orig := RosterItem{Contact: romeo, Name: "Romeo", Groups: []string{"Friends"}, Subscription: SubBoth, Added: added, Version: 1}
	tooManyGroups := make([]string, MaxRosterGroups+1)
	for i := range tooManyGroups {
		tooManyGroups[i] = fmt.Sprint("g", i)
	}
	maxGroups := tooManyGroups[:MaxRosterGroups]
	long := strings.Repeat("x", MaxRosterNameLen+1)

	type fnT = func(*RosterItem, bool) (UpdateOp, error)
	tests := []struct {
		name        string
		contact     string
		fn          fnT
		wantExists  bool // what fn must be told
		wantErr     error
		wantChanged bool
		wantVer     uint64
		want        *RosterItem // result; nil = zero item
		wantAfter   []RosterItem
	}{
		{
			name: "create", contact: "nurse@example.net", wantExists: false,
			fn: func(it *RosterItem, _ bool) (UpdateOp, error) {
				it.Name, it.Groups, it.Ask = "Nurse", []string{"Servants", "Capulets"}, true
				return UpdatePut, nil
			},
			wantChanged: true, wantVer: 2,
			want: &RosterItem{Contact: "nurse@example.net", Name: "Nurse", Groups: []string{"Servants", "Capulets"}, Ask: true, Version: 2},
			wantAfter: []RosterItem{
				{Contact: "nurse@example.net", Name: "Nurse", Groups: []string{"Servants", "Capulets"}, Ask: true, Version: 2},
				orig,
			},
		},
		{
			name: "create keeps given Added", contact: "nurse@example.net",
			fn: func(it *RosterItem, _ bool) (UpdateOp, error) {
				it.Added = added.Add(time.Hour)
				return UpdatePut, nil
			},
			wantChanged: true, wantVer: 2,
			want: &RosterItem{Contact: "nurse@example.net", Added: added.Add(time.Hour), Version: 2},
		},
		{
			name: "update existing keeps Added", contact: romeo, wantExists: true,
			fn: func(it *RosterItem, _ bool) (UpdateOp, error) {
				it.Name, it.Groups, it.Approved, it.Subscription = "R", []string{"B", "A"}, true, SubFrom
				it.Added = time.Now() // ignored: creation time is kept
				return UpdatePut, nil
			},
			wantChanged: true, wantVer: 2,
			want: &RosterItem{Contact: romeo, Name: "R", Groups: []string{"B", "A"}, Approved: true, Subscription: SubFrom, Added: added, Version: 2},
		},
		{
			name: "max groups", contact: romeo, wantExists: true, fn: putItem("Romeo", SubBoth, maxGroups...),
			wantChanged: true, wantVer: 2,
			want: &RosterItem{Contact: romeo, Name: "Romeo", Groups: maxGroups, Subscription: SubBoth, Added: added, Version: 2},
		},
		{
			name: "put unchanged", contact: romeo, wantExists: true,
			fn:          func(*RosterItem, bool) (UpdateOp, error) { return UpdatePut, nil },
			wantChanged: false, wantVer: 1, want: &orig, wantAfter: []RosterItem{orig},
		},
		{
			name: "put unchanged with scribbled version and Added", contact: romeo, wantExists: true,
			fn: func(it *RosterItem, _ bool) (UpdateOp, error) {
				it.Version, it.Added = 99, time.Now()
				return UpdatePut, nil
			},
			wantChanged: false, wantVer: 1, want: &orig,
		},
		{name: "keep existing", contact: romeo, wantExists: true, fn: keepItem, wantVer: 1, want: &orig},
		{
			name: "keep discards changes", contact: romeo, wantExists: true,
			fn: func(it *RosterItem, _ bool) (UpdateOp, error) {
				it.Name = "ignored"
				return UpdateKeep, nil
			},
			wantVer: 1, want: &orig, wantAfter: []RosterItem{orig},
		},
		{name: "keep absent", contact: "nurse@example.net", fn: keepItem, wantVer: 1, wantAfter: []RosterItem{orig}},
		{name: "delete existing", contact: romeo, wantExists: true, fn: deleteItem, wantChanged: true, wantVer: 2, wantAfter: []RosterItem{}},
		{name: "delete absent", contact: "nurse@example.net", fn: deleteItem, wantVer: 1, wantAfter: []RosterItem{orig}},
		{name: "fn error", contact: romeo, wantExists: true, wantErr: errBoom,
			fn: func(it *RosterItem, _ bool) (UpdateOp, error) {
				it.Name = "changed before failing"
				return UpdatePut, fmt.Errorf("wrapped: %w", errBoom)
			}},
		{name: "fn error on new item", contact: "nurse@example.net", wantErr: errBoom,
			fn: func(*RosterItem, bool) (UpdateOp, error) { return UpdateDelete, errBoom }},
		{name: "changed contact", contact: romeo, wantExists: true, wantErr: ErrInvalid,
			fn: func(it *RosterItem, _ bool) (UpdateOp, error) {
				it.Contact = "mercutio@example.net"
				return UpdatePut, nil
			}},
		{name: "empty group", contact: romeo, wantExists: true, wantErr: ErrInvalid, fn: putItem("R", SubNone, "a", "")},
		{name: "duplicate group", contact: romeo, wantExists: true, wantErr: ErrInvalid, fn: putItem("R", SubNone, "a", "b", "a")},
		{name: "too many groups", contact: romeo, wantExists: true, wantErr: ErrInvalid, fn: putItem("R", SubNone, tooManyGroups...)},
		{name: "name too long", contact: romeo, wantExists: true, wantErr: ErrInvalid, fn: putItem(long, SubNone)},
		{name: "group too long", contact: romeo, wantExists: true, wantErr: ErrInvalid, fn: putItem("R", SubNone, long)},
		{name: "unknown subscription", contact: "nurse@example.net", wantErr: ErrInvalid, fn: putItem("N", SubBoth+1)},
		{name: "unknown op", contact: romeo, wantExists: true, wantErr: ErrInvalid,
			fn: func(*RosterItem, bool) (UpdateOp, error) { return UpdateDelete + 1, nil }},
		{name: "nil fn", contact: romeo, wantErr: ErrInvalid},
		{name: "empty contact", contact: "", wantErr: ErrInvalid, fn: keepItem},
		{name: "contact too long", contact: strings.Repeat("c", maxJID+1), wantErr: ErrInvalid, fn: keepItem},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db := openTest(t)
			r := db.Rosters()
			mustUpdate(t, r, owner, romeo, func(it *RosterItem, exists bool) (UpdateOp, error) {
				if exists {
					t.Error("setup: item exists before creation")
				}
				*it = orig
				return UpdatePut, nil
			})

			fn := tc.fn
			if fn != nil {
				fn = func(it *RosterItem, exists bool) (UpdateOp, error) {
					if exists != tc.wantExists {
						t.Errorf("fn got exists = %v, want %v", exists, tc.wantExists)
					}
					if it.Contact != tc.contact {
						t.Errorf("fn got Contact %q, want %q", it.Contact, tc.contact)
					}
					return tc.fn(it, exists)
				}
			}
			before := time.Now()
			got, ver, changed, err := r.Update(ctx, owner, tc.contact, fn)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Update = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				// Nothing changed: same items, same version, same state.
				items, v, err := r.Items(ctx, owner)
				if err != nil || v != 1 || !reflect.DeepEqual(items, []RosterItem{orig}) {
					t.Fatalf("after failed Update: Items = %+v, %d, %v", items, v, err)
				}
				if st := readRosterState(t, db, owner); st != (rosterState{version: 1, items: 1}) {
					t.Fatalf("after failed Update: state %+v", st)
				}
				return
			}
			if changed != tc.wantChanged || ver != tc.wantVer {
				t.Errorf("Update changed, version = %v, %d; want %v, %d", changed, ver, tc.wantChanged, tc.wantVer)
			}
			want := RosterItem{}
			if tc.want != nil {
				want = *tc.want
			}
			if want.Added.IsZero() && tc.want != nil {
				// Set by the store to "now".
				if got.Added.Before(before.Add(-time.Second)) || time.Since(got.Added) > time.Minute || got.Added.Location() != time.UTC {
					t.Errorf("Added = %v, want about now in UTC", got.Added)
				}
				want.Added = got.Added
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Update result = %+v\nwant %+v", got, want)
			}
			if tc.want != nil {
				stored, err := r.Item(ctx, owner, tc.contact)
				if err != nil || !reflect.DeepEqual(stored, got) {
					t.Errorf("Item after Update = %+v, %v\nwant %+v", stored, err, got)
				}
			} else if _, err := r.Item(ctx, owner, tc.contact); !errors.Is(err, ErrNotFound) {
				t.Errorf("Item after Update = %v, want ErrNotFound", err)
			}
			items, v, err := r.Items(ctx, owner)
			if err != nil || v != tc.wantVer {
				t.Fatalf("Items = version %d, %v; want version %d", v, err, tc.wantVer)
			}
			if tc.wantAfter != nil && !slices.EqualFunc(stripAdded(items...), stripAdded(tc.wantAfter...), func(a, b RosterItem) bool { return reflect.DeepEqual(a, b) }) {
				t.Errorf("Items after Update = %+v\nwant %+v", items, tc.wantAfter)
			}
			n, err := r.Count(ctx, owner)
			if err != nil || n != len(items) {
				t.Errorf("Count = %d, %v; want %d", n, err, len(items))
			}
		})
	}
}

func TestRostersFnSeesCopy(t *testing.T) {
	// fn may modify the groups slice it received without changing the
	// stored item when it then keeps it or fails.
	r := openTest(t).Rosters()
	const owner, c = "a@x", "b@y"
	mustUpdate(t, r, owner, c, putItem("B", SubNone, "g1", "g2"))
	mustUpdate(t, r, owner, c, func(it *RosterItem, _ bool) (UpdateOp, error) {
		it.Groups[0] = "scribbled"
		return UpdateKeep, nil
	})
	item, err := r.Item(t.Context(), owner, c)
	if err != nil || !slices.Equal(item.Groups, []string{"g1", "g2"}) {
		t.Fatalf("Item = %+v, %v", item, err)
	}
}

func TestRostersItemsOrderAndIsolation(t *testing.T) {
	ctx := t.Context()
	r := openTest(t).Rosters()
	// "a@x" and "a@xa": plain concatenation owner‖contact would let the
	// first owner's prefix select the second's keys.
	seed := []struct{ owner, contact string }{
		{"a@x", "b@y"}, {"a@x", "A@y"}, {"a@x", "b@y/"}, {"a@x", "ab@y"},
		{"a@xa", "b@y"}, {"a@xa", "c@y"},
		{"a@x\x00", "z@z"},
	}
	for _, s := range seed {
		mustUpdate(t, r, s.owner, s.contact, putItem(s.contact, SubNone))
	}
	mustUpdate(t, r, "a@xa", "c@y", deleteItem)
	tests := []struct {
		name    string
		owner   string
		want    []string
		wantVer uint64
	}{
		{"byte order", "a@x", []string{"A@y", "ab@y", "b@y", "b@y/"}, 4},
		{"owner with other owner as prefix", "a@xa", []string{"b@y"}, 3},
		{"owner with NUL", "a@x\x00", []string{"z@z"}, 1},
		{"unknown owner", "a@", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, ver, err := r.Items(ctx, tc.owner)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range items {
				got = append(got, it.Contact)
				if it.Name != it.Contact {
					t.Errorf("item %q has name %q of another owner's item", it.Contact, it.Name)
				}
			}
			if !slices.Equal(got, tc.want) || ver != tc.wantVer {
				t.Errorf("Items(%q) = %q, version %d; want %q, %d", tc.owner, got, ver, tc.want, tc.wantVer)
			}
			if n, err := r.Count(ctx, tc.owner); err != nil || n != len(tc.want) {
				t.Errorf("Count(%q) = %d, %v; want %d", tc.owner, n, err, len(tc.want))
			}
			_, removed, cur, ok, err := r.Since(ctx, tc.owner, 0)
			if err != nil || !ok || cur != tc.wantVer {
				t.Fatalf("Since(%q, 0) = cur %d, ok %v, %v", tc.owner, cur, ok, err)
			}
			if tc.owner == "a@xa" && !slices.Equal(contactsOf(removed), []string{"c@y"}) || tc.owner != "a@xa" && removed != nil {
				t.Errorf("Since(%q, 0) removed = %v", tc.owner, removed)
			}
		})
	}
}

func TestRostersSince(t *testing.T) {
	// Random puts and deletes over a few contacts, checked against a model:
	// for every past version v, Since(v) lists exactly the contacts whose
	// last change is after v, in version order, and applying it to the
	// roster as it was at v gives the current roster.
	ctx := t.Context()
	r := openTest(t).Rosters()
	const owner = "juliet@example.org"
	contacts := []string{"a@x", "b@x", "c@x", "ab@x", "d@y", "e@z"}
	names := []string{"", "A", "B"}
	rng := rand.New(rand.NewPCG(1, 2))

	snaps := []map[string]RosterItem{{}} // snaps[v]: roster at version v
	last := map[string]uint64{}          // contact → version of its last change
	for range 120 {
		c := contacts[rng.IntN(len(contacts))]
		cur := snaps[len(snaps)-1]
		old, exists := cur[c]
		if rng.IntN(3) == 0 {
			_, ver, changed := mustUpdate(t, r, owner, c, deleteItem)
			if changed != exists {
				t.Fatalf("delete %s: changed = %v, exists = %v", c, changed, exists)
			}
			if changed {
				next := maps.Clone(cur)
				delete(next, c)
				snaps = append(snaps, next)
				last[c] = ver
			}
		} else {
			name := names[rng.IntN(len(names))]
			item, ver, changed := mustUpdate(t, r, owner, c, putItem(name, SubNone))
			if want := !exists || old.Name != name; changed != want {
				t.Fatalf("put %s %q: changed = %v, want %v", c, name, changed, want)
			}
			if changed {
				next := maps.Clone(cur)
				next[c] = item
				snaps = append(snaps, next)
				last[c] = ver
			}
		}
		if _, ver, _ := mustUpdate(t, r, owner, c, keepItem); ver != uint64(len(snaps)-1) {
			t.Fatalf("version = %d after %d changes", ver, len(snaps)-1)
		}
	}

	final := snaps[len(snaps)-1]
	current := uint64(len(snaps) - 1)
	for v := range current + 1 {
		changed, removed, cur, ok, err := r.Since(ctx, owner, v)
		if err != nil || !ok || cur != current {
			t.Fatalf("Since(%d) = cur %d, ok %v, %v; want cur %d, ok", v, cur, ok, err, current)
		}
		var wantChanged, wantRemoved []string
		for _, c := range slices.SortedFunc(maps.Keys(last), func(a, b string) int { return cmp.Compare(last[a], last[b]) }) {
			if last[c] <= v {
				continue
			}
			if _, live := final[c]; live {
				wantChanged = append(wantChanged, c)
			} else {
				// Deleted after v (whether or not it existed at v).
				wantRemoved = append(wantRemoved, c)
			}
		}
		var gotChanged []string
		for _, it := range changed {
			gotChanged = append(gotChanged, it.Contact)
		}
		for _, it := range removed {
			if it.Version != last[it.Contact] {
				t.Fatalf("Since(%d): removal of %s at version %d, want %d", v, it.Contact, it.Version, last[it.Contact])
			}
		}
		if !slices.Equal(gotChanged, wantChanged) || !slices.Equal(contactsOf(removed), wantRemoved) {
			t.Fatalf("Since(%d) = changed %q, removed %v; want %q, %q", v, gotChanged, removed, wantChanged, wantRemoved)
		}
		applied := maps.Clone(snaps[v])
		for _, it := range changed {
			applied[it.Contact] = it
		}
		for _, it := range removed {
			delete(applied, it.Contact)
		}
		if !reflect.DeepEqual(applied, final) {
			t.Fatalf("roster at %d + Since(%d) = %+v\nwant %+v", v, v, applied, final)
		}
	}

	for _, v := range []uint64{current + 1, math.MaxUint64} {
		changed, removed, cur, ok, err := r.Since(ctx, owner, v)
		if err != nil || ok || cur != current || changed != nil || removed != nil {
			t.Errorf("Since(future %d) = %v, %v, cur %d, ok %v, %v; want unknown", v, changed, removed, cur, ok, err)
		}
	}
	t.Run("unknown owner", func(t *testing.T) {
		if _, _, cur, ok, err := r.Since(ctx, "nobody@example.org", 0); err != nil || !ok || cur != 0 {
			t.Errorf("Since(0) = cur %d, ok %v, %v; want 0, true", cur, ok, err)
		}
		if _, _, cur, ok, err := r.Since(ctx, "nobody@example.org", 1); err != nil || ok || cur != 0 {
			t.Errorf("Since(1) = cur %d, ok %v, %v; want 0, false", cur, ok, err)
		}
	})
}

func TestRostersTombstonePruning(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	r := db.Rosters()
	const owner = "juliet@example.org"
	contact := func(i int) string { return fmt.Sprintf("c%04d@example.net", i) }
	const n = MaxRosterTombstones + 10

	// Versions 1..n create c0000..c1009; n+1..2n delete them in order.
	rosterBatch(t, db, owner, func(rt rosterTx) error {
		for i := range n {
			if _, _, _, err := rt.update(contact(i), putItem("", SubNone)); err != nil {
				return err
			}
		}
		for i := range n {
			if _, _, _, err := rt.update(contact(i), deleteItem); err != nil {
				return err
			}
		}
		return nil
	})
	floor := uint64(n + 10) // deletion of c0009, the newest pruned
	if st := readRosterState(t, db, owner); st != (rosterState{version: 2 * n, floor: floor, tombstones: MaxRosterTombstones}) {
		t.Fatalf("state = %+v", st)
	}
	checkIndex := func(live, tombs int) {
		t.Helper()
		if got := countRosterIndex(t, db, owner, rosterSpaceLive); got != live {
			t.Errorf("live index entries = %d, want %d", got, live)
		}
		if got := countRosterIndex(t, db, owner, rosterSpaceTomb); got != tombs {
			t.Errorf("tombstones by version = %d, want %d", got, tombs)
		}
		if got := countRosterIndex(t, db, owner, rosterSpaceGone); got != tombs {
			t.Errorf("tombstones by contact = %d, want %d", got, tombs)
		}
	}
	checkIndex(0, MaxRosterTombstones)

	since := func(v uint64) ([]string, []string, bool) {
		t.Helper()
		changed, removed, cur, ok, err := r.Since(ctx, owner, v)
		if err != nil {
			t.Fatal(err)
		}
		if want := readRosterState(t, db, owner).version; cur != want {
			t.Fatalf("Since(%d) current = %d, want %d", v, cur, want)
		}
		var c []string
		for _, it := range changed {
			c = append(c, it.Contact)
		}
		return c, contactsOf(removed), ok
	}
	contacts := func(from, to int, skip ...int) []string {
		var out []string
		for i := from; i < to; i++ {
			if !slices.Contains(skip, i) {
				out = append(out, contact(i))
			}
		}
		return out
	}

	for _, v := range []uint64{0, 1, floor - 1} {
		if _, _, ok := since(v); ok {
			t.Errorf("Since(%d) below the floor %d is ok", v, floor)
		}
	}
	if changed, removed, ok := since(floor); !ok || changed != nil || !slices.Equal(removed, contacts(10, n)) {
		t.Fatalf("Since(floor) = %v, %d removed, ok %v; want the %d retained tombstones", changed, len(removed), ok, MaxRosterTombstones)
	}
	if changed, removed, ok := since(n + 500); !ok || changed != nil || !slices.Equal(removed, contacts(500, n)) {
		t.Fatalf("Since(%d) = %v, %d removed, ok %v", n+500, changed, len(removed), ok)
	}

	// Re-adding a pruned contact leaves the tombstones alone; re-adding a
	// retained one drops its tombstone.
	if _, ver, _ := mustUpdate(t, r, owner, contact(5), putItem("back", SubNone)); ver != 2*n+1 {
		t.Fatalf("version = %d", ver)
	}
	if _, ver, _ := mustUpdate(t, r, owner, contact(600), putItem("back", SubNone)); ver != 2*n+2 {
		t.Fatalf("version = %d", ver)
	}
	checkIndex(2, MaxRosterTombstones-1)
	if changed, removed, ok := since(n + 500); !ok || !slices.Equal(changed, []string{contact(5), contact(600)}) || !slices.Equal(removed, contacts(500, n, 600)) {
		t.Fatalf("Since(%d) = %q, %d removed, ok %v", n+500, changed, len(removed), ok)
	}

	// Two more deletions: one tombstone over the limit, so the oldest
	// retained one (c0010, deleted at n+11) is pruned and the floor moves.
	mustUpdate(t, r, owner, contact(5), deleteItem)
	mustUpdate(t, r, owner, contact(600), deleteItem)
	checkIndex(0, MaxRosterTombstones)
	if st := readRosterState(t, db, owner); st.floor != floor+1 || st.tombstones != MaxRosterTombstones || st.version != 2*n+4 {
		t.Fatalf("state = %+v", st)
	}
	if _, _, ok := since(floor); ok {
		t.Error("Since(old floor) still ok after another prune")
	}
	if _, removed, ok := since(floor + 1); !ok || len(removed) != MaxRosterTombstones || removed[len(removed)-1] != contact(600) || removed[len(removed)-2] != contact(5) {
		t.Errorf("Since(new floor) = %d removed, ok %v", len(removed), ok)
	}
}

func TestRostersPersistAcrossReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	const owner = "juliet@example.org"
	mustUpdate(t, db.Rosters(), owner, "romeo@example.net", putItem("Romeo", SubBoth, "Friends"))
	mustUpdate(t, db.Rosters(), owner, "nurse@example.net", putItem("Nurse", SubTo))
	mustUpdate(t, db.Rosters(), owner, "tybalt@example.net", putItem("", SubNone))
	mustUpdate(t, db.Rosters(), owner, "tybalt@example.net", deleteItem)
	wantItems, wantVer, err := db.Rosters().Items(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, path, Options{})
	r := db.Rosters()
	items, ver, err := r.Items(ctx, owner)
	if err != nil || ver != wantVer || !reflect.DeepEqual(items, wantItems) {
		t.Fatalf("Items after reopen = %+v, %d, %v\nwant %+v, %d", items, ver, err, wantItems, wantVer)
	}
	if _, removed, _, ok, err := r.Since(ctx, owner, 2); err != nil || !ok || !slices.Equal(contactsOf(removed), []string{"tybalt@example.net"}) {
		t.Fatalf("Since(2) after reopen = %v, %v, %v", removed, ok, err)
	}
	if _, ver, _ := mustUpdate(t, r, owner, "tybalt@example.net", putItem("T", SubNone)); ver != wantVer+1 {
		t.Fatalf("version after reopen and change = %d, want %d", ver, wantVer+1)
	}
}

func TestRostersInvalidOwner(t *testing.T) {
	r := openTest(t).Rosters()
	ctx := t.Context()
	for _, owner := range []string{"", strings.Repeat("o", maxJID+1)} {
		if _, _, err := r.Items(ctx, owner); !errors.Is(err, ErrInvalid) {
			t.Errorf("Items(len %d) = %v, want ErrInvalid", len(owner), err)
		}
		if _, err := r.Item(ctx, owner, "b@y"); !errors.Is(err, ErrInvalid) {
			t.Errorf("Item(len %d) = %v, want ErrInvalid", len(owner), err)
		}
		if _, _, _, err := r.Update(ctx, owner, "b@y", keepItem); !errors.Is(err, ErrInvalid) {
			t.Errorf("Update(len %d) = %v, want ErrInvalid", len(owner), err)
		}
		if _, _, _, _, err := r.Since(ctx, owner, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("Since(len %d) = %v, want ErrInvalid", len(owner), err)
		}
		if _, err := r.Count(ctx, owner); !errors.Is(err, ErrInvalid) {
			t.Errorf("Count(len %d) = %v, want ErrInvalid", len(owner), err)
		}
	}
	if _, err := r.Item(ctx, "a@x", "b@y"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Item(absent) = %v, want ErrNotFound", err)
	}
}

func TestRostersUpdateCancelled(t *testing.T) {
	r := openTest(t).Rosters()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	_, _, _, err := r.Update(ctx, "a@x", "b@y", func(*RosterItem, bool) (UpdateOp, error) {
		called = true
		return UpdatePut, nil
	})
	if !errors.Is(err, context.Canceled) || called {
		t.Fatalf("Update with cancelled ctx = %v (fn called: %v), want context.Canceled", err, called)
	}
}

func BenchmarkRostersItems500(b *testing.B) {
	db := openTest(b)
	const owner = "juliet@example.org"
	err := db.update(b.Context(), func(tx *bbolt.Tx) error {
		rt, err := openRosterTx(tx, owner)
		if err != nil {
			return err
		}
		for i := range 500 {
			_, _, _, err := rt.update(fmt.Sprintf("contact%03d@example.net", i), putItem(fmt.Sprint("Contact ", i), SubBoth, "Friends", "Work"))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		items, _, err := db.Rosters().Items(b.Context(), owner)
		if err != nil || len(items) != 500 {
			b.Fatalf("Items = %d items, %v", len(items), err)
		}
	}
}

func contactsOf(items []RosterItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Contact)
	}
	return out
}

// Roster changes from many sessions at once (a subscription storm), each
// durable before Update returns: they share commits (DB.updateBatched).
// ns/op is the wall time per change with 32 writers per core; with one
// commit per change (bbolt's Update) it was five times as long here
// (475 µs against 94).
func BenchmarkRostersUpdateParallel(b *testing.B) {
	db := openTest(b)
	var n atomic.Int64
	b.SetParallelism(32) // 32 × GOMAXPROCS writers
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		owner := fmt.Sprintf("u%d@example.org", n.Add(1))
		i := 0
		for pb.Next() {
			i++
			// A new contact each time: every call is a change.
			_, _, _, err := db.Rosters().Update(b.Context(), owner, fmt.Sprintf("c%d@example.org", i), putItem("", SubBoth))
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
