package server

import (
	"context"
	"errors"
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

// The admin HTTP API's gate: close waits for a running command (until its
// context ends), and refuses the commands that come after it.
func TestAdminHTTPRunGate(t *testing.T) {
	var g runGate
	if !g.enter() {
		t.Fatal("enter on an open gate refused")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := g.close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("close with a command running and ctx done: %v, want context.Canceled", err)
	}
	if g.enter() {
		t.Fatal("enter after close allowed")
	}
	closed := make(chan error, 1)
	go func() { closed <- g.close(t.Context()) }()
	select {
	case err := <-closed:
		t.Fatalf("close returned %v with a command running", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.leave()
	if err := <-closed; err != nil {
		t.Fatalf("close after the command left: %v", err)
	}
	s := &Server{}
	s.adminHTTPRuns.closed = true
	if _, err := s.runAdminHTTP(t.Context(), jid.MustParse("boss@localhost"), httpapi.Request{Command: CmdUserList}, nil); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("a command after shutdown: %v, want store.ErrClosed (503)", err)
	}
}
