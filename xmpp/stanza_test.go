package xmpp_test

import (
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// WithTo addresses a copy with the string form it is given, and BareTo
// answers from that form what To.Bare().String() would, through the copies
// that keep the address (Stamped, WithElement).
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
