package server_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp/jid"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// Namespaces the tests look for.
const (
	nsStartTLS        = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASLMech        = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBindRes         = "urn:ietf:params:xml:ns:xmpp-bind"
	nsStanzaErr       = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsChannelBinding  = "urn:xmpp:sasl-cb:0"
	nsIQRegister      = "jabber:iq:register"
	nsRegisterFeature = "http://jabber.org/features/iq-register"
)

// streamHeader returns a client stream header.
func streamHeader(to, contentNS, streamNS, version string) string {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?><stream:stream xmlns='" + contentNS + "' xmlns:stream='" + streamNS + "'")
	if to != "" {
		b.WriteString(" to='" + to + "'")
	}
	if version != "" {
		b.WriteString(" version='" + version + "'")
	}
	b.WriteString(">")
	return b.String()
}

// readEl returns the next element or fails.
func readEl(t testing.TB, r *servertest.Raw) *wire.Element {
	t.Helper()
	el, err := r.Read()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return el
}

// tlsOpen opens a stream, negotiates STARTTLS and returns the features
// offered on the secure stream.
func tlsOpen(t testing.TB, s *servertest.Server) (*servertest.Raw, *wire.Element) {
	t.Helper()
	r := s.DialRaw(t)
	features(t, r.Open(t, s.Domain))
	r.StartTLS(t, s.TLSConfig())
	return r, features(t, r.Open(t, s.Domain))
}

// features returns el if it is <stream:features/>, or fails (Raw.Open
// returns whatever follows the header, a stream error too).
func features(t testing.TB, el *wire.Element) *wire.Element {
	t.Helper()
	if el.Name != "features" || el.Space != wire.NSStream {
		t.Fatalf("want stream features, got %s", el)
	}
	return el
}

func plainCreds(local, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + local + "\x00" + password))
}

// authRaw negotiates TLS, authenticates with PLAIN and restarts the stream;
// it returns the features of the authenticated stream.
func authRaw(t testing.TB, s *servertest.Server, local, password string) (*servertest.Raw, *wire.Element) {
	t.Helper()
	r, _ := tlsOpen(t, s)
	r.Write(t, "<auth xmlns='"+nsSASLMech+"' mechanism='PLAIN'>"+plainCreds(local, password)+"</auth>")
	if el := readEl(t, r); el.Name != "success" || el.Space != nsSASLMech {
		t.Fatalf("PLAIN auth of %s: got %s", local, el)
	}
	return r, features(t, r.Open(t, s.Domain))
}

// bindRaw sends a bind request (no resource element when resource is "")
// and returns the answer.
func bindRaw(t testing.TB, r *servertest.Raw, resource string) *wire.Element {
	t.Helper()
	req := "<iq type='set' id='bind1'><bind xmlns='" + nsBindRes + "'"
	if resource == "" {
		req += "/>"
	} else {
		req += "><resource>" + resource + "</resource></bind>"
	}
	r.Write(t, req+"</iq>")
	el := readEl(t, r)
	if el.Name != "iq" || el.AttrValue("id") != "bind1" {
		t.Fatalf("bind: unexpected %s", el)
	}
	return el
}

// loginRaw authenticates with PLAIN over STARTTLS and binds resource; it
// returns the raw client and the bound full JID.
func loginRaw(t testing.TB, s *servertest.Server, local, password, resource string) (*servertest.Raw, string) {
	t.Helper()
	r, _ := authRaw(t, s, local, password)
	el := bindRaw(t, r, resource)
	full := el.Child("bind", nsBindRes).ChildText("jid", nsBindRes)
	if el.AttrValue("type") != "result" || full == "" {
		t.Fatalf("bind %q: %s", resource, el)
	}
	return r, full
}

// stanzaCond returns the defined condition of a stanza error reply, or "".
func stanzaCond(el *wire.Element) string {
	if el.AttrValue("type") != "error" {
		return ""
	}
	e := el.Child("error", wire.NSClient)
	if e == nil {
		return ""
	}
	for _, c := range e.Children {
		if c.Space == nsStanzaErr && c.Name != "text" {
			return c.Name
		}
	}
	return ""
}

// saslCond returns the condition of a SASL <failure/>, or fails.
func saslCond(t testing.TB, el *wire.Element) string {
	t.Helper()
	if el.Name != "failure" || el.Space != nsSASLMech {
		t.Fatalf("want a SASL failure, got %s", el)
	}
	for _, c := range el.Children {
		if c.Space == nsSASLMech && c.Name != "text" {
			return c.Name
		}
	}
	t.Fatalf("SASL failure without condition: %s", el)
	return ""
}

// expectStreamEnd reads until the server closes its stream with
// </stream:stream>, failing on anything else.
func expectStreamEnd(t testing.TB, r *servertest.Raw) {
	t.Helper()
	el, err := r.Read()
	if !errors.Is(err, wire.ErrStreamEnd) {
		t.Fatalf("want </stream:stream>, got %v %v", el, err)
	}
}

// mustServe checks that the server still accepts a full login.
func mustServe(t testing.TB, s *servertest.Server, user jid.JID, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.Login(ctx, user, password, servertest.ClientOptions{})
	if err != nil {
		t.Fatalf("server stopped serving: login %s: %v", user, err)
	}
	c.Close()
}

// childNames lists "name{ns}" of el's children, in order.
func childNames(el *wire.Element) []string {
	var out []string
	for _, c := range el.Children {
		out = append(out, c.Name+"{"+c.Space+"}")
	}
	return out
}

// offeredMechanisms lists the SASL mechanisms in stream features.
func offeredMechanisms(el *wire.Element) []string {
	var out []string
	if m := el.Child("mechanisms", nsSASLMech); m != nil {
		for _, c := range m.Children {
			out = append(out, c.Text)
		}
	}
	return out
}

// TestStreamErrors covers the stream errors of RFC 6120 §4.9.3 a client
// can provoke by what it sends; after each, a fresh login must succeed.
func TestStreamErrors(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Limits.MaxStanzaSize = 10000
	}))
	alice := s.AddUser(t, "alice", "pw-alice")
	s.AddUser(t, "bob", "pw-bob")

	type stage int
	const (
		plain  stage = iota // stream open on plain TCP
		secure              // after STARTTLS
		bound               // after login and bind
	)
	cases := []struct {
		name  string
		stage stage
		send  string
		want  string
	}{
		{"not-well-formed: '<' in a tag", bound, "<message to='bob@localhost' <", "not-well-formed"},
		{"not-well-formed: mismatched end tag", bound, "<message to='bob@localhost'><body>hi</message></body>", "not-well-formed"},
		{"not-well-formed: bare ampersand", bound, "<message to='bob@localhost'><body>a & b</body></message>", "not-well-formed"},
		{"not-well-formed: text at stream level", bound, "hello", "not-well-formed"},
		{"not-well-formed: duplicate attribute", bound, "<message to='bob@localhost' to='x@localhost'/>", "not-well-formed"},
		{"restricted-xml: comment before auth", plain, "<!-- hello -->", "restricted-xml"},
		{"restricted-xml: comment in a stanza", bound, "<message to='bob@localhost'><!-- hello --><body>x</body></message>", "restricted-xml"},
		{"restricted-xml: processing instruction", bound, "<?php echo 1; ?>", "restricted-xml"},
		{"restricted-xml: DTD", secure, "<!DOCTYPE foo [<!ENTITY x 'y'>]>", "restricted-xml"},
		{"restricted-xml: entity reference", bound, "<message to='bob@localhost'><body>&foo;</body></message>", "restricted-xml"},
		{"policy-violation: oversized stanza", bound, sizedMessage("bob@localhost", 20000), "policy-violation"},
		// Arriving whole, the frame completes within the decoder's
		// read buffer.
		{"policy-violation: one byte over", bound, sizedMessage("bob@localhost", 10001), "policy-violation"},
		{"not-authorized: message before auth", plain, "<message to='bob@localhost'><body>hi</body></message>", "not-authorized"},
		{"not-authorized: presence before auth over TLS", secure, "<presence/>", "not-authorized"},
		{"unsupported-stanza-type: foreign element after bind", bound, "<foo xmlns='urn:example:foo'/>", "unsupported-stanza-type"},
		{"unsupported-stanza-type: a server's stream management element", bound, "<enabled xmlns='urn:xmpp:sm:3'/>", "unsupported-stanza-type"},
		{"unsupported-stanza-type: unknown jabber:client element", bound, "<foo/>", "unsupported-stanza-type"},
		{"unsupported-stanza-type: unknown element before auth", secure, "<foo xmlns='urn:example:foo'/>", "unsupported-stanza-type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var r *servertest.Raw
			switch tc.stage {
			case plain:
				r = s.DialRaw(t)
				features(t, r.Open(t, s.Domain))
			case secure:
				r, _ = tlsOpen(t, s)
			case bound:
				r, _ = loginRaw(t, s, "alice", "pw-alice", "")
			}
			r.Write(t, tc.send)
			if got := r.StreamError(t); got != tc.want {
				t.Fatalf("stream error %q, want %q", got, tc.want)
			}
			expectStreamEnd(t, r)
			mustServe(t, s, alice, "pw-alice")
		})
	}
}

// TestStreamErrorLargeStanzaAccepted is the control of the size limit: a
// stanza just under Limits.MaxStanzaSize is routed.
func TestStreamErrorLargeStanzaAccepted(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.Limits.MaxStanzaSize = 10000
	}))
	s.AddUser(t, "alice", "pw")
	r, full := loginRaw(t, s, "alice", "pw", "r")
	msg := sizedMessage(full, 10000)
	r.Write(t, msg)
	el := readEl(t, r)
	if el.Name != "message" || len(el.ChildText("body", wire.NSClient)) != len(msg)-len("<message to='"+full+"'><body></body></message>") {
		t.Fatalf("got %.200s", el)
	}
}

// sizedMessage returns a message to the address of exactly size bytes.
func sizedMessage(to string, size int) string {
	head, tail := "<message to='"+to+"'><body>", "</body></message>"
	return head + strings.Repeat("a", size-len(head)-len(tail)) + tail
}

// TestStreamHeaderErrors covers the errors of the stream header: the
// server answers with its own header, then the error (RFC 6120 §4.9.1.3).
func TestStreamHeaderErrors(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	cases := []struct {
		name, header, want string
	}{
		{"host-unknown", streamHeader("example.net", "jabber:client", wire.NSStream, "1.0"), "host-unknown"},
		{"host-unknown: no to", streamHeader("", "jabber:client", wire.NSStream, "1.0"), "host-unknown"},
		{"invalid-namespace: stream namespace", streamHeader("localhost", "jabber:client", "urn:example:streams", "1.0"), "invalid-namespace"},
		{"invalid-namespace: content namespace", streamHeader("localhost", "jabber:server", wire.NSStream, "1.0"), "invalid-namespace"},
		{"invalid-namespace: no content namespace", "<stream:stream xmlns:stream='" + wire.NSStream + "' to='localhost' version='1.0'>", "invalid-namespace"},
		{"unsupported-version: missing", streamHeader("localhost", "jabber:client", wire.NSStream, ""), "unsupported-version"},
		{"unsupported-version: 0.9", streamHeader("localhost", "jabber:client", wire.NSStream, "0.9"), "unsupported-version"},
		{"unsupported-version: not a number", streamHeader("localhost", "jabber:client", wire.NSStream, "x.y"), "unsupported-version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := s.DialRaw(t)
			r.Write(t, tc.header)
			if _, err := r.Dec.ReadHeader(); err != nil {
				t.Fatalf("the server's header must precede the error: %v", err)
			}
			if got := r.StreamError(t); got != tc.want {
				t.Fatalf("stream error %q, want %q", got, tc.want)
			}
			expectStreamEnd(t, r)
			mustServe(t, s, alice, "pw")
		})
	}
	// RFC 7622 §3.2: the domain is compared as a JID's domainpart, so
	// case and a trailing dot do not matter.
	for _, to := range []string{"LocalHost", "localhost."} {
		t.Run("to "+to+" is the host", func(t *testing.T) {
			r := s.DialRaw(t)
			r.Write(t, streamHeader(to, "jabber:client", wire.NSStream, "1.0"))
			h, err := r.Dec.ReadHeader()
			if err != nil {
				t.Fatal(err)
			}
			if h.From != s.Domain {
				t.Errorf("server header from %q, want %q", h.From, s.Domain)
			}
			if el := readEl(t, r); el.Name != "features" {
				t.Fatalf("want features, got %s", el)
			}
		})
	}
	t.Run("version 1.1 is accepted", func(t *testing.T) {
		r := s.DialRaw(t)
		r.Write(t, streamHeader("localhost", "jabber:client", wire.NSStream, "1.1"))
		h, err := r.Dec.ReadHeader()
		if err != nil {
			t.Fatal(err)
		}
		if h.Version != "1.0" {
			t.Errorf("server version %q, want 1.0", h.Version)
		}
		if el := readEl(t, r); el.Name != "features" {
			t.Fatalf("want features, got %s", el)
		}
	})
}

// TestStreamTimeouts covers connection-timeout before authentication and
// on an idle bound session.
func TestStreamTimeouts(t *testing.T) {
	t.Parallel()
	t.Run("auth timeout", func(t *testing.T) {
		t.Parallel()
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
			// Short, yet long enough for the setups and the check login
			// below to negotiate within it on a loaded machine (with
			// -race on two busy CPUs they took over a second).
			c.Limits.AuthTimeout = config.Duration(2 * time.Second)
		}))
		s.AddUser(t, "alice", "pw")
		cases := []struct {
			name string
			open func(t *testing.T) *servertest.Raw
		}{
			{"silent after the header", func(t *testing.T) *servertest.Raw {
				r := s.DialRaw(t)
				features(t, r.Open(t, s.Domain))
				return r
			}},
			{"silent after STARTTLS", func(t *testing.T) *servertest.Raw {
				r, _ := tlsOpen(t, s)
				return r
			}},
			{"authenticated but not bound", func(t *testing.T) *servertest.Raw {
				r, _ := authRaw(t, s, "alice", "pw")
				return r
			}},
		}
		// Open every case first, so that their windows run together.
		clients := make([]*servertest.Raw, len(cases))
		for i, tc := range cases {
			clients[i] = tc.open(t)
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := clients[i]
				if got := r.StreamError(t); got != "connection-timeout" {
					t.Fatalf("stream error %q, want connection-timeout", got)
				}
				expectStreamEnd(t, r)
			})
		}
		// A new connection gets its own window.
		loginRaw(t, s, "alice", "pw", "")
	})
	t.Run("activity defers the idle timeout", func(t *testing.T) {
		t.Parallel()
		// Under a second, where refreshing the deadline at most once a
		// second cut active streams.
		const idle = 800 * time.Millisecond
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
			c.Limits.IdleTimeout = config.Duration(idle)
		}))
		s.AddUser(t, "alice", "pw")
		r, full := loginRaw(t, s, "alice", "pw", "busy")
		// Whitespace keepalives (RFC 6120 §4.6.1) well within the idle
		// timeout, past its first expiry. The ticker paces the traffic
		// under test; it synchronises nothing.
		tick := time.NewTicker(idle / 10)
		defer tick.Stop()
		for end := time.Now().Add(idle * 3 / 2); time.Now().Before(end); {
			<-tick.C
			r.Write(t, " ")
		}
		r.Write(t, "<iq type='get' id='alive' to='"+full+"'><ping xmlns='urn:xmpp:ping'/></iq>")
		if el := readEl(t, r); el.Name != "iq" || el.AttrValue("id") != "alive" {
			t.Fatalf("after keepalives: %s", el)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		t.Parallel()
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
			c.Limits.IdleTimeout = config.Duration(300 * time.Millisecond)
		}))
		alice := s.AddUser(t, "alice", "pw")
		start := time.Now() // before bind, so no earlier than the idle clock
		r, _ := loginRaw(t, s, "alice", "pw", "idle")
		if got := r.StreamError(t); got != "connection-timeout" {
			t.Fatalf("stream error %q, want connection-timeout", got)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("closed after %s, before the idle timeout", d)
		}
		expectStreamEnd(t, r)
		mustServe(t, s, alice, "pw")
	})
}

// TestStreamCleanClose: when the client closes its stream, the server
// closes its own without an error (RFC 6120 §4.4).
func TestStreamCleanClose(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	cases := []struct {
		name string
		open func(t *testing.T) *servertest.Raw
	}{
		{"before TLS", func(t *testing.T) *servertest.Raw {
			r := s.DialRaw(t)
			features(t, r.Open(t, s.Domain))
			return r
		}},
		{"bound", func(t *testing.T) *servertest.Raw {
			r, _ := loginRaw(t, s, "alice", "pw", "")
			return r
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.open(t)
			r.Write(t, "</stream:stream>")
			expectStreamEnd(t, r)
			mustServe(t, s, alice, "pw")
		})
	}
	t.Run("session is unbound", func(t *testing.T) {
		r, full := loginRaw(t, s, "alice", "pw", "closing")
		r.Write(t, "</stream:stream>")
		expectStreamEnd(t, r)
		if _, err := r.Conn.Read(make([]byte, 1)); err == nil {
			t.Fatal("connection still open after </stream:stream>")
		}
		// The session is unbound before the server writes its
		// </stream:stream>.
		for _, j := range s.Router().Resources(alice) {
			if j.String() == full {
				t.Fatalf("%s still bound after close", full)
			}
		}
	})
}

// TestStreamFeatures checks what is offered at each stage of negotiation.
func TestStreamFeatures(t *testing.T) {
	t.Parallel()
	t.Run("TLS required", func(t *testing.T) {
		s := servertest.Start(t)
		r := s.DialRaw(t)
		f := features(t, r.Open(t, s.Domain))
		// RFC 6120 §5.3.1: mandatory TLS is the only feature offered.
		if got, want := childNames(f), []string{"starttls{" + nsStartTLS + "}"}; !slices.Equal(got, want) {
			t.Fatalf("features before TLS %v, want %v", got, want)
		}
		if got := childNames(f.Child("starttls", nsStartTLS)); !slices.Equal(got, []string{"required{" + nsStartTLS + "}"}) {
			t.Fatalf("starttls children %v, want required", got)
		}
		r.StartTLS(t, s.TLSConfig())
		f = features(t, r.Open(t, s.Domain))
		want := []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}
		if got := offeredMechanisms(f); !slices.Equal(got, want) {
			t.Fatalf("mechanisms after TLS %v, want %v", got, want)
		}
		if f.Child("starttls", nsStartTLS) != nil {
			t.Error("starttls offered again after TLS")
		}
		if f.Child("register", nsRegisterFeature) != nil {
			t.Error("registration advertised while closed")
		}
		cb := f.Child("sasl-channel-binding", nsChannelBinding)
		if cb == nil {
			t.Fatalf("no XEP-0440 sasl-channel-binding in %s", f)
		}
		var types []string
		for _, c := range cb.Children {
			types = append(types, c.AttrValue("type"))
		}
		// The test client negotiates TLS 1.3: tls-exporter, not tls-unique.
		if !slices.Contains(types, "tls-exporter") || !slices.Contains(types, "tls-server-end-point") || slices.Contains(types, "tls-unique") {
			t.Errorf("channel binding types %v", types)
		}
	})
	t.Run("TLS optional, plain TCP", func(t *testing.T) {
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.TLS.RequireC2S = false }))
		r := s.DialRaw(t)
		f := features(t, r.Open(t, s.Domain))
		st := f.Child("starttls", nsStartTLS)
		if st == nil || st.Child("required", nsStartTLS) != nil {
			t.Errorf("want optional starttls, got %s", f)
		}
		if got, want := offeredMechanisms(f), []string{"SCRAM-SHA-256", "SCRAM-SHA-1"}; !slices.Equal(got, want) {
			t.Fatalf("mechanisms on plain TCP %v, want %v", got, want)
		}
		if f.Child("sasl-channel-binding", nsChannelBinding) != nil {
			t.Error("channel bindings offered without TLS")
		}
	})
}

// TestSASLFailures covers the SASL failures of RFC 6120 §6.5.
func TestSASLFailures(t *testing.T) {
	t.Parallel()
	t.Run("PLAIN on plain TCP", func(t *testing.T) {
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.TLS.RequireC2S = false }))
		s.AddUser(t, "alice", "pw")
		r := s.DialRaw(t)
		features(t, r.Open(t, s.Domain))
		r.Write(t, "<auth xmlns='"+nsSASLMech+"' mechanism='PLAIN'>"+plainCreds("alice", "pw")+"</auth>")
		if got := saslCond(t, readEl(t, r)); got != "encryption-required" && got != "invalid-mechanism" {
			t.Fatalf("PLAIN without TLS: %s", got)
		}
		// SCRAM works on the same stream.
		mustServePlainTCP(t, s, "alice", "pw")
	})

	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	clientFirst := base64.StdEncoding.EncodeToString([]byte("n,,n=alice,r=abcdefghijklmnop"))
	cases := []struct {
		name string
		send []string // the last answer is checked
		want string
	}{
		{"incorrect-encoding", []string{"<auth xmlns='" + nsSASLMech + "' mechanism='SCRAM-SHA-256'>!!not base64!!</auth>"}, "incorrect-encoding"},
		{"invalid-mechanism", []string{"<auth xmlns='" + nsSASLMech + "' mechanism='X-UNKNOWN'>=</auth>"}, "invalid-mechanism"},
		{"invalid-mechanism: no mechanism", []string{"<auth xmlns='" + nsSASLMech + "'/>"}, "invalid-mechanism"},
		{"not-authorized", []string{"<auth xmlns='" + nsSASLMech + "' mechanism='PLAIN'>" + plainCreds("alice", "wrong") + "</auth>"}, "not-authorized"},
		{"aborted", []string{
			"<auth xmlns='" + nsSASLMech + "' mechanism='SCRAM-SHA-256'>" + clientFirst + "</auth>",
			"<abort xmlns='" + nsSASLMech + "'/>",
		}, "aborted"},
		{"incorrect-encoding in a response", []string{
			"<auth xmlns='" + nsSASLMech + "' mechanism='SCRAM-SHA-256'>" + clientFirst + "</auth>",
			"<response xmlns='" + nsSASLMech + "'>%%%</response>",
		}, "incorrect-encoding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, _ := tlsOpen(t, s)
			var el *wire.Element
			for i, x := range tc.send {
				r.Write(t, x)
				el = readEl(t, r)
				if i < len(tc.send)-1 && el.Name != "challenge" {
					t.Fatalf("want a challenge, got %s", el)
				}
			}
			if got := saslCond(t, el); got != tc.want {
				t.Fatalf("failure %q, want %q", got, tc.want)
			}
			// The stream survives a failed attempt: PLAIN succeeds.
			r.Write(t, "<auth xmlns='"+nsSASLMech+"' mechanism='PLAIN'>"+plainCreds("alice", "pw")+"</auth>")
			if el := readEl(t, r); el.Name != "success" {
				t.Fatalf("retry after %s: %s", tc.want, el)
			}
		})
	}
	t.Run("too many attempts", func(t *testing.T) {
		t.Parallel()
		r, _ := tlsOpen(t, s)
		bad := "<auth xmlns='" + nsSASLMech + "' mechanism='PLAIN'>" + plainCreds("alice", "wrong") + "</auth>"
		// The limit is c2s.Limits.MaxAuthAttempts, 5 by default.
		for i := range 5 {
			r.Write(t, bad)
			if got := saslCond(t, readEl(t, r)); got != "not-authorized" {
				t.Fatalf("attempt %d: %s", i+1, got)
			}
		}
		r.Write(t, bad)
		if got := r.StreamError(t); got != "policy-violation" {
			t.Fatalf("stream error %q, want policy-violation", got)
		}
		expectStreamEnd(t, r)
		mustServe(t, s, alice, "pw")
	})
}

// mustServePlainTCP logs in with SCRAM-SHA-256 and binds on a stream
// without TLS (allowed when tls.require_c2s is false).
func mustServePlainTCP(t testing.TB, s *servertest.Server, local, password string) {
	t.Helper()
	r := s.DialRaw(t)
	features(t, r.Open(t, s.Domain))
	client := sasl.NewClient(sasl.ScramSha256, sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(local), []byte(password), nil
	}))
	_, resp, err := client.Step(nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Write(t, "<auth xmlns='"+nsSASLMech+"' mechanism='SCRAM-SHA-256'>"+base64.StdEncoding.EncodeToString(resp)+"</auth>")
	for {
		el := readEl(t, r)
		data, err := base64.StdEncoding.DecodeString(el.Text)
		if err != nil {
			t.Fatalf("%s: %v", el.Name, err)
		}
		switch el.Name {
		case "challenge":
			if _, resp, err = client.Step(data); err != nil {
				t.Fatal(err)
			}
			r.Write(t, "<response xmlns='"+nsSASLMech+"'>"+base64.StdEncoding.EncodeToString(resp)+"</response>")
			continue
		case "success":
			// Verify the server signature.
			if _, _, err := client.Step(data); err != nil {
				t.Fatalf("server signature: %v", err)
			}
		default:
			t.Fatalf("SCRAM without TLS: %s", el)
		}
		break
	}
	if f := features(t, r.Open(t, s.Domain)); f.Child("bind", nsBindRes) == nil {
		t.Fatalf("no bind offered: %s", f)
	}
	if el := bindRaw(t, r, "plain"); el.AttrValue("type") != "result" {
		t.Fatalf("bind: %s", el)
	}
}

// TestBindConflict covers the resource conflict policies (RFC 6120
// §7.7.2.2).
func TestBindConflict(t *testing.T) {
	t.Parallel()
	t.Run("kick_old", func(t *testing.T) {
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.C2S.ResourceConflict = config.KickOld }))
		alice := s.AddUser(t, "alice", "pw")
		old, full := loginRaw(t, s, "alice", "pw", "desk")
		c := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "desk"})
		if c.JID.String() != full {
			t.Fatalf("new session bound %s, want %s", c.JID, full)
		}
		if got := old.StreamError(t); got != "conflict" {
			t.Fatalf("old session: stream error %q, want conflict", got)
		}
		expectStreamEnd(t, old)
		if got := s.Router().Resources(alice); len(got) != 1 || got[0].String() != full {
			t.Fatalf("bound resources %v, want [%s]", got, full)
		}
		// The new session works: a ping of the server is answered.
		pingHost(t, c)
	})
	t.Run("refuse", func(t *testing.T) {
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.C2S.ResourceConflict = config.Refuse }))
		alice := s.AddUser(t, "alice", "pw")
		first := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "desk"})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if c, err := s.Login(ctx, alice, "pw", servertest.ClientOptions{Resource: "desk"}); err == nil {
			c.Close()
			t.Fatalf("second bind of the same resource succeeded as %s", c.JID)
		}
		// The refusal as the raw stanza error.
		r, _ := authRaw(t, s, "alice", "pw")
		if got := stanzaCond(bindRaw(t, r, "desk")); got != "conflict" {
			t.Fatalf("bind error %q, want conflict", got)
		}
		// The first session is untouched.
		pingHost(t, first)
		if got := s.Router().Resources(alice); len(got) != 1 {
			t.Fatalf("bound resources %v", got)
		}
	})
	t.Run("random", func(t *testing.T) {
		s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.C2S.ResourceConflict = config.Random }))
		alice := s.AddUser(t, "alice", "pw")
		first := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "desk"})
		second := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "desk"})
		if second.JID.Equal(first.JID) || !second.JID.Bare().Equal(alice) || second.JID.Resourcepart() == "" {
			t.Fatalf("second session bound %s next to %s", second.JID, first.JID)
		}
		pingHost(t, first)
		pingHost(t, second)
		if got := s.Router().Resources(alice); len(got) != 2 {
			t.Fatalf("bound resources %v, want 2", got)
		}
	})
}

// pingHost sends an XEP-0199 ping to the server and waits for the result.
func pingHost(t testing.TB, c *servertest.Client) {
	t.Helper()
	id := fmt.Sprintf("ping-%d", time.Now().UnixNano())
	if err := c.SendRaw(t.Context(), "<iq type='get' id='"+id+"' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if el := c.Next(t, wait, servertest.Named("iq", "id", id)); el.AttrValue("type") != "result" {
		t.Fatalf("ping answered %s", el)
	}
}

// TestBindResources covers server-generated resources, the session cap
// and invalid resources.
func TestBindResources(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Limits.MaxSessionsPerUser = 2 }))
	alice := s.AddUser(t, "alice", "pw")
	bob := s.AddUser(t, "bob", "pw")

	t.Run("server-generated resource", func(t *testing.T) {
		c := s.MustLogin(t, bob, "pw", servertest.ClientOptions{})
		if c.JID.Resourcepart() == "" || !c.JID.Bare().Equal(bob) {
			t.Fatalf("bound %s", c.JID)
		}
		r, full := loginRaw(t, s, "bob", "pw", "")
		if full == c.JID.String() || !strings.HasPrefix(full, "bob@localhost/") || full == "bob@localhost/" {
			t.Fatalf("raw bind without resource got %s (first %s)", full, c.JID)
		}
		r.Write(t, "</stream:stream>")
		expectStreamEnd(t, r)
	})
	t.Run("invalid resource", func(t *testing.T) {
		cases := []struct{ name, resource string }{
			{"too long", strings.Repeat("a", 1024)},
			{"zero width space", "a\u200bb"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r, _ := authRaw(t, s, "bob", "pw")
				if got := stanzaCond(bindRaw(t, r, tc.resource)); got != "bad-request" {
					t.Fatalf("bind error %q, want bad-request", got)
				}
				// The stream stays usable: a valid bind succeeds.
				if el := bindRaw(t, r, "ok"); el.AttrValue("type") != "result" {
					t.Fatalf("bind after bad-request: %s", el)
				}
				r.Write(t, "</stream:stream>")
				expectStreamEnd(t, r)
			})
		}
	})
	t.Run("max sessions per user", func(t *testing.T) {
		s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "one"})
		s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "two"})
		r, _ := authRaw(t, s, "alice", "pw")
		if got := stanzaCond(bindRaw(t, r, "three")); got != "resource-constraint" {
			t.Fatalf("third bind: %q, want resource-constraint", got)
		}
		// Replacing an existing resource is not a new session.
		if el := bindRaw(t, r, "two"); el.AttrValue("type") != "result" {
			t.Fatalf("rebinding an existing resource: %s", el)
		}
	})
}

// TestRegistrationClosed: with registration off, nothing is advertised and
// an iq:register before authentication ends the stream.
func TestRegistrationClosed(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "pw")
	for _, typ := range []string{"get", "set"} {
		t.Run(typ, func(t *testing.T) {
			r, f := tlsOpen(t, s)
			if f.Child("register", nsRegisterFeature) != nil {
				t.Fatalf("registration advertised: %s", f)
			}
			r.Write(t, "<iq type='"+typ+"' id='reg1'><query xmlns='"+nsIQRegister+"'><username>eve</username><password>x</password></query></iq>")
			if got := r.StreamError(t); got != "not-authorized" {
				t.Fatalf("stream error %q, want not-authorized", got)
			}
			expectStreamEnd(t, r)
			mustServe(t, s, alice, "pw")
		})
	}
	if ok, _ := s.Accounts().Exists(t.Context(), "localhost", "eve"); ok {
		t.Fatal("an account was registered while registration is closed")
	}
}

// TestRegistrationOpen covers XEP-0077 §3.1 registration before
// authentication.
func TestRegistrationOpen(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Hosts[0].Registration = true }))
	s.AddUser(t, "taken", "pw")

	t.Run("not before TLS", func(t *testing.T) {
		r := s.DialRaw(t)
		if f := features(t, r.Open(t, s.Domain)); f.Child("register", nsRegisterFeature) != nil {
			t.Fatalf("registration advertised before TLS: %s", f)
		}
	})

	r, f := tlsOpen(t, s)
	if f.Child("register", nsRegisterFeature) == nil {
		t.Fatalf("registration not advertised after TLS: %s", f)
	}
	iq := func(id, typ, payload string) *wire.Element {
		t.Helper()
		r.Write(t, "<iq type='"+typ+"' id='"+id+"'><query xmlns='"+nsIQRegister+"'>"+payload+"</query></iq>")
		el := readEl(t, r)
		if el.Name != "iq" || el.AttrValue("id") != id {
			t.Fatalf("%s: unexpected %s", id, el)
		}
		return el
	}

	form := iq("get1", "get", "")
	q := form.Child("query", nsIQRegister)
	if form.AttrValue("type") != "result" || q == nil || q.Child("username", nsIQRegister) == nil || q.Child("password", nsIQRegister) == nil {
		t.Fatalf("registration form: %s", form)
	}

	cases := []struct {
		name, payload, want string // want "" = result
	}{
		{"create", "<username>carol</username><password>s3cret</password>", ""},
		{"same username again", "<username>carol</username><password>other</password>", "conflict"},
		{"existing account", "<username>taken</username><password>x</password>", "conflict"},
		{"missing password", "<username>dave</username>", "not-acceptable"},
		{"empty password", "<username>dave</username><password/>", "not-acceptable"},
		{"missing username", "<password>x</password>", "not-acceptable"},
		{"invalid username", "<username>a@b</username><password>x</password>", "not-acceptable"},
		{"remove before auth", "<remove/>", "not-authorized"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			el := iq(fmt.Sprintf("set%d", i), "set", tc.payload)
			if tc.want == "" {
				if el.AttrValue("type") != "result" {
					t.Fatalf("got %s", el)
				}
				return
			}
			if got := stanzaCond(el); got != tc.want {
				t.Fatalf("error %q, want %q (%s)", got, tc.want, el)
			}
		})
	}
	if ok, _ := s.Accounts().Exists(t.Context(), "localhost", "dave"); ok {
		t.Error("dave registered without a password")
	}
	// The account works, with the password given at registration.
	carol := jid.MustParse("carol@localhost")
	s.MustLogin(t, carol, "s3cret", servertest.ClientOptions{})
	// And the registering stream can go on to authenticate.
	r.Write(t, "<auth xmlns='"+nsSASLMech+"' mechanism='PLAIN'>"+plainCreds("carol", "s3cret")+"</auth>")
	if el := readEl(t, r); el.Name != "success" {
		t.Fatalf("auth after registration: %s", el)
	}
}

// TestRegistrationInSession covers XEP-0077 §3.2 and §3.3 for a logged-in
// user: password change and account removal.
func TestRegistrationInSession(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "old-pw")
	bob := s.AddUser(t, "bob", "pw")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	t.Run("change password", func(t *testing.T) {
		c := s.MustLogin(t, alice, "old-pw", servertest.ClientOptions{})
		if err := c.SendRaw(ctx, "<iq type='set' id='pw1'><query xmlns='jabber:iq:register'><username>alice</username><password>new-pw</password></query></iq>"); err != nil {
			t.Fatal(err)
		}
		if el := c.Next(t, wait, servertest.Named("iq", "id", "pw1")); el.AttrValue("type") != "result" {
			t.Fatalf("password change answered %s", el)
		}
		if _, err := s.Login(ctx, alice, "old-pw", servertest.ClientOptions{}); err == nil {
			t.Error("the old password still works")
		}
		mustServe(t, s, alice, "new-pw")
		// Someone else's username is refused.
		if err := c.SendRaw(ctx, "<iq type='set' id='pw2'><query xmlns='jabber:iq:register'><username>bob</username><password>mine</password></query></iq>"); err != nil {
			t.Fatal(err)
		}
		if el := c.Next(t, wait, servertest.Named("iq", "id", "pw2")); stanzaCond(el) == "" {
			t.Fatalf("changing bob's password answered %s", el)
		}
		mustServe(t, s, bob, "pw")
	})
	t.Run("remove", func(t *testing.T) {
		other := s.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: "other"})
		c := s.MustLogin(t, bob, "pw", servertest.ClientOptions{Resource: "main"})
		if err := c.SendRaw(ctx, "<iq type='set' id='rm1'><query xmlns='jabber:iq:register'><remove/></query></iq>"); err != nil {
			t.Fatal(err)
		}
		if el := c.Next(t, wait, servertest.Named("iq", "id", "rm1")); el.AttrValue("type") != "result" {
			t.Fatalf("remove answered %s", el)
		}
		c.Closed(t, wait)
		other.Closed(t, wait)
		if _, err := s.Login(ctx, bob, "pw", servertest.ClientOptions{}); err == nil || !strings.Contains(err.Error(), "not-authorized") {
			t.Fatalf("login after removal: %v", err)
		}
		if ok, _ := s.Accounts().Exists(ctx, "localhost", "bob"); ok {
			t.Fatal("bob still exists")
		}
	})
	t.Run("remove closes with a stream error", func(t *testing.T) {
		s.AddUser(t, "carol", "pw")
		r, _ := loginRaw(t, s, "carol", "pw", "")
		r.Write(t, "<iq type='set' id='rm2'><query xmlns='jabber:iq:register'><remove/></query></iq>")
		if el := readEl(t, r); el.Name != "iq" || el.AttrValue("type") != "result" {
			t.Fatalf("remove answered %s", el)
		}
		if got := r.StreamError(t); got != "not-authorized" {
			t.Fatalf("stream error %q after removal", got)
		}
		expectStreamEnd(t, r)
	})
}

// TestShutdown: logged-in clients get system-shutdown and the data
// survives a restart on the same data directory.
func TestShutdown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := servertest.Config(dir)
	s := servertest.StartConfig(t, cfg)
	alice := s.AddUser(t, "alice", "pw")
	r1, _ := loginRaw(t, s, "alice", "pw", "one")
	r2, _ := loginRaw(t, s, "alice", "pw", "two")
	pre := s.DialRaw(t) // not yet authenticated
	features(t, pre.Open(t, s.Domain))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for i, r := range []*servertest.Raw{r1, r2, pre} {
		if got := r.StreamError(t); got != "system-shutdown" {
			t.Errorf("client %d: stream error %q, want system-shutdown", i, got)
		}
	}
	if c, err := net.DialTimeout("tcp", s.C2S, time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts after shutdown")
	}

	s2 := servertest.StartConfig(t, cfg)
	c := s2.MustLogin(t, alice, "pw", servertest.ClientOptions{Mechanisms: []sasl.Mechanism{sasl.ScramSha1}})
	pingHost(t, c)
}

// TestMaxConnectionsPerIP: connections over the per-address limit get a
// policy-violation stream error; other addresses are unaffected.
func TestMaxConnectionsPerIP(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Limits.MaxConnectionsPerIP = 2 }))
	s.AddUser(t, "alice", "pw")
	r1 := s.DialRaw(t)
	features(t, r1.Open(t, s.Domain))
	r2, _ := loginRaw(t, s, "alice", "pw", "")

	r3 := s.DialRaw(t)
	if _, err := r3.Dec.ReadHeader(); err != nil {
		t.Fatalf("refused connection: no header: %v", err)
	}
	if got := r3.StreamError(t); got != "policy-violation" {
		t.Fatalf("stream error %q, want policy-violation", got)
	}

	t.Run("other address", func(t *testing.T) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", s.C2S)
		if err != nil {
			t.Skipf("cannot dial from 127.0.0.2: %v", err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := &servertest.Raw{Conn: c, Dec: wire.NewDecoder(c, wire.Limits{})}
		features(t, r.Open(t, s.Domain))
	})

	t.Run("slot released", func(t *testing.T) {
		r1.Write(t, "</stream:stream>")
		expectStreamEnd(t, r1)
		r2.Write(t, "</stream:stream>")
		expectStreamEnd(t, r2)
		// The count drops when the connection's goroutine ends, just
		// after the transport closes: retry (each attempt is a round
		// trip, not a sleep) until a connection is admitted.
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := s.DialRaw(t)
			r.Write(t, streamHeader(s.Domain, "jabber:client", wire.NSStream, "1.0"))
			if _, err := r.Dec.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			el := readEl(t, r)
			if el.Name == "features" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no connection admitted after the others closed: %s", el)
			}
			r.Conn.Close()
		}
	})
}
