package store

import (
	"testing"
	"time"
)

// fakeLoan is a processorLoan counting its raises and lowers, on a clock
// the test moves; its timer never fires on its own (quiet is long), so
// the test calls expire where the timer would.
type fakeLoan struct {
	*processorLoan
	clock         time.Time
	raises, lower int
}

func newFakeLoan(t *testing.T) *fakeLoan {
	f := &fakeLoan{clock: time.Unix(1000, 0)}
	f.processorLoan = &processorLoan{
		quiet: time.Hour,
		now:   func() time.Time { return f.clock },
		raise: func() { f.raises++ },
		lower: func() { f.lower++ },
	}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.timer != nil {
			f.timer.Stop()
		}
	})
	return f
}

// running is the number of borrows not given back.
func (f *fakeLoan) running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

func (f *fakeLoan) check(t *testing.T, step string, raises, lowers int) {
	t.Helper()
	if f.raises != raises || f.lower != lowers {
		t.Fatalf("%s: %d raises and %d lowers, want %d and %d", step, f.raises, f.lower, raises, lowers)
	}
}

func TestProcessorLoan(t *testing.T) {
	t.Run("one commit", func(t *testing.T) {
		f := newFakeLoan(t)
		release := f.borrow()
		f.check(t, "borrowed", 1, 0)
		f.clock = f.clock.Add(time.Minute)
		release()
		f.clock = f.clock.Add(f.quiet - time.Second)
		f.expire()
		f.check(t, "before quiet", 1, 0)
		f.clock = f.clock.Add(time.Second)
		f.expire()
		f.check(t, "after quiet", 1, 1)
		f.borrow()()
		f.check(t, "borrowed again", 2, 1)
	})
	t.Run("commits in a row keep it", func(t *testing.T) {
		f := newFakeLoan(t)
		for range 5 {
			release := f.borrow()
			f.clock = f.clock.Add(f.quiet / 2)
			release()
			f.expire()
		}
		f.check(t, "a commit every half quiet", 1, 0)
	})
	t.Run("two writers", func(t *testing.T) {
		f := newFakeLoan(t)
		a := f.borrow()
		b := f.borrow()
		f.check(t, "both borrowed", 1, 0)
		a()
		f.clock = f.clock.Add(2 * f.quiet)
		f.expire()
		f.check(t, "one still running", 1, 0)
		b()
		f.expire()
		f.check(t, "just ended", 1, 0)
		f.clock = f.clock.Add(f.quiet)
		f.expire()
		f.check(t, "both ended, quiet", 1, 1)
	})
	t.Run("nil loan", func(t *testing.T) {
		var l *processorLoan
		l.borrow()() // GOMAXPROCS set by the operator: nothing to do
	})
}

func TestLoanFor(t *testing.T) {
	t.Cleanup(func() { processors.enabled.Store(false) })
	t.Setenv("GOMAXPROCS", "")
	if loanFor(true) != nil {
		t.Error("a background writer borrows before LendProcessors")
	}
	LendProcessors()
	if loanFor(false) != nil {
		t.Error("a writer without background commits borrows")
	}
	if loanFor(true) != processors {
		t.Error("a background writer does not share the process's loan")
	}
	for env, lends := range map[string]bool{"2": false, "1": false, "0": true, "x": true, "-1": true} {
		t.Setenv("GOMAXPROCS", env)
		if got := loanFor(true) != nil; got != lends {
			t.Errorf("GOMAXPROCS=%q: lends %v, want %v (the runtime takes only a positive number)", env, got, lends)
		}
	}
}
