package store

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loanQuiet is how long the extra processor outlives the last background
// commit (processorLoan).
const loanQuiet = 5 * time.Second

// processorLoan gives the Go runtime one processor (GOMAXPROCS) more while
// idle-priority commits run (WriterOptions.Background). Such a commit's
// thread holds a processor while the OS lets every other thread run before
// it: without one more, the threads serving connections would have one
// fewer during each commit (measured: p99 latency of 1:1 chat at 5,000
// msgs/s with the archive on, 0.76 ms against 0.66 ms). Without commits
// the extra processor costs: more runnable threads than CPUs contend for
// them (measured: 9 % more CPU per delivered message at saturation). So
// the loan starts with a background commit and ends when none has run for
// quiet. Changing GOMAXPROCS stops the world for a moment: that happens
// once per burst of commits, not per commit.
//
// GOMAXPROCS is the process's, so the loan is too: every writer shares
// processors, and only the program that owns the process turns it on
// (LendProcessors). While raised, the runtime does not follow changes of
// the CPUs it may use (cgroup quota, affinity) until it lowers again.
// Its timer belongs to no writer: after the last writer stops, the
// process stays raised for up to quiet more.
type processorLoan struct {
	enabled atomic.Bool // LendProcessors was called

	quiet time.Duration
	now   func() time.Time
	raise func() // one processor more
	lower func() // back to the runtime's default

	mu     sync.Mutex
	active int         // background commits running
	last   time.Time   // when the last one ended
	timer  *time.Timer // runs expire; set while raised
}

// processors is the process's loan. An explicit GOMAXPROCS in the
// environment is the operator's choice: writers then leave it alone
// (loanFor).
var processors = &processorLoan{
	quiet: loanQuiet,
	now:   time.Now,
	raise: func() { runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1) },
	lower: runtime.SetDefaultGOMAXPROCS,
}

// LendProcessors lets the writers created after it raise GOMAXPROCS by
// one while their background commits run (WriterOptions.Background,
// processorLoan). For the program that owns the process (`switchboard
// serve`): a program embedding the store, or a test, keeps the GOMAXPROCS
// it set. A GOMAXPROCS in the environment still wins.
func LendProcessors() { processors.enabled.Store(true) }

// loanFor is the loan a writer uses: processors for background commits
// when lending is on (LendProcessors) and GOMAXPROCS is not set in the
// environment (as the runtime reads it: a positive whole number), else nil.
func loanFor(background bool) *processorLoan {
	if !background || !processors.enabled.Load() {
		return nil
	}
	if n, err := strconv.Atoi(os.Getenv("GOMAXPROCS")); err == nil && n > 0 {
		return nil
	}
	return processors
}

// borrow marks a background commit as running, raising GOMAXPROCS if it
// is not raised, and returns the function that marks it ended. A nil loan
// does nothing.
func (l *processorLoan) borrow() (release func()) {
	if l == nil {
		return func() {}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active++
	if l.timer == nil {
		l.raise()
		l.timer = time.AfterFunc(l.quiet, l.expire)
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.active--
		l.last = l.now()
	}
}

// expire lowers GOMAXPROCS again once no background commit has run for
// quiet, or looks again when one may have.
func (l *processorLoan) expire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	idle := l.now().Sub(l.last)
	if l.active > 0 {
		l.timer.Reset(l.quiet)
		return
	}
	if idle < l.quiet {
		l.timer.Reset(l.quiet - idle)
		return
	}
	l.lower()
	l.timer = nil
}
