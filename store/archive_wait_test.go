package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestArchiveWriterAppendWait: with the queue full, AppendWait waits for
// the writer to take a batch instead of refusing, and gives up with
// ErrBusy when its context ends.
func TestArchiveWriterAppendWait(t *testing.T) {
	ctx := t.Context()
	db := openTest(t)
	w := db.Archive().NewWriter(WriterOptions{QueueSize: 4})
	for range 4 {
		mustAppend(t, w, msg(juliet, "romeo@example.net", DirIn))
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := w.AppendWait(short, msg(juliet, "romeo@example.net", DirIn), nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("AppendWait with the writer stopped = %v, want ErrBusy after the deadline", err)
	}
	type result struct {
		id  uint64
		err error
	}
	got := make(chan result, 1)
	go func() {
		id, err := w.AppendWait(ctx, msg(juliet, "romeo@example.net", DirIn), nil)
		got <- result{id, err}
	}()
	w.Start(ctx) // takes the queued batch: room for the waiting append
	r := <-got
	if r.err != nil || r.id == 0 {
		t.Fatalf("AppendWait = %d, %v", r.id, r.err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := db.Archive().Query(ctx, ArchiveQuery{Archive: juliet, Max: 10, WantCount: true})
	if err != nil || page.Count != 5 {
		t.Fatalf("archived %d records (%v), want 5", page.Count, err)
	}
}
