package listen

import (
	"errors"
	"net"
	"time"
)

// Backoff bounds the pause after a transient accept error: it starts at
// minPause and doubles with each error in a row, up to maxPause.
const (
	minPause = 5 * time.Millisecond
	maxPause = time.Second
)

// Loop accepts connections on ln and hands each to handle, on the calling
// goroutine, until an accept fails for good. It returns nil when ln was
// closed (or closing reports true: Shutdown began), the accept error
// otherwise. Each transient error is passed to retry before the pause.
func Loop(ln net.Listener, closing func() bool, retry func(error), handle func(net.Conn)) error {
	var pause time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if closing() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if !temporary(err) {
				return err
			}
			pause = min(max(2*pause, minPause), maxPause)
			retry(err)
			time.Sleep(pause)
			continue
		}
		pause = 0
		handle(nc)
	}
}

// temporary reports whether an accept error is transient: a timeout, or
// an error that says it is temporary (EMFILE, ENFILE; the net package
// retries connections aborted before accept itself).
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// RemoteIP returns the address a connection's peer connects from,
// without its port: the key of per-address limits.
func RemoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
