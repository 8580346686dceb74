package store

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func testSlot(id, owner string, size int64) Upload {
	return Upload{ID: id, Owner: owner, Name: "très cool.jpg", Size: size, ContentType: "image/jpeg", Created: codecTime}
}

// slotID returns a valid slot id made of the digit d.
func slotID(d byte) string { return strings.Repeat(string(d), UploadIDLen) }

func TestUploadsLifecycle(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	up := db.Uploads()
	slot := testSlot(slotID('a'), "juliet@example.org", 1234)
	if err := up.Reserve(ctx, slot, 0); err != nil {
		t.Fatal(err)
	}
	got, err := up.Get(ctx, slot.ID)
	slot.State = UploadReserved
	if err != nil || got != slot {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, slot)
	}
	if err := up.Reserve(ctx, slot, 0); !errors.Is(err, ErrExists) {
		t.Fatalf("Reserve of an existing id = %v, want ErrExists", err)
	}
	if err := up.MarkUploaded(ctx, slot.ID, "text/html"); err != nil {
		t.Fatal(err)
	}
	got, _ = up.Get(ctx, slot.ID)
	if got.State != UploadDone || got.ContentType != "image/jpeg" {
		t.Fatalf("after MarkUploaded: %+v (the declared content type stays)", got)
	}
	if err := up.MarkUploaded(ctx, slot.ID, ""); !errors.Is(err, ErrExists) {
		t.Fatalf("second MarkUploaded = %v, want ErrExists", err)
	}
	if err := up.MarkUploaded(ctx, slotID('b'), ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MarkUploaded of an unknown id = %v, want ErrNotFound", err)
	}
	undeclared := testSlot(slotID('c'), "juliet@example.org", 1)
	undeclared.ContentType = ""
	if err := up.Reserve(ctx, undeclared, 0); err != nil {
		t.Fatal(err)
	}
	if err := up.MarkUploaded(ctx, undeclared.ID, "image/png"); err != nil {
		t.Fatal(err)
	}
	if got, _ := up.Get(ctx, undeclared.ID); got.ContentType != "image/png" {
		t.Fatalf("content type of an undeclared upload = %q, want the PUT's", got.ContentType)
	}
	// 1234 and 1 bytes, each charged at least UploadMinCharge.
	if n, err := up.Used(ctx, "juliet@example.org"); err != nil || n != 2*UploadMinCharge {
		t.Fatalf("Used = %d, %v; want %d", n, err, 2*UploadMinCharge)
	}
	if err := up.Delete(ctx, slot.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Get(ctx, slot.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	if err := up.Delete(ctx, slot.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v", err)
	}
	if n, _ := up.Used(ctx, "juliet@example.org"); n != UploadMinCharge {
		t.Fatalf("Used after Delete = %d, want %d", n, UploadMinCharge)
	}
}

func TestUploadsReserveInvalid(t *testing.T) {
	db := openTest(t)
	for _, tt := range []struct {
		name   string
		mutate func(*Upload)
	}{
		{"short id", func(u *Upload) { u.ID = "abc" }},
		{"uppercase id", func(u *Upload) { u.ID = strings.Repeat("A", UploadIDLen) }},
		{"path in id", func(u *Upload) { u.ID = "../" + strings.Repeat("a", UploadIDLen-3) }},
		{"no owner", func(u *Upload) { u.Owner = "" }},
		{"no name", func(u *Upload) { u.Name = "" }},
		{"long name", func(u *Upload) { u.Name = strings.Repeat("x", MaxUploadName+1) }},
		{"long content type", func(u *Upload) { u.ContentType = strings.Repeat("x", MaxUploadContentType+1) }},
		{"negative size", func(u *Upload) { u.Size = -1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := testSlot(slotID('1'), "juliet@example.org", 1)
			tt.mutate(&u)
			if err := db.Uploads().Reserve(t.Context(), u, 0); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Reserve = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestUploadsMinCharge: empty files count UploadMinCharge each, so a
// quota bounds how many an account can keep.
func TestUploadsMinCharge(t *testing.T) {
	up := openTest(t).Uploads()
	for i, want := range []error{nil, nil, nil, ErrQuota} {
		err := up.Reserve(t.Context(), testSlot(slotID(byte('a'+i)), "juliet@example.org", 0), 3*UploadMinCharge)
		if !errors.Is(err, want) && (want != nil || err != nil) {
			t.Fatalf("empty slot %d: %v, want %v", i, err, want)
		}
	}
}

// TestUploadsQuota: the quota counts reserved and uploaded slots of the
// owner only, and concurrent reservations cannot overshoot it.
func TestUploadsQuota(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	up := db.Uploads()
	const k = UploadMinCharge // sizes in units of the least charge
	if err := up.Reserve(ctx, testSlot(slotID('1'), "juliet@example.org", 60*k), 100*k); err != nil {
		t.Fatal(err)
	}
	if err := up.Reserve(ctx, testSlot(slotID('2'), "juliet@example.org", 41*k), 100*k); !errors.Is(err, ErrQuota) {
		t.Fatalf("Reserve beyond the quota = %v, want ErrQuota", err)
	}
	if err := up.Reserve(ctx, testSlot(slotID('3'), "juliet@example.org", 40*k), 100*k); err != nil {
		t.Fatalf("Reserve up to the quota: %v", err)
	}
	// Another owner whose JID extends juliet's does not share her quota.
	if err := up.Reserve(ctx, testSlot(slotID('4'), "juliet@example.orgx", 100*k), 100*k); err != nil {
		t.Fatalf("another owner: %v", err)
	}
	if err := up.Reserve(ctx, testSlot(slotID('5'), "juliet@example.org", 1<<40), 0); err != nil {
		t.Fatalf("quota 0 is unlimited: %v", err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 10 {
		wg.Go(func() {
			id := strings.Repeat("0", UploadIDLen-1) + string("0123456789"[i])
			if err := up.Reserve(ctx, testSlot(id, "romeo@example.net", 30*k), 100*k); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 3 {
		t.Fatalf("%d concurrent reservations of 30 bytes within a quota of 100, want 3", ok)
	}
}

// Deleting an account frees its quota for a later account of the same
// name; its slots stay, and another owner's quota is untouched.
func TestUploadsAccountDeleted(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	up := db.Uploads()
	createAccounts(t, db, "juliet@example.org", "juliet@example.orgx")
	const k = UploadMinCharge
	for _, s := range []Upload{
		testSlot(slotID('1'), "juliet@example.org", 60*k),
		testSlot(slotID('2'), "juliet@example.orgx", 70*k),
	} {
		if err := up.Reserve(ctx, s, 100*k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Users().Delete(ctx, "example.org", "juliet"); err != nil {
		t.Fatal(err)
	}
	createAccounts(t, db, "juliet@example.org")
	if n, err := up.Used(ctx, "juliet@example.org"); err != nil || n != 0 {
		t.Fatalf("Used by the re-created account = %d, %v; want 0", n, err)
	}
	if err := up.Reserve(ctx, testSlot(slotID('3'), "juliet@example.org", 100*k), 100*k); err != nil {
		t.Fatalf("the re-created account's whole quota: %v", err)
	}
	if n, err := up.Used(ctx, "juliet@example.orgx"); err != nil || n != 70*k {
		t.Fatalf("Used by the other owner = %d, %v; want %d", n, err, 70*k)
	}
	if got, err := up.Get(ctx, slotID('1')); err != nil || got.Owner != "juliet@example.org" {
		t.Fatalf("the deleted account's slot: %+v, %v; want it kept", got, err)
	}
	// Its expiry later deletes it without an index entry.
	if err := up.Delete(ctx, slotID('1')); err != nil {
		t.Fatal(err)
	}
	if n, err := up.Used(ctx, "juliet@example.org"); err != nil || n != 100*k {
		t.Fatalf("Used after the old slot's deletion = %d, %v; want %d", n, err, 100*k)
	}
}

func TestUploadsExpired(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	up := db.Uploads()
	old, recent := codecTime, codecTime.Add(2*time.Hour)
	for _, s := range []struct {
		id      byte
		created time.Time
		done    bool
	}{{'1', old, true}, {'2', old, false}, {'3', recent, true}, {'4', recent, false}} {
		u := testSlot(slotID(s.id), "juliet@example.org", 1)
		u.Created = s.created
		if err := up.Reserve(ctx, u, 0); err != nil {
			t.Fatal(err)
		}
		if s.done {
			if err := up.MarkUploaded(ctx, u.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	ids := func(us []Upload) string {
		var out []string
		for _, u := range us {
			out = append(out, u.ID[:1])
		}
		return strings.Join(out, ",")
	}
	cut := codecTime.Add(time.Hour)
	for _, tt := range []struct {
		name           string
		done, reserved time.Time
		max            int
		want           string
	}{
		{"both", cut, cut, 10, "1,2"},
		{"files kept forever", time.Time{}, cut, 10, "2"},
		{"reserved only after later", cut, time.Time{}, 10, "1"},
		{"everything", recent.Add(time.Second), recent.Add(time.Second), 10, "1,2,3,4"},
		{"bounded", recent.Add(time.Second), recent.Add(time.Second), 3, "1,2,3"},
	} {
		got, err := up.Expired(ctx, tt.done, tt.reserved, tt.max)
		if err != nil || ids(got) != tt.want {
			t.Errorf("%s: Expired = %s, %v; want %s", tt.name, ids(got), err, tt.want)
		}
	}
}

// TestUploadsCorruptRecord: a record that does not decode is listed for
// cleanup and deleted with its index entry.
func TestUploadsCorruptRecord(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	id := slotID('e')
	if err := db.Uploads().Reserve(ctx, testSlot(id, "juliet@example.org", 7), 0); err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketUploads)).Put([]byte(id), []byte{uploadCodecV1, 9})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Uploads().Get(ctx, id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a corrupt record = %v, want ErrCorrupt", err)
	}
	got, err := db.Uploads().Expired(ctx, time.Time{}, time.Time{}, 10)
	if err != nil || len(got) != 1 || got[0].ID != id {
		t.Fatalf("Expired = %+v, %v; want the corrupt record", got, err)
	}
	if err := db.Uploads().Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.Uploads().Used(ctx, "juliet@example.org"); n != 0 {
		t.Fatalf("Used after deleting the corrupt record = %d", n)
	}
}

func TestUploadsReadOnlyClosedCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	slot := testSlot(slotID('1'), "juliet@example.org", 1)
	if err := db.Uploads().Reserve(t.Context(), slot, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Reserve on a closed database = %v", err)
	}
	if _, err := db.Uploads().Used(t.Context(), slot.Owner); !errors.Is(err, ErrClosed) {
		t.Errorf("Used on a closed database = %v", err)
	}
	ro := openAt(t, path, Options{ReadOnly: true})
	if err := ro.Uploads().Reserve(t.Context(), slot, 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Reserve on a read-only database = %v", err)
	}
	if err := ro.Uploads().MarkUploaded(t.Context(), slot.ID, ""); !errors.Is(err, ErrReadOnly) {
		t.Errorf("MarkUploaded on a read-only database = %v", err)
	}
	if _, err := ro.Uploads().Get(t.Context(), slot.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get on a read-only database = %v", err)
	}
}

func TestUploadCodec(t *testing.T) {
	for _, u := range []Upload{
		{Owner: "a@b", Name: "x", State: UploadReserved, Created: time.UnixMicro(0).UTC()},
		{Owner: "juliet@example.org", Name: "très cool.jpg", Size: 1 << 40, ContentType: "image/jpeg", State: UploadDone, Created: codecTime},
	} {
		got := checkStrictCodec(t, encodeUpload(nil, u), decodeUpload)
		if got != u {
			t.Errorf("decode(encode(%+v)) = %+v", u, got)
		}
	}
	if _, err := decodeUpload(encodeUpload(nil, Upload{Owner: "a@b", Name: "x", State: 3})); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown state = %v, want ErrCorrupt", err)
	}
	if _, err := decodeUpload([]byte{2, 1, 0, 0, 0, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown codec version = %v, want ErrCorrupt", err)
	}
}

func FuzzUploadCodec(f *testing.F) {
	f.Add(encodeUpload(nil, testSlot(slotID('a'), "juliet@example.org", 5)))
	f.Add(encodeUpload(nil, Upload{State: UploadDone}))
	f.Add([]byte{uploadCodecV1, 2, 1, 'a', 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeUpload, encodeUpload)
	})
}
