package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"switchboard/xmpp/wire"
)

// loadOpts are the flags of the message scenarios.
type loadOpts struct {
	rate   float64       // total messages/s; 0 = saturation
	window int           // messages in flight per sender
	size   int           // body bytes
	drain  time.Duration // wait for outstanding messages after the run
}

func (o *loadOpts) flags(cmd *cobra.Command, defWindow int) {
	f := cmd.Flags()
	f.Float64Var(&o.rate, "rate", 0, "total messages per second over all senders (0: saturation)")
	f.IntVar(&o.window, "window", defWindow, "messages in flight per sender: a sender waits for its oldest message to arrive")
	f.IntVar(&o.size, "size", 32, "message body size in bytes")
	f.DurationVar(&o.drain, "drain", 5*time.Second, "how long to wait for messages still in flight after the run")
}

func (o *loadOpts) validate() error {
	switch {
	case o.rate < 0 || math.IsNaN(o.rate) || math.IsInf(o.rate, 0):
		return errors.New("--rate must be a non-negative number")
	case o.window < 1:
		return errors.New("--window must be at least 1")
	case o.size < 0 || o.size > 64<<10:
		return errors.New("--size must be between 0 and 65536")
	case o.drain < 0:
		return errors.New("--drain must not be negative")
	}
	return nil
}

func (o *loadOpts) params(p map[string]any, b *bench) map[string]any {
	p["rate"] = o.rate
	p["window"] = o.window
	p["size"] = o.size
	p["drain"] = o.drain.String()
	p["duration"] = b.duration.String()
	p["warmup"] = b.warmup.String()
	return p
}

// body is the message body: size bytes of text.
func (o *loadOpts) body() string {
	const alphabet = "xmppbench-load-0123456789-abcdefghijklmnopqrstuvwxyz "
	var s strings.Builder
	for s.Len() < o.size {
		s.WriteString(alphabet[:min(len(alphabet), o.size-s.Len())])
	}
	return s.String()
}

// pacer spaces one sender's messages at interval (0: no pacing). The
// first send is due after phase, so that senders spread their sends over
// the interval instead of sending in bursts.
type pacer struct {
	interval, phase time.Duration
	due             time.Time // of the next send; zero before the first
}

// newPacer paces sender i of n at interval.
func newPacer(interval time.Duration, i, n int) pacer {
	return pacer{interval: interval, phase: interval * time.Duration(i) / time.Duration(max(n, 1))}
}

// wait blocks until the next send is due or stop is closed; it reports
// false when stopped. A sender that fell more than a second behind skips
// ahead rather than bursting.
func (p *pacer) wait(stop <-chan struct{}) bool {
	if p.interval <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	now := time.Now()
	switch {
	case p.due.IsZero():
		p.due = now.Add(p.phase)
	case now.Sub(p.due) > time.Second:
		p.due = now
	default:
		p.due = p.due.Add(p.interval)
	}
	d := p.due.Sub(now)
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// measure is the measurement interval in b.now() time; deliveries
// received inside it count.
type measure struct {
	start, end atomic.Int64
}

func newMeasure() *measure {
	m := &measure{}
	m.start.Store(math.MaxInt64)
	m.end.Store(math.MaxInt64)
	return m
}

func (m *measure) in(t int64) bool { return t >= m.start.Load() && t < m.end.Load() }

func (b *bench) chatCmd() *cobra.Command {
	var o loadOpts
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "1:1 chat between pairs of users: delivered/s, latency, loss",
		Long: `Logs in --users accounts (an even number) with initial presence and pairs
them (0-1, 2-3, ...). Every user sends chat messages to its partner's full
JID with the send time in the message id: at --rate messages/s in total,
or as fast as possible (--rate 0) with at most --window messages in flight
per sender, so throughput is measured without unbounded queueing. After
--warmup, deliveries are measured for --duration; then the senders stop and
the run waits up to --drain for the rest. Reports delivered/s, latency
percentiles, loss (sent - received after the drain) and, with --pid, the
server's CPU time per delivered message.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if b.users < 2 || b.users%2 != 0 {
				return errors.New("chat needs an even number of --users (at least 2)")
			}
			m, err := b.runChat(cmd.Context(), o)
			if err != nil {
				return err
			}
			return b.report("chat", o.params(map[string]any{}, b), m)
		},
	}
	o.flags(cmd, 8)
	return cmd
}

type chatPeer struct {
	c       *Conn
	partner *chatPeer
	// inflight holds one token per message this peer sent that has not
	// arrived yet; capacity --window. Full: the sender waits.
	inflight chan struct{}
	sent     atomic.Int64
	recv     atomic.Int64
}

// release frees a window slot, if any is taken.
func (p *chatPeer) release() {
	select {
	case <-p.inflight:
	default:
	}
}

func (b *bench) runChat(ctx context.Context, o loadOpts) (Metrics, error) {
	if err := b.registerAll(ctx, b.users); err != nil {
		return nil, err
	}
	n := b.users
	peers := make([]*chatPeer, n)
	for i := range peers {
		peers[i] = &chatPeer{inflight: make(chan struct{}, o.window)}
	}
	for i := 0; i < n; i += 2 {
		peers[i].partner, peers[i+1].partner = peers[i+1], peers[i]
	}
	var lat Histogram
	var delivered, errs atomic.Int64
	meas := newMeasure()
	tag := b.runTag + "-"
	handler := func(i int) Handler {
		p := peers[i]
		return func(_ *Conn, el *wire.Element) {
			if el.Name != "message" {
				return
			}
			rest, ok := strings.CutPrefix(el.AttrValue("id"), tag)
			if !ok {
				return
			}
			if el.AttrValue("type") == "error" {
				// Our own message bounced.
				errs.Add(1)
				p.release()
				return
			}
			ts, err := strconv.ParseInt(rest, 16, 64)
			if err != nil {
				return
			}
			now := b.now()
			p.recv.Add(1)
			p.partner.release()
			if meas.in(now) {
				delivered.Add(1)
				lat.Record(time.Duration(now - ts))
			}
		}
	}
	conns, err := b.loginAll(ctx, n, b.conc(32), "chat", handler, true)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	for i, c := range conns {
		peers[i].c = c
	}

	body := o.body()
	interval := time.Duration(0)
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(n) / o.rate)
	}
	stop := make(chan struct{}) // closed to stop the senders
	var wg sync.WaitGroup
	for i, p := range peers {
		prefix := []byte("<message type='chat' to='")
		prefix = wire.AppendEscapedAttr(prefix, p.partner.c.JID)
		prefix = append(prefix, "' id='"...)
		prefix = append(prefix, tag...)
		suffix := []byte("'><body>")
		suffix = wire.AppendEscapedText(suffix, body)
		suffix = append(suffix, "</body></message>"...)
		wg.Go(func() {
			buf := make([]byte, 0, len(prefix)+len(suffix)+16)
			pc := newPacer(interval, i, n)
			for pc.wait(stop) {
				select {
				case p.inflight <- struct{}{}:
				case <-stop:
					return
				}
				buf = append(buf[:0], prefix...)
				buf = strconv.AppendInt(buf, b.now(), 16)
				buf = append(buf, suffix...)
				if err := p.c.Write(buf); err != nil {
					return
				}
				p.sent.Add(1)
			}
		})
	}
	w, err := b.measureFor(ctx, meas)
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	sent, recv := b.drain(ctx, o.drain, func() (int64, int64) {
		var s, r int64
		for _, p := range peers {
			s += p.sent.Load()
			r += p.recv.Load()
		}
		return s - errs.Load(), r
	})
	dropped := 0
	for _, c := range conns {
		if c.Dropped() {
			dropped++
		}
	}
	var m Metrics
	m.Add("senders", float64(n))
	m.Add("sent", float64(sent+errs.Load()))
	m.Add("delivered_in_window", float64(delivered.Load()))
	m.Add("delivered_per_s", perSecond(float64(delivered.Load()), w.elapsed()))
	m.AddLatency("latency", &lat)
	m.Add("loss", float64(sent-recv))
	m.Add("errors", float64(errs.Load()))
	m.Add("dropped_sessions", float64(dropped))
	b.addSM(&m, conns)
	w.addCPU(&m, b.sampler, "msg", float64(delivered.Load()))
	return m, nil
}

// measureFor waits --warmup, then measures for --duration, returning the
// CPU window of the measurement.
func (b *bench) measureFor(ctx context.Context, meas *measure) (window, error) {
	if err := sleep(ctx, b.warmup); err != nil {
		return window{}, err
	}
	w := b.sampler.begin()
	meas.start.Store(b.now())
	err := sleep(ctx, b.duration)
	meas.end.Store(b.now())
	w.finish(b.sampler)
	return w, err
}

// drain waits up to d until received reaches expected; it returns the
// final counts.
func (b *bench) drain(ctx context.Context, d time.Duration, counts func() (expected, received int64)) (int64, int64) {
	deadline := time.Now().Add(d)
	for {
		e, r := counts()
		if r >= e || time.Now().After(deadline) || ctx.Err() != nil {
			if r < e {
				fmt.Fprintf(os.Stderr, "drain: %d of %d still missing after %s\n", e-r, e, d)
			}
			return e, r
		}
		_ = sleep(ctx, 10*time.Millisecond)
	}
}
