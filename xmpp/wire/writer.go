package wire

import (
	"errors"
	"net"
	"sync"
	"time"
)

// StreamWriter serialises the writes of a stream's goroutines to its
// connection, each write with a deadline. Once a write failed or the
// stream's last bytes went out (Last), every write fails: nothing follows
// the closing tag.
type StreamWriter struct {
	mu      sync.Mutex
	nc      net.Conn
	timeout time.Duration
	done    bool
}

// NewStreamWriter returns a writer to nc whose writes each get timeout.
func NewStreamWriter(nc net.Conn, timeout time.Duration) *StreamWriter {
	return &StreamWriter{nc: nc, timeout: timeout}
}

// SetConn replaces the connection written to (after a TLS handshake).
func (w *StreamWriter) SetConn(nc net.Conn) {
	w.mu.Lock()
	w.nc = nc
	w.mu.Unlock()
}

// Write writes b; it fails with net.ErrClosed after Last or a failed
// write.
func (w *StreamWriter) Write(b []byte) error { return w.send(b, false) }

// Last writes the end of the stream (a stream error, the closing tag);
// it reports false when the stream had ended already.
func (w *StreamWriter) Last(b []byte) bool { return w.send(b, true) != net.ErrClosed }

func (w *StreamWriter) send(b []byte, last bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return net.ErrClosed
	}
	w.done = last
	_ = w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
	if _, err := w.nc.Write(b); err != nil {
		w.done = true
		return err
	}
	return nil
}

// writeChunk bounds the bytes WriteEach gathers before a write.
const writeChunk = 32 << 10

// WriteEach writes the n byte strings item returns, gathered into writes
// of about 32 KiB; one as large goes out by itself.
func (w *StreamWriter) WriteEach(n int, item func(i int) []byte) error {
	if n == 1 {
		return w.Write(item(0))
	}
	var buf []byte
	for i := range n {
		b := item(i)
		if len(buf) > 0 && len(buf)+len(b) > writeChunk {
			if err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		if len(b) >= writeChunk {
			if err := w.Write(b); err != nil {
				return err
			}
			continue
		}
		if buf == nil {
			buf = make([]byte, 0, writeChunk)
		}
		buf = append(buf, b...)
	}
	if len(buf) == 0 {
		return nil
	}
	return w.Write(buf)
}

// AppendEnd appends the end of a stream whose reading stopped with err: the
// stream error an *Error names, connection-timeout after a read timeout
// (RFC 6120 §4.9.3.4), the closing tag alone when the peer closed its
// stream (§4.4). It reports false for any other error: the connection is
// lost, and nothing is to be written.
func AppendEnd(b []byte, err error) ([]byte, bool) {
	var we *Error
	var ne net.Error
	switch {
	case errors.As(err, &we):
		return AppendStreamEnd(b, we.Condition, we.Msg), true
	case errors.Is(err, ErrStreamEnd):
		return append(b, "</stream:stream>"...), true
	case errors.As(err, &ne) && ne.Timeout():
		return AppendStreamEnd(b, "connection-timeout", ""), true
	}
	return b, false
}

// Discard reads and drops elements until the stream ends or reading
// fails: the peer's closing tag after ours, read so that ours is not lost
// to the reset a close with unread input causes. The caller bounds it
// with a read deadline.
func (d *Decoder) Discard() {
	for {
		if _, err := d.ReadElement(); err != nil {
			return
		}
	}
}
