package store

import (
	"fmt"
	"runtime"
)

// onOwnThread runs fn on a new goroutine locked to an OS thread that is
// not the process's main thread, and never unlocked: fn may change the
// thread's state (its CPU priority), and the thread ends with fn rather
// than serving other goroutines in that state. The main thread never ends
// even when its locked goroutine does, so a goroutine that finds itself
// there holds it until a second goroutine has locked another thread.
func onOwnThread(fn func()) {
	go func() {
		runtime.LockOSThread()
		if !onMainThread() {
			fn()
			return
		}
		locked := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(locked)
			fn()
		}()
		<-locked
		runtime.UnlockOSThread()
	}()
}

// probeIdlePriority sets thread tid (the caller's, locked) to idle
// priority and back to normal: background commits need both (see
// WriterOptions.Background).
func probeIdlePriority(tid int) error {
	if err := setThreadIdlePriority(tid); err != nil {
		return err
	}
	if err := setNormalPriority(tid); err != nil {
		return fmt.Errorf("cannot raise a thread's priority again (needs CAP_SYS_NICE or an RLIMIT_NICE of 20): %w", err)
	}
	return nil
}

// CheckIdlePriority reports whether archive commits can run at idle
// priority in this process (WriterOptions.Background): nil if so, else
// why not. It tries on a thread of its own, which then ends.
func CheckIdlePriority() error {
	res := make(chan error, 1)
	onOwnThread(func() { res <- probeIdlePriority(threadID()) })
	return <-res
}
