package xmpp_test

import (
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// clientScope is the scope a c2s stream header gives its top-level
// elements; reparsing uses the plain content namespace so that written
// stanzas must declare every prefix they use.
func clientScope() wire.Scope {
	return wire.NewScope(wire.NSClient).Bind("stream", wire.NSStream)
}

var stanzaSeeds = []string{
	`<message to='bob@example.com' type='chat' id='m1'><body>hi &amp; bye</body></message>`,
	`<message from='alice@example.com/phone' to='bob@example.com'><p:x xmlns:p='urn:p' p:a='1'><p:y/></p:x></message>`,
	`<message xmlns:p='urn:p' to='bob@example.com'><p:x p:a='v'><p:y/></p:x><body>b</body></message>`,
	`<iq type='get' id='1' to='example.com'><query xmlns='jabber:iq:version'/></iq>`,
	`<iq xmlns:q='jabber:iq:version' type='get' id='1' to='nobody@example.com'><q:query><q:name/></q:query></iq>`,
	`<iq type='set' id='2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>`,
	`<iq type='error' id='3'><error type='cancel'/></iq>`,
	`<iq type='result' id='4' from='a@b/c'/>`,
	`<presence><show>away</show><priority>5</priority></presence>`,
	`<presence type='subscribe' to='bob@example.com'/>`,
	`<message to='bob@example.com'><stream:x/></message>`,
	`<message to='@example.com'/>`,
	`<message from='a@b/c' to='a@b@c'/>`,
	`<presence xmlns='jabber:server' from='a@b' to='c@d'><x xmlns='urn:x' xml:lang='en'>t</x></presence>`,
	`<message xml:lang='de' to='b@c'><body><![CDATA[<b>]]></body>text<x/></message>`,
	`<stream:features/>`,
	`<x:message xmlns:x='jabber:client'/>`,
	`<foo/>`,
}

// FuzzNewStanza checks that any element a client can send is either
// refused by NewStanza or becomes a Stanza whose encoding parses back to
// the same stanza, and that error replies to it are well-formed.
func FuzzNewStanza(f *testing.F) {
	for _, s := range stanzaSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		el, err := wire.Parse(data, clientScope())
		if err != nil {
			return
		}
		st, err := xmpp.NewStanza(el)
		// A connection parses addresses through its JID cache: cold and
		// warm, it must agree with NewStanza.
		var cache xmpp.JIDCache
		for range 2 {
			cached, cerr := xmpp.NewStanzaCached(el, &cache)
			if (cerr == nil) != (err == nil) || (cached == nil) != (st == nil) ||
				cached != nil && (cached.Kind != st.Kind || cached.Type != st.Type || cached.ID != st.ID ||
					!cached.To.Equal(st.To) || !cached.From.Equal(st.From)) {
				t.Fatalf("NewStanzaCached(%q) = %+v, %v; NewStanza = %+v, %v", data, cached, cerr, st, err)
			}
		}
		if errors.Is(err, xmpp.ErrNotStanza) {
			if st != nil {
				t.Fatalf("NewStanza returned a stanza with ErrNotStanza for %q", data)
			}
			return
		}
		if err != nil {
			// A malformed address: the caller answers with the
			// stanza error, as c2s does.
			var se stanza.Error
			if !errors.As(err, &se) || se.Condition != stanza.JIDMalformed {
				t.Fatalf("NewStanza(%q): error %v, want jid-malformed", data, err)
			}
			if st == nil {
				t.Fatalf("NewStanza(%q): nil stanza with %v: the error cannot be answered", data, err)
			}
			checkErrorReply(t, data, st.With(jid.MustParse("alice@example.com/r"), jid.JID{}), se)
			return
		}
		again := reparse(t, data, st)
		if again.Kind != st.Kind || again.Type != st.Type || again.ID != st.ID ||
			!again.To.Equal(st.To) || !again.From.Equal(st.From) {
			t.Fatalf("round trip changed the stanza\nin:  %q\nout: %q\ngot  %v %q %q %v→%v\nwant %v %q %q %v→%v",
				data, st.Bytes(), again.Kind, again.Type, again.ID, again.From, again.To,
				st.Kind, st.Type, st.ID, st.From, st.To)
		}
		if !equivalent(st.El, again.El) {
			t.Fatalf("round trip changed the payload\nin:  %q\nout: %q", data, st.Bytes())
		}
		// Stamping addresses (what c2s and the router do) keeps the
		// stanza well-formed.
		stamped := st.With(jid.MustParse("alice@example.com/r"), jid.MustParse("bob@example.com"))
		if s := reparse(t, data, stamped); !s.From.Equal(stamped.From) || !s.To.Equal(stamped.To) {
			t.Fatalf("stamped addresses lost: %q", stamped.Bytes())
		}
		checkErrorReply(t, data, stamped, xmpp.StanzaError(stanza.ServiceUnavailable, "fuzz <&> text"))
	})
}

// reparse parses st's encoding as a recipient would.
func reparse(t *testing.T, data []byte, st *xmpp.Stanza) *xmpp.Stanza {
	t.Helper()
	out := st.Bytes()
	el, err := wire.Parse(out, wire.NewScope(wire.NSClient))
	if err != nil {
		t.Fatalf("encoded stanza does not parse: %v\nin:  %q\nout: %q", err, data, out)
	}
	again, err := xmpp.NewStanza(el)
	if err != nil {
		t.Fatalf("encoded stanza is refused: %v\nin:  %q\nout: %q", err, data, out)
	}
	return again
}

func checkErrorReply(t *testing.T, data []byte, st *xmpp.Stanza, se stanza.Error) {
	t.Helper()
	reply := st.ErrorReply(se)
	if st.Type == xmpp.TypeError || (st.Kind == xmpp.KindIQ && st.Type == xmpp.TypeResult) {
		// RFC 6120 §8.3.1 and §8.2.3: neither is ever answered.
		if reply != nil {
			t.Fatalf("error reply to a response: %q", reply.Bytes())
		}
		return
	}
	if reply == nil {
		t.Fatalf("no error reply to %q", data)
	}
	got := reparse(t, data, reply)
	if got.Kind != st.Kind || got.Type != xmpp.TypeError || got.ID != st.ID || !got.To.Equal(st.From) {
		t.Fatalf("error reply %q does not answer %q", reply.Bytes(), data)
	}
	e := got.El.Child("error", wire.NSClient)
	if e == nil || e.Child(string(se.Condition), xmpp.NSStanzas) == nil {
		t.Fatalf("error reply %q lacks the %s condition", reply.Bytes(), se.Condition)
	}
}

// equivalent compares two element trees, ignoring namespace declarations
// and treating the two content namespaces as one (a stanza written to a
// stream takes that stream's content namespace).
func equivalent(a, b *wire.Element) bool {
	if a.Name != b.Name || content(a.Space) != content(b.Space) || a.Prefix != b.Prefix ||
		a.Text != b.Text || len(a.Children) != len(b.Children) {
		return false
	}
	if len(attrs(a)) != len(attrs(b)) {
		return false
	}
	for _, x := range attrs(a) {
		if v, ok := b.Attr(x.Name); !ok || v != x.Value {
			return false
		}
	}
	for i := range a.Children {
		if !equivalent(a.Children[i], b.Children[i]) {
			return false
		}
	}
	return true
}

func content(space string) string {
	if space == wire.NSServer {
		return wire.NSClient
	}
	return space
}

func attrs(e *wire.Element) []wire.Attr {
	var out []wire.Attr
	for _, a := range e.Attrs {
		if a.Name != "xmlns" && !strings.HasPrefix(a.Name, "xmlns:") {
			out = append(out, a)
		}
	}
	return out
}

// TestErrorReplyDeclaresPrefixes is the regression test for a crasher of
// FuzzNewStanza: an error reply copies the payload into a new stanza, and
// a payload whose prefix was declared on the original stanza (or on the
// stream header) was written with the prefix unbound, which is not
// well-formed XML for the recipient.
func TestErrorReplyDeclaresPrefixes(t *testing.T) {
	cases := []struct {
		name string
		in   string
	}{
		{"prefix declared on the stanza", `<iq xmlns:q='jabber:iq:version' type='get' id='1' to='nobody@example.com'><q:query><q:name/></q:query></iq>`},
		{"prefixed attribute", `<message xmlns:p='urn:p' to='b@example.com'><x p:a='1'/></message>`},
		{"prefix declared on the stream header", `<message to='b@example.com'><stream:x/></message>`},
		{"deep use of the stanza's prefix", `<message xmlns:p='urn:p' to='b@example.com'><x><y><p:z/></y></x></message>`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			el, err := wire.Parse([]byte(tc.in), clientScope())
			if err != nil {
				t.Fatal(err)
			}
			st, err := xmpp.NewStanza(el)
			if err != nil {
				t.Fatal(err)
			}
			reply := st.ErrorReply(xmpp.StanzaError(stanza.ServiceUnavailable, ""))
			got := reparse(t, []byte(tc.in), reply)
			if !equivalent(st.El.Children[0], got.El.Children[0]) {
				t.Fatalf("payload changed: %q", reply.Bytes())
			}
		})
	}
}
