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
