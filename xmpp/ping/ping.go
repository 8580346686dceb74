package ping

import (
	"context"

	"switchboard/xmpp"
)

// NS is the XEP-0199 namespace.
const NS = "urn:xmpp:ping"

// Module answers pings.
type Module struct{}

var _ xmpp.Module = Module{}

// Name implements xmpp.Module.
func (Module) Name() string { return "ping" }

// Register implements xmpp.Module.
func (m Module) Register(reg *xmpp.Registry, _ *xmpp.Hooks) error {
	t := xmpp.TargetHost | xmpp.TargetAccount | xmpp.TargetRemote
	reg.AddFeature(t, NS)
	return reg.HandleIQ(m.Name(), t, xmpp.TypeGet, NS, "ping", func(_ context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
		return st.Result(nil), nil
	})
}
