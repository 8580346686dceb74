package store

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBlocklists(t *testing.T) {
	const owner = "juliet@example.org"
	long := strings.Repeat("j", maxJID+1)
	tests := []struct {
		name    string
		ops     func(t *testing.T, b *Blocklists) error
		wantErr error
		want    []string
	}{
		{"empty", func(*testing.T, *Blocklists) error { return nil }, nil, nil},
		{"add sorted, kept as given", func(t *testing.T, b *Blocklists) error {
			return b.Add(t.Context(), owner, "romeo@example.net/orchard", "example.com", "Romeo@example.net", "romeo@example.net")
		}, nil, []string{"Romeo@example.net", "example.com", "romeo@example.net", "romeo@example.net/orchard"}},
		{"add twice", func(t *testing.T, b *Blocklists) error {
			if err := b.Add(t.Context(), owner, "a@x", "b@x"); err != nil {
				return err
			}
			return b.Add(t.Context(), owner, "b@x", "b@x", "c@x")
		}, nil, []string{"a@x", "b@x", "c@x"}},
		{"remove some and absent", func(t *testing.T, b *Blocklists) error {
			if err := b.Add(t.Context(), owner, "a@x", "b@x", "c@x"); err != nil {
				return err
			}
			return b.Remove(t.Context(), owner, "b@x", "nobody@x")
		}, nil, []string{"a@x", "c@x"}},
		{"remove all", func(t *testing.T, b *Blocklists) error {
			if err := b.Add(t.Context(), owner, "a@x", "b@x", "c@x"); err != nil {
				return err
			}
			return b.Remove(t.Context(), owner)
		}, nil, nil},
		{"clear empty", func(t *testing.T, b *Blocklists) error { return b.Remove(t.Context(), owner) }, nil, nil},
		{"add none", func(t *testing.T, b *Blocklists) error { return b.Add(t.Context(), owner) }, ErrInvalid, nil},
		{"add empty JID", func(t *testing.T, b *Blocklists) error { return b.Add(t.Context(), owner, "a@x", "") }, ErrInvalid, nil},
		{"add too long", func(t *testing.T, b *Blocklists) error { return b.Add(t.Context(), owner, long) }, ErrInvalid, nil},
		{"remove empty JID", func(t *testing.T, b *Blocklists) error {
			if err := b.Add(t.Context(), owner, "a@x"); err != nil {
				return err
			}
			return b.Remove(t.Context(), owner, "a@x", "")
		}, ErrInvalid, []string{"a@x"}},
		{"empty owner", func(t *testing.T, b *Blocklists) error { return b.Add(t.Context(), "", "a@x") }, ErrInvalid, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			b := openTest(t).Blocklists()
			if err := tc.ops(t, b); !errors.Is(err, tc.wantErr) {
				t.Fatalf("ops = %v, want %v", err, tc.wantErr)
			}
			got, err := b.List(ctx, owner)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("List = %q, %v; want %q", got, err, tc.want)
			}
			for _, j := range append(slices.Clone(tc.want), "absent@x", "a@x/r", "a@") {
				ok, err := b.Contains(ctx, owner, j)
				if err != nil || ok != slices.Contains(tc.want, j) {
					t.Errorf("Contains(%q) = %v, %v", j, ok, err)
				}
			}
		})
	}
}

func TestBlocklistsIsolation(t *testing.T) {
	ctx := t.Context()
	b := openTest(t).Blocklists()
	if err := b.Add(ctx, "a@x", "b@y"); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(ctx, "a@xa", "c@y"); err != nil {
		t.Fatal(err)
	}
	// "a@x" ‖ "ab@y" would equal "a@xa" ‖ "b@y" without the length prefix.
	for _, tc := range []struct {
		owner, j string
		want     bool
	}{{"a@x", "b@y", true}, {"a@x", "ab@y", false}, {"a@xa", "b@y", false}, {"a@x", "c@y", false}, {"a@xa", "c@y", true}} {
		if ok, err := b.Contains(ctx, tc.owner, tc.j); err != nil || ok != tc.want {
			t.Errorf("Contains(%s, %s) = %v, %v; want %v", tc.owner, tc.j, ok, err, tc.want)
		}
	}
	if err := b.Remove(ctx, "a@x"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.List(ctx, "a@xa"); err != nil || !slices.Equal(got, []string{"c@y"}) {
		t.Errorf("List(a@xa) after clearing a@x = %q, %v", got, err)
	}
	if _, err := b.Contains(ctx, "a@x", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Contains(empty) = %v, want ErrInvalid", err)
	}
}

func TestBlocklistsPersistAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, Options{})
	if err := db.Blocklists().Add(t.Context(), "a@x", "b@y", "example.com"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, Options{})
	if got, err := db.Blocklists().List(t.Context(), "a@x"); err != nil || !slices.Equal(got, []string{"b@y", "example.com"}) {
		t.Fatalf("List after reopen = %q, %v", got, err)
	}
}
