package server_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strings"
	"testing"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// Avatar conversion (XEP-0398) as clients meet it: an avatar published
// with XEP-0084 shows in the vCard (XEP-0153) as its access model allows,
// a vCard's photo is published to the avatar nodes, and presence carries
// the avatar's hash.

const (
	avNSData    = "urn:xmpp:avatar:data"
	avNSMeta    = "urn:xmpp:avatar:metadata"
	avNSUpdate  = "vcard-temp:x:update"
	avNSConvert = "urn:xmpp:pep-vcard-conversion:0"
)

// avImage is a PNG of w×h pixels of one colour, with its XEP-0084 id.
func avImage(t testing.TB, w, h int, c uint8) (img []byte, id string) {
	t.Helper()
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = c
	}
	m.Set(0, 0, color.Gray{Y: c + 1})
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(b.Bytes())
	return b.Bytes(), hex.EncodeToString(sum[:])
}

// avPublish publishes img as c's avatar with XEP-0084 (data, then
// metadata), with the publish-options given (for both nodes).
func avPublish(t testing.TB, c *servertest.Client, img []byte, id, options string) {
	t.Helper()
	pepCheckResult(t, pepPublish(t, c, avNSData, id,
		fmt.Sprintf("<data xmlns='%s'>%s</data>", avNSData, base64.StdEncoding.EncodeToString(img)), options))
	pepCheckResult(t, pepPublish(t, c, avNSMeta, id,
		fmt.Sprintf("<metadata xmlns='%s'><info bytes='%d' id='%s' type='image/png'/></metadata>", avNSMeta, len(img), id), options))
}

// avPhoto returns the image in a vCard result's PHOTO and its TYPE; nil
// when there is none.
func avPhoto(t testing.TB, el *wire.Element) (img []byte, typ string) {
	t.Helper()
	pepCheckResult(t, el)
	p := el.Child("vCard", dirNSVCard).Child("PHOTO", dirNSVCard)
	if p == nil {
		return nil, ""
	}
	img, err := base64.StdEncoding.DecodeString(p.ChildText("BINVAL", dirNSVCard))
	if err != nil {
		t.Fatalf("PHOTO's BINVAL: %v in %s", err, el)
	}
	return img, p.ChildText("TYPE", dirNSVCard)
}

// avHash returns the photo hash of the vcard-temp:x:update element of a
// presence; ok is false without one, or without a photo in it.
func avHash(el *wire.Element) (hash string, ok bool) {
	x := el.Child("x", avNSUpdate)
	if x == nil {
		return "", false
	}
	p := x.Child("photo", avNSUpdate)
	if p == nil {
		return "", false
	}
	return p.Text, true
}

// avPresenceSeen sends a presence from a and returns it as b receives it.
func avPresenceSeen(t testing.TB, a, b *servertest.Client, presence string) *wire.Element {
	t.Helper()
	rtSend(t, a, "%s", presence)
	prSync(t, a)
	return prOne(t, "presence of "+a.JID.String(), prFromAccount(prSync(t, b), "presence", a.JID.Bare()))
}

// TestAvatarFromPEP covers XEP-0398 §3.1, §4 and §7: an avatar published
// with XEP-0084 is the vCard's photo for those its access model admits
// (open: anyone, a room's occupants included; presence: subscribers), the
// rest of the vCard kept; removing it (§3.5 of XEP-0084) removes the
// photo; available presence, broadcast and directed, carries its hash.
func TestAvatarFromPEP(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	carol := s.AddUser(t, "carol", prPassword)
	dave := s.AddUser(t, "dave", prPassword)
	prSubscribe(t, s, bob, alice, true)
	prSubscribe(t, s, bob, dave, false)
	a := prLogin(t, s, alice, "a")
	b := prLogin(t, s, bob, "b")
	c := prLogin(t, s, carol, "c")
	d := prLogin(t, s, dave, "d")
	rtOnline(t, b, 0)
	rtOnline(t, c, 0)
	prSync(t, b) // the setup resources' last unavailable presence

	// §2: the feature is on the account.
	info := pepIQ(t, a, "<iq type='get' to='%s'><query xmlns='%s'/></iq>", alice, pepNSInfo)
	if !slices.Contains(mcFeatures(info), avNSConvert) {
		t.Fatalf("account disco#info lacks %s: %s", avNSConvert, info)
	}

	// Before any avatar, presence goes as sent and the vCard as stored.
	pepCheckResult(t, dirSetCard(t, a, "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>"))
	if _, ok := avHash(avPresenceSeen(t, a, b, "<presence/>")); ok {
		t.Fatal("a hash in presence before any avatar")
	}
	if img, _ := avPhoto(t, dirGetCard(t, c, alice.String())); img != nil {
		t.Fatal("a PHOTO before any avatar")
	}

	// An open avatar: everyone reads it in the vCard, beside FN.
	img, id := avImage(t, 3, 2, 40)
	avPublish(t, a, img, id, pepOptions("FORM_TYPE", pepNS+"#publish-options", "pubsub#access_model", "open"))
	for _, reader := range []*servertest.Client{a, b, c} {
		el := dirGetCard(t, reader, alice.String())
		got, typ := avPhoto(t, el)
		if !bytes.Equal(got, img) || typ != "image/png" || dirCardText(t, el, "FN") != "Alice" {
			t.Fatalf("%s reads alice's vCard: %s", reader.JID, el)
		}
	}

	// §4: the hash in broadcast and directed presence, whatever the
	// client put there but an empty photo.
	for _, tc := range []struct{ sent, want string }{
		{"<presence/>", id},
		{"<presence><x xmlns='vcard-temp:x:update'/></presence>", id},
		{"<presence><x xmlns='vcard-temp:x:update'><photo>0123</photo></x></presence>", id},
		{"<presence><x xmlns='vcard-temp:x:update'><photo/></x></presence>", ""},
	} {
		el := avPresenceSeen(t, a, b, tc.sent)
		if got, ok := avHash(el); !ok || got != tc.want || len(el.Children) != 1 {
			t.Errorf("sent %s, bob got %s, want the photo %q alone", tc.sent, el, tc.want)
		}
	}
	el := avPresenceSeen(t, a, c, fmt.Sprintf("<presence to='%s'><status>hi</status></presence>", carol))
	if got, ok := avHash(el); !ok || got != id || el.ChildText("status", prNSClient) != "hi" {
		t.Errorf("directed presence: %s", el)
	}

	// A room join carries it to the occupants, who read the photo through
	// the room (XEP-0045 forwards the vCard request to alice's account).
	room := mcRoom("avatars")
	mcCreate(t, c, room, "carol")
	self, _ := mcJoin(t, a, room, "alice", "")
	if got, ok := avHash(self); !ok || got != id {
		t.Errorf("alice's room presence: %s", self)
	}
	seen := mcUntil(t, c, mcPresence(room+"/alice", ""))
	if got, ok := avHash(seen[len(seen)-1]); !ok || got != id {
		t.Errorf("carol sees alice join: %s", seen[len(seen)-1])
	}
	if got, _ := avPhoto(t, dirGetCard(t, c, room+"/alice")); !bytes.Equal(got, img) {
		t.Errorf("carol reads alice's vCard through the room: no photo")
	}

	// A presence-only avatar: a subscriber reads it, a stranger does not
	// (§7), even through a room; dave has no vCard otherwise.
	img2, id2 := avImage(t, 2, 2, 90)
	avPublish(t, d, img2, id2, "")
	if got, _ := avPhoto(t, dirGetCard(t, b, dave.String())); !bytes.Equal(got, img2) {
		t.Errorf("bob, subscribed to dave, reads no photo")
	}
	pepCheckError(t, dirGetCard(t, c, dave.String()), "cancel", "service-unavailable", "")
	mcJoin(t, d, room, "dave", "")
	pepCheckError(t, dirGetCard(t, c, room+"/dave"), "cancel", "service-unavailable", "")
	if got, _ := avPhoto(t, dirGetCard(t, d, "")); !bytes.Equal(got, img2) {
		t.Errorf("dave reads his own vCard: no photo")
	}

	// XEP-0084 §3.5: metadata without an image removes the avatar.
	pepCheckResult(t, pepPublish(t, a, avNSMeta, "none", fmt.Sprintf("<metadata xmlns='%s'/>", avNSMeta), ""))
	el = dirGetCard(t, c, alice.String())
	if got, _ := avPhoto(t, el); got != nil || dirCardText(t, el, "FN") != "Alice" {
		t.Errorf("vCard after the avatar was removed: %s", el)
	}
	if got, ok := avHash(avPresenceSeen(t, a, b, "<presence/>")); !ok || got != "" {
		t.Errorf("presence after the avatar was removed: hash %q, %v", got, ok)
	}
}

// TestAvatarFromVCard covers XEP-0398 §3.2: a vCard's photo is published
// to the avatar nodes (data first, metadata naming it with the image's
// size, open to all), and contacts asking for the metadata are notified;
// the same photo again publishes nothing, nor does a vCard without one; a
// photo that is not base64, or not an image, is stored as sent; one
// larger than the account's personal eventing storage is refused with
// resource-constraint and nothing is stored; an empty PHOTO removes the
// avatar. Unavailable presence gets no hash.
func TestAvatarFromVCard(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(cfg *config.Config) { cfg.PEP.MaxBytes = 8 << 10 }))
	erin := s.AddUser(t, "erin", prPassword)
	frank := s.AddUser(t, "frank", prPassword)
	george := s.AddUser(t, "george", prPassword)
	prSubscribe(t, s, frank, erin, false)
	e := prLogin(t, s, erin, "e")
	f := prLogin(t, s, frank, "f")
	g := prLogin(t, s, george, "g")
	caps := newPEPCaps(pepAvatar + "+notify")
	pepOnline(t, f, caps, true)
	rtOnline(t, e, 0)
	prSync(t, f)

	img, id := avImage(t, 5, 4, 7)
	b64 := base64.StdEncoding.EncodeToString(img)
	// Line breaks in BINVAL, as vCards are often written.
	wrapped := b64[:10] + "\n " + b64[10:]
	card := fmt.Sprintf("<vCard xmlns='vcard-temp'><FN>Erin</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO></vCard>", wrapped)
	pepCheckResult(t, dirSetCard(t, e, card))
	pepEqual(t, "frank's notifications", pepEvents(prSync(t, f), erin, avNSMeta), id)

	meta := pepItems(t, f, erin, avNSMeta, "")
	info := meta.Child("pubsub", pepNS).Child("items", pepNS).Child("item", pepNS).Child("metadata", avNSMeta).Child("info", avNSMeta)
	want := map[string]string{"id": id, "bytes": fmt.Sprint(len(img)), "type": "image/png", "width": "5", "height": "4"}
	for k, v := range want {
		if info == nil || info.AttrValue(k) != v {
			t.Fatalf("metadata %s: want %s=%q", meta, k, v)
		}
	}
	// Open: george, without a subscription, reads the data and the
	// vCard.
	data := pepItems(t, g, erin, avNSData, "")
	if got := pepItemIDs(data); len(got) != 1 || got[0] != id+"="+b64 {
		t.Fatalf("data items %q, want %s", got, id)
	}
	el := dirGetCard(t, g, erin.String())
	if got, _ := avPhoto(t, el); !bytes.Equal(got, img) || dirCardText(t, el, "FN") != "Erin" {
		t.Fatalf("george reads erin's vCard: %s", el)
	}

	// The same photo again, with other fields: nothing published.
	pepCheckResult(t, dirSetCard(t, e, strings.Replace(card, "Erin", "Erin E.", 1)))
	pepEqual(t, "notifications for the same photo", pepEvents(prSync(t, f), erin, avNSMeta))
	if got := dirCardText(t, dirGetCard(t, f, erin.String()), "FN"); got != "Erin E." {
		t.Fatalf("FN = %q after the second set", got)
	}

	// A vCard without a photo leaves the avatar: a client or bot
	// setting a name must not remove the picture.
	pepCheckResult(t, dirSetCard(t, e, "<vCard xmlns='vcard-temp'><FN>Erin</FN></vCard>"))
	if got, _ := avPhoto(t, dirGetCard(t, f, erin.String())); !bytes.Equal(got, img) {
		t.Fatal("a vCard without a photo removed the avatar")
	}

	// Not base64: stored as sent, the avatar unchanged.
	pepCheckResult(t, dirSetCard(t, e, "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>!!</BINVAL></PHOTO></vCard>"))
	pepEqual(t, "notifications for an unreadable photo", pepEvents(prSync(t, f), erin, avNSMeta))
	if got, _ := avPhoto(t, dirGetCard(t, f, erin.String())); !bytes.Equal(got, img) {
		t.Fatal("an unreadable photo replaced the avatar")
	}

	// Not an image, and no image TYPE: stored as sent too.
	pepCheckResult(t, dirSetCard(t, e, "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>aGVsbG8=</BINVAL></PHOTO></vCard>"))
	pepEqual(t, "notifications for text as a photo", pepEvents(prSync(t, f), erin, avNSMeta))

	// Beyond the account's personal eventing storage (8 KiB here).
	big := make([]byte, 9<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	pepCheckError(t, dirSetCard(t, e, fmt.Sprintf("<vCard xmlns='vcard-temp'><FN>Big</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO></vCard>", base64.StdEncoding.EncodeToString(big))),
		"wait", "resource-constraint", "")
	el = dirGetCard(t, f, erin.String())
	if got, _ := avPhoto(t, el); !bytes.Equal(got, img) || dirCardText(t, el, "FN") != "" {
		t.Fatalf("after the refused set: %s", el)
	}
	if got, ok := avHash(avPresenceSeen(t, e, f, "<presence/>")); !ok || got != id {
		t.Errorf("erin's presence: hash %q, %v; want %s", got, ok, id)
	}

	// An empty PHOTO removes the avatar (XEP-0084 §3.5): metadata without
	// an image, the image retracted.
	pepCheckResult(t, dirSetCard(t, e, "<vCard xmlns='vcard-temp'><FN>Erin</FN><PHOTO/></vCard>"))
	pepEqual(t, "frank's notifications of the removal", pepEvents(prSync(t, f), erin, avNSMeta), "none")
	if got := pepItemIDs(pepItems(t, g, erin, avNSData, "")); len(got) != 0 {
		t.Fatalf("data items %q after the removal", got)
	}
	el = dirGetCard(t, g, erin.String())
	if got, _ := avPhoto(t, el); got != nil || dirCardText(t, el, "FN") != "Erin" {
		t.Fatalf("george reads erin's vCard after the removal: %s", el)
	}
	if got, ok := avHash(avPresenceSeen(t, e, f, "<presence/>")); !ok || got != "" {
		t.Errorf("erin's presence after the removal: hash %q, %v", got, ok)
	}
	// Unavailable presence is left alone.
	if el := avPresenceSeen(t, e, f, "<presence type='unavailable'/>"); el.Child("x", avNSUpdate) != nil {
		t.Errorf("unavailable presence: %s", el)
	}
}
