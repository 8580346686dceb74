package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAudit(t *testing.T) {
	ctx := t.Context()
	a := openTest(t).Audit()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	adds := []AuditEntry{
		{Time: t0, Actor: "admin@example.org", Action: "user.create", Target: "juliet@example.org"},
		{Time: t0.Add(time.Second), Actor: "cli", Action: "user.delete", Target: "romeo@example.net", Detail: "requested by ticket 42"},
		// Same time: the id is bumped, the time kept.
		{Time: t0.Add(time.Second), Actor: "cli", Action: "archive.delete", Target: "romeo@example.net"},
		// Out of order: listed in the order added, but not "since" later times.
		{Time: t0.Add(-time.Hour), Actor: "api:import", Action: "user.import"},
		{Time: t0.Add(time.Minute), Action: "config.reload"},
	}
	var added []AuditEntry
	var last uint64
	for _, e := range adds {
		id, err := a.Add(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if id <= last || id < uint64(e.Time.UnixMicro()) {
			t.Fatalf("id %d after %d for time %v", id, last, e.Time)
		}
		last = id
		e.ID = id
		added = append(added, e)
	}
	tests := []struct {
		name  string
		since time.Time
		limit int
		keep  func(AuditEntry) bool
		want  []AuditEntry
	}{
		{"all", time.Time{}, 0, nil, added},
		{"limit", time.Time{}, 2, nil, added[:2]},
		{"since exact", t0.Add(time.Second), 0, nil, []AuditEntry{added[1], added[2], added[4]}},
		{"since between", t0.Add(time.Millisecond), 1, nil, []AuditEntry{added[1]}},
		{"since after all", t0.Add(time.Hour), 0, nil, nil},
		// limit counts kept entries only.
		{"keep with limit", time.Time{}, 1, func(e AuditEntry) bool { return e.Action == "config.reload" }, []AuditEntry{added[4]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.List(ctx, tc.since, tc.limit, tc.keep)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("List = %+v\nwant %+v", got, tc.want)
			}
		})
	}

	id, err := a.Add(ctx, AuditEntry{Action: "now"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.List(ctx, time.Now().Add(-time.Minute), 0, nil)
	if err != nil || len(got) != 1 || got[0].ID != id || time.Since(got[0].Time) > time.Minute {
		t.Fatalf("entry with zero time = %+v, %v", got, err)
	}

	for name, e := range map[string]AuditEntry{
		"no action":   {Actor: "cli"},
		"long actor":  {Action: "x", Actor: strings.Repeat("a", MaxAuditFieldLen+1)},
		"long target": {Action: "x", Target: strings.Repeat("a", MaxAuditFieldLen+1)},
		"long detail": {Action: "x", Detail: strings.Repeat("a", MaxAuditDetailLen+1)},
	} {
		if _, err := a.Add(ctx, e); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Add = %v, want ErrInvalid", name, err)
		}
	}
}

func TestAuditEntryCodec(t *testing.T) {
	for _, e := range []AuditEntry{
		{Time: codecTime, Actor: "cli", Action: "user.delete", Target: "juliet@example.org", Detail: "because"},
		{Time: time.UnixMicro(0).UTC()},
		{Time: time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC), Detail: strings.Repeat("d", 300)},
	} {
		got := checkStrictCodec(t, encodeAuditEntry(nil, e), decodeAuditEntry)
		if !reflect.DeepEqual(got, e) {
			t.Errorf("decode(encode(%+v)) = %+v", e, got)
		}
	}
	if _, err := decodeAuditEntry([]byte{2, 0, 0, 0, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown codec version = %v, want ErrCorrupt", err)
	}
}

func FuzzAuditEntryCodec(f *testing.F) {
	f.Add(encodeAuditEntry(nil, AuditEntry{Time: codecTime, Actor: "cli", Action: "user.delete", Target: "juliet@example.org"}))
	f.Add(encodeAuditEntry(nil, AuditEntry{}))
	f.Add([]byte{auditCodecV1, 0, 0x80, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, data, decodeAuditEntry, encodeAuditEntry)
	})
}

// A listing that keeps few entries reads on through the log; it ends
// when its context does.
func TestAuditListEndsWithItsContext(t *testing.T) {
	db := openNoSync(t)
	a := db.Audit()
	for i := range 3 * auditCheckEvery {
		if _, err := a.Add(t.Context(), AuditEntry{Actor: "admin", Action: "user.add", Target: fmt.Sprintf("u%d@example.org", i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	seen := 0
	keep := func(AuditEntry) bool {
		if seen++; seen == 10 {
			cancel()
		}
		return false
	}
	if got, err := a.List(ctx, time.Time{}, 5, keep); !errors.Is(err, context.Canceled) {
		t.Fatalf("List after its context ended = %v, %v; want context.Canceled", got, err)
	}
	if seen > auditCheckEvery {
		t.Fatalf("read %d entries after the context ended at the 10th, want at most %d", seen, auditCheckEvery)
	}
	// With its context alive it reads them all.
	if got, err := a.List(t.Context(), time.Time{}, 0, nil); err != nil || len(got) != 3*auditCheckEvery {
		t.Fatalf("List = %d entries, %v; want %d", len(got), err, 3*auditCheckEvery)
	}
}
