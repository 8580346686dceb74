package servertest

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	xws "golang.org/x/net/websocket"

	"switchboard/xmpp/config"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/ws"
)

// WithHTTP opens the HTTPS listener of the web features (the admin API,
// XMPP over WebSocket) on a free loopback port.
func WithHTTP() Option {
	return func(cfg *config.Config) { cfg.Listen.HTTP = "127.0.0.1:0" }
}

// dialWebSocket opens an XMPP WebSocket (wss) with golang.org/x/net's
// client, an implementation independent of the server's.
func (s *Server) dialWebSocket(cfg *tls.Config) (net.Conn, error) {
	if s.HTTP == "" {
		return nil, fmt.Errorf("servertest: no HTTP listener (use WithHTTP)")
	}
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.HTTP, cfg)
	if err != nil {
		return nil, err
	}
	// The handshake's bound; Login sets the negotiation's.
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	wc, err := xws.NewConfig("wss://"+s.Domain+ws.Path, "https://"+s.Domain)
	if err != nil {
		tc.Close()
		return nil, err
	}
	wc.Protocol = []string{ws.Subprotocol}
	conn, err := xws.NewClient(wc, tc)
	if err != nil {
		tc.Close()
		return nil, err
	}
	return conn, nil
}

// WS is a raw WebSocket client, for the cases of RFC 6455 and RFC 7395 no
// real client produces: it writes frames as given and reads the server's
// messages one by one.
type WS struct {
	Conn net.Conn
	br   *bufio.Reader
	// Response is the handshake's HTTP response.
	Response *http.Response
}

// DialWS performs the WebSocket handshake on the HTTPS listener with
// the request's header fields given (the defaults of a valid XMPP
// handshake when nil). It returns the client whatever the status; the
// caller checks Response.
func (s *Server) DialWS(t testing.TB, header http.Header) *WS {
	t.Helper()
	if s.HTTP == "" {
		t.Fatal("servertest: no HTTP listener (use WithHTTP)")
	}
	tc, err := tls.Dial("tcp", s.HTTP, s.TLSConfig())
	if err != nil {
		t.Fatalf("servertest: dial: %v", err)
	}
	t.Cleanup(func() { tc.Close() })
	_ = tc.SetDeadline(time.Now().Add(20 * time.Second))
	if header == nil {
		header = WSHeader()
	}
	req, _ := http.NewRequest(http.MethodGet, "https://"+s.Domain+ws.Path, nil)
	req.Header = header
	if err := req.Write(tc); err != nil {
		t.Fatalf("servertest: write handshake: %v", err)
	}
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("servertest: read handshake response: %v", err)
	}
	return &WS{Conn: tc, br: br, Response: resp}
}

// WSHeader returns the header fields of a valid XMPP WebSocket handshake.
func WSHeader() http.Header {
	var key [16]byte
	_, _ = rand.Read(key[:])
	return http.Header{
		"Connection":             {"Upgrade"},
		"Upgrade":                {"websocket"},
		"Sec-Websocket-Version":  {"13"},
		"Sec-Websocket-Key":      {base64.StdEncoding.EncodeToString(key[:])},
		"Sec-Websocket-Protocol": {"xmpp"},
	}
}

// Frame writes one frame: fin, opcode op, payload, masked as a client
// must (RFC 6455 §5.3) unless unmasked.
func (w *WS) Frame(t testing.TB, fin bool, op byte, payload []byte, unmasked bool) {
	t.Helper()
	if err := w.writeFrame(fin, op, payload, unmasked); err != nil {
		t.Fatalf("servertest: write frame: %v", err)
	}
}

func (w *WS) writeFrame(fin bool, op byte, payload []byte, unmasked bool) error {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	var m byte
	if !unmasked {
		m = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, m|byte(n))
	case n <= 0xFFFF:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	p := append([]byte(nil), payload...)
	if !unmasked {
		var key [4]byte
		_, _ = rand.Read(key[:])
		b = append(b, key[:]...)
		for i := range p {
			p[i] ^= key[i&3]
		}
	}
	_, err := w.Conn.Write(append(b, p...))
	return err
}

// Send writes s as one text message.
func (w *WS) Send(t testing.TB, s string) {
	t.Helper()
	w.Frame(t, true, 0x1, []byte(s), false)
}

// ReadFrame reads the server's next frame: its opcode and payload. It
// fails on a masked frame (RFC 6455 §5.1: a server never masks) or a
// fragment (the server sends each message whole).
func (w *WS) ReadFrame() (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 || h[1]&0x80 != 0 {
		return 0, nil, fmt.Errorf("servertest: fragmented or masked frame from the server: % x", h)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(w.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(w.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("servertest: frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(w.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0F, payload, nil
}

// Read returns the next text message, parsed on its own (RFC 7395: every
// message is a well-formed document, its namespaces declared), skipping
// Pongs. A Close frame is returned as the error *WSClosed.
func (w *WS) Read() (*wire.Element, error) {
	for {
		op, p, err := w.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch op {
		case 0x1:
			el, err := wire.Parse(p, wire.Scope{})
			if err != nil {
				return nil, fmt.Errorf("servertest: message %q does not parse by itself: %w", p, err)
			}
			return el, nil
		case 0x8:
			c := &WSClosed{Code: 1005}
			if len(p) >= 2 {
				c.Code = binary.BigEndian.Uint16(p)
			}
			// RFC 6455 §5.5.1: a Close frame is answered with one.
			w.writeFrame(true, 0x8, p[:min(len(p), 2)], false)
			return nil, c
		case 0xA:
		default:
			return nil, fmt.Errorf("servertest: unexpected opcode %#x", op)
		}
	}
}

// MustRead is Read that fails the test on an error.
func (w *WS) MustRead(t testing.TB) *wire.Element {
	t.Helper()
	el, err := w.Read()
	if err != nil {
		t.Fatalf("servertest: read message: %v", err)
	}
	return el
}

// WSClosed is the server's Close frame.
type WSClosed struct{ Code uint16 }

func (c *WSClosed) Error() string { return fmt.Sprintf("websocket closed with status %d", c.Code) }

// Open sends <open/> for domain and reads the server's <open/> and
// features, which it returns.
func (w *WS) Open(t testing.TB, domain string) (open, features *wire.Element) {
	t.Helper()
	w.Send(t, "<open xmlns='"+ws.NSFraming+"' to='"+domain+"' version='1.0'/>")
	open = w.MustRead(t)
	if open.Name != "open" || open.Space != ws.NSFraming {
		t.Fatalf("servertest: answer to <open/>: %s", open)
	}
	return open, w.MustRead(t)
}

// Login opens the stream, authenticates with PLAIN and binds, and returns
// the bound JID.
func (w *WS) Login(t testing.TB, domain, local, password string) string {
	t.Helper()
	w.Open(t, domain)
	cred := base64.StdEncoding.EncodeToString([]byte("\x00" + local + "\x00" + password))
	w.Send(t, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+cred+"</auth>")
	if el := w.MustRead(t); el.Name != "success" {
		t.Fatalf("servertest: PLAIN: %s", el)
	}
	_, features := w.Open(t, domain)
	if features.Child("bind", "urn:ietf:params:xml:ns:xmpp-bind") == nil {
		t.Fatalf("servertest: no bind feature after SASL: %s", features)
	}
	w.Send(t, "<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	el := w.MustRead(t)
	j := el.Child("bind", "urn:ietf:params:xml:ns:xmpp-bind").ChildText("jid", "urn:ietf:params:xml:ns:xmpp-bind")
	if el.AttrValue("type") != "result" || !strings.Contains(j, "/") {
		t.Fatalf("servertest: bind: %s", el)
	}
	return j
}
