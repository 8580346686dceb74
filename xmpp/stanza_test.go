package xmpp_test

import (
	"strings"
	"testing"
	"unsafe"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// WithTo addresses a copy with the string form it is given, and BareTo
// answers from that form what To.Bare().String() would, through the copies
// that keep the address (WithElement).
func TestWithToBareTo(t *testing.T) {
	room := jid.MustParse("room@conference.example.com")
	from := jid.MustParse("room@conference.example.com/nick")
	base := xmpp.Build(xmpp.KindMessage, xmpp.TypeGroupchat, "m1", from, room)
	for _, to := range []string{
		"alice@example.com/phone",
		"alice@example.com",
		"example.com/res",
		"example.com",
		"alice@example.com/a/b@c",
		"ålice@exämple.com/ρ",
	} {
		t.Run(to, func(t *testing.T) {
			j := jid.MustParse(to)
			want := j.Bare().String()
			if got := xmpp.Build(xmpp.KindMessage, "", "", from, j).BareTo(); got != want {
				t.Errorf("built: BareTo %q, want %q", got, want)
			}
			st := base.WithTo(j, j.String())
			if !st.To.Equal(j) || !st.From.Equal(from) {
				t.Fatalf("addresses %s -> %s", st.From, st.To)
			}
			if got := st.El.AttrValue("to"); got != j.String() {
				t.Errorf("to attribute %q, want %q", got, j.String())
			}
			if !strings.Contains(string(st.Bytes()), "to='"+j.String()+"'") && !strings.Contains(string(st.Bytes()), `to="`+j.String()+`"`) {
				t.Errorf("written without its address: %s", st.Bytes())
			}
			for name, c := range map[string]*xmpp.Stanza{
				"WithTo":      st,
				"WithElement": st.WithElement(st.El.Frozen()),
			} {
				if got := c.BareTo(); got != want {
					t.Errorf("%s: BareTo %q, want %q", name, got, want)
				}
			}
			if got := base.BareTo(); got != room.String() {
				t.Errorf("the original's BareTo %q, want %q", got, room.String())
			}
			// A From without its attribute gets it written, as With does.
			bare := &xmpp.Stanza{Kind: xmpp.KindMessage, From: from, El: wire.New("message", wire.NSClient)}
			if got := bare.WithTo(j, j.String()).El.AttrValue("from"); got != from.String() {
				t.Errorf("from attribute %q, want %q", got, from.String())
			}
		})
	}
}

// Stamp sets the sender on the stanza a connection just read: the 'from'
// it is written with, whatever the client wrote (its bare JID, its full
// JID, nothing), and the 'to' it had.
func TestStamp(t *testing.T) {
	full := jid.MustParse("juliet@example.com/balcony")
	for _, tc := range []struct{ name, in string }{
		{"no from", `<message to='romeo@example.net' id='1'><body>hi</body></message>`},
		{"bare from", `<message from='juliet@example.com' to='romeo@example.net' id='1'><body>hi</body></message>`},
		{"the full JID already", `<message from='juliet@example.com/balcony' to='romeo@example.net' id='1'><body>hi</body></message>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			el, err := wire.Parse([]byte(tc.in), wire.NewScope(wire.NSClient))
			if err != nil {
				t.Fatal(err)
			}
			st, err := xmpp.NewStanza(el)
			if err != nil {
				t.Fatal(err)
			}
			st.Stamp(full, full.String())
			if !st.From.Equal(full) || st.El.AttrValue("from") != full.String() {
				t.Fatalf("from %s, attribute %q; want %s", st.From, st.El.AttrValue("from"), full)
			}
			if st.To.String() != "romeo@example.net" || st.El.AttrValue("to") != "romeo@example.net" {
				t.Fatalf("to changed: %s, attribute %q", st.To, st.El.AttrValue("to"))
			}
			out := string(st.Bytes())
			if strings.Count(out, "from=") != 1 || !strings.Contains(out, "from='"+full.String()+"'") || !strings.HasSuffix(out, "<body>hi</body></message>") {
				t.Fatalf("written as %s", out)
			}
		})
	}
}

// A Stanza is allocated per stanza read and per copy of a fan-out: it
// must stay in the 176-byte size class (a field added in the wrong place
// pads it into the 192-byte one).
func TestStanzaSize(t *testing.T) {
	if n := unsafe.Sizeof(xmpp.Stanza{}); n > 176 {
		t.Fatalf("a Stanza takes %d bytes, want at most 176", n)
	}
}

func TestCarbonCopied(t *testing.T) {
	const fwd = "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' id='m'/></forwarded>"
	tests := []struct {
		el   string
		want bool
	}{
		{"<sent xmlns='urn:xmpp:carbons:2'>" + fwd + "</sent>", true},
		{"<received xmlns='urn:xmpp:carbons:2'>" + fwd + "</received>", true},
		{"<private xmlns='urn:xmpp:carbons:2'>" + fwd + "</private>", false},
		{"<sent xmlns='urn:xmpp:other'>" + fwd + "</sent>", false},
		{"<sent xmlns='urn:xmpp:carbons:2'/>", false},
		{"<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'/></sent>", false},
	}
	for _, tc := range tests {
		el, err := wire.Parse([]byte(tc.el), wire.NewScope(""))
		if err != nil {
			t.Fatal(err)
		}
		m := xmpp.CarbonCopied(el)
		if (m != nil) != tc.want || m != nil && m.AttrValue("id") != "m" {
			t.Errorf("CarbonCopied(%s) = %v, want a message: %v", tc.el, m, tc.want)
		}
	}
}

func TestEncrypted(t *testing.T) {
	for _, tc := range []struct {
		xml  string
		want bool
	}{
		{"<encrypted xmlns='eu.siacs.conversations.axolotl'/>", true},
		{"<encrypted xmlns='urn:xmpp:omemo:2'/>", true},
		{"<openpgp xmlns='urn:xmpp:openpgp:0'/>", true},
		{"<x xmlns='jabber:x:encrypted'/>", true},
		{"<header xmlns='eu.siacs.conversations.axolotl'/>", false},
		{"<signcrypt xmlns='urn:xmpp:openpgp:0'/>", false},
		{"<body xmlns='jabber:client'/>", false},
	} {
		el, err := wire.Parse([]byte(tc.xml), wire.NewScope(""))
		if err != nil {
			t.Fatal(err)
		}
		if got := xmpp.Encrypted(el); got != tc.want {
			t.Errorf("Encrypted(%s) = %v, want %v", tc.xml, got, tc.want)
		}
	}
}
