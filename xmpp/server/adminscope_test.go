package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp/config"
	"switchboard/xmpp/httpapi"
)

// Every admin command has its host scope decided: none reaches
// scopeToHost's refusal of commands added without one, which a name
// outside adminCommands does not reach either (RunCommand refuses it).
func TestScopeToHostCoversEveryCommand(t *testing.T) {
	s := &Server{cfg: config.Config{Hosts: []config.Host{config.HostDefaults("localhost")}}}
	for _, cmd := range adminCommands {
		if err := s.scopeToHost(cmd, map[string]string{}, "localhost"); err != nil {
			t.Errorf("%s: %v", cmd, err)
		}
	}
	if err := s.scopeToHost("no.such", map[string]string{}, "localhost"); err != nil {
		t.Errorf("unknown command: %v", err)
	}
	saved := adminCommands
	t.Cleanup(func() { adminCommands = saved })
	adminCommands = append(append([]string{}, saved...), "new.command")
	if err := s.scopeToHost("new.command", map[string]string{}, "localhost"); !errors.Is(err, httpapi.ErrForbidden) {
		t.Errorf("a command with no scope: %v, want ErrForbidden", err)
	}
}

// The admin commands' gate: close gives up on a running command when its
// context ends (with none running it returns at once, whatever the
// context), and refuses the commands that come after it (that close waits
// for a running command is TestShutdownWaitsForAdminHTTPCommands).
func TestAdminGate(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var idle adminGate
	if err := idle.close(ctx); err != nil {
		t.Fatalf("close with no command running: %v", err)
	}
	var g adminGate
	if !g.enter() {
		t.Fatal("enter on an open gate refused")
	}
	if err := g.close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("close with a command running and ctx done: %v, want context.Canceled", err)
	}
	if g.enter() {
		t.Fatal("enter after close allowed")
	}
	g.leave()
	if err := g.close(t.Context()); err != nil {
		t.Fatalf("close after the command left: %v", err)
	}
	s := &Server{}
	s.adminRuns.closed = true
	if _, err := s.runAdminHTTP(t.Context(), jid.MustParse("boss@localhost"), httpapi.Request{Command: CmdUserList}, nil); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("a command over HTTP after shutdown: %v, want store.ErrClosed (503)", err)
	}
	a := &adminServer{log: slog.New(slog.DiscardHandler)}
	if resp := a.handle(nil, nil, s, []byte(`{"command":"user.list"}`)); resp.OK || !strings.Contains(resp.Error, "shutting down") {
		t.Fatalf("a command over the socket after shutdown: %+v, want refused", resp)
	}
}

// startForShutdown starts a server with c2s on a free port, the admin
// socket at socket and the admin HTTP API at http ("" for none); the
// test shuts it down.
func startForShutdown(t *testing.T, socket, http string) *Server {
	t.Helper()
	cfg := config.Defaults()
	cfg.Server.DataDir = t.TempDir()
	cfg.Listen.AdminSocket = socket
	cfg.Listen.C2S, cfg.Listen.C2STLS, cfg.Listen.HTTP = "127.0.0.1:0", "", http
	s, err := New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// A connection to the admin socket that waits for its next request does
// not hold Shutdown for its 30 s deadline.
func TestShutdownClosesIdleAdminSocketConnections(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	s := startForShutdown(t, sock, "")
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := AdminCall(t.Context(), sock, AdminRequest{Command: CmdUserList}); err != nil {
		t.Fatalf("admin socket before shutdown: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown still waits for an idle admin socket connection after 10 s")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the idle admin connection is still open after Shutdown")
	}
}

// Shutdown waits for an admin HTTP command still running before it stops
// what commands use (the archive writer, the store), and waits for one
// that does not end only adminCloseGrace: the rest of the shutdown
// still runs.
func TestShutdownWaitsForAdminHTTPCommands(t *testing.T) {
	for _, ends := range []bool{true, false} {
		t.Run(map[bool]string{true: "command ends", false: "command never ends"}[ends], func(t *testing.T) {
			s := startForShutdown(t, config.DisabledSocket, "127.0.0.1:0")
			if !s.adminRuns.enter() { // a command the API is running
				t.Fatal("the gate of a running server is closed")
			}
			done := make(chan error, 1)
			go func() { done <- s.Shutdown(context.Background()) }()
			select {
			case err := <-done:
				t.Fatalf("Shutdown returned %v while a command ran", err)
			case <-time.After(adminCloseGrace / 4):
			}
			if _, err := s.db.Users().List(t.Context(), "localhost"); err != nil {
				t.Fatalf("the store, while a command runs: %v", err)
			}
			if !ends {
				if err := <-done; err == nil || !strings.Contains(err.Error(), "admin commands still running") {
					t.Fatalf("Shutdown past the grace: %v, want the commands still running named", err)
				}
				if _, err := s.db.Users().List(t.Context(), "localhost"); !errors.Is(err, store.ErrClosed) {
					t.Fatalf("the store after Shutdown: %v, want ErrClosed", err)
				}
				s.adminRuns.leave()
				return
			}
			s.adminRuns.leave()
			if err := <-done; err != nil {
				t.Fatalf("Shutdown after the command ended: %v", err)
			}
		})
	}
}
