package store

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestActivity(t *testing.T) {
	tests := []struct {
		name    string
		owner   string
		set     []Activity
		wantErr error
		want    *Activity // nil: ErrNotFound
	}{
		{"unknown", "a@x", nil, nil, nil},
		{"set", "a@x", []Activity{{LastLogout: codecTime, Status: []byte(`<presence type="unavailable"><status>bye</status></presence>`)}}, nil,
			&Activity{LastLogout: codecTime, Status: []byte(`<presence type="unavailable"><status>bye</status></presence>`)}},
		{"nil status", "a@x", []Activity{{LastLogout: codecTime}}, nil, &Activity{LastLogout: codecTime}},
		{"replace", "a@x", []Activity{{LastLogout: codecTime, Status: []byte("<old/>")}, {LastLogout: codecTime.Add(time.Hour)}}, nil,
			&Activity{LastLogout: codecTime.Add(time.Hour)}},
		// Not an account (b@x is never created): the last session of an
		// account removed meanwhile leaves nothing behind.
		{"not an account", "b@x", []Activity{{LastLogout: codecTime}}, nil, nil},
		{"empty owner", "", []Activity{{LastLogout: codecTime}}, ErrInvalid, nil},
		{"owner too long", strings.Repeat("o", maxJID+1), []Activity{{LastLogout: codecTime}}, ErrInvalid, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t)
			createAccounts(t, db, "a@x")
			a := db.Activity()
			for _, act := range tc.set {
				if err := a.Set(t.Context(), tc.owner, act); !errors.Is(err, tc.wantErr) {
					t.Fatalf("Set = %v, want %v", err, tc.wantErr)
				}
			}
			got, err := a.Get(t.Context(), tc.owner)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Get = %v, want %v", err, tc.wantErr)
				}
			case tc.want == nil:
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get = %+v, %v; want ErrNotFound", got, err)
				}
			case err != nil || !reflect.DeepEqual(got, *tc.want):
				t.Fatalf("Get = %+v, %v; want %+v", got, err, *tc.want)
			}
		})
	}
}

func TestActivityIsolationZeroTimeAndReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	createAccounts(t, db, "a@x", "a@xa")
	if err := db.Activity().Set(ctx, "a@x", Activity{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Activity().Set(ctx, "a@xa", Activity{LastLogout: codecTime}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Options{})
	got, err := db.Activity().Get(ctx, "a@x")
	if err != nil || time.Since(got.LastLogout) > time.Minute || got.LastLogout.Location() != time.UTC {
		t.Fatalf("Get(a@x) = %+v, %v; want LastLogout about now in UTC", got, err)
	}
	if got, err := db.Activity().Get(ctx, "a@xa"); err != nil || !got.LastLogout.Equal(codecTime) {
		t.Fatalf("Get(a@xa) = %+v, %v", got, err)
	}
	if _, err := db.Activity().Get(ctx, "a@"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(a@) = %v, want ErrNotFound", err)
	}
}

// Many sessions ending together share commits (updateBatched), and every
// write is still there afterwards, also after a reopen.
func TestActivitySetConcurrentSharesCommits(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	const writers = 200
	owners := make([]string, writers)
	for i := range owners {
		owners[i] = fmt.Sprintf("u%d@x", i)
	}
	createAccounts(t, db, owners...)
	before := lastTxID(t, db)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			st := fmt.Appendf(nil, "<presence type='unavailable'><status>%d</status></presence>", i)
			errs <- db.Activity().Set(ctx, owners[i], Activity{LastLogout: codecTime.Add(time.Duration(i) * time.Second), Status: st})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Set: %v", err)
		}
	}
	// One commit per writer would be 200; writes that arrive during a
	// commit share the next one, which makes it a handful. Half leaves
	// room for a slow machine.
	if commits := lastTxID(t, db) - before; commits > writers/2 {
		t.Errorf("%d writes took %d commits, want at most %d", writers, commits, writers/2)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Options{})
	for i := range writers {
		got, err := db.Activity().Get(ctx, fmt.Sprintf("u%d@x", i))
		want := fmt.Sprintf("<status>%d</status>", i)
		if err != nil || !got.LastLogout.Equal(codecTime.Add(time.Duration(i)*time.Second)) || !strings.Contains(string(got.Status), want) {
			t.Fatalf("Get(u%d@x) = %+v, %v", i, got, err)
		}
	}
}

func TestActivitySetReadOnlyAndClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Activity().Set(t.Context(), "a@x", Activity{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Set on a closed database = %v, want ErrClosed", err)
	}
	ro := openAt(t, path, Options{ReadOnly: true})
	if err := ro.Activity().Set(t.Context(), "a@x", Activity{}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Set on a read-only database = %v, want ErrReadOnly", err)
	}
}

func TestActivityCodec(t *testing.T) {
	for _, act := range []Activity{
		{LastLogout: time.UnixMicro(0).UTC()},
		{LastLogout: codecTime, Status: []byte("<presence type='unavailable'/>")},
		{LastLogout: time.Time{}.UTC()},
	} {
		got := checkStrictCodec(t, encodeActivity(nil, act), decodeActivity)
		if !got.LastLogout.Equal(act.LastLogout) || got.LastLogout.Location() != time.UTC || !bytes.Equal(got.Status, act.Status) {
			t.Errorf("decode(encode(%+v)) = %+v", act, got)
		}
	}
	if _, err := decodeActivity([]byte{2, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown codec version = %v, want ErrCorrupt", err)
	}
}

func FuzzActivityCodec(f *testing.F) {
	f.Add(encodeActivity(nil, Activity{LastLogout: codecTime, Status: []byte("<p/>")}))
	f.Add(encodeActivity(nil, Activity{}))
	f.Add([]byte{activityCodecV1, 1, 5, 'a'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeActivity, encodeActivity)
	})
}
