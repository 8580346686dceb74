package store

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestUsersCreate(t *testing.T) {
	long := strings.Repeat("a", maxJIDPart+1)
	onlySHA256 := testUser("example.org", "modern")
	onlySHA256.SHA1 = ScramCredential{}
	noCreds := testUser("example.org", "nocreds")
	noCreds.SHA1, noCreds.SHA256 = ScramCredential{}, ScramCredential{}
	shortKey := testUser("example.org", "short")
	shortKey.SHA256.StoredKey = shortKey.SHA256.StoredKey[:20]
	noSalt := testUser("example.org", "nosalt")
	noSalt.SHA1.Salt = nil
	negIter := testUser("example.org", "neg")
	negIter.SHA256.Iterations = -1
	zeroCreated := testUser("example.org", "now")
	zeroCreated.Created = time.Time{}

	tests := []struct {
		name    string
		user    User
		wantErr error
	}{
		{"new user", testUser("example.org", "alice"), nil},
		{"duplicate", testUser("example.org", "juliet"), ErrExists},
		{"same local other host", testUser("example.net", "juliet"), nil},
		{"only SCRAM-SHA-256", onlySHA256, nil},
		{"zero created is set to now", zeroCreated, nil},
		{"max length parts", testUser(long[1:], long[1:]), nil},
		{"empty host", testUser("", "bob"), ErrInvalid},
		{"empty local", testUser("example.org", ""), ErrInvalid},
		{"host too long", testUser(long, "bob"), ErrInvalid},
		{"local too long", testUser("example.org", long), ErrInvalid},
		{"no credentials", noCreds, ErrInvalid},
		{"wrong key length", shortKey, ErrInvalid},
		{"empty salt", noSalt, ErrInvalid},
		{"negative iterations", negIter, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			users := openTest(t).Users()
			if err := users.Create(ctx, testUser("example.org", "juliet")); err != nil {
				t.Fatal(err)
			}
			err := users.Create(ctx, tc.user)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Create = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			got, err := users.Get(ctx, tc.user.Host, tc.user.Local)
			if err != nil {
				t.Fatalf("Get after Create: %v", err)
			}
			want := tc.user
			if want.Created.IsZero() {
				if time.Since(got.Created) > time.Minute || got.Created.Location() != time.UTC {
					t.Errorf("Created = %v, want about now in UTC", got.Created)
				}
				want.Created = got.Created
			}
			assertUser(t, got, want)
		})
	}
}

func TestUsersGetExistsDelete(t *testing.T) {
	tests := []struct {
		name        string
		host, local string
		wantErr     error
	}{
		{"present", "example.org", "juliet", nil},
		{"unknown local", "example.org", "romeo", ErrNotFound},
		{"unknown host", "example.net", "juliet", ErrNotFound},
		{"host prefix of another", "example.or", "gjuliet", ErrNotFound},
		{"empty local", "example.org", "", ErrInvalid},
		{"empty host", "", "juliet", ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			users := openTest(t).Users()
			want := testUser("example.org", "juliet")
			if err := users.Create(ctx, want); err != nil {
				t.Fatal(err)
			}

			got, err := users.Get(ctx, tc.host, tc.local)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Get = %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				assertUser(t, got, want)
			}

			ok, err := users.Exists(ctx, tc.host, tc.local)
			if errors.Is(tc.wantErr, ErrInvalid) {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Exists = %v, want ErrInvalid", err)
				}
			} else if err != nil || ok != (tc.wantErr == nil) {
				t.Fatalf("Exists = %v, %v; want %v", ok, err, tc.wantErr == nil)
			}

			if _, err := users.Delete(ctx, tc.host, tc.local); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Delete = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if n, _ := users.Count(ctx, ""); n != 1 {
					t.Fatalf("failed Delete changed the count to %d", n)
				}
				return
			}
			if _, err := users.Get(ctx, tc.host, tc.local); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
			}
			if _, err := users.Delete(ctx, tc.host, tc.local); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second Delete = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestUsersSetCredentials(t *testing.T) {
	newSHA1 := cred(100, sha1.Size)
	newSHA256 := cred(200, sha256.Size)
	bad := cred(1, sha1.Size) // SHA-1 sized keys given as SHA-256
	tests := []struct {
		name         string
		host, local  string
		sha1, sha256 ScramCredential
		wantErr      error
	}{
		{"replace both", "example.org", "juliet", newSHA1, newSHA256, nil},
		{"drop SHA-1", "example.org", "juliet", ScramCredential{}, newSHA256, nil},
		{"unknown user", "example.org", "romeo", newSHA1, newSHA256, ErrNotFound},
		{"drop both", "example.org", "juliet", ScramCredential{}, ScramCredential{}, ErrInvalid},
		{"wrong key size", "example.org", "juliet", newSHA1, bad, ErrInvalid},
		{"empty local", "example.org", "", newSHA1, newSHA256, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			users := openTest(t).Users()
			orig := testUser("example.org", "juliet")
			if err := users.Create(ctx, orig); err != nil {
				t.Fatal(err)
			}
			err := users.SetCredentials(ctx, tc.host, tc.local, tc.sha1, tc.sha256)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetCredentials = %v, want %v", err, tc.wantErr)
			}
			want := orig
			if tc.wantErr == nil {
				want.SHA1, want.SHA256 = tc.sha1, tc.sha256
			}
			got, err := users.Get(ctx, "example.org", "juliet")
			if err != nil {
				t.Fatal(err)
			}
			assertUser(t, got, want) // Created survives, failures change nothing
		})
	}
}

func TestUsersListCount(t *testing.T) {
	// Hosts chosen so that naive concatenation host‖local would collide
	// ("x"+"ab" == "xa"+"b") and so that the length prefix crosses the
	// one-byte uvarint boundary (127 → 128 bytes).
	h127 := strings.Repeat("h", 127)
	h128 := strings.Repeat("h", 128)
	seed := []struct{ host, local string }{
		{"x", "a"}, {"x", "ab"}, {"x", "b"}, {"x", "B"}, {"x", "a\x00"},
		{"xa", "b"}, {"xa", "a"},
		{"a", "x"},
		{h127, "one"}, {h128, "two"}, {h128, "three"},
	}
	tests := []struct {
		name string
		host string
		want []string
	}{
		{"byte order within host", "x", []string{"B", "a", "a\x00", "ab", "b"}},
		{"host with another host as prefix", "xa", []string{"a", "b"}},
		{"short host", "a", []string{"x"}},
		{"unknown host", "y", nil},
		{"unknown host prefix of known", "h", nil},
		{"127-byte host", h127, []string{"one"}},
		{"128-byte host", h128, []string{"three", "two"}},
	}

	ctx := t.Context()
	users := openTest(t).Users()
	for _, s := range seed {
		if err := users.Create(ctx, testUser(s.host, s.local)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := users.List(ctx, tc.host)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("List(%q) = %q, want %q", tc.host, got, tc.want)
			}
			n, err := users.Count(ctx, tc.host)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(tc.want) {
				t.Errorf("Count(%q) = %d, want %d", tc.host, n, len(tc.want))
			}
		})
	}

	t.Run("count all", func(t *testing.T) {
		if n, err := users.Count(ctx, ""); err != nil || n != len(seed) {
			t.Fatalf("Count(\"\") = %d, %v; want %d", n, err, len(seed))
		}
	})
	t.Run("list empty host", func(t *testing.T) {
		if _, err := users.List(ctx, ""); !errors.Is(err, ErrInvalid) {
			t.Fatalf("List(\"\") = %v, want ErrInvalid", err)
		}
	})
	t.Run("list all", func(t *testing.T) {
		all, err := users.ListAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, u := range all {
			got = append(got, u.Local+"@"+u.Host)
			if !u.SHA1.IsZero() || !u.SHA256.IsZero() {
				t.Errorf("ListAll returned credentials for %s@%s", u.Local, u.Host)
			}
			if !u.Created.Equal(testCreated) {
				t.Errorf("ListAll %s@%s Created = %v", u.Local, u.Host, u.Created)
			}
		}
		for _, s := range seed {
			want = append(want, s.local+"@"+s.host)
		}
		slices.SortFunc(want, func(a, b string) int {
			ai, bi := strings.LastIndexByte(a, '@'), strings.LastIndexByte(b, '@')
			if c := strings.Compare(a[ai+1:], b[bi+1:]); c != 0 {
				return c
			}
			return strings.Compare(a[:ai], b[:bi])
		})
		if !slices.Equal(got, want) {
			t.Errorf("ListAll = %q\nwant      %q", got, want)
		}
	})
}

func TestUsersPersistAcrossReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	want := []User{testUser("example.org", "juliet"), testUser("example.org", "romeo"), testUser("example.net", "juliet")}
	for _, u := range want {
		if err := db.Users().Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Users().Delete(ctx, "example.org", "romeo"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, path, Options{})
	for _, u := range []User{want[0], want[2]} {
		got, err := db.Users().Get(ctx, u.Host, u.Local)
		if err != nil {
			t.Fatal(err)
		}
		assertUser(t, got, u)
	}
	if ok, err := db.Users().Exists(ctx, "example.org", "romeo"); err != nil || ok {
		t.Fatalf("deleted user exists after reopen: %v, %v", ok, err)
	}
}

func TestUsersReadOnly(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	want := testUser("example.org", "juliet")
	if err := db.Users().Create(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	ro := openAt(t, path, Options{ReadOnly: true})
	got, err := ro.Users().Get(ctx, "example.org", "juliet")
	if err != nil {
		t.Fatal(err)
	}
	assertUser(t, got, want)
	writes := map[string]func() error{
		"Create": func() error { return ro.Users().Create(ctx, testUser("example.org", "romeo")) },
		"SetCredentials": func() error {
			return ro.Users().SetCredentials(ctx, "example.org", "juliet", want.SHA1, want.SHA256)
		},
		"Delete": func() error { _, err := ro.Users().Delete(ctx, "example.org", "juliet"); return err },
	}
	for name, write := range writes {
		if err := write(); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on read-only DB = %v, want ErrReadOnly", name, err)
		}
	}
}

func TestUsersCancelledContext(t *testing.T) {
	users := openTest(t).Users()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]func() error{
		"Create": func() error { return users.Create(ctx, testUser("example.org", "juliet")) },
		"Get": func() error {
			_, err := users.Get(ctx, "example.org", "juliet")
			return err
		},
		"Exists": func() error {
			_, err := users.Exists(ctx, "example.org", "juliet")
			return err
		},
		"List": func() error {
			_, err := users.List(ctx, "example.org")
			return err
		},
		"ListAll": func() error {
			_, err := users.ListAll(ctx)
			return err
		},
		"Count": func() error {
			_, err := users.Count(ctx, "")
			return err
		},
		"Delete": func() error { _, err := users.Delete(ctx, "example.org", "juliet"); return err },
		"SetCredentials": func() error {
			return users.SetCredentials(ctx, "example.org", "juliet", cred(1, sha1.Size), ScramCredential{})
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with cancelled ctx = %v, want context.Canceled", name, err)
		}
	}
}

func BenchmarkUsersGet(b *testing.B) {
	ctx := b.Context()
	users := openTest(b).Users()
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("user%04d", i)
		if err := users.Create(ctx, testUser("example.org", names[i])); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := users.Get(ctx, "example.org", names[i%len(names)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// fillAccount stores something for owner in every per-account sub-store.
func fillAccount(t *testing.T, db *DB, owner string) {
	t.Helper()
	ctx := t.Context()
	r := db.Rosters()
	mustUpdate(t, r, owner, "romeo@example.net", putItem("Romeo", SubBoth, "Friends"))
	mustUpdate(t, r, owner, "nurse@example.net", putItem("Nurse", SubTo))
	mustUpdate(t, r, owner, "tybalt@example.net", putItem("", SubNone))
	mustUpdate(t, r, owner, "tybalt@example.net", deleteItem) // a tombstone
	// Refused for data without an account (SubRequests.Put).
	if err := db.SubRequests().Put(ctx, owner, subReq("paris@example.net", codecTime)); err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	for _, m := range []string{"<m1/>", "<m2/>"} {
		if _, err := db.Offline().Put(ctx, owner, []byte(m), codecTime, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Blocklists().Add(ctx, owner, "tybalt@example.net", "spam.example"); err != nil {
		t.Fatal(err)
	}
	if err := db.Activity().Set(ctx, owner, Activity{LastLogout: codecTime, Status: []byte("<p/>")}); err != nil {
		t.Fatal(err)
	}
	if err := db.PresenceOverrides().Set(ctx, owner, PresenceOverride{Show: "dnd", Set: codecTime}); err != nil {
		t.Fatal(err)
	}
}

// accountKeys counts the keys of every per-account bucket that belong to
// owner.
func accountKeys(t *testing.T, db *DB, owner string) map[string]int {
	t.Helper()
	got := map[string]int{}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		for _, name := range schema2Buckets {
			if n := countPrefix(tx.Bucket([]byte(name)), lp(owner), math.MaxInt); n > 0 {
				got[name] = n
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestUsersDeleteCascade(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	// juliet@example.org is a prefix of juliet@example.org.uk's owner
	// string, and romeo shares the host.
	owners := map[string][2]string{
		"juliet@example.org":    {"example.org", "juliet"},
		"juliet@example.org.uk": {"example.org.uk", "juliet"},
		"romeo@example.org":     {"example.org", "romeo"},
	}
	for owner, u := range owners {
		if err := db.Users().Create(ctx, testUser(u[0], u[1])); err != nil {
			t.Fatal(err)
		}
		fillAccount(t, db, owner)
	}
	// Data without an account: no last activity is stored for it.
	fillAccount(t, db, "ghost@example.org")
	wantGhost := accountKeys(t, db, "ghost@example.org")
	want := accountKeys(t, db, "romeo@example.org")
	if len(want) != len(schema2Buckets) {
		t.Fatalf("fillAccount covers %v, want all of %q", want, schema2Buckets)
	}

	if _, err := db.Users().Delete(ctx, "example.org", "juliet"); err != nil {
		t.Fatal(err)
	}
	if left := accountKeys(t, db, "juliet@example.org"); len(left) != 0 {
		t.Errorf("keys left after Delete: %v", left)
	}
	for _, owner := range []string{"juliet@example.org.uk", "romeo@example.org"} {
		if got := accountKeys(t, db, owner); !reflect.DeepEqual(got, want) {
			t.Errorf("keys of %s after deleting juliet@example.org = %v, want %v", owner, got, want)
		}
	}
	if got := accountKeys(t, db, "ghost@example.org"); !reflect.DeepEqual(got, wantGhost) {
		t.Errorf("keys of ghost@example.org after deleting juliet@example.org = %v, want %v", got, wantGhost)
	}

	// Through the API too.
	const owner = "juliet@example.org"
	if items, ver, err := db.Rosters().Items(ctx, owner); err != nil || items != nil || ver != 0 {
		t.Errorf("Items = %v, %d, %v; want none at version 0", items, ver, err)
	}
	if _, _, _, ok, err := db.Rosters().Since(ctx, owner, 3); err != nil || ok {
		t.Errorf("Since(3) = ok %v, %v; want unknown", ok, err)
	}
	if reqs, err := db.SubRequests().List(ctx, owner); err != nil || reqs != nil {
		t.Errorf("SubRequests = %v, %v", reqs, err)
	}
	if n, err := db.Offline().Count(ctx, owner); err != nil || n != 0 {
		t.Errorf("Offline.Count = %d, %v", n, err)
	}
	if msgs, err := db.Offline().List(ctx, owner); err != nil || msgs != nil {
		t.Errorf("Offline.List = %v, %v", msgs, err)
	}
	if jids, err := db.Blocklists().List(ctx, owner); err != nil || jids != nil {
		t.Errorf("Blocklist = %v, %v", jids, err)
	}
	if _, err := db.Activity().Get(ctx, owner); !errors.Is(err, ErrNotFound) {
		t.Errorf("Activity.Get = %v, want ErrNotFound", err)
	}
	if _, err := db.PresenceOverrides().Get(ctx, owner); !errors.Is(err, ErrNotFound) {
		t.Errorf("PresenceOverrides.Get = %v, want ErrNotFound", err)
	}
	if all, err := db.PresenceOverrides().All(ctx); err != nil || len(all) != 3 {
		t.Errorf("PresenceOverrides.All = %v, %v; want the 3 other owners", all, err)
	}

	// Deleting an unknown account fails and touches no data.
	if _, err := db.Users().Delete(ctx, "example.org", "ghost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete(ghost) = %v, want ErrNotFound", err)
	}
	if got := accountKeys(t, db, "ghost@example.org"); !reflect.DeepEqual(got, wantGhost) {
		t.Errorf("keys of ghost after failed Delete = %v, want %v", got, wantGhost)
	}

	// A re-created account starts empty.
	if err := db.Users().Create(ctx, testUser("example.org", "juliet")); err != nil {
		t.Fatal(err)
	}
	if _, ver, _ := mustUpdate(t, db.Rosters(), owner, "romeo@example.net", putItem("R", SubNone)); ver != 1 {
		t.Errorf("roster version of re-created account = %d, want 1", ver)
	}
}

// Deleting an account ends every other roster's subscriptions with it, in
// the same transaction, and says what changed: an account created later
// under the same name inherits none of them (XEP-0077 §3.2), even when the
// server was not running to tell anyone. This covers items the deleted
// account did not list itself (a pre-approval, RFC 6121 §3.4).
func TestUsersDeleteReleasesContacts(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	const gone = "a@x"
	createAccounts(t, db, gone, "b@x", "c@x", "e@x", "f@x", "g@x", "h@x", "k@x")
	r := db.Rosters()
	with := func(sub Subscription, ask, approved bool) func(*RosterItem, bool) (UpdateOp, error) {
		return func(it *RosterItem, _ bool) (UpdateOp, error) {
			it.Subscription, it.Ask, it.Approved = sub, ask, approved
			return UpdatePut, nil
		}
	}
	// The deleted account's side.
	mustUpdate(t, r, gone, "b@x", putItem("Bob", SubBoth))
	mustUpdate(t, r, gone, "c@x", putItem("", SubTo))
	mustUpdate(t, r, gone, "f@x", with(SubNone, true, false))
	for _, from := range []string{"c@x", "e@x"} {
		if err := db.SubRequests().Put(ctx, gone, subReq(from, codecTime)); err != nil {
			t.Fatal(err)
		}
	}
	// The others' side.
	mustUpdate(t, r, "b@x", gone, putItem("Alice", SubBoth, "Team"))
	mustUpdate(t, r, "c@x", gone, with(SubFrom, true, false))
	mustUpdate(t, r, "e@x", gone, with(SubNone, true, false))
	mustUpdate(t, r, "g@x", gone, putItem("Unknown to a", SubTo))
	mustUpdate(t, r, "h@x", gone, with(SubNone, false, true)) // pre-approved
	mustUpdate(t, r, "k@x", "b@x", putItem("", SubBoth))      // not involved
	for _, req := range []struct{ owner, from string }{{"f@x", gone}, {"f@x", "e@x"}} {
		if err := db.SubRequests().Put(ctx, req.owner, subReq(req.from, codecTime)); err != nil {
			t.Fatal(err)
		}
	}
	_, kVer, _ := mustUpdate(t, r, "k@x", "b@x", keepItem)

	released, err := db.Users().Delete(ctx, "x", "a")
	if err != nil {
		t.Fatal(err)
	}

	none := func(name string, groups ...string) RosterItem {
		return RosterItem{Contact: gone, Name: name, Groups: groups, Subscription: SubNone}
	}
	want := []struct {
		owner          string
		before, after  RosterItem // Contact, Name, Groups, Subscription, Ask, Approved
		requestDropped bool
	}{
		{"b@x", RosterItem{Contact: gone, Name: "Alice", Groups: []string{"Team"}, Subscription: SubBoth}, none("Alice", "Team"), false},
		{"c@x", RosterItem{Contact: gone, Subscription: SubFrom, Ask: true}, none(""), false},
		{"e@x", RosterItem{Contact: gone, Ask: true}, none(""), false},
		{"f@x", RosterItem{}, RosterItem{}, true},
		{"g@x", RosterItem{Contact: gone, Name: "Unknown to a", Subscription: SubTo}, none("Unknown to a"), false},
		{"h@x", RosterItem{Contact: gone, Approved: true}, none(""), false},
	}
	strip := func(it RosterItem) RosterItem {
		it.Added, it.Version = time.Time{}, 0
		if len(it.Groups) == 0 {
			it.Groups = nil
		}
		return it
	}
	if len(released) != len(want) {
		t.Fatalf("released %d owners, want %d: %+v", len(released), len(want), released)
	}
	for i, w := range want {
		got := released[i]
		if got.Owner != w.owner || !reflect.DeepEqual(strip(got.Before), w.before) || !reflect.DeepEqual(strip(got.After), w.after) || got.RequestDropped != w.requestDropped {
			t.Errorf("released[%d] = %+v\nwant owner %s before %+v after %+v request dropped %v", i, got, w.owner, w.before, w.after, w.requestDropped)
		}
		if w.after.Contact == "" {
			continue
		}
		item, err := r.Item(ctx, w.owner, gone)
		if err != nil || !reflect.DeepEqual(strip(item), w.after) || item.Version != got.Version {
			t.Errorf("%s's stored item for %s = %+v, %v; want %+v at version %d", w.owner, gone, item, err, w.after, got.Version)
		}
	}
	if _, ver, _ := mustUpdate(t, r, "k@x", "b@x", keepItem); ver != kVer {
		t.Errorf("k@x's roster version moved from %d to %d", kVer, ver)
	}
	reqs, err := db.SubRequests().List(ctx, "f@x")
	if err != nil || len(reqs) != 1 || reqs[0].From != "e@x" {
		t.Errorf("f@x's requests = %+v, %v; want only e@x's", reqs, err)
	}
}
