package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"switchboard/xmpp/wire"
)

const (
	nsMUC      = "http://jabber.org/protocol/muc"
	nsMUCUser  = "http://jabber.org/protocol/muc#user"
	nsMUCOwner = "http://jabber.org/protocol/muc#owner"
)

type mucOpts struct {
	loadOpts
	occupants int
	senders   int
	room      string
	service   string
}

func (b *bench) mucCmd() *cobra.Command {
	var o mucOpts
	cmd := &cobra.Command{
		Use:   "muc",
		Short: "Group chat fan-out: K occupants in one room, M senders",
		Long: `Accounts 0..K-1 join --room on --service (XEP-0045) without history; the
first joiner accepts the default configuration if the room is new (an
instant room). Then --senders of them send groupchat messages, at --rate
in total or as fast as possible with at most --window messages per sender
not yet received by every occupant. Reports fan-out deliveries/s (one per
occupant per message, the sender's echo included), latency percentiles
and loss; with --pid the server's CPU per delivery.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if !cmd.Flags().Changed("occupants") {
				o.occupants = b.users
			}
			if o.service == "" {
				o.service = "conference." + b.cfg.Domain
			}
			switch {
			case o.occupants < 1:
				return errors.New("--occupants must be at least 1")
			case o.senders < 1 || o.senders > o.occupants:
				return errors.New("--senders must be between 1 and --occupants")
			case o.room == "" || strings.ContainsAny(o.room, "@/ '\"<>&"):
				return errors.New("--room must be a plain room name")
			}
			m, err := b.runMUC(cmd.Context(), o)
			if err != nil {
				return err
			}
			p := o.params(map[string]any{"occupants": o.occupants, "senders": o.senders, "room": o.room, "service": o.service}, b)
			return b.report("muc", p, m)
		},
	}
	o.flags(cmd, 4)
	f := cmd.Flags()
	f.IntVar(&o.occupants, "occupants", 0, "occupants of the room (default --users)")
	f.IntVar(&o.senders, "senders", 1, "occupants that send")
	f.StringVar(&o.room, "room", "xmppbench", "room name (localpart)")
	f.StringVar(&o.service, "service", "", "MUC service domain (default conference.<domain>)")
	return cmd
}

type mucOccupant struct {
	c       *Conn
	nick    string
	joined  chan struct{} // closed once the room sent our self-presence
	joinErr error         // set before joined is closed
	created bool          // the room was created by our join (status 201)
	cfgDone chan error    // capacity 1: the answer to the configuration
	recv    atomic.Int64
}

type mucSender struct {
	// inflight holds a token per message not yet received by every
	// occupant; capacity --window. Full: the sender waits.
	inflight chan struct{}
	// ring counts the deliveries of message seq in ring[seq%len(ring)];
	// each occupant receives a sender's messages in order, so messages
	// complete in order and at most --window are outstanding.
	ring []atomic.Int64
	sent atomic.Int64
}

func (b *bench) runMUC(ctx context.Context, o mucOpts) (Metrics, error) {
	if err := b.registerAll(ctx, o.occupants); err != nil {
		return nil, err
	}
	k := o.occupants
	roomJID := o.room + "@" + o.service
	occ := make([]*mucOccupant, k)
	for i := range occ {
		occ[i] = &mucOccupant{nick: b.user(i), joined: make(chan struct{}), cfgDone: make(chan error, 1)}
	}
	senders := make([]*mucSender, o.senders)
	for i := range senders {
		senders[i] = &mucSender{inflight: make(chan struct{}, o.window), ring: make([]atomic.Int64, 4*o.window)}
	}
	var lat Histogram
	var delivered, errs atomic.Int64
	meas := newMeasure()
	tag := b.runTag + "-"
	handler := func(i int) Handler {
		me := occ[i]
		self := roomJID + "/" + me.nick
		joined := false
		return func(_ *Conn, el *wire.Element) {
			switch el.Name {
			case "presence":
				from := el.AttrValue("from")
				if joined || !strings.HasPrefix(from, roomJID+"/") {
					return
				}
				if el.AttrValue("type") == "error" {
					me.joinErr = fmt.Errorf("join %s: %w", roomJID, stanzaError(el))
				} else if x := el.Child("x", nsMUCUser); x == nil || (from != self && !hasStatus(x, "110")) {
					return // another occupant
				} else {
					me.created = hasStatus(x, "201")
				}
				joined = true
				close(me.joined)
			case "iq":
				if el.AttrValue("id") != "cfg" {
					return
				}
				if el.AttrValue("type") == "error" {
					me.cfgDone <- stanzaError(el)
				} else {
					me.cfgDone <- nil
				}
			case "message":
				rest, ok := strings.CutPrefix(el.AttrValue("id"), tag)
				if !ok {
					return
				}
				s, seq, ts, ok := parseMUCID(rest)
				if !ok || s >= len(senders) {
					return
				}
				snd := senders[s]
				if el.AttrValue("type") == "error" {
					errs.Add(1)
					snd.ring[seq%uint64(len(snd.ring))].Store(0)
					releaseToken(snd.inflight)
					return
				}
				now := b.now()
				me.recv.Add(1)
				slot := &snd.ring[seq%uint64(len(snd.ring))]
				if slot.Add(1) == int64(k) {
					slot.Store(0)
					releaseToken(snd.inflight)
				}
				if meas.in(now) {
					delivered.Add(1)
					lat.Record(time.Duration(now - ts))
				}
			}
		}
	}
	conns, err := b.loginAll(ctx, k, b.conc(32), "muc", handler, false)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	for i, c := range conns {
		occ[i].c = c
	}
	joinStart := time.Now()
	if err := b.join(ctx, roomJID, occ[0], true); err != nil {
		return nil, err
	}
	if err := parallel(ctx, k-1, b.conc(32), func(i int) error {
		return b.join(ctx, roomJID, occ[i+1], false)
	}); err != nil {
		return nil, err
	}
	joinTime := time.Since(joinStart)

	body := o.body()
	interval := time.Duration(0)
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(o.senders) / o.rate)
	}
	stop := make(chan struct{}) // closed to stop the senders
	var wg sync.WaitGroup
	for si, snd := range senders {
		c := occ[si].c
		prefix := []byte("<message type='groupchat' to='")
		prefix = wire.AppendEscapedAttr(prefix, roomJID)
		prefix = append(prefix, "' id='"...)
		prefix = append(prefix, tag...)
		prefix = strconv.AppendInt(prefix, int64(si), 16)
		prefix = append(prefix, '-')
		suffix := []byte("'><body>")
		suffix = wire.AppendEscapedText(suffix, body)
		suffix = append(suffix, "</body></message>"...)
		wg.Go(func() {
			buf := make([]byte, 0, len(prefix)+len(suffix)+32)
			pc := newPacer(interval, si, len(senders))
			var seq int64
			for pc.wait(stop) {
				select {
				case snd.inflight <- struct{}{}:
				case <-stop:
					return
				}
				buf = append(buf[:0], prefix...)
				buf = strconv.AppendInt(buf, seq, 16)
				buf = append(buf, '-')
				buf = strconv.AppendInt(buf, b.now(), 16)
				buf = append(buf, suffix...)
				if err := c.Write(buf); err != nil {
					return
				}
				seq++
				snd.sent.Add(1)
			}
		})
	}
	w, err := b.measureFor(ctx, meas)
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	expected, received := b.drain(ctx, o.drain, func() (int64, int64) {
		var s, r int64
		for _, snd := range senders {
			s += snd.sent.Load()
		}
		for _, oc := range occ {
			r += oc.recv.Load()
		}
		return (s - errs.Load()) * int64(k), r
	})
	var sent int64
	for _, snd := range senders {
		sent += snd.sent.Load()
	}
	dropped := 0
	for _, c := range conns {
		if c.Dropped() {
			dropped++
		}
	}
	var m Metrics
	m.Add("occupants", float64(k))
	m.Add("senders", float64(o.senders))
	m.Add("join_s", joinTime.Seconds())
	m.Add("sent", float64(sent))
	m.Add("deliveries_in_window", float64(delivered.Load()))
	m.Add("deliveries_per_s", perSecond(float64(delivered.Load()), w.elapsed()))
	m.Add("messages_per_s", perSecond(float64(delivered.Load())/float64(k), w.elapsed()))
	m.AddLatency("latency", &lat)
	m.Add("loss", float64(expected-received))
	m.Add("errors", float64(errs.Load()))
	m.Add("dropped_sessions", float64(dropped))
	b.addSM(&m, conns)
	w.addCPU(&m, b.sampler, "delivery", float64(delivered.Load()))
	return m, nil
}

// join enters the room and waits for the self-presence; the first
// occupant also unlocks a newly created room (XEP-0045 §10.1.2).
func (b *bench) join(ctx context.Context, roomJID string, o *mucOccupant, first bool) error {
	p := []byte("<presence to='")
	p = wire.AppendEscapedAttr(p, roomJID+"/"+o.nick)
	p = append(p, "'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"...)
	if err := o.c.Write(p); err != nil {
		return err
	}
	t := time.NewTimer(b.cfg.Timeout)
	defer t.Stop()
	select {
	case <-o.joined:
	case <-o.c.Done():
		return fmt.Errorf("join %s: %v", roomJID, o.c.Err())
	case <-t.C:
		return fmt.Errorf("join %s as %s: no self-presence within %s", roomJID, o.nick, b.cfg.Timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	if o.joinErr != nil {
		return o.joinErr
	}
	if !first || !o.created {
		return nil
	}
	q := []byte("<iq type='set' id='cfg' to='")
	q = wire.AppendEscapedAttr(q, roomJID)
	q = append(q, "'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"...)
	if err := o.c.Write(q); err != nil {
		return err
	}
	select {
	case err := <-o.cfgDone:
		if err != nil {
			return fmt.Errorf("configure %s: %w", roomJID, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("configure %s: no answer within %s", roomJID, b.cfg.Timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func hasStatus(x *wire.Element, code string) bool {
	for _, s := range x.Children {
		if s.Name == "status" && s.AttrValue("code") == code {
			return true
		}
	}
	return false
}

// parseMUCID parses "sender-seq-timestamp" (hex).
func parseMUCID(s string) (sender int, seq uint64, ts int64, ok bool) {
	a, rest, ok1 := strings.Cut(s, "-")
	q, t, ok2 := strings.Cut(rest, "-")
	if !ok1 || !ok2 {
		return 0, 0, 0, false
	}
	sn, err1 := strconv.ParseUint(a, 16, 31)
	sq, err2 := strconv.ParseUint(q, 16, 64)
	tv, err3 := strconv.ParseInt(t, 16, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}
	return int(sn), sq, tv, true
}

// releaseToken frees one slot of a window channel, if any is taken.
func releaseToken(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}
