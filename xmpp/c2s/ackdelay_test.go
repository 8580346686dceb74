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

// overdue runs the ack timer's function as if MaxAckDelay had passed
// since the last <r/>.
func overdue(c *conn) {
	c.mu.Lock()
	c.sm.requestedAt = c.sm.requestedAt.Add(-c.srv.opts.MaxAckDelay)
	c.mu.Unlock()
	c.ackDelayed()
}

// TestAckDelayed: a client that leaves the server's <r/> unanswered for
// MaxAckDelay is reported to the router once, with what it did not
// acknowledge, then what waits to be written, in that order; it is not
// Connected until it answers. What a report carried is not reported
// again, whether the client lags again after a partial answer or the
// session hibernates; a session that hibernates while lagging reports
// nothing (what came meanwhile was delivered to a session not
// Connected).
func TestAckDelayed(t *testing.T) {
	c, r, client := ackConn(t, time.Hour)
	m1, m2, m3 := testMsg("m1", "one"), testMsg("m2", "two"), testMsg("m3", "three")
	if !c.Connected() {
		t.Fatal("a live session is not connected")
	}
	c.Deliver(m1)
	expectRead(t, client, append(slices.Clone(m1.Bytes()), smRequest...))
	c.ackDelayed() // not overdue yet
	waitCalls(t, r)
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
	overdue(c)
	waitCalls(t, r, "AckDelayed m1 m2 m3")
	if c.Connected() {
		t.Fatal("a lagging client counts as connected")
	}
	overdue(c) // once only
	waitCalls(t, r, "AckDelayed m1 m2 m3")
	// What comes while it lags is not reported: it was delivered to a
	// session not Connected (push notifies it then).
	lagged := testMsg("lagged", "meanwhile")
	c.Deliver(lagged)

	// A partial answer: m2, m3 and lagged are asked for again, and the
	// client lags again; they are not reported again.
	expectRead(t, client, append(append(slices.Clone(m2.Bytes()), m3.Bytes()...), lagged.Bytes()...))
	if err := c.smElement(wire.New("a", nsSM, wire.Attr{Name: "h", Value: "1"})); err != nil {
		t.Fatal(err)
	}
	if !c.Connected() {
		t.Fatal("a client that answered is not connected")
	}
	expectRead(t, client, []byte(smRequest))
	m4 := testMsg("m4", "four")
	c.Deliver(m4)
	expectRead(t, client, m4.Bytes())
	overdue(c)
	waitCalls(t, r, "AckDelayed m1 m2 m3", "AckDelayed m4")

	// Answered in full: nothing is overdue.
	if err := c.smElement(wire.New("a", nsSM, wire.Attr{Name: "h", Value: "5"})); err != nil {
		t.Fatal(err)
	}
	overdue(c)
	waitCalls(t, r, "AckDelayed m1 m2 m3", "AckDelayed m4")

	// Lagging again, m6 comes meanwhile, then the connection fails: the
	// hibernation reports nothing (m6 went to a session not Connected).
	m5, m6 := testMsg("m5", "five"), testMsg("m6", "six")
	c.Deliver(m5)
	expectRead(t, client, append(slices.Clone(m5.Bytes()), smRequest...))
	overdue(c)
	waitCalls(t, r, "AckDelayed m1 m2 m3", "AckDelayed m4", "AckDelayed m5")
	c.Deliver(m6)
	expectRead(t, client, m6.Bytes())
	if !c.hibernate(io.EOF) {
		t.Fatal("the session did not hibernate")
	}
	waitCalls(t, r, "AckDelayed m1 m2 m3", "AckDelayed m4", "AckDelayed m5", "Hibernated")
}

// TestAckTimer: the timer armed with an <r/> reports an unanswered one
// after MaxAckDelay.
func TestAckTimer(t *testing.T) {
	c, r, client := ackConn(t, 20*time.Millisecond)
	m1 := testMsg("m1", "one")
	c.Deliver(m1)
	expectRead(t, client, append(slices.Clone(m1.Bytes()), smRequest...))
	waitCalls(t, r, "AckDelayed m1")
}

// TestHibernatedAfterPartialAnswer: a session that hibernates after its
// client answered part of what a report carried reports only what came
// after.
func TestHibernatedAfterPartialAnswer(t *testing.T) {
	c, r, client := ackConn(t, time.Hour)
	m1, m2, m3 := testMsg("m1", "one"), testMsg("m2", "two"), testMsg("m3", "three")
	c.Deliver(m1)
	expectRead(t, client, append(slices.Clone(m1.Bytes()), smRequest...))
	c.Deliver(m2)
	expectRead(t, client, m2.Bytes())
	overdue(c)
	waitCalls(t, r, "AckDelayed m1 m2")
	if err := c.smElement(wire.New("a", nsSM, wire.Attr{Name: "h", Value: "1"})); err != nil {
		t.Fatal(err)
	}
	expectRead(t, client, []byte(smRequest))
	c.Deliver(m3)
	expectRead(t, client, m3.Bytes())
	if !c.hibernate(io.EOF) {
		t.Fatal("the session did not hibernate")
	}
	waitCalls(t, r, "AckDelayed m1 m2", "Hibernated m3")
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
		{"closing, stream management", &conn{closed: true, sm: &smState{}}, false},
		{"closed by the server, resumable", &conn{closed: true, kicked: true, broken: true, sm: &smState{id: "x"}}, false},
		{"transport failed, resumable", &conn{closed: true, broken: true, sm: &smState{id: "x"}}, true},
		{"taken over by a resumption", &conn{closed: true, replacing: true, sm: &smState{id: "x"}}, true},
		{"detaching", &conn{phase: phaseDetaching, sm: &smState{id: "x"}}, true},
		{"hibernating", &conn{phase: phaseDetached, sm: &smState{id: "x"}}, false},
		{"ending, its stanzas still to hand over", &conn{phase: phaseEnded, closed: true, sm: &smState{id: "x"}}, true},
		{"ended", &conn{phase: phaseEnded, closed: true, handedOver: true, sm: &smState{id: "x"}}, false},
	} {
		if got := xmpp.Connected(tc.c); got != tc.want {
			t.Errorf("%s: Connected = %v, want %v", tc.name, got, tc.want)
		}
	}
}
