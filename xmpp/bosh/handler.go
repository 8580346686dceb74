package bosh

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Path is where the endpoint is served, as Prosody does by default.
const Path = "/http-bind"

// RelXBOSH is the link relation of the endpoint in XEP-0156 discovery.
const RelXBOSH = "urn:xmpp:alt-connections:xbosh"

// Defaults of Options.
const (
	DefaultMaxWait    = 60 * time.Second
	DefaultInactivity = 60 * time.Second
	DefaultPolling    = 5 * time.Second
	DefaultMaxBody    = 1 << 20
)

// contentType is the Content-Type of responses unless the client asked for
// another (XEP-0124 §7.1).
const contentType = "text/xml; charset=utf-8"

// Options configure a Handler.
type Options struct {
	// MaxWait bounds the 'wait' a client may ask for: how long a request
	// is held when nothing is to be sent.
	MaxWait time.Duration
	// Inactivity is how long a session lives with no request held (the
	// 'inactivity' attribute): a client silent for longer is gone.
	Inactivity time.Duration
	// Polling is the shortest interval between a polling client's empty
	// requests (the 'polling' attribute, advisory).
	Polling time.Duration
	// MaxBody bounds a request's body (more terminates it with
	// policy-violation) and what waits for the client (more blocks the
	// stream server's writes until a request takes it).
	MaxBody int
	// IsHost reports whether a domain is served: a session for another
	// ends with host-unknown. Nil lets the stream server decide.
	IsHost func(domain string) bool
	Logger *slog.Logger
}

// Handler serves the BOSH endpoint. Each session it creates is handed, as
// a net.Conn, to serve, with the TLS state of the HTTPS request that
// created it (nil over plain HTTP); serve returns at once, the stream is
// served on its own goroutines.
type Handler struct {
	opts  Options
	serve func(nc net.Conn, state *tls.ConnectionState)

	mu       sync.Mutex
	sessions map[string]*session
	closing  bool
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a Handler.
func NewHandler(opts Options, serve func(nc net.Conn, state *tls.ConnectionState)) *Handler {
	if opts.MaxWait <= 0 {
		opts.MaxWait = DefaultMaxWait
	}
	if opts.Inactivity <= 0 {
		opts.Inactivity = DefaultInactivity
	}
	if opts.Polling <= 0 {
		opts.Polling = DefaultPolling
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts, serve: serve, sessions: make(map[string]*session)}
}

// ServeHTTP serves a request to the endpoint. Any origin may use it (CORS):
// a session is bound to its unguessable 'sid' and authenticated in band
// (SASL), not by cookies a page from another origin could use.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodPost:
	case http.MethodOptions:
		// A browser's preflight of a cross-origin POST with a text/xml
		// body.
		hd.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		hd.Set("Access-Control-Allow-Headers", "Content-Type")
		hd.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodGet, http.MethodHead:
		hd.Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "XMPP over BOSH (XEP-0124, XEP-0206): POST a <body/> here.\n")
		return
	default:
		hd.Set("Allow", "POST, OPTIONS, GET, HEAD")
		http.Error(w, "XMPP over BOSH: POST only", http.StatusMethodNotAllowed)
		return
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		// No 'accept' attribute is offered (§7.2).
		writeBody(w, "", terminateBody(condBadRequest))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.opts.MaxBody)))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			h.refuse(w, data, condPolicyViolation)
		}
		return
	}
	// The request is read. Its response may wait as long as 'wait',
	// longer than the server's timeout for reading a request: net/http
	// lifts that once the body is read (TestHeldPastReadTimeout).
	rb, cond, why := parseBody(data)
	if rb == nil {
		h.opts.Logger.Debug("bosh: request refused", "condition", cond, "reason", why, "remote", r.RemoteAddr)
		h.refuse(w, data, cond)
		return
	}
	if rb.sid == "" {
		h.create(w, r, rb)
		return
	}
	h.mu.Lock()
	s, closing := h.sessions[rb.sid], h.closing
	h.mu.Unlock()
	switch {
	case closing:
		// The session ended with system-shutdown, as does a request
		// that arrives after.
		writeBody(w, "", terminateBody(condSystemShutdown))
		return
	case s == nil:
		writeBody(w, "", terminateBody(condItemNotFound))
		return
	}
	h.respond(w, r, s, rb)
}

// refuse answers a request that cannot be read with the terminal
// condition cond, and ends the session its start tag names, if any: its
// client takes it for ended.
func (h *Handler) refuse(w http.ResponseWriter, data []byte, cond string) {
	if sid := sidOf(data); sid != "" {
		h.mu.Lock()
		s := h.sessions[sid]
		h.mu.Unlock()
		if s != nil {
			s.end(cond)
		}
	}
	writeBody(w, "", terminateBody(cond))
}

// create starts a session (XEP-0124 §7.1, XEP-0206 §4).
func (h *Handler) create(w http.ResponseWriter, r *http.Request, rb *reqBody) {
	switch {
	case rb.to == "":
		writeBody(w, "", terminateBody(condImproperAddressing))
		return
	case h.opts.IsHost != nil && !h.opts.IsHost(rb.to):
		writeBody(w, "", terminateBody(condHostUnknown))
		return
	}
	wait := h.opts.MaxWait
	if rb.wait >= 0 {
		wait = min(wait, time.Duration(rb.wait)*time.Second)
	}
	hold := 1
	if rb.hold >= 0 {
		hold = min(hold, rb.hold)
	}
	s := &session{
		h:        h,
		sid:      rand.Text(),
		remote:   remoteAddr(r),
		local:    localAddr(r),
		wait:     wait,
		hold:     hold,
		requests: hold + 1,
		content:  contentType,
		ver:      minVersion(rb.ver),
		to:       rb.to,
		lang:     rb.lang,
		changed:  make(chan struct{}),
		rid:      rb.rid - 1,
		in:       []inChunk{{b: streamHeader(rb.to, rb.from, rb.lang)}},
	}
	if validContentType(rb.content) {
		s.content = rb.content
	}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		writeBody(w, "", terminateBody(condSystemShutdown))
		return
	}
	h.sessions[s.sid] = s
	h.mu.Unlock()
	h.opts.Logger.Debug("bosh: session created", "sid", s.sid, "remote", r.RemoteAddr, "wait", wait, "hold", hold)
	var state *tls.ConnectionState
	if r.TLS != nil {
		// Secure, but with no channel binding: the session spans HTTP
		// connections, and no one connection's TLS identifies it.
		state = &tls.ConnectionState{Version: r.TLS.Version, CipherSuite: r.TLS.CipherSuite, ServerName: r.TLS.ServerName}
	}
	h.serve(s, state)
	// The creation request is answered as any: with the stream's
	// features, once written (XEP-0206 §4). What it carries is not for
	// the stream.
	rb.payload, rb.restart, rb.terminate = nil, false, false
	h.respond(w, r, s, rb)
}

// respond processes rb in s and writes its response, once there is one.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, s *session, rb *reqBody) {
	body, req := s.receive(rb)
	if req != nil {
		if body = h.await(r.Context(), s, req); body == nil {
			return
		}
	}
	writeBody(w, s.content, body)
}

// await waits for req's response: until the stream has something for the
// client, the session's 'wait' passes, or the client goes away (nil).
func (h *Handler) await(ctx context.Context, s *session, req *request) []byte {
	t := time.NewTimer(s.wait)
	defer t.Stop()
	for {
		select {
		case b := <-req.resp:
			return b
		case <-t.C:
			// Answered now, unless it waits for a request before it
			// or for the stream server to read: then once it is
			// held, at the latest after another wait.
			if !s.expire(req) {
				t.Reset(max(s.wait, time.Second))
			}
		case <-ctx.Done():
			s.abandon(req)
			return nil
		}
	}
}

func writeBody(w http.ResponseWriter, content string, body []byte) {
	if content == "" {
		content = contentType
	}
	hd := w.Header()
	hd.Set("Content-Type", content)
	hd.Set("Cache-Control", "no-store")
	// A response holds what others sent: never a page that runs.
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	_, _ = w.Write(body)
}

// forget takes s out of the table.
func (h *Handler) forget(s *session) {
	h.mu.Lock()
	if h.sessions[s.sid] == s {
		delete(h.sessions, s.sid)
	}
	h.mu.Unlock()
}

// Close ends every session with system-shutdown and refuses new ones. An
// HTTP server's shutdown waits for the requests held until then. The
// stream server reads the end of each stream.
func (h *Handler) Close() {
	h.mu.Lock()
	h.closing = true
	ss := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		ss = append(ss, s)
	}
	h.mu.Unlock()
	for _, s := range ss {
		s.end(condSystemShutdown)
	}
}

// SessionCount returns the number of sessions.
func (h *Handler) SessionCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

func remoteAddr(r *http.Request) net.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.TCPAddr{}
}

func localAddr(r *http.Request) net.Addr {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a
	}
	return &net.TCPAddr{}
}
