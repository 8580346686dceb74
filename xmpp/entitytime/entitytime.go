package entitytime

import (
	"context"
	"fmt"
	"time"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NS is the XEP-0202 namespace.
const NS = "urn:xmpp:time"

// Module answers entity time queries. Now defaults to time.Now.
type Module struct {
	Now func() time.Time
}

var _ xmpp.Module = (*Module)(nil)

// Name implements xmpp.Module.
func (*Module) Name() string { return "time" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, _ *xmpp.Hooks) error {
	if m.Now == nil {
		m.Now = time.Now
	}
	reg.AddFeature(xmpp.TargetHost, NS)
	return reg.HandleIQ(m.Name(), xmpp.TargetHost|xmpp.TargetRemote, xmpp.TypeGet, NS, "time", func(_ context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
		now := m.Now()
		_, off := now.Zone()
		sign := '+'
		if off < 0 {
			sign, off = '-', -off
		}
		q := wire.New("time", NS).AddChild(
			wire.New("tzo", NS).SetText(fmt.Sprintf("%c%02d:%02d", sign, off/3600, off%3600/60)),
			// XEP-0082 DateTime in UTC.
			wire.New("utc", NS).SetText(now.UTC().Format("2006-01-02T15:04:05.000Z")),
		)
		return st.Result(q), nil
	})
}
