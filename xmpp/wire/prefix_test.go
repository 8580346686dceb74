package wire

import (
	"strings"
	"testing"
)

// TestChildDeclaresInheritedPrefixes: a parsed child written on its own
// (moved into a constructed parent, as an error reply does with a payload)
// declares the prefixes its subtree inherited from its ancestors or the
// stream header. Without it the output had unbound prefixes.
func TestChildDeclaresInheritedPrefixes(t *testing.T) {
	cases := []struct {
		name, in string
	}{
		{"element prefix on the parent", `<iq xmlns:q='urn:q'><q:query><q:item/></q:query></iq>`},
		{"attribute prefix on the parent", `<message xmlns:p='urn:p'><x p:a='1'/></message>`},
		{"deep use", `<message xmlns:p='urn:p'><x><y><p:z/></y></x></message>`},
		{"stream header prefix", `<message><stream:x/></message>`},
		{"shadowed prefix", `<message xmlns:p='urn:outer'><x xmlns:p='urn:inner'><p:y/></x></message>`},
		{"deeper than the parser's inline stack", `<message xmlns:p='urn:p'>` + strings.Repeat("<x>", 30) +
			`<p:y/>` + strings.Repeat("</x>", 30) + `</message>`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root, err := Parse([]byte(tc.in), NewScope(NSClient).Bind("stream", NSStream))
			if err != nil {
				t.Fatal(err)
			}
			child := root.Children[0]
			parent := New("wrapper", NSClient).AddChild(child)
			out := parent.AppendXML(nil, NSClient)
			again, err := Parse(out, NewScope(NSClient))
			if err != nil {
				t.Fatalf("%v\nout: %s", err, out)
			}
			if !equivalent(child, again.Children[0]) {
				t.Fatalf("child changed: %s", out)
			}
			// Every element, however deep, stands on its own.
			var walk func(e *Element)
			walk = func(e *Element) {
				out := e.AppendXML(nil, "")
				if again, err := Parse(out, Scope{}); err != nil || !equivalent(e, again) {
					t.Fatalf("<%s> written alone: %v\nout: %s", e.Name, err, out)
				}
				for _, c := range e.Children {
					walk(c)
				}
			}
			walk(root)
		})
	}
}

// TestCopiesKeepRareFields: copies share an element's rare fields (the
// bindings it inherited, a prefixed element's content namespace, children
// appended after its verbatim content); a copy that changes them leaves
// the element and its other copies as they were.
func TestCopiesKeepRareFields(t *testing.T) {
	sc := NewScope(NSClient).Bind("stream", NSStream)
	for _, in := range []string{
		`<message xmlns:p='urn:p'><p:q><x/></p:q></message>`,
		`<stream:error xmlns='urn:inner'><x/></stream:error>`,
		`<message><body>hi</body></message>`,
	} {
		t.Run(in, func(t *testing.T) {
			root, err := Parse([]byte(in), sc)
			if err != nil {
				t.Fatal(err)
			}
			el := root
			if el.Prefix == "" && len(el.Children) > 0 && el.Children[0].Prefix != "" {
				el = el.Children[0] // the prefixed child, with its inherited binding
			}
			alone := string(el.AppendXML(nil, ""))
			a := el.Append(New("a", "urn:a"))
			b := el.Append(New("b", "urn:b"))
			aa := a.Append(New("aa", "urn:a"))
			tree := aa.WithChildren("", aa.Children...)
			if got := string(el.AppendXML(nil, "")); got != alone {
				t.Fatalf("the element changed with its copies:\n%s\nwas\n%s", got, alone)
			}
			for name, c := range map[string]struct {
				el   *Element
				want []string
			}{
				"a":    {a, []string{"a"}},
				"b":    {b, []string{"b"}},
				"aa":   {aa, []string{"a", "aa"}},
				"tree": {tree, []string{"a", "aa"}},
			} {
				out := c.el.AppendXML(nil, "")
				again, err := Parse(out, Scope{})
				if err != nil {
					t.Fatalf("%s: %v\nout: %s", name, err, out)
				}
				if !equivalent(c.el, again) {
					t.Fatalf("%s: written and parsed again, it changed\nout: %s", name, out)
				}
				var added []string
				for _, ch := range again.Children[len(el.Children):] {
					added = append(added, ch.Name)
				}
				if strings.Join(added, " ") != strings.Join(c.want, " ") {
					t.Errorf("%s: added children %v, want %v\nout: %s", name, added, c.want, out)
				}
			}
		})
	}
}

func TestSetAttr(t *testing.T) {
	for _, tc := range []struct {
		in, name, value, want string
	}{
		{`<message to='a@b' id='1'><body>x</body></message>`, "from", "c@d/r", `<message to='a@b' id='1' from='c@d/r'><body>x</body></message>`},
		{`<message from='e@f' to='a@b'><body>x</body></message>`, "from", "c@d/r", `<message from='c@d/r' to='a@b'><body>x</body></message>`},
		{`<message/>`, "from", "<&'>", `<message from='&lt;&amp;&apos;&gt;'/>`},
	} {
		e, err := Parse([]byte(tc.in), NewScope(NSClient))
		if err != nil {
			t.Fatal(err)
		}
		e.SetAttr(tc.name, tc.value)
		if got := e.AttrValue(tc.name); got != tc.value {
			t.Errorf("%s: %s=%q, want %q", tc.in, tc.name, got, tc.value)
		}
		if got := string(e.AppendXML(nil, NSClient)); got != tc.want {
			t.Errorf("%s: wrote\n%s\nwant\n%s", tc.in, got, tc.want)
		}
	}
}
