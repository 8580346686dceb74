package server

import (
	"context"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
)

// retentionInterval is how often archived messages past their host's
// retention are deleted.
const retentionInterval = time.Hour

// retention deletes archived messages older than their host's
// archive_retention_days, now and then every retentionInterval, in
// bounded transactions so that it never stalls archiving.
func (s *Server) retention(ctx context.Context) {
	days := map[string]int{}
	for _, h := range s.cfg.Hosts {
		if h.ArchiveRetentionDays > 0 {
			days[h.Domain] = h.ArchiveRetentionDays
		}
	}
	if len(days) == 0 {
		return
	}
	every(ctx, retentionInterval, func(ctx context.Context) { s.expireArchives(ctx, days) })
}

// every runs job now and then every d until ctx ends.
func every(ctx context.Context, d time.Duration, job func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		job(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) expireArchives(ctx context.Context, days map[string]int) {
	now := time.Now()
	shortest := 0
	for _, d := range days {
		if shortest == 0 || d < shortest {
			shortest = d
		}
	}
	latest := now.AddDate(0, 0, -shortest)
	cutoff := func(archive string) time.Time {
		j, err := jid.Parse(archive)
		if err != nil {
			return time.Time{}
		}
		domain := j.Domainpart()
		if svc, ok := s.mucHosts[domain]; ok {
			if svc.issues {
				return time.Time{} // an issue's history lives as long as the issue
			}
			domain = svc.host // a room's archive follows its host's retention
		}
		if d, ok := days[domain]; ok {
			return now.AddDate(0, 0, -d)
		}
		return time.Time{}
	}
	var after uint64
	total := 0
	for ctx.Err() == nil {
		n, next, err := s.db.Archive().ExpireFunc(ctx, latest, after, 1000, cutoff)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("archive retention failed", xmpp.LogErr, err)
			}
			return
		}
		total += n
		if next == 0 {
			break
		}
		after = next
	}
	if total > 0 {
		s.log.Info("archive retention: expired messages", "count", total)
	}
}
