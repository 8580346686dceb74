package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// limServer is a test server whose log the test reads: servertest.Start
// discards the log, and these tests assert on what the server reports.
type limServer struct {
	*servertest.Server
	tls *tls.Config // trusts the server's certificate; Server.TLSConfig does not here
	log *limLog
}

// limStart starts a server with the test configuration adjusted by fn,
// fails the test if the server logs an error (until it has shut down) and
// stops it when the test ends.
func limStart(t *testing.T, fn func(*config.Limits)) *limServer {
	t.Helper()
	cfg := servertest.Config(t.TempDir())
	fn(&cfg.Limits)
	log := &limLog{sink: &limSink{}}
	srv, err := server.New(context.Background(), cfg, slog.New(log))
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	// Cleanups run last first: the log is checked after the shutdown.
	t.Cleanup(func() {
		for _, r := range log.sink.all() {
			if r.level >= slog.LevelError {
				t.Errorf("server logged an error: %s", r)
			}
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	certFile, _, _ := cfg.CertFiles()
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatalf("read certificate: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	s := &servertest.Server{Server: srv, Domain: cfg.Domains()[0], C2S: srv.Addr("c2s").String(), DataDir: cfg.Server.DataDir}
	return &limServer{
		Server: s,
		tls:    &tls.Config{RootCAs: roots, ServerName: s.Domain, MinVersion: tls.VersionTLS12},
		log:    log,
	}
}

// login is MustLogin over STARTTLS trusting the server's certificate.
func (s *limServer) login(t *testing.T, local string) *servertest.Client {
	t.Helper()
	return s.MustLogin(t, s.AddUser(t, local, "pw"), "pw", servertest.ClientOptions{TLS: s.tls})
}

// loginRaw creates the account local, authenticates a raw stream with
// PLAIN over STARTTLS and binds resource; it returns the client and its
// full JID.
func (s *limServer) loginRaw(t *testing.T, local, resource string) (*servertest.Raw, string) {
	t.Helper()
	s.AddUser(t, local, "pw")
	r := s.DialRaw(t)
	features(t, r.Open(t, s.Domain))
	r.StartTLS(t, s.tls)
	features(t, r.Open(t, s.Domain))
	r.Write(t, "<auth xmlns='"+nsSASLMech+"' mechanism='PLAIN'>"+plainCreds(local, "pw")+"</auth>")
	if el := readEl(t, r); el.Name != "success" || el.Space != nsSASLMech {
		t.Fatalf("PLAIN auth of %s: got %s", local, el)
	}
	features(t, r.Open(t, s.Domain))
	el := bindRaw(t, r, resource)
	full := el.Child("bind", nsBindRes).ChildText("jid", nsBindRes)
	if el.AttrValue("type") != "result" || full == "" {
		t.Fatalf("bind %q: %s", resource, el)
	}
	return r, full
}

// limMessage returns a chat message with the id m<n> of exactly size
// bytes.
func limMessage(to string, n, size int) string {
	head := fmt.Sprintf("<message type='chat' to='%s' id='m%d'><body>", to, n)
	const tail = "</body></message>"
	return head + strings.Repeat("x", size-len(head)-len(tail)) + tail
}

// limChat checks that from and to still exchange messages both ways (to
// full JIDs: the clients sent no presence, so they are not available).
func limChat(t *testing.T, from, to *servertest.Client) {
	t.Helper()
	for i, p := range [][2]*servertest.Client{{from, to}, {to, from}} {
		id := fmt.Sprintf("chat%d", i)
		msg := fmt.Sprintf("<message type='chat' to='%s' id='%s'><body>hello</body></message>", p[1].JID, id)
		if err := p[0].SendRaw(t.Context(), msg); err != nil {
			t.Fatalf("%s: send: %v", p[0].JID, err)
		}
		p[1].Next(t, 10*time.Second, servertest.Named("message", "id", id))
	}
}

// limStream is what a client read of its stream to the end of the
// connection.
type limStream struct {
	ids      []string // of the messages, in order
	cond     string   // of the stream error, or ""
	parseErr error    // that ended parsing: wire.ErrStreamEnd after </stream:stream>
	readErr  error    // that ended reading the connection, nil at EOF
}

// limDrain reads a raw stream to the end of its connection (for at most
// 10 s), then parses what it read. It reads first and parses later to
// take what the server sends as fast as it can: the server gives a client
// it cuts off only a short grace to take what was queued.
func limDrain(r *servertest.Raw) limStream {
	_ = r.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf bytes.Buffer
	_, readErr := io.Copy(&buf, r.Conn)
	// What follows the bind result, in a stream of its own.
	const header = "<stream:stream xmlns='jabber:client' xmlns:stream='" + wire.NSStream + "'>"
	dec := wire.NewDecoder(io.MultiReader(strings.NewReader(header), &buf), wire.Limits{MaxStanza: 1 << 20})
	out := limStream{readErr: readErr}
	if _, err := dec.ReadHeader(); err != nil {
		out.parseErr = err
		return out
	}
	for {
		el, err := dec.ReadElement()
		if err != nil {
			out.parseErr = err
			return out
		}
		switch {
		case el.Name == "message":
			out.ids = append(out.ids, el.AttrValue("id"))
		case el.Name == "error" && el.Space == wire.NSStream:
			for _, c := range el.Children {
				if c.Space == "urn:ietf:params:xml:ns:xmpp-streams" && c.Name != "text" {
					out.cond = c.Name
				}
			}
		}
	}
}

// limPrefix reports whether ids are m0, m1, … in order: what one sender's
// messages look like with none lost between them.
func limPrefix(ids []string) bool {
	for i, id := range ids {
		if id != fmt.Sprintf("m%d", i) {
			return false
		}
	}
	return true
}

// TestLimitSlowConsumer: a session that stops reading is closed once its
// outbox is full (by stanza count or by bytes), with a policy-violation
// stream error after what was queued; the sender and other users carry
// on, and the server sees no error in it.
func TestLimitSlowConsumer(t *testing.T) {
	t.Parallel()
	const (
		msgSize = 1 << 10
		// batch messages are sent between round trips to the server,
		// fewer than either outbox holds: the outbox fills because bob
		// stopped reading, not because alice is quicker than bob's
		// writer.
		batch   = 4
		maxMsgs = 20000
	)
	for _, tc := range []struct {
		name string
		lim  func(*config.Limits)
		// resume: the recipient reads again once its session is cut
		// off, and sees the queued stanzas, then the stream error.
		resume bool
	}{
		{"outbox stanzas, never reads again", func(l *config.Limits) { l.OutboxStanzas, l.OutboxBytes = 8, 1<<20 }, false},
		{"outbox stanzas, reads after overflow", func(l *config.Limits) { l.OutboxStanzas, l.OutboxBytes = 8, 1<<20 }, true},
		{"outbox bytes, never reads again", func(l *config.Limits) { l.OutboxStanzas, l.OutboxBytes = 1000, 8<<10 }, false},
		{"outbox bytes, reads after overflow", func(l *config.Limits) { l.OutboxStanzas, l.OutboxBytes = 1000, 8<<10 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := limStart(t, tc.lim)
			alice := s.login(t, "alice")
			carol := s.login(t, "carol")
			bob, bobFull := s.loginRaw(t, "bob", "slow")
			bobBare := jid.MustParse(bobFull).Bare()
			isBobCut := func(r limRecord) bool {
				return r.level == slog.LevelWarn && strings.HasPrefix(r.msg, "slow consumer") && r.attrs["jid"] == bobFull
			}

			if n := bob.Dec.Buffered(); n != 0 {
				t.Fatalf("bob: %d bytes after the bind result", n)
			}
			// A reader for bob that starts when the server cuts him
			// off, so the queued stanzas can still be flushed in the
			// grace the server gives.
			done := make(chan limStream, 1) // one result, never blocks
			if tc.resume {
				cut := s.log.sink.notify(isBobCut)
				var wg sync.WaitGroup
				t.Cleanup(wg.Wait) // before bob's connection closes
				wg.Go(func() {
					select {
					case <-cut:
						done <- limDrain(bob)
					case <-t.Context().Done():
						done <- limStream{readErr: errors.New("test ended before the cut")}
					}
				})
			}

			// Flood bob until the server gives up on him.
			deadline := time.Now().Add(10 * time.Second)
			sent := 0
			for !s.log.sink.seen(isBobCut) && len(s.Router().Resources(bobBare)) > 0 {
				if sent >= maxMsgs || time.Now().After(deadline) {
					t.Fatalf("bob still bound after %d messages of %d bytes", sent, msgSize)
				}
				for range batch {
					if err := alice.SendRaw(t.Context(), limMessage(bobFull, sent, msgSize)); err != nil {
						t.Fatalf("alice: send %d: %v", sent, err)
					}
					sent++
				}
				pingHost(t, alice)
			}
			t.Logf("bob cut off after %d messages", sent)

			// His session ends, by the flush grace if he does not read.
			s.log.sink.wait(t, 10*time.Second, func(r limRecord) bool {
				return r.msg == "session closed" && r.attrs["jid"] == bobFull
			})
			if res := s.Router().Resources(bobBare); len(res) != 0 {
				t.Errorf("bob still bound after his session closed: %v", res)
			}

			var d limStream
			if tc.resume {
				d = <-done
			} else {
				// What reached his socket before the cut is still
				// there to read.
				d = limDrain(bob)
			}
			t.Logf("bob read %d messages, then stream error %q, %v (connection: %v)", len(d.ids), d.cond, d.parseErr, d.readErr)
			if !limPrefix(d.ids) {
				t.Errorf("bob's messages are not m0, m1, … in order: %v", d.ids)
			}
			if len(d.ids) >= sent {
				t.Errorf("bob read %d messages of %d, the outbox never overflowed", len(d.ids), sent)
			}
			var ne net.Error
			if errors.As(d.readErr, &ne) && ne.Timeout() {
				t.Errorf("bob's connection did not end: %v", d.readErr)
			}
			// A client that takes what was queued in time gets it
			// all, then the reason; one that does not may find its
			// stream cut short by the server giving up.
			if (tc.resume || d.cond != "") && (d.cond != "policy-violation" || !errors.Is(d.parseErr, wire.ErrStreamEnd)) {
				t.Errorf("bob's stream ended with stream error %q and %v; want policy-violation and </stream:stream>", d.cond, d.parseErr)
			}

			// The sender and a third user are unaffected.
			if len(s.Router().Resources(alice.JID.Bare())) != 1 || len(s.Router().Resources(carol.JID.Bare())) != 1 {
				t.Fatalf("alice or carol lost their session")
			}
			limChat(t, alice, carol)
			for _, r := range s.log.sink.all() {
				if strings.HasPrefix(r.msg, "slow consumer") && r.attrs["jid"] != bobFull {
					t.Errorf("another session cut off: %s", r)
				}
			}
		})
	}
}

// TestLimitInboundRate: the inbound byte rate delays a client's stanzas
// but loses none; without a rate the same transfer completes too.
func TestLimitInboundRate(t *testing.T) {
	t.Parallel()
	const (
		msgSize = 1000
		msgs    = 100 // 100 kB in all
		rate    = 20000
		burst   = 20000
		// slack is the clock's and the scheduler's share of the bound.
		slack = 100 * time.Millisecond
	)
	for _, tc := range []struct {
		name string
		rate int
		// min is the least time the bucket allows for the transfer:
		// it can have no more than burst bytes in hand when it starts.
		min time.Duration
	}{
		{"limited", rate, time.Duration(msgs*msgSize-burst) * time.Second / rate},
		{"unlimited", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := limStart(t, func(l *config.Limits) {
				l.MaxStanzaSize = 10000
				l.RateBytesPerSecond = tc.rate
				l.RateBurstBytes = burst
			})
			bob := s.login(t, "bob")
			alice, _ := s.loginRaw(t, "alice", "fast")

			var b strings.Builder
			for i := range msgs {
				b.WriteString(limMessage(bob.JID.String(), i, msgSize))
			}
			_ = alice.Conn.SetDeadline(time.Now().Add(time.Minute))
			start := time.Now()
			// The writes block while the server does not read; bob's
			// client reads on its own goroutine.
			alice.Write(t, b.String())
			deadline := start.Add(30 * time.Second)
			for i := range msgs {
				el := bob.Next(t, time.Until(deadline), servertest.Named("message"))
				if id := el.AttrValue("id"); id != fmt.Sprintf("m%d", i) {
					t.Fatalf("message %d: got %s, want m%d", i, id, i)
				}
			}
			elapsed := time.Since(start)
			t.Logf("%d bytes in %s", msgs*msgSize, elapsed)
			if tc.min > 0 && elapsed < tc.min-slack {
				t.Errorf("%d bytes arrived in %s; a rate of %d B/s with a burst of %d allows no less than %s",
					msgs*msgSize, elapsed, tc.rate, burst, tc.min)
			}

			// Alice is still served.
			alice.Write(t, "<iq type='get' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>")
			for {
				el := readEl(t, alice)
				if el.Name == "iq" && el.AttrValue("id") == "ping1" {
					if el.AttrValue("type") != "result" {
						t.Fatalf("ping: %s", el)
					}
					break
				}
			}
		})
	}
}

// limRecord is one logged record, attributes flattened to text.
type limRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (r limRecord) String() string {
	keys := make([]string, 0, len(r.attrs))
	for k := range r.attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.level, r.msg)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, r.attrs[k])
	}
	return b.String()
}

// limSink collects the records of a server's log.
type limSink struct {
	mu      sync.Mutex
	records []limRecord
	waiters []limWaiter
}

type limWaiter struct {
	match func(limRecord) bool
	ch    chan struct{} // closed on the first match
}

func (s *limSink) add(r limRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r)
	s.waiters = slices.DeleteFunc(s.waiters, func(w limWaiter) bool {
		if w.match(r) {
			close(w.ch)
			return true
		}
		return false
	})
}

func (s *limSink) all() []limRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

// seen reports whether a record matching match was logged.
func (s *limSink) seen(match func(limRecord) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.records, match)
}

// notify returns a channel closed when a record matching match is
// logged, by the logging goroutine itself.
func (s *limSink) notify(match func(limRecord) bool) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	if slices.ContainsFunc(s.records, match) {
		close(ch)
	} else {
		s.waiters = append(s.waiters, limWaiter{match, ch})
	}
	return ch
}

// wait blocks until a record matching match is logged, or fails the test
// after timeout.
func (s *limSink) wait(t *testing.T, timeout time.Duration, match func(limRecord) bool) {
	t.Helper()
	select {
	case <-s.notify(match):
	case <-time.After(timeout):
		t.Fatalf("nothing logged matching within %s", timeout)
	}
}

// limLog is a slog.Handler writing to a limSink; records below Info (one
// per stanza) are not kept.
type limLog struct {
	sink  *limSink
	attrs []slog.Attr
}

func (h *limLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *limLog) Handle(_ context.Context, r slog.Record) error {
	rec := limRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.sink.add(rec)
	return nil
}

func (h *limLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &limLog{sink: h.sink, attrs: append(slices.Clip(h.attrs), attrs...)}
}

// WithGroup is not needed: the server does not group attributes.
func (h *limLog) WithGroup(string) slog.Handler { return h }
