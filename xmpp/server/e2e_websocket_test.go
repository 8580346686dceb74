package server_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/ws"
)

// TestWebSocketLogin logs in over XMPP over WebSocket with mellium's RFC
// 7395 client (over golang.org/x/net/websocket) and exchanges messages with
// a client on TCP, both ways.
func TestWebSocketLogin(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP())
	alice := s.AddUser(t, "alice", "wonder land")
	bob := s.AddUser(t, "bob", "builder")
	for _, mech := range []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha1, sasl.Plain} {
		t.Run(mech.Name, func(t *testing.T) {
			a := s.MustLogin(t, alice, "wonder land", servertest.ClientOptions{
				WebSocket: true, Mechanisms: []sasl.Mechanism{mech}, Resource: "web-" + mech.Name,
			})
			if a.JID.String() != "alice@localhost/web-"+mech.Name {
				t.Fatalf("bound JID %s", a.JID)
			}
			b := s.MustLogin(t, bob, "builder", servertest.ClientOptions{})
			ctx := context.Background()
			if err := a.SendRaw(ctx, "<message xmlns='jabber:client' type='chat' to='"+b.JID.String()+"'><body>from the web</body></message>"); err != nil {
				t.Fatal(err)
			}
			m := b.Next(t, wait, servertest.Named("message"))
			if m.ChildText("body", "jabber:client") != "from the web" || m.AttrValue("from") != a.JID.String() {
				t.Fatalf("bob got %s", m)
			}
			if err := b.SendRaw(ctx, "<message xmlns='jabber:client' type='chat' to='"+a.JID.String()+"'><body>to the web &amp; back</body></message>"); err != nil {
				t.Fatal(err)
			}
			m = a.Next(t, wait, servertest.Named("message"))
			if m.ChildText("body", "jabber:client") != "to the web & back" || m.AttrValue("from") != b.JID.String() {
				t.Fatalf("alice got %s", m)
			}
		})
	}
}

// TestWebSocketFraming checks RFC 7395's framing with a raw client: each
// message parses by itself (servertest.WS.Read), the stream opens with
// <open/> and closes with <close/>, no STARTTLS is offered, stanzas declare
// jabber:client, and the stream restarts after SASL.
func TestWebSocketFraming(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP())
	s.AddUser(t, "alice", "secret")
	w := s.DialWS(t, nil)
	resp := w.Response
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
		t.Fatalf("handshake: %s %v", resp.Status, resp.Header)
	}
	open, features := w.Open(t, "localhost")
	if open.AttrValue("from") != "localhost" || open.AttrValue("version") != "1.0" || open.AttrValue("id") == "" {
		t.Errorf("server <open/>: %s", open)
	}
	for _, a := range open.Attrs {
		if a.Name == "xmlns:stream" {
			t.Errorf("server <open/> declares the stream prefix: %s", open)
		}
	}
	if features.Name != "features" || features.Space != wire.NSStream {
		t.Fatalf("features: %s", features)
	}
	if features.Child("starttls", "urn:ietf:params:xml:ns:xmpp-tls") != nil {
		t.Errorf("STARTTLS offered over WebSocket: %s", features)
	}
	mechs := features.Child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl")
	if mechs == nil || !strings.Contains(mechs.String(), "SCRAM-SHA-256-PLUS") || !strings.Contains(mechs.String(), "PLAIN") {
		t.Errorf("mechanisms over wss (TLS below, so PLAIN and channel binding): %s", mechs)
	}
	// A STARTTLS request is refused as RFC 6120 §5.4.2.2 says.
	w2 := s.DialWS(t, nil)
	w2.Open(t, "localhost")
	w2.Send(t, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if el := w2.MustRead(t); el.Name != "failure" || el.Space != "urn:ietf:params:xml:ns:xmpp-tls" {
		t.Errorf("STARTTLS over WebSocket answered %s", el)
	}
	if el := w2.MustRead(t); el.Name != "close" || el.Space != ws.NSFraming {
		t.Errorf("after the STARTTLS failure: %s", el)
	}

	w3 := s.DialWS(t, nil)
	full := w3.Login(t, "localhost", "alice", "secret")
	// A stanza split over three frames, with a Ping between them.
	msg := "<message xmlns='jabber:client' to='" + full + "' type='chat' id='m1'><body>in three parts</body></message>"
	w3.Frame(t, false, 0x1, []byte(msg[:10]), false)
	w3.Frame(t, true, 0x9, []byte("are you there"), false)
	w3.Frame(t, false, 0x0, []byte(msg[10:40]), false)
	w3.Frame(t, true, 0x0, []byte(msg[40:]), false)
	op, p, err := w3.ReadFrame()
	if err != nil || op != 0xA || string(p) != "are you there" {
		t.Fatalf("Ping answered with opcode %#x %q (%v), want a Pong with its payload", op, p, err)
	}
	m := w3.MustRead(t)
	if m.Name != "message" || m.Space != "jabber:client" || m.ChildText("body", "jabber:client") != "in three parts" || m.AttrValue("from") != full {
		t.Fatalf("message to self: %s", m)
	}
	// White space alone is ignored.
	w3.Send(t, " \n")
	w3.Send(t, "<iq xmlns='jabber:client' type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>")
	if el := w3.MustRead(t); el.Name != "iq" || el.AttrValue("id") != "ping" || el.AttrValue("type") != "result" {
		t.Fatalf("ping: %s", el)
	}
	// <close/> is answered with <close/>, then a Close frame.
	w3.Send(t, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
	if el := w3.MustRead(t); el.Name != "close" || el.Space != ws.NSFraming {
		t.Fatalf("answer to <close/>: %s", el)
	}
	var closed *servertest.WSClosed
	if _, err := w3.Read(); !errors.As(err, &closed) || closed.Code != 1000 {
		t.Fatalf("after <close/>: %v, want a Close frame with status 1000", err)
	}
}

// TestWebSocketHandshake checks the opening handshake (RFC 6455 §4.2,
// RFC 7395 "Handshake") and its refusals.
func TestWebSocketHandshake(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP())
	h := servertest.WSHeader()
	w := s.DialWS(t, h)
	sum := sha1.Sum([]byte(h.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := w.Response.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	if w.Response.StatusCode != http.StatusSwitchingProtocols || w.Response.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
		t.Errorf("handshake: %s %v", w.Response.Status, w.Response.Header)
	}
	cases := []struct {
		name   string
		edit   func(http.Header)
		status int
	}{
		{"no xmpp subprotocol", func(h http.Header) { h.Set("Sec-WebSocket-Protocol", "chat") }, http.StatusBadRequest},
		{"subprotocol among others", func(h http.Header) { h.Set("Sec-WebSocket-Protocol", "chat, XMPP") }, http.StatusSwitchingProtocols},
		{"version 8", func(h http.Header) { h.Set("Sec-WebSocket-Version", "8") }, http.StatusUpgradeRequired},
		{"short key", func(h http.Header) { h.Set("Sec-WebSocket-Key", "c2hvcnQ=") }, http.StatusBadRequest},
		{"no upgrade", func(h http.Header) { h.Del("Upgrade"); h.Del("Connection") }, http.StatusUpgradeRequired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := servertest.WSHeader()
			tc.edit(h)
			w := s.DialWS(t, h)
			if w.Response.StatusCode != tc.status {
				t.Fatalf("status %s, want %d", w.Response.Status, tc.status)
			}
			if p := w.Response.Header.Get("Sec-WebSocket-Protocol"); tc.status == http.StatusSwitchingProtocols && p != "XMPP" {
				t.Errorf("subprotocol answered %q, want the client's spelling XMPP", p)
			}
			if tc.status == http.StatusUpgradeRequired && w.Response.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("426 without Sec-WebSocket-Version: 13: %v", w.Response.Header)
			}
		})
	}
}

// TestWebSocketErrors sends what breaks RFC 6455 or RFC 7395 framing and
// checks the stream error, then the Close frame's status code (RFC 6455
// §7.4.1); the server goes on serving others.
func TestWebSocketErrors(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP(), servertest.WithConfig(func(c *config.Config) {
		c.Limits.MaxStanzaSize = 10000
	}))
	s.AddUser(t, "alice", "secret")
	cases := []struct {
		name string
		open bool // send <open/> first
		send func(t *testing.T, w *servertest.WS)
		cond string
		code uint16
	}{
		{"unmasked frame", true, func(t *testing.T, w *servertest.WS) {
			w.Frame(t, true, 0x1, []byte("<presence/>"), true)
		}, "bad-format", 1002},
		{"binary message", true, func(t *testing.T, w *servertest.WS) {
			w.Frame(t, true, 0x2, []byte("<presence/>"), false)
		}, "bad-format", 1003},
		{"reserved bit", true, func(t *testing.T, w *servertest.WS) {
			w.Frame(t, true, 0x1|0x40, []byte("<presence/>"), false)
		}, "bad-format", 1002},
		{"unknown opcode", true, func(t *testing.T, w *servertest.WS) {
			w.Frame(t, true, 0x3, nil, false)
		}, "bad-format", 1002},
		{"continuation without a message", true, func(t *testing.T, w *servertest.WS) {
			w.Frame(t, true, 0x0, []byte("<presence/>"), false)
		}, "bad-format", 1002},
		{"fragmented ping", true, func(t *testing.T, w *servertest.WS) {
			w.Frame(t, false, 0x9, nil, false)
		}, "bad-format", 1002},
		{"invalid UTF-8", true, func(t *testing.T, w *servertest.WS) {
			w.Send(t, "<presence><status>\xff\xfe</status></presence>")
		}, "not-well-formed", 1007},
		{"message too large", true, func(t *testing.T, w *servertest.WS) {
			w.Send(t, "<message><body>"+strings.Repeat("x", 20000)+"</body></message>")
		}, "policy-violation", 1009},
		{"fragments too large", true, func(t *testing.T, w *servertest.WS) {
			w.Frame(t, false, 0x1, []byte("<message><body>"+strings.Repeat("x", 6000)), false)
			w.Frame(t, true, 0x0, []byte(strings.Repeat("x", 6000)+"</body></message>"), false)
		}, "policy-violation", 1009},
		{"open in no namespace", false, func(t *testing.T, w *servertest.WS) {
			w.Send(t, "<open to='localhost' version='1.0'/>")
		}, "invalid-namespace", 1000},
		{"second open before authentication", true, func(t *testing.T, w *servertest.WS) {
			w.Send(t, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>")
		}, "bad-format", 1000},
		{"unknown host", false, func(t *testing.T, w *servertest.WS) {
			w.Send(t, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.net' version='1.0'/>")
		}, "host-unknown", 1000},
		{"not well-formed", true, func(t *testing.T, w *servertest.WS) {
			w.Send(t, "<presence><status></presence>")
		}, "not-well-formed", 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := s.DialWS(t, nil)
			if tc.open {
				w.Open(t, "localhost")
			}
			tc.send(t, w)
			var cond string
			for cond == "" {
				el, err := w.Read()
				if err != nil {
					t.Fatalf("no stream error before %v", err)
				}
				if el.Name == "error" && el.Space == wire.NSStream {
					for _, c := range el.Children {
						if c.Name != "text" {
							cond = c.Name
						}
					}
				}
			}
			if cond != tc.cond {
				t.Errorf("stream error %s, want %s", cond, tc.cond)
			}
			if el, err := w.Read(); err != nil || el.Name != "close" || el.Space != ws.NSFraming {
				t.Fatalf("after the stream error: %v %v, want <close/>", el, err)
			}
			var closed *servertest.WSClosed
			if _, err := w.Read(); !errors.As(err, &closed) || closed.Code != tc.code {
				t.Fatalf("end: %v, want a Close frame with status %d", err, tc.code)
			}
			if _, err := w.Read(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "reset") {
				t.Errorf("after the Close frame: %v, want the end of the connection", err)
			}
		})
	}
	// The server goes on.
	s.DialWS(t, nil).Login(t, "localhost", "alice", "secret")
}

// TestWebSocketClientClose: a Close frame from the client, without
// <close/>, ends the session as a lost connection does; the server answers
// with a Close frame of the same status (RFC 6455 §5.5.1).
func TestWebSocketClientClose(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP())
	s.AddUser(t, "alice", "secret")
	bob := s.AddUser(t, "bob", "builder")
	b := s.MustLogin(t, bob, "builder", servertest.ClientOptions{})
	w := s.DialWS(t, nil)
	full := w.Login(t, "localhost", "alice", "secret")
	w.Send(t, "<presence xmlns='jabber:client' to='"+b.JID.String()+"'/>")
	b.Next(t, wait, servertest.Named("presence", "from", full))
	w.Frame(t, true, 0x8, []byte{0x03, 0xE9}, false) // 1001, going away
	var closed *servertest.WSClosed
	for {
		_, err := w.Read()
		if errors.As(err, &closed) {
			break
		}
		if err != nil {
			t.Fatalf("no Close frame in answer: %v", err)
		}
	}
	if closed.Code != 1001 {
		t.Errorf("Close frame status %d, want 1001", closed.Code)
	}
	// Directed presence ends with the session (RFC 6121 §4.6.3).
	if p := b.Next(t, wait, servertest.Named("presence", "from", full)); p.AttrValue("type") != "unavailable" {
		t.Fatalf("bob got %s", p)
	}
}

// TestWebSocketShutdown: a WebSocket session is closed with the others at
// shutdown, with system-shutdown.
func TestWebSocketShutdown(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP())
	s.AddUser(t, "alice", "secret")
	w := s.DialWS(t, nil)
	w.Login(t, "localhost", "alice", "secret")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	el := w.MustRead(t)
	if el.Name != "error" || el.Child("system-shutdown", "urn:ietf:params:xml:ns:xmpp-streams") == nil {
		t.Fatalf("at shutdown: %s", el)
	}
}

// TestWebSocketDiscovery checks XEP-0156 discovery of the endpoint.
func TestWebSocketDiscovery(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: s.TLSConfig()}, Timeout: 10 * time.Second}
	want := "wss://" + s.HTTP + "/xmpp-websocket"
	for _, path := range []string{"/.well-known/host-meta", "/.well-known/host-meta.json"} {
		resp, err := client.Get("https://" + s.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %s %v", path, resp.Status, resp.Header)
		}
		if !strings.Contains(string(body), "urn:xmpp:alt-connections:websocket") || !strings.Contains(string(body), want) {
			t.Errorf("%s: %s, want the link %s", path, body, want)
		}
	}
}

// TestWebSocketIdle: a WebSocket session idle past the hand-over to a
// fresh goroutine (c2s: half a second) and past its idle timeout is kept:
// the keepalive ping is sent over WebSocket and answered, and a message
// whose frames arrive across those pauses is delivered whole.
func TestWebSocketIdle(t *testing.T) {
	s := servertest.Start(t, servertest.WithHTTP(), servertest.WithConfig(func(c *config.Config) {
		c.Limits.IdleTimeout = config.Duration(1500 * time.Millisecond)
	}))
	s.AddUser(t, "alice", "secret")
	w := s.DialWS(t, nil)
	full := w.Login(t, "localhost", "alice", "secret")
	_ = w.Conn.SetDeadline(time.Now().Add(20 * time.Second))
	msg := "<message xmlns='jabber:client' to='" + full + "' type='chat'><body>slowly</body></message>"
	w.Frame(t, false, 0x1, []byte(msg[:20]), false)
	time.Sleep(800 * time.Millisecond)
	w.Frame(t, true, 0x0, []byte(msg[20:]), false)
	if m := w.MustRead(t); m.Name != "message" || m.ChildText("body", "jabber:client") != "slowly" {
		t.Fatalf("got %s", m)
	}
	// Silence: the server pings after the idle timeout.
	ping := w.MustRead(t)
	if ping.Name != "iq" || ping.AttrValue("type") != "get" || ping.Child("ping", "urn:xmpp:ping") == nil {
		t.Fatalf("after the idle timeout: %s, want a ping", ping)
	}
	w.Send(t, "<iq xmlns='jabber:client' type='result' id='"+ping.AttrValue("id")+"' to='localhost'/>")
	w.Send(t, msg)
	if m := w.MustRead(t); m.Name != "message" {
		t.Fatalf("after the ping: %s", m)
	}
}
