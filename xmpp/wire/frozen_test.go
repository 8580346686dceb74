package wire

import (
	"bytes"
	"testing"
)

func TestFrozenWritesAsTheTree(t *testing.T) {
	body := New("body", NSClient).SetText("x < y & 'z'")
	cases := []struct {
		name string
		el   func() *Element
	}{
		{"children and escapes", func() *Element {
			return New("message", NSClient, Attr{"type", "groupchat"}, Attr{"from", "r@c/n'ick"}).AddChild(
				body, New("occupant-id", "urn:xmpp:occupant-id:0", Attr{"id", "a&b"}),
				New("x", "urn:x").AddChild(New("y", "urn:x").SetText("]]>")))
		}},
		{"text only", func() *Element { return New("body", NSClient).SetText("hi\r\n") }},
		{"a child in the stanza's namespace", func() *Element {
			return New("message", NSClient).AddChild(New("subject", NSClient).SetText("s"))
		}},
		{"other namespace", func() *Element { return New("query", "jabber:iq:roster").AddChild(New("item", "jabber:iq:roster")) }},
		{"rebuilt from a parsed element with appended children", func() *Element {
			// What mam's stripOwnIDs does to a message stamped before:
			// the tree drops the stanza-id the parsed copy appended.
			p, err := Parse([]byte(`<message>hi <body>b</body></message>`), NewScope(NSClient))
			if err != nil {
				panic(err)
			}
			stamped := p.Append(New("stanza-id", "urn:xmpp:sid:0", Attr{"id", "1"}))
			return stamped.WithChildren("", stamped.Children[0])
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tree := tc.el()
			frozen := tree.Frozen()
			if frozen == tree || frozen.Raw() == nil {
				t.Fatal("a constructed element was not frozen")
			}
			for _, parent := range []string{NSClient, tree.Space, "urn:elsewhere", ""} {
				want := tree.WithAttr("to", "a@b/c").AppendXML(nil, parent)
				got := frozen.WithAttr("to", "a@b/c").AppendXML(nil, parent)
				if !bytes.Equal(got, want) {
					t.Fatalf("written into %q:\ngot  %s\nwant %s", parent, got, want)
				}
				if got, want := frozen.WithoutAttr("from").AppendXML(nil, parent), tree.WithoutAttr("from").AppendXML(nil, parent); !bytes.Equal(got, want) {
					t.Fatalf("without from, into %q:\ngot  %s\nwant %s", parent, got, want)
				}
			}
			if want := tree.AppendXML(nil, tree.Space); !bytes.Equal(frozen.Raw(), want) {
				t.Fatalf("Raw %s, want %s", frozen.Raw(), want)
			}
			// A child added later is written after the frozen content.
			extra := New("stanza-id", "urn:xmpp:sid:0", Attr{"id", "1"})
			got := frozen.Append(extra).AppendXML(nil, tree.Space)
			want := tree.Append(extra).AppendXML(nil, tree.Space)
			if !bytes.Equal(got, want) {
				t.Fatalf("appended:\ngot  %s\nwant %s", got, want)
			}
			again, err := Parse(frozen.AppendXML(nil, ""), Scope{})
			if err != nil || !equivalent(tree, again) {
				t.Fatalf("reparsed: %v", err)
			}
		})
	}
}

func TestFrozenLeavesOthersAlone(t *testing.T) {
	parsed, err := Parse([]byte(`<message><body>b</body></message>`), NewScope(NSClient))
	if err != nil {
		t.Fatal(err)
	}
	empty := New("presence", NSClient, Attr{"to", "a@b"})
	prefixed := &Element{Name: "error", Prefix: "stream", Space: NSStream, Children: []*Element{New("x", "urn:x")}}
	otherNS := New("message", NSClient, Attr{"xmlns", "urn:other"}).AddChild(New("body", NSClient))
	for _, e := range []*Element{parsed, empty, prefixed, otherNS} {
		if e.Frozen() != e {
			t.Fatalf("%s was copied", e)
		}
	}
}
