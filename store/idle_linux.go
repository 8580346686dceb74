//go:build linux

package store

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// setThreadIdlePriority gives OS thread tid the SCHED_IDLE policy
// (sched(7)): it runs only on CPU time no other thread of the machine
// wants, and any other thread waking up preempts it at once. A goroutine
// must hold the thread (runtime.LockOSThread) and never release it: Go
// would otherwise run other goroutines on it at that priority. The thread
// must not be the main thread, which Go never ends.
func setThreadIdlePriority(tid int) error {
	if err := unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_IDLE}, 0); err != nil {
		return fmt.Errorf("sched_setattr SCHED_IDLE on thread %d: %w", tid, err)
	}
	return nil
}

// setNormalPriority gives thread tid the SCHED_NORMAL (SCHED_OTHER) policy at nice 0.
// Leaving SCHED_IDLE takes CAP_SYS_NICE or an RLIMIT_NICE of 20 or more.
func setNormalPriority(tid int) error {
	if err := unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0); err != nil {
		return fmt.Errorf("sched_setattr SCHED_NORMAL on thread %d: %w", tid, err)
	}
	return nil
}

// threadCPUTime is the CPU time OS thread tid of this process has used,
// from its CPU-time clock (clock_gettime(2): the clock id of a thread's
// CPUCLOCK_SCHED clock is ^tid<<3 | 6); 0 if it cannot be read.
func threadCPUTime(tid int) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^uint32(tid)<<3|6), &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// threadRunDelay is how long OS thread tid of this process has waited on
// a run queue for a CPU, the second field of its schedstat (proc(5)):
// time spent waiting for a disk or a lock is not in it. ok is false if the
// kernel does not keep it.
func threadRunDelay(tid int) (d time.Duration, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/schedstat", tid))
	if err != nil {
		return 0, false
	}
	var run, wait, slices uint64
	if n, _ := fmt.Sscan(string(b), &run, &wait, &slices); n != 3 {
		return 0, false
	}
	return time.Duration(wait), true
}

// threadID is the calling OS thread's id.
func threadID() int { return unix.Gettid() }

// onMainThread reports whether the calling goroutine runs on the process's
// main thread.
func onMainThread() bool { return unix.Gettid() == unix.Getpid() }

// readCPUTimes reads the machine's CPU times from the first line of
// /proc/stat (the rest, per CPU and interrupt counts, can be large).
func readCPUTimes() (cpuTimes, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	defer f.Close()
	var buf [512]byte
	n, err := f.Read(buf[:])
	if n == 0 {
		return cpuTimes{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseCPUTimes(string(buf[:n]))
}
