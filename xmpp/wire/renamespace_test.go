package wire

import "testing"

// TestRenamespaced: a stanza of a component's stream (jabber:component:accept
// declared on it or on its children) reads and writes as jabber:client.
func TestRenamespaced(t *testing.T) {
	const from, to = "jabber:component:accept", NSClient
	tests := []struct {
		name, in string
		want     string // AppendXML with parentNS jabber:client
		same     bool   // nothing to change: e itself
	}{
		{"declared on the stanza", `<message xmlns='jabber:component:accept' to='a@b'><body>hi</body></message>`,
			`<message to='a@b'><body>hi</body></message>`, false},
		{"double quotes and spaces", `<message xmlns = "jabber:component:accept" id="xmlns='jabber:component:accept'"><body>hi</body></message>`,
			`<message id='xmlns=&apos;jabber:component:accept&apos;'><body>hi</body></message>`, false},
		{"declared on a child too", `<message xmlns='jabber:component:accept'><body xmlns='jabber:component:accept'>hi</body><x xmlns='urn:x'><y/></x></message>`,
			`<message><body>hi</body><x xmlns='urn:x'><y/></x></message>`, false},
		{"a prefix bound to it", `<message xmlns='jabber:client' xmlns:c='jabber:component:accept'><c:body>hi</c:body></message>`,
			`<message xmlns:c='jabber:client'><c:body>hi</c:body></message>`, false},
		{"nothing to change", `<message xmlns='jabber:client'><body>hi</body></message>`,
			`<message><body>hi</body></message>`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			el, err := Parse([]byte(tc.in), NewScope(""))
			if err != nil {
				t.Fatal(err)
			}
			got := el.Renamespaced(from, to)
			if (got == el) != tc.same {
				t.Errorf("returned the element itself: %v, want %v", got == el, tc.same)
			}
			var walk func(e *Element)
			walk = func(e *Element) {
				if e.Space == from {
					t.Errorf("%s is still in %s", e.Name, from)
				}
				for _, c := range e.Children {
					walk(c)
				}
			}
			walk(got)
			if got.Space != to || got.ChildText("body", to) != "hi" {
				t.Errorf("the stanza is in %q with body %q", got.Space, got.ChildText("body", to))
			}
			if out := string(got.AppendXML(nil, to)); out != tc.want {
				t.Errorf("wrote\n%s\nwant\n%s", out, tc.want)
			}
			if string(el.AppendXML(nil, "")) == string(got.AppendXML(nil, "")) && !tc.same {
				t.Error("the original changed with the copy")
			}
		})
	}
}
