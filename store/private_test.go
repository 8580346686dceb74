package store

import (
	"errors"
	"strings"
	"testing"
)

func TestPrivate(t *testing.T) {
	const bm = "storage:bookmarks"
	const notes = "storage:rosternotes"
	item := func(ns, xml string) PrivateItem { return PrivateItem{NS: ns, XML: []byte(xml)} }
	tests := []struct {
		name    string
		owner   string
		sets    [][]PrivateItem // in turn
		max     int             // quota of every Set; 0: 1,000
		lowered int             // when positive, the last Set's quota
		wantErr error           // of the last Set
		want    map[string]string
	}{
		{name: "nothing stored", owner: "a@x", want: map[string]string{bm: ""}},
		{name: "set", owner: "a@x", sets: [][]PrivateItem{{item(bm, "<storage xmlns='storage:bookmarks'/>")}},
			want: map[string]string{bm: "<storage xmlns='storage:bookmarks'/>", notes: ""}},
		{name: "two namespaces at once", owner: "a@x",
			sets: [][]PrivateItem{{item(bm, "<b/>"), item(notes, "<n/>")}},
			want: map[string]string{bm: "<b/>", notes: "<n/>"}},
		{name: "replace one, keep the other", owner: "a@x",
			sets: [][]PrivateItem{{item(bm, "<b/>"), item(notes, "<n/>")}, {item(bm, "<b2/>")}},
			want: map[string]string{bm: "<b2/>", notes: "<n/>"}},
		{name: "empty removes", owner: "a@x",
			sets: [][]PrivateItem{{item(bm, "<b/>"), item(notes, "<n/>")}, {item(bm, "")}},
			want: map[string]string{bm: "", notes: "<n/>"}},
		// The quota counts namespaces and XML: 17+4 bytes fit in 21.
		{name: "at the quota", owner: "a@x", max: 21, sets: [][]PrivateItem{{item(bm, "<b/>")}},
			want: map[string]string{bm: "<b/>"}},
		{name: "over the quota stores none", owner: "a@x", max: 21,
			sets:    [][]PrivateItem{{item(bm, "<b/>")}, {item(bm, "<b></b>")}, {item(notes, "<n/>"), item(bm, "")}},
			wantErr: ErrQuota, want: map[string]string{bm: "<b/>", notes: ""}},
		{name: "a replacement counts once", owner: "a@x", max: 21,
			sets: [][]PrivateItem{{item(bm, "<c/>")}, {item(bm, "<b/>")}},
			want: map[string]string{bm: "<b/>"}},
		// After max_bytes was lowered, an account over it can clear or
		// shrink what it stores, not add to it.
		{name: "over a lowered quota: clear one", owner: "a@x", lowered: 10,
			sets: [][]PrivateItem{{item(bm, "<b/>"), item(notes, "<n/>")}, {item(notes, "")}},
			want: map[string]string{bm: "<b/>", notes: ""}},
		{name: "over a lowered quota: shrink one", owner: "a@x", lowered: 10,
			sets: [][]PrivateItem{{item(bm, "<b></b>")}, {item(bm, "<b/>")}},
			want: map[string]string{bm: "<b/>"}},
		{name: "over a lowered quota: add", owner: "a@x", lowered: 10,
			sets:    [][]PrivateItem{{item(bm, "<b/>")}, {item(notes, "<n/>")}},
			wantErr: ErrQuota, want: map[string]string{bm: "<b/>", notes: ""}},
		// b@x is never created: a session outliving its account stores
		// nothing for a later account of the same name.
		{name: "not an account", owner: "b@x", sets: [][]PrivateItem{{item(bm, "<b/>")}}, wantErr: ErrNotFound,
			want: map[string]string{bm: ""}},
		{name: "empty namespace", owner: "a@x", sets: [][]PrivateItem{{item(bm, "<b/>"), item("", "<x/>")}}, wantErr: ErrInvalid,
			want: map[string]string{bm: ""}},
		{name: "namespace too long", owner: "a@x", sets: [][]PrivateItem{{item(strings.Repeat("n", MaxPrivateNamespace+1), "<x/>")}},
			wantErr: ErrInvalid},
		{name: "not a bare JID", owner: "x", sets: [][]PrivateItem{{item(bm, "<b/>")}}, wantErr: ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t)
			createAccounts(t, db, "a@x")
			p := db.Private()
			max := tc.max
			if max == 0 {
				max = 1000
			}
			var err error
			for i, items := range tc.sets {
				if i == len(tc.sets)-1 && tc.lowered > 0 {
					max = tc.lowered
				}
				err = p.Set(t.Context(), tc.owner, items, max)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Set = %v, want %v", err, tc.wantErr)
			}
			for ns, want := range tc.want {
				got, err := p.Get(t.Context(), tc.owner, ns)
				if want == "" {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("Get(%s) = %q, %v; want ErrNotFound", ns, got, err)
					}
					continue
				}
				if err != nil || string(got) != want {
					t.Errorf("Get(%s) = %q, %v; want %q", ns, got, err, want)
				}
			}
		})
	}
}

// Deleting an account removes its private XML, and only its own:
// "a@x" is a prefix of "a@x.y"'s owner string.
func TestPrivateDeletedWithAccount(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	createAccounts(t, db, "a@x", "a@x.y")
	for _, o := range []string{"a@x", "a@x.y"} {
		if err := db.Private().Set(ctx, o, []PrivateItem{{NS: "n", XML: []byte("<n/>")}}, 100); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Users().Delete(ctx, "x", "a"); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Private().Get(ctx, "a@x", "n"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete = %q, %v; want ErrNotFound", got, err)
	}
	if got, err := db.Private().Get(ctx, "a@x.y", "n"); err != nil || string(got) != "<n/>" {
		t.Errorf("other account's Get = %q, %v", got, err)
	}
	createAccounts(t, db, "a@x")
	if got, err := db.Private().Get(ctx, "a@x", "n"); !errors.Is(err, ErrNotFound) {
		t.Errorf("re-created account's Get = %q, %v; want ErrNotFound", got, err)
	}
}
