package carbons

import (
	"context"
	"sync"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Namespaces.
const (
	NS        = xmpp.NSCarbons
	NSForward = xmpp.NSForward
	NSHints   = xmpp.NSHints
	NSMUCUser = xmpp.NSMUCUser
)

// Sessions finds an account's resources.
type Sessions interface {
	xmpp.Sessions
}

// Module implements message carbons.
type Module struct {
	sessions Sessions

	mu sync.RWMutex
	// enabled holds, per account, the resources that enabled carbons.
	enabled map[string]map[string]bool
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module.
func New(sessions Sessions) *Module {
	return &Module{sessions: sessions, enabled: map[string]map[string]bool{}}
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "carbons" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, hooks *xmpp.Hooks) error {
	reg.AddFeature(xmpp.TargetHost|xmpp.TargetAccount, NS)
	t := xmpp.TargetHost | xmpp.TargetAccount
	if err := reg.HandleIQ(m.Name(), t, xmpp.TypeSet, NS, "enable", m.toggle(true)); err != nil {
		return err
	}
	if err := reg.HandleIQ(m.Name(), t, xmpp.TypeSet, NS, "disable", m.toggle(false)); err != nil {
		return err
	}
	hooks.MessageOut.Add(m.sent)
	hooks.Delivered.Add(m.received)
	hooks.SessionClosed.Add(func(_ context.Context, ev xmpp.SessionEvent) { m.set(ev.JID, false) })
	return nil
}

func (m *Module) set(full jid.JID, on bool) {
	bare := full.Bare().String()
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.enabled[bare]
	if on {
		if set == nil {
			set = map[string]bool{}
			m.enabled[bare] = set
		}
		set[full.Resourcepart()] = true
		return
	}
	delete(set, full.Resourcepart())
	if len(set) == 0 {
		delete(m.enabled, bare)
	}
}

// toggle answers enable/disable (XEP-0280 §4, §5) for the sender's own
// session only.
func (m *Module) toggle(on bool) xmpp.IQHandler {
	return func(_ context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
		if !st.ToOwnAccount() && st.To.Localpart() != "" {
			return nil, xmpp.StanzaError(stanza.Forbidden, "")
		}
		m.set(st.From, on)
		return st.Result(nil), nil
	}
}

// eligible applies XEP-0280 §6: chat messages, normal messages with a
// body, not marked private or no-copy, not MUC messages.
func eligible(st *xmpp.Stanza) bool {
	if st.Kind != xmpp.KindMessage {
		return false
	}
	switch st.Type {
	case xmpp.TypeChat:
	case "", xmpp.TypeNormal:
		if st.El.Child("body", xmpp.NSClient) == nil {
			return false
		}
	default:
		return false
	}
	for _, c := range st.El.Children {
		switch {
		case c.Space == NS && (c.Name == "private" || c.Name == "received" || c.Name == "sent"):
			return false
		case c.Space == NSHints && c.Name == "no-copy":
			return false
		case c.Space == NSMUCUser:
			return false
		}
	}
	return true
}

func (m *Module) targets(bare jid.JID, skip []jid.JID) []xmpp.Resource {
	m.mu.RLock()
	set := m.enabled[bare.String()]
	n := len(set)
	m.mu.RUnlock()
	if n == 0 {
		return nil
	}
	var out []xmpp.Resource
	for _, r := range m.sessions.Sessions(bare) {
		m.mu.RLock()
		on := m.enabled[bare.String()][r.JID.Resourcepart()]
		m.mu.RUnlock()
		if !on {
			continue
		}
		skipped := false
		for _, s := range skip {
			if s.Equal(r.JID) {
				skipped = true
			}
		}
		if !skipped {
			out = append(out, r)
		}
	}
	return out
}

// wrap builds the carbon copy (XEP-0280 §7, §8).
func wrap(kind string, orig *xmpp.Stanza, account, to jid.JID) *xmpp.Stanza {
	fwd := wire.New("forwarded", NSForward).AddChild(orig.El)
	return xmpp.Build(xmpp.KindMessage, orig.Type, "", account, to, wire.New(kind, NS).AddChild(fwd))
}

// sent copies a message a local client sends to its other resources. It
// runs after the archive (xmpp.Hooks.MessageOut), so st is the sender's
// archived copy with its stanza-id, which the copies carry (XEP-0280 §7,
// XEP-0313 §5.1.1 / XEP-0359 §3): the other devices can match the message
// against what they fetch from the archive.
func (m *Module) sent(_ context.Context, st *xmpp.Stanza) *xmpp.Stanza {
	if !eligible(st) || xmpp.IsZero(st.To) {
		return st
	}
	account := st.From.Bare()
	for _, r := range m.targets(account, []jid.JID{st.From}) {
		r.Session.Deliver(wrap("sent", st, account, r.JID))
	}
	return st
}

// received copies a message delivered to some resources of an account to
// its other resources.
func (m *Module) received(_ context.Context, d xmpp.Delivery) {
	if !eligible(d.Stanza) || len(d.To) == 0 {
		return
	}
	account := d.To[0].Bare()
	if d.Stanza.From.Bare().Equal(account) {
		return // to oneself: the sent copy covers it
	}
	for _, r := range m.targets(account, d.To) {
		r.Session.Deliver(wrap("received", d.Stanza, account, r.JID))
	}
}
