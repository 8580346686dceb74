package ws

import (
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Path is where the endpoint is served, as Prosody and ejabberd do by
// default.
const Path = "/xmpp-websocket"

// Subprotocol is the WebSocket subprotocol of XMPP (RFC 7395, "Handshake").
const Subprotocol = "xmpp"

// handshakeTimeout bounds the write of the handshake's response.
const handshakeTimeout = 10 * time.Second

// keyGUID is appended to the client's key for Sec-WebSocket-Accept (RFC
// 6455 §4.2.2).
const keyGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Options configure a Handler.
type Options struct {
	// MaxMessage bounds a message's payload; more ends the stream with
	// policy-violation and the connection with status 1009.
	MaxMessage int
	Logger     *slog.Logger
}

// Handler serves the WebSocket endpoint: it upgrades each request and
// hands the connection to serve, with the TLS state of the HTTPS
// connection it came on (nil over plain HTTP). serve returns at once; the
// stream is served on its own goroutines.
type Handler struct {
	opts  Options
	serve func(nc net.Conn, state *tls.ConnectionState)
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a Handler.
func NewHandler(opts Options, serve func(nc net.Conn, state *tls.ConnectionState)) *Handler {
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = 256 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts, serve: serve}
}

// ServeHTTP performs the opening handshake (RFC 6455 §4.2) and hands the
// connection on. Origins are not checked: the stream authenticates in band
// (SASL), not with cookies a page from another origin could use.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	protocol := offered(r.Header, "Sec-WebSocket-Protocol", Subprotocol)
	switch {
	case r.Method != http.MethodGet:
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "XMPP over WebSocket: GET only", http.StatusMethodNotAllowed)
		return
	case r.ProtoMajor != 1 || !hasToken(r.Header, "Connection", "upgrade") || !hasToken(r.Header, "Upgrade", "websocket"):
		// Not a WebSocket handshake (HTTP/2 has none: RFC 8441 is
		// not offered).
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "XMPP over WebSocket (RFC 7395): upgrade to a WebSocket", http.StatusUpgradeRequired)
		return
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		// §4.4: the versions we speak.
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "unsupported WebSocket version", http.StatusUpgradeRequired)
		return
	case protocol == "":
		// RFC 7395, "Handshake": without the xmpp subprotocol there is
		// no XMPP WebSocket connection.
		http.Error(w, "the xmpp WebSocket subprotocol is required", http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		http.Error(w, "invalid Sec-WebSocket-Key", http.StatusBadRequest)
		return
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.opts.Logger.Warn("websocket: hijack failed", "err", err)
		http.Error(w, "cannot upgrade this connection", http.StatusInternalServerError)
		return
	}
	sum := sha1.Sum([]byte(key + keyGUID))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n" +
		"Sec-WebSocket-Protocol: " + protocol + "\r\n\r\n"
	// The HTTP server's deadlines no longer apply: the stream sets its
	// own.
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	if _, err := nc.Write([]byte(resp)); err != nil {
		nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	var state *tls.ConnectionState
	if r.TLS != nil {
		st := *r.TLS
		state = &st
	}
	h.serve(NewConn(nc, brw.Reader, h.opts.MaxMessage), state)
}

// hasToken reports whether a comma-separated header field has token, in
// any case (RFC 9110 §5.6.1).
func hasToken(hd http.Header, field, token string) bool {
	return offered(hd, field, token) != ""
}

// offered returns token as a comma-separated header field spells it, in
// any case, or "". The subprotocol is answered as the client spelled it:
// a client fails a handshake whose subprotocol it did not offer (RFC 6455
// §4.1).
func offered(hd http.Header, field, token string) string {
	for _, v := range hd.Values(field) {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); strings.EqualFold(t, token) {
				return t
			}
		}
	}
	return ""
}

// RelWebSocket is the link relation of the endpoint in XEP-0156
// discovery.
const RelWebSocket = "urn:xmpp:alt-connections:websocket"
