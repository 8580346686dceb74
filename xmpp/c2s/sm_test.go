package c2s

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
)

// TestSMAck: 'h' counts modulo 2^32 (XEP-0198 §4), acknowledged stanzas
// leave the queue with their bytes, and an 'h' above what was sent is the
// §6 stream error.
func TestSMAck(t *testing.T) {
	st := func(id string) *xmpp.Stanza {
		return xmpp.Build(xmpp.KindMessage, xmpp.TypeChat, id, jid.JID{}, jid.JID{})
	}
	for _, tc := range []struct {
		name     string
		acked, h uint32
		sent     int
		left     int
		tooHigh  string // the handled-count-too-high element, if an error
	}{
		{"nothing new", 7, 7, 3, 3, ""},
		{"some", 7, 9, 3, 1, ""},
		{"all", 7, 10, 3, 0, ""},
		{"one too many", 7, 11, 3, 3, "h='11' send-count='10'"},
		{"behind", 7, 6, 3, 3, "h='6' send-count='10'"},
		{"across 2^32", 4294967294, 1, 4, 1, ""},
		{"too high across 2^32", 4294967294, 3, 4, 4, "h='3' send-count='2'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sm := &smState{acked: tc.acked, counting: true}
			var batch []*xmpp.Stanza
			for i := range tc.sent {
				batch = append(batch, st(strings.Repeat("x", i+1)))
			}
			if !sm.written(batch) {
				t.Fatal("no ack requested after a batch")
			}
			if sm.written(nil) {
				t.Fatal("a second request while one is outstanding")
			}
			err := sm.ack(tc.h)
			if tc.tooHigh != "" {
				var se *streamError
				if !errors.As(err, &se) || se.cond != "undefined-condition" || !strings.Contains(string(se.app), tc.tooHigh) {
					t.Fatalf("ack(%d) = %v (app %q), want handled-count-too-high %s", tc.h, err, se.app, tc.tooHigh)
				}
			} else if err != nil {
				t.Fatalf("ack(%d): %v", tc.h, err)
			}
			if len(sm.unacked) != tc.left {
				t.Fatalf("%d unacknowledged, want %d", len(sm.unacked), tc.left)
			}
			want := 0
			for _, s := range sm.unacked {
				want += len(s.Bytes())
			}
			if sm.unackedBytes != want {
				t.Fatalf("unackedBytes %d, want %d", sm.unackedBytes, want)
			}
			// The oldest are gone: the rest are the newest.
			for i, s := range sm.unacked {
				if s != batch[tc.sent-tc.left+i] {
					t.Fatalf("unacked[%d] is not the batch's %d", i, tc.sent-tc.left+i)
				}
			}
		})
	}
}

// callsRouter records the order of Unbind, Unacknowledged and Leaving.
type callsRouter struct {
	echoRouter
	hold  sync.Mutex
	mu    sync.Mutex
	calls []string
}

func (r *callsRouter) record(call string) {
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
}

func (r *callsRouter) Unbind(context.Context, xmpp.Session, jid.JID) { r.record("Unbind") }

func (r *callsRouter) Hibernated(_ context.Context, _ xmpp.Session, pending []*xmpp.Stanza) {
	r.record("Hibernated" + ids(pending))
}

func (r *callsRouter) AckDelayed(_ context.Context, _ xmpp.Session, pending []*xmpp.Stanza) {
	r.record("AckDelayed" + ids(pending))
}

func (r *callsRouter) Unacknowledged(_ context.Context, _ xmpp.Session, sts []*xmpp.Stanza) {
	r.record("Unacknowledged " + strconv.Itoa(len(sts)))
}

// Leaving waits for hold, which a test holds to stand for the router's
// locks that Deliver may be called under.
func (r *callsRouter) Leaving(xmpp.Session) {
	r.hold.Lock()
	r.hold.Unlock()
	r.record("Leaving")
}

// recorded returns the calls recorded so far.
func (r *callsRouter) recorded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// TestTerminateHandsOverFirst: a hibernating session that ends leaves the
// available resources, hands over what it held, what it queued and what
// was never acknowledged, then unbinds: its contacts see it leave once
// that is settled.
func TestTerminateHandsOverFirst(t *testing.T) {
	r := &callsRouter{}
	srv := &Server{deps: Deps{Router: r}, log: slog.New(slog.DiscardHandler), conns: map[*conn]bool{}}
	c := &conn{srv: srv, full: jid.MustParse("a@localhost/phone"), phase: phaseEnded, closed: true, sm: &smState{}}
	srv.conns[c] = true
	srv.wg.Add(1)
	msg := xmpp.Build(xmpp.KindMessage, xmpp.TypeChat, "m1", jid.MustParse("b@localhost/desk"), c.full)
	c.queue = []*xmpp.Stanza{msg}
	c.hold = &csiHold{}
	c.hold.add(xmpp.Build(xmpp.KindMessage, "", "r1", jid.MustParse("b@localhost/desk"), c.full))
	c.terminate(t.Context())
	if want := []string{"Leaving", "Unacknowledged 2", "Unbind"}; !slices.Equal(r.calls, want) {
		t.Fatalf("calls %q, want %q", r.calls, want)
	}
	if len(srv.conns) != 0 {
		t.Fatal("the connection was not released")
	}
}

// ids names stanzas by their ids, space separated.
func ids(sts []*xmpp.Stanza) string {
	var b strings.Builder
	for _, st := range sts {
		b.WriteByte(' ')
		b.WriteString(st.ID)
	}
	return b.String()
}
