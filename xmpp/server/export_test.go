package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"switchboard/store"
	"switchboard/xmpp/mam"
)

// exportLines runs Export and returns what it emitted; failAt, if not 0,
// makes the failAt-th call of emit fail (and only that one).
func exportLines(ctx context.Context, a *store.Archive, format string, failAt int) ([]string, error) {
	var lines []string
	calls := 0
	emit := func(l string) error {
		if calls++; calls == failAt {
			return errors.New("client gone")
		}
		lines = append(lines, l)
		return nil
	}
	_, err := Export(ctx, a, mam.NewIDCodec([]byte("secret")), ExportQuery{Archive: "alice@localhost"}, format, emit)
	return lines, err
}

// TestExportFraming: a complete export is framed (a JSON array's brackets,
// a CSV header); one cut short leaves its array open, and a store error on
// the first page comes before anything is emitted, so that the HTTP API
// can still answer it with an error status.
func TestExportFraming(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := db.Archive().NewWriter(store.WriterOptions{})
	w.Start(ctx)
	for i := range 3 {
		stanza := fmt.Sprintf("<message from='bob@localhost/res' to='alice@localhost' type='chat'><body>m%d</body></message>", i)
		if _, err := w.Append(store.ArchiveRecord{Archive: "alice@localhost", With: "bob@localhost", Direction: store.DirIn, Stanza: []byte(stanza)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		format      string
		first, last string // prefixes
		n           int
	}{
		{"json", "[", "]", 5},
		{"jsonl", "{", "{", 3},
		{"csv", "time,id,", "20", 4},
	}
	for _, tc := range tests {
		lines, err := exportLines(ctx, db.Archive(), tc.format, 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		if len(lines) != tc.n || !strings.HasPrefix(lines[0], tc.first) || !strings.HasPrefix(lines[len(lines)-1], tc.last) {
			t.Fatalf("%s export: %q, want %d lines from %q to %q", tc.format, lines, tc.n, tc.first, tc.last)
		}
	}

	// The second record's line fails to go out: the array stays open
	// (nothing more is emitted, though emit would now succeed).
	lines, err := exportLines(ctx, db.Archive(), "json", 3)
	if err == nil || len(lines) != 2 || lines[0] != "[" {
		t.Fatalf("export cut at its third line: %q, %v; want the bracket and one record, and the error", lines, err)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		lines, err := exportLines(ctx, db.Archive(), tc.format, 0)
		if !errors.Is(err, store.ErrClosed) || len(lines) != 0 {
			t.Fatalf("%s export of a closed store: %q, %v; want nothing emitted and ErrClosed", tc.format, lines, err)
		}
	}
}
