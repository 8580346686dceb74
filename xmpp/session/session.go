package session

import (
	"context"

	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
)

// Module answers session requests.
type Module struct{}

var _ xmpp.Module = Module{}

// Name implements xmpp.Module.
func (Module) Name() string { return "session" }

// Register implements xmpp.Module.
func (m Module) Register(reg *xmpp.Registry, _ *xmpp.Hooks) error {
	return reg.HandleIQ(m.Name(), xmpp.TargetHost|xmpp.TargetAccount, xmpp.TypeSet, xmpp.NSSession, "session",
		func(_ context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
			if !st.ToOwnAccount() && st.To.Localpart() != "" {
				// Another user's account: not a session of theirs.
				return nil, xmpp.StanzaError(stanza.ServiceUnavailable, "")
			}
			return st.Result(nil), nil
		})
}
