package store

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPresenceOverrides(t *testing.T) {
	busy := PresenceOverride{Show: "dnd", Status: "On the phone", CallState: "active", Set: codecTime}
	tests := []struct {
		name    string
		owner   string
		set     []PresenceOverride
		clear   bool
		wantErr error
		want    *PresenceOverride // nil: ErrNotFound
	}{
		{"unknown", "a@x", nil, false, nil, nil},
		{"set", "a@x", []PresenceOverride{busy}, false, nil, &busy},
		{"empty fields", "a@x", []PresenceOverride{{Set: codecTime}}, false, nil, &PresenceOverride{Set: codecTime}},
		{"replace", "a@x", []PresenceOverride{busy, {Show: "away", Set: codecTime.Add(time.Minute)}}, false, nil,
			&PresenceOverride{Show: "away", Set: codecTime.Add(time.Minute)}},
		{"clear", "a@x", []PresenceOverride{busy}, true, nil, nil},
		{"clear absent", "a@x", nil, true, nil, nil},
		{"max lengths", "a@x", []PresenceOverride{{
			Show: strings.Repeat("s", MaxOverrideShowLen), Status: strings.Repeat("t", MaxOverrideStatusLen),
			CallState: strings.Repeat("c", MaxOverrideCallStateLen), Set: codecTime,
		}}, false, nil, &PresenceOverride{
			Show: strings.Repeat("s", MaxOverrideShowLen), Status: strings.Repeat("t", MaxOverrideStatusLen),
			CallState: strings.Repeat("c", MaxOverrideCallStateLen), Set: codecTime,
		}},
		{"show too long", "a@x", []PresenceOverride{{Show: strings.Repeat("s", MaxOverrideShowLen+1)}}, false, ErrInvalid, nil},
		{"status too long", "a@x", []PresenceOverride{{Status: strings.Repeat("s", MaxOverrideStatusLen+1)}}, false, ErrInvalid, nil},
		{"call state too long", "a@x", []PresenceOverride{{CallState: strings.Repeat("s", MaxOverrideCallStateLen+1)}}, false, ErrInvalid, nil},
		{"empty owner", "", []PresenceOverride{busy}, false, ErrInvalid, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			p := openTest(t).PresenceOverrides()
			for _, o := range tc.set {
				if err := p.Set(ctx, tc.owner, o); !errors.Is(err, tc.wantErr) {
					t.Fatalf("Set = %v, want %v", err, tc.wantErr)
				}
			}
			if tc.clear {
				if err := p.Clear(ctx, tc.owner); !errors.Is(err, tc.wantErr) {
					t.Fatalf("Clear = %v, want %v", err, tc.wantErr)
				}
			}
			got, err := p.Get(ctx, tc.owner)
			wantAll := map[string]PresenceOverride{}
			switch {
			case tc.owner == "":
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Get = %v, want ErrInvalid", err)
				}
			case tc.want == nil: // also after a rejected Set
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get = %+v, %v; want ErrNotFound", got, err)
				}
			case err != nil || !reflect.DeepEqual(got, *tc.want):
				t.Fatalf("Get = %+v, %v; want %+v", got, err, *tc.want)
			default:
				wantAll[tc.owner] = *tc.want
			}
			all, err := p.All(ctx)
			if err != nil || !reflect.DeepEqual(all, wantAll) {
				t.Fatalf("All = %+v, %v; want %+v", all, err, wantAll)
			}
		})
	}
}

func TestPresenceOverridesAllIsolationAndReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	p := db.PresenceOverrides()
	want := map[string]PresenceOverride{
		"a@x":                    {Show: "dnd", Set: codecTime},
		"a@xa":                   {Status: "elsewhere", Set: codecTime},
		strings.Repeat("o", 200): {CallState: "ringing", Set: codecTime},
	}
	for owner, o := range want {
		if err := p.Set(ctx, owner, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Set(ctx, "gone@x", PresenceOverride{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Clear(ctx, "gone@x"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Options{})
	all, err := db.PresenceOverrides().All(ctx)
	if err != nil || !reflect.DeepEqual(all, want) {
		t.Fatalf("All after reopen = %+v, %v\nwant %+v", all, err, want)
	}
	if _, err := db.PresenceOverrides().Get(ctx, "a@"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(a@) = %v, want ErrNotFound", err)
	}
}

func TestPresenceOverrideZeroSet(t *testing.T) {
	p := openTest(t).PresenceOverrides()
	if err := p.Set(t.Context(), "a@x", PresenceOverride{Show: "away"}); err != nil {
		t.Fatal(err)
	}
	got, err := p.Get(t.Context(), "a@x")
	if err != nil || time.Since(got.Set) > time.Minute || got.Set.Location() != time.UTC {
		t.Fatalf("Get = %+v, %v; want Set about now in UTC", got, err)
	}
}

func TestPresenceOverrideCodec(t *testing.T) {
	for _, o := range []PresenceOverride{
		{Set: time.UnixMicro(0).UTC()},
		{Show: "dnd", Status: "On the phone", CallState: "active", Set: codecTime},
		{Status: strings.Repeat("s", 300), Set: time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		got := checkStrictCodec(t, encodePresenceOverride(nil, o), decodePresenceOverride)
		if !reflect.DeepEqual(got, o) {
			t.Errorf("decode(encode(%+v)) = %+v", o, got)
		}
	}
	if _, err := decodePresenceOverride([]byte{2, 0, 0, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown codec version = %v, want ErrCorrupt", err)
	}
}

func FuzzPresenceOverrideCodec(f *testing.F) {
	f.Add(encodePresenceOverride(nil, PresenceOverride{Show: "dnd", Status: "busy", CallState: "ringing", Set: codecTime}))
	f.Add(encodePresenceOverride(nil, PresenceOverride{}))
	f.Add([]byte{presenceOverrideCodecV1, 3, 'a'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodePresenceOverride, encodePresenceOverride)
	})
}
