package wire

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseStartTag(t *testing.T) {
	sc := NewScope(NSClient).Bind("stream", NSStream)
	for _, in := range []string{
		`<message id='1' type="chat" to='a@b'><body>hi &amp; bye</body></message>`,
		`<message id='x'/>`,
		`<message id='x' ></message >`,
		`<message xmlns:p='urn:p' p:a='v'><p:x/></message>` + "\n",
		`<stream:error><x xmlns='urn:x'/></stream:error>`,
		`<message a='&lt;&apos;'><body>x</body><body>y</body></message>`,
	} {
		want, err := Parse([]byte(in), sc)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		got, err := ParseStartTag([]byte(in), sc)
		if err != nil {
			t.Fatalf("ParseStartTag(%s): %v", in, err)
		}
		if !sameStartTag(got, want) || len(got.Children) != 0 || got.Text != "" {
			t.Fatalf("ParseStartTag(%s) = %+v, want the start tag of %+v", in, got, want)
		}
	}
	for _, in := range []string{
		``,
		`message/>`,
		`<message id='1'><body>hi</body>`,
		`<message id='1'><body>hi</body></messages>`,
		`<message id='1'><body>hi</body></body>`,
		`<message id='1'/><x/>`,
		`<message id='1></message>`,
		`<message id='1' id='2'/>`,
		`<p:message/>`,
	} {
		if e, err := ParseStartTag([]byte(in), sc); err == nil {
			t.Fatalf("ParseStartTag(%q) = %+v, want an error", in, e)
		}
	}
}

// sameStartTag reports whether a and b have the same name, namespace,
// attributes and bytes.
func sameStartTag(a, b *Element) bool {
	if a.Name != b.Name || a.Prefix != b.Prefix || a.Space != b.Space || len(a.Attrs) != len(b.Attrs) ||
		strings.TrimSpace(string(a.Raw())) != strings.TrimSpace(string(b.Raw())) {
		return false
	}
	for i := range a.Attrs {
		if a.Attrs[i] != b.Attrs[i] {
			return false
		}
	}
	return true
}

func TestReadElementShallow(t *testing.T) {
	d := NewDecoder(strings.NewReader(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`+
		`<message id='m'><body>b</body></message> <iq id='i'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>`), Limits{})
	if _, err := d.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	isMessage := func(raw []byte) bool { return bytes.HasPrefix(raw, []byte("<message")) }
	m, err := d.ReadElementShallow(isMessage)
	if err != nil || m.Name != "message" || m.AttrValue("id") != "m" || len(m.Children) != 0 {
		t.Fatalf("message: %+v, %v", m, err)
	}
	iq, err := d.ReadElementShallow(isMessage)
	if err != nil || iq.Name != "iq" || iq.Child("ping", "urn:xmpp:ping") == nil {
		t.Fatalf("iq (parsed whole): %+v, %v", iq, err)
	}
	if _, err := d.ReadElementShallow(isMessage); err != ErrStreamEnd {
		t.Fatalf("end: %v", err)
	}
}
