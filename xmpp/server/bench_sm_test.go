package server_test

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// BenchmarkRouteMessageSM routes chat messages between two clients with
// stream management (XEP-0198) enabled with resumption, as deployed
// clients run: the sender asks for an acknowledgement with every fifth
// message (slixmpp's default window), and both answer the server's
// requests (smRaw.count). Its clients are raw streams parsed whole by
// package wire, so its time per message is not comparable with
// BenchmarkRouteMessage's (another client). At the end the server must
// have asked the receiver for an acknowledgement, and must acknowledge
// exactly the messages sent. A stream that reads nothing for smStall
// fails the benchmark.
func BenchmarkRouteMessageSM(b *testing.B) {
	const smStall = 30 * time.Second
	s := servertest.Start(b)
	s.AddUser(b, "alice", ftPassword)
	s.AddUser(b, "bob", ftPassword)
	const enable = "<enable xmlns='urn:xmpp:sm:3' resume='true'/>"
	from, _, _ := smLogin(b, s, "alice", "a", enable)
	to, toJID, _ := smLogin(b, s, "bob", "b", enable)
	msg := fmt.Sprintf("<message to='%s' type='chat'><body>benchmark</body></message>", toJID)
	const request = "<r xmlns='urn:xmpp:sm:3'/>"

	// Each stream's last read; a watchdog closes both streams when either
	// stalls, so that their reads fail instead of blocking. stop ends the
	// sender and the watchdog; the deferred function closes the streams
	// and waits for every goroutine.
	var fromRead, toRead atomic.Int64
	for _, p := range []*atomic.Int64{&fromRead, &toRead} {
		p.Store(time.Now().UnixNano())
	}
	closeBoth := func() {
		from.Conn.Close()
		to.Conn.Close()
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if time.Since(time.Unix(0, fromRead.Load())) > smStall || time.Since(time.Unix(0, toRead.Load())) > smStall {
					closeBoth()
					return
				}
			}
		}
	})
	for _, r := range []*smRaw{from, to} {
		_ = r.Conn.SetDeadline(time.Time{}) // the watchdog bounds the reads
	}
	defer func() {
		halt()
		closeBoth()
		wg.Wait()
	}()

	// The sender's stream: its writes (messages, answers) under wmu. Its
	// reader counts what it reads, answers the server's requests, fails
	// on a bounced message, and keeps the last 'h' the server
	// acknowledged. Its error (the first failure of the benchmark's
	// goroutines) is readErr's, set before done closes.
	var wmu sync.Mutex
	send := func(p string) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := io.WriteString(from.Conn, p)
		return err
	}
	var acked atomic.Uint32
	ackSeen := make(chan struct{}, 1)
	var readErr error
	readDone := make(chan struct{})
	wg.Go(func() {
		defer close(readDone)
		fail := func(err error) {
			readErr = err
			halt()
			closeBoth() // the receiver's read fails at once
		}
		for {
			el, err := from.Read()
			if err != nil {
				fail(err)
				return
			}
			fromRead.Store(time.Now().UnixNano())
			if el.Name == "message" && el.AttrValue("type") == "error" {
				fail(fmt.Errorf("a message bounced: %s", el))
				return
			}
			if a := from.count(el); a != "" {
				if err := send(a); err != nil {
					fail(err)
					return
				}
			}
			if el.Space == nsSM && el.Name == "a" {
				n, err := strconv.ParseUint(el.AttrValue("h"), 10, 32)
				if err != nil {
					fail(fmt.Errorf("bad <a/>: %s", el))
					return
				}
				acked.Store(uint32(n))
				select {
				case ackSeen <- struct{}{}:
				default: // already signalled
				}
			}
		}
	})
	// cause is why the benchmark's streams failed: the sender's reader's
	// error if it stopped first, else err.
	cause := func(err error) error {
		select {
		case <-readDone:
			if readErr != nil && !errors.Is(err, readErr) {
				return fmt.Errorf("%w (sender's stream: %v)", err, readErr)
			}
		default:
		}
		return err
	}

	b.ReportAllocs()
	b.ResetTimer()
	window := make(chan struct{}, 256)
	var sendErr error
	sent := make(chan struct{})
	wg.Go(func() {
		defer close(sent)
		for i := range b.N {
			select {
			case window <- struct{}{}:
			case <-stop:
				return
			}
			p := msg
			if (i+1)%5 == 0 {
				p += request
			}
			if sendErr = send(p); sendErr != nil {
				return
			}
		}
	})
	read := func() *wire.Element {
		el, err := to.Read()
		if err != nil {
			b.Fatalf("receiver: %v", cause(err))
		}
		toRead.Store(time.Now().UnixNano())
		if a := to.count(el); a != "" {
			if _, err := io.WriteString(to.Conn, a); err != nil {
				b.Fatalf("receiver: %v", cause(err))
			}
		}
		return el
	}
	for got := 0; got < b.N; {
		if el := read(); el.Space == wire.NSClient && el.Name == "message" && el.AttrValue("type") == "chat" {
			got++
			<-window
		}
	}
	b.StopTimer()
	<-sent
	if sendErr != nil {
		b.Fatalf("send: %v", cause(sendErr))
	}
	// The server asks after a batch it wrote while no request of its is
	// unanswered: one is unanswered only if it was read.
	for to.requests == 0 {
		read()
	}
	// The server handled every message: asked, it acknowledges b.N.
	if err := send(request); err != nil {
		b.Fatalf("send: %v", cause(err))
	}
	for {
		switch n := acked.Load(); {
		case n == uint32(b.N):
			return
		case n > uint32(b.N):
			b.Fatalf("the server acknowledged %d messages, %d were sent", n, b.N)
		}
		select {
		case <-ackSeen:
		case <-readDone:
			b.Fatalf("sender's stream: %v (the server acknowledged %d of %d)", readErr, acked.Load(), b.N)
		}
	}
}
