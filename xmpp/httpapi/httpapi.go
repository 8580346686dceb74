package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/muc"
	"switchboard/store"
	"switchboard/xmpp/auth"
)

// The commands the routes run (the server's admin command names).
const (
	CmdPresenceSet   = "presence.set"
	CmdPresenceClear = "presence.clear"
	CmdHistoryExport = "history.export"
	CmdAuditList     = "audit.list"
)

// Request is one admin command.
type Request struct {
	Command string            `json:"command"`
	Args    map[string]string `json:"args,omitempty"`
}

// Response answers a Request.
type Response struct {
	OK     bool     `json:"ok"`
	Error  string   `json:"error,omitempty"`
	Result []string `json:"result,omitempty"`
}

// Options configure the API.
type Options struct {
	// FailureDelay and FailureMaxDelay throttle failed authentications
	// per address (the login throttle's settings); 0 disables it.
	FailureDelay, FailureMaxDelay time.Duration
	Logger                        *slog.Logger
}

// Deps are the API's collaborators.
type Deps struct {
	// Authenticate reports whether user (a bare JID) and password are
	// an admin's credentials, and the admin. It must take as long for
	// a non-admin as for an admin with a wrong password.
	Authenticate func(ctx context.Context, user, password string) (jid.JID, bool)
	// Run runs a command as admin. For an export, emit receives its
	// lines as they come (and Run returns no result); otherwise emit is
	// nil.
	Run func(ctx context.Context, admin jid.JID, req Request, emit func(line string) error) ([]string, error)
}

// maxBody bounds a request body.
const maxBody = 64 << 10

// cacheTTL is how long a verified Authorization header is reused;
// maxCache bounds the cache.
const (
	cacheTTL = time.Minute
	maxCache = 1024
)

// Handler serves the API.
type Handler struct {
	deps     Deps
	log      *slog.Logger
	throttle *auth.Throttle
	mux      *http.ServeMux

	mu       sync.Mutex
	verified map[[32]byte]verifiedAdmin // by SHA-256 of the header
}

type verifiedAdmin struct {
	admin   jid.JID
	expires time.Time
}

var _ http.Handler = (*Handler)(nil)

// New returns the API's handler.
func New(opts Options, deps Deps) (*Handler, error) {
	if deps.Authenticate == nil || deps.Run == nil {
		return nil, errors.New("httpapi: missing dependency")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		deps: deps, log: opts.Logger.With("listener", "http"),
		throttle: auth.NewThrottle(opts.FailureDelay, opts.FailureMaxDelay, time.Now),
		mux:      http.NewServeMux(), verified: map[[32]byte]verifiedAdmin{},
	}
	h.mux.Handle("POST /api/v1/commands", h.authed(h.command))
	h.mux.Handle("GET /api/v1/rooms/{room}/history", h.authed(h.history("room")))
	h.mux.Handle("GET /api/v1/users/{jid}/history", h.authed(h.history("jid")))
	h.mux.Handle("PUT /api/v1/users/{jid}/presence", h.authed(h.presence))
	h.mux.Handle("DELETE /api/v1/users/{jid}/presence", h.authed(h.presence))
	h.mux.Handle("GET /api/v1/audit", h.authed(h.audit))
	return h, nil
}

// ServeHTTP routes a request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// adminHandler handles a request of an authenticated admin.
type adminHandler func(w http.ResponseWriter, r *http.Request, admin jid.JID)

// authed authenticates a request, then hands it to next.
func (h *Handler) authed(next adminHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			addr = r.RemoteAddr
		}
		if d := h.throttle.Delay(addr); d > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
			writeJSON(w, http.StatusTooManyRequests, Response{Error: "too many failed attempts; retry later"})
			return
		}
		admin, ok := h.authenticate(r)
		if !ok {
			h.throttle.Failed(addr)
			h.log.Warn("admin API: authentication failed", "remote", addr)
			w.Header().Set("WWW-Authenticate", `Basic realm="switchboard admin", charset="UTF-8"`)
			writeJSON(w, http.StatusUnauthorized, Response{Error: "an admin's JID and password are required"})
			return
		}
		h.throttle.Succeeded(addr)
		next(w, r, admin)
	})
}

// authenticate checks HTTP Basic credentials, from the cache when the
// same header was verified less than cacheTTL ago.
func (h *Handler) authenticate(r *http.Request) (jid.JID, bool) {
	user, password, ok := r.BasicAuth()
	if !ok || user == "" || password == "" {
		return jid.JID{}, false
	}
	key := sha256.Sum256([]byte(r.Header.Get("Authorization")))
	now := time.Now()
	h.mu.Lock()
	v, cached := h.verified[key]
	h.mu.Unlock()
	if cached && now.Before(v.expires) {
		return v.admin, true
	}
	admin, ok := h.deps.Authenticate(r.Context(), user, password)
	if !ok {
		return jid.JID{}, false
	}
	h.mu.Lock()
	if len(h.verified) >= maxCache {
		clear(h.verified)
	}
	h.verified[key] = verifiedAdmin{admin: admin, expires: now.Add(cacheTTL)}
	h.mu.Unlock()
	return admin, true
}

// run executes a command as admin and writes its answer.
func (h *Handler) run(w http.ResponseWriter, r *http.Request, admin jid.JID, req Request) {
	if req.Command == CmdHistoryExport {
		h.export(w, r, admin, req)
		return
	}
	res, err := h.deps.Run(r.Context(), admin, req, nil)
	if err != nil {
		h.fail(w, req, admin, err)
		return
	}
	h.log.Info("admin command", "command", req.Command, "admin", admin.String())
	writeJSON(w, http.StatusOK, Response{OK: true, Result: res})
}

// export streams an export.
func (h *Handler) export(w http.ResponseWriter, r *http.Request, admin jid.JID, req Request) {
	format := req.Args["format"]
	if format == "" {
		format = "json"
		req.Args["format"] = format
	}
	started := false
	start := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", contentType(format))
			w.WriteHeader(http.StatusOK)
		}
	}
	emit := func(line string) error {
		start()
		_, err := w.Write(append([]byte(line), '\n'))
		return err
	}
	_, err := h.deps.Run(r.Context(), admin, req, emit)
	if err == nil {
		start() // an empty export (JSON Lines of no record) has its type too
	}
	archive := LogArg(req.Args["archive"])
	switch {
	case err != nil && !started:
		h.fail(w, req, admin, err)
	case doneNotRecorded(err):
		// Sent whole (its status went out with its first line): a
		// short answer would only be asked for again. The log says it.
		h.log.Error("admin API: export sent, but not recorded in the audit log", "archive", archive, "admin", admin.String(), "err", err)
	case errors.Is(err, ErrNotRecorded):
		// Cut short, whatever the reason: the audit log's failure is the
		// server's own.
		h.log.Error("admin API: export failed part-way, and was not recorded in the audit log", "archive", archive, "admin", admin.String(), "err", err)
		panic(http.ErrAbortHandler)
	case err != nil && r.Context().Err() != nil:
		// The connection closed: the client hung up, or shutdown cut it
		// (net/http cancels the request's context when the connection
		// closes or a write to it fails). Not a failure of the export.
		h.log.Warn("admin API: export stopped, its connection closed", "archive", archive, "admin", admin.String(), "err", err)
		panic(http.ErrAbortHandler)
	case err != nil:
		h.log.Error("admin API: export failed part-way", "archive", archive, "admin", admin.String(), "err", err)
		panic(http.ErrAbortHandler)
	default:
		h.log.Info("admin export", "archive", archive, "admin", admin.String())
	}
}

// maxLogArg bounds a request's argument in a log line.
const maxLogArg = 256

// LogArg is a request's argument for a log line: cut to maxLogArg bytes,
// with a mark.
func LogArg(arg string) string {
	if len(arg) <= maxLogArg {
		return arg
	}
	// A character cut in two is dropped.
	return strings.ToValidUTF8(arg[:maxLogArg], "") + "…"
}

func contentType(format string) string {
	switch format {
	case "csv":
		return "text/csv; charset=utf-8"
	case "jsonl":
		return "application/x-ndjson"
	}
	return "application/json"
}

// decode reads a JSON body into v, refusing unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, Response{Error: fmt.Sprintf("malformed request: %v", err)})
		return false
	}
	return true
}

// command runs any command given as a Request body.
func (h *Handler) command(w http.ResponseWriter, r *http.Request, admin jid.JID) {
	var req Request
	if !decode(w, r, &req) {
		return
	}
	if req.Args == nil {
		req.Args = map[string]string{}
	}
	h.run(w, r, admin, req)
}

// history exports a room's or a user's archive; key names the path
// wildcard ("room" or "jid").
func (h *Handler) history(key string) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, admin jid.JID) {
		q := r.URL.Query()
		h.run(w, r, admin, Request{Command: CmdHistoryExport, Args: map[string]string{
			"archive": r.PathValue(key), "with": q.Get("with"), "since": q.Get("since"),
			"until": q.Get("until"), "format": q.Get("format"),
		}})
	}
}

// presence sets (PUT) or clears (DELETE) a user's presence from outside.
func (h *Handler) presence(w http.ResponseWriter, r *http.Request, admin jid.JID) {
	req := Request{Command: CmdPresenceClear, Args: map[string]string{"jid": r.PathValue("jid")}}
	if r.Method == http.MethodPut {
		var body struct {
			Show   string `json:"show"`
			Status string `json:"status"`
			Call   string `json:"call"`
		}
		if !decode(w, r, &body) {
			return
		}
		req.Command = CmdPresenceSet
		req.Args["show"], req.Args["status"], req.Args["call"] = body.Show, body.Status, body.Call
	}
	h.run(w, r, admin, req)
}

// audit lists the audit log.
func (h *Handler) audit(w http.ResponseWriter, r *http.Request, admin jid.JID) {
	q := r.URL.Query()
	h.run(w, r, admin, Request{Command: CmdAuditList, Args: map[string]string{"since": q.Get("since"), "limit": q.Get("limit")}})
}

// Errors Deps.Run returns (wrapped, or matched by errors.Is) to set the
// answer's status. Any error not of a kind status knows is the server's
// own failure: a 500 whose text is logged, not shown.
var (
	// ErrForbidden: a command the admin may not run, such as one on
	// another host's accounts: 403.
	ErrForbidden = errors.New("forbidden")
	// ErrInvalid: the request's arguments are wrong (an unknown
	// command, a malformed address or time, a password or presence the
	// server refuses): 400.
	ErrInvalid = errors.New("invalid request")
	// ErrNotRecorded: the command's audit-log write failed, whether the
	// command itself was done (doneNotRecorded) or failed too
	// (NotRecordedError): a 500 that says so (not to be repeated as if
	// nothing had happened).
	ErrNotRecorded = errors.New("done, but not recorded in the audit log")
)

// status is the HTTP status of a failed command.
func status(err error) int {
	switch {
	case errors.Is(err, ErrNotRecorded):
		// An audit-log write that failed is the server's own failure,
		// whatever else failed with it (an export cut short at
		// shutdown).
		return http.StatusInternalServerError
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrInvalid), errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrNotFound), errors.Is(err, muc.ErrRoomNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrExists), errors.Is(err, muc.ErrRoomExists):
		return http.StatusConflict
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrBusy), errors.Is(err, muc.ErrRoomBusy):
		// Canceled: the server is shutting down (or the client left).
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// NotRecordedError is the outcome of a command whose audit-log write
// failed: Err is the command's own failure (nil: it was done), Audit the
// audit log's error. It matches ErrNotRecorded and Err, not Audit: the
// audit log's kind (a closed store, say) must not make the status say
// that nothing was done.
type NotRecordedError struct {
	Err, Audit error
}

func (e *NotRecordedError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%v: %v", ErrNotRecorded, e.Audit)
	}
	return fmt.Sprintf("%v; not recorded in the audit log either: %v", e.Err, e.Audit)
}

func (e *NotRecordedError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrNotRecorded}
	}
	return []error{e.Err, ErrNotRecorded}
}

// doneNotRecorded reports whether err says a command was done (an export
// sent whole) but not recorded in the audit log.
func doneNotRecorded(err error) bool {
	var nr *NotRecordedError
	return errors.As(err, &nr) && nr.Err == nil
}

// ServerFault reports whether err, a failed command's error, is the
// server's own failure (a 500): the failures worth logging. The others
// are the request's (400, 403, 404, 409) or the moment's (503: busy, a
// timeout, shutting down), and the answer says them.
func ServerFault(err error) bool { return status(err) == http.StatusInternalServerError }

// fail answers a command that failed before anything was written.
func (h *Handler) fail(w http.ResponseWriter, req Request, admin jid.JID, err error) {
	code := status(err)
	msg := err.Error()
	if code == http.StatusInternalServerError { // ServerFault
		h.log.Error("admin API: command failed", "command", req.Command, "admin", admin.String(), "err", err)
		msg = "internal error (the server's log has the details)"
		if doneNotRecorded(err) {
			msg = ErrNotRecorded.Error() + " (the server's log has the details)"
		}
	}
	writeJSON(w, code, Response{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, resp Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(resp)
}
