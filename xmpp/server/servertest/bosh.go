package servertest

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"

	"switchboard/xmpp/bosh"
	"switchboard/xmpp/wire"
)

// BOSH is a client of the server's BOSH endpoint (XEP-0206), written here
// from XEP-0124 as a browser library does it: it keeps one request
// waiting for what the server has to send, and sends what the test gives
// it on another, at most two at a time (the session's 'requests'), with
// consecutive 'rid's, and hands the elements of the responses over in
// 'rid' order.
type BOSH struct {
	url    string
	client *http.Client
	// SID is the session's ID; Created is the session creation response.
	SID     string
	Created *wire.Element

	slots chan struct{} // one per request that may be in flight
	in    chan *wire.Element
	// Ended receives the response that ended the session (type
	// 'terminate').
	Ended chan *wire.Element

	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex
	// inflight counts the requests written whose response has not come,
	// the last written at written.
	inflight int
	written  time.Time
	rid      uint64
	prev     chan struct{} // closed once the last request's response is handed over
	ended    bool
}

// BOSHURL is the endpoint's URL.
func (s *Server) BOSHURL() string { return "https://" + s.HTTP + bosh.Path }

// DialBOSH creates a session for domain, with wait='5' and hold='1' and
// any further attributes of the creation request, and waits for the
// stream features.
func (s *Server) DialBOSH(t testing.TB, domain, attrs string) *BOSH {
	t.Helper()
	if s.HTTP == "" {
		t.Fatal("servertest: no HTTP listener (use WithHTTP)")
	}
	b := &BOSH{
		url:    s.BOSHURL(),
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: s.TLSConfig()}, Timeout: 30 * time.Second},
		slots:  make(chan struct{}, 2),
		in:     make(chan *wire.Element, 1024),
		Ended:  make(chan *wire.Element, 1),
		rid:    1 << 40,
		prev:   make(chan struct{}),
	}
	close(b.prev)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() {
		b.cancel()
		b.client.CloseIdleConnections()
	})
	el, err := b.PostRaw("<body xmlns='" + bosh.NS + "' xmlns:xmpp='" + bosh.NSXBOSH + "' rid='" + strconv.FormatUint(b.rid, 10) +
		"' to='" + domain + "' xml:lang='en' wait='5' hold='1' ver='1.11' xmpp:version='1.0' " + attrs + "/>")
	if err != nil {
		t.Fatalf("servertest: BOSH session creation: %v", err)
	}
	b.Created, b.SID = el, el.AttrValue("sid")
	if b.SID == "" {
		t.Fatalf("servertest: BOSH session creation answered %s", el)
	}
	b.deliver(el)
	b.launch("", "")
	return b
}

// PostRaw posts body, as is, and parses the response.
func (b *BOSH) PostRaw(body string) (*wire.Element, error) {
	req, err := http.NewRequestWithContext(b.ctx, http.MethodPost, b.url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	wrote := false
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) {
			b.mu.Lock()
			b.inflight++
			b.written = time.Now()
			wrote = true
			b.mu.Unlock()
		},
	}))
	resp, err := b.client.Do(req)
	b.mu.Lock()
	if wrote {
		b.inflight--
	}
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("servertest: BOSH: " + resp.Status)
	}
	return wire.Parse(data, wire.Scope{})
}

// Body returns a request of the session with the given 'rid', further
// attributes and content.
func (b *BOSH) Body(rid uint64, attrs, content string) string {
	s := "<body xmlns='" + bosh.NS + "' sid='" + b.SID + "' rid='" + strconv.FormatUint(rid, 10) + "'"
	if attrs != "" {
		s += " " + attrs
	}
	return s + ">" + content + "</body>"
}

// launch sends a request with the next 'rid' once fewer than two are in
// flight, and hands its response over after the one before it. A request
// is kept waiting while none is.
func (b *BOSH) launch(attrs, content string) {
	b.slots <- struct{}{}
	b.mu.Lock()
	if b.ended {
		b.mu.Unlock()
		<-b.slots
		return
	}
	b.rid++
	rid, prev, done := b.rid, b.prev, make(chan struct{})
	b.prev = done
	b.mu.Unlock()
	go func() {
		el, err := b.PostRaw(b.Body(rid, attrs, content))
		<-prev
		if err != nil {
			// Seen by the test as the session's end (the goroutine
			// may outlive the test: no t.Error here).
			el = wire.New("body", bosh.NS, wire.Attr{Name: "type", Value: "terminate"},
				wire.Attr{Name: "condition", Value: "client-error"}, wire.Attr{Name: "error", Value: err.Error()})
		}
		b.deliver(el)
		close(done)
		<-b.slots
		if len(b.slots) == 0 {
			// Nothing in flight: a request waits for the server.
			b.launch("", "")
		}
	}()
}

// deliver hands over the elements of a response; a terminate ends the
// session.
func (b *BOSH) deliver(el *wire.Element) {
	for _, c := range el.Children {
		b.in <- c
	}
	if el.AttrValue("type") == "terminate" {
		b.mu.Lock()
		first := !b.ended
		b.ended = true
		b.mu.Unlock()
		if first {
			b.Ended <- el
			close(b.in)
		}
	}
}

// WaitHeld waits until a request has waited for its response for a
// while (200ms), so that the server holds it.
func (b *BOSH) WaitHeld(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		held := b.inflight > 0 && time.Since(b.written) > 200*time.Millisecond
		b.mu.Unlock()
		if held {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("servertest: BOSH session %s: no request held", b.SID)
}

// Silence stops the client as a closed browser tab does: its requests
// are dropped and no other is made.
func (b *BOSH) Silence() {
	b.mu.Lock()
	b.ended = true
	b.mu.Unlock()
	b.cancel()
}

// Send sends stanzas or nonzas given as XML text.
func (b *BOSH) Send(content string) { b.launch("", content) }

// Restart asks for a new stream after SASL (XEP-0206 §5).
func (b *BOSH) Restart(domain string) {
	b.launch("xmlns:xmpp='"+bosh.NSXBOSH+"' xmpp:restart='true' to='"+domain+"' xml:lang='en'", "")
}

// Terminate ends the session with content (XEP-0124 §13) and returns the
// response that ended it.
func (b *BOSH) Terminate(t testing.TB, content string) *wire.Element {
	t.Helper()
	b.launch("type='terminate'", content)
	return b.WaitEnded(t, 10*time.Second)
}

// WaitEnded waits for the response that ends the session.
func (b *BOSH) WaitEnded(t testing.TB, timeout time.Duration) *wire.Element {
	t.Helper()
	select {
	case el := <-b.Ended:
		return el
	case <-time.After(timeout):
		t.Fatalf("servertest: BOSH session %s not ended within %s", b.SID, timeout)
		return nil
	}
}

// Next returns the next element matching match, skipping others, or fails
// the test after timeout.
func (b *BOSH) Next(t testing.TB, timeout time.Duration, match func(*wire.Element) bool) *wire.Element {
	t.Helper()
	return next(t, b.in, "BOSH session "+b.SID, timeout, match)
}

// Login authenticates with mech (mellium's SASL client), restarts the
// stream and binds resource, and returns the bound JID. features are the
// stream features of the creation response.
func (b *BOSH) Login(t testing.TB, domain, local, password, resource string, mech sasl.Mechanism) string {
	t.Helper()
	const nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
	features := b.Next(t, 10*time.Second, Named("features"))
	var offered []string
	for _, m := range features.Child("mechanisms", nsSASL).Children {
		offered = append(offered, m.Text)
	}
	c := sasl.NewClient(mech, sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(local), []byte(password), nil
	}), sasl.RemoteMechanisms(offered...))
	_, resp, err := c.Step(nil)
	if err != nil {
		t.Fatalf("servertest: %s: %v", mech.Name, err)
	}
	b.Send("<auth xmlns='" + nsSASL + "' mechanism='" + mech.Name + "'>" + base64.StdEncoding.EncodeToString(resp) + "</auth>")
	for {
		el := b.Next(t, 10*time.Second, nil)
		data, err := base64.StdEncoding.DecodeString(el.Text)
		if err != nil {
			t.Fatalf("servertest: %s: %s", mech.Name, el)
		}
		switch el.Name {
		case "challenge":
			_, resp, err := c.Step(data)
			if err != nil {
				t.Fatalf("servertest: %s: %v", mech.Name, err)
			}
			b.Send("<response xmlns='" + nsSASL + "'>" + base64.StdEncoding.EncodeToString(resp) + "</response>")
			continue
		case "success":
			if len(data) > 0 {
				if _, _, err := c.Step(data); err != nil {
					t.Fatalf("servertest: %s: the server's proof: %v", mech.Name, err)
				}
			}
		default:
			t.Fatalf("servertest: %s: %s", mech.Name, el)
		}
		break
	}
	b.Restart(domain)
	features = b.Next(t, 10*time.Second, Named("features"))
	if features.Child("bind", "urn:ietf:params:xml:ns:xmpp-bind") == nil {
		t.Fatalf("servertest: no bind feature after SASL: %s", features)
	}
	b.Send("<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource + "</resource></bind></iq>")
	el := b.Next(t, 10*time.Second, Named("iq", "id", "bind"))
	j := el.Child("bind", "urn:ietf:params:xml:ns:xmpp-bind").ChildText("jid", "urn:ietf:params:xml:ns:xmpp-bind")
	if el.AttrValue("type") != "result" || !strings.Contains(j, "/") {
		t.Fatalf("servertest: bind: %s", el)
	}
	return j
}
