package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/auth"
	"switchboard/xmpp/bosh"
	"switchboard/xmpp/hostmeta"
	"switchboard/xmpp/httpapi"
	"switchboard/xmpp/upload"
	"switchboard/xmpp/ws"
)

// startHTTP serves the web features over TLS on ln: the admin HTTP API
// (xmpp/httpapi; the admin commands, run as the host admin who
// authenticated), client streams over WebSocket (xmpp/ws, RFC 7395) and
// BOSH (xmpp/bosh, XEP-0206), their XEP-0156 discovery (xmpp/hostmeta),
// and HTTP File Upload (xmpp/upload, XEP-0363) under /upload/.
func (s *Server) startHTTP(ln net.Listener) (*http.Server, error) {
	decoy, err := auth.Derive(rand.Text(), 0)
	if err != nil {
		return nil, fmt.Errorf("server: admin API: %w", err)
	}
	lim := s.cfg.Limits
	h, err := httpapi.New(httpapi.Options{
		FailureDelay: lim.AuthFailureDelay.Duration(), FailureMaxDelay: lim.AuthFailureMaxDelay.Duration(), Logger: s.log,
	}, httpapi.Deps{
		Authenticate: func(ctx context.Context, user, password string) (jid.JID, bool) {
			return s.authenticateAdmin(ctx, user, password, decoy.SHA256)
		},
		Run: s.runAdminHTTP,
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	// The stream's own limit applies to what a message holds; MaxMessage
	// bounds what is buffered before it can.
	mux.Handle(ws.Path, ws.NewHandler(ws.Options{MaxMessage: lim.MaxStanzaSize + 1024, Logger: s.log}, s.c2s.ServeConn))
	links := []hostmeta.Link{{Rel: ws.RelWebSocket, WebSocket: true, Path: ws.Path}}
	var bh *bosh.Handler
	if bc := s.cfg.BOSH; bc.Enabled {
		bh = bosh.NewHandler(bosh.Options{
			MaxWait: bc.MaxWait.Duration(), Inactivity: bc.Inactivity.Duration(), MaxBody: bc.MaxBodySize,
			IsHost: s.servesDomain, Logger: s.log,
		}, s.c2s.ServeConn)
		mux.Handle(bosh.Path, bh)
		links = append(links, hostmeta.Link{Rel: bosh.RelXBOSH, Path: bosh.Path})
	}
	mux.Handle("GET /.well-known/host-meta", hostmeta.Handler(links...))
	mux.Handle("GET /.well-known/host-meta.json", hostmeta.Handler(links...))
	if s.upload != nil {
		mux.Handle(upload.PathPrefix, s.upload)
	}
	hs := &http.Server{
		Handler:           mux,
		TLSConfig:         s.tls.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if bh != nil {
		// Held requests are answered (system-shutdown) as the shutdown
		// begins, which would otherwise wait for their 'wait' to pass.
		hs.RegisterOnShutdown(bh.Close)
	}
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		if err := hs.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("listener stopped", "listener", "http", xmpp.LogErr, err)
		}
	}()
	return hs, nil
}

// servesDomain reports whether domain, normalised as a JID's domainpart,
// is one of the hosts: a BOSH session for another ends with host-unknown.
func (s *Server) servesDomain(domain string) bool {
	if s.router.IsLocal(domain) {
		return true
	}
	j, err := jid.New("", domain, "")
	return err == nil && s.router.IsLocal(j.Domainpart())
}

// authenticateAdmin checks that user is the bare JID of an admin of its
// host and password its password (SCRAM-SHA-256 credentials). Anyone else
// is checked against decoy, so that timing tells nothing about who is an
// admin or has an account.
func (s *Server) authenticateAdmin(ctx context.Context, user, password string, decoy auth.Credential) (jid.JID, bool) {
	j, err := jid.Parse(user)
	isAdmin := err == nil && j.Localpart() != "" && j.Resourcepart() == ""
	if isAdmin {
		host, ok := s.cfg.Host(j.Domainpart())
		isAdmin = ok && slices.Contains(host.Admins, j.String())
	}
	c := decoy
	if isAdmin {
		creds, err := s.accounts.Lookup(ctx, j.Domainpart(), j.Localpart())
		if err == nil {
			c = creds.SHA256
		} else {
			isAdmin = false
		}
	}
	if !auth.Verify(c, sha256.New, password) || !isAdmin {
		return jid.JID{}, false
	}
	return j, true
}

// runAdminHTTP runs an admin command for the HTTP API as admin (the
// audit log's actor, whatever the request says).
func (s *Server) runAdminHTTP(ctx context.Context, admin jid.JID, req httpapi.Request, emit func(string) error) ([]string, error) {
	if !s.adminRuns.enter() {
		return nil, fmt.Errorf("server: shutting down: %w", store.ErrClosed)
	}
	defer s.adminRuns.leave()
	cmd, err := lookupCommand(req.Command)
	if err != nil {
		return nil, err
	}
	args := make(map[string]string, len(req.Args)+1)
	for k, v := range req.Args {
		args[k] = v
	}
	args["actor"] = admin.String()
	b := s.adminBackend()
	if err := s.scopeToHost(req.Command, cmd, args, admin.Domainpart(), &b); err != nil {
		return nil, err
	}
	return s.runAdmin(ctx, cmd, b, AdminRequest{Command: req.Command, Args: args}, emit)
}

// hostOf is the host a domain, normalised as a JID's is (RFC 7622:
// "EXAMPLE.org." is example.org), belongs to: the domain itself if it is
// a configured host, or the host whose room service it is; "" if none.
func (s *Server) hostOf(domain string) string {
	if s.router.IsLocal(domain) {
		return domain
	}
	if svc, ok := s.mucHosts[domain]; ok {
		return svc.host
	}
	return ""
}

// auditScope keeps an audit listing to the entries whose target is a JID
// of host (Backend.AuditTargets). It runs for every entry the listing
// reads, so what it learns is kept for the listing: the host each domain,
// as written, belongs to, and whether each target of host's is a JID
// (its other parts can make it none). Those targets are at most about
// the listing's limit, since it keeps them. Not for concurrent use.
func (s *Server) auditScope(host string) func(target string) bool {
	hosts := map[string]string{} // domainpart as written → its host
	isJID := map[string]bool{}   // host's targets
	return func(target string) bool {
		_, domain, _, err := jid.SplitString(target)
		if err != nil {
			return false
		}
		h, known := hosts[domain]
		if !known {
			if d, err := jid.New("", domain, ""); err == nil {
				h = s.hostOf(d.Domainpart())
			}
			hosts[domain] = h
		}
		if h != host {
			return false
		}
		ok, known := isJID[target]
		if !known {
			_, err := jid.Parse(target)
			ok = err == nil
			isJID[target] = ok
		}
		return ok
	}
}

// scopeToHost keeps an admin of host to host's accounts, archives and
// rooms (the admin socket, local to the machine, is not scoped): a JID
// the command name (described by cmd) acts on may not belong to another
// configured host, user.list without a host lists host's accounts, and
// an audit listing keeps to host's entries (b.AuditTargets).
func (s *Server) scopeToHost(name string, cmd adminCommand, args map[string]string, host string, b *Backend) error {
	switch cmd.scope {
	case scopeJID: // checked below
	case scopeHost:
		if args[cmd.target] == "" {
			args[cmd.target] = host
		}
	case scopeAuditLog:
		b.AuditTargets = s.auditScope(host)
		return nil
	default:
		// A command added later is refused here until its scope is
		// decided, rather than run for every host.
		return fmt.Errorf("%s is not scoped to a host: %w", name, httpapi.ErrForbidden)
	}
	// A JID must be of host: another configured host's, or one of no
	// configured host (an archive left by a host since removed from the
	// configuration), is refused. What is not a JID of the kind the
	// command takes (an account, archive or room has a localpart; a host
	// has only a domain) is left to the command, which refuses it.
	key := cmd.target
	j, err := jid.Parse(args[key])
	if err != nil {
		return nil
	}
	if ofKind := (j.Localpart() != "") == (cmd.scope == scopeJID); !ofKind {
		return nil
	}
	if s.hostOf(j.Domainpart()) != host {
		return fmt.Errorf("%s %q is not of %s: %w", key, args[key], host, httpapi.ErrForbidden)
	}
	return nil
}

// adminBackend is what admin commands act on in a running server.
func (s *Server) adminBackend() Backend {
	return Backend{Accounts: s.accounts, VCards: s.db.VCards(), VCardMaxBytes: s.cfg.Directory.VCardMaxBytes,
		Overrides: s.presence, CloseUser: s.closeUserSessions,
		Archive: s.db.Archive(), IDs: s.archiveIDs, Audit: s.db.Audit(), Rooms: runningRooms{s}}
}

// archiveFlushWait bounds how long an export waits for the archive writer.
const archiveFlushWait = 10 * time.Second

// flushArchive writes what the archive writer holds, so that an export
// includes what was said until now (bounded: an archive that cannot be
// written gives no export rather than an incomplete one).
func (s *Server) flushArchive(ctx context.Context) error {
	return flushWithin(ctx, archiveFlushWait, s.archiveWriter.Flush, s.log)
}

// flushWithin runs flush for at most wait. Its error is wrapped only when
// it is this request's (cancelled or out of time: a 503); a commit's error
// comes from others' messages, and is the server's own whatever its kind.
func flushWithin(ctx context.Context, wait time.Duration, flush func(context.Context) error, log *slog.Logger) error {
	fctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := flush(fctx)
	switch {
	case err == nil:
		return nil
	case fctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		// The wait ended, not a commit (whose error may wrap a
		// context's too, when the writer stops).
		if ctx.Err() == nil {
			// Our own bound, not the caller's: the archive writer is
			// behind or stuck, which the operator should hear of.
			log.Warn("archive: an export gave up waiting for the archive writer", "wait", wait)
		}
		return fmt.Errorf("archive not written: %w", err)
	default:
		return fmt.Errorf("archive not written: %v", err)
	}
}
