//go:build !unix

package c2s

import "syscall"

// writeNow writes nothing where sockets are not file descriptors: the
// writer goroutine writes everything.
func writeNow(syscall.RawConn, []byte) (int, error) { return 0, nil }
