//go:build unix

package c2s

import (
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// ackConn is a bound, resumable stream-management session on a pipe
// (nothing is read from the client's end until the test reads it), with
// MaxAckDelay set to delay.
func ackConn(t *testing.T, delay time.Duration) (*conn, *callsRouter, net.Conn) {
	t.Helper()
	r := &callsRouter{}
	srv := &Server{
		opts: Options{Limits: Limits{OutboxStanzas: 16, OutboxBytes: 1 << 20, WriteTimeout: 10 * time.Second}, MaxAckDelay: delay},
		log:  slog.New(slog.DiscardHandler),
		deps: Deps{Router: r},
		ctx:  context.Background(),
	}
	server, client := net.Pipe()
	c := &conn{srv: srv, raw: server, nc: server, bound: true, full: jid.MustParse("a@localhost/phone"),
		sm: &smState{id: "sm1", max: time.Minute, counting: true}}
	t.Cleanup(func() {
		client.Close()
		server.Close()
		c.mu.Lock()
		for _, tm := range []*time.Timer{c.sm.timer, c.sm.ackTimer} {
			if tm != nil {
				tm.Stop()
			}
		}
		c.mu.Unlock()
	})
	c.startWriter()
	return c, r, client
}

// waitCalls waits until the router recorded want, in order, and fails if
// it recorded anything else.
func waitCalls(t *testing.T, r *callsRouter, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(r.recorded(), want) {
		if got := r.recorded(); len(got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("router calls %q, want %q", got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestAckDelayed: a client that leaves the server's <r/> unanswered for
// MaxAckDelay is reported to the router once, with what it did not
// acknowledge, then what waits to be written, in that order; it is not
// Connected until it answers. A session that hibernates while lagging
// does not report the same stanzas again; one that was not lagging does.
func TestAckDelayed(t *testing.T) {
	const delay = 250 * time.Millisecond
	c, r, client := ackConn(t, delay)
	m1, m2, m3 := testMsg("m1", "one"), testMsg("m2", "two"), testMsg("m3", "three")
	if !c.Connected() {
		t.Fatal("a live session is not connected")
	}
	c.Deliver(m1)
	expectRead(t, client, append(slices.Clone(m1.Bytes()), smRequest...))
	// m2 is written while the client reads nothing (the pipe blocks the
	// writer): it waits for an acknowledgement too. m3 then waits in the
	// queue.
	c.Deliver(m2)
	for {
		c.mu.Lock()
		taken := len(c.queue) == 0
		c.mu.Unlock()
		if taken {
			break
		}
		time.Sleep(time.Millisecond)
	}
	c.Deliver(m3)
	waitCalls(t, r, "AckDelayed m1 m2 m3")
	if c.Connected() {
		t.Fatal("a lagging client counts as connected")
	}
	// Reported once: the <r/> is still the one unanswered.
	time.Sleep(3 * delay)
	waitCalls(t, r, "AckDelayed m1 m2 m3")

	expectRead(t, client, append(slices.Clone(m2.Bytes()), m3.Bytes()...))
	if err := c.smElement(wire.New("a", nsSM, wire.Attr{Name: "h", Value: "3"})); err != nil {
		t.Fatal(err)
	}
	if !c.Connected() {
		t.Fatal("a client that answered is not connected")
	}
	// Answered within the delay: nothing more is reported.
	m4 := testMsg("m4", "four")
	c.Deliver(m4)
	expectRead(t, client, append(slices.Clone(m4.Bytes()), smRequest...))
	if err := c.smElement(wire.New("a", nsSM, wire.Attr{Name: "h", Value: "4"})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * delay)
	waitCalls(t, r, "AckDelayed m1 m2 m3")

	// Lagging again, then the connection fails: the hibernation
	// reports nothing the services were not told of.
	m5 := testMsg("m5", "five")
	c.Deliver(m5)
	expectRead(t, client, append(slices.Clone(m5.Bytes()), smRequest...))
	waitCalls(t, r, "AckDelayed m1 m2 m3", "AckDelayed m5")
	if !c.hibernate(io.EOF) {
		t.Fatal("the session did not hibernate")
	}
	waitCalls(t, r, "AckDelayed m1 m2 m3", "AckDelayed m5", "Hibernated")
}

// TestHibernatedPending: a session that hibernates without lagging
// reports what its client did not acknowledge, then what waits to be
// written, then what is held for it while inactive (XEP-0352), in that
// order (pendingLocked).
func TestHibernatedPending(t *testing.T) {
	c, r, client := ackConn(t, time.Hour)
	m1, m2, m3 := testMsg("m1", "one"), testMsg("m2", "two"), testMsg("m3", "three")
	c.Deliver(m1)
	expectRead(t, client, append(slices.Clone(m1.Bytes()), smRequest...))
	c.mu.Lock()
	// As if the writer were busy: m2 waits in the queue, m3 is held.
	c.queue = append(c.queue, m2)
	c.hold = &csiHold{}
	c.hold.add(m3)
	c.mu.Unlock()
	if !c.hibernate(io.EOF) {
		t.Fatal("the session did not hibernate")
	}
	waitCalls(t, r, "Hibernated m1 m2 m3")
	if c.Connected() {
		t.Fatal("a hibernating session counts as connected")
	}
}

// TestRequestAgain: an <a/> that leaves stanzas unacknowledged (written
// while it was on its way) is followed at once by an <r/> for them,
// without sending what is held for an inactive client (XEP-0352); one
// that acknowledges everything is not.
func TestRequestAgain(t *testing.T) {
	c, _, client := ackConn(t, time.Hour)
	m1, m2, m3 := testMsg("m1", "one"), testMsg("m2", "two"), testMsg("m3", "three")
	c.Deliver(m1)
	expectRead(t, client, append(slices.Clone(m1.Bytes()), smRequest...))
	c.Deliver(m2)
	expectRead(t, client, m2.Bytes()) // an <r/> is outstanding
	c.mu.Lock()
	c.hold = &csiHold{}
	c.hold.add(m3)
	c.mu.Unlock()
	if err := c.smElement(wire.New("a", nsSM, wire.Attr{Name: "h", Value: "1"})); err != nil {
		t.Fatal(err)
	}
	expectRead(t, client, []byte(smRequest))
	expectNothing(t, client, 100*time.Millisecond)
	if err := c.smElement(wire.New("a", nsSM, wire.Attr{Name: "h", Value: "2"})); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, client, 100*time.Millisecond)
	c.mu.Lock()
	held := c.hold != nil && len(c.hold.stanzas) == 1
	c.mu.Unlock()
	if !held {
		t.Fatal("what was held for an inactive client was sent")
	}
}

// TestConnected: what xmpp.Connected says of a client session in each
// state.
func TestConnected(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *conn
		want bool
	}{
		{"live", &conn{}, true},
		{"live, stream management", &conn{sm: &smState{}}, true},
		{"lagging", &conn{sm: &smState{lagging: true}}, false},
		{"closing", &conn{closed: true}, false},
		{"taken over by a resumption", &conn{closed: true, replacing: true, sm: &smState{id: "x"}}, true},
		{"detaching", &conn{phase: phaseDetaching, sm: &smState{id: "x"}}, false},
		{"hibernating", &conn{phase: phaseDetached, sm: &smState{id: "x"}}, false},
		{"ended", &conn{phase: phaseEnded, closed: true}, false},
	} {
		if got := xmpp.Connected(tc.c); got != tc.want {
			t.Errorf("%s: Connected = %v, want %v", tc.name, got, tc.want)
		}
	}
}
