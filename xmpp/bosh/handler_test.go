package bosh

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchboard/xmpp/wire"
)

const testWait = 10 * time.Second

// harness is a Handler on a real HTTP server, whose sessions the test
// serves in place of the client stream server.
type harness struct {
	t     *testing.T
	h     *Handler
	srv   *httptest.Server
	conns chan net.Conn
}

func newHarness(t *testing.T, opts Options, cfg func(*http.Server)) *harness {
	t.Helper()
	hs := &harness{t: t, conns: make(chan net.Conn, 8)}
	if opts.IsHost == nil {
		opts.IsHost = func(d string) bool { return d == "example.org" }
	}
	hs.h = NewHandler(opts, func(nc net.Conn, _ *tls.ConnectionState) { hs.conns <- nc })
	hs.srv = httptest.NewUnstartedServer(hs.h)
	if cfg != nil {
		cfg(hs.srv.Config)
	}
	hs.srv.Start()
	t.Cleanup(func() {
		hs.h.Close()
		hs.srv.Close()
	})
	return hs
}

// post sends body and returns the status, headers and parsed response.
func (hs *harness) post(body string) (*http.Response, *wire.Element) {
	hs.t.Helper()
	resp, el, err := hs.tryPost(body)
	if err != nil {
		hs.t.Fatal(err)
	}
	return resp, el
}

// postLater posts body from another goroutine, for a request the server
// holds, and returns where its response arrives (nil after an error,
// which fails the test).
func (hs *harness) postLater(body string) <-chan *wire.Element {
	ch := make(chan *wire.Element, 1)
	go func() {
		_, el, err := hs.tryPost(body)
		if err != nil {
			hs.t.Error(err)
		}
		ch <- el
	}()
	return ch
}

// waitFor waits until cond holds for the session sid's state.
func (hs *harness) waitFor(sid, what string, cond func(*session) bool) {
	hs.t.Helper()
	deadline := time.Now().Add(testWait)
	for {
		hs.h.mu.Lock()
		s := hs.h.sessions[sid]
		hs.h.mu.Unlock()
		if s != nil {
			s.mu.Lock()
			ok := cond(s)
			s.mu.Unlock()
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			hs.t.Fatalf("session %s: not %s within %s", sid, what, testWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// holding: the session holds a request with rid.
func holding(rid uint64) func(*session) bool {
	return func(s *session) bool {
		return slices.ContainsFunc(s.held, func(r *request) bool { return r.body.rid == rid })
	}
}

// waiting: the request with rid waits for one before it, or for the
// stream server to read.
func waiting(rid uint64) func(*session) bool {
	return func(s *session) bool { return s.ahead[rid] != nil }
}

func (hs *harness) tryPost(body string) (*http.Response, *wire.Element, error) {
	resp, err := hs.srv.Client().Post(hs.srv.URL+Path, "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	el, err := wire.Parse(b, wire.Scope{})
	if err != nil {
		return resp, nil, errors.New("response " + strconv.Quote(string(b)) + ": " + err.Error())
	}
	return resp, el, nil
}

// stream is the server's side of a session.
type stream struct {
	t   *testing.T
	nc  net.Conn
	dec *wire.Decoder
}

// accept takes the next session and reads its stream header.
func (hs *harness) accept() (*stream, *wire.Header) {
	hs.t.Helper()
	select {
	case nc := <-hs.conns:
		st := &stream{t: hs.t, nc: nc, dec: wire.NewDecoder(nc, wire.Limits{})}
		_ = nc.SetReadDeadline(time.Now().Add(testWait))
		h, err := st.dec.ReadHeader()
		if err != nil {
			hs.t.Fatalf("stream header: %v", err)
		}
		return st, h
	case <-time.After(testWait):
		hs.t.Fatal("no session handed over")
		return nil, nil
	}
}

func (st *stream) write(s string) {
	st.t.Helper()
	if _, err := st.nc.Write([]byte(s)); err != nil {
		st.t.Fatalf("write: %v", err)
	}
}

// end checks that the stream ends with want (io.EOF: the session ended;
// wire.ErrStreamEnd: the client ended the stream).
func (st *stream) end(want error) {
	st.t.Helper()
	_ = st.nc.SetReadDeadline(time.Now().Add(testWait))
	if _, err := st.dec.ReadElement(); !errors.Is(err, want) {
		st.t.Fatalf("stream: %v, want %v", err, want)
	}
}

// writeLater writes s from another goroutine.
func (st *stream) writeLater(s string) {
	go func() {
		if _, err := st.nc.Write([]byte(s)); err != nil {
			st.t.Errorf("write: %v", err)
		}
	}()
}

func (st *stream) read() *wire.Element {
	st.t.Helper()
	_ = st.nc.SetReadDeadline(time.Now().Add(testWait))
	el, err := st.dec.ReadElement()
	if err != nil {
		st.t.Fatalf("read: %v", err)
	}
	return el
}

// The server's answer to a stream header, and its features.
const (
	serverHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='example.org' id='s1' version='1.0'>"
	features     = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
)

// session creates a session with rid 1000 and answers it with features.
func (hs *harness) session(attrs string) (sid string, st *stream, created *wire.Element) {
	hs.t.Helper()
	type result struct {
		el  *wire.Element
		err error
	}
	done := make(chan result, 1)
	go func() {
		_, el, err := hs.tryPost("<body xmlns='" + NS + "' xmlns:xmpp='" + NSXBOSH + "' rid='1000' to='example.org' xml:lang='en' xmpp:version='1.0' " + attrs + "/>")
		done <- result{el, err}
	}()
	st, h := hs.accept()
	if h.To != "example.org" || h.Lang != "en" || h.Version != "1.0" || h.Default != wire.NSClient {
		hs.t.Fatalf("stream header %+v", h)
	}
	st.write(serverHeader + features)
	r := <-done
	if r.err != nil {
		hs.t.Fatal(r.err)
	}
	return r.el.AttrValue("sid"), st, r.el
}

func body(sid string, rid int, attrs, content string) string {
	b := "<body xmlns='" + NS + "' sid='" + sid + "' rid='" + strconv.Itoa(rid) + "'"
	if attrs != "" {
		b += " " + attrs
	}
	return b + ">" + content + "</body>"
}

func TestCreate(t *testing.T) {
	hs := newHarness(t, Options{MaxWait: 30 * time.Second, Inactivity: 40 * time.Second, Polling: 3 * time.Second}, nil)
	sid, st, el := hs.session("wait='60' hold='3' ver='1.6'")
	want := map[string]string{
		"wait": "30", "requests": "2", "hold": "1", "inactivity": "40", "polling": "3",
		"ver": "1.6", "from": "example.org", "xmpp:version": "1.0", "xmpp:restartlogic": "true",
		"xmlns:xmpp": NSXBOSH, "xmlns:stream": wire.NSStream,
	}
	for k, v := range want {
		if got := el.AttrValue(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(sid) < 20 {
		t.Errorf("sid %q: not a long random string", sid)
	}
	f := el.Child("features", wire.NSStream)
	if f == nil || f.Child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl") == nil {
		t.Fatalf("no features in the creation response: %s", el)
	}
	if _, ok := el.Attr("type"); ok {
		t.Errorf("creation response typed: %s", el)
	}
	// Later responses do not repeat the creation attributes.
	st.writeLater("<presence/>")
	_, el = hs.post(body(sid, 1001, "", ""))
	if _, ok := el.Attr("sid"); ok {
		t.Errorf("second response repeats the creation attributes: %s", el)
	}
}

func TestVersion(t *testing.T) {
	for _, tc := range []struct{ client, want string }{
		{"", Version}, {"1.6", "1.6"}, {"1.11", "1.11"}, {"1.20", Version}, {"2.0", Version}, {"x", Version}, {"0.9", "0.9"},
	} {
		if got := minVersion(tc.client); got != tc.want {
			t.Errorf("minVersion(%q) = %q, want %q", tc.client, got, tc.want)
		}
	}
}

// TestRefused checks the terminal binding conditions of requests that
// start no session or name none, and the endpoint's other methods.
func TestRefused(t *testing.T) {
	hs := newHarness(t, Options{MaxBody: 4096}, nil)
	for _, tc := range []struct{ name, body, cond string }{
		{"no to", "<body xmlns='" + NS + "' rid='1'/>", condImproperAddressing},
		{"unknown host", "<body xmlns='" + NS + "' rid='1' to='other.example'/>", condHostUnknown},
		{"no rid", "<body xmlns='" + NS + "' to='example.org'/>", condBadRequest},
		{"rid zero", "<body xmlns='" + NS + "' rid='0' to='example.org'/>", condBadRequest},
		{"rid too large", "<body xmlns='" + NS + "' rid='9007199254740992' to='example.org'/>", condBadRequest},
		{"rid not a number", "<body xmlns='" + NS + "' rid='x' to='example.org'/>", condBadRequest},
		{"negative wait", "<body xmlns='" + NS + "' rid='1' to='example.org' wait='-1'/>", condBadRequest},
		{"bad hold", "<body xmlns='" + NS + "' rid='1' to='example.org' hold='x'/>", condBadRequest},
		{"unknown type", "<body xmlns='" + NS + "' rid='1' to='example.org' type='pause'/>", condBadRequest},
		{"not a body", "<iq xmlns='" + NS + "' rid='1' to='example.org'/>", condBadRequest},
		{"other namespace", "<body xmlns='jabber:client' rid='1' to='example.org'/>", condBadRequest},
		{"text", "<body xmlns='" + NS + "' rid='1' to='example.org'>hello</body>", condBadRequest},
		{"not well-formed", "<body xmlns='" + NS + "' rid='1' to='example.org'><message></body>", condBadRequest},
		{"comment", "<body xmlns='" + NS + "' rid='1' to='example.org'><!-- x --></body>", condBadRequest},
		{"unknown sid", "<body xmlns='" + NS + "' rid='1' sid='nope'/>", condItemNotFound},
		{"too large", "<body xmlns='" + NS + "' rid='1' to='example.org'><message>" + strings.Repeat("x", 5000) + "</message></body>", condPolicyViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, el := hs.post(tc.body)
			if resp.StatusCode != http.StatusOK || el.AttrValue("type") != "terminate" || el.AttrValue("condition") != tc.cond {
				t.Fatalf("%s: %s, want a terminate with %s", resp.Status, el, tc.cond)
			}
			if resp.Header.Get("Content-Type") != contentType || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
				resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
	select {
	case <-hs.conns:
		t.Fatal("a refused request started a stream")
	default:
	}
	if n := hs.h.SessionCount(); n != 0 {
		t.Fatalf("%d sessions", n)
	}
	t.Run("compressed", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, hs.srv.URL+Path, strings.NewReader("<body/>"))
		req.Header.Set("Content-Encoding", "gzip")
		resp, err := hs.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "condition='bad-request'") {
			t.Fatalf("gzip body: %s", b)
		}
	})
	for _, tc := range []struct {
		method string
		status int
		header string
	}{
		{http.MethodOptions, http.StatusNoContent, "Access-Control-Allow-Methods"},
		{http.MethodGet, http.StatusOK, "Content-Type"},
		{http.MethodPut, http.StatusMethodNotAllowed, "Allow"},
	} {
		req, _ := http.NewRequest(tc.method, hs.srv.URL+Path, nil)
		resp, err := hs.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get(tc.header) == "" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %s %v", tc.method, resp.Status, resp.Header)
		}
	}
}

// TestPayloads checks both directions: the children of a request reach the
// stream in jabber:client, declared or not, and what the server writes
// comes back declaring it.
func TestPayloads(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, st, _ := hs.session("wait='1'")
	_, el := hs.post(body(sid, 1001, "xmlns:x='urn:example:x'", "<message to='a@example.org'><body>one</body><x:y/></message><iq xmlns='jabber:client' type='get' id='2'><ping xmlns='urn:xmpp:ping'/></iq>"))
	if el.AttrValue("type") != "" || len(el.Children) != 0 {
		t.Fatalf("response to a request with nothing to send back: %s", el)
	}
	m := st.read()
	if m.Name != "message" || m.Space != wire.NSClient || m.ChildText("body", wire.NSClient) != "one" || m.Child("y", "urn:example:x") == nil {
		t.Fatalf("stream read %s", m)
	}
	if iq := st.read(); iq.Name != "iq" || iq.Space != wire.NSClient || iq.Child("ping", "urn:xmpp:ping") == nil {
		t.Fatalf("stream read %s", iq)
	}
	// Held until the server writes.
	done := hs.postLater(body(sid, 1002, "", ""))
	hs.waitFor(sid, "holding 1002", holding(1002))
	select {
	case el := <-done:
		t.Fatalf("answered before there was anything to send: %s", el)
	default:
	}
	st.write("<message from='b@example.org'><body>two &amp; three</body></message>")
	el = <-done
	if c := el.Child("message", wire.NSClient); c == nil || c.ChildText("body", wire.NSClient) != "two & three" {
		t.Fatalf("response %s", el)
	}
}

// TestHold checks that a request is held for 'wait' at most, and that a
// second request releases the first (hold='1').
func TestHold(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, st, _ := hs.session("wait='1'")
	start := time.Now()
	_, el := hs.post(body(sid, 1001, "", ""))
	if d := time.Since(start); d < 900*time.Millisecond || len(el.Children) != 0 {
		t.Fatalf("after %v: %s", d, el)
	}
	first := hs.postLater(body(sid, 1002, "", ""))
	hs.waitFor(sid, "holding 1002", holding(1002))
	// The next request releases the first at once, and is held in its
	// place.
	second := hs.postLater(body(sid, 1003, "", "<presence/>"))
	select {
	case el := <-first:
		if el == nil || len(el.Children) != 0 || el.AttrValue("type") != "" {
			t.Fatalf("released request got %s", el)
		}
	case <-time.After(500 * time.Millisecond):
		t.Fatal("the held request was not answered when the next arrived")
	}
	hs.waitFor(sid, "holding 1003", holding(1003))
	if p := st.read(); p.Name != "presence" {
		t.Fatalf("read %s", p)
	}
	if el := <-second; el == nil || len(el.Children) != 0 {
		t.Fatalf("second request got %s", el)
	}
}

// TestResend checks XEP-0124 §14.3: a request sent again gets the response
// it had, and one whose response is no longer kept ends the session.
func TestResend(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, st, _ := hs.session("wait='1'")
	st.writeLater("<message><body>kept</body></message>")
	_, first := hs.post(body(sid, 1001, "", ""))
	if first.Child("message", wire.NSClient) == nil {
		t.Fatalf("first response %s", first)
	}
	// Sent again: the same response, and its payload not handed twice.
	_, again := hs.post(body(sid, 1001, "", "<presence/>"))
	if again.String() != first.String() {
		t.Fatalf("resent request got %s, want %s", again, first)
	}
	_, el := hs.post(body(sid, 1002, "", "<presence type='unavailable'/>"))
	if len(el.Children) != 0 {
		t.Fatalf("response %s", el)
	}
	if p := st.read(); p.AttrValue("type") != "unavailable" {
		t.Fatalf("the resent request's payload was forwarded: %s", p)
	}
	// 1000 and 1001 are no longer kept (two responses are).
	hs.post(body(sid, 1003, "", ""))
	_, el = hs.post(body(sid, 1001, "", ""))
	if el.AttrValue("type") != "terminate" || el.AttrValue("condition") != condItemNotFound {
		t.Fatalf("a response no longer kept: %s", el)
	}
	if _, el = hs.post(body(sid, 1004, "", "")); el.AttrValue("condition") != condItemNotFound {
		t.Fatalf("after the session ended: %s", el)
	}
	// The stream server reads the end of the stream.
	st.end(io.EOF)
}

// TestResendHeld: a held request sent again gets the response; the first
// copy gets a recoverable error.
func TestResendHeld(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, st, _ := hs.session("wait='5'")
	first := hs.postLater(body(sid, 1001, "", ""))
	hs.waitFor(sid, "holding 1001", holding(1001))
	second := hs.postLater(body(sid, 1001, "", ""))
	if el := <-first; el.AttrValue("type") != "error" {
		t.Fatalf("first copy got %s", el)
	}
	st.write("<message><body>late</body></message>")
	if el := <-second; el.Child("message", wire.NSClient) == nil {
		t.Fatalf("second copy got %s", el)
	}
}

// TestOrder: requests that arrive out of order are forwarded in 'rid'
// order (§14.2); one beyond the window ends the session.
func TestOrder(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, st, _ := hs.session("wait='1'")
	later := hs.postLater(body(sid, 1002, "", "<message id='second'/>"))
	hs.waitFor(sid, "with 1002 waiting for 1001", waiting(1002))
	hs.post(body(sid, 1001, "", "<message id='first'/>"))
	for _, id := range []string{"first", "second"} {
		if m := st.read(); m.AttrValue("id") != id {
			t.Fatalf("read %s, want %s", m, id)
		}
	}
	<-later
	_, el := hs.post(body(sid, 1005, "", ""))
	if el.AttrValue("condition") != condItemNotFound {
		t.Fatalf("beyond the window: %s", el)
	}
	if n := hs.h.SessionCount(); n != 0 {
		t.Fatalf("%d sessions after item-not-found", n)
	}
}

// TestTerminate: the client ends the session; its payload reaches the
// stream before the stream's end.
func TestTerminate(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, st, _ := hs.session("wait='5'")
	held := hs.postLater(body(sid, 1001, "", ""))
	hs.waitFor(sid, "holding 1001", holding(1001))
	_, el := hs.post(body(sid, 1002, "type='terminate'", "<presence type='unavailable'/>"))
	if el.AttrValue("type") != "" || len(el.Children) != 0 {
		t.Fatalf("terminate answered %s", el)
	}
	// §13: the oldest request acknowledges the end.
	if el := <-held; el.AttrValue("type") != "terminate" || el.AttrValue("condition") != "" {
		t.Fatalf("held request answered %s", el)
	}
	if p := st.read(); p.Name != "presence" {
		t.Fatalf("read %s", p)
	}
	st.end(wire.ErrStreamEnd)
	if _, err := st.nc.Write([]byte("</stream:stream>")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after the client ended: %v", err)
	}
	if n := hs.h.SessionCount(); n != 0 {
		t.Fatalf("%d sessions", n)
	}
}

// TestTerminateAlone: with no request held, the terminate request
// acknowledges the end.
func TestTerminateAlone(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, _, _ := hs.session("wait='1'")
	if _, el := hs.post(body(sid, 1001, "type='terminate'", "")); el.AttrValue("type") != "terminate" {
		t.Fatalf("terminate answered %s", el)
	}
}

// TestServerEnd: the server's stream error reaches the client after the
// stanzas written before it (XEP-0206 §8).
func TestServerEnd(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, st, _ := hs.session("wait='5'")
	st.write("<message><body>last</body></message><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
	st.nc.Close()
	_, el := hs.post(body(sid, 1001, "", ""))
	if el.AttrValue("type") != "terminate" || el.AttrValue("condition") != condRemoteStreamError {
		t.Fatalf("response %s", el)
	}
	if len(el.Children) != 2 || el.Children[0].Name != "message" || el.Children[1].Name != "error" || el.Children[1].Space != wire.NSStream ||
		el.Children[1].Child("conflict", "urn:ietf:params:xml:ns:xmpp-streams") == nil {
		t.Fatalf("payload %s", el)
	}
	if n := hs.h.SessionCount(); n != 0 {
		t.Fatalf("%d sessions", n)
	}
	// A stream closed without its end: remote-connection-failed.
	sid, st, _ = hs.session("wait='5'")
	held := hs.postLater(body(sid, 1001, "", ""))
	hs.waitFor(sid, "holding 1001", holding(1001))
	st.nc.Close()
	if el := <-held; el.AttrValue("condition") != condRemoteConnFailed {
		t.Fatalf("after Close: %s", el)
	}
}

// TestInactivity: a client that makes no request for 'inactivity' is gone.
func TestInactivity(t *testing.T) {
	hs := newHarness(t, Options{Inactivity: 300 * time.Millisecond}, nil)
	sid, st, _ := hs.session("wait='5'")
	st.end(io.EOF)
	if _, el := hs.post(body(sid, 1001, "", "")); el.AttrValue("condition") != condItemNotFound {
		t.Fatalf("after inactivity: %s", el)
	}
}

// TestRestart checks XEP-0206 §5: a restart request is a new stream
// header, let through only after StreamRestart.
func TestRestart(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, st, _ := hs.session("wait='1'")
	restart := "xmlns:xmpp='" + NSXBOSH + "' xmpp:restart='true' to='example.org'"
	hs.post(body(sid, 1001, restart, "<message id='ignored'/>"))
	_ = st.nc.SetReadDeadline(time.Now().Add(testWait))
	var we *wire.Error
	if _, err := st.dec.ReadElement(); !errors.As(err, &we) || we.Condition != wire.CondBadFormat {
		t.Fatalf("restart before SASL: %v", err)
	}

	sid, st, _ = hs.session("wait='1'")
	st.nc.(interface{ StreamRestart() }).StreamRestart()
	// Any prefix bound to the namespace.
	hs.post(body(sid, 1001, "xmlns:b='"+NSXBOSH+"' b:restart='1' xml:lang='de'", "<message id='ignored'/>"))
	st.dec.Restart()
	h, err := st.dec.ReadHeader()
	if err != nil || h.To != "example.org" || h.Lang != "de" {
		t.Fatalf("restarted header %+v, %v", h, err)
	}
	hs.post(body(sid, 1002, "", "<message id='after'/>"))
	if m := st.read(); m.AttrValue("id") != "after" {
		t.Fatalf("read %s", m)
	}
}

// TestHeldPastReadTimeout: a request held longer than the HTTP server's
// read timeout is answered, not cut off.
func TestHeldPastReadTimeout(t *testing.T) {
	hs := newHarness(t, Options{}, func(s *http.Server) { s.ReadTimeout = 200 * time.Millisecond })
	sid, st, _ := hs.session("wait='5'")
	done := hs.postLater(body(sid, 1001, "", ""))
	time.Sleep(700 * time.Millisecond)
	st.write("<message><body>late</body></message>")
	if el := <-done; el.Child("message", wire.NSClient) == nil {
		t.Fatalf("response %s", el)
	}
}

// TestWriteBlocks: past MaxBody waiting for the client, the server's
// writes block until a request takes it, or their deadline passes.
func TestWriteBlocks(t *testing.T) {
	hs := newHarness(t, Options{MaxBody: 1024}, nil)
	sid, st, _ := hs.session("wait='5'")
	big := "<message><body>" + strings.Repeat("x", 1100) + "</body></message>"
	_ = st.nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := st.nc.Write([]byte(big)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past MaxBody: %v", err)
	}
	_ = st.nc.SetWriteDeadline(time.Time{})
	// Blocked until a request takes what waits.
	wrote := make(chan error, 1)
	go func() {
		_ = st.nc.SetWriteDeadline(time.Now().Add(testWait))
		_, err := st.nc.Write([]byte(big))
		wrote <- err
	}()
	n := 0
	for rid := 1001; n < 2 && rid < 1005; rid++ {
		_, el := hs.post(body(sid, rid, "", ""))
		n += len(el.Children)
	}
	if err := <-wrote; err != nil || n != 2 {
		t.Fatalf("%d messages delivered, want 2; the blocked write: %v", n, err)
	}
}

// TestShutdown: Close answers held requests with system-shutdown and
// refuses new sessions.
func TestShutdown(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, st, _ := hs.session("wait='5'")
	held := hs.postLater(body(sid, 1001, "", ""))
	hs.waitFor(sid, "holding 1001", holding(1001))
	hs.h.Close()
	if el := <-held; el.AttrValue("condition") != condSystemShutdown {
		t.Fatalf("held request: %s", el)
	}
	st.end(io.EOF)
	if _, el := hs.post("<body xmlns='" + NS + "' rid='5' to='example.org'/>"); el.AttrValue("condition") != condSystemShutdown {
		t.Fatalf("new session: %s", el)
	}
	if _, el := hs.post(body(sid, 1002, "", "")); el.AttrValue("condition") != condSystemShutdown {
		t.Fatalf("a request after the shutdown: %s", el)
	}
}

func FuzzParseBody(f *testing.F) {
	f.Add([]byte("<body xmlns='" + NS + "' rid='1' sid='x'><message to='a@b'><body>hi</body></message></body>"))
	f.Add([]byte("<?xml version='1.0'?><body xmlns='" + NS + "' xmlns:xmpp='" + NSXBOSH + "' rid='2' xmpp:restart='true'/>"))
	f.Add([]byte("<body xmlns='" + NS + "' xmlns:s='" + wire.NSStream + "' rid='3'><s:features/><iq xmlns='jabber:client'/></body>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rb, cond, _ := parseBody(b)
		if rb == nil {
			if cond == "" {
				t.Fatal("refused without a condition")
			}
			return
		}
		if rb.rid == 0 || rb.rid > maxRID {
			t.Fatalf("rid %d", rb.rid)
		}
		// The payload is whole elements in the stream's scope.
		doc := append([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='"+wire.NSStream+"'>"), rb.payload...)
		doc = append(doc, "</stream:stream>"...)
		if _, err := wire.Parse(doc, wire.Scope{}); err != nil {
			t.Fatalf("payload %q: %v", rb.payload, err)
		}
	})
}

func TestContentType(t *testing.T) {
	for v, ok := range map[string]bool{
		"text/xml": true, "text/xml; charset=utf-8": true, "application/xml;charset=UTF-8": true,
		"text/html": false, "text/xml; foo=bar": false, "application/xhtml+xml": false, "": false, "text/xml\r\nX: y": false,
	} {
		if got := validContentType(v); got != ok {
			t.Errorf("validContentType(%q) = %v, want %v", v, got, ok)
		}
	}
}

// TestInputWaits: once the stream server has more than MaxBody unread,
// further requests wait for it to read, in order.
func TestInputWaits(t *testing.T) {
	hs := newHarness(t, Options{MaxBody: 1024}, nil)
	sid, st, _ := hs.session("wait='5'")
	msg := func(id string) string {
		return "<message id='" + id + "'><body>" + strings.Repeat("x", 550) + "</body></message>"
	}
	first := hs.postLater(body(sid, 1001, "", msg("a")))
	hs.waitFor(sid, "holding 1001", holding(1001))
	second := hs.postLater(body(sid, 1002, "", msg("b")))
	<-first
	hs.waitFor(sid, "holding 1002", holding(1002))
	third := hs.postLater(body(sid, 1003, "", msg("c")))
	hs.waitFor(sid, "with 1003 waiting for the stream to read", waiting(1003))
	for _, id := range []string{"a", "b", "c"} {
		if m := st.read(); m.AttrValue("id") != id {
			t.Fatalf("read %s, want %s", m, id)
		}
	}
	// Read, 1003 was taken and released 1002.
	if el := <-second; el == nil || el.AttrValue("type") != "" {
		t.Fatalf("1002 got %s", el)
	}
	st.write("<presence/>")
	if el := <-third; el == nil || el.Child("presence", wire.NSClient) == nil {
		t.Fatalf("1003 got %s", el)
	}
}

// TestWaitingIsActivity: requests waiting for the stream server to read
// keep the session alive past 'inactivity', and it ends once they are
// gone and the client is silent.
func TestWaitingIsActivity(t *testing.T) {
	hs := newHarness(t, Options{MaxBody: 1024, Inactivity: 300 * time.Millisecond}, nil)
	sid, st, _ := hs.session("wait='1'")
	big := "<message><body>" + strings.Repeat("x", 700) + "</body></message>"
	first := hs.postLater(body(sid, 1001, "", big))
	hs.waitFor(sid, "holding 1001", holding(1001))
	second := hs.postLater(body(sid, 1002, "", big))
	<-first
	hs.waitFor(sid, "holding 1002", holding(1002))
	third := hs.postLater(body(sid, 1003, "", "<presence/>"))
	hs.waitFor(sid, "with 1003 waiting for the stream to read", waiting(1003))
	// 1002 is answered after its wait (1 s), then nothing is held for
	// more than 'inactivity'.
	<-second
	time.Sleep(700 * time.Millisecond)
	hs.waitFor(sid, "still there with 1003 waiting", waiting(1003))
	for _, name := range []string{"message", "message", "presence"} {
		if m := st.read(); m.Name != name {
			t.Fatalf("read %s, want a %s", m, name)
		}
	}
	if el := <-third; el == nil || el.AttrValue("type") != "" {
		t.Fatalf("1003 got %s", el)
	}
	st.end(io.EOF)
}

// TestRefusedEndsSession: a request of a session that cannot be read ends
// the session, which its client takes for ended.
func TestRefusedEndsSession(t *testing.T) {
	hs := newHarness(t, Options{MaxBody: 2048}, nil)
	for _, tc := range []struct{ name, body, cond string }{
		{"malformed", "<body xmlns='" + NS + "' sid='SID' rid='1001'><message></body>", condBadRequest},
		{"too large", "<body xmlns='" + NS + "' sid='SID' rid='1001'><message>" + strings.Repeat("x", 3000) + "</message></body>", condPolicyViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sid, st, _ := hs.session("wait='5'")
			held := hs.postLater(body(sid, 1001, "", ""))
			hs.waitFor(sid, "holding 1001", holding(1001))
			_, el := hs.post(strings.Replace(tc.body, "SID", sid, 1))
			if el.AttrValue("condition") != tc.cond {
				t.Fatalf("refused with %s", el)
			}
			if el := <-held; el == nil || el.AttrValue("condition") != tc.cond {
				t.Fatalf("held request got %s", el)
			}
			st.end(io.EOF)
		})
	}
}

// TestTerminateTakesWaiting: what waits for the client when it ends the
// session goes with the acknowledgement.
func TestTerminateTakesWaiting(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, st, _ := hs.session("wait='5'")
	st.write("<message id='last'/>")
	hs.waitFor(sid, "with the message waiting", func(s *session) bool { return len(s.payload) > 0 })
	_, el := hs.post(body(sid, 1001, "type='terminate'", ""))
	if el.AttrValue("type") != "terminate" || el.Child("message", wire.NSClient) == nil {
		t.Fatalf("terminate answered %s", el)
	}
}

// TestTerminateBeyondWindow: §11 allows one request more than 'requests'
// to end the session; it waits for those before it.
func TestTerminateBeyondWindow(t *testing.T) {
	hs := newHarness(t, Options{}, nil)
	sid, st, _ := hs.session("wait='5'")
	term := hs.postLater(body(sid, 1003, "type='terminate'", "<presence type='unavailable'/>"))
	hs.waitFor(sid, "with 1003 waiting", waiting(1003))
	a := hs.postLater(body(sid, 1001, "", "<message id='a'/>"))
	hs.waitFor(sid, "holding 1001", holding(1001))
	// 1002 is the oldest request held when the terminate is processed:
	// it acknowledges the end (§13).
	if _, el := hs.post(body(sid, 1002, "", "<message id='b'/>")); el.AttrValue("type") != "terminate" {
		t.Fatalf("1002 got %s", el)
	}
	for _, ch := range []<-chan *wire.Element{a, term} {
		if el := <-ch; el == nil || el.AttrValue("type") != "" {
			t.Fatalf("got %s", el)
		}
	}
	for _, id := range []string{"a", "b"} {
		if m := st.read(); m.AttrValue("id") != id {
			t.Fatalf("read %s, want %s", m, id)
		}
	}
	if p := st.read(); p.Name != "presence" || p.AttrValue("type") != "unavailable" {
		t.Fatalf("read %s", p)
	}
	st.end(wire.ErrStreamEnd)
}
