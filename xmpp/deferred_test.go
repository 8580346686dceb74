package xmpp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"mellium.im/xmpp/jid"
)

// fakeDeferred is a DeferredSession that records what is asked of it.
type fakeDeferred struct {
	mu        sync.Mutex
	flushes   []bool // the now of each Flush, in order
	delivered int    // plain Deliver calls
	deferredD []*Deferred
	// join makes DeliverDeferred add the session to d (as a session whose
	// writer is idle does).
	join  bool
	added []bool // what each d.Add returned
}

var _ DeferredSession = (*fakeDeferred)(nil)

func (f *fakeDeferred) JID() jid.JID { return jid.JID{} }

func (f *fakeDeferred) Deliver(*Stanza) bool {
	f.mu.Lock()
	f.delivered++
	f.mu.Unlock()
	return true
}

func (f *fakeDeferred) Close(string, string) {}

func (f *fakeDeferred) DeliverDeferred(_ *Stanza, d *Deferred) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deferredD = append(f.deferredD, d)
	if f.join && d != nil {
		f.added = append(f.added, d.Add(f))
	}
	return true
}

func (f *fakeDeferred) Flush(now bool) {
	f.mu.Lock()
	f.flushes = append(f.flushes, now)
	f.mu.Unlock()
}

func (f *fakeDeferred) flushed() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bool(nil), f.flushes...)
}

// plainSession is a Session without DeliverDeferred.
type plainSession struct{ delivered int }

func (p *plainSession) JID() jid.JID         { return jid.JID{} }
func (p *plainSession) Deliver(*Stanza) bool { p.delivered++; return true }
func (p *plainSession) Close(string, string) {}

func fakes(n int) []*fakeDeferred {
	fs := make([]*fakeDeferred, n)
	for i := range fs {
		fs[i] = &fakeDeferred{}
	}
	return fs
}

// A Deferred that was never opened, or was closed, takes nothing: its
// Close then flushes nobody.
func TestDeferredAddClosed(t *testing.T) {
	var d Deferred
	f := &fakeDeferred{}
	if d.Add(f) {
		t.Fatal("Add on a never-opened Deferred returned true")
	}
	d.Open()
	d.Close(true)
	if d.Add(f) {
		t.Fatal("Add on a closed Deferred returned true")
	}
	d.Close(true)
	d.Close(false)
	if got := f.flushed(); len(got) != 0 {
		t.Fatalf("a session refused by Add was flushed: %v", got)
	}
}

// Close flushes each session added since Open exactly once, writing now
// only when idle and with at most directMax sessions; a second Close
// flushes nothing again.
func TestDeferredCloseFlushes(t *testing.T) {
	for _, tc := range []struct {
		n       int
		idle    bool
		wantNow bool
	}{
		{1, true, true},
		{directMax, true, true},
		{directMax + 1, true, false},
		{2 * directMax, true, false},
		{1, false, false},
		{directMax, false, false},
		{directMax + 1, false, false},
	} {
		t.Run(fmt.Sprintf("n=%d/idle=%v", tc.n, tc.idle), func(t *testing.T) {
			var d Deferred
			fs := fakes(tc.n)
			d.Open()
			for i, f := range fs {
				if !d.Add(f) {
					t.Fatalf("Add %d on an open Deferred returned false", i)
				}
			}
			for i, f := range fs {
				if got := f.flushed(); len(got) != 0 {
					t.Fatalf("session %d flushed before Close: %v", i, got)
				}
			}
			d.Close(tc.idle)
			for i, f := range fs {
				if got := f.flushed(); len(got) != 1 || got[0] != tc.wantNow {
					t.Errorf("session %d: flushes %v, want [%v]", i, got, tc.wantNow)
				}
			}
			d.Close(tc.idle)
			d.Close(!tc.idle)
			for i, f := range fs {
				if got := f.flushed(); len(got) != 1 {
					t.Errorf("session %d: flushed %d times after repeated Close, want 1", i, len(got))
				}
			}
		})
	}
}

// The list of one cycle is reused by a later one without handing its
// sessions to the later Close, and it keeps no reference to them; one
// longer than maxSpare is not kept.
func TestDeferredReuse(t *testing.T) {
	var d Deferred
	cycles := [][]*fakeDeferred{fakes(3), fakes(1), fakes(directMax + 2), fakes(2), fakes(0), fakes(maxSpare + 1), fakes(3)}
	for c, fs := range cycles {
		d.Open()
		for _, f := range fs {
			if !d.Add(f) {
				t.Fatalf("cycle %d: Add on an open Deferred returned false", c)
			}
		}
		d.Close(true)
		wantNow := len(fs) <= directMax
		for pc := 0; pc <= c; pc++ {
			for i, f := range cycles[pc] {
				got := f.flushed()
				if len(got) != 1 {
					t.Fatalf("after cycle %d: session %d of cycle %d flushed %d times, want 1", c, i, pc, len(got))
				}
				if pc == c && got[0] != wantNow {
					t.Errorf("cycle %d: session %d flushed with now=%v, want %v", c, i, got[0], wantNow)
				}
			}
		}
		// No reference to a flushed session stays behind (in the list
		// kept for reuse, nor in the one collecting next).
		d.mu.Lock()
		if cap(d.spare) > maxSpare {
			t.Errorf("cycle %d: a list of %d kept for reuse", c, cap(d.spare))
		}
		for i, s := range d.spare[:cap(d.spare)] {
			if s != nil {
				t.Errorf("cycle %d: spare[%d] still holds a session", c, i)
			}
		}
		if len(d.pending) != 0 {
			t.Errorf("cycle %d: %d sessions pending after Close", c, len(d.pending))
		}
		for i, s := range d.pending[:cap(d.pending)] {
			if s != nil {
				t.Errorf("cycle %d: pending[%d] still holds a session", c, i)
			}
		}
		d.mu.Unlock()
	}

	// Once both lists have grown, a cycle allocates nothing.
	fs := []DeferredSession{&countingSession{}, &countingSession{}, &countingSession{}}
	cycle := func() {
		d.Open()
		for _, f := range fs {
			d.Add(f)
		}
		d.Close(true)
	}
	cycle()
	cycle()
	if allocs := testing.AllocsPerRun(100, cycle); allocs != 0 {
		t.Errorf("an Open/Add/Close cycle allocates %v times, want 0 (lists not reused)", allocs)
	}
	for i, f := range fs {
		if n := f.(*countingSession).n.Load(); n != 103 {
			t.Errorf("session %d flushed %d times in 103 cycles", i, n)
		}
	}
}

// countingSession counts its Flushes without allocating.
type countingSession struct {
	plainSession
	n atomic.Int64
}

func (c *countingSession) DeliverDeferred(*Stanza, *Deferred) bool { return true }
func (c *countingSession) Flush(bool)                              { c.n.Add(1) }

// DeliverIn defers to the Deferred in the context, if there is one and
// the session supports it, and otherwise delivers as Deliver does.
func TestDeliverIn(t *testing.T) {
	st := Build(KindMessage, TypeChat, "m1", jid.MustParse("a@example.com/r"), jid.MustParse("b@example.com/r"))
	d := &Deferred{}

	t.Run("deferred", func(t *testing.T) {
		f := &fakeDeferred{join: true}
		d.Open()
		if !DeliverIn(WithDeferred(context.Background(), d), f, st) {
			t.Fatal("DeliverIn returned false")
		}
		if f.delivered != 0 {
			t.Errorf("Deliver called %d times; DeliverDeferred expected", f.delivered)
		}
		if len(f.deferredD) != 1 || f.deferredD[0] != d {
			t.Fatalf("DeliverDeferred got %v, want the context's Deferred %p", f.deferredD, d)
		}
		if got := f.flushed(); len(got) != 0 {
			t.Fatalf("flushed before the Deferred's Close: %v", got)
		}
		d.Close(true)
		if got := f.flushed(); len(got) != 1 || !got[0] {
			t.Errorf("flushes after Close(true): %v, want [true]", got)
		}
	})

	t.Run("closed deferred", func(t *testing.T) {
		// The Deferred is handed on even when closed: the session's
		// Add fails and it starts its writer itself.
		f := &fakeDeferred{join: true}
		DeliverIn(WithDeferred(context.Background(), d), f, st)
		if len(f.deferredD) != 1 || f.deferredD[0] != d || len(f.added) != 1 || f.added[0] {
			t.Fatalf("DeliverDeferred calls %v, Add results %v; want one call with d, Add false", f.deferredD, f.added)
		}
		d.Close(true)
		if got := f.flushed(); len(got) != 0 {
			t.Errorf("flushed though Add failed: %v", got)
		}
	})

	t.Run("no deferred", func(t *testing.T) {
		f := &fakeDeferred{join: true}
		ctx := context.WithValue(context.Background(), struct{ k int }{1}, "x")
		if !DeliverIn(ctx, f, st) {
			t.Fatal("DeliverIn returned false")
		}
		if f.delivered != 1 || len(f.deferredD) != 0 {
			t.Errorf("Deliver %d, DeliverDeferred %d times; want Deliver once", f.delivered, len(f.deferredD))
		}
	})

	t.Run("nil deferred", func(t *testing.T) {
		f := &fakeDeferred{join: true}
		if !DeliverIn(WithDeferred(context.Background(), nil), f, st) {
			t.Fatal("DeliverIn returned false")
		}
		if f.delivered != 1 || len(f.deferredD) != 0 {
			t.Errorf("Deliver %d, DeliverDeferred %d times; want Deliver once", f.delivered, len(f.deferredD))
		}
	})

	t.Run("plain session", func(t *testing.T) {
		p := &plainSession{}
		d.Open()
		if !DeliverIn(WithDeferred(context.Background(), d), p, st) {
			t.Fatal("DeliverIn returned false")
		}
		if p.delivered != 1 {
			t.Errorf("Deliver called %d times, want 1", p.delivered)
		}
		d.mu.Lock()
		n := len(d.pending)
		d.mu.Unlock()
		if n != 0 {
			t.Errorf("%d sessions pending for a session that is not a DeferredSession", n)
		}
		d.Close(true)
	})
}

// Other goroutines Add while the owner opens and closes the Deferred over
// and over: every session whose Add returned true is flushed exactly once
// (by the Close that ends the cycle it joined), the others never.
func TestDeferredConcurrentAdd(t *testing.T) {
	const (
		adders = 4
		perAdd = 2000
	)
	var d Deferred
	type result struct {
		f  *fakeDeferred
		ok bool
	}
	results := make([][]result, adders)
	var wg sync.WaitGroup
	var done atomic.Bool
	for g := range adders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs := make([]result, 0, perAdd)
			for range perAdd {
				f := &fakeDeferred{}
				rs = append(rs, result{f, d.Add(f)})
			}
			results[g] = rs
		}()
	}
	go func() { wg.Wait(); done.Store(true) }()
	cycles := 0
	for !done.Load() {
		d.Open()
		d.Close(cycles%2 == 0)
		cycles++
	}
	wg.Wait()
	d.Close(true) // a no-op unless a bug left it open
	accepted := 0
	for g, rs := range results {
		for i, r := range rs {
			n := len(r.f.flushed())
			switch {
			case r.ok && n != 1:
				t.Errorf("adder %d, session %d: Add returned true, flushed %d times", g, i, n)
			case !r.ok && n != 0:
				t.Errorf("adder %d, session %d: Add returned false, flushed %d times", g, i, n)
			}
			if r.ok {
				accepted++
			}
		}
	}
	t.Logf("%d cycles, %d of %d Adds accepted", cycles, accepted, adders*perAdd)
	if d.Add(&fakeDeferred{}) {
		t.Error("Add accepted after the last Close")
	}
}

// panickyDeferred is a fakeDeferred whose Flush panics.
type panickyDeferred struct{ fakeDeferred }

func (p *panickyDeferred) Flush(bool) { panic("flush failed") }

// A Flush that panics leaves the sessions after it to the owner's next
// Close (the ingress defers one): none is left unflushed, none flushed
// twice, and the lists are not shared afterwards.
func TestDeferredClosePanicKeepsRest(t *testing.T) {
	var d Deferred
	before, after := fakes(2), fakes(2)
	bad := &panickyDeferred{}
	d.Open()
	for _, s := range []DeferredSession{before[0], before[1], bad, after[0], after[1]} {
		if !d.Add(s) {
			t.Fatal("Add refused on an open Deferred")
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the Flush's panic did not reach Close's caller")
			}
		}()
		d.Close(false)
	}()
	for _, f := range after {
		if got := f.flushed(); len(got) != 0 {
			t.Fatalf("a session after the panic was flushed during the panicking Close: %v", got)
		}
	}
	d.Close(false)
	for i, f := range append(before, after...) {
		if got := f.flushed(); len(got) != 1 || got[0] {
			t.Errorf("session %d: flushes %v, want one Flush(false)", i, got)
		}
	}
	// Reused afterwards: a new cycle flushes its own session only.
	next := fakes(1)[0]
	d.Open()
	d.Add(next)
	d.Close(true)
	if got := next.flushed(); len(got) != 1 || !got[0] {
		t.Errorf("next cycle: flushes %v, want one Flush(true)", got)
	}
	for i, f := range append(before, after...) {
		if got := f.flushed(); len(got) != 1 {
			t.Errorf("session %d flushed again: %v", i, got)
		}
	}
}
