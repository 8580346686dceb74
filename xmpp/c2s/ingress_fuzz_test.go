package c2s

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"hash"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/auth"
	"switchboard/xmpp/wire"
)

const (
	fuzzHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`
	// PLAIN for alice / secret.
	fuzzAuth = `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>`
	fuzzBind = `<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>`
	// fuzzBound is what a client sends to reach the bound state.
	fuzzBound = fuzzHeader + fuzzAuth + fuzzHeader + fuzzBind
)

// FuzzIngress feeds arbitrary bytes to a real client connection, from the
// stream header through negotiation (bound=false) or after a successful
// negotiation (bound=true), over an in-memory transport. Whatever the
// client sends, the connection must not panic or log an error (our bugs),
// must end when the input does, and everything it writes must be
// well-formed XML the client can parse.
func FuzzIngress(f *testing.F) {
	for _, s := range []string{
		fuzzAuth + fuzzHeader + fuzzBind + `<message to='bob@localhost'><body>hi</body></message></stream:stream>`,
		`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
		`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><junk/>`,
		`<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>`,
		`<iq type='set' id='r2'><query xmlns='jabber:iq:register'><username>new</username><password>pw</password></query></iq>`,
		`<iq type='set' id='r3'><query xmlns='jabber:iq:register'><username>taken</username><password>pw</password></query></iq>`,
		`<iq type='error' id='r4'><query xmlns='jabber:iq:register'/></iq><iq type='result' id='r5'><query xmlns='jabber:iq:register'/></iq>`,
		`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` + "\n ",
		`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>biwsbj1hbGljZSxyPWFiYw==</auth><response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</response>`,
		`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!</auth>`,
		`<message to='bob@localhost'/>`,
		fuzzAuth + fuzzHeader + `<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>a@b</resource></bind></iq>`,
		fuzzAuth + fuzzHeader + `<enable xmlns='urn:xmpp:sm:3'/><resume xmlns='urn:xmpp:sm:3' previd='nope' h='3'/><resume xmlns='urn:xmpp:sm:3'/>` + fuzzBind,
	} {
		f.Add([]byte(s), false)
	}
	for _, s := range []string{
		`<message to='bob@localhost' type='chat' id='m1'><body>hi</body></message><presence/><iq type='get' id='i1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>`,
		`<iq xmlns:q='jabber:iq:version' type='get' id='1' to='nobody@localhost'><q:query/></iq>`,
		`<message to='nobody@localhost'><stream:x/></message>`,
		`<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`,
		`<iq type='set' id='s2' to='localhost'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`,
		`<iq to='a@@b' id='q' type='get'/><iq type='result'/><message to='a@b@c' type='error'/>`,
		`<iq type='get'/><iq id='x' type='bogus'/><presence type='bogus'/>`,
		`<message to='a@b@c'><body/></message><presence from='bob@localhost'/>`,
		`<stream:features/>`,
		`<message from='alice@localhost/r' to='alice@localhost'><body>self</body></message>`,
		` <message><![CDATA[x]]></message>` + strings.Repeat("<presence/>", 20),
		// Stream management (XEP-0198).
		`<enable xmlns='urn:xmpp:sm:3' resume='true' max='9'/><message to='alice@localhost/r' id='e'><body>echo</body></message><r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='1'/><enable xmlns='urn:xmpp:sm:3'/>`,
		`<enable xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='4294967295'/>`,
		`<r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='x'/><resume xmlns='urn:xmpp:sm:3' previd='p' h='0'/>`,
		// Client State Indication (XEP-0352): held presence and chat
		// states to the session itself, superseded, then sent.
		`<inactive xmlns='urn:xmpp:csi:0'/><presence to='alice@localhost/r'/><presence to='alice@localhost/r' type='unavailable'/>` +
			`<message to='alice@localhost/r'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>` +
			`<message to='alice@localhost/r'><paused xmlns='http://jabber.org/protocol/chatstates'/><thread>t</thread></message>` +
			`<message to='alice@localhost/r'><received xmlns='urn:xmpp:receipts'/></message><active xmlns='urn:xmpp:csi:0'/>`,
		`<inactive xmlns='urn:xmpp:csi:0'/><enable xmlns='urn:xmpp:sm:3'/><presence to='alice@localhost/r'/><message to='alice@localhost/r'><body>b</body></message>`,
		`<csi:inactive xmlns:csi='urn:xmpp:csi:0'/><inactive xmlns='urn:xmpp:csi:0'><x/></inactive><sleep xmlns='urn:xmpp:csi:0'/>`,
	} {
		f.Add([]byte(s), true)
	}
	srv := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte, bound bool) {
		in := fuzzHeader
		if bound {
			in = fuzzBound
		}
		nc := &memConn{in: io.MultiReader(strings.NewReader(in), bytes.NewReader(data))}
		srv.errors.reset()
		c := newConn(srv.Server, nc, transport{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			runToEnd(t.Context(), c)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection still running 10s after its input ended\nin: %q", data)
		}
		if msgs := srv.errors.get(); len(msgs) > 0 {
			t.Fatalf("error logged: %s\nin: %q", strings.Join(msgs, "; "), data)
		}
		checkOutput(t, data, nc.output())
	})
}

// checkOutput parses what the server wrote as a client would and returns
// the top-level elements; closed reports a closing stream tag.
func checkOutput(t *testing.T, data, out []byte) (els []*wire.Element, closed bool) {
	t.Helper()
	d := wire.NewDecoder(bytes.NewReader(out), wire.Limits{MaxStanza: 1 << 20})
	for {
		if _, err := d.ReadHeader(); err != nil {
			if errors.Is(err, io.EOF) && d.Buffered() == 0 {
				return els, false
			}
			t.Fatalf("server wrote a bad stream header: %v\nin:  %q\nout: %q", err, data, out)
		}
		restart := false
		for !restart {
			el, err := d.ReadElement()
			switch {
			case errors.Is(err, wire.ErrStreamEnd):
				if d.Buffered() != 0 {
					t.Fatalf("server wrote after closing its stream\nin:  %q\nout: %q", data, out)
				}
				return els, true
			case errors.Is(err, io.EOF):
				return els, false // the transport closed without a closing tag
			case err != nil:
				t.Fatalf("server wrote malformed XML: %v\nin:  %q\nout: %q", err, data, out)
			}
			els = append(els, el)
			switch {
			case el.Name == "proceed" && el.Space == xmpp.NSTLS:
				return els, false // TLS bytes follow
			case el.Name == "success" && el.Space == xmpp.NSSASL:
				d.Restart()
				restart = true
			}
		}
	}
}

type fuzzServer struct {
	*Server
	errors *errorLog
}

func newFuzzServer(tb testing.TB) *fuzzServer {
	creds := auth.Credentials{
		SHA1:   weakCredential(tb, sha1.New, "secret"),
		SHA256: weakCredential(tb, sha256.New, "secret"),
	}
	authSrv, err := auth.NewServer(auth.Options{
		Lookup: lookupFunc(func(host, local string) (auth.Credentials, error) {
			if host == "localhost" && local == "alice" {
				return creds, nil
			}
			return auth.Credentials{}, auth.ErrUnknownUser
		}),
		AllowPlainWithoutTLS:  true,
		UnknownUserIterations: 1,
	})
	if err != nil {
		tb.Fatal(err)
	}
	errs := &errorLog{}
	s, err := New(Options{
		DefaultHost:  "localhost",
		Registration: map[string]bool{"localhost": true},
		TLS:          &tls.Config{Certificates: []tls.Certificate{selfSigned(tb)}},
		Logger:       slog.New(errs),
		Limits:       Limits{MaxStanzaSize: 4096, AuthTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
		// A resumable session whose input ends hibernates this long;
		// runToEnd waits for its end.
		ResumeTimeout: 20 * time.Millisecond,
		CSIQueue:      4,
	}, Deps{Router: &echoRouter{}, Auth: authSrv, Registrar: registrarFunc(func(user string) error {
		if user == "taken" || user == "alice" {
			return stanza.Error{Type: stanza.Cancel, Condition: stanza.Conflict}
		}
		return nil
	})})
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzServer{Server: s, errors: errs}
}

// weakCredential derives a SCRAM credential with one iteration, to keep
// PLAIN cheap under fuzzing.
func weakCredential(tb testing.TB, h func() hash.Hash, password string) auth.Credential {
	salt := []byte("fuzz-salt-16byte")
	salted, err := pbkdf2.Key(h, password, salt, 1, h().Size())
	if err != nil {
		tb.Fatal(err)
	}
	mac := func(key []byte, s string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	d := h()
	d.Write(mac(salted, "Client Key"))
	return auth.Credential{Salt: salt, Iterations: 1, StoredKey: d.Sum(nil), ServerKey: mac(salted, "Server Key")}
}

func selfSigned(tb testing.TB) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type lookupFunc func(host, local string) (auth.Credentials, error)

func (l lookupFunc) Lookup(_ context.Context, host, local string) (auth.Credentials, error) {
	return l(host, local)
}

type registrarFunc func(user string) error

func (r registrarFunc) Register(_ context.Context, _, user, _ string) error { return r(user) }

// echoRouter answers like a router with nobody else online: IQ requests
// bounce with service-unavailable, other stanzas come back to the sender
// as if addressed to it, so that replies built from client input are
// written to the stream.
type echoRouter struct {
	mu       sync.Mutex
	sessions map[string]xmpp.Session
}

func (r *echoRouter) IsLocal(domain string) bool { return domain == "localhost" }

func (r *echoRouter) Bind(_ context.Context, sess xmpp.Session, bare jid.JID, resource string) (jid.JID, error) {
	if resource == "" {
		resource = "generated"
	}
	full, err := bare.WithResource(resource)
	if err != nil {
		return jid.JID{}, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions == nil {
		r.sessions = map[string]xmpp.Session{}
	}
	r.sessions[full.String()] = sess
	return full, nil
}

func (r *echoRouter) Unbind(_ context.Context, sess xmpp.Session, full jid.JID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions[full.String()] == sess {
		delete(r.sessions, full.String())
	}
}

func (r *echoRouter) Unacknowledged(context.Context, xmpp.Session, []*xmpp.Stanza) {}

func (r *echoRouter) Leaving(xmpp.Session) {}

func (r *echoRouter) Hibernated(context.Context, xmpp.Session, []*xmpp.Stanza) {}

func (r *echoRouter) AckDelayed(context.Context, xmpp.Session, []*xmpp.Stanza) {}

func (r *echoRouter) Route(ctx context.Context, st *xmpp.Stanza) { r.RouteFromClient(ctx, st) }

func (r *echoRouter) RouteFromClient(_ context.Context, st *xmpp.Stanza) {
	r.mu.Lock()
	sess := r.sessions[st.From.String()]
	r.mu.Unlock()
	if sess == nil {
		panic("echoRouter: stanza from an unbound session: " + st.From.String())
	}
	if st.IsIQRequest() {
		sess.Deliver(st.ErrorReply(xmpp.StanzaError(stanza.ServiceUnavailable, "")))
		return
	}
	sess.Deliver(st.With(st.From, st.From))
}

// errorLog is a slog handler that records error-level messages: the
// connection logs Error for our bugs only.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(_ context.Context, lvl slog.Level) bool { return lvl >= slog.LevelError }

func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, msg)
	l.mu.Unlock()
	return nil
}

func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func (l *errorLog) reset() {
	l.mu.Lock()
	l.msgs = nil
	l.mu.Unlock()
}

func (l *errorLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}

// memConn is a net.Conn that reads a fixed input and records what is
// written. Deadlines are ignored: the input is finite.
type memConn struct {
	in io.Reader

	mu     sync.Mutex
	out    bytes.Buffer
	closed bool
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	return c.in.Read(p)
}

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *memConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *memConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *memConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5222}
}

func (c *memConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// runToEnd runs c as accept does and returns once it has ended: run itself
// returns when the bound session first waits for input.
func runToEnd(ctx context.Context, c *conn) {
	c.srv.wg.Add(1)
	c.run(ctx)
	c.srv.wg.Wait()
}

// TestIngressHarness checks that FuzzIngress's fixed prefix really reaches
// the bound state and that stanzas come back through the writer: otherwise
// the fuzzer would exercise negotiation only.
func TestIngressHarness(t *testing.T) {
	srv := newFuzzServer(t)
	in := `<message to='bob@localhost' id='m1'><body>hi</body></message>` +
		`<iq type='get' id='i1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>`
	nc := &memConn{in: strings.NewReader(fuzzBound + in)}
	runToEnd(t.Context(), newConn(srv.Server, nc, transport{}))
	els, closed := checkOutput(t, []byte(in), nc.output())
	if !closed {
		t.Error("the stream was not closed")
	}
	var got []string
	for _, el := range els {
		switch {
		case el.Name == "success":
			got = append(got, "success")
		case el.Name == "iq" && el.AttrValue("id") == "b":
			got = append(got, "bound "+el.Child("bind", xmpp.NSBind).ChildText("jid", xmpp.NSBind))
		case el.Name == "message":
			got = append(got, "message "+el.AttrValue("id")+" from "+el.AttrValue("from")+": "+el.ChildText("body", wire.NSClient))
		case el.Name == "iq":
			got = append(got, "iq "+el.AttrValue("id")+" "+el.AttrValue("type"))
		}
	}
	want := []string{"success", "bound alice@localhost/r", "message m1 from alice@localhost/r: hi", "iq i1 error"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if msgs := srv.errors.get(); len(msgs) > 0 {
		t.Errorf("errors logged: %v", msgs)
	}
}
