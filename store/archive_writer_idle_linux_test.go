//go:build linux

package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// schedIdle is SCHED_IDLE in /proc/PID/task/TID/stat's policy field.
const schedIdle = 5

// idleThreads returns this process's threads with the SCHED_IDLE policy
// and their voluntary context switches.
func idleThreads(t *testing.T) map[string]int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		t.Fatal(err)
	}
	idle := map[string]int{}
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue // the thread ended
		}
		// Fields after the command's closing parenthesis start at the
		// third (state); policy is the 41st (proc(5)).
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 39 {
			t.Fatalf("%s/stat: %d fields after the command", d, len(fields))
		}
		if p, _ := strconv.Atoi(fields[41-3]); p != schedIdle {
			continue
		}
		status, err := os.ReadFile(filepath.Join(d, "status"))
		if err != nil {
			continue
		}
		var switches int
		for line := range strings.Lines(string(status)) {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				switches, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		idle[filepath.Base(d)] = switches
	}
	return idle
}

// needIdlePriority skips a test that needs the background committer where
// this process may not raise a thread back from SCHED_IDLE (neither
// CAP_SYS_NICE nor an RLIMIT_NICE of 20): the writer then commits at
// normal priority, which TestCheckIdlePriority checks.
func needIdlePriority(t *testing.T) {
	t.Helper()
	if err := CheckIdlePriority(); err != nil {
		t.Skipf("idle priority not possible here: %v", err)
	}
	waitNoIdleThreads(t)
}

// waitNoIdleThreads waits until no thread of this process is SCHED_IDLE
// (a probe's thread is raised back or ends shortly after it answered).
func waitNoIdleThreads(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(idleThreads(t)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("SCHED_IDLE threads left by the probe: %v", idleThreads(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestArchiveWriterBackgroundCommitsOnIdleThread(t *testing.T) {
	needIdlePriority(t)
	if n := len(idleThreads(t)); n != 0 {
		t.Fatalf("%d SCHED_IDLE threads before the writer started", n)
	}
	db := openTest(t)
	// No delay and no Flush: every batch is small and unwaited for, so
	// it goes to the background committer.
	// No index pass before Stop (it would borrow the processor after the
	// commits this test counts, as the loan is checked).
	w := db.Archive().NewWriter(WriterOptions{MaxDelay: -1, Background: true, IndexDelay: time.Hour})
	w.idleCPU.read = idleMachine()
	// On a loaded machine (other test packages) a commit may wait for a
	// CPU long enough to count as starved, which would move the commits
	// to normal priority: not what this test is about.
	w.maxWaitShare, w.minShare = 2, -1
	loan := newFakeLoan(t)
	w.loan = loan.processorLoan
	w.Start(t.Context())
	idle := idleThreads(t)
	if len(idle) != 1 {
		t.Fatalf("%d SCHED_IDLE threads after Start, want the committer's 1", len(idle))
	}
	var tid string
	var before int
	for tid, before = range idle {
	}

	const records = 50
	done := make(chan error, records)
	for i := range records {
		rec := msg(fmt.Sprintf("user%d@example.org", i%7), "romeo@example.net", DirIn)
		if _, err := w.Append(rec, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // separate batches
	}
	for range records {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("commit: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("records not committed within a minute")
		}
	}
	if cpu := threadCPUTime(mustAtoi(t, tid)); cpu <= 0 {
		t.Errorf("committer thread %s: CPU time %v after %d commits", tid, cpu, records)
	}
	// The committer's thread waits for each batch and syncs each commit:
	// it switched at least once per commit, which were several.
	if after := idleThreads(t)[tid]; after-before < 4 {
		t.Errorf("committer thread %s: %d voluntary context switches during %d appends; commits did not run on it", tid, after-before, records)
	}
	page, err := db.Archive().Query(t.Context(), ArchiveQuery{Archive: "user0@example.org", WantCount: true})
	if err != nil {
		t.Fatal(err)
	}
	if page.Count != (records+6)/7 {
		t.Errorf("user0 archive count %d, want %d", page.Count, (records+6)/7)
	}
	// The background commits borrowed a processor, raised once, and
	// gave each borrow back.
	loan.check(t, "after the commits", 1, 0)
	if n := loan.running(); n != 0 {
		t.Errorf("%d background commits still borrowing after all committed", n)
	}

	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The committer's goroutine kept its thread locked: the thread ends
	// with it rather than serving other goroutines at idle priority.
	deadline := time.Now().Add(10 * time.Second)
	for len(idleThreads(t)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("SCHED_IDLE threads left after Stop: %v (pid %d)", idleThreads(t), os.Getpid())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestArchiveWriterBackgroundBoost(t *testing.T) {
	needIdlePriority(t)
	db := openTest(t)
	var logs lockedBuffer
	w := db.Archive().NewWriter(WriterOptions{MaxDelay: -1, Background: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	// Every background commit is checked at once and found short of CPU
	// (no thread waits less than never, nor runs more than all the
	// time): it is raised to normal priority, and sends the next ones to
	// normal priority.
	w.boostAfter, w.maxWaitShare, w.minShare = time.Nanosecond, -1, 2
	w.idleCPU.read = idleMachine()
	loan := newFakeLoan(t)
	w.loan = loan.processorLoan
	w.Start(t.Context())
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	if n := len(idleThreads(t)); n != 1 {
		t.Fatalf("%d SCHED_IDLE threads after Start, want 1", n)
	}
	const records = 5
	for i := range records {
		done := make(chan error, 1)
		if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if got := strings.Count(logs.String(), "lacked idle CPU"); got != 1 {
		t.Errorf("%d boosts logged, want 1 (then normal priority for a while):\n%s", got, logs.String())
	}
	if idle := idleThreads(t); len(idle) != 0 {
		t.Errorf("SCHED_IDLE threads after a boost: %v", idle)
	}
	page, err := db.Archive().Query(t.Context(), ArchiveQuery{Archive: juliet, WantCount: true})
	if err != nil {
		t.Fatal(err)
	}
	if page.Count != records {
		t.Errorf("archive count %d, want %d", page.Count, records)
	}
	// The starved commit borrowed and, raised, still gave it back.
	loan.check(t, "after the boost", 1, 0)
	if n := loan.running(); n != 0 {
		t.Errorf("%d background commits still borrowing after a boost", n)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// idleMachine stands in for readCPUTimes: a machine whose CPUs are always
// idle, 100 ticks a call.
func idleMachine() func() (cpuTimes, error) {
	var t cpuTimes
	return func() (cpuTimes, error) {
		t.idle += 100
		t.total += 100
		return t, nil
	}
}

func TestCheckIdlePriority(t *testing.T) {
	err := CheckIdlePriority()
	// The probe's thread is back at normal priority or gone.
	waitNoIdleThreads(t)
	// A writer agrees with the probe.
	db := openTest(t)
	w := startWriter(t, db, WriterOptions{Background: true})
	if got := w.bg != nil; got != (err == nil) {
		t.Errorf("background committer running: %v; CheckIdlePriority: %v", got, err)
	}
}

func TestThreadRunDelay(t *testing.T) {
	tid := threadID()
	a, ok := threadRunDelay(tid)
	if !ok {
		t.Skip("the kernel keeps no run delays (schedstat)")
	}
	b, ok := threadRunDelay(tid)
	if !ok || b < a {
		t.Fatalf("run delay went from %v to %v (ok %v)", a, b, ok)
	}
	if _, ok := threadRunDelay(-1); ok {
		t.Fatal("a run delay for thread -1")
	}
}

// When the committer's thread, raised for a commit, cannot be given idle
// priority again, the writer says so once, ends the committer and commits
// every later batch itself.
func TestArchiveWriterStopsCommitterWhenPriorityCannotBeLowered(t *testing.T) {
	needIdlePriority(t)
	db := openNoSync(t)
	var logs lockedBuffer
	w := db.Archive().NewWriter(WriterOptions{MaxDelay: -1, Background: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	w.idleCPU.read = idleMachine()
	w.maxWaitShare, w.minShare = 2, -1
	var tries atomic.Int32
	w.lowerPriority = func(int) error {
		tries.Add(1)
		return errors.New("operation not permitted")
	}
	w.bgRaised = true // as after a commit someone waited for
	loan := newFakeLoan(t)
	w.loan = loan.processorLoan
	w.Start(t.Context())
	// One batch at a time: the first commit may run at normal priority
	// (the idle-CPU meter's first look only primes it), later ones go to
	// the committer.
	const records = 20
	done := make(chan error, 1)
	for range records {
		if _, err := w.Append(msg(juliet, "romeo@example.net", DirIn), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	if n := tries.Load(); n != 1 {
		t.Errorf("lowering the priority tried %d times, want once", n)
	}
	// The committer ended before its first job: nothing was lent.
	loan.check(t, "committing at normal priority", 0, 0)
	if n := strings.Count(logs.String(), "cannot lower the committer's priority"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	waitNoIdleThreads(t)
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	page, err := db.Archive().Query(t.Context(), ArchiveQuery{Archive: juliet, WantCount: true})
	if err != nil || page.Count != records {
		t.Fatalf("records = %d, %v; want %d", page.Count, err, records)
	}
}
