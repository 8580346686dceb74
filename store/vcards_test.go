package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestVCards(t *testing.T) {
	alice := Profile{FullName: "Alice Liddell", Given: "Alice", Family: "Liddell", Phones: []string{"1234"}}
	tests := []struct {
		name    string
		owner   string
		vcard   []string // set in turn
		profile Profile  // with the last
		wantErr error    // of the last Set
		want    string   // "" : ErrNotFound
		listed  *Profile // a@x's directory profile; nil: zero
	}{
		{name: "unknown", owner: "a@x"},
		{name: "set", owner: "a@x", vcard: []string{"<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN></vCard>"},
			profile: alice, want: "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN></vCard>", listed: &alice},
		{name: "replace", owner: "a@x", vcard: []string{"<vCard xmlns='vcard-temp'><FN>old</FN></vCard>", "<vCard xmlns='vcard-temp'/>"},
			want: "<vCard xmlns='vcard-temp'/>"},
		{name: "empty removes", owner: "a@x", vcard: []string{"<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>", ""}},
		// b@x is never created: a session outliving its account stores
		// nothing for a later account of the same name.
		{name: "not an account", owner: "b@x", vcard: []string{"<vCard xmlns='vcard-temp'/>"}, wantErr: ErrNotFound},
		{name: "not a bare JID", owner: "x", vcard: []string{"<vCard/>"}, wantErr: ErrInvalid},
		{name: "owner too long", owner: strings.Repeat("o", maxJID) + "@x", vcard: []string{"<vCard/>"}, wantErr: ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t)
			createAccounts(t, db, "a@x")
			v := db.VCards()
			var err error
			for i, card := range tc.vcard {
				p := Profile{FullName: "earlier"}
				if i == len(tc.vcard)-1 {
					p = tc.profile
				}
				err = v.Set(t.Context(), tc.owner, []byte(card), p)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Set = %v, want %v", err, tc.wantErr)
			}
			got, err := v.Get(t.Context(), tc.owner)
			switch {
			case tc.want == "" && tc.wantErr != nil && errors.Is(tc.wantErr, ErrInvalid):
				if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get = %q, %v; want an error", got, err)
				}
			case tc.want == "":
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get = %q, %v; want ErrNotFound", got, err)
				}
			case err != nil || string(got) != tc.want:
				t.Fatalf("Get = %q, %v; want %q", got, err, tc.want)
			}
			var listed []Profile
			if err := v.Directory(t.Context(), "x", "", func(local string, p Profile) bool {
				listed = append(listed, p)
				return true
			}); err != nil {
				t.Fatal(err)
			}
			want := Profile{}
			if tc.listed != nil {
				want = *tc.listed
			}
			if len(listed) != 1 || !reflect.DeepEqual(listed[0], want) {
				t.Fatalf("directory = %+v, want [%+v]", listed, want)
			}
		})
	}
}

func TestVCardsDirectory(t *testing.T) {
	db := openTest(t)
	createAccounts(t, db, "carol@x", "alice@x", "bob@x", "dave@y")
	v := db.VCards()
	ctx := t.Context()
	for _, owner := range []string{"alice@x", "bob@x", "dave@y"} {
		p := Profile{FullName: owner, Emails: []string{owner}}
		if err := v.Set(ctx, owner, []byte("<vCard xmlns='vcard-temp'/>"), p); err != nil {
			t.Fatal(err)
		}
	}
	type entry struct {
		local string
		full  string
	}
	walk := func(host, after string, limit int) []entry {
		t.Helper()
		var out []entry
		err := v.Directory(ctx, host, after, func(local string, p Profile) bool {
			out = append(out, entry{local, p.FullName})
			return len(out) < limit
		})
		if err != nil {
			t.Fatalf("Directory(%s, %q): %v", host, after, err)
		}
		return out
	}
	tests := []struct {
		name, host, after string
		limit             int
		want              []entry
	}{
		{"all of x, in order, carol without a vCard", "x", "", 10, []entry{{"alice", "alice@x"}, {"bob", "bob@x"}, {"carol", ""}}},
		{"after alice", "x", "alice", 10, []entry{{"bob", "bob@x"}, {"carol", ""}}},
		{"after a name between", "x", "b", 10, []entry{{"bob", "bob@x"}, {"carol", ""}}},
		{"after the last", "x", "carol", 10, nil},
		{"stops when told", "x", "", 2, []entry{{"alice", "alice@x"}, {"bob", "bob@x"}}},
		{"other host", "y", "", 10, []entry{{"dave", "dave@y"}}},
		{"no such host", "z", "", 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := walk(tc.host, tc.after, tc.limit); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if err := v.Directory(ctx, "", "", func(string, Profile) bool { return true }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Directory of an empty host = %v, want ErrInvalid", err)
	}

	// Removing an account removes its vCard and profile.
	if _, err := db.Users().Delete(ctx, "x", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Get(ctx, "alice@x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after the account's removal = %v, want ErrNotFound", err)
	}
	createAccounts(t, db, "alice@x")
	if got := walk("x", "", 1); !reflect.DeepEqual(got, []entry{{"alice", ""}}) {
		t.Fatalf("a new alice@x inherited %v", got)
	}
}

func TestProfileCodec(t *testing.T) {
	for _, p := range []Profile{
		{},
		{FullName: "Alice Liddell", Given: "Alice", Family: "Liddell", Nick: "al", OrgUnit: "Sales",
			Emails: []string{"a@x", "alice@example.com"}, Phones: []string{"1234", "+44 20 7946 0000"}},
		{Phones: []string{""}},
	} {
		got := checkStrictCodec(t, encodeProfile(nil, p), decodeProfile)
		if !reflect.DeepEqual(got, p) {
			t.Errorf("decode(encode(%+v)) = %+v", p, got)
		}
	}
	if _, err := decodeProfile([]byte{2, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown codec version = %v, want ErrCorrupt", err)
	}
	// A list count beyond the value's length is refused before anything
	// is allocated for it.
	huge := append([]byte{profileCodecV1, 0, 0, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0x0f)
	if _, err := decodeProfile(huge); !errors.Is(err, ErrCorrupt) {
		t.Errorf("huge list count = %v, want ErrCorrupt", err)
	}
}

func FuzzProfileCodec(f *testing.F) {
	f.Add(encodeProfile(nil, Profile{FullName: "A", Emails: []string{"a@x"}, Phones: []string{"1"}}))
	f.Add(encodeProfile(nil, Profile{}))
	f.Add([]byte{profileCodecV1, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeProfile, encodeProfile)
	})
}
