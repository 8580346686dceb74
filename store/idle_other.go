//go:build !linux

package store

import (
	"errors"
	"time"
)

// setThreadIdlePriority is not supported here: background commits run
// at the process's normal priority.
func setThreadIdlePriority(int) error {
	return errors.New("idle CPU priority is supported on Linux only")
}

// setNormalPriority is not needed here: setThreadIdlePriority fails.
func setNormalPriority(int) error { return nil }

// threadCPUTime is unknown here.
func threadCPUTime(int) time.Duration { return 0 }

// threadRunDelay is unknown here.
func threadRunDelay(int) (time.Duration, bool) { return 0, false }

// threadID is unknown here.
func threadID() int { return 0 }

// onMainThread is unknown here, and does not matter:
// setThreadIdlePriority fails.
func onMainThread() bool { return false }

// readCPUTimes is not supported here.
func readCPUTimes() (cpuTimes, error) {
	return cpuTimes{}, errors.New("machine CPU times are not available here")
}
