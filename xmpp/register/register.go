package register

import (
	"context"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NS is the XEP-0077 namespace.
const NS = "jabber:iq:register"

// Accounts changes and removes accounts.
type Accounts interface {
	SetPassword(ctx context.Context, host, local, password string) error
	Delete(ctx context.Context, host, local string) error
}

// Module is the in-session registration module.
type Module struct {
	accounts Accounts
	router   xmpp.Router
	// closeSessions ends every session of an account after removal.
	closeSessions func(bare jid.JID)
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module. closeSessions ends an account's sessions.
func New(accounts Accounts, router xmpp.Router, closeSessions func(bare jid.JID)) *Module {
	return &Module{accounts: accounts, router: router, closeSessions: closeSessions}
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "register" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, _ *xmpp.Hooks) error {
	t := xmpp.TargetHost | xmpp.TargetAccount
	reg.AddFeature(xmpp.TargetHost, NS)
	if err := reg.HandleIQ(m.Name(), t, xmpp.TypeGet, NS, "query", m.get); err != nil {
		return err
	}
	return reg.HandleIQ(m.Name(), t, xmpp.TypeSet, NS, "query", m.set)
}

// own reports whether the request concerns the sender's own account: sent
// to its server, its bare JID or with no 'to'.
func own(st *xmpp.Stanza) bool {
	if xmpp.IsZero(st.To) {
		return true
	}
	if st.To.Domainpart() != st.From.Domainpart() {
		return false
	}
	return st.To.Localpart() == "" || st.To.Localpart() == st.From.Localpart()
}

func (m *Module) get(_ context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !own(st) {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	q := wire.New("query", NS).AddChild(
		wire.New("registered", NS),
		wire.New("username", NS).SetText(st.From.Localpart()),
		wire.New("password", NS),
	)
	return st.Result(q), nil
}

func (m *Module) set(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !own(st) {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	q := st.Payload()
	host, local := st.From.Domainpart(), st.From.Localpart()
	if q.Child("remove", NS) != nil {
		if len(q.Children) != 1 {
			// XEP-0077 §3.2: <remove/> is the query's only child.
			return nil, xmpp.StanzaError(stanza.BadRequest, "remove must be the only element")
		}
		if err := m.accounts.Delete(ctx, host, local); err != nil {
			return nil, err
		}
		// XEP-0077 §3.2: answer, then end the account's sessions (the
		// writer flushes the answer before the stream error).
		m.router.Route(ctx, st.Result(nil))
		if m.closeSessions != nil {
			m.closeSessions(st.From.Bare())
		}
		return nil, nil
	}
	user := q.ChildText("username", NS)
	pass := q.ChildText("password", NS)
	if pass == "" || (user != "" && !sameLocal(user, st.From)) {
		// XEP-0077 §3.3: the username must be the user's own.
		return nil, xmpp.StanzaError(stanza.BadRequest, "username must be your own and password non-empty")
	}
	if err := m.accounts.SetPassword(ctx, host, local, pass); err != nil {
		return nil, err
	}
	return st.Result(nil), nil
}

// sameLocal reports whether user names from's account, compared as
// localparts are (RFC 7622 §3.3: "Alice" is alice).
func sameLocal(user string, from jid.JID) bool {
	j, err := jid.New(user, from.Domainpart(), "")
	return err == nil && j.Localpart() == from.Localpart()
}
