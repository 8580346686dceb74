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

// BenchmarkRouteMessageSM is BenchmarkRouteMessage between clients with
// stream management (XEP-0198) enabled with resumption, as deployed
// clients run: the sender asks for an acknowledgement with every fifth
// message (slixmpp's default window), and both answer the server's
// requests. At the end the server must have counted every message sent
// (the sender's last <a/>).
func BenchmarkRouteMessageSM(b *testing.B) {
	s := servertest.Start(b)
	s.AddUser(b, "alice", ftPassword)
	s.AddUser(b, "bob", ftPassword)
	const enable = "<enable xmlns='urn:xmpp:sm:3' resume='true'/>"
	from, _, _ := smLogin(b, s, "alice", "a", enable)
	to, toJID, _ := smLogin(b, s, "bob", "b", enable)
	for _, r := range []*smRaw{from, to} {
		_ = r.Conn.SetDeadline(time.Time{})
	}
	msg := fmt.Sprintf("<message to='%s' type='chat'><body>benchmark</body></message>", toJID)
	const request = "<r xmlns='urn:xmpp:sm:3'/>"

	// The sender's stream: its writes (messages, answers) under wmu; its
	// reader answers the server's requests and keeps the last 'h' the
	// server acknowledged.
	var wmu sync.Mutex
	send := func(p string) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := io.WriteString(from.Conn, p)
		return err
	}
	var acked atomic.Uint32 // the last 'h' the server sent
	ackSeen := make(chan struct{}, 1)
	readDone := make(chan error, 1)
	go func() {
		for {
			el, err := from.Read()
			if err != nil {
				readDone <- err
				return
			}
			if el.Space != nsSM {
				continue
			}
			switch el.Name {
			case "r":
				// Nothing is sent to the sender: its 'h' stays 0.
				if err := send("<a xmlns='urn:xmpp:sm:3' h='0'/>"); err != nil {
					readDone <- err
					return
				}
			case "a":
				h, err := strconv.ParseUint(el.AttrValue("h"), 10, 32)
				if err != nil {
					readDone <- fmt.Errorf("bad <a/>: %s", el)
					return
				}
				acked.Store(uint32(h))
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
			window <- struct{}{}
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
	var h uint32 // the receiver's count of stanzas read since <enabled/>
	for got := 0; got < b.N; {
		el, err := to.Read()
		if err != nil {
			b.Fatalf("receiver: %v", err)
		}
		switch {
		case el.Space == wire.NSClient && (el.Name == "message" || el.Name == "presence" || el.Name == "iq"):
			h++
			if el.Name == "message" && el.AttrValue("type") == "chat" {
				got++
				<-window
			}
		case el.Space == nsSM && el.Name == "r":
			if _, err := io.WriteString(to.Conn, "<a xmlns='urn:xmpp:sm:3' h='"+strconv.FormatUint(uint64(h), 10)+"'/>"); err != nil {
				b.Fatalf("receiver: %v", err)
			}
		}
	}
	b.StopTimer()
	if err := <-sent; err != nil {
		b.Fatalf("send: %v", err)
	}
	// The server handled every message: asked, it acknowledges b.N.
	if err := send(request); err != nil {
		b.Fatalf("send: %v", err)
	}
	deadline := time.After(10 * time.Second)
	for {
		if acked.Load() == uint32(b.N) {
			return
		}
		select {
		case <-ackSeen:
		case err := <-readDone:
			b.Fatalf("sender's stream: %v", err)
		case <-deadline:
			b.Fatalf("the server never acknowledged all %d messages", b.N)
		}
	}
}
