package version

import (
	"context"
	"runtime"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NS is the XEP-0092 namespace.
const NS = "jabber:iq:version"

// Module answers version queries.
type Module struct {
	// Name and Version of the software; OS is reported only when
	// ShowOS is set (XEP-0092 §2 leaves it optional).
	Software, Version string
	ShowOS            bool
}

var _ xmpp.Module = (*Module)(nil)

// Name implements xmpp.Module.
func (*Module) Name() string { return "version" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, _ *xmpp.Hooks) error {
	reg.AddFeature(xmpp.TargetHost, NS)
	return reg.HandleIQ(m.Name(), xmpp.TargetHost|xmpp.TargetRemote, xmpp.TypeGet, NS, "query", func(_ context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
		q := wire.New("query", NS).AddChild(
			wire.New("name", NS).SetText(m.Software),
			wire.New("version", NS).SetText(m.Version),
		)
		if m.ShowOS {
			q.AddChild(wire.New("os", NS).SetText(runtime.GOOS))
		}
		return st.Result(q), nil
	})
}
