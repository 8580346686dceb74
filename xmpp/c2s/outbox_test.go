package c2s

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// TestOutboxCutOffGrace: a session cut off as a slow consumer has a short
// grace to take what was queued, however the write in progress at the cut
// ends; then the writer gives up and closes the transport. The write
// timeout (a minute here) is for sessions in good standing.
func TestOutboxCutOffGrace(t *testing.T) {
	t.Parallel()
	srv := &Server{
		opts: Options{Limits: Limits{OutboxStanzas: 2, OutboxBytes: 1 << 20, WriteTimeout: time.Minute}},
		log:  slog.New(slog.DiscardHandler),
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
	if c.Deliver(msg(3)) {
		t.Fatal("overflowing message accepted")
	}
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
}
