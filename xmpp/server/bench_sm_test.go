package server_test

import (
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
// requests. Its clients are raw streams parsed whole by package wire, so
// its time per message is not comparable with BenchmarkRouteMessage's
// (another client). At the end the server must have asked the receiver
// for an acknowledgement, and must acknowledge exactly the messages sent.
// A stream that stalls for smStall fails the benchmark.
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

	// stop ends the sender; progress is stamped by every element read.
	// Without progress for smStall the watchdog closes both streams, so
	// that the reads fail instead of blocking.
	stop := make(chan struct{})
	var progress atomic.Int64
	stamp := func() { progress.Store(time.Now().UnixNano()) }
	stamp()
	watchdogDone := make(chan struct{})
	go func() {
		defer close(watchdogDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if time.Since(time.Unix(0, progress.Load())) > smStall {
					from.Conn.Close()
					to.Conn.Close()
					return
				}
			}
		}
	}()
	for _, r := range []*smRaw{from, to} {
		_ = r.Conn.SetDeadline(time.Time{}) // the watchdog bounds the reads
	}
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	defer func() {
		halt()
		<-watchdogDone
	}()

	// The sender's stream: its writes (messages, answers) under wmu. Its
	// reader counts the stanzas it reads (its 'h'), answers the server's
	// requests with it, fails on a bounced message, and keeps the last
	// 'h' the server acknowledged.
	var wmu sync.Mutex
	send := func(p string) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := io.WriteString(from.Conn, p)
		return err
	}
	var acked atomic.Uint32
	ackSeen := make(chan struct{}, 1)
	readDone := make(chan error, 1)
	go func() {
		var h uint32
		for {
			el, err := from.Read()
			if err != nil {
				readDone <- err
				return
			}
			stamp()
			switch {
			case el.Space == wire.NSClient && (el.Name == "message" || el.Name == "presence" || el.Name == "iq"):
				h++
				if el.Name == "message" && el.AttrValue("type") == "error" {
					readDone <- fmt.Errorf("a message bounced: %s", el)
					return
				}
			case el.Space == nsSM && el.Name == "r":
				if err := send("<a xmlns='urn:xmpp:sm:3' h='" + strconv.FormatUint(uint64(h), 10) + "'/>"); err != nil {
					readDone <- err
					return
				}
			case el.Space == nsSM && el.Name == "a":
				n, err := strconv.ParseUint(el.AttrValue("h"), 10, 32)
				if err != nil {
					readDone <- fmt.Errorf("bad <a/>: %s", el)
					return
				}
				acked.Store(uint32(n))
				select {
				case ackSeen <- struct{}{}:
				default: // already signalled
				}
			}
		}
	}()

	b.ReportAllocs()
	b.ResetTimer()
	window := make(chan struct{}, 256)
	sent := make(chan error, 1)
	go func() {
		for i := range b.N {
			select {
			case window <- struct{}{}:
			case <-stop:
				sent <- nil
				return
			}
			p := msg
			if (i+1)%5 == 0 {
				p += request
			}
			if err := send(p); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	var h uint32  // the receiver's count of stanzas read since <enabled/>
	answered := 0 // the server's requests the receiver answered
	read := func() *wire.Element {
		el, err := to.Read()
		if err != nil {
			halt()
			b.Fatalf("receiver: %v", err)
		}
		stamp()
		switch {
		case el.Space == wire.NSClient && (el.Name == "message" || el.Name == "presence" || el.Name == "iq"):
			h++
		case el.Space == nsSM && el.Name == "r":
			if _, err := io.WriteString(to.Conn, "<a xmlns='urn:xmpp:sm:3' h='"+strconv.FormatUint(uint64(h), 10)+"'/>"); err != nil {
				halt()
				b.Fatalf("receiver: %v", err)
			}
			answered++
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
	if err := <-sent; err != nil {
		b.Fatalf("send: %v", err)
	}
	// The server asks after a batch it wrote while no request of its is
	// unanswered: one is unanswered only if it was read.
	for answered == 0 {
		read()
	}
	// The server handled every message: asked, it acknowledges b.N.
	if err := send(request); err != nil {
		b.Fatalf("send: %v", err)
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
		case err := <-readDone:
			b.Fatalf("sender's stream: %v", err)
		}
	}
}
