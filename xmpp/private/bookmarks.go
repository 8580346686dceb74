package private

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Bookmark namespaces: XEP-0048's, kept in private XML storage, and
// XEP-0402's, a node of the account's personal eventing service.
const (
	NSBookmarks  = "storage:bookmarks"
	NSBookmarks2 = "urn:xmpp:bookmarks:1"
	// FeatureBookmarksCompat announces on the account that the two are
	// kept in step (XEP-0402 §5.3).
	FeatureBookmarksCompat = NSBookmarks2 + "#compat"
)

// Bookmarks is the account's XEP-0402 node, used on the account's behalf;
// *pep.Module implements it.
type Bookmarks interface {
	// PrivateItems returns the node's items, oldest first; none when
	// the node does not exist.
	PrivateItems(ctx context.Context, owner jid.JID, node string) ([]store.PEPItem, error)
	// PublishPrivate publishes an item, creating the node for private
	// data if needed, and notifies the owner's resources.
	PublishPrivate(ctx context.Context, publisher jid.JID, node, id string, payload *wire.Element) error
	// RetractPrivate removes an item, if it exists, and notifies.
	RetractPrivate(ctx context.Context, owner jid.JID, node, id string) error
	// PrivateMaxItems is the most items a node for private data keeps
	// ([pep] max_items): a list of more rooms is refused.
	PrivateMaxItems() int
}

// bookmark is one room's bookmark, in either form.
type bookmark struct {
	// room is the room's normalised bare JID; id the item id it has in
	// XEP-0402's node (room, or the same JID written otherwise).
	room, id             string
	name, nick, password string
	autojoin             bool
	// extensions is XEP-0402's element for other data, which the
	// older form has no place for: kept when that form changes the rest.
	extensions *wire.Element
}

// roomJID returns the normalised bare JID of a bookmarked room, or false
// for anything else, or one too long for an item id.
func roomJID(s string) (string, bool) {
	j, err := jid.Parse(s)
	if err != nil || j.Resourcepart() != "" || j.Localpart() == "" || len(j.String()) > store.MaxPEPItemIDLen {
		return "", false
	}
	return j.String(), true
}

// truth reads an xs:boolean attribute: absent or invalid is false.
func truth(s string) bool {
	b, _ := xmpp.ParseFormBool(s)
	return b
}

// fromLegacy reads a <conference/> of storage:bookmarks; false when its
// room is not a bare JID with a localpart.
func fromLegacy(c *wire.Element) (bookmark, bool) {
	room, ok := roomJID(c.AttrValue("jid"))
	if !ok {
		return bookmark{}, false
	}
	return bookmark{
		room: room, id: room, name: c.AttrValue("name"), autojoin: truth(c.AttrValue("autojoin")),
		nick: c.ChildText("nick", NSBookmarks), password: c.ChildText("password", NSBookmarks),
	}, true
}

// fromPEP reads an item of XEP-0402's node; false when its payload is not
// a conference or its id not a room's bare JID. Such items are neither
// shown in the older form nor removed through it: it could not give them
// back as they are.
func fromPEP(it store.PEPItem) (bookmark, bool) {
	room, ok := roomJID(it.ID)
	if !ok {
		return bookmark{}, false
	}
	c, err := wire.Parse(it.Payload, wire.NewScope(""))
	if err != nil || c.Name != "conference" || c.Space != NSBookmarks2 {
		return bookmark{}, false
	}
	return bookmark{
		room: room, id: it.ID, name: c.AttrValue("name"), autojoin: truth(c.AttrValue("autojoin")),
		nick: c.ChildText("nick", NSBookmarks2), password: c.ChildText("password", NSBookmarks2),
		extensions: c.Child("extensions", NSBookmarks2),
	}, true
}

// element writes b in namespace ns: XEP-0048's form names the room in an
// attribute, XEP-0402's in the item id.
func (b bookmark) element(ns string) *wire.Element {
	var attrs []wire.Attr
	if ns == NSBookmarks {
		attrs = append(attrs, wire.Attr{Name: "jid", Value: b.room})
	}
	if b.name != "" {
		attrs = append(attrs, wire.Attr{Name: "name", Value: b.name})
	}
	if b.autojoin {
		attrs = append(attrs, wire.Attr{Name: "autojoin", Value: "true"})
	}
	c := wire.New("conference", ns, attrs...)
	if b.nick != "" {
		c.AddChild(wire.New("nick", ns).SetText(b.nick))
	}
	if b.password != "" {
		c.AddChild(wire.New("password", ns).SetText(b.password))
	}
	if ns == NSBookmarks2 && b.extensions != nil {
		c.AddChild(b.extensions)
	}
	return c
}

// same reports whether two bookmarks agree on what both forms hold.
func (b bookmark) same(o bookmark) bool {
	return b.room == o.room && b.name == o.name && b.autojoin == o.autojoin && b.nick == o.nick && b.password == o.password
}

// splitLegacy splits storage:bookmarks elements into the bookmarks of
// rooms and the rest (URLs, conferences whose room is not a JID, other
// elements), which stays in private XML storage: a <storage/> element
// holding the rest of the <storage/> elements, then any other elements.
// A room bookmarked twice keeps its last bookmark.
func splitLegacy(els []*wire.Element) (marks []bookmark, rest []*wire.Element) {
	seen := map[string]int{}
	var restChildren []*wire.Element
	for _, e := range els {
		if e.Name != "storage" {
			rest = append(rest, e)
			continue
		}
		for _, c := range e.Children {
			b, ok := bookmark{}, false
			if c.Name == "conference" && c.Space == NSBookmarks {
				b, ok = fromLegacy(c)
			}
			if !ok {
				restChildren = append(restChildren, c)
				continue
			}
			if i, dup := seen[b.room]; dup {
				marks[i] = b
				continue
			}
			seen[b.room] = len(marks)
			marks = append(marks, b)
		}
	}
	if len(restChildren) > 0 {
		rest = append([]*wire.Element{wire.New("storage", NSBookmarks).WithChildren("", restChildren...)}, rest...)
	}
	return marks, rest
}

// bookmarksView is what a get of storage:bookmarks answers when the two
// forms are kept in step: one <storage/> with a conference for each item
// of XEP-0402's node, then what private XML storage holds beside them
// (stored, nil when nothing is).
func (m *Module) bookmarksView(ctx context.Context, owner jid.JID, stored []*wire.Element) ([]*wire.Element, error) {
	items, err := m.deps.Bookmarks.PrivateItems(ctx, owner, NSBookmarks2)
	if err != nil {
		return nil, fmt.Errorf("private: bookmarks of %s: %w", owner, err)
	}
	storage := wire.New("storage", NSBookmarks)
	all, newest := shown(items)
	for _, b := range all {
		if newest[b.room].id == b.id {
			storage.AddChild(b.element(NSBookmarks))
		}
	}
	var others []*wire.Element
	for _, e := range stored {
		if e.Name == "storage" {
			storage.AddChild(e.Children...)
		} else {
			others = append(others, e)
		}
	}
	return append([]*wire.Element{storage}, others...), nil
}

// shown returns the bookmarks of XEP-0402's node that the older form can
// give back (fromPEP), in the node's order, and by room the one it shows:
// of a room under two spellings, the newer item.
func shown(items []store.PEPItem) (all []bookmark, newest map[string]bookmark) {
	newest = make(map[string]bookmark, len(items))
	for _, it := range items {
		if b, ok := fromPEP(it); ok {
			all = append(all, b)
			newest[b.room] = b
		}
	}
	return all, newest
}

// syncBookmarks makes XEP-0402's node hold marks (XEP-0402 §5.3): first
// the rooms no longer bookmarked are retracted, so that a node at its
// item limit or an account at its quota has room for what follows; then
// an item is published for each new or changed bookmark, under the id
// the room already has. An unchanged one is not published again, so no
// notification goes out for it. Items the older form cannot show
// (fromPEP) are left alone.
func (m *Module) syncBookmarks(ctx context.Context, publisher jid.JID, marks []bookmark) error {
	owner := publisher.Bare()
	items, err := m.deps.Bookmarks.PrivateItems(ctx, owner, NSBookmarks2)
	if err != nil {
		return fmt.Errorf("private: bookmarks of %s: %w", owner, err)
	}
	all, old := shown(items)
	kept := make(map[string]bool, len(marks))
	for _, b := range marks {
		kept[b.room] = true
	}
	for _, b := range all {
		if kept[b.room] {
			continue
		}
		// Every spelling of a room no longer bookmarked, or the next
		// get would show it again.
		if err := m.deps.Bookmarks.RetractPrivate(ctx, owner, NSBookmarks2, b.id); err != nil {
			return fmt.Errorf("private: bookmark of %s: %w", b.room, err)
		}
	}
	for _, b := range marks {
		prev, had := old[b.room]
		if had && b.same(prev) {
			continue
		}
		if had {
			b.id, b.extensions = prev.id, prev.extensions
		}
		if err := m.deps.Bookmarks.PublishPrivate(ctx, publisher, NSBookmarks2, b.id, b.element(NSBookmarks2)); err != nil {
			return fmt.Errorf("private: bookmark of %s: %w", b.room, err)
		}
	}
	return nil
}

// bookmarksError maps a failure to keep the bookmarks in step.
func bookmarksError(err error) error {
	switch {
	case errors.Is(err, store.ErrQuota):
		return xmpp.StanzaError(stanza.ResourceConstraint, "the account's personal eventing storage is full")
	case errors.Is(err, store.ErrInvalid):
		return xmpp.StanzaError(stanza.NotAcceptable, "a bookmark cannot be stored")
	}
	return err
}
