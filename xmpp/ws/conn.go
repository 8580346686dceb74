package ws

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"switchboard/xmpp/wire"
)

// NSFraming is the namespace of <open/> and <close/> (RFC 7395).
const NSFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// streamHeaderStart opens the stream header an <open/> becomes: the
// content and stream namespaces c2s expects (RFC 6120 §4.8).
const streamHeaderStart = "<stream:stream xmlns='" + wire.NSClient + "' xmlns:stream='" + wire.NSStream + "'"

// Conn is a WebSocket connection after the opening handshake, seen as an
// XML stream (see the package documentation). One goroutine at a time may
// Read, and one at a time may Write; Close may be called at any time.
// Deadlines are the underlying connection's: a Read that times out may be
// tried again, since a frame read in part is kept; a Write that fails ends
// the connection (what it took is gone, and over TLS a failed write is
// final).
type Conn struct {
	nc  net.Conn
	br  *bufio.Reader
	max int

	// The reader's (one goroutine at a time), under rmu: Close takes it
	// to read what the client still sends (see linger).
	rmu    sync.Mutex
	fr     frame
	inMsg  bool   // a fragmented text message is being read
	msg    []byte // the message read so far, unmasked
	out    []byte // translated bytes for Read
	outOff int
	rerr   error // the error that ended reading
	opened bool  // an <open/> was translated
	// restart says an <open/> may come again: c2s restarts the stream
	// after SASL succeeds (RFC 6120 §6.4.6) and says so (StreamRestart).
	restart atomic.Bool

	wmu   sync.Mutex
	wpend []byte // written bytes that do not yet hold a whole element
	// dmu guards the write deadline the caller set (wdl) and its
	// application to nc, which a control frame's write overrides for a
	// moment (writeControl).
	dmu sync.Mutex
	wdl time.Time
	// peerClosed says the client's Close frame was read: Close need not
	// linger (the reader's, under rmu).
	peerClosed bool
	closeCode  atomic.Uint32 // the status code of the Close frame to send
	closeSent  bool
	closing    atomic.Bool
}

var _ net.Conn = (*Conn)(nil)

// NewConn returns the Conn of nc after a completed opening handshake. br
// reads nc (it may hold bytes read past the handshake) and maxMessage
// bounds a message's payload.
func NewConn(nc net.Conn, br *bufio.Reader, maxMessage int) *Conn {
	if br == nil {
		br = bufio.NewReader(nc)
	}
	c := &Conn{nc: nc, br: br, max: maxMessage}
	c.closeCode.Store(closeNormal)
	return c
}

// wsError is a violation of the WebSocket framing: the stream ends with a
// stream error (as a wire.Error, which c2s sends) and the connection with
// a Close frame of code.
func (c *Conn) wsError(code uint16, cond, text string) error {
	c.closeCode.Store(uint32(code))
	return &wire.Error{Condition: cond, Msg: text}
}

// Read implements net.Conn: it returns the stream's bytes, translated from
// the messages read.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for c.outOff == len(c.out) {
		if c.rerr != nil {
			return 0, c.rerr
		}
		c.out, c.outOff = c.out[:0], 0
		if err := c.readMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, err // the state is kept: Read may be tried again
			}
			c.rerr = err
			return 0, err
		}
	}
	n := copy(p, c.out[c.outOff:])
	c.outOff += n
	if c.outOff == len(c.out) && cap(c.out) > 4<<10 {
		// A large message's translation is not kept by an idle
		// connection.
		c.out, c.outOff = nil, 0
	}
	return n, nil
}

// readMessage reads frames until a text message is complete and
// translates it into c.out. Control frames are answered on the way.
func (c *Conn) readMessage() error {
	for {
		if !c.fr.active {
			if err := c.readHeader(); err != nil {
				return err
			}
		}
		f := &c.fr
		if f.op >= opClose {
			if err := c.control(); err != nil {
				return err
			}
			continue
		}
		for f.remain > 0 {
			n := int(min(f.remain, 32<<10))
			at := len(c.msg)
			c.msg = slices.Grow(c.msg, n)
			m, err := c.br.Read(c.msg[at : at+n])
			c.msg = c.msg[:at+m]
			unmask(c.msg[at:], f.mask, f.pos)
			f.pos += m
			f.remain -= int64(m)
			if err != nil {
				return err
			}
		}
		f.active = false
		if !f.fin {
			continue
		}
		c.inMsg = false
		err := c.translate(c.msg)
		if cap(c.msg) > 4<<10 {
			c.msg = nil
		} else {
			c.msg = c.msg[:0]
		}
		if err != nil {
			return err
		}
		if len(c.out) > 0 {
			return nil
		}
	}
}

// readHeader reads and checks the next frame's header (RFC 6455 §5.2). It
// consumes nothing until the whole header is there.
func (c *Conn) readHeader() error {
	b, err := c.peekHeader()
	if err != nil {
		return err
	}
	n := len(b)
	f := frame{op: b[0] & 0x0F, fin: b[0]&0x80 != 0, active: true}
	size := payloadSize(b)
	switch {
	case b[0]&0x70 != 0:
		// §5.2: no extension was negotiated that defines them.
		return c.wsError(closeProtocolError, wire.CondBadFormat, "reserved bits set in a WebSocket frame")
	case b[1]&0x80 == 0:
		// §5.1: a server closes the connection on an unmasked frame.
		return c.wsError(closeProtocolError, wire.CondBadFormat, "unmasked WebSocket frame")
	case f.op >= opClose && f.op <= opPong && (!f.fin || size > maxControlPayload):
		// §5.5: control frames are not fragmented and carry at most
		// 125 bytes.
		return c.wsError(closeProtocolError, wire.CondBadFormat, "invalid WebSocket control frame")
	case f.op == opBinary:
		// RFC 7395, "WebSocket Messages": messages are text.
		return c.wsError(closeUnsupportedData, wire.CondBadFormat, "binary WebSocket message")
	case f.op == opText && c.inMsg, f.op == opContinuation && !c.inMsg:
		// §5.4: a message's fragments are not interleaved with
		// another data message.
		return c.wsError(closeProtocolError, wire.CondBadFormat, "unexpected WebSocket fragment")
	case f.op != opText && f.op != opContinuation && f.op < opClose, f.op > opPong:
		return c.wsError(closeProtocolError, wire.CondBadFormat, "unknown WebSocket opcode")
	case f.op < opClose && size > uint64(c.max-len(c.msg)):
		return c.wsError(closeTooBig, wire.CondPolicyViolation, "message too large")
	}
	copy(f.mask[:], b[n-4:n])
	f.remain = int64(size)
	if f.op == opText {
		c.inMsg = true
	}
	_, _ = c.br.Discard(n)
	c.fr = f
	return nil
}

// peekHeader returns the next frame's header, consuming nothing.
func (c *Conn) peekHeader() ([]byte, error) {
	b, err := c.br.Peek(2)
	if err != nil {
		return nil, err
	}
	n := 2
	switch b[1] & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	return c.br.Peek(n)
}

// payloadSize is the payload length a frame header h gives.
func payloadSize(h []byte) uint64 {
	switch l := h[1] & 0x7F; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		return binary.BigEndian.Uint64(h[2:])
	default:
		return uint64(l)
	}
}

// control reads and answers the control frame whose header was read:
// a Ping gets a Pong (RFC 6455 §5.5.2); a Close gets a Close and ends the
// stream as a lost connection would (§5.5.1): the client closed the
// WebSocket without closing the XMPP stream (RFC 7395, "Closing the
// Connection").
func (c *Conn) control() error {
	f := &c.fr
	b, err := c.br.Peek(int(f.remain))
	if err != nil {
		return err
	}
	var payload [maxControlPayload]byte
	p := payload[:copy(payload[:], b)]
	_, _ = c.br.Discard(len(p))
	unmask(p, f.mask, 0)
	f.active = false
	switch f.op {
	case opPing:
		if err := c.writeControl(opPong, p); err != nil {
			// Not a read timeout that Read may retry: over TLS a
			// failed write is final.
			return fmt.Errorf("ws: pong: %v: %w", err, net.ErrClosed)
		}
		return nil
	case opClose:
		code := uint16(closeNoStatus)
		if len(p) >= 2 {
			code = binary.BigEndian.Uint16(p)
			if !sendableCode(code) {
				code = closeProtocolError
			}
		}
		c.closeCode.Store(uint32(code))
		c.peerClosed = true
		return io.EOF
	}
	return nil // an unsolicited Pong (§5.5.3)
}

// translate turns a complete text message into stream bytes in c.out.
func (c *Conn) translate(m []byte) error {
	if !utf8.Valid(m) {
		// RFC 6455 §8.1: text is UTF-8.
		return c.wsError(closeInvalidPayload, wire.CondNotWellFormed, "invalid UTF-8 in a text message")
	}
	t := trimLeftSpace(m)
	switch {
	case len(t) == 0:
		// Nothing: white space is not a keepalive here (RFC 7395,
		// "Pings and Keepalives"), but it is harmless.
		return nil
	case wire.StartsElement(t, "open"):
		el, err := parseFraming(t, "open")
		if err != nil {
			return err
		}
		if c.opened && !c.restart.Swap(false) {
			// A stream is restarted only after SASL succeeds.
			return &wire.Error{Condition: wire.CondBadFormat, Msg: "<open/> in an open stream"}
		}
		c.opened = true
		c.out = append(c.out, streamHeaderStart...)
		for _, a := range el.Attrs {
			switch a.Name {
			case "to", "from", "version", "xml:lang", "id":
				c.out = append(c.out, ' ')
				c.out = append(c.out, a.Name...)
				c.out = append(c.out, "='"...)
				c.out = wire.AppendEscapedAttr(c.out, a.Value)
				c.out = append(c.out, '\'')
			}
		}
		c.out = append(c.out, '>')
	case wire.StartsElement(t, "close"):
		if _, err := parseFraming(t, "close"); err != nil {
			return err
		}
		c.out = append(c.out, "</stream:stream>"...)
	default:
		// Stanzas or nonzas: c2s parses them in the stream's scope,
		// where an element that does not declare jabber:client is in
		// it. Each message holds whole elements (RFC 7395, "XML
		// Framing": one; more are let through, as other servers do),
		// so that an unbalanced one fails here rather than waiting for
		// the next message to complete it.
		if err := wholeElements(t); err != nil {
			return err
		}
		c.out = append(c.out, m...)
	}
	return nil
}

// parseFraming parses the message b, an <open/> or <close/> (name), and
// checks its namespace.
func parseFraming(b []byte, name string) (*wire.Element, error) {
	el, err := wire.Parse(b, wire.Scope{})
	if err != nil {
		return nil, err
	}
	if el.Space != NSFraming {
		return nil, &wire.Error{Condition: wire.CondInvalidNamespace, Msg: "<" + name + "/> must be in " + NSFraming}
	}
	return el, nil
}

// wholeElements checks that the message b holds whole top-level elements
// and no stream header.
func wholeElements(b []byte) error {
	for len(b) > 0 {
		kind, n := wire.ScanUnit(b)
		switch {
		case n == 0:
			return &wire.Error{Condition: wire.CondNotWellFormed, Msg: "a message must hold whole elements"}
		case kind == wire.UnitHeader:
			return &wire.Error{Condition: wire.CondBadFormat, Msg: "a stream is opened with <open/>"}
		}
		b = b[n:]
	}
	return nil
}

// StreamRestart lets a new <open/> through once: c2s calls it when SASL
// succeeded and the stream restarts (RFC 6120 §6.4.6).
func (c *Conn) StreamRestart() { c.restart.Store(true) }

func trimLeftSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

// Write implements net.Conn: it cuts what c2s writes into top-level
// elements and sends each as a text message, translated (see the package
// documentation). Bytes that do not complete an element wait for the next
// Write.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return 0, net.ErrClosed
	}
	c.wpend = append(c.wpend, b...)
	var frames []byte
	off := wire.CutUnits(c.wpend, func(kind wire.UnitKind, u []byte) bool {
		switch kind {
		case wire.UnitHeader:
			frames = appendOpen(frames, u)
		case wire.UnitStreamEnd:
			frames = appendText(frames, "<close xmlns='"+NSFraming+"'/>")
		case wire.UnitElement:
			frames = appendElement(frames, u)
		}
		return true
	})
	c.wpend = append(c.wpend[:0], c.wpend[off:]...)
	if len(c.wpend) > c.max {
		// c2s writes whole elements: an element this long that does
		// not end is a fault, not something to buffer without bound.
		return 0, errors.New("ws: unterminated element written")
	}
	if len(c.wpend) == 0 && cap(c.wpend) > 4<<10 {
		c.wpend = nil
	}
	if len(frames) == 0 {
		return len(b), nil
	}
	if _, err := c.nc.Write(frames); err != nil {
		return 0, err
	}
	return len(b), nil
}

// controlTimeout bounds the write of a control frame.
const controlTimeout = 10 * time.Second

// writeControl sends a control frame with a deadline of its own: the one
// the caller set for its writes may have passed long ago on a quiet
// session. A sooner one (a slow consumer's cut-off) is kept, and the
// caller's is restored after, unless it set another meanwhile.
func (c *Conn) writeControl(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	c.dmu.Lock()
	caller := c.wdl
	dl := time.Now().Add(controlTimeout)
	if !caller.IsZero() && caller.After(time.Now()) && caller.Before(dl) {
		dl = caller
	}
	_ = c.nc.SetWriteDeadline(dl)
	c.dmu.Unlock()
	b := appendFrameHeader(make([]byte, 0, 2+len(payload)), op, len(payload))
	_, err := c.nc.Write(append(b, payload...))
	c.dmu.Lock()
	if c.wdl.Equal(caller) {
		_ = c.nc.SetWriteDeadline(caller)
	}
	c.dmu.Unlock()
	return err
}

// Lingering bounds: how long and how much Close reads after its Close
// frame.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20
)

// Close implements net.Conn: it sends a Close frame, unless a write is in
// progress (a blocked writer must not hold Close up), lingers once the
// frame is sent (unless a Read is in progress) and closes the connection.
func (c *Conn) Close() error {
	if !c.closing.CompareAndSwap(false, true) {
		// Closed again (Shutdown's last resort): no more waiting, and
		// no close_notify for a peer that is not reading.
		if tc, ok := c.nc.(*tls.Conn); ok {
			return tc.NetConn().Close()
		}
		return c.nc.Close()
	}
	sent := false
	if c.wmu.TryLock() {
		if !c.closeSent {
			c.closeSent = true
			_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, err := c.nc.Write(appendCloseFrame(nil, uint16(c.closeCode.Load())))
			sent = err == nil
		}
		c.wmu.Unlock()
	}
	if sent && c.rmu.TryLock() {
		if !c.peerClosed {
			c.linger()
		}
		c.rerr = net.ErrClosed
		c.rmu.Unlock()
	}
	return c.nc.Close()
}

// linger reads and drops what the client still sends until its Close
// frame, the end of its stream, or lingerTime or lingerBytes: closing a
// socket with input unread resets the connection, and the client may then
// lose the stream error and Close frame sent last (RFC 6455 §7.1.1 has the
// server close the TCP connection first, once the closing handshake is
// done). c.rmu is held.
func (c *Conn) linger() {
	_ = c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	left := int64(lingerBytes)
	if c.fr.active {
		n, err := io.CopyN(io.Discard, c.br, min(c.fr.remain, left))
		if left -= n; err != nil || c.fr.op == opClose {
			return
		}
	}
	for left > 0 {
		b, err := c.peekHeader()
		if err != nil {
			return
		}
		n := len(b)
		op, size := b[0]&0x0F, payloadSize(b)
		if op == opClose || size > uint64(left) {
			return
		}
		_, _ = c.br.Discard(n)
		m, err := io.CopyN(io.Discard, c.br, int64(size))
		if left -= int64(n) + m; err != nil {
			return
		}
	}
}

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn. Once Close has begun, its own
// deadline (linger's) stands.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.closing.Load() {
		return nil
	}
	return c.nc.SetReadDeadline(t)
}

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.wdl = t
	return c.nc.SetWriteDeadline(t)
}
