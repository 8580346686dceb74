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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/presence"
	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/httpapi"
	"switchboard/xmpp/mam"
)

// AdminRequest is one command of the admin API. The same commands run
// against the admin socket of a running server, over the admin HTTP API
// and, with the server stopped, directly on the data file.
type AdminRequest = httpapi.Request

// AdminResponse answers an AdminRequest. A streaming command (an export)
// first sends responses with only Line set, one per line, then the final
// response.
type AdminResponse struct {
	OK     bool     `json:"ok"`
	Error  string   `json:"error,omitempty"`
	Result []string `json:"result,omitempty"`
	Line   *string  `json:"line,omitempty"`
}

// Admin commands.
const (
	CmdUserAdd    = "user.add"
	CmdUserPasswd = "user.passwd"
	CmdUserDel    = "user.del"
	CmdUserList   = "user.list"

	CmdPresenceSet   = httpapi.CmdPresenceSet
	CmdPresenceClear = httpapi.CmdPresenceClear

	CmdHistoryExport = httpapi.CmdHistoryExport
	CmdAuditList     = httpapi.CmdAuditList

	CmdRoomCreate  = "room.create"
	CmdRoomDestroy = "room.destroy"
)

// adminCommands are the commands RunCommand runs; any other is unknown.
var adminCommands = []string{
	CmdUserAdd, CmdUserPasswd, CmdUserDel, CmdUserList, CmdPresenceSet, CmdPresenceClear,
	CmdHistoryExport, CmdAuditList, CmdRoomCreate, CmdRoomDestroy,
}

// RoomAdmin creates and destroys rooms for admin commands.
type RoomAdmin interface {
	// CreateRoom creates room; name is its localpart as the admin typed
	// it (an issue key keeps its case: TEST-123).
	CreateRoom(ctx context.Context, room jid.JID, name string, owner jid.JID) error
	DestroyRoom(ctx context.Context, room jid.JID, reason string) error
}

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
	Archive   *store.Archive
	IDs       mam.IDCodec
	Rooms     RoomAdmin
	Audit     *store.Audit
	// AuditTargets, if not nil, limits audit.list to the entries whose
	// target it accepts (an HTTP admin sees their own host's).
	AuditTargets func(target string) bool
	// Emit receives the lines of a streaming command (an export); when
	// nil they are returned as the result.
	Emit func(line string) error
	// CloseUser ends a deleted account's sessions (nil when no server
	// runs).
	CloseUser func(host, local string)
}

// RunCommand executes an admin command and records it in the audit log
// (every command that changes something, and exports).
func RunCommand(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	res, detail, err := runCommand(ctx, b, req)
	if err != nil || b.Audit == nil {
		return res, err
	}
	switch req.Command {
	case CmdUserList, CmdAuditList:
		return res, nil
	}
	actor := req.Args["actor"]
	if actor == "" {
		actor = "admin"
	}
	target := req.Args["jid"]
	switch req.Command {
	case CmdHistoryExport:
		target = req.Args["archive"]
	case CmdRoomCreate, CmdRoomDestroy:
		target = req.Args["room"]
	}
	if _, aerr := b.Audit.Add(ctx, store.AuditEntry{Actor: actor, Action: req.Command, Target: target, Detail: detail}); aerr != nil {
		return res, fmt.Errorf("done, but the audit log failed: %w", aerr)
	}
	return res, nil
}

func runCommand(ctx context.Context, b Backend, req AdminRequest) ([]string, string, error) {
	res, err := runCommandResult(ctx, b, req)
	detail := ""
	switch req.Command {
	case CmdPresenceSet:
		detail = fmt.Sprintf("show=%q status=%q call=%q", req.Args["show"], req.Args["status"], req.Args["call"])
	case CmdHistoryExport:
		detail = fmt.Sprintf("with=%q since=%q until=%q format=%q", req.Args["with"], req.Args["since"], req.Args["until"], req.Args["format"])
	case CmdRoomCreate:
		detail = fmt.Sprintf("owner=%q", req.Args["owner"])
	case CmdRoomDestroy:
		detail = fmt.Sprintf("reason=%q", req.Args["reason"])
	}
	return res, detail, err
}

func runCommandResult(ctx context.Context, b Backend, req AdminRequest) ([]string, error) {
	if !slices.Contains(adminCommands, req.Command) {
		return nil, fmt.Errorf("unknown command %q", req.Command)
	}
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
	case CmdRoomCreate, CmdRoomDestroy:
		if b.Rooms == nil {
			return nil, errors.New("no rooms")
		}
		room, err := jid.Parse(req.Args["room"])
		if err != nil || room.Localpart() == "" || room.Resourcepart() != "" {
			return nil, fmt.Errorf("expected ROOM@SERVICE, got %q", req.Args["room"])
		}
		if req.Command == CmdRoomDestroy {
			return nil, b.Rooms.DestroyRoom(ctx, room, req.Args["reason"])
		}
		var owner jid.JID
		if o := req.Args["owner"]; o != "" {
			if owner, err = jid.Parse(o); err != nil {
				return nil, fmt.Errorf("invalid owner %q: %w", o, err)
			}
		}
		name, _, _ := strings.Cut(req.Args["room"], "@")
		return nil, b.Rooms.CreateRoom(ctx, room, name, owner)
	case CmdHistoryExport:
		if b.Archive == nil {
			return nil, errors.New("no archive")
		}
		now := time.Now()
		since, err := ParseTime(req.Args["since"], now)
		if err != nil {
			return nil, err
		}
		until, err := ParseTime(req.Args["until"], now)
		if err != nil {
			return nil, err
		}
		q := ExportQuery{Archive: req.Args["archive"], Since: since, Until: until}
		if q.Archive == "" {
			return nil, errors.New("name a user or a room to export")
		}
		if with := req.Args["with"]; with != "" {
			j, err := jid.Parse(with)
			if err != nil {
				return nil, fmt.Errorf("invalid --with %q: %w", with, err)
			}
			q.With = j.Bare().String()
		}
		arch, err := jid.Parse(q.Archive)
		if err != nil || arch.Localpart() == "" {
			// Archives are accounts' and rooms'; a bare domain has none.
			return nil, fmt.Errorf("expected USER@HOST or ROOM@SERVICE, got %q", q.Archive)
		}
		q.Archive = arch.Bare().String()
		var out []string
		emit := b.Emit
		if emit == nil {
			emit = func(l string) error { out = append(out, l); return nil }
		}
		if _, err := Export(ctx, b.Archive, b.IDs, q, req.Args["format"], emit); err != nil {
			return nil, err
		}
		return out, nil
	case CmdAuditList:
		if b.Audit == nil {
			return nil, errors.New("no audit log")
		}
		since, err := ParseTime(req.Args["since"], time.Now())
		if err != nil {
			return nil, err
		}
		limit := 1000
		if l := req.Args["limit"]; l != "" {
			if limit, err = strconv.Atoi(l); err != nil || limit < 1 {
				return nil, fmt.Errorf("invalid limit %q", l)
			}
		}
		var keep func(store.AuditEntry) bool
		if b.AuditTargets != nil {
			keep = func(e store.AuditEntry) bool { return b.AuditTargets(e.Target) }
		}
		entries, err := b.Audit.List(ctx, since, limit, keep)
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, len(entries))
		for _, e := range entries {
			out = append(out, fmt.Sprintf("%s\t%s\t%s\t%s\t%s", e.Time.UTC().Format(time.RFC3339), e.Actor, e.Action, e.Target, e.Detail))
		}
		return out, nil
	case CmdUserList:
		hosts := []string{req.Args["host"]}
		if j, err := jid.New("", hosts[0], ""); err == nil {
			// Normalised as the other commands' JIDs are: "LOCALHOST."
			// is localhost (RFC 7622 §3.2).
			hosts[0] = j.Domainpart()
		}
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

// adminGate owns the admin commands that run, over the socket or the
// HTTP API: Shutdown closes it and waits for the running ones before it
// stops what they use (the archive writer, the store), and a command
// that comes later is refused. Neither transport waits for its
// handlers on its own: net/http does not once http.Server.Close
// returns, and the socket's connections outlive their listener. The
// zero value is open.
type adminGate struct {
	mu      sync.Mutex
	closed  bool
	running int
	drained chan struct{} // made by close; closed once closed and running is 0
}

// enter reports whether a command may run; if so, leave must follow.
func (g *adminGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.running++
	return true
}

func (g *adminGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	if g.closed && g.running == 0 {
		close(g.drained)
	}
}

// close refuses later commands and waits for the running ones until ctx
// ends.
func (g *adminGate) close(ctx context.Context) error {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		g.drained = make(chan struct{})
		if g.running == 0 {
			close(g.drained)
		}
	}
	drained, done := g.drained, g.running == 0
	g.mu.Unlock()
	if done {
		// select picks at random among ready cases: with none running,
		// an ended ctx must not win.
		return nil
	}
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("admin commands still running: %w", ctx.Err())
	}
}

// adminServer serves the admin API on a Unix socket (mode 0600).
type adminServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	log   *slog.Logger
	mu    sync.Mutex
	conns map[net.Conn]struct{} // open connections, for close
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
	a := &adminServer{ln: ln, log: log, conns: map[net.Conn]struct{}{}}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			if a.conns == nil { // closed
				a.mu.Unlock()
				c.Close()
				return
			}
			a.conns[c] = struct{}{}
			a.wg.Add(1)
			a.mu.Unlock()
			go func() {
				defer a.wg.Done()
				a.serve(c, s)
				a.mu.Lock()
				delete(a.conns, c)
				a.mu.Unlock()
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
		if err := enc.Encode(a.handle(c, enc, s, sc.Bytes())); err != nil {
			return
		}
	}
}

// handle runs one request line and returns its final response; an export
// streams its lines to enc first.
func (a *adminServer) handle(c net.Conn, enc *json.Encoder, s *Server, line []byte) AdminResponse {
	var req AdminRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return AdminResponse{Error: "malformed request: " + err.Error()}
	}
	if !s.adminRuns.enter() {
		return AdminResponse{Error: "server shutting down"}
	}
	defer s.adminRuns.leave()
	backend := s.adminBackend()
	if req.Command == CmdHistoryExport {
		// Stream the lines; an export may be long.
		backend.Emit = func(l string) error {
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			return enc.Encode(AdminResponse{Line: &l})
		}
		// The export must include what was said until now.
		if err := s.flushArchive(context.Background()); err != nil {
			return AdminResponse{Error: err.Error()}
		}
	}
	res, err := RunCommand(context.Background(), backend, req)
	if err != nil {
		return AdminResponse{Error: err.Error()}
	}
	a.log.Info("admin command", "command", req.Command, xmpp.LogJID, req.Args["jid"])
	return AdminResponse{OK: true, Result: res}
}

// stopAccepting closes the listener: a connection already open can
// still run commands, until the gate closes.
func (a *adminServer) stopAccepting() { a.ln.Close() }

// close closes the listener and every connection (one waiting for its
// next request would otherwise hold on for its 30 s deadline), and waits
// for their goroutines until ctx ends. Call it once the gate is closed:
// a command still running then loses its connection.
func (a *adminServer) close(ctx context.Context) error {
	a.ln.Close()
	a.mu.Lock()
	for c := range a.conns {
		c.Close()
	}
	a.conns = nil
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("admin socket: %w", ctx.Err())
	}
}

// AdminCall sends one request to a running server's admin socket.
func AdminCall(ctx context.Context, path string, req AdminRequest) (AdminResponse, error) {
	return AdminCallStream(ctx, path, req, nil)
}

// AdminCallStream is AdminCall that hands streamed lines to onLine (or
// adds them to the result when onLine is nil).
func AdminCallStream(ctx context.Context, path string, req AdminRequest, onLine func(string) error) (AdminResponse, error) {
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
	dec := json.NewDecoder(bufio.NewReader(c))
	var lines []string
	for {
		resp = AdminResponse{}
		if err := dec.Decode(&resp); err != nil {
			return AdminResponse{}, fmt.Errorf("admin socket: %w", err)
		}
		if resp.Line == nil {
			break
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if onLine == nil {
			lines = append(lines, *resp.Line)
		} else if err := onLine(*resp.Line); err != nil {
			return AdminResponse{}, err
		}
	}
	resp.Result = append(lines, resp.Result...)
	if !resp.OK {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}
