package disco

import (
	"context"

	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// ItemsFunc lists the items (typically component domains) of a host.
type ItemsFunc func(host string) []Item

// Item is a disco#items entry.
type Item struct {
	JID  string
	Name string
}

// Module is the service discovery module.
type Module struct {
	reg   *xmpp.Registry
	items ItemsFunc
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module; items may be nil.
func New(items ItemsFunc) *Module { return &Module{items: items} }

// Name implements xmpp.Module.
func (m *Module) Name() string { return "disco" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, _ *xmpp.Hooks) error {
	m.reg = reg
	all := xmpp.TargetHost | xmpp.TargetAccount | xmpp.TargetRemote
	reg.AddFeature(all, xmpp.NSDiscoInfo, xmpp.NSDiscoItem)
	reg.AddIdentity(xmpp.Identity{Target: xmpp.TargetHost, Category: "server", Type: "im", Name: "Switchboard"})
	reg.AddIdentity(xmpp.Identity{Target: xmpp.TargetAccount, Category: "account", Type: "registered"})
	if err := reg.HandleIQ(m.Name(), all, xmpp.TypeGet, xmpp.NSDiscoInfo, "query", m.info); err != nil {
		return err
	}
	return reg.HandleIQ(m.Name(), all, xmpp.TypeGet, xmpp.NSDiscoItem, "query", m.itemsIQ)
}

func target(st *xmpp.Stanza) xmpp.Target {
	if !xmpp.IsZero(st.To) && st.To.Localpart() == "" {
		return xmpp.TargetHost
	}
	return xmpp.TargetAccount
}

func (m *Module) info(_ context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	q := st.Payload()
	node := q.AttrValue("node")
	t := target(st)
	if node != "" {
		n, ok := m.reg.Node(t, node)
		if !ok {
			return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
		}
		res := wire.New("query", xmpp.NSDiscoInfo, wire.Attr{Name: "node", Value: node})
		for _, id := range n.Identities {
			res.AddChild(identity(id))
		}
		for _, f := range n.Features {
			res.AddChild(wire.New("feature", xmpp.NSDiscoInfo, wire.Attr{Name: "var", Value: f}))
		}
		return st.Result(res), nil
	}
	res := wire.New("query", xmpp.NSDiscoInfo)
	for _, id := range m.reg.Identities(t) {
		res.AddChild(identity(id))
	}
	for _, f := range m.reg.Features(t) {
		res.AddChild(wire.New("feature", xmpp.NSDiscoInfo, wire.Attr{Name: "var", Value: f}))
	}
	return st.Result(res), nil
}

func identity(id xmpp.Identity) *wire.Element {
	e := wire.New("identity", xmpp.NSDiscoInfo,
		wire.Attr{Name: "category", Value: id.Category}, wire.Attr{Name: "type", Value: id.Type})
	if id.Name != "" {
		e.Attrs = append(e.Attrs, wire.Attr{Name: "name", Value: id.Name})
	}
	return e
}

func (m *Module) itemsIQ(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if node := st.Payload().AttrValue("node"); node != "" {
		n, ok := m.reg.Node(target(st), node)
		if !ok {
			return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
		}
		res := wire.New("query", xmpp.NSDiscoItem, wire.Attr{Name: "node", Value: node})
		if n.Items != nil {
			for _, it := range n.Items(ctx, st) {
				e := wire.New("item", xmpp.NSDiscoItem, wire.Attr{Name: "jid", Value: it.JID})
				if it.Node != "" {
					e.Attrs = append(e.Attrs, wire.Attr{Name: "node", Value: it.Node})
				}
				if it.Name != "" {
					e.Attrs = append(e.Attrs, wire.Attr{Name: "name", Value: it.Name})
				}
				res.AddChild(e)
			}
		}
		return st.Result(res), nil
	}
	res := wire.New("query", xmpp.NSDiscoItem)
	if target(st) == xmpp.TargetHost && m.items != nil {
		for _, it := range m.items(st.To.Domainpart()) {
			e := wire.New("item", xmpp.NSDiscoItem, wire.Attr{Name: "jid", Value: it.JID})
			if it.Name != "" {
				e.Attrs = append(e.Attrs, wire.Attr{Name: "name", Value: it.Name})
			}
			res.AddChild(e)
		}
	}
	return st.Result(res), nil
}
