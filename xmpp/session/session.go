// Package session answers the RFC 3921 §3 session establishment request,
// kept for old clients: RFC 6120 dropped it, and the stream feature is
// offered as optional, so the request does nothing but succeed. RFC 3921's
// own example addresses it to the domain; clients also send it with no
// 'to' or to their own bare JID.
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
