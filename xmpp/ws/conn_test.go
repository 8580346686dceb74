package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"switchboard/xmpp/wire"
)

// scriptConn is a net.Conn reading scripted chunks (a nil chunk is a read
// timeout) and recording what is written.
type scriptConn struct {
	chunks [][]byte
	out    bytes.Buffer
	closed bool
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	ch := c.chunks[0]
	if ch == nil {
		c.chunks = c.chunks[1:]
		return 0, os.ErrDeadlineExceeded
	}
	n := copy(p, ch)
	if n == len(ch) {
		c.chunks = c.chunks[1:]
	} else {
		c.chunks[0] = ch[n:]
	}
	return n, nil
}

func (c *scriptConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *scriptConn) Close() error                     { c.closed = true; return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// clientFrame is a frame as a client sends it: masked.
func clientFrame(fin bool, op byte, payload string) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, mask[:]...)
	p := []byte(payload)
	unmask(p, mask, 0)
	return append(b, p...)
}

func text(s string) []byte { return clientFrame(true, opText, s) }

// readAll reads c until an error and returns what was read and the error.
func readAll(c *Conn) (string, error) {
	var out []byte
	buf := make([]byte, 7) // small: reads resume within a translation
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return string(out), err
		}
	}
}

// serverFrames splits what the server wrote into frames.
func serverFrames(t *testing.T, b []byte) (ops []byte, payloads []string) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < 2 || b[0]&0x80 == 0 || b[1]&0x80 != 0 {
			t.Fatalf("bad server frame % x", b)
		}
		n := 2
		size := uint64(b[1] & 0x7F)
		switch size {
		case 126:
			size, n = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			size, n = binary.BigEndian.Uint64(b[2:]), 10
		}
		ops = append(ops, b[0]&0x0F)
		payloads = append(payloads, string(b[n:n+int(size)]))
		b = b[n+int(size):]
	}
	return ops, payloads
}

func TestConnRead(t *testing.T) {
	open := "<open xmlns='" + NSFraming + "' to='example.org' version='1.0' xml:lang='de'/>"
	header := streamHeaderStart + " to='example.org' version='1.0' xml:lang='de'>"
	cases := []struct {
		name   string
		chunks [][]byte
		want   string
		cond   string // stream error condition; "" = io.EOF
		// code is the status of the Close frame Close sends: the
		// client's (valid) one, 1000 after the end of its stream.
		code uint16
	}{
		{"open and stanza", [][]byte{text(open), text("<presence/>")}, header + "<presence/>", "", closeNormal},
		{"open with double quotes and escapes", [][]byte{text(`<open xmlns="` + NSFraming + `" to="a&amp;b" version="1.0"/>`)},
			streamHeaderStart + " to='a&amp;b' version='1.0'>", "", closeNormal},
		{"close", [][]byte{text(open), text("<close xmlns='" + NSFraming + "'/>")}, header + "</stream:stream>", "", closeNormal},
		{"fragments and control frames between", [][]byte{
			text(open),
			clientFrame(false, opText, "<message><bo"),
			clientFrame(true, opPing, "hi"),
			clientFrame(false, opContinuation, "dy>x</body>"),
			clientFrame(true, opPong, ""),
			clientFrame(true, opContinuation, "</message>"),
		}, header + "<message><body>x</body></message>", "", closeNormal},
		{"chunked and timed out in the middle of frames", func() [][]byte {
			f := append(text(open), text("<presence><status>long enough</status></presence>")...)
			var out [][]byte
			for i := 0; i < len(f); i += 3 {
				out = append(out, f[i:min(i+3, len(f))], nil)
			}
			return out
		}(), header + "<presence><status>long enough</status></presence>", "", closeNormal},
		{"white space only", [][]byte{text(open), text(" \r\n"), text("<presence/>")}, header + "<presence/>", "", closeNormal},
		{"two elements in one message", [][]byte{text(open), text("<presence/> <message/>")}, header + "<presence/> <message/>", "", closeNormal},
		{"client Close frame", [][]byte{text(open), clientFrame(true, opClose, "\x03\xe8bye")}, header, "", 1000},
		{"client Close frame with a reserved code", [][]byte{text(open), clientFrame(true, opClose, "\x03\xee")}, header, "", closeProtocolError},
		{"unmasked", [][]byte{{0x81, 0x01, '<'}}, "", wire.CondBadFormat, closeProtocolError},
		{"binary", [][]byte{clientFrame(true, opBinary, "<presence/>")}, "", wire.CondBadFormat, closeUnsupportedData},
		{"reserved bits", [][]byte{clientFrame(true, opText|0x20, "<presence/>")}, "", wire.CondBadFormat, closeProtocolError},
		{"opcode 0xB", [][]byte{clientFrame(true, 0xB, "")}, "", wire.CondBadFormat, closeProtocolError},
		{"control frame too long", [][]byte{clientFrame(true, opPing, strings.Repeat("x", 126))}, "", wire.CondBadFormat, closeProtocolError},
		{"text inside a fragmented message", [][]byte{clientFrame(false, opText, "<a>"), clientFrame(true, opText, "</a>")}, "", wire.CondBadFormat, closeProtocolError},
		{"too large", [][]byte{text(strings.Repeat("x", 200))}, "", wire.CondPolicyViolation, closeTooBig},
		{"too large in fragments", [][]byte{clientFrame(false, opText, strings.Repeat("x", 60)), clientFrame(false, opContinuation, strings.Repeat("x", 60))}, "", wire.CondPolicyViolation, closeTooBig},
		{"not UTF-8", [][]byte{text("<a>\xc3\x28</a>")}, "", wire.CondNotWellFormed, closeInvalidPayload},
		{"unbalanced element", [][]byte{text(open), text("<presence><status></presence>")}, header, wire.CondNotWellFormed, closeNormal},
		{"stream header", [][]byte{text("<stream:stream xmlns:stream='" + wire.NSStream + "'>")}, "", wire.CondBadFormat, closeNormal},
		{"open in another namespace", [][]byte{text("<open xmlns='jabber:client'/>")}, "", wire.CondInvalidNamespace, closeNormal},
		{"close in no namespace", [][]byte{text(open), text("<close/>")}, header, wire.CondInvalidNamespace, closeNormal},
		{"open twice", [][]byte{text(open), text(open)}, header, wire.CondBadFormat, closeNormal},
		{"open not well-formed", [][]byte{text("<open xmlns='" + NSFraming + "'>")}, "", wire.CondNotWellFormed, closeNormal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := &scriptConn{chunks: tc.chunks}
			c := NewConn(sc, nil, 100)
			var got []byte
			var err error
			buf := make([]byte, 7)
			for {
				var n int
				n, err = c.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
			}
			if string(got) != tc.want {
				t.Errorf("read %q, want %q", got, tc.want)
			}
			var we *wire.Error
			switch {
			case tc.cond == "" && !errors.Is(err, io.EOF):
				t.Errorf("error %v, want EOF", err)
			case tc.cond != "" && (!errors.As(err, &we) || we.Condition != tc.cond):
				t.Errorf("error %v, want %s", err, tc.cond)
			}
			// Pings were answered with their payload.
			ops, payloads := serverFrames(t, sc.out.Bytes())
			for i, op := range ops {
				if op != opPong || payloads[i] != "hi" {
					t.Errorf("server sent opcode %#x %q before closing", op, payloads[i])
				}
			}
			sc.out.Reset()
			c.Close()
			ops, payloads = serverFrames(t, sc.out.Bytes())
			want := string(appendCloseFrame(nil, tc.code)[2:])
			if len(ops) != 1 || ops[0] != opClose || payloads[0] != want {
				t.Errorf("Close sent %v %q, want a Close frame %q", ops, payloads, want)
			}
			if !sc.closed {
				t.Error("the connection was not closed")
			}
		})
	}
}

// TestConnReadBuffered: bytes the HTTP server read past the handshake are
// read first.
func TestConnReadBuffered(t *testing.T) {
	first := text("<open xmlns='" + NSFraming + "' to='x'/>")
	sc := &scriptConn{chunks: [][]byte{first[5:], text("<presence/>")}}
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(first[:5]), sc))
	got, err := readAll(NewConn(sc, br, 1000))
	if want := streamHeaderStart + " to='x'><presence/>"; got != want || !errors.Is(err, io.EOF) {
		t.Fatalf("read %q %v, want %q", got, err, want)
	}
}

func TestConnWrite(t *testing.T) {
	header := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='" + wire.NSStream +
		"' id='abc' from='example.org' to='a@example.org' version='1.0' xml:lang='en'>"
	cases := []struct {
		name   string
		writes []string
		want   []string // text messages
		closed bool     // ends with a Close frame
	}{
		{"header and features", []string{header + "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"}, []string{
			"<open xmlns='" + NSFraming + "' id='abc' from='example.org' to='a@example.org' version='1.0' xml:lang='en'/>",
			"<stream:features xmlns:stream='" + wire.NSStream + "'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
		}, false},
		{"stanzas in a batch", []string{"<message to='a@b'><body>1</body></message><presence/>\n<iq xmlns='jabber:client' type='result' id='x'/>"}, []string{
			"<message xmlns='jabber:client' to='a@b'><body>1</body></message>",
			"<presence xmlns='jabber:client'/>",
			"<iq xmlns='jabber:client' type='result' id='x'/>",
		}, false},
		{"elements split across writes", []string{"<message><body>a<", "/body></mess", "age><presence", "/>"}, []string{
			"<message xmlns='jabber:client'><body>a</body></message>",
			"<presence xmlns='jabber:client'/>",
		}, false},
		{"CDATA, and '>' in an attribute", []string{"<message id='a>b' type=\"x'y\"><body><![CDATA[</message><x/>]]></body></message>"}, []string{
			"<message xmlns='jabber:client' id='a>b' type=\"x'y\"><body><![CDATA[</message><x/>]]></body></message>",
		}, false},
		{"nested elements of the same name", []string{"<message><message><message/></message></message>"}, []string{
			"<message xmlns='jabber:client'><message><message/></message></message>",
		}, false},
		{"prefixed stanza content keeps its declarations", []string{"<message xmlns:x='urn:x'><x:y/></message>"}, []string{
			"<message xmlns='jabber:client' xmlns:x='urn:x'><x:y/></message>",
		}, false},
		{"SASL element in its own namespace", []string{"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"}, []string{
			"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
		}, false},
		{"stream error and end", []string{"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"}, []string{
			"<stream:error xmlns:stream='" + wire.NSStream + "'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
			"<close xmlns='" + NSFraming + "'/>",
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := &scriptConn{}
			c := NewConn(sc, nil, 1000)
			for _, w := range tc.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			ops, got := serverFrames(t, sc.out.Bytes())
			for _, op := range ops {
				if op != opText {
					t.Errorf("opcode %#x, want text", op)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("messages\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for _, m := range got {
				// RFC 7395: each message parses by itself.
				if _, err := wire.Parse([]byte(m), wire.Scope{}); err != nil {
					t.Errorf("%s does not parse alone: %v", m, err)
				}
			}
		})
	}
}

// TestConnRestart: a second <open/> is accepted once c2s said the stream
// restarts (after SASL success), and only once.
func TestConnRestart(t *testing.T) {
	open := text("<open xmlns='" + NSFraming + "' to='x'/>")
	sc := &scriptConn{chunks: [][]byte{open}}
	c := NewConn(sc, nil, 1000)
	buf := make([]byte, 1000)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	c.StreamRestart()
	sc.chunks = [][]byte{open, open}
	if n, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "<stream:stream ") {
		t.Fatalf("restart: %q %v", buf[:n], err)
	}
	var we *wire.Error
	if _, err := c.Read(buf); !errors.As(err, &we) || we.Condition != wire.CondBadFormat {
		t.Fatalf("a third <open/>: %v, want bad-format", err)
	}
}

// TestCloseDuringWrite: Close does not wait for a write in progress.
func TestCloseDuringWrite(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := NewConn(server, nil, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Write([]byte("<presence/>")) // blocks: nobody reads the pipe
	}()
	time.Sleep(10 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the blocked write")
	}
	<-done
}

func FuzzConnRead(f *testing.F) {
	f.Add(append(text("<open xmlns='"+NSFraming+"' to='x' version='1.0'/>"), text("<presence/>")...))
	f.Add(clientFrame(false, opText, "<a>"))
	f.Add(append(clientFrame(false, opText, "<a"), clientFrame(true, opContinuation, "/>")...))
	f.Add(clientFrame(true, opClose, "\x03\xe8"))
	f.Add(clientFrame(true, opPing, "x"))
	f.Add([]byte{0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0, 10, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, in []byte) {
		sc := &scriptConn{chunks: [][]byte{in}}
		c := NewConn(sc, nil, 64)
		out, _ := readAll(c)
		if len(out) > 2*len(in)+len(streamHeaderStart) {
			t.Fatalf("read %d bytes from %d", len(out), len(in))
		}
		c.Close()
		ops, _ := serverFrames(t, sc.out.Bytes())
		if len(ops) == 0 || ops[len(ops)-1] != opClose {
			t.Fatalf("no Close frame last: %v", ops)
		}
	})
}

func FuzzScanUnit(f *testing.F) {
	f.Add([]byte("<a x='>'><![CDATA[<b>]]></a>"))
	f.Add([]byte("<?xml version='1.0'?><stream:stream a='b'>"))
	f.Add([]byte("</stream:stream>"))
	f.Add([]byte("<a><b/></a"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			kind, n := wire.ScanUnit(b)
			if n < 0 || n > len(b) {
				t.Fatalf("ScanUnit(%q) = %d", b, n)
			}
			if n == 0 {
				return
			}
			if kind == wire.UnitElement {
				// What was found is written whole and framed.
				_, msgs := serverFrames(t, appendElement(nil, b[:n]))
				if len(msgs) != 1 || len(msgs[0]) < n {
					t.Fatalf("appendElement(%q) = %q", b[:n], msgs)
				}
			}
			b = b[n:]
		}
	})
}

// TestPongAfterWriteDeadline: a Ping on a session whose last write
// deadline has long passed is answered; the Pong has a deadline of its own.
func TestPongAfterWriteDeadline(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := NewConn(server, nil, 1000)
	_ = c.SetWriteDeadline(time.Now().Add(-time.Minute))
	pong := make(chan string, 1)
	go func() {
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = client.Write(clientFrame(true, opPing, "still there?"))
		var h [2]byte
		if _, err := io.ReadFull(client, h[:]); err != nil {
			pong <- err.Error()
			return
		}
		p := make([]byte, h[1]&0x7F)
		_, _ = io.ReadFull(client, p)
		pong <- fmt.Sprintf("%#x %s", h[0], p)
		client.Close()
	}()
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
		t.Errorf("Read = %v, want EOF once the client hangs up", err)
	}
	if got := <-pong; got != "0x8a still there?" {
		t.Fatalf("client got %q, want a Pong", got)
	}
}

// TestCloseAfterPeerClose: after the client's Close frame, Close does not
// linger (it reads nothing more), and a second Close closes the
// connection at once.
func TestCloseAfterPeerClose(t *testing.T) {
	sc := &scriptConn{chunks: [][]byte{clientFrame(true, opClose, "\x03\xe8"), text("<presence/>")}}
	c := NewConn(sc, nil, 1000)
	if _, err := readAll(c); !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v", err)
	}
	c.Close()
	if len(sc.chunks) != 1 {
		t.Errorf("Close read on after the client's Close frame: %d chunks left", len(sc.chunks))
	}
	sc2 := &scriptConn{}
	c2 := NewConn(sc2, nil, 1000)
	c2.closing.Store(true) // a first Close still lingering
	c2.Close()
	if !sc2.closed {
		t.Error("a second Close did not close the connection")
	}
}

// TestConnWriteUnterminated: bytes that never complete an element are not
// buffered past the message limit.
func TestConnWriteUnterminated(t *testing.T) {
	c := NewConn(&scriptConn{}, nil, 100)
	if _, err := c.Write([]byte("<message><body>" + strings.Repeat("x", 50))); err != nil {
		t.Fatalf("a partial element within the limit: %v", err)
	}
	if _, err := c.Write([]byte(strings.Repeat("x", 60))); err == nil {
		t.Fatal("an unterminated element past the limit was buffered")
	}
}
