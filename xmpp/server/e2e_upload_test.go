package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// End-to-end tests of HTTP File Upload (XEP-0363): slot requests over a
// client stream, the files over HTTPS on the server's HTTP listener, as a
// client meets them. Helpers are prefixed up.

const (
	upNS      = "urn:xmpp:http:upload:0"
	upService = "upload.localhost"
	upMax     = 10000 // upload.max_file_size in these tests
	upQuota   = 25000 // upload.quota in these tests
)

// upStart starts a server with the HTTPS listener and small upload limits.
func upStart(t *testing.T, more ...func(*config.Config)) *servertest.Server {
	t.Helper()
	return servertest.StartConfig(t, upConfig(t, more...))
}

func upConfig(t *testing.T, more ...func(*config.Config)) config.Config {
	cfg := servertest.Config(t.TempDir())
	servertest.WithHTTP()(&cfg)
	cfg.Upload.MaxFileSize = upMax
	cfg.Upload.Quota = upQuota
	for _, m := range more {
		m(&cfg)
	}
	return cfg
}

// upClient is an HTTPS client that trusts the test server and reaches
// every URL host through its HTTP listener (the slot URLs name the host
// domain, localhost).
func upClient(s *servertest.Server) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: s.TLSConfig(),
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, s.HTTP)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       ftWait,
	}
}

// upRequest asks upService (or to) for a slot with the given attributes
// (name, value pairs) and returns the answer.
func upRequest(t *testing.T, c *servertest.Client, to string, attrs ...string) *wire.Element {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(attrs); i += 2 {
		fmt.Fprintf(&b, " %s='%s'", attrs[i], attrs[i+1])
	}
	_, res := ftExchange(t, c, "<iq type='get' id='%s' to='%s'><request xmlns='"+upNS+"'%s/></iq>", to, b.String())
	return res
}

// upSlot requests a slot that must be granted and returns its PUT and GET
// URLs.
func upSlot(t *testing.T, c *servertest.Client, attrs ...string) (put, get string) {
	t.Helper()
	return upSlotAt(t, c, upService, attrs...)
}

// upSlotAt is upSlot with the upload service to ask.
func upSlotAt(t *testing.T, c *servertest.Client, service string, attrs ...string) (put, get string) {
	t.Helper()
	res := upRequest(t, c, service, attrs...)
	slot := res.Child("slot", upNS)
	if res.AttrValue("type") != "result" || slot == nil {
		t.Fatalf("slot request %q: %s", attrs, res)
	}
	p, g := slot.Child("put", upNS), slot.Child("get", upNS)
	if p == nil || g == nil || len(p.Children) != 0 {
		t.Fatalf("slot without put or get, or with headers: %s", slot)
	}
	return p.AttrValue("url"), g.AttrValue("url")
}

// upDo sends an HTTP request and returns the response with its body read.
func upDo(t *testing.T, hc *http.Client, method, u string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if body != nil {
		req.ContentLength = int64(len(body))
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return res, data
}

// upStatus checks a response's status.
func upStatus(t *testing.T, what string, res *http.Response, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("%s: status %s, want %d", what, res.Status, want)
	}
}

// upNoTemps checks that no temporary file is left in the upload directory
// and returns the names of the files there.
func upNoTemps(t *testing.T, s *servertest.Server) []string {
	t.Helper()
	entries, err := os.ReadDir(s.Config().UploadDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
		names = append(names, e.Name())
	}
	return names
}

func upRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestUploadDiscovery covers XEP-0363 §3: the host lists its upload
// service in disco#items; the service's disco#info has the identity, the
// feature and the max-file-size form (XEP-0128); its disco#items are
// empty; other requests get service-unavailable and other stanzas no
// answer.
func TestUploadDiscovery(t *testing.T) {
	t.Parallel()
	s := upStart(t)
	alice := ftLogin(t, s, s.AddUser(t, "alice", ftPassword), "r")

	_, items := ftExchange(t, alice, "<iq type='get' id='%s' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	var found *wire.Element
	for _, it := range items.Child("query", "http://jabber.org/protocol/disco#items").Children {
		if it.AttrValue("jid") == upService {
			found = it
		}
	}
	if found == nil || found.AttrValue("name") != "HTTP File Upload" {
		t.Fatalf("host's disco#items without the upload service: %s", items)
	}

	_, info := ftExchange(t, alice, "<iq type='get' id='%s' to='"+upService+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	q := info.Child("query", "http://jabber.org/protocol/disco#info")
	if info.AttrValue("type") != "result" || q == nil {
		t.Fatalf("disco#info: %s", info)
	}
	id := q.Child("identity", "http://jabber.org/protocol/disco#info")
	if id == nil || id.AttrValue("category") != "store" || id.AttrValue("type") != "file" || id.AttrValue("name") != "HTTP File Upload" {
		t.Errorf("identity: %s", q)
	}
	var features []string
	for _, f := range q.Children {
		if f.Name == "feature" {
			features = append(features, f.AttrValue("var"))
		}
	}
	if !slices.Contains(features, upNS) || !slices.Contains(features, "http://jabber.org/protocol/disco#info") {
		t.Errorf("features %q", features)
	}
	x := q.Child("x", "jabber:x:data")
	if x == nil || x.AttrValue("type") != "result" {
		t.Fatalf("no XEP-0128 form: %s", q)
	}
	fields := map[string]string{}
	for _, f := range x.Children {
		fields[f.AttrValue("var")] = f.ChildText("value", "jabber:x:data")
	}
	if fields["FORM_TYPE"] != upNS || fields["max-file-size"] != fmt.Sprint(upMax) {
		t.Errorf("form fields %v", fields)
	}

	_, sitems := ftExchange(t, alice, "<iq type='get' id='%s' to='"+upService+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if sq := sitems.Child("query", "http://jabber.org/protocol/disco#items"); sitems.AttrValue("type") != "result" || sq == nil || len(sq.Children) != 0 {
		t.Errorf("service disco#items: %s", sitems)
	}
	_, ping := ftExchange(t, alice, "<iq type='get' id='%s' to='"+upService+"'><time xmlns='urn:xmpp:time'/></iq>")
	ftWantError(t, ping, "service-unavailable")
	_, set := ftExchange(t, alice, "<iq type='set' id='%s' to='"+upService+"'><request xmlns='"+upNS+"' filename='a' size='1'/></iq>")
	ftWantError(t, set, "service-unavailable")

	// A message, presence and error to the service get no answer.
	ftSend(t, alice, "<message to='"+upService+"' id='m1'><body>hi</body></message>")
	ftSend(t, alice, "<presence to='"+upService+"'/>")
	ftSend(t, alice, "<iq type='error' id='e1' to='"+upService+"'><error type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
	if before := ftSync(t, alice); len(before) != 0 {
		t.Fatalf("answers to stanzas the service ignores: %v", before)
	}
}

// TestUploadNoHTTPListener: without the HTTPS listener no upload service
// is advertised or answers.
func TestUploadNoHTTPListener(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	alice := ftLogin(t, s, s.AddUser(t, "alice", ftPassword), "r")
	_, items := ftExchange(t, alice, "<iq type='get' id='%s' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if strings.Contains(items.String(), upService) {
		t.Fatalf("upload service listed without an HTTPS listener: %s", items)
	}
	res := upRequest(t, alice, upService, "filename", "a.txt", "size", "1")
	if res.AttrValue("type") != "error" {
		t.Fatalf("slot request without an upload service: %s", res)
	}
}

// TestUploadRoundTrip is what a user does to send a picture: request a
// slot, PUT the file, send the link; the recipient GETs the same bytes
// with their content type. HEAD, CORS and the served headers too.
func TestUploadRoundTrip(t *testing.T) {
	t.Parallel()
	s := upStart(t)
	aliceJID, bobJID := s.AddUser(t, "alice", ftPassword), s.AddUser(t, "bob", ftPassword)
	alice, bob := ftLogin(t, s, aliceJID, "phone"), ftLogin(t, s, bobJID, "laptop")
	hc := upClient(s)
	picture := upRandom(upMax)

	put, get := upSlot(t, alice, "filename", "très cool.jpg", "size", fmt.Sprint(len(picture)), "content-type", "image/jpeg")
	base := "https://localhost:" + portOf(t, s.HTTP) + "/upload/"
	if put != get || !strings.HasPrefix(get, base) || !strings.HasSuffix(get, "/tr%C3%A8s%20cool.jpg") {
		t.Fatalf("slot URLs put=%s get=%s, want the same URL under %s ending in the escaped name", put, get, base)
	}
	res, _ := upDo(t, hc, http.MethodGet, get, nil)
	upStatus(t, "GET before the upload", res, http.StatusNotFound)
	res, _ = upDo(t, hc, http.MethodPut, put, picture, "Content-Type", "image/jpeg")
	upStatus(t, "PUT", res, http.StatusCreated)

	// The link travels in a message (XEP-0066 out-of-band data, as
	// clients send it); the server has no part in that but routing.
	ftSend(t, alice, "<message to='%s' type='chat' id='pic'><body>%s</body><x xmlns='jabber:x:oob'><url>%s</url></x></message>", bob.JID, get, get)
	msg := bob.Next(t, ftWait, servertest.Named("message", "id", "pic"))
	link := msg.Child("x", "jabber:x:oob").ChildText("url", "jabber:x:oob")
	if link != get {
		t.Fatalf("bob got link %q, want %q", link, get)
	}
	res, data := upDo(t, hc, http.MethodGet, link, nil)
	upStatus(t, "GET", res, http.StatusOK)
	if !bytes.Equal(data, picture) {
		t.Fatalf("GET returned %d bytes that differ from the %d uploaded", len(data), len(picture))
	}
	for k, v := range map[string]string{
		"Content-Type":                "image/jpeg",
		"Content-Length":              fmt.Sprint(len(picture)),
		"X-Content-Type-Options":      "nosniff",
		"Access-Control-Allow-Origin": "*",
		"Content-Disposition":         "inline; filename*=utf-8''tr%C3%A8s%20cool.jpg",
	} {
		if got := res.Header.Get(k); got != v {
			t.Errorf("GET %s: %q, want %q", k, got, v)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "sandbox") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("Cache-Control %q", cc)
	}
	res, data = upDo(t, hc, http.MethodHead, get, nil)
	upStatus(t, "HEAD", res, http.StatusOK)
	if len(data) != 0 || res.Header.Get("Content-Length") != fmt.Sprint(len(picture)) || res.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("HEAD: %d body bytes, headers %v", len(data), res.Header)
	}
	res, data = upDo(t, hc, http.MethodGet, get, nil, "Range", "bytes=10-19")
	upStatus(t, "ranged GET", res, http.StatusPartialContent)
	if !bytes.Equal(data, picture[10:20]) {
		t.Errorf("ranged GET returned %x", data)
	}

	// A document without a declared type is served with the PUT's type,
	// as an attachment.
	doc := []byte("<html><script>alert(1)</script></html>")
	put, get = upSlot(t, alice, "filename", "page.html", "size", fmt.Sprint(len(doc)))
	res, _ = upDo(t, hc, http.MethodPut, put, doc, "Content-Type", "text/html; charset=utf-8")
	upStatus(t, "PUT without a declared type", res, http.StatusCreated)
	res, data = upDo(t, hc, http.MethodGet, get, nil)
	upStatus(t, "GET of the document", res, http.StatusOK)
	if !bytes.Equal(data, doc) || res.Header.Get("Content-Type") != "text/html" ||
		res.Header.Get("Content-Disposition") != "attachment; filename=page.html" {
		t.Errorf("document served as %q, %q", res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"))
	}

	// A browser's preflight (Converse.js uploads with XMLHttpRequest).
	res, _ = upDo(t, hc, http.MethodOptions, put, nil, "Origin", "https://web.example", "Access-Control-Request-Method", "PUT")
	if res.StatusCode/100 != 2 || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Errorf("preflight: %s %v", res.Status, res.Header)
	}
	if names := upNoTemps(t, s); len(names) != 2 {
		t.Errorf("upload directory holds %q, want the two files", names)
	}
}

// portOf is the port of a host:port address.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestUploadSlotErrors covers the refused slot requests of XEP-0363 §4:
// each gets its error, and the server goes on serving.
func TestUploadSlotErrors(t *testing.T) {
	t.Parallel()
	s := upStart(t, func(c *config.Config) { c.Hosts = append(c.Hosts, config.HostDefaults("example.org")) })
	alice := ftLogin(t, s, s.AddUser(t, "alice", ftPassword), "r")
	if err := s.Accounts().Create(t.Context(), "example.org", "dave", ftPassword); err != nil {
		t.Fatal(err)
	}
	dave := ftLogin(t, s, jid.MustParse("dave@example.org"), "r")

	for _, tt := range []struct {
		name  string
		attrs []string
		cond  string
	}{
		{"no size", []string{"filename", "a.txt"}, "bad-request"},
		{"negative size", []string{"filename", "a.txt", "size", "-1"}, "bad-request"},
		{"non-numeric size", []string{"filename", "a.txt", "size", "12abc"}, "bad-request"},
		{"signed size", []string{"filename", "a.txt", "size", "+12"}, "bad-request"},
		{"huge size", []string{"filename", "a.txt", "size", "99999999999999999999999"}, "bad-request"},
		{"empty filename", []string{"filename", "", "size", "1"}, "bad-request"},
		{"no filename", []string{"size", "1"}, "bad-request"},
		{"filename of dots", []string{"filename", "../..", "size", "1"}, "bad-request"},
		{"bad content type", []string{"filename", "a.txt", "size", "1", "content-type", "not a type"}, "bad-request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := upRequest(t, alice, upService, tt.attrs...)
			typ, cond, _ := ftError(res)
			if res.AttrValue("type") != "error" || cond != tt.cond || typ != "modify" {
				t.Fatalf("got %s, want a %s error of type modify", res, tt.cond)
			}
		})
	}

	t.Run("too large", func(t *testing.T) {
		res := upRequest(t, alice, upService, "filename", "big.bin", "size", fmt.Sprint(upMax+1))
		e := ftWantError(t, res, "not-acceptable")
		tl := e.Child("file-too-large", upNS)
		if e.AttrValue("type") != "modify" || tl == nil || tl.ChildText("max-file-size", upNS) != fmt.Sprint(upMax) {
			t.Fatalf("no <file-too-large/> with the limit: %s", res)
		}
		if res.Child("request", upNS) == nil {
			t.Errorf("the error does not carry the request (RFC 6120 §8.3.1): %s", res)
		}
	})

	t.Run("quota", func(t *testing.T) {
		// Unused slots count: two of upMax fit in upQuota, a third not.
		upSlot(t, alice, "filename", "1.bin", "size", fmt.Sprint(upMax))
		upSlot(t, alice, "filename", "2.bin", "size", fmt.Sprint(upMax))
		res := upRequest(t, alice, upService, "filename", "3.bin", "size", fmt.Sprint(upMax))
		e := ftWantError(t, res, "resource-constraint")
		if e.AttrValue("type") != "wait" {
			t.Fatalf("quota error of type %q, want wait: %s", e.AttrValue("type"), res)
		}
		upSlot(t, alice, "filename", "small.bin", "size", fmt.Sprint(upQuota-2*upMax))
		// Another account has its own quota.
		bob := ftLogin(t, s, s.AddUser(t, "bob", ftPassword), "r")
		upSlot(t, bob, "filename", "1.bin", "size", fmt.Sprint(upMax))
	})

	t.Run("other host", func(t *testing.T) {
		res := upRequest(t, dave, upService, "filename", "a.txt", "size", "1")
		if e := ftWantError(t, res, "forbidden"); e.AttrValue("type") != "auth" {
			t.Fatalf("got %s", res)
		}
		put, _ := upSlotAt(t, dave, "upload.example.org", "filename", "a.txt", "size", "1")
		// dave's own host's service; with the same HTTPS listener.
		if !strings.HasPrefix(put, "https://example.org:"+portOf(t, s.HTTP)+"/upload/") {
			t.Fatalf("example.org's slot URL %s", put)
		}
	})

	// The server goes on.
	ftSync(t, alice)
	upSlotAt(t, dave, "upload.example.org", "filename", "after.txt", "size", "1")
}

// TestUploadPutErrors covers refused uploads and downloads: each gets its
// HTTP status, leaves no file behind, and a slot whose upload failed can
// still be used.
func TestUploadPutErrors(t *testing.T) {
	t.Parallel()
	s := upStart(t)
	alice := ftLogin(t, s, s.AddUser(t, "alice", ftPassword), "r")
	hc := upClient(s)
	data := upRandom(100)
	put, get := upSlot(t, alice, "filename", "a.png", "size", "100", "content-type", "image/png")

	res, _ := upDo(t, hc, http.MethodPut, put, data[:99], "Content-Type", "image/png")
	upStatus(t, "PUT of fewer bytes", res, http.StatusBadRequest)
	res, _ = upDo(t, hc, http.MethodPut, put, append(data, 0), "Content-Type", "image/png")
	upStatus(t, "PUT of more bytes", res, http.StatusRequestEntityTooLarge)
	res, _ = upDo(t, hc, http.MethodPut, put, data, "Content-Type", "image/jpeg")
	upStatus(t, "PUT with another content type", res, http.StatusBadRequest)
	res, _ = upDo(t, hc, http.MethodPut, put, data)
	upStatus(t, "PUT without a content type", res, http.StatusBadRequest)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, put, io.MultiReader(bytes.NewReader(data)))
	req.Header.Set("Content-Type", "image/png")
	req.ContentLength = -1
	if r, err := hc.Do(req); err != nil || r.StatusCode != http.StatusLengthRequired {
		t.Fatalf("chunked PUT: %v, %v", r, err)
	} else {
		r.Body.Close()
	}
	res, _ = upDo(t, hc, http.MethodGet, get, nil)
	upStatus(t, "GET after failed uploads", res, http.StatusNotFound)
	upNoTemps(t, s)

	res, _ = upDo(t, hc, http.MethodPut, put, data, "Content-Type", "image/png")
	upStatus(t, "PUT after the failures", res, http.StatusCreated)
	res, _ = upDo(t, hc, http.MethodPut, put, data, "Content-Type", "image/png")
	upStatus(t, "second PUT", res, http.StatusConflict)
	res, got := upDo(t, hc, http.MethodGet, get, nil)
	upStatus(t, "GET", res, http.StatusOK)
	if !bytes.Equal(got, data) {
		t.Fatal("the second PUT changed the file")
	}

	u, _ := url.Parse(put)
	unknown := u.Scheme + "://" + u.Host + "/upload/" + strings.Repeat("ab", 16) + "/a.png"
	res, _ = upDo(t, hc, http.MethodPut, unknown, data, "Content-Type", "image/png")
	upStatus(t, "PUT to an unknown slot", res, http.StatusNotFound)
	res, _ = upDo(t, hc, http.MethodGet, unknown, nil)
	upStatus(t, "GET of an unknown slot", res, http.StatusNotFound)
	res, _ = upDo(t, hc, http.MethodDelete, get, nil)
	upStatus(t, "DELETE", res, http.StatusMethodNotAllowed)

	// Path traversal: in the requested name it is cut off; in the URL it
	// reaches no file outside the slot's.
	_, tget := upSlot(t, alice, "filename", "../../switchboard.db", "size", "1")
	if !strings.HasSuffix(tget, "/switchboard.db") || strings.Contains(tget, "..") {
		t.Fatalf("slot URL for a name with ../: %s", tget)
	}
	_, wget := upSlot(t, alice, "filename", `..\..\evil.exe`, "size", "1")
	if !strings.HasSuffix(wget, "/evil.exe") {
		t.Fatalf("slot URL for a name with ..\\: %s", wget)
	}
	id := strings.Split(strings.TrimPrefix(get, u.Scheme+"://"+u.Host+"/upload/"), "/")[0]
	for _, p := range []string{
		"/upload/" + id + "/..%2F..%2Fswitchboard.db",
		"/upload/..%2Fswitchboard.db/x",
		"/upload/" + id,
		"/upload/" + id + "/",
		"/upload/" + strings.ToUpper(id) + "/a.png",
	} {
		res, body := upDo(t, hc, http.MethodGet, u.Scheme+"://"+u.Host+p, nil)
		if res.StatusCode != http.StatusNotFound || bytes.Contains(body, []byte("bolt")) {
			t.Errorf("GET %s: %s", p, res.Status)
		}
		res, _ = upDo(t, hc, http.MethodPut, u.Scheme+"://"+u.Host+p, []byte("x"))
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("PUT %s: %s", p, res.Status)
		}
	}
	res, _ = upDo(t, hc, http.MethodPut, u.Scheme+"://"+u.Host+"/upload/../switchboard.db", []byte("x"))
	if res.StatusCode/100 != 3 && res.StatusCode != http.StatusNotFound {
		t.Errorf("PUT /upload/../switchboard.db: %s", res.Status)
	}
	if names := upNoTemps(t, s); len(names) != 1 || names[0] != id {
		t.Errorf("upload directory holds %q, want only %s", names, id)
	}
	// The server goes on.
	ftSync(t, alice)
}

// TestUploadExpiredSlot: a slot not used within 5 minutes is refused
// (410 Gone), across a restart; the server rewrites nothing else.
func TestUploadExpiredSlot(t *testing.T) {
	t.Parallel()
	cfg := upConfig(t)
	s := servertest.StartConfig(t, cfg)
	alice := ftLogin(t, s, s.AddUser(t, "alice", ftPassword), "r")
	put, _ := upSlot(t, alice, "filename", "late.txt", "size", "4")
	fresh, _ := upSlot(t, alice, "filename", "fresh.txt", "size", "4")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Age the first slot by 6 minutes, in the stopped server's store.
	db, err := store.Open(t.Context(), cfg.DBPath(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Split(put[strings.Index(put, "/upload/")+len("/upload/"):], "/")[0]
	up, err := db.Uploads().Get(t.Context(), id)
	if err == nil {
		err = db.Uploads().Delete(t.Context(), id)
	}
	if err == nil {
		up.Created = up.Created.Add(-6 * time.Minute)
		err = db.Uploads().Reserve(t.Context(), up, 0)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	s2 := servertest.StartConfig(t, cfg)
	hc := upClient(s2)
	rebase := func(u string) string { // the new listener's port
		p, _ := url.Parse(u)
		p.Host = net.JoinHostPort("localhost", portOf(t, s2.HTTP))
		return p.String()
	}
	res, _ := upDo(t, hc, http.MethodPut, rebase(put), []byte("late"))
	upStatus(t, "PUT to an expired slot", res, http.StatusGone)
	res, _ = upDo(t, hc, http.MethodPut, rebase(fresh), []byte("done"))
	upStatus(t, "PUT to a fresh slot", res, http.StatusCreated)
	if names := upNoTemps(t, s2); len(names) != 1 || names[0] == id {
		t.Errorf("upload directory holds %q", names)
	}
}
