package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func subReq(from string, received time.Time) SubRequest {
	return SubRequest{From: from, Stanza: []byte(`<presence type="subscribe" from="` + from + `"/>`), Received: received}
}

func TestSubRequests(t *testing.T) {
	const owner = "juliet@example.org"
	t0 := codecTime
	tests := []struct {
		name     string
		ops      func(t *testing.T, s *SubRequests) error
		wantErr  error
		wantList []SubRequest
	}{
		{
			name: "put and list sorted by received",
			ops: func(t *testing.T, s *SubRequests) error {
				for _, r := range []SubRequest{subReq("c@x", t0.Add(time.Second)), subReq("a@x", t0.Add(2*time.Second)), subReq("b@x", t0)} {
					if err := s.Put(t.Context(), owner, r); err != nil {
						return err
					}
				}
				return nil
			},
			wantList: []SubRequest{subReq("b@x", t0), subReq("c@x", t0.Add(time.Second)), subReq("a@x", t0.Add(2*time.Second))},
		},
		{
			name: "same time sorted by requester",
			ops: func(t *testing.T, s *SubRequests) error {
				for _, from := range []string{"z@x", "m@x", "a@x"} {
					if err := s.Put(t.Context(), owner, subReq(from, t0)); err != nil {
						return err
					}
				}
				return nil
			},
			wantList: []SubRequest{subReq("a@x", t0), subReq("m@x", t0), subReq("z@x", t0)},
		},
		{
			name: "put replaces the same requester",
			ops: func(t *testing.T, s *SubRequests) error {
				if err := s.Put(t.Context(), owner, subReq("a@x", t0)); err != nil {
					return err
				}
				return s.Put(t.Context(), owner, SubRequest{From: "a@x", Stanza: []byte("<again/>"), Received: t0.Add(time.Hour)})
			},
			wantList: []SubRequest{{From: "a@x", Stanza: []byte("<again/>"), Received: t0.Add(time.Hour)}},
		},
		{
			name: "nil stanza",
			ops: func(t *testing.T, s *SubRequests) error {
				return s.Put(t.Context(), owner, SubRequest{From: "a@x", Received: t0})
			},
			wantList: []SubRequest{{From: "a@x", Received: t0}},
		},
		{
			name: "delete present and absent",
			ops: func(t *testing.T, s *SubRequests) error {
				for _, from := range []string{"a@x", "b@x"} {
					if err := s.Put(t.Context(), owner, subReq(from, t0)); err != nil {
						return err
					}
				}
				if err := s.Delete(t.Context(), owner, "a@x"); err != nil {
					return err
				}
				return s.Delete(t.Context(), owner, "nobody@x")
			},
			wantList: []SubRequest{subReq("b@x", t0)},
		},
		{
			name: "empty requester",
			ops: func(t *testing.T, s *SubRequests) error {
				return s.Put(t.Context(), owner, subReq("", t0))
			},
			wantErr: ErrInvalid,
		},
		{
			name: "requester too long",
			ops: func(t *testing.T, s *SubRequests) error {
				return s.Put(t.Context(), owner, subReq(strings.Repeat("r", maxJID+1), t0))
			},
			wantErr: ErrInvalid,
		},
		{
			name: "empty owner",
			ops: func(t *testing.T, s *SubRequests) error {
				return s.Put(t.Context(), "", subReq("a@x", t0))
			},
			wantErr: ErrInvalid,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t)
			createAccounts(t, db, owner)
			s := db.SubRequests()
			if err := tc.ops(t, s); !errors.Is(err, tc.wantErr) {
				t.Fatalf("ops = %v, want %v", err, tc.wantErr)
			}
			got, err := s.List(t.Context(), owner)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.wantList) {
				t.Fatalf("List = %+v\nwant %+v", got, tc.wantList)
			}
			for _, want := range tc.wantList {
				r, err := s.Get(t.Context(), owner, want.From)
				if err != nil || !reflect.DeepEqual(r, want) {
					t.Errorf("Get(%s) = %+v, %v; want %+v", want.From, r, err, want)
				}
			}
		})
	}
}

func TestSubRequestsGetNotFoundAndIsolation(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	createAccounts(t, db, "a@x", "a@xa")
	s := db.SubRequests()
	if err := s.Put(ctx, "a@x", subReq("b@y", codecTime)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a@xa", subReq("c@y", codecTime)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ owner, from string }{{"a@x", "c@y"}, {"a@xa", "b@y"}, {"a@", "xb@y"}, {"a@x", "b@y/r"}} {
		if _, err := s.Get(ctx, tc.owner, tc.from); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%s, %s) = %v, want ErrNotFound", tc.owner, tc.from, err)
		}
	}
	for owner, want := range map[string]string{"a@x": "b@y", "a@xa": "c@y"} {
		got, err := s.List(ctx, owner)
		if err != nil || len(got) != 1 || got[0].From != want {
			t.Errorf("List(%s) = %+v, %v; want only %s", owner, got, err, want)
		}
	}
	if got, err := s.List(ctx, "a@"); err != nil || got != nil {
		t.Errorf("List(unknown) = %+v, %v; want nil", got, err)
	}
}

func TestSubRequestsZeroReceived(t *testing.T) {
	db := openTest(t)
	createAccounts(t, db, "a@x")
	s := db.SubRequests()
	if err := s.Put(t.Context(), "a@x", SubRequest{From: "b@y"}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(t.Context(), "a@x", "b@y")
	if err != nil || time.Since(r.Received) > time.Minute || r.Received.Location() != time.UTC {
		t.Fatalf("Get = %+v, %v; want Received about now in UTC", r, err)
	}
}

func TestSubRequestsQuota(t *testing.T) {
	ctx := t.Context()
	db := openNoSync(t)
	s := db.SubRequests()
	const owner = "juliet@example.org"
	createAccounts(t, db, owner, owner+"a")
	for i := range MaxSubRequests {
		if err := s.Put(ctx, owner, subReq(fmt.Sprintf("r%04d@x", i), codecTime)); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	if err := s.Put(ctx, owner, subReq("new@x", codecTime)); !errors.Is(err, ErrQuota) {
		t.Fatalf("Put beyond quota = %v, want ErrQuota", err)
	}
	// A requester already pending may still be replaced.
	if err := s.Put(ctx, owner, subReq("r0007@x", codecTime.Add(time.Hour))); err != nil {
		t.Fatalf("replacing Put at quota = %v", err)
	}
	// Another owner has its own quota.
	if err := s.Put(ctx, owner+"a", subReq("new@x", codecTime)); err != nil {
		t.Fatalf("Put for another owner = %v", err)
	}
	if err := s.Delete(ctx, owner, "r0000@x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, owner, subReq("new@x", codecTime)); err != nil {
		t.Fatalf("Put after Delete freed a slot = %v", err)
	}
	if got, err := s.List(ctx, owner); err != nil || len(got) != MaxSubRequests {
		t.Fatalf("List = %d, %v; want %d", len(got), err, MaxSubRequests)
	}
}

func TestSubRequestsPersistAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	createAccounts(t, db, "juliet@example.org")
	want := subReq("romeo@example.net", codecTime)
	if err := db.SubRequests().Put(t.Context(), "juliet@example.org", want); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Options{})
	got, err := db.SubRequests().Get(t.Context(), "juliet@example.org", "romeo@example.net")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Get after reopen = %+v, %v; want %+v", got, err, want)
	}
}

// A request to an owner that is not an account (deleted as it arrived) is
// not kept for a namesake.
func TestSubRequestsNotAnAccount(t *testing.T) {
	db := openTest(t)
	if err := db.SubRequests().Put(t.Context(), "gone@x", subReq("b@y", codecTime)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Put to a non-account = %v, want ErrNotFound", err)
	}
	if got, err := db.SubRequests().List(t.Context(), "gone@x"); err != nil || got != nil {
		t.Fatalf("List = %+v, %v; want none", got, err)
	}
}

func TestSubRequestsCorruptKey(t *testing.T) {
	db := openTest(t)
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketSubRequests)).Put(lp("a@x"), encodeSubRequest(nil, subReq("", codecTime)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SubRequests().List(t.Context(), "a@x"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("List with a key lacking the requester = %v, want ErrCorrupt", err)
	}
}

func TestSubRequestCodec(t *testing.T) {
	for _, r := range []SubRequest{
		{Received: time.UnixMicro(0).UTC()},
		{Stanza: []byte("<presence/>"), Received: codecTime},
		{Stanza: []byte(strings.Repeat("x", 300)), Received: time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		got := checkStrictCodec(t, encodeSubRequest(nil, r), decodeSubRequest)
		if !reflect.DeepEqual(got, r) {
			t.Errorf("decode(encode(%+v)) = %+v", r, got)
		}
	}
	if _, err := decodeSubRequest([]byte{2, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown codec version = %v, want ErrCorrupt", err)
	}
}

func FuzzSubRequestCodec(f *testing.F) {
	f.Add(encodeSubRequest(nil, subReq("a@x", codecTime)))
	f.Add(encodeSubRequest(nil, SubRequest{}))
	f.Add([]byte{subRequestCodecV1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeSubRequest, encodeSubRequest)
	})
}
