//go:build unix

package c2s

import "syscall"

// canWriteNow: sockets are file descriptors that writeNow can write.
const canWriteNow = true

// writeNow writes as much of b as the socket takes without waiting and
// returns how much that was: short of len(b) when its buffer fills or a
// write fails (the writer's own write then meets the error and ends the
// session). err is the raw connection's: os.ErrDeadlineExceeded (wrapped)
// when the connection's write deadline has passed, and then nothing was
// tried.
func writeNow(raw syscall.RawConn, b []byte) (n int, err error) {
	err = raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, werr := syscall.Write(int(fd), b[n:])
			if werr == syscall.EINTR {
				continue
			}
			if werr != nil || m <= 0 {
				break
			}
			n += m
		}
		return true
	})
	return n, err
}
