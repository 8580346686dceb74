package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
)

func (b *bench) loginCmd() *cobra.Command {
	var logins int
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Full connect + authenticate + bind cycles: logins/s and latency",
		Long: `Runs --logins complete logins (TCP connect, optional STARTTLS, SASL, stream
restart, resource bind) on --concurrency parallel workers (default 8), each
closing its stream before the next login. Accounts are used in turn.
Reports logins/s, latency percentiles of connect-to-bound, errors and, with
--pid, the server's CPU per login.

With SCRAM and --scram-cache (the default) each account used logs in once
before the measurement, unmeasured: the client derives its keys there
(PBKDF2, once per account, as a real client does), not while the server's
logins are timed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if logins < 1 {
				return errors.New("--logins must be at least 1")
			}
			m, err := b.runLogin(cmd.Context(), logins)
			if err != nil {
				return err
			}
			return b.report("login", map[string]any{"logins": logins}, m)
		},
	}
	cmd.Flags().IntVar(&logins, "logins", 1000, "total number of logins")
	return cmd
}

func (b *bench) runLogin(ctx context.Context, logins int) (Metrics, error) {
	if err := b.registerAll(ctx, b.users); err != nil {
		return nil, err
	}
	conc := b.conc(8)
	if err := b.warmSCRAM(ctx, min(b.users, logins), conc); err != nil {
		return nil, err
	}
	var lat Histogram
	var next, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	w := b.sampler.begin()
	for worker := range min(conc, logins) {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				if k >= logins {
					return
				}
				start := time.Now()
				c, err := Login(ctx, &b.cfg, b.user(k%b.users), "l"+strconv.Itoa(worker)+"-"+strconv.Itoa(k))
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				lat.Record(time.Since(start))
				c.Start(discard)
				_ = c.Close(5 * time.Second)
			}
		})
	}
	wg.Wait()
	w.finish(b.sampler)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "first login error:", firstErr)
	}
	ok := float64(lat.Count())
	var m Metrics
	m.Add("logins_ok", ok)
	m.Add("errors", float64(failed.Load()))
	m.Add("elapsed_s", w.elapsed().Seconds())
	m.Add("logins_per_s", perSecond(ok, w.elapsed()))
	m.AddLatency("login_latency", &lat)
	w.addCPU(&m, b.sampler, "login", ok)
	return m, nil
}

// warmSCRAM logs accounts 0..n-1 in once each, so that the SCRAM key cache
// holds their keys before logins are measured.
func (b *bench) warmSCRAM(ctx context.Context, n, conc int) error {
	if !b.scramCache || b.cfg.Mech == mechPlain {
		return nil
	}
	err := parallel(ctx, n, conc, func(i int) error {
		c, err := Login(ctx, &b.cfg, b.user(i), "warm"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		c.Start(discard)
		_ = c.Close(5 * time.Second)
		return nil
	})
	if err != nil {
		return fmt.Errorf("warm-up login: %w", err)
	}
	return nil
}
