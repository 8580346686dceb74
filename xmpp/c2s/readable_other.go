//go:build !linux

package c2s

// readable reports input at once where no non-blocking peek is wired up:
// the read that follows waits instead, with its buffer.
func readable(uintptr) bool { return true }
