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
	if !s.adminRuns.enter() {
		return nil, fmt.Errorf("server: shutting down: %w", store.ErrClosed)
	}
	defer s.adminRuns.leave()
	args := make(map[string]string, len(req.Args)+1)
	for k, v := range req.Args {
		args[k] = v
	}
	args["actor"] = admin.String()
	if err := s.scopeToHost(req.Command, args, admin.Domainpart()); err != nil {
		return nil, err
	}
	b := s.adminBackend()
	b.AuditTargets = func(target string) bool { return s.hostOf(target) == admin.Domainpart() }
	if req.Command == CmdHistoryExport {
		if err := s.flushArchive(ctx); err != nil {
			return nil, err
		}
		b.Emit = emit
	}
	return RunCommand(ctx, b, AdminRequest{Command: req.Command, Args: args})
}

// hostOf is the host a JID argument belongs to: its domain, or the host
// whose room service it is, after the normalisation the commands apply
// (RFC 7622: "EXAMPLE.org." is example.org). "" if it is not a JID or no
// configured host owns it.
func (s *Server) hostOf(arg string) string {
	j, err := jid.Parse(arg)
	if err != nil {
		return ""
	}
	domain := j.Domainpart()
	if _, ok := s.cfg.Host(domain); ok {
		return domain
	}
	if svc, ok := s.mucHosts[domain]; ok {
		return svc.host
	}
	return ""
}

// scopeToHost keeps an admin of host to host's accounts, archives and
// rooms (the admin socket, local to the machine, is not scoped): a JID a
// command names may not belong to another configured host, and
// user.list without a host lists host's accounts.
func (s *Server) scopeToHost(command string, args map[string]string, host string) error {
	key := ""
	switch command {
	case CmdUserAdd, CmdUserPasswd, CmdUserDel, CmdPresenceSet, CmdPresenceClear:
		key = "jid"
	case CmdHistoryExport:
		key = "archive"
	case CmdRoomCreate, CmdRoomDestroy:
		key = "room"
	case CmdUserList:
		if args["host"] == "" {
			args["host"] = host
		}
		key = "host"
	case CmdAuditList:
		return nil // scoped by Backend.AuditTargets
	default:
		// A command added later is refused here until its scope is
		// decided, rather than run for every host. Unknown commands
		// are the command runner's to refuse.
		if slices.Contains(adminCommands, command) {
			return fmt.Errorf("%s is not scoped to a host: %w", command, httpapi.ErrForbidden)
		}
		return nil
	}
	// A JID must be of host: another configured host's, or one of no
	// configured host (an archive left by a host since removed from the
	// configuration), is refused. What is not a JID of the kind the
	// command takes (an account, archive or room has a localpart; a host
	// has only a domain) is left to the command, which refuses it.
	if j, err := jid.Parse(args[key]); err == nil && (j.Localpart() != "") == (key != "host") && s.hostOf(args[key]) != host {
		return fmt.Errorf("%s %q is not of %s: %w", key, args[key], host, httpapi.ErrForbidden)
	}
	return nil
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
