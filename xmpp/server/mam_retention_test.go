package server

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"switchboard/store"
	"switchboard/xmpp/config"
)

// TestMAMRetention covers the archive retention job (retention.go) as the
// server runs it: with archive_retention_days = 1 on one host, records of
// that host's archives older than a day are deleted at start and then
// every hour, newer ones are kept until they age, conversations left
// without records leave the conversation list, and the archives of a host
// with 0 days keep everything.
//
// The test runs in a synctest bubble, whose fake clock moves only while
// every goroutine of the bubble waits: the server's own writer archives
// each record at its time, the job runs on the server's ticker, and
// synctest.Wait returns once a pass is over. No listener is opened (the
// bubble cannot wait on sockets); end-to-end archive behaviour is in
// e2e_mam_test.go.
func TestMAMRetention(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		cfg := config.Defaults()
		cfg.Server.DataDir = dir
		cfg.Listen.AdminSocket = config.DisabledSocket
		cfg.SetDomains([]string{"short.example", "forever.example"})
		cfg.Hosts[0].ArchiveRetentionDays = 1
		s, err := New(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := s.Shutdown(ctx); err != nil {
				t.Error(err)
			}
		}()
		s.archiveWriter.Start(ctx)

		const (
			alice = "alice@short.example"
			bob   = "bob@short.example"
			carol = "carol@forever.example"
			dave  = "dave@forever.example"
		)
		start := time.Now()
		recs := []struct {
			archive, with string
			at            time.Duration // archived at start+at
		}{
			{alice, bob, 0},
			{carol, dave, 0},
			{bob, alice, 0},
			{alice, carol, time.Hour},
			{alice, bob, 36 * time.Hour},
			{carol, alice, 36 * time.Hour},
		}
		ids := make([]uint64, len(recs))
		for i, r := range recs {
			time.Sleep(time.Until(start.Add(r.at)))
			ids[i], err = s.archiveWriter.Append(store.ArchiveRecord{
				Archive: r.archive, With: r.with, Stanza: []byte("<message type='chat'><body>hi</body></message>"),
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := s.archiveWriter.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		archive := s.db.Archive()
		check := func(when string, kept ...bool) {
			t.Helper()
			for i, r := range recs {
				_, err := archive.Get(ctx, r.archive, ids[i])
				if got := err == nil; got != kept[i] {
					t.Errorf("%s: record %d (%s with %s, archived at +%s) kept: %t, want %t (%v)", when, i, r.archive, r.with, r.at, got, kept[i], err)
				}
			}
		}
		// The XEP-0059 counts follow expiry: the archive counters are
		// updated in the transaction that deletes the records.
		counts := func(when string) {
			t.Helper()
			n := map[[2]string]int{}
			for _, r := range recs {
				n[[2]string{r.archive, ""}] = 0
				n[[2]string{r.archive, r.with}] = 0
			}
			for i, r := range recs {
				if _, err := archive.Get(ctx, r.archive, ids[i]); err == nil {
					n[[2]string{r.archive, ""}]++
					n[[2]string{r.archive, r.with}]++
				}
			}
			for k, want := range n {
				page, err := archive.Query(ctx, store.ArchiveQuery{Archive: k[0], With: k[1], WantCount: true})
				if err != nil || page.Count != want {
					t.Errorf("%s: count of %s with %q = %d, %v; want %d", when, k[0], k[1], page.Count, err, want)
				}
			}
		}
		conversations := func(when, archiveOf string, want ...string) {
			t.Helper()
			convs, err := archive.Conversations(ctx, archiveOf, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range convs {
				got = append(got, c.With)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s's conversations %q, want %q", when, archiveOf, got, want)
			}
		}

		// The server starts two days after the first records.
		time.Sleep(time.Until(start.Add(48 * time.Hour)))
		jobs, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.retention(jobs)
		}()
		defer func() {
			stop()
			<-done
		}()
		synctest.Wait()
		check("at start", false, true, false, false, true, true)
		counts("at start")
		conversations("at start", alice, bob)
		conversations("at start", bob)
		conversations("at start", carol, alice, dave)

		// Hourly passes: the record of +36h is exactly a day old at +60h
		// and still kept, older than a day at the pass of +61h.
		time.Sleep(12 * time.Hour)
		synctest.Wait()
		check("a day after the newest record", false, true, false, false, true, true)
		time.Sleep(time.Hour)
		synctest.Wait()
		check("an hour later", false, true, false, false, false, true)
		counts("an hour later")
		conversations("an hour later", alice)
		conversations("an hour later", carol, alice, dave)
	})
}
