package router

import (
	"context"
	"sync/atomic"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

type countingSession struct {
	full  jid.JID
	n     atomic.Int64
	bytes atomic.Int64
}

func (s *countingSession) JID() jid.JID { return s.full }
func (s *countingSession) Deliver(st *xmpp.Stanza) bool {
	s.n.Add(1)
	s.bytes.Add(int64(len(st.Bytes())))
	return true
}
func (s *countingSession) Close(string, string) {}

type noUsers struct{}

func (noUsers) Exists(context.Context, string, string) (bool, error) { return false, nil }

// BenchmarkIngressRouteDeliver measures the per-message server path
// without sockets: parse the client's bytes, build the stanza, stamp the
// sender, route to a full JID and serialise for the recipient.
func BenchmarkIngressRouteDeliver(b *testing.B) {
	ctx := context.Background()
	r, err := New(Options{Hosts: []string{"localhost"}}, Deps{Registry: xmpp.NewRegistry(), Hooks: &xmpp.Hooks{}, Users: noUsers{}})
	if err != nil {
		b.Fatal(err)
	}
	alice := jid.MustParse("alice@localhost/phone")
	bob := &countingSession{full: jid.MustParse("bob@localhost/desk")}
	if _, err := r.Bind(ctx, bob, bob.full.Bare(), "desk"); err != nil {
		b.Fatal(err)
	}
	raw := []byte(`<message to='bob@localhost/desk' type='chat' id='m1'><body>Hello Bob, are you coming to the meeting at three?</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`)
	sc := wire.NewScope(wire.NSClient)
	var cache xmpp.JIDCache
	aliceStr := alice.String()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		buf := make([]byte, len(raw))
		copy(buf, raw)
		el, err := wire.Parse(buf, sc)
		if err != nil {
			b.Fatal(err)
		}
		st, err := xmpp.NewStanzaCached(el, &cache)
		if err != nil {
			b.Fatal(err)
		}
		st.Stamp(alice, aliceStr)
		r.Route(ctx, st)
	}
	if bob.n.Load() == 0 {
		b.Fatal("nothing delivered")
	}
}
