package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/muc"
	"switchboard/store"
)

// fakeServer records what the API asks of the server.
type fakeServer struct {
	mu    sync.Mutex
	auths int
	runs  []Request
}

func (f *fakeServer) authenticate(_ context.Context, user, password string) (jid.JID, bool) {
	f.mu.Lock()
	f.auths++
	f.mu.Unlock()
	if user == "boss@example.org" && password == "pw" {
		return jid.MustParse(user), true
	}
	return jid.JID{}, false
}

func (f *fakeServer) run(ctx context.Context, admin jid.JID, req Request, emit func(string) error) ([]string, error) {
	f.mu.Lock()
	f.runs = append(f.runs, req)
	f.mu.Unlock()
	if admin.String() != "boss@example.org" {
		return nil, fmt.Errorf("run as %s", admin)
	}
	switch req.Args["archive"] {
	case "missing@example.org":
		return nil, fmt.Errorf("no such archive: %w", store.ErrNotFound)
	case "broken@example.org":
		_ = emit("line 1")
		return nil, errors.New("disk on fire")
	case "failing@example.org":
		return nil, fmt.Errorf("export: %w", errors.New("disk on fire"))
	case "invalid@example.org":
		return nil, fmt.Errorf("bad time: %w", ErrInvalid)
	case "taken@example.org":
		return nil, fmt.Errorf("%w: taken@example.org", muc.ErrRoomExists)
	case "gone@example.org":
		return nil, fmt.Errorf("%w: gone@example.org", muc.ErrRoomNotFound)
	case "busy@example.org":
		return nil, fmt.Errorf("%w: busy@example.org", muc.ErrRoomBusy)
	case "cancelled@example.org":
		return nil, fmt.Errorf("export: %w", context.Canceled)
	case "empty@example.org":
		return nil, nil // an export of no record: emit is never called
	case "unrecorded@example.org":
		return nil, &NotRecordedError{Audit: errors.New("disk on fire")}
	case "sent-unrecorded@example.org":
		for _, l := range []string{"a", "b"} {
			if err := emit(l); err != nil {
				return nil, err
			}
		}
		return nil, &NotRecordedError{Audit: errors.New("audit disk on fire")}
	case "endless@example.org", "endless-unrecorded@example.org":
		// Until the client goes: the write fails, or the context ends.
		err := emit("line")
		for ; err == nil; err = emit("line") {
			if err = ctx.Err(); err != nil {
				err = fmt.Errorf("export: %w", err)
				break
			}
		}
		if req.Args["archive"] == "endless-unrecorded@example.org" {
			return nil, &NotRecordedError{Err: err, Audit: errors.New("audit disk on fire")}
		}
		return nil, err
	case "broken-unrecorded@example.org":
		_ = emit("line 1")
		return nil, &NotRecordedError{Err: errors.New("disk on fire"), Audit: errors.New("audit disk on fire")}
	case "":
		return []string{"done " + req.Command}, nil
	}
	for _, l := range []string{"a", "b"} {
		if err := emit(l); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func TestHandler(t *testing.T) {
	f := &fakeServer{}
	var logged syncBuffer
	h, err := New(Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))}, Deps{Authenticate: f.authenticate, Run: f.run})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	do := func(t *testing.T, method, path, password, body string) (*http.Response, string, error) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("boss@example.org", password)
		resp, err := srv.Client().Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	for _, tc := range []struct {
		name, method, path, password, body string
		code                               int
		contentType, contains              string
		want                               *Request // what the server was asked to run
	}{
		{"wrong password", "GET", "/api/v1/audit", "bad", "", 401, "application/json", "admin", nil},
		{"audit", "GET", "/api/v1/audit?since=7d&limit=5", "pw", "", 200, "application/json", "done audit.list",
			&Request{Command: CmdAuditList, Args: map[string]string{"since": "7d", "limit": "5"}}},
		{"command", "POST", "/api/v1/commands", "pw", `{"command": "user.list", "args": {"host": "example.org"}}`, 200, "application/json", "done user.list",
			&Request{Command: "user.list", Args: map[string]string{"host": "example.org"}}},
		{"command without args", "POST", "/api/v1/commands", "pw", `{"command": "user.list"}`, 200, "application/json", "done user.list",
			&Request{Command: "user.list", Args: map[string]string{}}},
		{"presence set", "PUT", "/api/v1/users/alice@example.org/presence", "pw", `{"show": "dnd", "status": "On a call", "call": "on-call"}`, 200, "application/json", "done",
			&Request{Command: CmdPresenceSet, Args: map[string]string{"jid": "alice@example.org", "show": "dnd", "status": "On a call", "call": "on-call"}}},
		{"presence clear", "DELETE", "/api/v1/users/alice@example.org/presence", "pw", "", 200, "application/json", "done",
			&Request{Command: CmdPresenceClear, Args: map[string]string{"jid": "alice@example.org"}}},
		{"room history as CSV", "GET", "/api/v1/rooms/test-1@issues.example.org/history?format=csv&since=30d", "pw", "", 200, "text/csv", "a\nb\n",
			&Request{Command: CmdHistoryExport, Args: map[string]string{"archive": "test-1@issues.example.org", "format": "csv", "since": "30d", "with": "", "until": ""}}},
		{"user history, default JSON", "GET", "/api/v1/users/alice@example.org/history?with=bob@example.org", "pw", "", 200, "application/json", "a\nb\n",
			&Request{Command: CmdHistoryExport, Args: map[string]string{"archive": "alice@example.org", "format": "json", "with": "bob@example.org", "since": "", "until": ""}}},
		{"export of a missing archive", "GET", "/api/v1/users/missing@example.org/history", "pw", "", 404, "application/json", "no such archive", nil},
		{"bad argument", "GET", "/api/v1/users/invalid@example.org/history", "pw", "", 400, "application/json", "bad time", nil},
		{"the server's own failure", "GET", "/api/v1/users/failing@example.org/history", "pw", "", 500, "application/json", "internal error", nil},
		{"existing room", "GET", "/api/v1/rooms/taken@example.org/history", "pw", "", 409, "application/json", "room exists", nil},
		{"missing room", "GET", "/api/v1/rooms/gone@example.org/history", "pw", "", 404, "application/json", "no such room", nil},
		{"busy room", "GET", "/api/v1/rooms/busy@example.org/history", "pw", "", 503, "application/json", "busy", nil},
		{"done, not recorded", "GET", "/api/v1/users/unrecorded@example.org/history", "pw", "", 500, "application/json", "done, but not recorded in the audit log", nil},
		{"export sent whole, not recorded", "GET", "/api/v1/users/sent-unrecorded@example.org/history", "pw", "", 200, "application/json", "a\nb\n", nil},
		{"empty JSON Lines export", "GET", "/api/v1/users/empty@example.org/history?format=jsonl", "pw", "", 200, "application/x-ndjson", "", nil},
		{"cancelled (shutdown)", "GET", "/api/v1/users/cancelled@example.org/history", "pw", "", 503, "application/json", "canceled", nil},
		{"malformed body", "POST", "/api/v1/commands", "pw", `{"command": `, 400, "application/json", "malformed", nil},
		{"unknown field", "PUT", "/api/v1/users/alice@example.org/presence", "pw", `{"mood": "happy"}`, 400, "application/json", "malformed", nil},
		{"unknown route", "GET", "/api/v1/nothing", "pw", "", 404, "", "", nil},
		{"wrong method", "GET", "/api/v1/commands", "pw", "", 405, "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.mu.Lock()
			f.runs = nil
			f.mu.Unlock()
			resp, body, err := do(t, tc.method, tc.path, tc.password, tc.body)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if resp.StatusCode != tc.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) || !strings.Contains(body, tc.contains) {
				t.Fatalf("%d %q %q, want %d %q containing %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.code, tc.contentType, tc.contains)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			switch {
			case tc.want == nil:
			case len(f.runs) != 1:
				t.Fatalf("ran %v, want %v", f.runs, *tc.want)
			case f.runs[0].Command != tc.want.Command || fmt.Sprint(f.runs[0].Args) != fmt.Sprint(tc.want.Args):
				t.Fatalf("ran %+v, want %+v", f.runs[0], *tc.want)
			}
		})
	}
	// One PBKDF2-backed check per distinct header and minute: every
	// request above with the right password shares one; each wrong
	// one is checked.
	if f.auths != 2 {
		t.Fatalf("the server was asked to authenticate %d times, want 2", f.auths)
	}
	// A failure after the first line of an export aborts the response.
	// (Before or after the headers: either way the client gets an error,
	// not a short document.)
	if resp, body, err := do(t, "GET", "/api/v1/users/broken@example.org/history", "pw", ""); err == nil {
		t.Fatalf("an export that failed part-way was delivered whole: %d %q", resp.StatusCode, body)
	}
	if l := logged.String(); !strings.Contains(l, "export failed part-way") || !strings.Contains(l, "archive=broken@example.org admin=boss@example.org") {
		t.Fatalf("log after an export that failed part-way: %q", l)
	}
	// Also when it was then not recorded either: it was not sent whole.
	if resp, body, err := do(t, "GET", "/api/v1/users/broken-unrecorded@example.org/history", "pw", ""); err == nil {
		t.Fatalf("an export that failed part-way and was not recorded was delivered whole: %d %q", resp.StatusCode, body)
	}
	if l := logged.String(); !strings.Contains(l, `level=ERROR msg="admin API: export failed part-way, and was not recorded in the audit log" listener=http archive=broken-unrecorded@example.org`) {
		t.Fatalf("log after an export that failed part-way and was not recorded: %q", l)
	}
	// A client that hangs up during an export is not the server's
	// failure: a warning, not an error; unless the export was not
	// recorded in the audit log either.
	hangUp := func(archive, level, msg string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/users/"+archive+"/history", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("boss@example.org", "pw")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 5)); err != nil {
			t.Fatalf("first line of an endless export: %v", err)
		}
		resp.Body.Close()
		mark := "archive=" + archive + " "
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logged.String(), mark); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no log line of %s: %q", archive, logged.String())
			}
		}
		for _, l := range strings.Split(logged.String(), "\n") {
			if strings.Contains(l, mark) && (!strings.Contains(l, "level="+level) || !strings.Contains(l, msg)) {
				t.Fatalf("log line of an export the client left: %q, want level %s and %q", l, level, msg)
			}
		}
	}
	hangUp("endless@example.org", "WARN", "export stopped, its connection closed")
	hangUp("endless-unrecorded@example.org", "ERROR", "export failed part-way, and was not recorded in the audit log")
	// An export sent whole but not recorded in the audit log ends as sent,
	// and the server's log says it was not recorded.
	if l := logged.String(); !strings.Contains(l, "export sent, but not recorded") || !strings.Contains(l, "audit disk on fire") {
		t.Fatalf("log after an export sent but not recorded: %q", l)
	}
	// The server's own failure is logged with its cause, which the
	// answer leaves out.
	if _, body, err := do(t, "GET", "/api/v1/users/failing@example.org/history", "pw", ""); err != nil || strings.Contains(body, "disk on fire") {
		t.Fatalf("answer to a failure of the server's own: %q %v, want no cause in it", body, err)
	}
	if l := logged.String(); !strings.Contains(l, "disk on fire") || !strings.Contains(l, CmdHistoryExport) {
		t.Fatalf("log %q, want the failure's cause and command", l)
	}
}

// syncBuffer is a bytes.Buffer for a logger that handlers write from
// their own goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ServerFault is true for the failures that answer 500, and for no other.
func TestServerFault(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"unclassified", errors.New("disk on fire"), true},
		{"not recorded", &NotRecordedError{Audit: store.ErrClosed}, true},
		{"cut short at shutdown, not recorded", &NotRecordedError{Err: fmt.Errorf("x: %w", store.ErrClosed), Audit: errors.New("y")}, true},
		{"bad request", fmt.Errorf("x: %w", ErrInvalid), false},
		{"store refused", fmt.Errorf("x: %w", store.ErrInvalid), false},
		{"forbidden", ErrForbidden, false},
		{"no account", fmt.Errorf("x: %w", store.ErrNotFound), false},
		{"no room", muc.ErrRoomNotFound, false},
		{"room exists", muc.ErrRoomExists, false},
		{"shutting down", fmt.Errorf("x: %w", context.Canceled), false},
		{"busy", store.ErrBusy, false},
	} {
		if got := ServerFault(tc.err); got != tc.want {
			t.Errorf("%s: ServerFault(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// A request's argument goes into a log line whole up to maxLogArg bytes,
// and cut with a mark (at a character boundary) beyond.
func TestLogArg(t *testing.T) {
	long := strings.Repeat("a", maxLogArg-1) + "é" + "tail" // 'é' across the cut
	for _, tc := range []struct{ in, want string }{
		{"carol@localhost", "carol@localhost"},
		{strings.Repeat("a", maxLogArg), strings.Repeat("a", maxLogArg)},
		{long, strings.Repeat("a", maxLogArg-1) + "…"},
	} {
		if got := LogArg(tc.in); got != tc.want {
			t.Errorf("LogArg(%d bytes) = %q, want %q", len(tc.in), got, tc.want)
		}
	}
}

// Only a NotRecordedError without a failure of its own means the command
// was done; either kind matches ErrNotRecorded, and the command's own
// failure, not the audit log's.
func TestNotRecordedError(t *testing.T) {
	audit := fmt.Errorf("audit: %w", store.ErrClosed)
	failed := errors.New("disk on fire")
	for _, tc := range []struct {
		name     string
		err      error
		done     bool
		isFailed bool
	}{
		{"not recorded", &NotRecordedError{Audit: audit}, true, false},
		{"not recorded, wrapped", fmt.Errorf("export: %w", &NotRecordedError{Audit: audit}), true, false},
		{"failed, then not recorded", &NotRecordedError{Err: failed, Audit: audit}, false, true},
		{"failed", failed, false, true},
		{"none", nil, false, false},
	} {
		if got := doneNotRecorded(tc.err); got != tc.done {
			t.Errorf("%s: doneNotRecorded(%v) = %v, want %v", tc.name, tc.err, got, tc.done)
		}
		var nr *NotRecordedError
		if errors.As(tc.err, &nr) && (!errors.Is(tc.err, ErrNotRecorded) || errors.Is(tc.err, store.ErrClosed)) {
			t.Errorf("%s: %v matches ErrNotRecorded %v, the audit log's ErrClosed %v; want true, false", tc.name, tc.err, errors.Is(tc.err, ErrNotRecorded), errors.Is(tc.err, store.ErrClosed))
		}
		if got := errors.Is(tc.err, failed); got != tc.isFailed {
			t.Errorf("%s: matches the command's failure: %v, want %v", tc.name, got, tc.isFailed)
		}
	}
}
