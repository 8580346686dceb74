package c2s

import (
	"syscall"
	"unsafe"
)

// readable reports whether the socket fd has input (or an error or the end
// of the stream to report): a one-byte peek that neither blocks nor
// consumes. False asks syscall.RawConn.Read to wait for readiness.
func readable(fd uintptr) bool {
	var b [1]byte
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN && errno != syscall.EWOULDBLOCK
}
