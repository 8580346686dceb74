package vcard

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"image"
	_ "image/gif"  // image.DecodeConfig reads the sizes of GIF,
	_ "image/jpeg" // JPEG
	_ "image/png"  // and PNG avatars
	"net/http"
	"strconv"
	"strings"
	"sync"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Avatar conversion, XEP-0398 (User Avatar to vCard-Based Avatars
// Conversion 1.0.0): an account's avatar is kept in its XEP-0084 nodes,
// which modern clients publish to, and shown in its vCard (XEP-0153),
// which older and web clients, and every client in a room, read.
//
//   - Once the account's metadata node holds an item, it decides the
//     vCard's PHOTO: a vCard read is answered with the stored vCard's other
//     fields and the photo the metadata names, read from the data node
//     (the SHA-1 of the image checked against its id, §3.1), or a URL
//     (EXTVAL) when it names only that. This is the conversion on request
//     that §5.2 allows; it checks the reader's access to both nodes (§7),
//     so an avatar published for contacts only is not shown to others.
//     Metadata without an image (XEP-0084 §3.5, the avatar removed) shows
//     none, as does an image whose base64 would take the vCard beyond the
//     module's MaxBytes. Before any metadata, the stored vCard is answered
//     as it is.
//   - A vCard the owner sets with a photo (BINVAL) publishes it (§3.2):
//     first the image to the data node, then metadata naming it, each node
//     created with open access when missing (the vCard is world-readable);
//     the vCard is stored without it. If the metadata cannot be published
//     (the account's quota), the image is retracted again. A vCard with an
//     empty PHOTO removes the avatar (metadata without an image, XEP-0084
//     §3.5; the image retracted). A vCard without a PHOTO leaves the
//     avatar as it is (a bot setting a name must not remove the user's
//     picture), as does one whose photo is the avatar already; one whose
//     BINVAL is not base64, or not an image, is stored as sent.
//   - The account's available presence, broadcast and directed (room
//     joins), carries the metadata's hash in a vcard-temp:x:update element
//     (§4, XEP-0153 §4.1), empty when the avatar was removed: added when
//     missing, filled in when it has no photo, replaced when it names
//     another; an empty photo, the client saying it has none, stays.

// Namespaces and nodes of the conversion.
const (
	NSConversion = "urn:xmpp:pep-vcard-conversion:0"
	NSUpdate     = "vcard-temp:x:update"
	NodeData     = "urn:xmpp:avatar:data"
	NodeMetadata = "urn:xmpp:avatar:metadata"
)

// maxInfos bounds the images of a metadata item looked at: each costs a
// read of the data node.
const maxInfos = 4

// Avatars are the account's personal eventing nodes, read and written on
// its behalf; *pep.Module implements it.
type Avatars interface {
	// ItemsFor returns the items of owner's node that reader may read
	// (the newest max, or those with the ids); allowed is false when
	// the node's access model refuses reader. A missing node is
	// store.ErrNotFound.
	ItemsFor(ctx context.Context, owner, reader jid.JID, node string, max int, ids []string) (items []store.PEPItem, allowed bool, err error)
	// PublishFor publishes an item as the account's own publication,
	// creating a missing node with the access model given. A full
	// account is store.ErrQuota.
	PublishFor(ctx context.Context, publisher jid.JID, node, id string, payload *wire.Element, access string) error
	// RetractFor removes an item; a missing one is store.ErrNotFound.
	RetractFor(ctx context.Context, owner jid.JID, node, id string) error
}

// avatarLocks order the conversions of one account's vCard sets: two
// at once could leave the metadata naming an image the data node no
// longer holds.
type avatarLocks struct {
	seed  maphash.Seed
	locks [16]sync.Mutex
}

func (l *avatarLocks) of(owner jid.JID) *sync.Mutex {
	return &l.locks[maphash.String(l.seed, owner.String())%uint64(len(l.locks))]
}

// metadata reads owner's avatar metadata as reader may see it. decided is
// whether the metadata node holds an item (the vCard's photo is then the
// one it names), or reader may not read it (no photo then); infos are the
// images it names, at most maxInfos, those in the data node (without a
// URL) first.
func (m *Module) metadata(ctx context.Context, owner, reader jid.JID) (infos []*wire.Element, decided bool, err error) {
	items, allowed, err := m.deps.Avatars.ItemsFor(ctx, owner, reader, NodeMetadata, 1, nil)
	if errors.Is(err, store.ErrNotFound) || err == nil && allowed && len(items) == 0 {
		return nil, false, nil
	}
	if err != nil || !allowed {
		return nil, true, err
	}
	md, err := wire.Parse(items[0].Payload, wire.NewScope(""))
	if err != nil {
		return nil, true, fmt.Errorf("vcard: avatar metadata of %s: %w", owner, err)
	}
	if md.Name != "metadata" || md.Space != NodeMetadata {
		return nil, true, nil
	}
	// Images in the node first, then those named by URL (§3.1 picks the
	// one that is not).
	for _, url := range []bool{false, true} {
		for _, c := range md.Children {
			if c.Name == "info" && c.Space == NodeMetadata && c.AttrValue("id") != "" && (c.AttrValue("url") != "") == url &&
				len(infos) < maxInfos {
				infos = append(infos, c)
			}
		}
	}
	return infos, true, nil
}

// photo returns the vCard PHOTO of owner's avatar for reader; decided as
// for metadata. photo is nil when the avatar names no image reader may
// read, or none that could be found.
func (m *Module) photo(ctx context.Context, owner, reader jid.JID) (photo *wire.Element, decided bool, err error) {
	infos, decided, err := m.metadata(ctx, owner, reader)
	if err != nil || !decided {
		return nil, decided, err
	}
	for _, info := range infos {
		photo := wire.New("PHOTO", NS)
		if typ := info.AttrValue("type"); typ != "" {
			photo.AddChild(wire.New("TYPE", NS).SetText(typ))
		}
		if url := info.AttrValue("url"); url != "" {
			return photo.AddChild(wire.New("EXTVAL", NS).SetText(url)), true, nil
		}
		id := info.AttrValue("id")
		items, allowed, err := m.deps.Avatars.ItemsFor(ctx, owner, reader, NodeData, 0, []string{id})
		if errors.Is(err, store.ErrNotFound) || err == nil && (!allowed || len(items) == 0) {
			continue
		}
		if err != nil {
			return nil, true, fmt.Errorf("vcard: avatar data of %s: %w", owner, err)
		}
		data, err := wire.Parse(items[0].Payload, wire.NewScope(""))
		if err != nil {
			m.log.Error("vcard: stored avatar data", xmpp.LogJID, owner.String(), xmpp.LogErr, err)
			continue
		}
		img, ok := decodeImage(data.Text)
		if data.Name != "data" || data.Space != NodeData || !ok || !strings.EqualFold(hash(img), id) {
			// §3.1: the SHA-1 of the image is checked against the id.
			continue
		}
		return photo.AddChild(wire.New("BINVAL", NS).SetText(base64.StdEncoding.EncodeToString(img))), true, nil
	}
	return nil, true, nil
}

// withPhoto is the stored vCard v (nil: none) with its PHOTO replaced by
// photo (nil: removed).
func withPhoto(v, photo *wire.Element) *wire.Element {
	if v == nil {
		v = wire.New("vCard", NS)
	}
	kids := make([]*wire.Element, 0, len(v.Children)+1)
	for _, c := range v.Children {
		if c.Name != "PHOTO" || c.Space != NS {
			kids = append(kids, c)
		}
	}
	if photo != nil {
		kids = append(kids, photo)
	}
	return v.WithChildren("", kids...)
}

// publishPhoto publishes the photo of a vCard the owner sets to its
// avatar nodes (§3.2), or removes the avatar for an empty PHOTO, and
// returns the vCard to store: without the photo once the nodes hold it
// (or it was empty), as sent when it has no photo or one that cannot be
// read as an image.
func (m *Module) publishPhoto(ctx context.Context, from jid.JID, v *wire.Element) (*wire.Element, error) {
	photo := v.Child("PHOTO", NS)
	if photo == nil {
		return v, nil
	}
	owner := from.Bare()
	binval := strings.TrimSpace(photo.ChildText("BINVAL", NS))
	if binval == "" && photo.Child("EXTVAL", NS) == nil {
		if err := m.removeAvatar(ctx, from); err != nil {
			return nil, err
		}
		return withPhoto(v, nil), nil
	}
	img, ok := decodeImage(binval)
	if !ok {
		return v, nil
	}
	typ := imageTypeOf(photo.ChildText("TYPE", NS), img)
	if typ == "" {
		return v, nil
	}
	id := hash(img)
	mu := m.avatarLocks.of(owner)
	mu.Lock()
	defer mu.Unlock()
	infos, _, err := m.metadata(ctx, owner, owner)
	if err != nil {
		return nil, err
	}
	if len(infos) == 0 || !strings.EqualFold(infos[0].AttrValue("id"), id) || infos[0].AttrValue("url") != "" || !m.hasData(ctx, owner, infos[0].AttrValue("id")) {
		if err := m.publishImage(ctx, from, id, img, typ); err != nil {
			return nil, err
		}
	}
	return withPhoto(v, nil), nil
}

// hasData reports whether owner's data node holds the image id.
func (m *Module) hasData(ctx context.Context, owner jid.JID, id string) bool {
	items, _, err := m.deps.Avatars.ItemsFor(ctx, owner, owner, NodeData, 0, []string{id})
	return err == nil && len(items) > 0
}

// removeAvatar publishes metadata without an image (XEP-0084 §3.5) and
// retracts the images the previous metadata named, if the account has an
// avatar.
func (m *Module) removeAvatar(ctx context.Context, from jid.JID) error {
	owner := from.Bare()
	mu := m.avatarLocks.of(owner)
	mu.Lock()
	defer mu.Unlock()
	infos, decided, err := m.metadata(ctx, owner, owner)
	if err != nil || !decided || len(infos) == 0 {
		return err
	}
	if err := m.publish(ctx, from, NodeMetadata, "none", wire.New("metadata", NodeMetadata)); err != nil {
		return err
	}
	for _, info := range infos {
		if info.AttrValue("url") != "" {
			continue
		}
		if err := m.deps.Avatars.RetractFor(ctx, owner, NodeData, info.AttrValue("id")); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("vcard: retract the avatar of %s: %w", owner, err)
		}
	}
	return nil
}

// publishImage publishes an image as the account's avatar: its data, then
// metadata naming it (XEP-0084 §3.1, §3.2). If the metadata is refused,
// the data is retracted again.
func (m *Module) publishImage(ctx context.Context, from jid.JID, id string, img []byte, typ string) error {
	data := wire.New("data", NodeData).SetText(base64.StdEncoding.EncodeToString(img))
	info := wire.New("info", NodeMetadata,
		wire.Attr{Name: "bytes", Value: strconv.Itoa(len(img))},
		wire.Attr{Name: "id", Value: id},
		wire.Attr{Name: "type", Value: typ})
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(img)); err == nil {
		info.Attrs = append(info.Attrs,
			wire.Attr{Name: "height", Value: strconv.Itoa(cfg.Height)},
			wire.Attr{Name: "width", Value: strconv.Itoa(cfg.Width)})
	}
	if err := m.publish(ctx, from, NodeData, id, data); err != nil {
		return err
	}
	err := m.publish(ctx, from, NodeMetadata, id, wire.New("metadata", NodeMetadata).AddChild(info))
	if err == nil {
		return nil
	}
	if rerr := m.deps.Avatars.RetractFor(ctx, from.Bare(), NodeData, id); rerr != nil {
		m.log.Error("vcard: retract an avatar image its metadata was refused for", xmpp.LogJID, from.Bare().String(), xmpp.LogErr, rerr)
	}
	return err
}

// publish publishes an item to an avatar node, created open if missing.
func (m *Module) publish(ctx context.Context, from jid.JID, node, id string, payload *wire.Element) error {
	err := m.deps.Avatars.PublishFor(ctx, from, node, id, payload, "open")
	if errors.Is(err, store.ErrQuota) {
		return xmpp.StanzaError(stanza.ResourceConstraint, "the account's personal eventing storage cannot hold the photo")
	}
	if err != nil {
		return fmt.Errorf("vcard: publish to the %s node of %s: %w", node, from.Bare(), err)
	}
	return nil
}

// presenceOut puts the avatar's hash in an available presence of the
// account's (§4).
func (m *Module) presenceOut(ctx context.Context, st *xmpp.Stanza) *xmpp.Stanza {
	owner := st.From.Bare()
	infos, decided, err := m.metadata(ctx, owner, owner)
	if err != nil {
		m.log.Error("vcard: avatar hash for presence", xmpp.LogJID, owner.String(), xmpp.LogErr, err)
		return st
	}
	if !decided {
		return st
	}
	var id string
	if len(infos) > 0 {
		// XEP-0153 clients compare it with the SHA-1 they compute.
		id = strings.ToLower(infos[0].AttrValue("id"))
	}
	update := wire.New("x", NSUpdate).AddChild(wire.New("photo", NSUpdate).SetText(id))
	at := -1
	for i, c := range st.El.Children {
		if c.Name == "x" && c.Space == NSUpdate {
			at = i
			break
		}
	}
	if at < 0 {
		return st.WithElement(st.El.Append(update))
	}
	if p := st.El.Children[at].Child("photo", NSUpdate); p != nil && (strings.TrimSpace(p.Text) == "" || strings.EqualFold(strings.TrimSpace(p.Text), id)) {
		// An empty photo is the client's word that it has none (§4);
		// the same hash needs nothing.
		return st
	}
	kids := append([]*wire.Element(nil), st.El.Children...)
	kids[at] = update
	return st.WithElement(st.El.WithChildren("", kids...))
}

// decodeImage decodes a BINVAL or avatar data: base64, with the line
// breaks and spaces vCards put in it.
func decodeImage(s string) ([]byte, bool) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	if s == "" {
		return nil, false
	}
	img, err := base64.StdEncoding.DecodeString(s)
	return img, err == nil
}

// hash is the XEP-0084 id of an image: its SHA-1, hexadecimal.
func hash(img []byte) string {
	sum := sha1.Sum(img)
	return hex.EncodeToString(sum[:])
}

// imageTypeOf is the metadata's type for an image: the vCard's TYPE if it
// names an image type, else the type its bytes show; "" when they are not
// an image's.
func imageTypeOf(given string, img []byte) string {
	if given = strings.TrimSpace(given); imageType(given) {
		return given
	}
	if t := http.DetectContentType(img); strings.HasPrefix(t, "image/") {
		return t
	}
	if _, format, err := image.DecodeConfig(bytes.NewReader(img)); err == nil {
		return "image/" + format
	}
	return ""
}

// imageType reports whether a vCard's TYPE can be the metadata's type: a
// short image/ media type.
func imageType(typ string) bool {
	if len(typ) > 100 || !strings.HasPrefix(typ, "image/") {
		return false
	}
	for _, r := range typ {
		if r <= ' ' || r >= 0x7f {
			return false
		}
	}
	return true
}
