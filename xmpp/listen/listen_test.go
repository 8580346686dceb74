package listen

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
)

// fakeListener returns the errors in errs, one per Accept, then conns.
type fakeListener struct {
	mu    sync.Mutex
	errs  []error
	conns []net.Conn
	net.Listener
}

func (l *fakeListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		if err != nil {
			return nil, err
		}
	}
	if len(l.conns) > 0 {
		c := l.conns[0]
		l.conns = l.conns[1:]
		return c, nil
	}
	return nil, net.ErrClosed
}

var errBad = errors.New("bad listener")

func TestLoop(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	for _, tc := range []struct {
		name    string
		errs    []error
		closing bool
		wantErr error
		retries int
		handled int
	}{
		{"transient errors are retried", []error{syscall.EMFILE, syscall.ENFILE, nil}, true, nil, 2, 1},
		{"closed by shutdown", nil, true, nil, 0, 1},
		{"closed by someone else", nil, false, nil, 0, 1},
		{"a permanent error ends it", []error{nil, errBad}, false, errBad, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := &fakeListener{errs: tc.errs, conns: []net.Conn{a}}
			retries, handled := 0, 0
			// Shutdown closed it, once what it had to give is given.
			closing := func() bool {
				ln.mu.Lock()
				defer ln.mu.Unlock()
				return tc.closing && len(ln.errs) == 0 && len(ln.conns) == 0
			}
			err := Loop(ln, closing, func(error) { retries++ }, func(net.Conn) { handled++ })
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("ended with %v", err)
			case !errors.Is(err, tc.wantErr):
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if retries != tc.retries || handled != tc.handled {
				t.Fatalf("retries %d, handled %d; want %d, %d", retries, handled, tc.retries, tc.handled)
			}
		})
	}
}
