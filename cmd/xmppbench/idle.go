package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func (b *bench) idleCmd() *cobra.Command {
	var sessions int
	var keepalive time.Duration
	cmd := &cobra.Command{
		Use:   "idle",
		Short: "Hold N authenticated sessions: server memory per session, drops",
		Long: `Opens --sessions authenticated sessions with initial presence, waits until
all are up, reports the server's RSS growth per session (needs --pid), then
holds them for --duration, sending a white space keepalive every
--keepalive, and reports sessions the server dropped.

Sessions use accounts 0..--users-1, one each; more sessions than accounts
bind further resources of the same accounts in turn (the server's limit
of sessions per account applies). Beyond ~28,000 sessions spread them over
several local addresses with --source.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("sessions") {
				sessions = b.users
			}
			if sessions < 1 {
				return errors.New("--sessions must be at least 1")
			}
			m, err := b.runIdle(cmd.Context(), sessions, keepalive)
			if err != nil {
				return err
			}
			return b.report("idle", map[string]any{"sessions": sessions, "duration": b.duration.String(), "keepalive": keepalive.String()}, m)
		},
	}
	cmd.Flags().IntVar(&sessions, "sessions", 0, "number of sessions (default --users)")
	cmd.Flags().DurationVar(&keepalive, "keepalive", time.Minute, "white space keepalive interval while holding (0: none)")
	return cmd
}

func (b *bench) runIdle(ctx context.Context, sessions int, keepalive time.Duration) (Metrics, error) {
	if err := b.registerAll(ctx, min(sessions, b.users)); err != nil {
		return nil, err
	}
	before := b.sampler.mustSample()
	start := time.Now()
	conns, err := b.loginAll(ctx, sessions, b.conc(32), "idle", func(int) Handler { return discard }, true)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	setup := time.Since(start)
	// Let the server finish the presence work of the logins before
	// reading its memory.
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	after := b.sampler.mustSample()
	w := b.sampler.begin()
	deadline := time.Now().Add(b.duration)
	for time.Now().Before(deadline) {
		wait := time.Until(deadline)
		if keepalive > 0 {
			wait = min(wait, keepalive)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		if keepalive > 0 && time.Now().Before(deadline) {
			for _, c := range conns {
				_ = c.send([]byte(" "))
			}
		}
	}
	w.finish(b.sampler)
	dropped := 0
	var firstErr error
	for _, c := range conns {
		if c.Dropped() {
			dropped++
			if firstErr == nil {
				firstErr = c.Err()
			}
		}
	}
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "first dropped session:", firstErr)
	}
	var m Metrics
	m.Add("sessions", float64(sessions))
	m.Add("setup_s", setup.Seconds())
	m.Add("sessions_per_s", perSecond(float64(sessions), setup))
	if b.sampler.enabled() {
		m.Add("server_rss_before_mb", float64(before.RSS)/(1<<20))
		m.Add("server_rss_after_mb", float64(after.RSS)/(1<<20))
		m.Add("server_rss_per_session_kb", float64(after.RSS-before.RSS)/1024/float64(sessions))
	}
	m.Add("held_s", w.elapsed().Seconds())
	m.Add("dropped", float64(dropped))
	w.addCPU(&m, b.sampler, "", 0)
	return m, nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
