package c2s

import (
	"fmt"
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

// TestOutboxCutOffGrace: a session cut off as a slow consumer has a short
// grace to take what was queued, however the write in progress at the cut
// ends; then the writer gives up and closes the transport. The write
// timeout (a minute here) is for sessions in good standing. From the cut
// the router no longer counts it available (Leaving): it refuses what it
// is given until it unbinds.
func TestOutboxCutOffGrace(t *testing.T) {
	t.Parallel()
	router := &callsRouter{}
	srv := &Server{
		opts: Options{Limits: Limits{OutboxStanzas: 2, OutboxBytes: 1 << 20, WriteTimeout: time.Minute}},
		log:  slog.New(slog.DiscardHandler),
		deps: Deps{Router: router},
	}
	server, client := net.Pipe() // unbuffered: a client that does not read blocks every write
	defer client.Close()
	c := &conn{srv: srv, raw: server, nc: server, bound: true,
		full: jid.MustParse("bob@localhost/r")}
	msg := func(i int) *xmpp.Stanza {
		return xmpp.Build(xmpp.KindMessage, xmpp.TypeChat, fmt.Sprintf("m%d", i),
			jid.MustParse("alice@localhost/r"), c.full, wire.New("body", wire.NSClient).SetText("hi"))
	}

	// The first message is being written when the next two fill the
	// outbox and a fourth overflows it.
	first := msg(0)
	if !c.Deliver(first) {
		t.Fatal("first message refused")
	}
	c.startWriter()
	// A byte of it read: the writer took it from the outbox.
	if _, err := io.ReadFull(client, make([]byte, 1)); err != nil {
		t.Fatalf("read: %v", err)
	}
	for i := 1; i <= 2; i++ {
		if !c.Deliver(msg(i)) {
			t.Fatalf("message %d refused with room in the outbox", i)
		}
	}
	cut := time.Now()
	// Deliver may be called under the router's locks: it must not wait
	// for the router (Leaving) before it returns.
	router.hold.Lock()
	held := true
	defer func() {
		if held {
			router.hold.Unlock()
		}
	}()
	taken := make(chan bool, 1)
	go func() { taken <- c.Deliver(msg(3)) }()
	select {
	case ok := <-taken:
		if ok {
			t.Fatal("overflowing message accepted")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Deliver waited for the router")
	}
	router.hold.Unlock()
	held = false
	// The client takes the write in progress, then stops reading.
	if _, err := io.ReadFull(client, make([]byte, len(first.Bytes())-1)); err != nil {
		t.Fatalf("read the first message: %v", err)
	}
	writerEnd := make(chan struct{})
	go func() { c.writers.Wait(); close(writerEnd) }()
	select {
	case <-writerEnd:
		if d := time.Since(cut); d > 10*time.Second {
			t.Errorf("writer ended %s after the cut", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writer still blocked 20s after the cut; the grace is a second")
	}
	// Leaving runs on its own goroutine (Deliver never calls back into
	// the router); the writer's second has passed by now.
	if got := router.recorded(); !slices.Equal(got, []string{"Leaving"}) {
		t.Fatalf("router calls %q, want [Leaving]", got)
	}
}

// TestCloseLeaving: a live session the server closes (an account's
// deletion, a shutdown) is taken off the available resources at once,
// while its writer flushes, not when it unbinds. One still negotiating
// has no resource to take off.
func TestCloseLeaving(t *testing.T) {
	cases := []struct {
		name  string
		bound bool
		want  []string
	}{
		{"bound", true, []string{"Leaving"}},
		{"negotiating", false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			router := &callsRouter{}
			srv := &Server{log: slog.New(slog.DiscardHandler), deps: Deps{Router: router}}
			server, client := net.Pipe()
			defer client.Close()
			defer server.Close()
			c := &conn{srv: srv, raw: server, nc: server, bound: tc.bound,
				full: jid.MustParse("bob@localhost/r")}
			c.Close("system-shutdown", "")
			if got := router.recorded(); !slices.Equal(got, tc.want) {
				t.Fatalf("router calls %q, want %q", got, tc.want)
			}
			if c.Deliver(xmpp.Build(xmpp.KindMessage, xmpp.TypeChat, "m", jid.MustParse("alice@localhost/r"), c.full)) {
				t.Fatal("a closed session took a message")
			}
		})
	}
}
