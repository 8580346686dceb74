package pep

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// The server's own use of an account's nodes as private storage
// (XEP-0223), on the account's behalf: the private XML storage module
// keeps XEP-0049 bookmarks in step with XEP-0402's node through these.

// PrivateItems returns the items of owner's node, oldest first, each
// payload serialised with its namespace declared; none when the node does
// not exist. Nothing checks access: the items are read for the owner.
func (m *Module) PrivateItems(ctx context.Context, owner jid.JID, node string) ([]store.PEPItem, error) {
	_, items, err := m.deps.Store.Items(ctx, owner.Bare().String(), node, 0, nil)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pep: items of %s: %w", node, err)
	}
	return items, nil
}

// PublishPrivate publishes an item to the node of publisher's account,
// a node for private data (XEP-0223 §4): whitelist access, which leaves
// the owner alone, as many items as a node may hold ([pep] max_items), the
// last item never sent on presence. A missing node is created so; an existing one
// configured otherwise (a client created it with the defaults: presence
// access, one item) is reconfigured so first, since XEP-0223 §3 requires
// it and its items must not reach contacts (XEP-0402 §3.3). The owner's
// resources that ask for the node are notified, as for a client's
// publication. A full account is store.ErrQuota, an id or node too long
// store.ErrInvalid.
func (m *Module) PublishPrivate(ctx context.Context, publisher jid.JID, node, id string, payload *wire.Element) error {
	// The store checks the id, the node's name and the quota.
	pub := store.PEPPublish{
		Item:   store.PEPItem{ID: id, Payload: payload.AppendXML(nil, "")},
		Create: m.privateConfig(store.PEPNode{Node: node, NotifyRetract: true, NotifyDelete: true}),
		Check: func(n store.PEPNode) error {
			if !sameConfig(n, m.privateConfig(n)) {
				return errNotPrivate
			}
			return nil
		},
	}
	err := m.publishItem(ctx, publisher, pub, payload)
	if !errors.Is(err, errNotPrivate) {
		return err
	}
	own := publisher.Bare().String()
	n, err := m.deps.Store.Node(ctx, own, node)
	if err != nil {
		return fmt.Errorf("pep: private node %q: %w", node, err)
	}
	if err := m.deps.Store.Configure(ctx, own, m.privateConfig(n)); err != nil {
		return fmt.Errorf("pep: make node %q private: %w", node, err)
	}
	m.log.Info("pep: node made private for the server's use", xmpp.LogJID, own, "node", node, "access", n.Access, "max_items", n.MaxItems)
	return m.publishItem(ctx, publisher, pub, payload)
}

// errNotPrivate is an existing node not configured for private data.
var errNotPrivate = errors.New("pep: node not configured for private data")

// privateConfig is n configured for private data (XEP-0223 §4), the rest
// of n kept.
func (m *Module) privateConfig(n store.PEPNode) store.PEPNode {
	n.Access, n.RosterGroups, n.MaxItems, n.SendLast = AccessWhitelist, nil, m.opts.MaxItems, SendNever
	return n
}

// RetractPrivate removes an item of owner's node and notifies the
// owner's resources that ask for the node, whatever the node says (as a
// client asking with notify='true', XEP-0402 §3.5); a missing node or
// item is not an error.
func (m *Module) RetractPrivate(ctx context.Context, owner jid.JID, node, id string) error {
	err := m.retractItem(ctx, owner.Bare(), node, id, true)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// PrivateMaxItems is the most items a node for private data keeps
// (Options.MaxItems: PublishPrivate configures the node with it).
func (m *Module) PrivateMaxItems() int { return m.opts.MaxItems }
