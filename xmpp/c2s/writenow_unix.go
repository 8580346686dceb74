//go:build unix

package c2s

import "syscall"

// writeNow writes as much of b as the socket takes without waiting and
// returns how much that was: 0 when its buffer is full or on an error (the
// writer's own write meets it again and ends the session). err is the raw
// connection's: os.ErrDeadlineExceeded (wrapped) when the connection's
// write deadline has passed, and then nothing was tried.
func writeNow(raw syscall.RawConn, b []byte) (n int, err error) {
	err = raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil || m <= 0 {
				break
			}
			n += m
		}
		return true
	})
	return n, err
}
