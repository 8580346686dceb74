package pep

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"switchboard/store"
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
// creating the node for private data if it does not exist (XEP-0223 §4:
// whitelist access, which leaves the owner alone, as many items as an
// account may keep, the last item never sent on presence); an existing
// node keeps its configuration. The owner's resources that ask for the
// node are notified, as for a client's publication. A full account is
// store.ErrQuota.
func (m *Module) PublishPrivate(ctx context.Context, publisher jid.JID, node, id string, payload *wire.Element) error {
	if id == "" || len(id) > store.MaxPEPItemIDLen || len(node) > store.MaxPEPNodeLen {
		return fmt.Errorf("pep: private item %q of node %q: %w", id, node, store.ErrInvalid)
	}
	stored := payload.AppendXML(nil, "")
	if int64(len(stored)) > m.opts.MaxBytes {
		return fmt.Errorf("pep: private item of %d bytes: %w", len(stored), store.ErrQuota)
	}
	return m.publishItem(ctx, publisher, store.PEPPublish{
		Item: store.PEPItem{ID: id, Payload: stored},
		Create: store.PEPNode{
			Node: node, Access: AccessWhitelist, MaxItems: m.opts.MaxItems, SendLast: SendNever,
			NotifyRetract: true, NotifyDelete: true,
		},
	}, payload)
}

// RetractPrivate removes an item of owner's node, notifying as the node
// says; a missing node or item is not an error.
func (m *Module) RetractPrivate(ctx context.Context, owner jid.JID, node, id string) error {
	err := m.retractItem(ctx, owner.Bare(), node, id, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
