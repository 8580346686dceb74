package server

import (
	"errors"
	"testing"

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
