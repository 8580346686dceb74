package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
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
			if err := v.Directory(t.Context(), "x", func(local string, p Profile) bool {
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
	walk := func(host string, limit int) []entry {
		t.Helper()
		var out []entry
		err := v.Directory(ctx, host, func(local string, p Profile) bool {
			out = append(out, entry{local, p.FullName})
			return len(out) < limit
		})
		if err != nil {
			t.Fatalf("Directory(%s): %v", host, err)
		}
		return out
	}
	tests := []struct {
		name, host string
		limit      int
		want       []entry
	}{
		{"all of x, in order, carol without a vCard", "x", 10, []entry{{"alice", "alice@x"}, {"bob", "bob@x"}, {"carol", ""}}},
		{"stops when told", "x", 2, []entry{{"alice", "alice@x"}, {"bob", "bob@x"}}},
		{"other host", "y", 10, []entry{{"dave", "dave@y"}}},
		{"no such host", "z", 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := walk(tc.host, tc.limit); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if err := v.Directory(ctx, "", func(string, Profile) bool { return true }); !errors.Is(err, ErrInvalid) {
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
	if got := walk("x", 1); !reflect.DeepEqual(got, []entry{{"alice", ""}}) {
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

func TestVCardsUpdate(t *testing.T) {
	db := openTest(t)
	createAccounts(t, db, "a@x")
	v := db.VCards()
	ctx := t.Context()
	var seen []string
	edit := func(next string, err error) func([]byte) ([]byte, Profile, error) {
		return func(old []byte) ([]byte, Profile, error) {
			seen = append(seen, string(old))
			return []byte(next), Profile{FullName: next}, err
		}
	}
	if err := v.Update(ctx, "a@x", edit("<one/>", nil)); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	if err := v.Update(ctx, "a@x", edit("<two/>", refused)); !errors.Is(err, refused) {
		t.Fatalf("Update with a refusing edit = %v", err)
	}
	if err := v.Update(ctx, "a@x", edit("<three/>", nil)); err != nil {
		t.Fatal(err)
	}
	// The refused edit changed nothing: the third saw the first's.
	if want := []string{"", "<one/>", "<one/>"}; !reflect.DeepEqual(seen, want) {
		t.Fatalf("edits saw %q, want %q", seen, want)
	}
	if err := v.Update(ctx, "b@x", edit("<x/>", nil)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update of a missing account = %v, want ErrNotFound", err)
	}
}

func TestVCardsCorrupt(t *testing.T) {
	db := openTest(t)
	createAccounts(t, db, "a@x", "b@x")
	v := db.VCards()
	ctx := t.Context()
	for _, owner := range []string{"a@x", "b@x"} {
		if err := v.Set(ctx, owner, []byte("<vCard xmlns='vcard-temp'/>"), Profile{FullName: owner}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.update(ctx, func(tx *bbolt.Tx) error {
		if err := tx.Bucket([]byte(bucketVCard)).Put(lp("a@x"), []byte{9, 'x'}); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketVCardProfile)).Put(userKey("x", "a"), []byte{profileCodecV1, 200})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Get(ctx, "a@x"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a damaged vCard = %v, want ErrCorrupt", err)
	}
	if err := v.Set(ctx, "a@x", []byte("<vCard/>"), Profile{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Set over a damaged vCard = %v, want ErrCorrupt (Update reads it first)", err)
	}
	// The directory lists the user of the damaged profile without it,
	// and goes on with the others.
	var got []string
	if err := v.Directory(ctx, "x", func(local string, p Profile) bool {
		got = append(got, local+"="+p.FullName)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=", "b=b@x"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("directory = %q, want %q", got, want)
	}
}

// Removing alice@x leaves alice@y's vCard and profile.
func TestVCardsRemovalKeepsOtherHosts(t *testing.T) {
	db := openTest(t)
	createAccounts(t, db, "alice@x", "alice@y")
	v := db.VCards()
	ctx := t.Context()
	for _, owner := range []string{"alice@x", "alice@y"} {
		if err := v.Set(ctx, owner, []byte("<vCard xmlns='vcard-temp'/>"), Profile{FullName: owner}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Users().Delete(ctx, "x", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Get(ctx, "alice@y"); err != nil {
		t.Fatalf("alice@y's vCard after removing alice@x: %v", err)
	}
	var got []string
	if err := v.Directory(ctx, "y", func(local string, p Profile) bool {
		got = append(got, p.FullName)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"alice@y"}) {
		t.Fatalf("directory of y = %q", got)
	}
}
