package vcard

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/png"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

// fakeAvatars are one account's avatar nodes: items by node (a node
// absent from the map does not exist), nodes the reader may not read,
// errors by node, and what was published, in order.
type fakeAvatars struct {
	items      map[string][]store.PEPItem
	denied     map[string]bool
	readErr    map[string]error
	publishOK  int // publications that succeed before publishErr
	publishErr error
	published  []string // node, id, access, payload
}

func (f *fakeAvatars) ItemsFor(_ context.Context, _, _ jid.JID, node string, max int, ids []string) ([]store.PEPItem, bool, error) {
	if err := f.readErr[node]; err != nil {
		return nil, false, err
	}
	items, ok := f.items[node]
	if !ok {
		return nil, false, fmt.Errorf("fake: %w", store.ErrNotFound)
	}
	if f.denied[node] {
		return nil, false, nil
	}
	var out []store.PEPItem
	for _, it := range items {
		for _, id := range ids {
			if it.ID == id {
				out = append(out, it)
			}
		}
	}
	if len(ids) == 0 {
		out = items
		if max > 0 && len(out) > max {
			out = out[len(out)-max:]
		}
	}
	return out, true, nil
}

func (f *fakeAvatars) PublishFor(_ context.Context, _ jid.JID, node, id string, payload *wire.Element, access string) error {
	if f.publishErr != nil && f.publishOK == 0 {
		return f.publishErr
	}
	f.publishOK--
	f.published = append(f.published, node, id, access, string(payload.AppendXML(nil, "")))
	return nil
}

func (f *fakeAvatars) RetractFor(_ context.Context, _ jid.JID, node, id string) error {
	f.published = append(f.published, node, id, "retract", "")
	return nil
}

const (
	testImg   = "iVBORw0KGgo=" // the 8-byte PNG signature
	testImgID = "4caece539b039b16e16206ea2478f8c5ffb2ca05"
)

func metaItem(infos string) []store.PEPItem {
	return []store.PEPItem{{ID: "m", Payload: []byte("<metadata xmlns='urn:xmpp:avatar:metadata'>" + infos + "</metadata>")}}
}

func dataItem(id, b64 string) []store.PEPItem {
	return []store.PEPItem{{ID: id, Payload: []byte("<data xmlns='urn:xmpp:avatar:data'>" + b64 + "</data>")}}
}

func newAvatarModule(t *testing.T, av *fakeAvatars) *Module {
	t.Helper()
	m, err := New(Options{MaxBytes: 1 << 20}, Deps{Store: &fakeStore{}, Avatars: av})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHashOfTestImage(t *testing.T) {
	img, ok := decodeImage(testImg)
	if !ok || hash(img) != testImgID {
		t.Fatalf("hash = %s, %v", hash(img), ok)
	}
}

// TestPhoto covers XEP-0398 §3.1: what the metadata names becomes the
// PHOTO, the image in the data node before a URL, the SHA-1 checked;
// what the reader may not read is not shown.
func TestPhoto(t *testing.T) {
	info := "<info bytes='8' id='" + testImgID + "' type='image/png'/>"
	url := "<info bytes='8' id='" + testImgID + "' type='image/png' url='https://example.com/a.png'/>"
	tests := []struct {
		name    string
		av      fakeAvatars
		decided bool
		want    string // the PHOTO, "" for none
	}{
		{"no metadata node", fakeAvatars{}, false, ""},
		{"metadata node without items", fakeAvatars{items: map[string][]store.PEPItem{NodeMetadata: nil}}, false, ""},
		{"image in the data node", fakeAvatars{items: map[string][]store.PEPItem{
			NodeMetadata: metaItem(info), NodeData: dataItem(testImgID, testImg)}}, true,
			"<PHOTO xmlns='vcard-temp'><TYPE>image/png</TYPE><BINVAL>" + testImg + "</BINVAL></PHOTO>"},
		{"data with line breaks, written again without", fakeAvatars{items: map[string][]store.PEPItem{
			NodeMetadata: metaItem(info), NodeData: dataItem(testImgID, "iVBO\n  Rw0KGgo=")}}, true,
			"<PHOTO xmlns='vcard-temp'><TYPE>image/png</TYPE><BINVAL>" + testImg + "</BINVAL></PHOTO>"},
		{"the data node first, though named second", fakeAvatars{items: map[string][]store.PEPItem{
			NodeMetadata: metaItem(url + info), NodeData: dataItem(testImgID, testImg)}}, true,
			"<PHOTO xmlns='vcard-temp'><TYPE>image/png</TYPE><BINVAL>" + testImg + "</BINVAL></PHOTO>"},
		{"a URL alone", fakeAvatars{items: map[string][]store.PEPItem{NodeMetadata: metaItem(url)}}, true,
			"<PHOTO xmlns='vcard-temp'><TYPE>image/png</TYPE><EXTVAL>https://example.com/a.png</EXTVAL></PHOTO>"},
		{"the URL when the data is missing", fakeAvatars{items: map[string][]store.PEPItem{
			NodeMetadata: metaItem(info + url), NodeData: nil}}, true,
			"<PHOTO xmlns='vcard-temp'><TYPE>image/png</TYPE><EXTVAL>https://example.com/a.png</EXTVAL></PHOTO>"},
		{"SHA-1 mismatch", fakeAvatars{items: map[string][]store.PEPItem{
			NodeMetadata: metaItem(info), NodeData: dataItem(testImgID, "AAAA")}}, true, ""},
		{"not base64", fakeAvatars{items: map[string][]store.PEPItem{
			NodeMetadata: metaItem(info), NodeData: dataItem(testImgID, "!!")}}, true, ""},
		{"no data node", fakeAvatars{items: map[string][]store.PEPItem{NodeMetadata: metaItem(info)}}, true, ""},
		{"removed (no info)", fakeAvatars{items: map[string][]store.PEPItem{
			NodeMetadata: metaItem(""), NodeData: dataItem(testImgID, testImg)}}, true, ""},
		{"info without id", fakeAvatars{items: map[string][]store.PEPItem{
			NodeMetadata: metaItem("<info bytes='8' type='image/png'/>"), NodeData: dataItem(testImgID, testImg)}}, true, ""},
		{"metadata denied", fakeAvatars{items: map[string][]store.PEPItem{
			NodeMetadata: metaItem(info), NodeData: dataItem(testImgID, testImg)}, denied: map[string]bool{NodeMetadata: true}}, true, ""},
		{"data denied", fakeAvatars{items: map[string][]store.PEPItem{
			NodeMetadata: metaItem(info), NodeData: dataItem(testImgID, testImg)}, denied: map[string]bool{NodeData: true}}, true, ""},
		{"another payload in the node", fakeAvatars{items: map[string][]store.PEPItem{
			NodeMetadata: {{ID: "m", Payload: []byte("<x xmlns='urn:other'/>")}}}}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newAvatarModule(t, &tc.av)
			photo, decided, err := m.photo(t.Context(), jid.MustParse("a@x"), jid.MustParse("b@x/r"))
			if err != nil || decided != tc.decided {
				t.Fatalf("decided %v, err %v; want %v", decided, err, tc.decided)
			}
			got := ""
			if photo != nil {
				got = string(photo.AppendXML(nil, ""))
			}
			if got != tc.want {
				t.Fatalf("PHOTO = %s\nwant    %s", got, tc.want)
			}
		})
	}
}

// TestGetWithPhoto: the vCard read keeps the stored fields and takes the
// avatar's photo; a missing vCard with a visible avatar is the photo
// alone; without one it stays service-unavailable.
func TestGetWithPhoto(t *testing.T) {
	nodes := map[string][]store.PEPItem{
		NodeMetadata: metaItem("<info bytes='8' id='" + testImgID + "' type='image/png'/>"),
		NodeData:     dataItem(testImgID, testImg),
	}
	photo := "<PHOTO><TYPE>image/png</TYPE><BINVAL>" + testImg + "</BINVAL></PHOTO>"
	tests := []struct {
		name   string
		stored string
		av     fakeAvatars
		want   string // "" for service-unavailable
	}{
		{"stored photo replaced", "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><BINVAL>AAAA</BINVAL></PHOTO><NICKNAME>a</NICKNAME></vCard>",
			fakeAvatars{items: nodes}, "<vCard xmlns='vcard-temp'><FN>A</FN><NICKNAME>a</NICKNAME>" + photo + "</vCard>"},
		{"no vCard stored", "", fakeAvatars{items: nodes}, "<vCard xmlns='vcard-temp'>" + photo + "</vCard>"},
		{"no avatar: as stored", "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>AAAA</BINVAL></PHOTO></vCard>", fakeAvatars{},
			"<vCard xmlns='vcard-temp'><PHOTO><BINVAL>AAAA</BINVAL></PHOTO></vCard>"},
		{"denied: the stored photo is not shown either", "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><BINVAL>AAAA</BINVAL></PHOTO></vCard>",
			fakeAvatars{items: nodes, denied: map[string]bool{NodeData: true}}, "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>"},
		{"denied, no vCard", "", fakeAvatars{items: nodes, denied: map[string]bool{NodeMetadata: true}}, ""},
		{"a photo beyond MaxBytes left out", "<vCard xmlns='vcard-temp'><FN>" + strings.Repeat("a", 90) + "</FN></vCard>",
			fakeAvatars{items: nodes}, "<vCard xmlns='vcard-temp'><FN>" + strings.Repeat("a", 90) + "</FN></vCard>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fakeStore{get: []byte(tc.stored)}
			if tc.stored == "" {
				fs = &fakeStore{getErr: store.ErrNotFound}
			}
			// 128 bytes: the photo's 12 of base64 fit beside a short
			// vCard, not beside one of 90 bytes of name.
			m, err := New(Options{MaxBytes: 128}, Deps{Store: fs, Avatars: &tc.av})
			if err != nil {
				t.Fatal(err)
			}
			st := xmpptest.Stanza(t, "<iq type='get' id='1' from='b@x/r' to='a@x'><vCard xmlns='vcard-temp'/></iq>")
			res, err := m.get(t.Context(), st)
			if tc.want == "" {
				xmpptest.HandlerError(t, res, err, stanza.ServiceUnavailable)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := xmpptest.Element(t, tc.want).AppendXML(nil, "")
			if got := res.El.Child("vCard", NS).AppendXML(nil, ""); !bytes.Equal(got, want) {
				t.Fatalf("vCard = %s\nwant    %s", got, want)
			}
		})
	}
}

// TestPublishPhoto covers XEP-0398 §3.2: a vCard's photo is published to
// the data node, then the metadata node, created open; the vCard is
// stored without it.
func TestPublishPhoto(t *testing.T) {
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, image.NewGray(image.Rect(0, 0, 3, 2))); err != nil {
		t.Fatal(err)
	}
	pic := pngBuf.Bytes()
	picID := hash(pic)
	pic64 := base64.StdEncoding.EncodeToString(pic)
	quota := fmt.Errorf("fake: %w", store.ErrQuota)
	ioErr := errors.New("disk on fire")
	tests := []struct {
		name      string
		vcard     string
		av        fakeAvatars
		published []string
		stored    string           // "" for the vCard as sent
		cond      stanza.Condition // an expected stanza error
		err       error            // an expected other error
	}{
		{"no photo", "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>", fakeAvatars{}, nil, "", "", nil},
		{"a URL only", "<vCard xmlns='vcard-temp'><PHOTO><EXTVAL>https://example.com/a.png</EXTVAL></PHOTO></vCard>", fakeAvatars{}, nil, "", "", nil},
		{"not base64", "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>!!</BINVAL></PHOTO></vCard>", fakeAvatars{}, nil, "", "", nil},
		{"not an image", "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>aGVsbG8=</BINVAL></PHOTO></vCard>", fakeAvatars{}, nil, "", "", nil},
		{"an empty PHOTO removes the avatar", "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><TYPE>image/png</TYPE><BINVAL> </BINVAL></PHOTO></vCard>",
			fakeAvatars{items: map[string][]store.PEPItem{NodeMetadata: metaItem("<info bytes='8' id='" + testImgID + "' type='image/png'/><info bytes='8' id='u' type='image/png' url='https://example.com/a.png'/>")}},
			[]string{
				NodeMetadata, "none", "open", "<metadata xmlns='urn:xmpp:avatar:metadata'/>",
				NodeData, testImgID, "retract", "",
			}, "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>", "", nil},
		{"an empty PHOTO, no avatar", "<vCard xmlns='vcard-temp'><PHOTO/></vCard>", fakeAvatars{}, nil, "<vCard xmlns='vcard-temp'/>", "", nil},
		{"an empty PHOTO, the avatar removed already", "<vCard xmlns='vcard-temp'><PHOTO/></vCard>",
			fakeAvatars{items: map[string][]store.PEPItem{NodeMetadata: metaItem("")}}, nil, "<vCard xmlns='vcard-temp'/>", "", nil},
		{"a PNG, its type and size found", "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><BINVAL>" + pic64[:5] + "\r\n " + pic64[5:] + "</BINVAL></PHOTO></vCard>", fakeAvatars{},
			[]string{
				NodeData, picID, "open", "<data xmlns='urn:xmpp:avatar:data'>" + pic64 + "</data>",
				NodeMetadata, picID, "open", "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='" + fmt.Sprint(len(pic)) + "' id='" + picID + "' type='image/png' height='2' width='3'/></metadata>",
			}, "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>", "", nil},
		{"the TYPE given, no size known", "<vCard xmlns='vcard-temp'><PHOTO><TYPE> image/webp </TYPE><BINVAL>" + testImg + "</BINVAL></PHOTO></vCard>", fakeAvatars{},
			[]string{
				NodeData, testImgID, "open", "<data xmlns='urn:xmpp:avatar:data'>" + testImg + "</data>",
				NodeMetadata, testImgID, "open", "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='8' id='" + testImgID + "' type='image/webp'/></metadata>",
			}, "<vCard xmlns='vcard-temp'/>", "", nil},
		{"a TYPE that is not an image's", "<vCard xmlns='vcard-temp'><PHOTO><TYPE>text/html</TYPE><BINVAL>" + pic64 + "</BINVAL></PHOTO></vCard>", fakeAvatars{},
			[]string{
				NodeData, picID, "open", "<data xmlns='urn:xmpp:avatar:data'>" + pic64 + "</data>",
				NodeMetadata, picID, "open", "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='" + fmt.Sprint(len(pic)) + "' id='" + picID + "' type='image/png' height='2' width='3'/></metadata>",
			}, "<vCard xmlns='vcard-temp'/>", "", nil},
		{"the avatar already", "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>" + testImg + "</BINVAL></PHOTO></vCard>",
			fakeAvatars{items: map[string][]store.PEPItem{
				NodeMetadata: metaItem("<info bytes='8' id='" + strings.ToUpper(testImgID) + "' type='image/png'/>"),
				NodeData:     dataItem(strings.ToUpper(testImgID), testImg)}},
			nil, "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>", "", nil},
		{"the avatar named, its data gone", "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>" + testImg + "</BINVAL></PHOTO></vCard>",
			fakeAvatars{items: map[string][]store.PEPItem{NodeMetadata: metaItem("<info bytes='8' id='" + testImgID + "' type='image/png'/>")}},
			[]string{
				NodeData, testImgID, "open", "<data xmlns='urn:xmpp:avatar:data'>" + testImg + "</data>",
				NodeMetadata, testImgID, "open", "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='8' id='" + testImgID + "' type='image/png'/></metadata>",
			}, "<vCard xmlns='vcard-temp'/>", "", nil},
		{"quota at the data", "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>" + pic64 + "</BINVAL></PHOTO></vCard>",
			fakeAvatars{publishErr: quota}, nil, "", stanza.ResourceConstraint, nil},
		{"quota at the metadata: the data retracted", "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>" + pic64 + "</BINVAL></PHOTO></vCard>",
			fakeAvatars{publishErr: quota, publishOK: 1},
			[]string{NodeData, picID, "open", "<data xmlns='urn:xmpp:avatar:data'>" + pic64 + "</data>", NodeData, picID, "retract", ""},
			"", stanza.ResourceConstraint, nil},
		{"I/O", "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>" + pic64 + "</BINVAL></PHOTO></vCard>",
			fakeAvatars{publishErr: ioErr}, nil, "", "", ioErr},
		{"metadata unreadable", "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>" + pic64 + "</BINVAL></PHOTO></vCard>",
			fakeAvatars{readErr: map[string]error{NodeMetadata: ioErr}}, nil, "", "", ioErr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newAvatarModule(t, &tc.av)
			v := xmpptest.Element(t, tc.vcard)
			stored, err := m.publishPhoto(t.Context(), jid.MustParse("a@x/r"), v)
			if strings.Join(tc.av.published, "\n") != strings.Join(tc.published, "\n") {
				t.Errorf("published\n%s\nwant\n%s", strings.Join(tc.av.published, "\n"), strings.Join(tc.published, "\n"))
			}
			switch {
			case tc.cond != "":
				xmpptest.HandlerError(t, nil, err, tc.cond)
				return
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if tc.stored == "" {
				if stored != v {
					t.Fatalf("stored %s, want the vCard as sent", stored.AppendXML(nil, ""))
				}
				return
			}
			want := xmpptest.Element(t, tc.stored).AppendXML(nil, "")
			if got := stored.AppendXML(nil, ""); !bytes.Equal(got, want) {
				t.Fatalf("stored %s\nwant   %s", got, want)
			}
		})
	}
}

// TestSetStoresWithoutPhoto: the set handler stores the vCard without the
// photo it published, and with it when there is nothing to publish to.
func TestSetStoresWithoutPhoto(t *testing.T) {
	const card = "<vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>" + testImg + "</BINVAL></PHOTO></vCard>"
	for _, tc := range []struct {
		name string
		av   Avatars
		want string
	}{
		{"converted", &fakeAvatars{}, "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>"},
		{"no avatar nodes", nil, card},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fakeStore{}
			m, err := New(Options{MaxBytes: 1 << 20}, Deps{Store: fs, Avatars: tc.av})
			if err != nil {
				t.Fatal(err)
			}
			res, err := m.set(t.Context(), xmpptest.Stanza(t, "<iq type='set' id='1' from='a@x/r'>"+card+"</iq>"))
			if err != nil || res.Type != "result" {
				t.Fatalf("set: %v, %v", res, err)
			}
			if want := xmpptest.Element(t, tc.want).AppendXML(nil, ""); !bytes.Equal(fs.set, want) {
				t.Fatalf("stored %s\nwant   %s", fs.set, want)
			}
		})
	}
}

// TestPresenceOut covers XEP-0398 §4: the hash goes into available
// presence, unless the client's photo is empty or the same.
func TestPresenceOut(t *testing.T) {
	withAvatar := fakeAvatars{items: map[string][]store.PEPItem{NodeMetadata: metaItem("<info bytes='8' id='" + testImgID + "' type='image/png'/>")}}
	removed := fakeAvatars{items: map[string][]store.PEPItem{NodeMetadata: metaItem("")}}
	x := func(inner string) string { return "<x xmlns='vcard-temp:x:update'>" + inner + "</x>" }
	hashed := x("<photo>" + testImgID + "</photo>")
	tests := []struct {
		name, children string
		av             fakeAvatars
		want           string // "" for unchanged
	}{
		{"no avatar", "<show>away</show>", fakeAvatars{}, ""},
		{"no avatar, the client's hash", x("<photo>ab</photo>"), fakeAvatars{}, ""},
		{"added", "<show>away</show>", withAvatar, "<show>away</show>" + hashed},
		{"filled in", "<show>away</show>" + x("") + "<status>s</status>", withAvatar, "<show>away</show>" + hashed + "<status>s</status>"},
		{"another hash replaced", x("<photo>ab</photo>"), withAvatar, hashed},
		{"the same hash", hashed, withAvatar, ""},
		{"the same hash in capitals", x("<photo>" + strings.ToUpper(testImgID) + "</photo>"), withAvatar, ""},
		{"a blank photo stays", x("<photo>\n </photo>"), withAvatar, ""},
		{"the hash in small letters", "", fakeAvatars{items: map[string][]store.PEPItem{NodeMetadata: metaItem("<info bytes='8' id='" + strings.ToUpper(testImgID) + "' type='image/png'/>")}}, hashed},
		{"an empty photo stays", x("<photo/>"), withAvatar, ""},
		{"removed: an empty photo", "", removed, x("<photo/>")},
		{"metadata unreadable", "", fakeAvatars{readErr: map[string]error{NodeMetadata: errors.New("disk on fire")}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newAvatarModule(t, &tc.av)
			st := xmpptest.Stanza(t, "<presence from='a@x/r'>"+tc.children+"</presence>")
			got := m.presenceOut(t.Context(), st)
			if tc.want == "" {
				if got != st {
					t.Fatalf("changed: %s", got.El.AppendXML(nil, ""))
				}
				return
			}
			want := xmpptest.Stanza(t, "<presence from='a@x/r'>"+tc.want+"</presence>").El
			if g, w := got.El.AppendXML(nil, ""), want.AppendXML(nil, ""); !bytes.Equal(g, w) {
				t.Fatalf("presence %s\nwant     %s", g, w)
			}
		})
	}
}

// FuzzPublishPhoto: any photo a client sets is published, if at all, as
// data whose SHA-1 is its id and metadata naming that id with a printable
// image type; the vCard stored never keeps a photo that was published.
func FuzzPublishPhoto(f *testing.F) {
	f.Add("image/png", testImg)
	f.Add("", "iVBO\nRw0KGgo=")
	f.Add("text/html", "PGh0bWw+")
	f.Add("image/\x7f", "!!")
	f.Fuzz(func(t *testing.T, typ, binval string) {
		photo := wire.New("PHOTO", NS).AddChild(wire.New("TYPE", NS).SetText(typ), wire.New("BINVAL", NS).SetText(binval))
		v := wire.New("vCard", NS).AddChild(wire.New("FN", NS).SetText("A"), photo)
		av := &fakeAvatars{}
		m, err := New(Options{MaxBytes: 1 << 20}, Deps{Store: &fakeStore{}, Avatars: av})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := m.publishPhoto(context.Background(), jid.MustParse("a@x/r"), v)
		if err != nil {
			t.Fatal(err)
		}
		if len(av.published) == 0 {
			// An empty PHOTO is the user's word that there is none
			// (nothing to remove here); anything else unpublished
			// is stored as sent.
			if empty := strings.TrimSpace(binval) == ""; empty && stored.Child("PHOTO", NS) != nil || !empty && stored != v {
				t.Fatalf("nothing published for %q, stored %s", binval, stored.AppendXML(nil, ""))
			}
			return
		}
		if len(av.published) != 8 || stored.Child("PHOTO", NS) != nil {
			t.Fatalf("published %q, stored %s", av.published, stored.AppendXML(nil, ""))
		}
		id := av.published[1]
		data, err := wire.Parse([]byte(av.published[3]), wire.NewScope(""))
		if err != nil {
			t.Fatal(err)
		}
		img, err := base64.StdEncoding.DecodeString(data.Text)
		if err != nil || hash(img) != id {
			t.Fatalf("data %q: %v, id %s", data.Text, err, id)
		}
		meta, err := wire.Parse([]byte(av.published[7]), wire.NewScope(""))
		if err != nil {
			t.Fatal(err)
		}
		info := meta.Child("info", NodeMetadata)
		if info == nil || info.AttrValue("id") != id || av.published[5] != id ||
			!strings.HasPrefix(info.AttrValue("type"), "image/") {
			t.Fatalf("metadata %s for %s", av.published[7], id)
		}
	})
}

// storeAvatars reads the avatar nodes from a real store, every reader
// allowed: what a presence costs the module beyond the PEP module's access
// check, which an owner's own read skips.
type storeAvatars struct{ pep *store.PEP }

func (s storeAvatars) ItemsFor(ctx context.Context, owner, _ jid.JID, node string, max int, ids []string) ([]store.PEPItem, bool, error) {
	_, items, err := s.pep.Items(ctx, owner.Bare().String(), node, max, ids)
	return items, err == nil, err
}

func (storeAvatars) PublishFor(context.Context, jid.JID, string, string, *wire.Element, string) error {
	return errors.New("not used")
}

func (storeAvatars) RetractFor(context.Context, jid.JID, string, string) error {
	return errors.New("not used")
}

// BenchmarkPresenceOut is the cost the avatar hash adds to each available
// presence a client sends, read from the store: for an account without an
// avatar (the metadata node missing) and one with.
func BenchmarkPresenceOut(b *testing.B) {
	db, err := store.Open(b.Context(), b.TempDir()+"/db", store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	meta := metaItem("<info bytes='8' id='" + testImgID + "' type='image/png'/>")[0]
	if _, _, err := db.PEP().Publish(b.Context(), store.PEPPublish{
		Owner: "a@x", Item: meta, Create: store.PEPNode{Node: NodeMetadata, Access: "open", MaxItems: 1},
	}); err != nil {
		b.Fatal(err)
	}
	m, err := New(Options{MaxBytes: 1 << 20}, Deps{Store: &fakeStore{}, Avatars: storeAvatars{db.PEP()}})
	if err != nil {
		b.Fatal(err)
	}
	for _, from := range []string{"b@x/r", "a@x/r"} {
		name := map[string]string{"b@x/r": "no avatar", "a@x/r": "avatar"}[from]
		b.Run(name, func(b *testing.B) {
			st := xmpptest.Stanza(b, "<presence from='"+from+"'><show>away</show></presence>")
			b.ReportAllocs()
			for b.Loop() {
				m.presenceOut(b.Context(), st)
			}
		})
	}
}
