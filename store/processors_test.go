package store

import (
	"runtime"
	"sync"
	"sync/atomic"
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

// realLoan is a processorLoan as the process's (processors): on the real
// clock, with its own timer and the runtime's GOMAXPROCS, counting its
// raises and lowers and checking that they alternate. Its quiet is short.
type realLoan struct {
	*processorLoan
	raises, lowers atomic.Int32
	nows           atomic.Int32 // calls of now: release's and expire's
	raised         atomic.Bool
	misordered     atomic.Int32 // a raise while raised, or a lower while not
	done           atomic.Bool  // the test ended: the timer changes nothing
}

func newRealLoan(t *testing.T, quiet time.Duration) *realLoan {
	// GOMAXPROCS is the process's: the test leaves it as it found it (the
	// testing package sets it, -cpu too), after stopping the timer.
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })
	l := &realLoan{}
	l.processorLoan = &processorLoan{
		quiet: quiet,
		now: func() time.Time {
			l.nows.Add(1)
			return time.Now()
		},
		raise: func() {
			if l.done.Load() {
				return
			}
			if !l.raised.CompareAndSwap(false, true) {
				l.misordered.Add(1)
			}
			l.raises.Add(1)
			processors.raise()
		},
		lower: func() {
			if l.done.Load() {
				return
			}
			if !l.raised.CompareAndSwap(true, false) {
				l.misordered.Add(1)
			}
			l.lowers.Add(1)
			processors.lower()
		},
	}
	t.Cleanup(func() {
		// An expire already waiting for mu still runs: done makes it
		// harmless.
		l.done.Store(true)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.timer != nil {
			l.timer.Stop()
		}
	})
	return l
}

// waitLowered waits until the timer has lowered GOMAXPROCS lowers times
// in all, and checks that the loan is then off: no timer, GOMAXPROCS the
// runtime's default (base).
func (l *realLoan) waitLowered(t *testing.T, step string, lowers int32, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.lowers.Load() < lowers {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d lowers after 10 s, want %d (the timer did not end the loan)", step, l.lowers.Load(), lowers)
		}
		time.Sleep(time.Millisecond)
	}
	l.mu.Lock()
	timer, active := l.timer, l.active
	l.mu.Unlock()
	if timer != nil || active != 0 {
		t.Errorf("%s: lowered with a timer (%v) or %d commits running", step, timer != nil, active)
	}
	if n := runtime.GOMAXPROCS(0); n != base {
		t.Errorf("%s: GOMAXPROCS %d after the loan ended, want the default %d", step, n, base)
	}
	if n := l.misordered.Load(); n != 0 {
		t.Errorf("%s: %d raises while raised or lowers while not", step, n)
	}
}

// TestProcessorLoanRealTimer: the loan's own timer (time.AfterFunc on the
// real clock) keeps GOMAXPROCS raised while a commit runs and lowers it
// back to the runtime's default once none has run for quiet; borrows and
// releases racing with it are safe and leave it lowered.
func TestProcessorLoanRealTimer(t *testing.T) {
	t.Run("one commit", func(t *testing.T) {
		const quiet = 20 * time.Millisecond
		l := newRealLoan(t, quiet)
		// The loan lowers to the runtime's default, which -cpu or a
		// GOMAXPROCS in the environment may not be.
		runtime.SetDefaultGOMAXPROCS()
		base := runtime.GOMAXPROCS(0)
		for round := range int32(2) {
			release := l.borrow()
			if n := runtime.GOMAXPROCS(0); n != base+1 || l.raises.Load() != round+1 {
				t.Fatalf("round %d, borrowed: GOMAXPROCS %d after %d raises, want %d after %d", round, n, l.raises.Load(), base+1, round+1)
			}
			// While the commit runs only expire calls now: twice means
			// the timer fired and was reset while it ran (unless it
			// lowered, which the check below reports).
			nows := l.nows.Load()
			deadline := time.Now().Add(10 * time.Second)
			for l.nows.Load() < nows+2 && l.lowers.Load() == round {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: the timer did not fire twice in 10 s (quiet %v)", round, quiet)
				}
				time.Sleep(time.Millisecond)
			}
			if n := runtime.GOMAXPROCS(0); n != base+1 || l.lowers.Load() != round {
				t.Fatalf("round %d, a commit running past quiet: GOMAXPROCS %d after %d lowers, want %d after %d", round, n, l.lowers.Load(), base+1, round)
			}
			released := time.Now()
			release()
			l.waitLowered(t, "after the commit", round+1, base)
			// Monotonic: released is no later than the release's own
			// time, and expire lowers only quiet after that.
			if idle := time.Since(released); idle < quiet {
				t.Errorf("round %d: lowered %v after the release, before quiet (%v)", round, idle, quiet)
			}
		}
	})
	t.Run("racing commits", func(t *testing.T) {
		// A quiet shorter than the gaps a loaded machine makes: the timer
		// fires, resets and lowers while commits borrow and release.
		l := newRealLoan(t, time.Millisecond)
		runtime.SetDefaultGOMAXPROCS()
		base := runtime.GOMAXPROCS(0)
		const writers, rounds, commits = 8, 10, 20
		for round := range rounds {
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range commits {
						release := l.borrow()
						if i%4 == 0 {
							runtime.Gosched()
						}
						release()
						// Gaps around quiet (not synchronisation): the
						// loan may end and start again mid-round, while
						// other writers borrow.
						if (w+i)%5 == 0 {
							time.Sleep(time.Duration(i%3) * time.Millisecond)
						}
					}
				})
			}
			wg.Wait()
			// Each round starts lowered, so raises once at least.
			if l.raises.Load() < int32(round+1) {
				t.Fatalf("round %d: %d raises, want at least %d", round, l.raises.Load(), round+1)
			}
			l.waitLowered(t, "after the commits", l.raises.Load(), base)
			if l.raises.Load() != l.lowers.Load() {
				t.Fatalf("round %d: %d raises, %d lowers once ended", round, l.raises.Load(), l.lowers.Load())
			}
		}
		t.Logf("%d raises and lowers in %d rounds", l.raises.Load(), rounds)
	})
}
