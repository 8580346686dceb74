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

	"switchboard/xmpp"
	"switchboard/xmpp/auth"
	"switchboard/xmpp/httpapi"
)

// startAdminHTTP serves the admin HTTP API (xmpp/httpapi) over TLS on ln:
// the admin commands, run as the host admin who authenticated.
func (s *Server) startAdminHTTP(ln net.Listener) (*http.Server, error) {
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
	hs := &http.Server{
		Handler:           h,
		TLSConfig:         s.tls.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
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
	args := make(map[string]string, len(req.Args)+1)
	for k, v := range req.Args {
		args[k] = v
	}
	args["actor"] = admin.String()
	b := s.adminBackend()
	if req.Command == CmdHistoryExport {
		if err := s.flushArchive(ctx); err != nil {
			return nil, err
		}
		b.Emit = emit
	}
	return RunCommand(ctx, b, AdminRequest{Command: req.Command, Args: args})
}

// adminBackend is what admin commands act on in a running server.
func (s *Server) adminBackend() Backend {
	return Backend{Accounts: s.accounts, Overrides: s.presence, CloseUser: s.closeUserSessions,
		Archive: s.db.Archive(), IDs: s.archiveIDs, Audit: s.db.Audit(), Rooms: runningRooms{s}}
}

// flushArchive writes what the archive writer holds, so that an export
// includes what was said until now (bounded: an archive that cannot be
// written gives no export rather than an incomplete one).
func (s *Server) flushArchive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.archiveWriter.Flush(ctx); err != nil {
		s.log.Error("admin export: flush", xmpp.LogErr, err)
		return fmt.Errorf("archive not written: %w", err)
	}
	return nil
}
