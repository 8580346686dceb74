package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestArchivePrefs(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	s := db.ArchivePrefs()
	if _, err := s.Get(ctx, "a@x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Set: %v, want ErrNotFound", err)
	}
	want := ArchivePrefs{Default: "roster", Always: []string{"b@x", "c@y/r"}, Never: []string{"spam@z"}}
	if err := s.Set(ctx, "a@x", want); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "a@xa", ArchivePrefs{Default: "never"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "a@x")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, want)
	}
	if got, _ := s.Get(ctx, "a@xa"); got.Default != "never" {
		t.Fatalf("other owner = %+v", got)
	}
	big := make([]string, maxPrefsJIDs+1)
	for i := range big {
		big[i] = "j@x"
	}
	if err := s.Set(ctx, "a@x", ArchivePrefs{Default: "always", Always: big}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("too many JIDs: %v", err)
	}
}

func FuzzArchivePrefsCodec(f *testing.F) {
	f.Add(encodeArchivePrefs(nil, ArchivePrefs{Default: "always", Always: []string{"a@b"}}))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeArchivePrefs(data)
		if err != nil {
			return
		}
		again, err := decodeArchivePrefs(encodeArchivePrefs(nil, p))
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip: %+v -> %+v, %v", p, again, err)
		}
	})
}
