//go:build !unix

package c2s

import "syscall"

// canWriteNow: sockets are not file descriptors here; no session waits
// for a direct write (startWriter leaves direct unset).
const canWriteNow = false

// writeNow writes nothing where sockets are not file descriptors: the
// writer goroutine writes everything.
func writeNow(syscall.RawConn, []byte) (int, error) { return 0, nil }
