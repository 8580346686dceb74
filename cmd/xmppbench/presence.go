package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"switchboard/xmpp/wire"
)

func (b *bench) presenceCmd() *cobra.Command {
	var contacts int
	var setup bool
	var timeout, setupTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "presence",
		Short: "Presence storm: everyone with R contacts logs in at once",
		Long: `Setup (not measured): every account gets --contacts mutual contacts (its
neighbours on a ring of --users accounts) through real subscription
stanzas — each side sends subscribe and answers the other's with
subscribed — and the setup sessions end. With --setup=false there is none:
the rosters must already hold the ring at subscription "both" (a copy of
a server's data that a run with the setup left), or users stay
incomplete.

Measured: all accounts log in at the same time (or --concurrency at a
time) and send initial presence. Reports the time from the first connect
until every user has seen available presence from all its contacts, the
per-user completion percentiles and the presence stanzas received; with
--pid the server's CPU over that time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if contacts < 1 || contacts >= b.users {
				return errors.New("--contacts must be between 1 and --users - 1")
			}
			if contacts%2 == 1 && b.users%2 == 1 {
				return errors.New("an odd --contacts needs an even --users")
			}
			m, err := b.runPresence(cmd.Context(), contacts, setup, setupTimeout, timeout)
			if err != nil {
				return err
			}
			return b.report("presence", map[string]any{"contacts": contacts, "presence_timeout": timeout.String()}, m)
		},
	}
	cmd.Flags().IntVar(&contacts, "contacts", 10, "mutual contacts per user")
	cmd.Flags().BoolVar(&setup, "setup", true, "set up and check the subscriptions first (false: the rosters already hold them)")
	cmd.Flags().DurationVar(&setupTimeout, "setup-timeout", 10*time.Minute, "limit for setting up the subscriptions (with --setup)")
	cmd.Flags().DurationVar(&timeout, "presence-timeout", time.Minute, "limit for the measured phase")
	return cmd
}

// ringContacts returns the r contacts of user i among n: its neighbours
// at distance 1..r/2 on both sides, and the opposite user when r is odd
// (n even). The relation is symmetric and has no duplicates for r < n.
func ringContacts(i, n, r int) []int {
	out := make([]int, 0, r)
	for d := 1; d <= r/2; d++ {
		out = append(out, (i+d)%n, (i-d+n)%n)
	}
	if r%2 == 1 {
		out = append(out, (i+n/2)%n)
	}
	return out
}

// presenceUser is one account's view; its maps belong to its reader.
type presenceUser struct {
	contacts []int
	// subscribed is the set of contacts at subscription "both" in our
	// roster (setup phase); subs counts it.
	subscribed map[int]bool
	subs       atomic.Int64
	// pending are contacts not yet seen available (measured phase).
	pending map[int]bool
	doneAt  atomic.Int64 // b.now() when pending became empty, 0 before
}

func (b *bench) runPresence(ctx context.Context, r int, setup bool, setupTimeout, timeout time.Duration) (Metrics, error) {
	n := b.users
	if err := b.registerAll(ctx, n); err != nil {
		return nil, err
	}
	users := make([]*presenceUser, n)
	index := make(map[string]int, n) // lower-case bare JID → user
	for i := range users {
		users[i] = &presenceUser{contacts: ringContacts(i, n, r)}
		index[strings.ToLower(b.bare(i))] = i
	}
	lookup := func(from string) (int, bool) {
		bare, _, _ := strings.Cut(from, "/")
		j, ok := index[bare]
		if !ok {
			j, ok = index[strings.ToLower(bare)]
		}
		return j, ok
	}

	var setupTime time.Duration
	if setup {
		t := time.Now()
		if err := b.setupPresence(ctx, users, lookup, r, setupTimeout); err != nil {
			return nil, err
		}
		setupTime = time.Since(t)
	}

	// Measured: everyone logs in at once.
	var stanzas atomic.Int64
	var complete atomic.Int64
	allDone := make(chan struct{}) // closed when every user is complete
	var t0 int64
	measHandler := func(i int) Handler {
		u := users[i]
		u.pending = make(map[int]bool, r)
		for _, j := range u.contacts {
			u.pending[j] = true
		}
		return func(_ *Conn, el *wire.Element) {
			if el.Name != "presence" {
				return
			}
			stanzas.Add(1)
			if t := el.AttrValue("type"); t != "" && t != "available" {
				return
			}
			j, ok := lookup(el.AttrValue("from"))
			if !ok || !u.pending[j] {
				return
			}
			delete(u.pending, j)
			if len(u.pending) == 0 {
				u.doneAt.Store(b.now())
				if complete.Add(1) == int64(n) {
					close(allDone)
				}
			}
		}
	}
	w := b.sampler.begin()
	t0 = b.now()
	conns, err := b.loginAll(ctx, n, b.conc(n), "storm", measHandler, true)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	loggedIn := time.Duration(b.now() - t0)
	t := time.NewTimer(timeout)
	select {
	case <-allDone:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	w.finish(b.sampler)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var per Histogram
	var last int64
	incomplete := 0
	for _, u := range users {
		d := u.doneAt.Load()
		if d == 0 {
			incomplete++
			continue
		}
		per.Record(time.Duration(d - t0))
		last = max(last, d-t0)
	}
	if incomplete > 0 {
		fmt.Fprintf(os.Stderr, "presence: %d users had not seen all contacts after %s\n", incomplete, timeout)
	}
	var m Metrics
	m.Add("users", float64(n))
	m.Add("contacts", float64(r))
	if setup {
		m.Add("setup_s", setupTime.Seconds())
	}
	m.Add("login_all_s", loggedIn.Seconds())
	m.Add("presence_complete_s", time.Duration(last).Seconds())
	m.AddLatency("user_complete", &per)
	m.Add("incomplete_users", float64(incomplete))
	m.Add("presence_stanzas", float64(stanzas.Load()))
	m.Add("presence_stanzas_per_s", perSecond(float64(stanzas.Load()), w.elapsed()))
	w.addCPU(&m, b.sampler, "", 0)
	if b.sampler.enabled() {
		m.Add("server_cpu_ms", float64(w.serverCPU().Microseconds())/1000)
	}
	return m, nil
}

func isContact(contacts []int, j int) bool {
	for _, c := range contacts {
		if c == j {
			return true
		}
	}
	return false
}

// setupPresence gives every user its r ring contacts at subscription
// "both" (see the presence command) and ends the setup sessions.
func (b *bench) setupPresence(ctx context.Context, users []*presenceUser, lookup func(string) (int, bool), r int, setupTimeout time.Duration) error {
	n := len(users)
	// Setup: each user reads its roster and, for every contact not yet
	// at subscription "both", sends subscribe; every request is answered
	// with subscribed. Done when every roster shows "both" for all
	// contacts (roster result or pushes): a repeated subscribe to a
	// contact one is already subscribed to is answered by the servers
	// themselves and never reaches the client (RFC 6121 §3.1.3, A.3.3).
	setupHandler := func(i int) Handler {
		u := users[i]
		u.subscribed = make(map[int]bool, r)
		mark := func(q *wire.Element) {
			if q == nil {
				return
			}
			for _, it := range q.Children {
				if it.Name != "item" || it.AttrValue("subscription") != "both" {
					continue
				}
				if j, ok := lookup(it.AttrValue("jid")); ok && !u.subscribed[j] && isContact(u.contacts, j) {
					u.subscribed[j] = true
					u.subs.Add(1)
				}
			}
		}
		var out []byte
		return func(c *Conn, el *wire.Element) {
			switch el.Name {
			case "iq":
				q := el.Child("query", nsRoster)
				if el.AttrValue("type") == "set" {
					mark(q) // a push
					return
				}
				if el.AttrValue("id") != "roster" || el.AttrValue("type") != "result" {
					return
				}
				mark(q)
				out = out[:0]
				for _, j := range u.contacts {
					if !u.subscribed[j] {
						out = append(out, "<presence type='subscribe' to='"...)
						out = wire.AppendEscapedAttr(out, b.bare(j))
						out = append(out, "'/>"...)
					}
				}
				if len(out) > 0 {
					_ = c.Write(out)
				}
			case "presence":
				if el.AttrValue("type") != "subscribe" {
					return
				}
				from, _, _ := strings.Cut(el.AttrValue("from"), "/")
				out = append(out[:0], "<presence type='subscribed' to='"...)
				out = wire.AppendEscapedAttr(out, from)
				out = append(out, "'/>"...)
				_ = c.Write(out)
			}
		}
	}
	conns, err := b.loginAll(ctx, n, b.conc(32), "setup", setupHandler, true)
	if err != nil {
		return err
	}
	// The setup sessions end before the storm, however the setup ends.
	defer closeAll(conns)
	for _, c := range conns {
		if err := c.Write([]byte("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>")); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(setupTimeout)
	progress := time.Now().Add(5 * time.Second)
	for {
		missing := 0
		for _, u := range users {
			missing += r - int(u.subs.Load())
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("presence setup: %d roster items not at subscription \"both\" after %s", missing, setupTimeout)
		}
		if time.Now().After(progress) {
			fmt.Fprintf(os.Stderr, "presence setup: %d of %d roster items at subscription \"both\"\n", n*r-missing, n*r)
			progress = progress.Add(5 * time.Second)
		}
		_ = sleep(ctx, 20*time.Millisecond)
	}
	return nil
}
