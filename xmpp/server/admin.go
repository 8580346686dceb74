package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/presence"
	"switchboard/store"
	"switchboard/xmpp"
)

// AdminRequest is one command of the admin API. The same commands run
// against the admin socket of a running server and, with the server
// stopped, directly on the data file.
type AdminRequest struct {
	Command string            `json:"command"`
	Args    map[string]string `json:"args,omitempty"`
}

// AdminResponse answers an AdminRequest.
type AdminResponse struct {
	OK     bool     `json:"ok"`
	Error  string   `json:"error,omitempty"`
	Result []string `json:"result,omitempty"`
}

// Admin commands.
const (
	CmdUserAdd    = "user.add"
	CmdUserPasswd = "user.passwd"
	CmdUserDel    = "user.del"
	CmdUserList   = "user.list"

	CmdPresenceSet   = "presence.set"
	CmdPresenceClear = "presence.clear"
)

// Overrides sets and clears presence set from outside.
type Overrides interface {
	SetOverride(ctx context.Context, bare jid.JID, o store.PresenceOverride) error
	ClearOverride(ctx context.Context, bare jid.JID) error
}

// StoredOverrides sets overrides in the store only (the server is stopped;
// they apply at the user's next login).
type StoredOverrides struct{ Store *store.PresenceOverrides }

// SetOverride implements Overrides.
func (s StoredOverrides) SetOverride(ctx context.Context, bare jid.JID, o store.PresenceOverride) error {
	if err := presence.ValidateOverride(o); err != nil {
		return err
	}
	if o.Set.IsZero() {
		o.Set = time.Now()
	}
	return s.Store.Set(ctx, bare.String(), o)
}

// ClearOverride implements Overrides.
func (s StoredOverrides) ClearOverride(ctx context.Context, bare jid.JID) error {
	return s.Store.Clear(ctx, bare.String())
}

// Backend is what admin commands act on.
type Backend struct {
	Accounts  *Accounts
	Overrides Overrides
	// CloseUser ends a deleted account's sessions (nil when no server
	// runs).
	CloseUser func(host, local string)
}

// RunCommand executes an admin command.
func RunCommand(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	a, closeUser := b.Accounts, b.CloseUser
	split := func() (string, string, error) {
		local, host, ok := strings.Cut(req.Args["jid"], "@")
		if !ok || local == "" || host == "" || strings.Contains(host, "/") {
			return "", "", fmt.Errorf("expected USER@HOST, got %q", req.Args["jid"])
		}
		return host, local, nil
	}
	switch req.Command {
	case CmdUserAdd, CmdUserPasswd:
		host, local, err := split()
		if err != nil {
			return nil, err
		}
		if req.Command == CmdUserAdd {
			return nil, a.Create(ctx, host, local, req.Args["password"])
		}
		return nil, a.SetPassword(ctx, host, local, req.Args["password"])
	case CmdUserDel:
		host, local, err := split()
		if err != nil {
			return nil, err
		}
		if err := a.Delete(ctx, host, local); err != nil {
			return nil, err
		}
		if closeUser != nil {
			closeUser(host, local)
		}
		return nil, nil
	case CmdPresenceSet, CmdPresenceClear:
		host, local, err := split()
		if err != nil {
			return nil, err
		}
		local, host, err = a.Normalize(host, local)
		if err != nil {
			return nil, err
		}
		if ok, err := a.Exists(ctx, host, local); err != nil || !ok {
			return nil, fmt.Errorf("no account %s@%s", local, host)
		}
		bare, err := jid.New(local, host, "")
		if err != nil {
			return nil, err
		}
		if req.Command == CmdPresenceClear {
			return nil, b.Overrides.ClearOverride(ctx, bare)
		}
		return nil, b.Overrides.SetOverride(ctx, bare, store.PresenceOverride{
			Show: req.Args["show"], Status: req.Args["status"], CallState: req.Args["call"],
		})
	case CmdUserList:
		hosts := []string{req.Args["host"]}
		if hosts[0] == "" {
			hosts = a.Hosts()
		}
		var out []string
		for _, h := range hosts {
			users, err := a.List(ctx, h)
			if err != nil {
				return nil, err
			}
			for _, u := range users {
				out = append(out, u+"@"+h)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown command %q", req.Command)
}

// adminServer serves the admin API on a Unix socket (mode 0600).
type adminServer struct {
	ln  net.Listener
	wg  sync.WaitGroup
	log *slog.Logger
}

func startAdmin(path string, s *Server, log *slog.Logger) (*adminServer, error) {
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("server: admin socket %s is in use by another server", path)
	}
	_ = os.Remove(path) // a stale socket from a crash
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("server: admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("server: admin socket: %w", err)
	}
	a := &adminServer{ln: ln, log: log}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.serve(c, s)
			}()
		}
	}()
	log.Info("admin socket listening", "path", path)
	return a, nil
}

func (a *adminServer) serve(c net.Conn, s *Server) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), 64<<10)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req AdminRequest
		var resp AdminResponse
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "malformed request: " + err.Error()
		} else {
			res, err := RunCommand(context.Background(), Backend{Accounts: s.accounts, Overrides: s.presence, CloseUser: s.closeUserSessions}, req)
			if err != nil {
				resp.Error = err.Error()
			} else {
				resp.OK, resp.Result = true, res
				a.log.Info("admin command", "command", req.Command, xmpp.LogJID, req.Args["jid"])
			}
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

func (a *adminServer) close() {
	a.ln.Close()
	a.wg.Wait()
}

// AdminCall sends one request to a running server's admin socket.
func AdminCall(ctx context.Context, path string, req AdminRequest) (AdminResponse, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return AdminResponse{}, fmt.Errorf("admin socket %s: %w", path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	b, err := json.Marshal(req)
	if err != nil {
		return AdminResponse{}, err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return AdminResponse{}, fmt.Errorf("admin socket: %w", err)
	}
	var resp AdminResponse
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		return AdminResponse{}, fmt.Errorf("admin socket: %w", err)
	}
	if !resp.OK {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}
