package c2s

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"switchboard/xmpp/wire"
)

// TestIdleSessionOverTCP: a session on a real TCP connection, silent past
// slimAfter (its ingress then waits on a fresh goroutine, without a read
// buffer), is still served; its idle timeout still pings it, and closes it
// when the ping goes unanswered.
func TestIdleSessionOverTCP(t *testing.T) {
	srv := newFuzzServer(t)
	const idle = 400 * time.Millisecond // slimAfter: 100 ms
	srv.opts.Limits.IdleTimeout = idle
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln, false) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	dec := wire.NewDecoder(nc, wire.Limits{MaxStanza: 1 << 20})
	next := func() *wire.Element {
		t.Helper()
		el, err := dec.ReadElement()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return el
	}
	if _, err := nc.Write([]byte(fuzzBound)); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	for el := next(); el.Name != "success"; el = next() {
	}
	dec.Restart()
	if _, err := dec.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	for el := next(); el.Name != "iq"; el = next() {
	}

	// Silent for longer than slimAfter, then a message: echoed.
	time.Sleep(250 * time.Millisecond) // the silence under test, not synchronisation
	if _, err := nc.Write([]byte("<message to='alice@localhost/r' id='m1'><body>hi</body></message>")); err != nil {
		t.Fatal(err)
	}
	if el := next(); el.Name != "message" || el.AttrValue("id") != "m1" {
		t.Fatalf("after the silence: %s", el.Raw())
	}

	// Silent for the idle timeout: pinged; answered, the session stays.
	isPing := func(el *wire.Element) bool {
		return el.Name == "iq" && el.AttrValue("type") == "get" && el.Child("ping", "urn:xmpp:ping") != nil
	}
	ping := next()
	if !isPing(ping) {
		t.Fatalf("expected a keepalive ping, got %s", ping.Raw())
	}
	if _, err := nc.Write([]byte("<iq type='result' to='localhost' id='" + ping.AttrValue("id") + "'/>")); err != nil {
		t.Fatal(err)
	}
	// Silent again: pinged, unanswered, closed with connection-timeout.
	for {
		el, err := dec.ReadElement()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if isPing(el) {
			break
		}
	}
	for {
		el, err := dec.ReadElement()
		if errors.Is(err, wire.ErrStreamEnd) {
			t.Fatal("stream closed without connection-timeout")
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if el.Name == "error" && el.Space == wire.NSStream {
			if el.Child("connection-timeout", "urn:ietf:params:xml:ns:xmpp-streams") == nil {
				t.Fatalf("stream error %s, want connection-timeout", el.Raw())
			}
			break
		}
	}
	if msgs := srv.errors.get(); len(msgs) > 0 {
		t.Errorf("errors logged: %s", strings.Join(msgs, "; "))
	}
}
