//go:build !linux

package store

import "errors"

// setThreadIdlePriority is not supported here: background commits run
// at the process's normal priority.
func setThreadIdlePriority(int) error {
	return errors.New("idle CPU priority is supported on Linux only")
}

// setNormalPriority is not needed here: setThreadIdlePriority fails.
func setNormalPriority(int) error { return nil }

// threadID is unknown here.
func threadID() int { return 0 }

// onMainThread is unknown here, and does not matter:
// setThreadIdlePriority fails.
func onMainThread() bool { return false }
