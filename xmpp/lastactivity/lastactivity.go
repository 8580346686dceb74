package lastactivity

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NS is the XEP-0012 namespace.
const NS = "jabber:iq:last"

// Subscriptions tells who may see a user's presence.
type Subscriptions interface {
	IsSubscriber(ctx context.Context, user, contact jid.JID) (bool, error)
}

// Deps are the module's collaborators.
type Deps struct {
	Contacts Subscriptions
	Activity *store.Activities
	Sessions xmpp.Sessions
	Now      func() time.Time
	Started  time.Time
}

// Module answers last activity queries.
type Module struct{ deps Deps }

var _ xmpp.Module = (*Module)(nil)

// New returns the module.
func New(deps Deps) (*Module, error) {
	if deps.Contacts == nil || deps.Activity == nil || deps.Sessions == nil {
		return nil, errors.New("lastactivity: missing dependency")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Started.IsZero() {
		deps.Started = deps.Now()
	}
	return &Module{deps: deps}, nil
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "lastactivity" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, _ *xmpp.Hooks) error {
	reg.AddFeature(xmpp.TargetHost|xmpp.TargetAccount, NS)
	return reg.HandleIQ(m.Name(), xmpp.TargetHost|xmpp.TargetAccount|xmpp.TargetRemote, xmpp.TypeGet, NS, "query", m.query)
}

func result(st *xmpp.Stanza, seconds int64, text string) *xmpp.Stanza {
	q := wire.New("query", NS, wire.Attr{Name: "seconds", Value: strconv.FormatInt(seconds, 10)})
	if text != "" {
		q.SetText(text)
	}
	return st.Result(q)
}

func (m *Module) query(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	now := m.deps.Now()
	if !xmpp.IsZero(st.To) && st.To.Localpart() == "" {
		return result(st, int64(now.Sub(m.deps.Started).Seconds()), ""), nil
	}
	user := st.From.Bare()
	if !xmpp.IsZero(st.To) {
		user = st.To.Bare()
	}
	if !user.Equal(st.From.Bare()) {
		ok, err := m.deps.Contacts.IsSubscriber(ctx, user, st.From)
		if err != nil {
			return nil, fmt.Errorf("lastactivity: roster: %w", err)
		}
		if !ok {
			// §4: only subscribers may know.
			return nil, xmpp.StanzaError(stanza.Forbidden, "")
		}
	}
	for _, r := range m.deps.Sessions.Sessions(user) {
		if r.Available {
			return result(st, 0, ""), nil
		}
	}
	act, err := m.deps.Activity.Get(ctx, user.String())
	if errors.Is(err, store.ErrNotFound) {
		return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
	}
	if err != nil {
		return nil, fmt.Errorf("lastactivity: %w", err)
	}
	text := ""
	if len(act.Status) > 0 {
		if el, err := wire.Parse(act.Status, wire.NewScope(wire.NSClient)); err == nil {
			text = el.ChildText("status", xmpp.NSClient)
		}
	}
	secs := int64(now.Sub(act.LastLogout).Seconds())
	if secs < 0 {
		secs = 0
	}
	return result(st, secs, text), nil
}
