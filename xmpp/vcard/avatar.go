package vcard

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // image.DecodeConfig reads the sizes of GIF,
	_ "image/jpeg" // JPEG
	_ "image/png"  // and PNG avatars
	"net/http"
	"strconv"
	"strings"

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
//     none. Before any metadata, the stored vCard is answered as it is.
//   - A vCard the owner sets with a photo (BINVAL) publishes it (§3.2):
//     first the image to the data node, then metadata naming it, each node
//     created with open access when missing (the vCard is world-readable);
//     the vCard is stored without it. A vCard without a photo leaves the
//     avatar as it is, as does one whose photo is the avatar already, or
//     whose BINVAL is not base64 (stored as sent).
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
}

// metadata reads owner's avatar metadata as reader may see it. decided is
// whether the metadata node holds an item (the vCard's photo is then the
// one it names); infos are the images it names, those in the data node
// (without a URL) first, and none if reader may not read it.
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
			if c.Name == "info" && c.Space == NodeMetadata && c.AttrValue("id") != "" && (c.AttrValue("url") != "") == url {
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
			return nil, true, fmt.Errorf("vcard: avatar data of %s: %w", owner, err)
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
// avatar nodes (§3.2) and returns the vCard to store: without the photo
// once the nodes hold it, as sent when it has no photo or one that cannot
// be read.
func (m *Module) publishPhoto(ctx context.Context, from jid.JID, v *wire.Element) (*wire.Element, error) {
	photo := v.Child("PHOTO", NS)
	if photo == nil {
		return v, nil
	}
	img, ok := decodeImage(photo.ChildText("BINVAL", NS))
	if !ok {
		return v, nil
	}
	id := hash(img)
	owner := from.Bare()
	infos, _, err := m.metadata(ctx, owner, owner)
	if err != nil {
		return nil, err
	}
	if len(infos) == 0 || infos[0].AttrValue("id") != id || infos[0].AttrValue("url") != "" {
		if err := m.publishImage(ctx, from, id, img, photo.ChildText("TYPE", NS)); err != nil {
			return nil, err
		}
	}
	return withPhoto(v, nil), nil
}

// publishImage publishes an image as the account's avatar: its data, then
// metadata naming it (XEP-0084 §3.1, §3.2).
func (m *Module) publishImage(ctx context.Context, from jid.JID, id string, img []byte, typ string) error {
	if typ = strings.TrimSpace(typ); !imageType(typ) {
		typ = http.DetectContentType(img)
	}
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
	meta := wire.New("metadata", NodeMetadata).AddChild(info)
	for _, p := range []struct {
		node    string
		payload *wire.Element
	}{{NodeData, data}, {NodeMetadata, meta}} {
		err := m.deps.Avatars.PublishFor(ctx, from, p.node, id, p.payload, "open")
		if errors.Is(err, store.ErrQuota) {
			return xmpp.StanzaError(stanza.ResourceConstraint, "the account's personal eventing storage cannot hold the photo")
		}
		if err != nil {
			return fmt.Errorf("vcard: publish the photo of %s to %s: %w", from.Bare(), p.node, err)
		}
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
		id = infos[0].AttrValue("id")
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
	if p := st.El.Children[at].Child("photo", NSUpdate); p != nil && (p.Text == "" || p.Text == id) {
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
