package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp/config"
	"switchboard/xmpp/httpapi"
)

// scopeServer is a server (not started) for the hosts localhost and
// example.org, each with its default room service (conference.HOST).
func scopeServer(t testing.TB) *Server {
	t.Helper()
	cfg := config.Defaults()
	cfg.Server.DataDir = t.TempDir()
	cfg.Hosts = append(cfg.Hosts, config.HostDefaults("example.org"))
	s, err := New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	for _, svc := range []string{"conference.localhost", "conference.example.org"} {
		if _, ok := s.mucHosts[svc]; !ok {
			t.Fatalf("no room service %s", svc)
		}
	}
	return s
}

// Every admin command has its host scope decided and names its target
// (the audit entry's, and what the scope checks); one added without a
// scope is refused over HTTP rather than run for every host, and a name
// outside adminCommands is refused where a request enters.
func TestScopeToHostCoversEveryCommand(t *testing.T) {
	s := scopeServer(t)
	for name, cmd := range adminCommands {
		if cmd.scope == scopeUndecided {
			t.Errorf("%s: no host scope", name)
		}
		if cmd.target == "" && (cmd.scope != scopeAuditLog || !cmd.noAudit) {
			t.Errorf("%s: no target argument", name)
		}
		var b Backend
		if err := s.scopeToHost(name, cmd, map[string]string{}, "localhost", &b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if (b.AuditTargets != nil) != (cmd.scope == scopeAuditLog) {
			t.Errorf("%s: audit listing scoped: %v, want %v", name, b.AuditTargets != nil, cmd.scope == scopeAuditLog)
		}
	}
	if err := s.scopeToHost("new.command", adminCommand{target: "jid"}, map[string]string{}, "localhost", &Backend{}); !errors.Is(err, httpapi.ErrForbidden) {
		t.Errorf("a command with no scope: %v, want ErrForbidden", err)
	}
	for _, tc := range []struct {
		name string
		run  func(AdminRequest) ([]string, error)
	}{
		{"RunCommand", func(req AdminRequest) ([]string, error) { return RunCommand(t.Context(), Backend{}, req) }},
		{"HTTP", func(req AdminRequest) ([]string, error) {
			return s.runAdminHTTP(t.Context(), jid.MustParse("boss@localhost"), req, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.run(AdminRequest{Command: "no.such"}); err == nil || err.Error() != `unknown command "no.such"` {
				t.Errorf("unknown command: %v", err)
			}
		})
	}
}

// The audit listing of an admin over HTTP keeps the entries whose target
// is a JID of the admin's host or of its room services, written however
// the commands accept it.
func TestAuditScope(t *testing.T) {
	s := scopeServer(t)
	keep := s.auditScope("localhost")
	for _, tc := range []struct {
		name, target string
		want         bool
	}{
		{"account", "carol@localhost", true},
		{"account written otherwise", "Carol@LOCALHOST.", true},
		{"room", "ops@conference.localhost", true},
		{"full JID", "carol@localhost/phone", true},
		{"the host itself", "localhost", true},
		{"another host's account", "dave@example.org", false},
		{"another host's room", "ops@conference.example.org", false},
		{"a host no longer configured", "old@gone.example", false},
		{"not a JID: localpart", "a b@localhost", false},
		{"not a JID: empty localpart", "@localhost", false},
		{"not a JID: domain", "a@b@localhost", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // the second time, the domain is known
				if got := keep(tc.target); got != tc.want {
					t.Fatalf("keep(%q) = %v, want %v", tc.target, got, tc.want)
				}
			}
		})
	}
}

// auditedStub runs command through runAudited on a fresh store, with its
// work stubbed out, and returns what the audit log holds then and whether
// the stub ran.
func auditedStub(t *testing.T, command string, args map[string]string) (entries []store.AuditEntry, ran bool, err error) {
	t.Helper()
	entries, err = auditedRun(t, t.Context(), command, args, func(context.Context, Backend, *store.DB) error { ran = true; return nil })
	return entries, ran, err
}

// auditedRun runs command through runAudited under ctx on a fresh store,
// with run standing in for its work (its Backend's Emit takes every line;
// it may close the store), and returns what the audit log holds then
// (nothing once the store is closed).
func auditedRun(t *testing.T, ctx context.Context, command string, args map[string]string, run func(context.Context, Backend, *store.DB) error) ([]store.AuditEntry, error) {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "data.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cmd := adminCommands[command]
	cmd.run = func(ctx context.Context, b Backend, _ AdminRequest) ([]string, error) { return nil, run(ctx, b, db) }
	b := Backend{Audit: db.Audit(), Emit: func(string) error { return nil }}
	_, err = cmd.runAudited(ctx, b, AdminRequest{Command: command, Args: args})
	entries, lerr := db.Audit().List(t.Context(), time.Time{}, 0, nil)
	if lerr != nil && !errors.Is(lerr, store.ErrClosed) {
		t.Fatal(lerr)
	}
	return entries, err
}

// The audit log records each command's target and detail as the table
// describes them, and does not record the listings.
func TestAuditEntries(t *testing.T) {
	args := map[string]string{
		"jid": "carol@localhost", "archive": "ops@conference.localhost", "room": "TEST-1@issues.localhost", "host": "localhost",
		"show": "dnd", "status": "On a call", "with": "bob@localhost", "since": "7d", "owner": "carol@localhost", "reason": "done",
	}
	for _, tc := range []struct {
		command, target, detail string
		audited                 bool
	}{
		{CmdUserAdd, "carol@localhost", "", true},
		{CmdUserDel, "carol@localhost", "", true},
		{CmdUserList, "", "", false},
		{CmdPresenceSet, "carol@localhost", `show="dnd" status="On a call" call=""`, true},
		{CmdPresenceClear, "carol@localhost", "", true},
		{CmdHistoryExport, "ops@conference.localhost", `with="bob@localhost" since="7d" until="" format=""`, true},
		{CmdAuditList, "", "", false},
		{CmdRoomCreate, "TEST-1@issues.localhost", `owner="carol@localhost"`, true},
		{CmdRoomDestroy, "TEST-1@issues.localhost", `reason="done"`, true},
	} {
		t.Run(tc.command, func(t *testing.T) {
			entries, _, err := auditedStub(t, tc.command, args)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case !tc.audited && len(entries) != 0:
				t.Errorf("recorded: %+v", entries)
			case tc.audited && (len(entries) != 1 || entries[0].Actor != "admin" || entries[0].Target != tc.target || entries[0].Detail != tc.detail):
				t.Errorf("recorded %+v, want target %q, detail %q", entries, tc.target, tc.detail)
			}
		})
	}
}

// A command the audit log could not record (an actor or target over
// store.MaxAuditFieldLen: a valid JID in fullwidth letters, three bytes
// each) is refused as a bad request before it is done; one that fits is
// done and recorded as written.
func TestAuditUnrecordableRefused(t *testing.T) {
	fullwidth := strings.Repeat("\uff41", 1023) + "@localhost" // 'ａ'
	for _, tc := range []struct {
		name string
		args map[string]string
		ok   bool
	}{
		{"fits", map[string]string{"jid": "Carol@LOCALHOST"}, true},
		{"target too long", map[string]string{"jid": fullwidth}, false},
		{"actor too long", map[string]string{"jid": "carol@localhost", "actor": strings.Repeat("a", store.MaxAuditFieldLen+1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, ran, err := auditedStub(t, CmdUserAdd, tc.args)
			switch {
			case tc.ok && (err != nil || !ran || len(entries) != 1 || entries[0].Target != tc.args["jid"]):
				t.Errorf("err %v, ran %v, recorded %+v; want done and recorded as written", err, ran, entries)
			case !tc.ok && (!errors.Is(err, httpapi.ErrInvalid) || ran || len(entries) != 0):
				t.Errorf("err %v, ran %v, recorded %+v; want refused (ErrInvalid), not run, nothing recorded", err, ran, entries)
			}
		})
	}
}

// What a command did is recorded when its caller has gone (the command's
// context cancelled as it ends); an export that failed after it sent
// something is recorded with its error, one that sent nothing is not; a
// command done but not recorded says so (httpapi.ErrNotRecorded), whatever
// the audit log's error, and with the command's own failure if it failed.
func TestAuditAfterTheCommand(t *testing.T) {
	args := map[string]string{"jid": "carol@localhost", "archive": "carol@localhost", "format": "jsonl"}
	failed := errors.New("disk on fire")
	for _, tc := range []struct {
		name     string
		command  string
		run      func(ctx context.Context, cancel context.CancelFunc, b Backend, db *store.DB) error
		wantIs   []error // what the error matches (none: no error)
		recorded bool
		detail   string
	}{
		{"caller gone as the command ends", CmdUserAdd, func(_ context.Context, cancel context.CancelFunc, _ Backend, _ *store.DB) error {
			cancel()
			return nil
		}, nil, true, ""},
		{"export failed part-way", CmdHistoryExport, func(_ context.Context, _ context.CancelFunc, b Backend, _ *store.DB) error {
			if err := b.Emit("a line"); err != nil {
				return err
			}
			return failed
		}, []error{failed}, true, `failed="disk on fire" with="" since="" until="" format="jsonl"`},
		{"export failed before sending", CmdHistoryExport, func(context.Context, context.CancelFunc, Backend, *store.DB) error {
			return failed
		}, []error{failed}, false, ""},
		// Not the audit log's ErrClosed (a 503) in either: checked below.
		{"change done, not recorded", CmdUserAdd, func(_ context.Context, _ context.CancelFunc, _ Backend, db *store.DB) error {
			return db.Close() // the store closes after the change
		}, []error{httpapi.ErrNotRecorded}, false, ""},
		{"export failed part-way, not recorded", CmdHistoryExport, func(_ context.Context, _ context.CancelFunc, b Backend, db *store.DB) error {
			if err := b.Emit("a line"); err != nil {
				return err
			}
			if err := db.Close(); err != nil {
				return err
			}
			return failed
		}, []error{failed, httpapi.ErrNotRecorded}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			entries, err := auditedRun(t, ctx, tc.command, args, func(ctx context.Context, b Backend, db *store.DB) error {
				return tc.run(ctx, cancel, b, db)
			})
			if (err != nil) != (len(tc.wantIs) > 0) || errors.Is(err, store.ErrClosed) {
				t.Fatalf("error %v, want one matching %v (and not store.ErrClosed)", err, tc.wantIs)
			}
			for _, want := range tc.wantIs {
				if !errors.Is(err, want) {
					t.Fatalf("error %v, want one matching %v", err, want)
				}
			}
			switch {
			case !tc.recorded && len(entries) != 0:
				t.Errorf("recorded: %+v", entries)
			case tc.recorded && (len(entries) != 1 || entries[0].Detail != tc.detail):
				t.Errorf("recorded %+v, want one entry with detail %q", entries, tc.detail)
			}
		})
	}
}

// The admin commands' gate: close gives up on a running command when its
// context ends (with none running it returns at once, whatever the
// context), and refuses the commands that come after it (that close waits
// for a running command is TestShutdownWaitsForAdminCommands).
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
	client, conn := net.Pipe()
	defer client.Close()
	go a.serve(conn, s)
	if _, err := client.Write([]byte(`{"command":"user.list"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	var resp AdminResponse
	if err := json.NewDecoder(client).Decode(&resp); err != nil || resp.OK || !strings.Contains(resp.Error, "shutting down") {
		t.Fatalf("a command over the socket after shutdown: %+v, %v; want refused", resp, err)
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

// Shutdown waits for an admin command still running (over HTTP or the
// socket: one gate) before it stops what commands use (the archive
// writer, the store), and waits for one that does not end only
// adminCloseGrace: the rest of the shutdown still runs, the socket's
// commands are cancelled, and the socket's own wait does not add an
// error of its own for the spent grace.
func TestShutdownWaitsForAdminCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		ends bool
	}{
		{"command ends", true},
		{"command never ends", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "admin.sock")
			s := startForShutdown(t, sock, "127.0.0.1:0")
			idle, err := net.Dial("unix", sock) // a connection between requests
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			if !s.adminRuns.enter() { // a command the API is running
				t.Fatal("the gate of a running server is closed")
			}
			done := shutdownHeld(t, s, "a command ran")
			if _, err := s.db.Users().List(t.Context(), "localhost"); err != nil {
				t.Fatalf("the store, while a command runs: %v", err)
			}
			if s.admin.ctx.Err() != nil {
				t.Fatal("socket commands cancelled while the grace runs")
			}
			if !tc.ends {
				err := <-done
				if err == nil || !strings.Contains(err.Error(), "admin commands still running") || strings.Contains(err.Error(), "admin socket") {
					t.Fatalf("Shutdown past the grace: %v, want the commands still running named, and only them", err)
				}
				if _, err := s.db.Users().List(t.Context(), "localhost"); !errors.Is(err, store.ErrClosed) {
					t.Fatalf("the store after Shutdown: %v, want ErrClosed", err)
				}
				if s.admin.ctx.Err() == nil {
					t.Fatal("socket commands not cancelled after the grace")
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

// A socket command whose answer is still being written when Shutdown
// starts keeps its connection until the answer is out: the gate covers the
// answer, not only the run. The answer here is larger than the socket's
// buffer and the client reads it only after Shutdown started.
func TestShutdownLetsSocketCommandsAnswer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	s := startForShutdown(t, sock, "")
	const n = 4000
	long := strings.Repeat("x", 200)
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			for i := w; i < n; i += 8 {
				target := fmt.Sprintf("user%d-%s@localhost", i, long)
				if _, err := s.db.Audit().Add(t.Context(), store.AuditEntry{Actor: "admin", Action: CmdUserAdd, Target: target}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, `{"command":%q,"args":{"limit":"%d"}}`+"\n", CmdAuditList, n); err != nil {
		t.Fatal(err)
	}
	// The command is inside the gate (writing its answer, which the
	// client does not read yet).
	for deadline := time.Now().Add(10 * time.Second); ; {
		s.adminRuns.mu.Lock()
		running := s.adminRuns.running
		s.adminRuns.mu.Unlock()
		if running == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command never entered the gate")
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := shutdownHeld(t, s, "an answer was being written")
	var res AdminResponse
	if err := json.NewDecoder(c).Decode(&res); err != nil {
		t.Fatalf("the answer, read after Shutdown started: %v", err)
	}
	if !res.OK || len(res.Result) != n {
		t.Fatalf("answer: ok %v, %d entries, error %q; want %d entries", res.OK, len(res.Result), res.Error, n)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown after the answer: %v", err)
	}
}

// shutdownHeld starts s's Shutdown and fails unless it is still waiting
// a quarter of adminCloseGrace later, while what is described happens;
// Shutdown's result arrives on the channel.
func shutdownHeld(t *testing.T, s *Server, while string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while %s", err, while)
	case <-time.After(adminCloseGrace / 4):
	}
	return done
}

// BenchmarkAuditListScoped lists an audit log of 1000 entries as an admin
// of localhost over the HTTP API's path: every entry is read, and those
// whose target is another host's (example.org's, or a host no longer
// configured) are skipped. Half the targets are distinct.
func BenchmarkAuditListScoped(b *testing.B) {
	s := scopeServer(b)
	const n = 1000
	for i := range n {
		target := [...]string{
			fmt.Sprintf("user%d@localhost", i),
			fmt.Sprintf("room%d@conference.localhost", i%20),
			fmt.Sprintf("user%d@example.org", i),
			"old@gone.example",
		}[i%4]
		if _, err := s.db.Audit().Add(b.Context(), store.AuditEntry{Actor: "admin", Action: CmdUserAdd, Target: target}); err != nil {
			b.Fatal(err)
		}
	}
	admin := jid.MustParse("boss@localhost")
	req := httpapi.Request{Command: CmdAuditList, Args: map[string]string{"limit": strconv.Itoa(n)}}
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.runAdminHTTP(b.Context(), admin, req, nil)
		if err != nil || len(res) != n/2 {
			b.Fatalf("audit.list: %d entries, %v; want %d", len(res), err, n/2)
		}
	}
}

// An audit entry's detail is cut to what the audit log takes, never
// inside a character: quoting makes a value up to four times longer than
// the 64 KiB a request may carry.
func TestAuditDetailIsCut(t *testing.T) {
	cmd := adminCommands[CmdPresenceSet]
	for _, tc := range []struct {
		name, status string
		cut          bool
	}{
		{"short", "On a call", false},
		{"escaped", strings.Repeat("\u200b", 20000), true},
		{"printable, multi-byte", strings.Repeat("é", 40000), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := cmd.auditDetail(map[string]string{"show": "dnd", "status": tc.status})
			if len(d) > store.MaxAuditDetailLen || !utf8.ValidString(d) || strings.HasSuffix(d, " [cut]") != tc.cut {
				t.Fatalf("detail of %d bytes, valid UTF-8 %v, ends %q; want at most %d, valid, cut %v",
					len(d), utf8.ValidString(d), d[max(0, len(d)-10):], store.MaxAuditDetailLen, tc.cut)
			}
			if !strings.HasPrefix(d, `show="dnd" status="`) {
				t.Fatalf("detail starts %q", d[:min(len(d), 30)])
			}
		})
	}
}

// An export's arguments are checked before the archive writer is asked
// to write out what it holds: a bad request does not wait for it.
func TestExportChecksBeforeFlushing(t *testing.T) {
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	flushes := 0
	b := Backend{Archive: db.Archive(), Flush: func(context.Context) error { flushes++; return nil }}
	for _, args := range []map[string]string{
		{"archive": "alice@localhost", "format": "xml"},
		{"archive": "alice@localhost", "format": "json", "since": "last week"},
		{"archive": "localhost", "format": "json"},
	} {
		if _, err := runExport(t.Context(), b, AdminRequest{Command: CmdHistoryExport, Args: args}); !errors.Is(err, httpapi.ErrInvalid) {
			t.Fatalf("export %v: %v, want an argument error", args, err)
		}
	}
	if flushes != 0 {
		t.Fatalf("bad requests flushed the archive %d times", flushes)
	}
	if _, err := runExport(t.Context(), b, AdminRequest{Command: CmdHistoryExport, Args: map[string]string{"archive": "alice@localhost", "format": "json"}}); err != nil || flushes != 1 {
		t.Fatalf("export: %v after %d flushes, want one", err, flushes)
	}
	// A flush that fails ends the export before anything is written.
	flushErr := errors.New("archive not written: disk gone")
	lines := 0
	b.Flush = func(context.Context) error { return flushErr }
	b.Emit = func(string) error { lines++; return nil }
	if _, err := runExport(t.Context(), b, AdminRequest{Command: CmdHistoryExport, Args: map[string]string{"archive": "alice@localhost", "format": "json"}}); !errors.Is(err, flushErr) || lines != 0 {
		t.Fatalf("export after a failed flush: %v, %d lines written; want the flush's error and nothing written", err, lines)
	}
}

// An export's flush of the archive writer: its own bound is logged and
// answered as out of time (503), a caller that left as cancelled, and a
// commit's failure as the server's own whatever its kind.
func TestFlushWithin(t *testing.T) {
	commitErr := fmt.Errorf("commit: %w", store.ErrInvalid)
	for _, tc := range []struct {
		name     string
		flush    func(context.Context) error
		cancel   bool // the caller has left
		wantIs   error
		wantNot  error
		warnings int
	}{
		{"written", func(context.Context) error { return nil }, false, nil, nil, 0},
		{"out of time", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, false, context.DeadlineExceeded, nil, 1},
		{"caller left", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, true, context.Canceled, nil, 0},
		{"commit failed", func(context.Context) error { return commitErr }, false, nil, store.ErrInvalid, 0},
		{"commit failed, writer stopping", func(context.Context) error { return fmt.Errorf("commit: %w", context.Canceled) }, false, nil, context.Canceled, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logged bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logged, nil))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			err := flushWithin(ctx, 20*time.Millisecond, tc.flush, log)
			switch {
			case tc.wantIs == nil && tc.wantNot == nil && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Fatalf("error %v, want %v", err, tc.wantIs)
			case tc.wantNot != nil && (err == nil || errors.Is(err, tc.wantNot) || !strings.Contains(err.Error(), tc.wantNot.Error())):
				t.Fatalf("error %v, want one that says but does not wrap %v", err, tc.wantNot)
			}
			if got := strings.Count(logged.String(), "level=WARN"); got != tc.warnings {
				t.Fatalf("%d warnings, want %d: %q", got, tc.warnings, logged.String())
			}
		})
	}
}

// The admin socket answers every request, and logs what was done (with
// its target cut as the HTTP API cuts it) and the server's own failures,
// not a request's mistakes.
func TestAdminSocketLog(t *testing.T) {
	long := strings.Repeat("a", 300) + "@localhost"
	add := `{"command":"user.add","args":{"jid":"carol@localhost"}}`
	del := `{"command":"user.del","args":{"jid":"carol@localhost"}}`
	export := `{"command":"history.export","args":{"archive":"carol@localhost"}}`
	for _, tc := range []struct {
		name    string
		line    string
		runs    bool  // the command runs (the request is well-formed and known)
		gone    bool  // the CLI has gone: the command's first line fails
		err     error // what the command returns (with gone: wrapping the line's error)
		wantErr string
		wantLog string // the log's level and message, "" for none
	}{
		{name: "done", line: add, runs: true, wantLog: `level=INFO msg="admin command" command=user.add target=carol@localhost`},
		{name: "done, long target", line: `{"command":"user.add","args":{"jid":"` + long + `"}}`, runs: true, wantLog: "target=" + httpapi.LogArg(long)},
		{name: "malformed", line: `{"command":`, wantErr: "malformed request"},
		{name: "unknown command", line: `{"command":"user.rename"}`, wantErr: "unknown command"},
		{name: "bad argument", line: add, runs: true, err: badArg("no password"), wantErr: "no password"},
		{name: "no such account", line: del, runs: true, err: fmt.Errorf("user.del: %w", store.ErrNotFound), wantErr: "not found"},
		{name: "the server's own failure", line: del, runs: true, err: errors.New("disk on fire"), wantErr: "disk on fire",
			wantLog: `level=ERROR msg="admin command failed" command=user.del target=carol@localhost err="disk on fire"`},
		{name: "done, not recorded", line: del, runs: true, err: &httpapi.NotRecordedError{Audit: errors.New("disk on fire")}, wantErr: "not recorded",
			wantLog: `level=ERROR msg="admin command failed" command=user.del`},
		{name: "export, the CLI gone", line: export, runs: true, gone: true, wantErr: "closed pipe",
			wantLog: `level=WARN msg="admin export stopped, its connection closed" command=history.export target=carol@localhost`},
		{name: "export, the CLI gone, not recorded", line: export, runs: true, gone: true, err: &httpapi.NotRecordedError{Audit: errors.New("disk on fire")}, wantErr: "not recorded",
			wantLog: `level=ERROR msg="admin command failed" command=history.export`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logged bytes.Buffer
			a := &adminServer{log: slog.New(slog.NewTextHandler(&logged, nil)), ctx: t.Context()}
			ran := false
			run := func(_ context.Context, _ adminCommand, _ AdminRequest, emit func(string) error) ([]string, error) {
				ran = true
				if tc.gone {
					lerr := emit("a line")
					if lerr == nil {
						t.Fatal("a line written to a closed connection")
					}
					if nr, ok := tc.err.(*httpapi.NotRecordedError); ok {
						return nil, &httpapi.NotRecordedError{Err: lerr, Audit: nr.Audit}
					}
					return nil, fmt.Errorf("export: %w", lerr)
				}
				if tc.err != nil {
					return nil, tc.err
				}
				return []string{"done"}, nil
			}
			client, conn := net.Pipe()
			defer client.Close()
			defer conn.Close()
			if tc.gone {
				client.Close()
			}
			resp := a.handle(conn, json.NewEncoder(conn), run, []byte(tc.line))
			switch {
			case ran != tc.runs:
				t.Fatalf("ran %v, want %v", ran, tc.runs)
			case tc.wantErr == "" && (!resp.OK || resp.Error != ""):
				t.Fatalf("answer %+v, want done", resp)
			case tc.wantErr != "" && (resp.OK || !strings.Contains(resp.Error, tc.wantErr)):
				t.Fatalf("answer %+v, want an error containing %q", resp, tc.wantErr)
			}
			l := logged.String()
			if tc.wantLog == "" {
				if l != "" {
					t.Fatalf("logged %q, want nothing", l)
				}
				return
			}
			if strings.Count(l, "\n") != 1 || !strings.Contains(l, tc.wantLog) {
				t.Fatalf("logged %q, want one line with %q", l, tc.wantLog)
			}
		})
	}
}

// user.profile writes no vCard larger than [directory] vcard_max_bytes,
// as a user's own set is bounded, and stores nothing then.
func TestUserProfileVCardBound(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "data.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	accounts := NewAccounts(db.Users(), []string{"localhost"})
	if err := accounts.Create(ctx, "localhost", "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	b := Backend{Accounts: accounts, VCards: db.VCards(), Audit: db.Audit(), VCardMaxBytes: 200}
	run := func(name string) error {
		_, err := RunCommand(ctx, b, AdminRequest{Command: CmdUserProfile, Args: map[string]string{"jid": "alice@localhost", "name": name}})
		return err
	}
	if err := run("Alice"); err != nil {
		t.Fatal(err)
	}
	if err := run(strings.Repeat("A", 200)); !errors.Is(err, httpapi.ErrInvalid) {
		t.Fatalf("a profile beyond the bound: %v, want an argument error", err)
	}
	raw, err := db.VCards().Get(ctx, "alice@localhost")
	if err != nil || !strings.Contains(string(raw), "<FN>Alice</FN>") {
		t.Fatalf("the stored vCard after the refusal: %s, %v", raw, err)
	}
}
