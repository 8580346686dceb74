package wire

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>`

func TestParse(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		check func(t *testing.T, e *Element)
	}{
		{"message", `<message to='a@b' type='chat' id="x1"><body>hi &amp; bye</body></message>`, func(t *testing.T, e *Element) {
			if e.Name != "message" || e.Space != NSClient {
				t.Fatalf("name %q space %q", e.Name, e.Space)
			}
			if got := e.AttrValue("to"); got != "a@b" {
				t.Fatalf("to = %q", got)
			}
			if got := e.ChildText("body", NSClient); got != "hi & bye" {
				t.Fatalf("body = %q", got)
			}
		}},
		{"namespaces", `<iq type='get' id='1'><query xmlns='jabber:iq:roster'><item jid='x'/></query></iq>`, func(t *testing.T, e *Element) {
			q := e.Child("query", "jabber:iq:roster")
			if q == nil || q.Children[0].Space != "jabber:iq:roster" {
				t.Fatalf("query not resolved: %+v", e.Children)
			}
		}},
		{"prefixed", `<message><p:x xmlns:p='urn:p' p:a='1'><p:y/></p:x></message>`, func(t *testing.T, e *Element) {
			x := e.Child("x", "urn:p")
			if x == nil || x.Prefix != "p" || x.Children[0].Space != "urn:p" {
				t.Fatalf("prefixed child: %+v", x)
			}
		}},
		{"cdata", `<message><body><![CDATA[a<b]]> c</body></message>`, func(t *testing.T, e *Element) {
			if got := e.ChildText("body", ""); got != "a<b c" {
				t.Fatalf("body = %q", got)
			}
		}},
		{"char refs", `<m a='&#x41;&#66;&lt;'>&#x1F600;&quot;</m>`, func(t *testing.T, e *Element) {
			if e.AttrValue("a") != "AB<" || e.Text != "😀\"" {
				t.Fatalf("got %q %q", e.AttrValue("a"), e.Text)
			}
		}},
		{"attr normalisation", "<m a='x\ty\nz'/>", func(t *testing.T, e *Element) {
			if e.AttrValue("a") != "x y z" {
				t.Fatalf("got %q", e.AttrValue("a"))
			}
		}},
		{"xml lang", `<m xml:lang='de'/>`, func(t *testing.T, e *Element) {
			if e.AttrValue("xml:lang") != "de" {
				t.Fatal("xml:lang lost")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Parse([]byte(tc.in), NewScope(NSClient))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, e)
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, in, cond string
	}{
		{"mismatched", `<a><b></a></b>`, CondNotWellFormed},
		{"unclosed", `<a><b></b>`, CondNotWellFormed},
		{"comment", `<a><!-- x --></a>`, CondRestrictedXML},
		{"pi", `<a><?php x ?></a>`, CondRestrictedXML},
		{"doctype", `<a><!DOCTYPE x></a>`, CondRestrictedXML},
		{"entity", `<a>&foo;</a>`, CondRestrictedXML},
		{"bad ref", `<a>&#xZZ;</a>`, CondNotWellFormed},
		{"null char ref", `<a>&#0;</a>`, CondNotWellFormed},
		{"control char", "<a>\x01</a>", CondNotWellFormed},
		{"bad utf8", "<a>\xff</a>", CondNotWellFormed},
		{"dup attr", `<a x='1' x='2'/>`, CondNotWellFormed},
		{"unquoted", `<a x=1/>`, CondNotWellFormed},
		{"lt in attr", `<a x='<'/>`, CondNotWellFormed},
		{"unbound prefix", `<p:a/>`, CondNotWellFormed},
		{"unbound attr prefix", `<a p:x='1'/>`, CondNotWellFormed},
		{"no space between attrs", `<a x='1'y='2'/>`, CondNotWellFormed},
		{"bad name", `<1a/>`, CondNotWellFormed},
		{"trailing", `<a/><b/>`, CondNotWellFormed},
		{"too deep", strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100), CondPolicyViolation},
		{"undeclare prefix", `<a xmlns:p=''/>`, CondNotWellFormed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), NewScope(NSClient))
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if we.Condition != tc.cond {
				t.Fatalf("condition %q, want %q (%v)", we.Condition, tc.cond, err)
			}
		})
	}
}

func TestAppendXMLRoundTrip(t *testing.T) {
	in := `<message to='a@b' from='c@d/r'><body>x &lt; y</body><p:x xmlns:p='urn:p'><p:y>t</p:y></p:x><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>a <b>b</b> c</body></html></message>`
	e, err := Parse([]byte(in), NewScope(NSClient))
	if err != nil {
		t.Fatal(err)
	}
	out := e.WithAttr("from", "z@y/w").WithoutAttr("to").AppendXML(nil, NSClient)
	want := `<message from='z@y/w'>` + in[strings.Index(in, "<body>"):]
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	// Written into a foreign default namespace, the element declares its own.
	out = e.AppendXML(nil, "urn:xmpp:forward:0")
	if !strings.HasPrefix(string(out), `<message to='a@b' from='c@d/r' xmlns='jabber:client'>`) {
		t.Fatalf("got %s", out)
	}
	again, err := Parse(out, Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Space != NSClient || again.Child("html", "").Child("body", "").Text != "a  c" {
		t.Fatalf("reparsed: %+v", again)
	}
}

func TestPrefixFromOuterScope(t *testing.T) {
	sc := NewScope(NSClient).Bind("stream", NSStream)
	e, err := Parse([]byte(`<stream:error><x xmlns='urn:x'/></stream:error>`), sc)
	if err != nil {
		t.Fatal(err)
	}
	if e.Space != NSStream {
		t.Fatalf("space %q", e.Space)
	}
	out := e.AppendXML(nil, "")
	again, err := Parse(out, Scope{})
	if err != nil {
		t.Fatalf("standalone copy does not parse: %v: %s", err, out)
	}
	if again.Space != NSStream {
		t.Fatalf("space after copy %q", again.Space)
	}
}

func TestConstructed(t *testing.T) {
	e := New("iq", NSClient, Attr{"type", "result"}, Attr{"id", "a'b"}).AddChild(
		New("query", "jabber:iq:version").AddChild(New("name", "jabber:iq:version").SetText("S<b>")),
	)
	got := string(e.AppendXML(nil, NSClient))
	want := `<iq type='result' id='a&apos;b'><query xmlns='jabber:iq:version'><name>S&lt;b&gt;</name></query></iq>`
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

func readAll(t *testing.T, d *Decoder) ([]*Element, error) {
	t.Helper()
	var els []*Element
	for {
		e, err := d.ReadElement()
		if err != nil {
			return els, err
		}
		els = append(els, e)
	}
}

func TestDecoderFraming(t *testing.T) {
	stream := header + "\n <message><body>1</body></message> \n<presence/><iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq><message><body><![CDATA[</message>]]></body></message></stream:stream>"
	for _, oneByte := range []bool{false, true} {
		var r io.Reader = strings.NewReader(stream)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		d := NewDecoder(r, Limits{ReadBuffer: 16})
		h, err := d.ReadHeader()
		if err != nil {
			t.Fatal(err)
		}
		if h.To != "example.com" || h.Version != "1.0" || h.Default != NSClient || h.Space != NSStream || h.Lang != "en" {
			t.Fatalf("header %+v", h)
		}
		els, err := readAll(t, d)
		if !errors.Is(err, ErrStreamEnd) {
			t.Fatalf("err = %v", err)
		}
		names := []string{}
		for _, e := range els {
			names = append(names, e.Name)
		}
		if strings.Join(names, ",") != "message,presence,iq,message" {
			t.Fatalf("elements %v", names)
		}
		if els[3].ChildText("body", "") != "</message>" {
			t.Fatalf("cdata body %q", els[3].ChildText("body", ""))
		}
		if string(els[1].Raw()) != "<presence/>" {
			t.Fatalf("raw %q", els[1].Raw())
		}
	}
}

func TestDecoderErrors(t *testing.T) {
	cases := []struct {
		name, stream, cond string
	}{
		{"oversized", header + "<message><body>" + strings.Repeat("x", 3000) + "</body></message>", CondPolicyViolation},
		{"comment at top", header + "<!-- hi -->", CondRestrictedXML},
		{"pi at top", header + "<?foo?>", CondRestrictedXML},
		{"text at top", header + "hello", CondNotWellFormed},
		{"bad close", header + "</stream:streamx>", CondNotWellFormed},
		{"too deep", header + strings.Repeat("<a>", 80), CondPolicyViolation},
		{"mismatch", header + "<a></b>", CondNotWellFormed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(strings.NewReader(tc.stream), Limits{MaxStanza: 2000, ReadBuffer: 64})
			if _, err := d.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			_, err := readAll(t, d)
			var we *Error
			if !errors.As(err, &we) || we.Condition != tc.cond {
				t.Fatalf("err = %v, want condition %s", err, tc.cond)
			}
		})
	}
}

func TestDecoderRestart(t *testing.T) {
	s := header + "<auth/>" + header + "<iq/>"
	d := NewDecoder(strings.NewReader(s), Limits{})
	if _, err := d.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if e, err := d.ReadElement(); err != nil || e.Name != "auth" {
		t.Fatalf("%v %v", e, err)
	}
	d.Restart()
	if _, err := d.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if e, err := d.ReadElement(); err != nil || e.Name != "iq" {
		t.Fatalf("%v %v", e, err)
	}
	if _, err := d.ReadElement(); !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want EOF", err)
	}
}

func TestHeaderErrors(t *testing.T) {
	for _, in := range []string{"hello", "<?php ?><stream:stream>", "<stream:stream/>", "<stream:stream a=1>"} {
		d := NewDecoder(strings.NewReader(in), Limits{})
		if _, err := d.ReadHeader(); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<message to='a@b'><body>hi</body></message>`,
		`<a xmlns:p='u'><p:b p:c='&amp;'/><![CDATA[x]]></a>`,
		`<iq><query xmlns='jabber:iq:roster'/></iq>`,
		`<a>&#x10FFFF;</a>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := NewScope(NSClient).Bind("stream", NSStream)
		e, err := Parse(data, sc)
		shallow, serr := ParseStartTag(data, sc)
		if err != nil {
			return
		}
		// Whatever parses whole parses shallowly, to the same start tag.
		if serr != nil || !sameStartTag(shallow, e) {
			t.Fatalf("ParseStartTag disagrees with Parse: %v\nin: %q", serr, data)
		}
		out := e.AppendXML(nil, NSClient)
		again, err := Parse(out, NewScope(NSClient))
		if err != nil {
			t.Fatalf("re-encoded element does not parse: %v\nin:  %q\nout: %q", err, data, out)
		}
		if !equivalent(e, again) {
			t.Fatalf("round trip changed the element\nin:  %q\nout: %q", data, out)
		}
		// Append keeps the parsed bytes and writes the new child after
		// them: the same element as appending to the tree.
		child := New("stanza-id", "urn:xmpp:sid:0", Attr{"id", "<1>"})
		out = e.Append(child).AppendXML(nil, NSClient)
		again, err = Parse(out, NewScope(NSClient))
		if err != nil {
			t.Fatalf("element with a child appended does not parse: %v\nin:  %q\nout: %q", err, data, out)
		}
		want := e.WithChildren(e.Text, append(slices.Clone(e.Children), child)...)
		if !equivalent(want, again) {
			t.Fatalf("Append changed the element\nin:  %q\nout: %q", data, out)
		}
		// Written inside an element of another default namespace (a
		// forwarded copy), with or without the child, it is the same:
		// it declares the namespace its verbatim content is in.
		for _, el := range []*Element{e, e.Append(child)} {
			wrapped := append(append([]byte(`<w xmlns='urn:wrap'>`), el.AppendXML(nil, "urn:wrap")...), `</w>`...)
			w, err := Parse(wrapped, Scope{})
			if err != nil || len(w.Children) != 1 {
				t.Fatalf("wrapped copy does not parse: %v\nin:  %q\nout: %q", err, data, wrapped)
			}
			if !equivalent(el, w.Children[0]) {
				t.Fatalf("written in another namespace, the element changed\nin:  %q\nout: %q", data, wrapped)
			}
		}
	})
}

func equivalent(a, b *Element) bool {
	if a.Name != b.Name || a.Space != b.Space || a.Text != b.Text || len(a.Children) != len(b.Children) {
		return false
	}
	for _, x := range a.Attrs {
		if strings.HasPrefix(x.Name, "xmlns") {
			continue
		}
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

func FuzzDecoder(f *testing.F) {
	f.Add([]byte("<message><body>1</body></message><presence/></stream:stream>"), uint8(7))
	f.Add([]byte("<a><![CDATA[<b>]]></a>"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		r := io.MultiReader(strings.NewReader(header), &chunkReader{data: data, n: int(chunk%32) + 1})
		d := NewDecoder(r, Limits{MaxStanza: 4096, ReadBuffer: 32})
		if _, err := d.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		// The same stream read shallowly (every element parsed to its
		// start tag only) gives the same start tags while the whole
		// reads succeed.
		shallow := NewDecoder(io.MultiReader(strings.NewReader(header), &chunkReader{data: data, n: int(chunk%32) + 1}), Limits{MaxStanza: 4096, ReadBuffer: 32})
		if _, err := shallow.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 1000; i++ {
			e, err := d.ReadElement()
			if err != nil {
				return
			}
			if len(e.Raw()) > 4096 {
				t.Fatalf("element of %d bytes passed a 4096 limit", len(e.Raw()))
			}
			se, err := shallow.ReadElementShallow(func([]byte) bool { return true })
			if err != nil || !sameStartTag(se, e) {
				t.Fatalf("element %d read shallowly: %v, %v; read whole: %q", i, se, err, e.Raw())
			}
		}
	})
}

type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// pausingReader returns its chunks one Read at a time, with ErrNoInput
// between them.
type pausingReader struct {
	chunks []string
	paused bool
}

func (r *pausingReader) Read(p []byte) (int, error) {
	if !r.paused {
		r.paused = true
		return 0, ErrNoInput
	}
	r.paused = false
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// TestDecoderNoInput: ErrNoInput from the reader interrupts ReadElement and
// Fill without ending the decoder, mid-element included; ReadBuffered
// returns only what is already read.
func TestDecoderNoInput(t *testing.T) {
	r := &pausingReader{chunks: []string{header, "<message><bo", "dy>1</body></message><presence/>", "</stream:stream>"}}
	r.paused = true
	d := NewDecoder(r, Limits{})
	if _, err := d.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		el, err := d.ReadElement()
		if err == ErrNoInput {
			if el, err := d.ReadBuffered(); el != nil || err != nil {
				t.Fatalf("ReadBuffered after ErrNoInput: %v, %v", el, err)
			}
			continue
		}
		if errors.Is(err, ErrStreamEnd) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, el.Name)
	}
	if strings.Join(got, " ") != "message presence" {
		t.Fatalf("got %q", got)
	}
}

// TestDecoderRelease: the read buffer is dropped only between elements
// with nothing buffered, and reading goes on after.
func TestDecoderRelease(t *testing.T) {
	r := &pausingReader{chunks: []string{header, "<message><bo", "dy>1</body></message>", "<presence/>", "</stream:stream>"}}
	r.paused = true
	d := NewDecoder(r, Limits{})
	if _, err := d.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if !d.Release() {
		t.Fatal("Release refused with nothing buffered after the header")
	}
	var got []string
	for {
		el, err := d.ReadElement()
		if err == ErrNoInput {
			// Mid-element the buffer holds input: it stays.
			if d.Buffered() > 0 && d.Release() {
				t.Fatal("Release dropped buffered input")
			}
			continue
		}
		if errors.Is(err, ErrStreamEnd) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, el.Name)
		if d.Buffered() == 0 && !d.Release() {
			t.Fatal("Release refused between elements")
		}
	}
	if strings.Join(got, " ") != "message presence" {
		t.Fatalf("got %q", got)
	}
}

// A prefixed parsed element's content is in the default namespace of
// where it was parsed, which it need not declare: written where another
// default namespace is in scope, it declares it, appended to or not, and
// so does a prefixed element inside it.
func TestPrefixedInAnotherNamespace(t *testing.T) {
	for _, in := range []string{
		`<cl:message xmlns:cl='jabber:client'><body>hi</body></cl:message>`,
		`<cl:message xmlns:cl='jabber:client'><cl:x><body>hi</body></cl:x></cl:message>`,
		`<cl:message xmlns:cl='jabber:client'>a<body>hi</body>b</cl:message>`,
	} {
		e, err := Parse([]byte(in), NewScope(NSClient))
		if err != nil {
			t.Fatal(err)
		}
		for _, el := range []*Element{e, e.Append(New("x", "urn:x"))} {
			out := append(append([]byte(`<w xmlns='urn:wrap'>`), el.AppendXML(nil, "urn:wrap")...), `</w>`...)
			w, err := Parse(out, Scope{})
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			m := w.Child("message", NSClient)
			if m == nil {
				t.Fatalf("written in another namespace: %s", out)
			}
			if x := m.Child("x", NSClient); x != nil {
				m = x
			}
			if m.Child("body", NSClient) == nil {
				t.Fatalf("written in another namespace: %s; want body in %s", out, NSClient)
			}
		}
	}
}

// Appending to a parsed element copies its content's bytes as they were
// read and writes the new children after them, mixed content or not.
func TestAppendKeepsParsedContent(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`<message to='a@b'><body>a&#x41;</body></message>`,
			`<message to='a@b'><body>a&#x41;</body><x xmlns='urn:x'/></message>`},
		{`<message><body>hi</body>
  <thread>t</thread>
</message>`, `<message><body>hi</body>
  <thread>t</thread>
<x xmlns='urn:x'/></message>`},
		{`<message>x<b/>y</message>`, `<message>x<b/>y<x xmlns='urn:x'/></message>`},
		{`<message/>`, `<message><x xmlns='urn:x'/></message>`},
		{`<message xmlns:p='urn:p'><p:q/></message>`, `<message xmlns:p='urn:p'><p:q/><x xmlns='urn:x'/></message>`},
	} {
		e, err := Parse([]byte(tc.in), NewScope(NSClient))
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		x := New("x", "urn:x")
		got := e.Append(x)
		if out := string(got.AppendXML(nil, NSClient)); out != tc.want {
			t.Errorf("Append to %q wrote\n%s\nwant\n%s", tc.in, out, tc.want)
		}
		if n := len(got.Children); n != len(e.Children)+1 || got.Children[n-1] != x {
			t.Errorf("Append to %q: children %v, want the parsed ones and x", tc.in, got.Children)
		}
		if out := string(e.AppendXML(nil, NSClient)); out != tc.in {
			t.Errorf("Append changed the element it was called on: %s", out)
		}
	}
}

// TestDecoderPendingData: after an element, the bytes read but not yet
// consumed count as data unless they are all white space (RFC 6120 §4.6.1).
func TestDecoderPendingData(t *testing.T) {
	cases := []struct {
		name, after string
		want        bool
	}{
		{"nothing", "", false},
		{"white space", " \n\t\r ", false},
		{"an element", "<iq/>", true},
		{"space, then an element", "\n <iq/>", true},
		{"text", "x", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One read brings in the element and what follows.
			d := NewDecoder(strings.NewReader(header+"<starttls/>"+tc.after), Limits{})
			if _, err := d.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			if e, err := d.ReadElement(); err != nil || e.Name != "starttls" {
				t.Fatalf("%v %v", e, err)
			}
			if got := d.PendingData(); got != tc.want {
				t.Fatalf("PendingData = %v with %q buffered, want %v", got, tc.after, tc.want)
			}
		})
	}
}
