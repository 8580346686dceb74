//go:build linux

package store

import (
	"fmt"

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

// threadID is the calling OS thread's id.
func threadID() int { return unix.Gettid() }

// onMainThread reports whether the calling goroutine runs on the process's
// main thread.
func onMainThread() bool { return unix.Gettid() == unix.Getpid() }
