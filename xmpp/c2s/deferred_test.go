//go:build unix

package c2s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		cc.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { sc.Close(); cc.Close() })
	return sc.(*net.TCPConn), cc.(*net.TCPConn)
}

func deferredServer(trace bool) *Server {
	return &Server{
		opts: Options{
			Limits:   Limits{OutboxStanzas: 16, OutboxBytes: 8 << 20, WriteTimeout: 10 * time.Second},
			TraceXML: trace,
		},
		log:  slog.New(slog.DiscardHandler),
		deps: Deps{Router: &echoRouter{}},
	}
}

// boundConn is a bound session over nc whose writer may run.
func boundConn(srv *Server, nc net.Conn) *conn {
	c := &conn{srv: srv, raw: nc, nc: nc, bound: true, full: jid.MustParse("bob@localhost/r")}
	c.startWriter()
	return c
}

func testMsg(id, body string) *xmpp.Stanza {
	return xmpp.Build(xmpp.KindMessage, xmpp.TypeChat, id,
		jid.MustParse("alice@localhost/r"), jid.MustParse("bob@localhost/r"),
		wire.New("body", wire.NSClient).SetText(body))
}

func (c *conn) isHeld() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

func (c *conn) isWriting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writing
}

// waitWriters fails unless every writer of c (a Deferred's pending one
// included) has ended within d.
func waitWriters(t *testing.T, c *conn, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { c.writers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("writer still running after %s", d)
	}
}

// smallBufferPair is tcpPair with a small send buffer on the server's end,
// so that a large stanza fills it: small (the kernel doubles it), though
// not so small that loopback TCP crawls (a client read buffer of a few KiB
// makes it send in tiny windows with delayed acknowledgments).
func smallBufferPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	server, client = tcpPair(t)
	if err := server.SetWriteBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	if err := client.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	return server, client
}

// readFull reads exactly n bytes from r within d; for goroutines other
// than the test's, which may not call t.Fatal.
func readFull(r net.Conn, n int, d time.Duration) ([]byte, error) {
	_ = r.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, n)
	if m, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read %d of %d bytes: %w", m, n, err)
	}
	return b, nil
}

// readN reads exactly n bytes from r within d.
func readN(t *testing.T, r net.Conn, n int, d time.Duration) []byte {
	t.Helper()
	b, err := readFull(r, n, d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectRead fails unless exactly want is read from r within a second.
func expectRead(t *testing.T, r net.Conn, want []byte) {
	t.Helper()
	expectReadWithin(t, r, want, time.Second)
}

// expectReadWithin fails unless exactly want is read from r within d.
func expectReadWithin(t *testing.T, r net.Conn, want []byte, d time.Duration) {
	t.Helper()
	sameBytes(t, readN(t, r, len(want), d), want)
}

// sameBytes fails unless the client read got, want; a long one is
// reported by its first differing byte.
func sameBytes(t *testing.T, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	if len(want) <= 256 {
		t.Fatalf("client read %q, want %q", got, want)
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Fatalf("client read %d bytes differing from the %d written from byte %d", len(got), len(want), i)
}

// expectNothing fails if r has anything to read within d.
func expectNothing(t *testing.T, r net.Conn, d time.Duration) {
	t.Helper()
	_ = r.SetReadDeadline(time.Now().Add(d))
	var b [256]byte
	n, err := r.Read(b[:])
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %q, %v; want nothing (timeout)", b[:n], err)
	}
}

// A stanza delivered to a plain TCP session through an open Deferred is
// written at the Deferred's Close, not before. Closed idle (a few
// recipients), the routing goroutine writes it itself: no writer goroutine
// is left (c.writing is clear as Close returns); otherwise a writer
// goroutine writes it, and ends.
func TestDeferredDeliverTCP(t *testing.T) {
	for _, idle := range []bool{true, false} {
		t.Run(fmt.Sprintf("idle=%v", idle), func(t *testing.T) {
			server, client := tcpPair(t)
			c := boundConn(deferredServer(false), server)
			if c.direct == nil {
				t.Fatal("startWriter set no raw socket for a *net.TCPConn")
			}
			st := testMsg("m1", "hello")
			var d xmpp.Deferred
			ctx := xmpp.WithDeferred(context.Background(), &d)
			d.Open()
			if !xmpp.DeliverIn(ctx, c, st) {
				t.Fatal("delivery refused")
			}
			if !c.isHeld() || c.isWriting() {
				t.Fatal("the writer was not left to the Deferred (c.held clear or a writer started after DeliverDeferred)")
			}
			expectNothing(t, client, 50*time.Millisecond)

			d.Close(idle)
			if idle && c.isWriting() {
				t.Error("Close(true) left a writer running for a stanza the socket had room for")
			}
			expectRead(t, client, st.Bytes())
			waitWriters(t, c, time.Second)
			if c.isWriting() {
				t.Error("c.writing still set once the writers ended")
			}
			c.mu.Lock()
			head, q := c.head, len(c.queue)
			c.mu.Unlock()
			if head != nil || q != 0 {
				t.Errorf("left behind: head %d bytes, %d queued", len(head), q)
			}

			// The session takes a further delivery as usual (its
			// writer was not left marked as running).
			deliverAndRead(t, c, client, testMsg("m2", "again"))
		})
	}
}

// With the socket full, Close(true) writes what the socket takes and
// returns at once, leaving the rest to a writer goroutine; the client
// receives the whole stanza, then one delivered after the Flush, in order.
func TestDeferredFlushSocketFull(t *testing.T) {
	server, client := smallBufferPair(t)
	c := boundConn(deferredServer(false), server)
	big := testMsg("big", strings.Repeat("0123456789abcdef", 1<<17)) // 2 MiB of body
	if n := len(big.Bytes()); n >= c.srv.opts.Limits.OutboxBytes {
		t.Fatalf("stanza of %d bytes does not fit the outbox", n)
	}
	var d xmpp.Deferred
	d.Open()
	if !c.DeliverDeferred(big, &d) {
		t.Fatal("delivery refused")
	}
	flushed := make(chan struct{})
	start := time.Now()
	go func() { d.Close(true); close(flushed) }()
	select {
	case <-flushed:
	case <-time.After(500 * time.Millisecond):
		t.Fatal("Close(true) blocked on a full socket")
	}
	t.Logf("Close(true) returned after %s", time.Since(start))
	if !c.isWriting() {
		t.Fatal("no writer goroutine took the rest the socket did not take")
	}
	small := testMsg("after", "next")
	if !c.Deliver(small) {
		t.Fatal("delivery after the Flush refused")
	}
	expectReadWithin(t, client, append(append([]byte(nil), big.Bytes()...), small.Bytes()...), 5*time.Second)
	waitWriters(t, c, time.Second)
	expectNothing(t, client, 20*time.Millisecond)
}

// Flush's write on the delivering goroutine (writeHeld) takes what a full
// socket accepts without waiting and keeps exactly the rest, as c.head,
// for the writer, which writes it before anything queued later.
func TestDeferredWriteNowPartial(t *testing.T) {
	server, client := smallBufferPair(t)
	c := boundConn(deferredServer(false), server)
	big := testMsg("big", strings.Repeat("fedcba9876543210", 1<<17))
	var d xmpp.Deferred
	d.Open()
	if !c.DeliverDeferred(big, &d) {
		t.Fatal("delivery refused")
	}
	head := standInWrite(c, nil) // Flush(true) before its end
	c.mu.Lock()
	q, qb := len(c.queue), c.qbytes
	c.mu.Unlock()
	b := big.Bytes()
	if len(head) == 0 || len(head) >= len(b) {
		t.Fatalf("after a non-blocking write of %d bytes, head holds %d", len(b), len(head))
	}
	if !bytes.Equal(head, b[len(b)-len(head):]) {
		t.Fatal("head is not the unwritten end of the stanza")
	}
	if q != 0 || qb != 0 {
		t.Fatalf("outbox after the write: %d stanzas, %d bytes; want empty", q, qb)
	}
	t.Logf("the socket took %d of %d bytes", len(b)-len(head), len(b))
	// Flush's end starts the writer for the head.
	c.standInDone(head)
	if !c.isWriting() {
		t.Fatal("the stand-in's end left head with no writer to write it")
	}
	// The Deferred's Close finds the session no longer held and the
	// writer running: it starts nothing more.
	d.Close(true)
	small := testMsg("after", "next")
	if !c.Deliver(small) {
		t.Fatal("delivery refused")
	}
	expectReadWithin(t, client, append(append([]byte(nil), b...), small.Bytes()...), 5*time.Second)
	waitWriters(t, c, time.Second)
}

// A session closed after a stanza was delivered to it through the
// Deferred, before the Deferred's Close: the writer starts at the close,
// without waiting for the Deferred, and writes the stanza, the stream error
// and the end of the stream, and closes the transport; the Deferred's
// Close then has nothing to do.
func TestDeferredSessionClosedBeforeFlush(t *testing.T) {
	for _, idle := range []bool{true, false} {
		t.Run(fmt.Sprintf("idle=%v", idle), func(t *testing.T) {
			server, client := tcpPair(t)
			c := boundConn(deferredServer(false), server)
			st := testMsg("m1", "last words")
			var d xmpp.Deferred
			d.Open()
			if !c.DeliverDeferred(st, &d) {
				t.Fatal("delivery refused")
			}
			c.Close("system-shutdown", "bye")
			if c.Deliver(testMsg("m2", "too late")) {
				t.Error("delivery to a closed session accepted")
			}
			want := append(append([]byte(nil), st.Bytes()...), wire.AppendStreamError(nil, "system-shutdown", "bye")...)
			want = append(want, "</stream:stream>"...)
			readToEOF(t, client, want)
			waitWriters(t, c, time.Second)
			d.Close(idle)
			if c.isHeld() {
				t.Error("still held after the Deferred's Close")
			}
			waitWriters(t, c, time.Second)
		})
	}
}

// A session closed (by another goroutine) while Flush writes on the
// delivering goroutine, after that write took the whole queue: Flush finds
// nothing queued and no head, but must still start the writer to end the
// stream and close the transport (Close found the writer running, as Flush
// stood in for it, and started none).
func TestDeferredSessionClosedDuringFlush(t *testing.T) {
	server, client := tcpPair(t)
	c := boundConn(deferredServer(false), server)
	st := testMsg("m1", "in flight")
	// Flush(true) by hand, with the Close between its write and its end.
	rest := standInWrite(c, st)
	c.Close("conflict", "")
	expectRead(t, client, st.Bytes())
	expectNothing(t, client, 30*time.Millisecond) // no writer started by Close
	c.standInDone(rest)
	readToEOF(t, client, wire.AppendStreamEnd(nil, "conflict", ""))
	waitWriters(t, c, time.Second)
}

// A session held by a Deferred (its first stanza queued) that is given
// more before the Deferred's Close (a route answering its own session
// many times, say: presence probes, archive results) starts its writer at
// once: nothing piles up in the outbox until the route returns, so more
// stanzas than the outbox holds all go through.
func TestDeferredHeldThenMore(t *testing.T) {
	server, client := tcpPair(t)
	srv := deferredServer(false)
	c := boundConn(srv, server)
	var d xmpp.Deferred
	d.Open()
	first, second := testMsg("m0", "first"), testMsg("m1", "second")
	if !c.DeliverDeferred(first, &d) || !c.DeliverDeferred(second, &d) {
		t.Fatal("delivery refused")
	}
	// Before the Deferred's Close.
	expectRead(t, client, append(append([]byte(nil), first.Bytes()...), second.Bytes()...))
	// Four times the outbox's stanzas, the client reading along.
	n := 4 * srv.opts.Limits.OutboxStanzas
	sts := make([]*xmpp.Stanza, n)
	var more []byte
	for i := range sts {
		sts[i] = testMsg(fmt.Sprintf("x%d", i), "more")
		more = append(more, sts[i].Bytes()...)
	}
	type readResult struct {
		b   []byte
		err error
	}
	read := make(chan readResult, 1)
	go func() {
		b, err := readFull(client, len(more), 5*time.Second)
		read <- readResult{b, err}
	}()
	for i, st := range sts {
		if !c.DeliverDeferred(st, &d) {
			t.Fatalf("delivery %d of %d refused (outbox of %d)", i, n, srv.opts.Limits.OutboxStanzas)
		}
		if i%8 == 7 {
			time.Sleep(time.Millisecond) // let the writer run
		}
	}
	d.Close(true)
	r := <-read
	if r.err != nil {
		t.Fatal(r.err)
	}
	sameBytes(t, r.b, more)
	waitWriters(t, c, time.Second)
}

// A session that cannot be written on the delivering goroutine (no raw
// socket: another transport, or XML tracing) never joins the Deferred: its
// writer starts at the delivery and writes while the Deferred is still
// open, and the Deferred's Close has nothing of it to flush.
func TestDeferredNotJoined(t *testing.T) {
	for _, tc := range []struct {
		name  string
		trace bool
		pair  func(t *testing.T) (net.Conn, net.Conn)
	}{
		{"pipe", false, func(t *testing.T) (net.Conn, net.Conn) {
			s, c := net.Pipe()
			t.Cleanup(func() { s.Close(); c.Close() })
			return s, c
		}},
		{"tcp traced", true, func(t *testing.T) (net.Conn, net.Conn) {
			s, c := tcpPair(t)
			return s, c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := tc.pair(t)
			c := boundConn(deferredServer(tc.trace), server)
			if c.direct != nil {
				t.Fatal("a raw socket set for this transport")
			}
			st := testMsg("m1", "hi")
			var d xmpp.Deferred
			d.Open()
			if !xmpp.DeliverIn(xmpp.WithDeferred(context.Background(), &d), c, st) {
				t.Fatal("delivery refused")
			}
			// Written with the Deferred still open.
			expectRead(t, client, st.Bytes())
			// Joined, the writer would count until the Deferred's Close.
			waitWriters(t, c, time.Second)
			// Joined, this Close would flush c once more: a writer
			// with nothing to do, or writers.Done below zero.
			d.Close(true)
			if c.isWriting() {
				t.Error("the Deferred's Close started a writer for a session that never joined it")
			}
			waitWriters(t, c, time.Second)
		})
	}
}

// A session whose writer may not run yet (the bind result is not out)
// does not join the Deferred either: nothing is written before
// startWriter, whatever the Deferred's Close.
func TestDeferredBeforeWriterOn(t *testing.T) {
	server, client := tcpPair(t)
	c := &conn{srv: deferredServer(false), raw: server, nc: server, bound: true, full: jid.MustParse("bob@localhost/r")}
	st := testMsg("m1", "early")
	var d xmpp.Deferred
	d.Open()
	if !c.DeliverDeferred(st, &d) {
		t.Fatal("delivery refused")
	}
	d.Close(true)
	if c.isWriting() {
		t.Fatal("a writer runs before startWriter")
	}
	expectNothing(t, client, 30*time.Millisecond)
	c.startWriter()
	expectRead(t, client, st.Bytes())
	waitWriters(t, c, time.Second)
}

// readToEOF reads from client until the end of the stream (a second at
// most) and checks that it was want.
func readToEOF(t *testing.T, client net.Conn, want []byte) {
	t.Helper()
	_ = client.SetReadDeadline(time.Now().Add(time.Second))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("read until EOF: %v (after %q)", err, got)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("client read\n%q\nwant\n%q", got, want)
	}
}

// A Flush after the writer's last write deadline has passed (a session
// written to less often than every WriteTimeout) still writes directly:
// the raw write would otherwise refuse at once and leave the whole stanza
// to a writer goroutine.
func TestDeferredAfterWriteDeadline(t *testing.T) {
	server, client := tcpPair(t)
	srv := deferredServer(false)
	srv.opts.Limits.WriteTimeout = 30 * time.Millisecond
	c := boundConn(srv, server)
	deliverAndRead(t, c, client, testMsg("m1", "first"))
	time.Sleep(3 * srv.opts.Limits.WriteTimeout) // the writer's deadline passes

	st2 := testMsg("m2", "second")
	rest := standInWrite(c, st2)
	c.standInDone(rest)
	if len(rest) != 0 {
		t.Errorf("the direct write left %d of %d bytes to the writer after the write deadline passed", len(rest), len(st2.Bytes()))
	}
	expectRead(t, client, st2.Bytes())
	waitWriters(t, c, time.Second)

	// The writer still bounds its own writes: its deadline is set again,
	// and once passed, a raw write is refused at once.
	deliverAndRead(t, c, client, testMsg("m3", "third"))
	time.Sleep(3 * srv.opts.Limits.WriteTimeout)
	if n, err := writeNow(c.direct, []byte(" ")); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a raw write after the writer's deadline passed: %d bytes, %v; want 0, a deadline error (the writer set no deadline)", n, err)
	}
}

// deliverAndRead delivers st to c as the router does without a Deferred,
// checks that the client reads exactly it, and waits for the writer to end.
func deliverAndRead(t *testing.T, c *conn, client net.Conn, st *xmpp.Stanza) {
	t.Helper()
	if !c.Deliver(st) {
		t.Fatalf("delivery of %s refused", st.ID)
	}
	expectRead(t, client, st.Bytes())
	waitWriters(t, c, time.Second)
}

// standInWrite does what Flush(true) does before its end (standInDone):
// with st queued first, as DeliverDeferred queues it (nil: one is queued
// already), it stands in for the writer, writes the one queued stanza
// directly and returns what the socket did not take.
func standInWrite(c *conn, st *xmpp.Stanza) []byte {
	c.mu.Lock()
	if st != nil {
		c.queue = append(c.queue, st)
		c.qbytes += len(st.Bytes())
	}
	c.held = false
	held := c.standInLocked()
	c.mu.Unlock()
	return c.writeHeld(held)
}
