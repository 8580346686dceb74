package pep

import (
	"context"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp/wire"
)

// Reading and publishing on an account's behalf, for modules that keep an
// older protocol in step with an account's nodes: the vCard module's
// avatar conversion (XEP-0398) reads the XEP-0084 nodes for the vCard a
// reader asks for, and publishes the photo of a vCard the owner sets.

// ItemsFor returns the items of owner's node that an items request from
// reader would (XEP-0060 §6.5): with ids, those of them that exist;
// otherwise the newest max (all when max <= 0); oldest first. allowed is
// false, with no items, when the node's access model or the owner's
// blocklist refuses reader, or when the roster it needs could not be read
// (logged). A missing node is store.ErrNotFound.
func (m *Module) ItemsFor(ctx context.Context, owner, reader jid.JID, node string, max int, ids []string) (items []store.PEPItem, allowed bool, err error) {
	items, denied, err := m.readItems(ctx, owner.Bare(), reader, node, max, ids)
	return items, err == nil && denied == nil, err
}

// PublishFor publishes an item to a node of publisher's account on the
// account's behalf, with the notifications of the account's own
// publication. A missing node is created with the defaults (XEP-0163 §5)
// and the access model given; an existing node keeps its configuration.
// A full account is store.ErrQuota, an item larger than the account's
// whole allowance too.
func (m *Module) PublishFor(ctx context.Context, publisher jid.JID, node, id string, payload *wire.Element, access string) error {
	create := m.defaults(node)
	create.Access = access
	return m.publishItem(ctx, publisher, store.PEPPublish{
		Item:   store.PEPItem{ID: id, Payload: payload.AppendXML(nil, "")},
		Create: create,
	}, payload)
}

// RetractFor removes an item of owner's node on the account's behalf,
// notifying as the node says (XEP-0060 §7.2.2.1). A missing node or item
// is store.ErrNotFound.
func (m *Module) RetractFor(ctx context.Context, owner jid.JID, node, id string) error {
	return m.retractItem(ctx, owner.Bare(), node, id, false)
}
