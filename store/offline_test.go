package store

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOffline(t *testing.T) {
	const owner = "juliet@example.org"
	type put struct {
		owner  string
		stanza string
		limit  int
	}
	tests := []struct {
		name    string
		puts    []put
		wantErr []error // per put; nil entries succeed
		want    []string
	}{
		{"none", nil, nil, nil},
		{"oldest first", []put{{owner, "<m1/>", 0}, {owner, "<m2/>", 0}, {owner, "<m3/>", 0}}, nil, []string{"<m1/>", "<m2/>", "<m3/>"}},
		{"quota", []put{{owner, "<m1/>", 2}, {owner, "<m2/>", 2}, {owner, "<m3/>", 2}, {owner, "<m4/>", 3}},
			[]error{nil, nil, ErrQuota, nil}, []string{"<m1/>", "<m2/>", "<m4/>"}},
		{"quota of one", []put{{owner, "<m1/>", 1}, {owner, "<m2/>", 1}}, []error{nil, ErrQuota}, []string{"<m1/>"}},
		{"no limit", []put{{owner, "<m1/>", -1}, {owner, "<m2/>", 0}}, nil, []string{"<m1/>", "<m2/>"}},
		{"other owners", []put{{"a@x", "<a/>", 1}, {owner, "<m1/>", 1}, {owner + "a", "<b/>", 1}, {"a@xa", "<c/>", 1}}, nil, []string{"<m1/>"}},
		{"empty stanza", []put{{owner, "", 0}}, []error{ErrInvalid}, nil},
		{"empty owner", []put{{"", "<m/>", 0}}, []error{ErrInvalid}, nil},
		{"owner too long", []put{{strings.Repeat("o", maxJID+1), "<m/>", 0}}, []error{ErrInvalid}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			o := openTest(t).Offline()
			var lastID uint64
			for i, p := range tc.puts {
				var wantErr error
				if i < len(tc.wantErr) {
					wantErr = tc.wantErr[i]
				}
				id, err := o.Put(ctx, p.owner, []byte(p.stanza), codecTime.Add(time.Duration(i)*time.Second), p.limit)
				if !errors.Is(err, wantErr) {
					t.Fatalf("Put %d = %v, want %v", i, err, wantErr)
				}
				if err == nil {
					if id <= lastID {
						t.Fatalf("Put %d id %d not above %d", i, id, lastID)
					}
					lastID = id
				}
			}
			n, err := o.Count(ctx, owner)
			if err != nil || n != len(tc.want) {
				t.Fatalf("Count = %d, %v; want %d", n, err, len(tc.want))
			}
			listed, err := o.List(ctx, owner)
			if err != nil {
				t.Fatal(err)
			}
			taken, err := o.Take(ctx, owner)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(listed, taken) {
				t.Fatalf("List = %+v, Take = %+v", listed, taken)
			}
			var got []string
			for i, m := range taken {
				got = append(got, string(m.Stanza))
				if i > 0 && m.ID <= taken[i-1].ID {
					t.Errorf("ids not increasing: %d after %d", m.ID, taken[i-1].ID)
				}
				if m.Stored.Location() != time.UTC || m.Stored.Before(codecTime) {
					t.Errorf("Stored = %v", m.Stored)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Take = %q, want %q", got, tc.want)
			}
			if again, err := o.Take(ctx, owner); err != nil || again != nil {
				t.Fatalf("second Take = %+v, %v; want nothing", again, err)
			}
			if n, err := o.Count(ctx, owner); err != nil || n != 0 {
				t.Fatalf("Count after Take = %d, %v", n, err)
			}
			// Other owners keep their messages.
			for _, p := range tc.puts {
				if p.owner == owner || p.owner == "" || len(p.owner) > maxJID {
					continue
				}
				if n, err := o.Count(ctx, p.owner); err != nil || n != 1 {
					t.Errorf("Count(%s) after Take of %s = %d, %v; want 1", p.owner, owner, n, err)
				}
			}
		})
	}
}

func TestOfflineStoredTime(t *testing.T) {
	ctx := t.Context()
	o := openTest(t).Offline()
	in := time.Date(2030, 1, 2, 3, 4, 5, 999999999, time.FixedZone("X", 3600))
	if _, err := o.Put(ctx, "a@x", []byte("<m/>"), in, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Put(ctx, "a@x", []byte("<now/>"), time.Time{}, 0); err != nil {
		t.Fatal(err)
	}
	msgs, err := o.List(ctx, "a@x")
	if err != nil || len(msgs) != 2 {
		t.Fatalf("List = %+v, %v", msgs, err)
	}
	if want := in.Truncate(time.Microsecond); !msgs[0].Stored.Equal(want) || msgs[0].Stored.Location() != time.UTC {
		t.Errorf("Stored = %v, want %v in UTC", msgs[0].Stored, want)
	}
	if time.Since(msgs[1].Stored) > time.Minute {
		t.Errorf("zero Stored became %v, want about now", msgs[1].Stored)
	}
}

func TestOfflineIDsIncreaseAcrossOwnersAndReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	var ids []uint64
	put := func(db *DB, owner string) {
		t.Helper()
		id, err := db.Offline().Put(ctx, owner, []byte("<m/>"), codecTime, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > 0 && id <= ids[len(ids)-1] {
			t.Fatalf("id %d after %d", id, ids[len(ids)-1])
		}
		ids = append(ids, id)
	}
	put(db, "a@x")
	put(db, "b@x")
	put(db, "a@x")
	if _, err := db.Offline().Take(ctx, "a@x"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Options{})
	if n, err := db.Offline().Count(ctx, "b@x"); err != nil || n != 1 {
		t.Fatalf("Count after reopen = %d, %v", n, err)
	}
	msgs, err := db.Offline().List(ctx, "b@x")
	if err != nil || len(msgs) != 1 || msgs[0].ID != ids[1] || string(msgs[0].Stanza) != "<m/>" {
		t.Fatalf("List after reopen = %+v, %v", msgs, err)
	}
	put(db, "a@x") // taken ids are not reused
}

// TestOfflineRestore: messages taken and put back keep their ids and their
// place before those stored meanwhile, over the quota; a restore of a bad
// id restores nothing, nor does one for an account deleted meanwhile.
func TestOfflineRestore(t *testing.T) {
	const owner = "juliet@example.org"
	ctx := t.Context()
	db := openTest(t)
	if err := db.Users().Create(ctx, testUser("example.org", "juliet")); err != nil {
		t.Fatal(err)
	}
	o := db.Offline()
	put := func(stanza string) {
		t.Helper()
		if _, err := o.Put(ctx, owner, []byte(stanza), codecTime, 3); err != nil {
			t.Fatalf("Put %s: %v", stanza, err)
		}
	}
	stanzas := func() []string {
		t.Helper()
		msgs, err := o.List(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range msgs {
			out = append(out, string(m.Stanza))
		}
		return out
	}
	put("<m1/>")
	put("<m2/>")
	put("<m3/>")
	taken, err := o.Take(ctx, owner)
	if err != nil || len(taken) != 3 {
		t.Fatalf("Take = %+v, %v", taken, err)
	}
	put("<m4/>") // stored while the first were being delivered
	put("<m5/>")
	// m1 was delivered; m2 and m3 go back before m4 and m5, over the
	// quota of 3, and again without counting twice.
	for range 2 {
		if err := o.Restore(ctx, owner, taken[1:]); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := stanzas(), []string{"<m2/>", "<m3/>", "<m4/>", "<m5/>"}; !slices.Equal(got, want) {
		t.Fatalf("after Restore: %q, want %q", got, want)
	}
	if n, err := o.Count(ctx, owner); err != nil || n != 4 {
		t.Fatalf("Count = %d, %v; want 4", n, err)
	}
	if _, err := o.Put(ctx, owner, []byte("<m6/>"), codecTime, 3); !errors.Is(err, ErrQuota) {
		t.Fatalf("Put over the quota after Restore: %v", err)
	}
	for _, tc := range []struct {
		name string
		msgs []OfflineMessage
	}{
		{"zero id", []OfflineMessage{{ID: 0, Stanza: []byte("<x/>")}}},
		{"id never given", []OfflineMessage{{ID: taken[0].ID, Stanza: []byte("<x/>")}, {ID: 1 << 40, Stanza: []byte("<y/>")}}},
		{"empty stanza", []OfflineMessage{{ID: taken[0].ID}}},
	} {
		if err := o.Restore(ctx, owner, tc.msgs); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Restore = %v, want ErrInvalid", tc.name, err)
		}
	}
	if err := o.Restore(ctx, "", taken); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty owner: Restore = %v, want ErrInvalid", err)
	}
	if got := stanzas(); len(got) != 4 {
		t.Fatalf("a refused Restore changed the messages: %q", got)
	}

	// The account is deleted while a delivery holds its messages: they
	// are not restored for a later account of the same name.
	taken, err = o.Take(ctx, owner)
	if err != nil || len(taken) != 4 {
		t.Fatalf("Take = %+v, %v", taken, err)
	}
	if _, err := db.Users().Delete(ctx, "example.org", "juliet"); err != nil {
		t.Fatal(err)
	}
	if err := o.Restore(ctx, owner, taken); err != nil {
		t.Fatalf("Restore for a deleted account: %v", err)
	}
	if err := db.Users().Create(ctx, testUser("example.org", "juliet")); err != nil {
		t.Fatal(err)
	}
	if got := stanzas(); len(got) != 0 {
		t.Fatalf("the new account got the old one's messages: %q", got)
	}
	if n, err := o.Count(ctx, owner); err != nil || n != 0 {
		t.Fatalf("Count for the new account = %d, %v", n, err)
	}
}

func TestOfflineMessageCodec(t *testing.T) {
	for _, m := range []OfflineMessage{
		{Stored: time.UnixMicro(0).UTC()},
		{Stored: codecTime, Stanza: []byte("<message><body>hi</body></message>")},
		{Stored: time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC), Stanza: []byte(strings.Repeat("m", 300))},
	} {
		got := checkStrictCodec(t, encodeOfflineMessage(nil, m), decodeOfflineMessage)
		if !reflect.DeepEqual(got, m) {
			t.Errorf("decode(encode(%+v)) = %+v", m, got)
		}
	}
	if _, err := decodeOfflineMessage([]byte{2, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown codec version = %v, want ErrCorrupt", err)
	}
	for _, n := range []uint64{0, 1, 1000, 1 << 63} {
		if got := checkStrictCodec(t, encodeOfflineCount(nil, n), decodeOfflineCount); got != n {
			t.Errorf("count %d decoded as %d", n, got)
		}
	}
	if _, err := decodeOfflineCount([]byte{2, 0}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown count codec version = %v, want ErrCorrupt", err)
	}
}

func FuzzOfflineMessageCodec(f *testing.F) {
	f.Add(encodeOfflineMessage(nil, OfflineMessage{Stored: codecTime, Stanza: []byte("<m/>")}))
	f.Add(encodeOfflineMessage(nil, OfflineMessage{}))
	f.Add([]byte{offlineCodecV1, 0, 0x80})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeOfflineMessage, encodeOfflineMessage)
	})
}

func FuzzOfflineCountCodec(f *testing.F) {
	f.Add(encodeOfflineCount(nil, 0))
	f.Add(encodeOfflineCount(nil, 1<<40))
	f.Add([]byte{offlineCountCodecV1, 0x80, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeOfflineCount, encodeOfflineCount)
	})
}

func BenchmarkOfflinePut(b *testing.B) {
	ctx := b.Context()
	o := openTest(b).Offline()
	stanza := []byte(`<message from="romeo@example.net/orchard" to="juliet@example.org" type="chat"><body>Wherefore art thou?</body></message>`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := o.Put(ctx, "juliet@example.org", stanza, codecTime, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOfflinePutTake(b *testing.B) {
	// One login's worth: 50 messages stored, then taken in one transaction.
	ctx := b.Context()
	o := openTest(b).Offline()
	stanza := []byte(`<message from="romeo@example.net/orchard" to="juliet@example.org" type="chat"><body>Wherefore art thou?</body></message>`)
	b.ReportAllocs()
	for b.Loop() {
		for range 50 {
			if _, err := o.Put(ctx, "juliet@example.org", stanza, codecTime, 0); err != nil {
				b.Fatal(err)
			}
		}
		msgs, err := o.Take(ctx, "juliet@example.org")
		if err != nil || len(msgs) != 50 {
			b.Fatalf("Take = %d, %v", len(msgs), err)
		}
	}
}
