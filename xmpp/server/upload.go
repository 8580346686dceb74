package server

import (
	"context"
	"fmt"
	"net"
	"time"

	"switchboard/xmpp"
	"switchboard/xmpp/disco"
	"switchboard/xmpp/upload"
)

// uploadCleanupInterval is how often expired uploads and unused slots
// are deleted.
const uploadCleanupInterval = time.Hour

// uploadComponent is a host's upload service.
type uploadComponent struct {
	*upload.Component
	host string
}

// buildUpload creates the file store of HTTP File Upload (XEP-0363) and
// each host's upload service, registered with the router. Without the
// HTTPS listener, which serves the files, there is none.
func (s *Server) buildUpload() error {
	if s.cfg.Listen.HTTP == "" {
		return nil
	}
	svc, err := upload.New(upload.Options{
		Dir: s.cfg.UploadDir(), MaxFileSize: s.cfg.Upload.MaxFileSize, Quota: s.cfg.Upload.Quota,
		ExpireAfter: s.cfg.Upload.ExpireAfter.Duration(), Logger: s.log,
	}, upload.Deps{Slots: s.db.Uploads(), Router: s.router})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	for _, h := range s.cfg.Hosts {
		domain := h.ServiceDomain(h.UploadDomain, "upload")
		if domain == "" {
			continue
		}
		c := svc.NewComponent(domain, h.Domain)
		if err := s.router.AddComponent(c); err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.uploads = append(s.uploads, uploadComponent{Component: c, host: h.Domain})
	}
	if len(s.uploads) > 0 {
		s.upload = svc
	}
	return nil
}

// setUploadURLs gives each upload service the base of its URLs, once the
// HTTPS listener is bound at addr.
func (s *Server) setUploadURLs(addr net.Addr) {
	port := 0
	if tcp, ok := addr.(*net.TCPAddr); ok {
		port = tcp.Port
	}
	for _, u := range s.uploads {
		u.SetBaseURL(s.cfg.UploadBaseURL(u.host, port))
	}
}

// uploadItems lists a host's upload service for disco#items.
func (s *Server) uploadItems(host string) []disco.Item {
	var out []disco.Item
	for _, u := range s.uploads {
		if u.host == host {
			out = append(out, disco.Item{JID: u.Domain(), Name: "HTTP File Upload"})
		}
	}
	return out
}

// uploadCleanup deletes expired uploads and unused slots now and then
// every uploadCleanupInterval, until ctx ends.
func (s *Server) uploadCleanup(ctx context.Context) {
	if s.upload == nil {
		return
	}
	every(ctx, uploadCleanupInterval, func(ctx context.Context) {
		n, err := s.upload.Cleanup(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("upload cleanup failed", xmpp.LogErr, err)
		}
		if n > 0 {
			s.log.Info("upload cleanup: deleted uploads", "count", n)
		}
	})
}
