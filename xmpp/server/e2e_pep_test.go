package server_test

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// Personal eventing (XEP-0163) as clients meet it: publishing, the
// notifications that follow presence subscriptions and entity
// capabilities, the last item on login, access models and errors.

const (
	pepNS       = "http://jabber.org/protocol/pubsub"
	pepNSEvent  = pepNS + "#event"
	pepNSOwner  = pepNS + "#owner"
	pepNSErrors = pepNS + "#errors"
	pepNSCaps   = "http://jabber.org/protocol/caps"
	pepNSInfo   = "http://jabber.org/protocol/disco#info"
	pepNick     = "http://jabber.org/protocol/nick"
	pepAvatar   = "urn:xmpp:avatar:metadata"
	pepDevices  = "eu.siacs.conversations.axolotl.devicelist"
	pepCapsNode = "https://switchboard.test/client"
)

// pepCaps is a client's entity capabilities (XEP-0115): its features and
// their verification string.
type pepCaps struct {
	features []string
	ver      string
}

// newPEPCaps computes the XEP-0115 §5.1 sha-1 verification string of one
// identity (client/pc, no name) and the features.
func newPEPCaps(features ...string) pepCaps {
	fs := append([]string{pepNSInfo}, features...)
	slices.Sort(fs)
	s := "client/pc//<"
	for _, f := range fs {
		s += f + "<"
	}
	sum := sha1.Sum([]byte(s))
	return pepCaps{features: fs, ver: base64.StdEncoding.EncodeToString(sum[:])}
}

func (p pepCaps) presence() string {
	return fmt.Sprintf("<presence><c xmlns='%s' hash='sha-1' node='%s' ver='%s'/></presence>", pepNSCaps, pepCapsNode, p.ver)
}

// answer is the disco#info result to the server's query q.
func (p pepCaps) answer(q *wire.Element) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'><identity category='client' type='pc'/>",
		q.AttrValue("id"), q.AttrValue("from"), pepNSInfo, q.Child("query", pepNSInfo).AttrValue("node"))
	for _, f := range p.features {
		fmt.Fprintf(&b, "<feature var='%s'/>", f)
	}
	b.WriteString("</query></iq>")
	return b.String()
}

func pepIsCapsQuery(e *wire.Element) bool {
	return e.Name == "iq" && e.AttrValue("type") == "get" && e.Child("query", pepNSInfo) != nil
}

// pepOnline sends initial presence with caps. With ask, it waits for the
// server's disco#info query about them (from the account's bare JID, for
// node#ver) and answers it; without, it checks that none comes. It returns
// what arrived meanwhile.
func pepOnline(t testing.TB, c *servertest.Client, caps pepCaps, ask bool) []*wire.Element {
	t.Helper()
	rtSend(t, c, caps.presence())
	if !ask {
		els := prSync(t, c)
		for _, e := range els {
			if pepIsCapsQuery(e) {
				t.Fatalf("%s: caps already known, but the server asked: %s", c.JID, e)
			}
		}
		return els
	}
	var before []*wire.Element
	q := c.Next(t, wait, func(e *wire.Element) bool {
		if pepIsCapsQuery(e) {
			return true
		}
		before = append(before, e)
		return false
	})
	if q.AttrValue("from") != c.JID.Bare().String() || q.AttrValue("to") != c.JID.String() {
		t.Fatalf("caps query addressed from %q to %q", q.AttrValue("from"), q.AttrValue("to"))
	}
	if node := q.Child("query", pepNSInfo).AttrValue("node"); node != pepCapsNode+"#"+caps.ver {
		t.Fatalf("caps query for node %q, want %q", node, pepCapsNode+"#"+caps.ver)
	}
	rtSend(t, c, caps.answer(q))
	return append(before, prSync(t, c)...)
}

// pepIQ sends an IQ and returns its answer.
func pepIQ(t testing.TB, c *servertest.Client, format string, args ...any) *wire.Element {
	t.Helper()
	_, res := pepIQAll(t, c, format, args...)
	return res
}

// pepIQAll sends an IQ and returns its answer and what arrived before it
// (the sender's own notifications precede the publication's result).
func pepIQAll(t testing.TB, c *servertest.Client, format string, args ...any) (before []*wire.Element, res *wire.Element) {
	t.Helper()
	id := fmt.Sprintf("pep-%d", prSeq.Add(1))
	rtSend(t, c, strings.Replace(fmt.Sprintf(format, args...), "<iq ", "<iq id='"+id+"' ", 1))
	res = c.Next(t, wait, func(e *wire.Element) bool {
		if e.Name == "iq" && e.AttrValue("id") == id {
			return true
		}
		before = append(before, e)
		return false
	})
	return before, res
}

const pepPublishIQ = "<iq type='set'><pubsub xmlns='%s'><publish node='%s'><item id='%s'>%s</item></publish>%s</pubsub></iq>"

func pepPublish(t testing.TB, c *servertest.Client, node, id, payload, options string) *wire.Element {
	t.Helper()
	return pepIQ(t, c, pepPublishIQ, pepNS, node, id, payload, options)
}

// pepPublishOwn publishes and returns the publisher's own notifications
// for the node.
func pepPublishOwn(t testing.TB, c *servertest.Client, node, id, payload, options string) []string {
	t.Helper()
	before, res := pepIQAll(t, c, pepPublishIQ, pepNS, node, id, payload, options)
	pepCheckResult(t, res)
	return pepEvents(append(before, prSync(t, c)...), c.JID.Bare(), node)
}

func pepOptions(fields ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s#publish-options</value></field>", pepNS)
	for i := 0; i+1 < len(fields); i += 2 {
		fmt.Fprintf(&b, "<field var='%s'><value>%s</value></field>", fields[i], fields[i+1])
	}
	b.WriteString("</x></publish-options>")
	return b.String()
}

func pepNickPayload(name string) string {
	return fmt.Sprintf("<nick xmlns='%s'>%s</nick>", pepNick, name)
}

// pepEvents returns the PEP notifications among els from the account
// from, for node: the item ids (or "-id" for a retraction).
func pepEvents(els []*wire.Element, from jid.JID, node string) []string {
	var out []string
	for _, e := range els {
		if e.Name != "message" || e.AttrValue("from") != from.String() || e.AttrValue("type") != "headline" {
			continue
		}
		ev := e.Child("event", pepNSEvent)
		if ev == nil {
			continue
		}
		for _, c := range ev.Children {
			if c.AttrValue("node") != node {
				continue
			}
			switch c.Name {
			case "items":
				for _, it := range c.Children {
					switch it.Name {
					case "item":
						out = append(out, it.AttrValue("id")+payloadText(it))
					case "retract":
						out = append(out, "-"+it.AttrValue("id"))
					}
				}
			default:
				out = append(out, c.Name)
			}
		}
	}
	return out
}

func payloadText(it *wire.Element) string {
	if p := it.FirstChild(); p != nil && p.Text != "" {
		return "=" + p.Text
	}
	return ""
}

// pepCheckResult fails unless el is an IQ result.
func pepCheckResult(t testing.TB, el *wire.Element) {
	t.Helper()
	if el.AttrValue("type") != "result" {
		t.Fatalf("want a result, got %s", el)
	}
}

// pepCheckError checks an IQ error's type, condition and XEP-0060
// application condition ("" for none).
func pepCheckError(t testing.TB, el *wire.Element, typ, cond, app string) {
	t.Helper()
	gotTyp, gotCond := rtStanzaError(el)
	gotApp := ""
	if e := el.Child("error", "jabber:client"); e != nil {
		for _, c := range e.Children {
			if c.Space == pepNSErrors {
				gotApp = c.Name
			}
		}
	}
	if el.AttrValue("type") != "error" || gotTyp != typ || gotCond != cond || gotApp != app {
		t.Fatalf("want error %s/%s/%s, got %s", typ, cond, app, el)
	}
}

func pepItems(t testing.TB, c *servertest.Client, owner jid.JID, node, attrs string) *wire.Element {
	t.Helper()
	return pepIQ(t, c, "<iq type='get' to='%s'><pubsub xmlns='%s'><items node='%s' %s/></pubsub></iq>", owner, pepNS, node, attrs)
}

// pepItemIDs are the ids (and payload texts) of an items result.
func pepItemIDs(el *wire.Element) []string {
	var out []string
	ps := el.Child("pubsub", pepNS)
	if ps == nil {
		return nil
	}
	for _, it := range ps.Child("items", pepNS).Children {
		out = append(out, it.AttrValue("id")+payloadText(it))
	}
	return out
}

func pepEqual(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// TestPEPNotifications covers XEP-0163 §4: a publication reaches the
// owner's resources and the subscribed contact's, as their caps ask and
// only those; a stranger gets nothing; a verification string is asked once
// and then known; a resource coming online gets the last item; a
// retraction is announced; items are read by subscribers only.
func TestPEPNotifications(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	carol := s.AddUser(t, "carol", prPassword)
	prSubscribe(t, s, alice, bob, true)

	wantsNick := newPEPCaps(pepNick+"+notify", pepAvatar+"+notify")
	noNick := newPEPCaps(pepAvatar + "+notify")
	a := prLogin(t, s, alice, "pc")
	b := prLogin(t, s, bob, "phone")
	b2 := prLogin(t, s, bob, "desk")
	c := prLogin(t, s, carol, "pc")
	pepOnline(t, a, wantsNick, true)
	pepOnline(t, b, wantsNick, false) // the same string: known now
	pepOnline(t, b2, noNick, true)
	pepOnline(t, c, wantsNick, false)
	prSync(t, a)

	pepEqual(t, "alice/pc's notifications", pepPublishOwn(t, a, pepNick, "current", pepNickPayload("Alice"), ""), "current=Alice")
	pepEqual(t, "bob/phone's notifications", pepEvents(prSync(t, b), alice, pepNick), "current=Alice")
	pepEqual(t, "bob/desk's notifications (no +notify)", pepEvents(prSync(t, b2), alice, pepNick))
	pepEqual(t, "carol's notifications (no subscription)", pepEvents(prSync(t, c), alice, pepNick))

	// Items: the subscriber and the owner read them, a stranger may not.
	pepEqual(t, "items for bob", pepItemIDs(pepItems(t, b, alice, pepNick, "")), "current=Alice")
	pepCheckError(t, pepItems(t, c, alice, pepNick, ""), "auth", "not-authorized", "presence-subscription-required")
	pepCheckError(t, pepItems(t, b, alice, "no-such-node", ""), "cancel", "item-not-found", "")

	// A new resource of a subscriber gets the last item at once.
	b3 := prLogin(t, s, bob, "tablet")
	pepEqual(t, "bob/tablet's last item", pepEvents(pepOnline(t, b3, wantsNick, false), alice, pepNick), "current=Alice")
	// New caps asking for more: only the newly wanted node is sent.
	pepCheckResult(t, pepPublish(t, a, pepAvatar, "hash1", "<metadata xmlns='urn:xmpp:avatar:metadata'/>", ""))
	pepEqual(t, "avatar to bob/desk", pepEvents(prSync(t, b2), alice, pepAvatar), "hash1")
	pepEqual(t, "bob/desk after asking for nicks", pepEvents(pepOnline(t, b2, wantsNick, false), alice, pepNick), "current=Alice")

	// Replacing the item and retracting it.
	pepCheckResult(t, pepPublish(t, a, pepNick, "current", pepNickPayload("Alice L."), ""))
	pepEqual(t, "replaced", pepEvents(prSync(t, b), alice, pepNick), "current=Alice L.")
	pepCheckResult(t, pepIQ(t, a, "<iq type='set'><pubsub xmlns='%s'><retract node='%s' notify='true'><item id='current'/></retract></pubsub></iq>", pepNS, pepNick))
	pepEqual(t, "retracted", pepEvents(prSync(t, b), alice, pepNick), "-current")
	pepEqual(t, "items after retraction", pepItemIDs(pepItems(t, a, alice, pepNick, "")))

	// A resource the owner blocked hears nothing and reads nothing
	// (XEP-0163 §4.3.3; its requests get XEP-0191 §3.3's
	// service-unavailable before they reach the service); the contact's
	// others do.
	prSync(t, b3)
	pepCheckResult(t, pepIQ(t, a, "<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='%s'/></block></iq>", b.JID))
	pepCheckResult(t, pepPublish(t, a, pepNick, "current", pepNickPayload("Alice B."), ""))
	pepEqual(t, "blocked bob/phone", pepEvents(prSync(t, b), alice, pepNick))
	pepEqual(t, "bob/tablet", pepEvents(prSync(t, b3), alice, pepNick), "current=Alice B.")
	pepCheckError(t, pepItems(t, b, alice, pepNick, ""), "cancel", "service-unavailable", "")

	// Only the owner publishes (XEP-0163 §3.2).
	pepCheckError(t, pepIQ(t, b3, "<iq type='set' to='%s'><pubsub xmlns='%s'><publish node='%s'><item>%s</item></publish></pubsub></iq>",
		alice, pepNS, pepNick, pepNickPayload("Mallory")), "auth", "forbidden", "")
}

// A contact whose subscription the owner approves becomes a subscriber of
// the owner's nodes: its available resources that ask for a node get the
// node's last item then (XEP-0163 §4.3.4), not at their next login, or
// with the answer when the server is still asking what their capabilities
// mean. A node the contact may not read, a declined request and a
// repeated approval send nothing; a pre-approval (RFC 6121 §3.4) does
// like an approval.
func TestPEPLastItemOnApproval(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	dave := s.AddUser(t, "dave", prPassword)
	erin := s.AddUser(t, "erin", prPassword)
	frank := s.AddUser(t, "frank", prPassword)

	wantsNick := newPEPCaps(pepNick+"+notify", pepDevices+"+notify")
	noNick := newPEPCaps(pepAvatar + "+notify")
	a := prLogin(t, s, alice, "pc")
	pepOnline(t, a, wantsNick, true)
	pepEqual(t, "alice's nick", pepPublishOwn(t, a, pepNick, "current", pepNickPayload("Alice"), ""), "current=Alice")
	pepCheckResult(t, pepPublish(t, a, pepDevices, "current", "<list xmlns='eu.siacs.conversations.axolotl'/>",
		pepOptions("pubsub#access_model", "whitelist")))
	prSync(t, a)

	d := prLogin(t, s, dave, "phone")
	d2 := prLogin(t, s, dave, "desk")
	d3 := prLogin(t, s, dave, "away") // bound, never available
	pepOnline(t, d, wantsNick, false)
	pepOnline(t, d2, noNick, true)
	e := prLogin(t, s, erin, "phone")
	f := prLogin(t, s, frank, "phone")
	pepOnline(t, e, wantsNick, false)
	pepOnline(t, f, wantsNick, false)

	// request makes from ask alice, and alice answer it.
	request := func(from *servertest.Client, answer string) []*wire.Element {
		t.Helper()
		rtSend(t, from, "<presence to='%s' type='subscribe'/>", alice)
		if answer != "" {
			a.Next(t, wait, prMatch("presence", "subscribe", from.JID.Bare().String()))
			rtSend(t, a, "<presence to='%s' type='%s'/>", from.JID.Bare(), answer)
		}
		prSync(t, a)
		return prSync(t, from)
	}

	els := request(d, "subscribed")
	pepEqual(t, "dave/phone after the approval", pepEvents(els, alice, pepNick), "current=Alice")
	pepEqual(t, "dave/phone, the whitelist node", pepEvents(els, alice, pepDevices))
	pepEqual(t, "dave/desk (no +notify)", pepEvents(prSync(t, d2), alice, pepNick))
	pepEqual(t, "dave/away (not available)", pepEvents(prSync(t, d3), alice, pepNick))

	rtSend(t, a, "<presence to='%s' type='subscribed'/>", dave)
	prSync(t, a)
	pepEqual(t, "dave/phone after a repeated approval", pepEvents(prSync(t, d), alice, pepNick))

	pepEqual(t, "erin, declined", pepEvents(request(e, "unsubscribed"), alice, pepNick))

	rtSend(t, a, "<presence to='%s' type='subscribed'/>", frank) // pre-approval
	prSync(t, a)
	pepEqual(t, "frank, pre-approved, before asking", pepEvents(prSync(t, f), alice, pepNick))
	pepEqual(t, "frank, pre-approved", pepEvents(request(f, ""), alice, pepNick), "current=Alice")

	// Approved while the server still asks about its capabilities: the
	// answer brings the item.
	gina := s.AddUser(t, "gina", prPassword)
	g := prLogin(t, s, gina, "phone")
	ginaCaps := newPEPCaps(pepNick+"+notify", "urn:example:gina")
	rtSend(t, g, ginaCaps.presence())
	q := g.Next(t, wait, pepIsCapsQuery)
	pepEqual(t, "gina, approved before answering", pepEvents(request(g, "subscribed"), alice, pepNick))
	rtSend(t, g, ginaCaps.answer(q))
	pepEqual(t, "gina after answering", pepEvents(prSync(t, g), alice, pepNick), "current=Alice")

	// The new subscriber's next login gets it as before.
	d4 := prLogin(t, s, dave, "tablet")
	pepEqual(t, "dave/tablet's last item", pepEvents(pepOnline(t, d4, wantsNick, false), alice, pepNick), "current=Alice")
}

// TestPEPAccessModels covers publish-options (XEP-0060 §7.1.5) and the
// open and whitelist access models, node configuration, deletion and the
// account's disco#info.
func TestPEPAccessModels(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", prPassword)
	bob := s.AddUser(t, "bob", prPassword)
	carol := s.AddUser(t, "carol", prPassword)
	prSubscribe(t, s, alice, bob, true)
	caps := newPEPCaps(pepDevices+"+notify", "urn:xmpp:bookmarks:1+notify")
	a := prLogin(t, s, alice, "pc")
	b := prLogin(t, s, bob, "pc")
	c := prLogin(t, s, carol, "pc")
	pepOnline(t, a, caps, true)
	pepOnline(t, b, caps, false)
	pepOnline(t, c, caps, false)

	// Conversations publishes its OMEMO device list open to anyone.
	devices := "<list xmlns='eu.siacs.conversations.axolotl'><device id='42'/></list>"
	pepCheckResult(t, pepPublish(t, a, pepDevices, "current", devices, pepOptions("pubsub#access_model", "open")))
	pepEqual(t, "carol reads the open node", pepItemIDs(pepItems(t, c, alice, pepDevices, "")), "current")
	pepEqual(t, "carol is not notified (no subscription)", pepEvents(prSync(t, c), alice, pepDevices))
	pepEqual(t, "bob is notified", pepEvents(prSync(t, b), alice, pepDevices), "current")
	// The same options again are met; others are not.
	pepCheckResult(t, pepPublish(t, a, pepDevices, "current", devices, pepOptions("pubsub#access_model", "open")))
	pepCheckError(t, pepPublish(t, a, pepDevices, "current", devices, pepOptions("pubsub#access_model", "presence")),
		"cancel", "conflict", "precondition-not-met")
	pepCheckError(t, pepPublish(t, a, pepDevices, "current", devices, pepOptions("pubsub#access_model", "open", "pubsub#unknown_option", "1")),
		"cancel", "conflict", "precondition-not-met")
	pepCheckError(t, pepPublish(t, a, pepDevices, "current", devices, pepOptions("pubsub#persist_items", "false")),
		"cancel", "conflict", "precondition-not-met")
	// A new node with options it cannot have is not created.
	pepCheckError(t, pepPublish(t, a, "other", "x", devices, pepOptions("pubsub#access_model", "bogus")),
		"modify", "not-acceptable", "")
	pepCheckError(t, pepItems(t, a, alice, "other", ""), "cancel", "item-not-found", "")

	// The roster model: contacts in the allowed roster groups only.
	pepCheckResult(t, pepIQ(t, a, "<iq type='set'><query xmlns='jabber:iq:roster'><item jid='%s'><group>Friends</group></item></query></iq>", bob))
	pepCheckResult(t, pepPublish(t, a, "friends-only", "1", pepNickPayload("A"),
		pepOptions("pubsub#access_model", "roster", "pubsub#roster_groups_allowed", "Friends")))
	pepEqual(t, "bob, a friend, reads", pepItemIDs(pepItems(t, b, alice, "friends-only", "")), "1=A")
	pepCheckError(t, pepItems(t, c, alice, "friends-only", ""), "auth", "not-authorized", "not-in-roster-group")

	// Bookmarks (XEP-0402) are the owner's alone.
	bm := "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/>"
	opts := pepOptions("pubsub#access_model", "whitelist", "pubsub#max_items", "max", "pubsub#send_last_published_item", "never")
	pepEqual(t, "alice is notified", pepPublishOwn(t, a, "urn:xmpp:bookmarks:1", "room1@conference.localhost", bm, opts), "room1@conference.localhost")
	pepEqual(t, "alice is notified", pepPublishOwn(t, a, "urn:xmpp:bookmarks:1", "room2@conference.localhost", bm, opts), "room2@conference.localhost")
	pepEqual(t, "bob is not notified of bookmarks", pepEvents(prSync(t, b), alice, "urn:xmpp:bookmarks:1"))
	pepCheckError(t, pepItems(t, b, alice, "urn:xmpp:bookmarks:1", ""), "cancel", "not-allowed", "closed-node")
	pepEqual(t, "alice's bookmarks", pepItemIDs(pepItems(t, a, alice, "urn:xmpp:bookmarks:1", "")), "room1@conference.localhost", "room2@conference.localhost")
	pepEqual(t, "the newest one", pepItemIDs(pepItems(t, a, alice, "urn:xmpp:bookmarks:1", "max_items='1'")), "room2@conference.localhost")
	// send_last_published_item never: a new resource gets nothing.
	a2 := prLogin(t, s, alice, "phone")
	pepEqual(t, "alice/phone at login", pepEvents(pepOnline(t, a2, caps, false), alice, "urn:xmpp:bookmarks:1"))

	// Configuration by the owner.
	conf := pepIQ(t, a, "<iq type='get'><pubsub xmlns='%s'><configure node='%s'/></pubsub></iq>", pepNSOwner, pepDevices)
	pepCheckResult(t, conf)
	form := conf.Child("pubsub", pepNSOwner).Child("configure", pepNSOwner).Child("x", "jabber:x:data")
	if got := xmpp.FormValues(form)["pubsub#access_model"]; !slices.Equal(got, []string{"open"}) {
		t.Fatalf("configuration form's access model = %q: %s", got, conf)
	}
	pepCheckError(t, pepIQ(t, b, "<iq type='get' to='%s'><pubsub xmlns='%s'><configure node='%s'/></pubsub></iq>", alice, pepNSOwner, pepDevices),
		"auth", "forbidden", "")
	pepCheckResult(t, pepIQ(t, a, "<iq type='set'><pubsub xmlns='%s'><configure node='%s'><x xmlns='jabber:x:data' type='submit'>"+
		"<field var='FORM_TYPE' type='hidden'><value>%s#node_config</value></field>"+
		"<field var='pubsub#access_model'><value>whitelist</value></field></x></configure></pubsub></iq>", pepNSOwner, pepDevices, pepNS))
	pepCheckError(t, pepItems(t, c, alice, pepDevices, ""), "cancel", "not-allowed", "closed-node")

	// The default configuration (XEP-0060 §8.3), and a purge: the
	// items go, the node stays, its readers hear of it (§8.5).
	def := pepIQ(t, a, "<iq type='get'><pubsub xmlns='%s'><default/></pubsub></iq>", pepNSOwner)
	pepCheckResult(t, def)
	form = def.Child("pubsub", pepNSOwner).Child("default", pepNSOwner).Child("x", "jabber:x:data")
	if got := xmpp.FormValues(form)["pubsub#access_model"]; !slices.Equal(got, []string{"presence"}) {
		t.Fatalf("default access model = %q: %s", got, def)
	}
	pepCheckResult(t, pepPublish(t, a, "urn:xmpp:bookmarks:1", "room3@conference.localhost", bm, opts))
	before, res := pepIQAll(t, a, "<iq type='set'><pubsub xmlns='%s'><purge node='urn:xmpp:bookmarks:1'/></pubsub></iq>", pepNSOwner)
	pepCheckResult(t, res)
	pepEqual(t, "alice hears of the purge", pepEvents(append(before, prSync(t, a)...), alice, "urn:xmpp:bookmarks:1"), "purge")
	pepEqual(t, "bookmarks after the purge", pepItemIDs(pepItems(t, a, alice, "urn:xmpp:bookmarks:1", "")))

	// Deletion is announced to those who may read the node.
	before, res = pepIQAll(t, a, "<iq type='set'><pubsub xmlns='%s'><delete node='%s'/></pubsub></iq>", pepNSOwner, pepDevices)
	pepCheckResult(t, res)
	pepEqual(t, "alice hears of the deletion", pepEvents(append(before, prSync(t, a)...), alice, pepDevices), "delete")
	pepCheckError(t, pepItems(t, a, alice, pepDevices, ""), "cancel", "item-not-found", "")

	// The account is a PEP service (XEP-0163 §6.1).
	info := pepIQ(t, a, "<iq type='get' to='%s'><query xmlns='%s'/></iq>", alice, pepNSInfo)
	for _, want := range []string{"category='pubsub' type='pep'", pepNS + "#publish-options", pepNS + "#access-whitelist"} {
		if !strings.Contains(strings.ReplaceAll(info.String(), `"`, "'"), want) {
			t.Errorf("account disco#info lacks %s: %s", want, info)
		}
	}
}

// TestPEPErrors covers the XEP-0060 errors of malformed requests and the
// limits of [pep].
func TestPEPErrors(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.PEP.MaxNodes = 2
		c.PEP.MaxBytes = 2000
	}))
	alice := s.AddUser(t, "alice", prPassword)
	a := prLogin(t, s, alice, "pc")
	rtOnline(t, a, 0)
	for _, tc := range []struct {
		name, iq       string
		typ, cond, app string
	}{
		{"two items", "<iq type='set'><pubsub xmlns='" + pepNS + "'><publish node='n'><item id='1'><x xmlns='y'/></item><item id='2'><x xmlns='y'/></item></publish></pubsub></iq>",
			"modify", "bad-request", "invalid-payload"},
		{"two payloads", "<iq type='set'><pubsub xmlns='" + pepNS + "'><publish node='n'><item id='1'><x xmlns='y'/><z xmlns='y'/></item></publish></pubsub></iq>",
			"modify", "bad-request", "invalid-payload"},
		{"no payload", "<iq type='set'><pubsub xmlns='" + pepNS + "'><publish node='n'><item id='1'/></publish></pubsub></iq>",
			"modify", "bad-request", "payload-required"},
		{"no item", "<iq type='set'><pubsub xmlns='" + pepNS + "'><publish node='n'/></pubsub></iq>",
			"modify", "bad-request", "item-required"},
		{"no node", "<iq type='set'><pubsub xmlns='" + pepNS + "'><publish><item id='1'><x xmlns='y'/></item></publish></pubsub></iq>",
			"modify", "bad-request", "nodeid-required"},
		{"subscribe", "<iq type='set'><pubsub xmlns='" + pepNS + "'><subscribe node='n' jid='" + alice.String() + "'/></pubsub></iq>",
			"cancel", "feature-not-implemented", "unsupported"},
		{"two requests", "<iq type='set'><pubsub xmlns='" + pepNS + "'><retract node='n'><item id='1'/></retract><retract node='n'><item id='1'/></retract></pubsub></iq>",
			"modify", "bad-request", ""},
		{"retract missing", "<iq type='set'><pubsub xmlns='" + pepNS + "'><retract node='n'><item id='1'/></retract></pubsub></iq>",
			"cancel", "item-not-found", ""},
		{"instant node", "<iq type='set'><pubsub xmlns='" + pepNS + "'><create/></pubsub></iq>",
			"modify", "not-acceptable", "nodeid-required"},
		{"bad max_items", "<iq type='get'><pubsub xmlns='" + pepNS + "'><items node='n' max_items='zero'/></pubsub></iq>",
			"modify", "bad-request", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pepCheckError(t, pepIQ(t, a, "%s", tc.iq), tc.typ, tc.cond, tc.app)
		})
	}
	// Limits: an item larger than the whole quota (XEP-0060 §7.1.3.4),
	// the quota, then the node count.
	data := func(n int) string { return "<data xmlns='urn:xmpp:avatar:data'>" + strings.Repeat("A", n) + "</data>" }
	pepCheckError(t, pepPublish(t, a, "urn:xmpp:avatar:data", "h", data(2500), ""), "modify", "not-acceptable", "payload-too-big")
	pepCheckResult(t, pepPublish(t, a, "one", "1", data(1200), ""))
	pepCheckResult(t, pepIQ(t, a, "<iq type='set'><pubsub xmlns='%s'><create node='two'/></pubsub></iq>", pepNS))
	pepCheckError(t, pepPublish(t, a, "two", "1", data(1200), ""), "wait", "resource-constraint", "")
	pepCheckError(t, pepIQ(t, a, "<iq type='set'><pubsub xmlns='%s'><create node='two'/></pubsub></iq>", pepNS), "cancel", "conflict", "")
	pepCheckError(t, pepPublish(t, a, "three", "1", pepNickPayload("x"), ""), "wait", "resource-constraint", "")
	// Replacing the item within the quota works; the server survived it all.
	pepCheckResult(t, pepPublish(t, a, "one", "1", pepNickPayload("x"), ""))
	pepEqual(t, "items", pepItemIDs(pepItems(t, a, alice, "one", "")), "1=x")
}

// TestFederationPEP: personal eventing across servers. A contact on
// another server gets the last item once his presence (with entity
// capabilities, asked over the federation) reaches the owner's server, then
// every new item; he reads the items across; after his unavailable
// presence he gets no more.
func TestFederationPEP(t *testing.T) {
	_, _, ac, bc := fedOnline(t)
	alice := ac.JID.Bare()
	prHandshake(t, ac, bc)
	prHandshake(t, bc, ac)
	pepCheckResult(t, pepPublish(t, ac, pepNick, "current", pepNickPayload("Alice"), ""))

	// Bob's presence with caps: both servers ask his client what they
	// mean (his own for his account, alice's for hers); alice's then
	// sends her last item.
	caps := newPEPCaps(pepNick + "+notify")
	rtSend(t, bc, caps.presence())
	askers := map[string]bool{}
	el := bc.Next(t, 10*time.Second, func(e *wire.Element) bool {
		if pepIsCapsQuery(e) {
			askers[e.AttrValue("from")] = true
			rtSend(t, bc, caps.answer(e))
			return false
		}
		return len(pepEvents([]*wire.Element{e}, alice, pepNick)) > 0
	})
	pepEqual(t, "bob's last item from the other server", pepEvents([]*wire.Element{el}, alice, pepNick), "current=Alice")
	if !askers["alice@a.test"] {
		t.Errorf("caps asked by %v, want alice@a.test among them", askers)
	}

	pepCheckResult(t, pepPublish(t, ac, pepNick, "current", pepNickPayload("Alice A."), ""))
	el = bc.Next(t, 10*time.Second, func(e *wire.Element) bool { return len(pepEvents([]*wire.Element{e}, alice, pepNick)) > 0 })
	pepEqual(t, "bob's notification", pepEvents([]*wire.Element{el}, alice, pepNick), "current=Alice A.")
	pepEqual(t, "bob reads across", pepItemIDs(pepItems(t, bc, alice, pepNick, "")), "current=Alice A.")

	// Unavailable: no more notifications. Alice's ping to b.test follows
	// her notification on the same stream, so once it is answered b.test
	// has routed what she published.
	rtSend(t, bc, "<presence type='unavailable'/>")
	ac.Next(t, 10*time.Second, servertest.Named("presence", "type", "unavailable", "from", bc.JID.String()))
	pepCheckResult(t, pepPublish(t, ac, pepNick, "current", pepNickPayload("Alice B."), ""))
	rtSend(t, ac, "<iq id='fp1' to='b.test' type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
	ac.Next(t, 10*time.Second, rtMatch("iq", "b.test", "fp1"))
	pepEqual(t, "bob after going unavailable", pepEvents(prSync(t, bc), alice, pepNick))
}

// A contact on another server whose subscription the owner approves after
// the owner already received its presence: the module followed none of
// that presence (the contact was no subscriber then), so the owner's
// server probes the contact, follows the answer and sends it the last item
// (XEP-0163 §4.3.4); notifications reach it from then on, without waiting
// for its next presence.
func TestFederationPEPApproval(t *testing.T) {
	_, _, ac, bc := fedOnline(t)
	alice, bob := ac.JID.Bare(), bc.JID.Bare()
	prHandshake(t, ac, bc) // alice receives bob's presence, not the reverse
	pepCheckResult(t, pepPublish(t, ac, pepNick, "current", pepNickPayload("Alice"), ""))

	caps := newPEPCaps(pepNick + "+notify")
	// answering answers the servers' questions about bob's caps and
	// reports whether e is alice's notification for the nick node.
	answering := func(e *wire.Element) bool {
		if pepIsCapsQuery(e) {
			rtSend(t, bc, caps.answer(e))
			return false
		}
		return len(pepEvents([]*wire.Element{e}, alice, pepNick)) > 0
	}
	rtSend(t, bc, caps.presence())
	ac.Next(t, 10*time.Second, servertest.Named("presence", "from", bc.JID.String()))
	pepEqual(t, "bob before his subscription", pepEvents(prSync(t, bc), alice, pepNick))

	rtSend(t, bc, "<presence to='%s' type='subscribe'/>", alice)
	ac.Next(t, 10*time.Second, prMatch("presence", "subscribe", bob.String()))
	rtSend(t, ac, "<presence to='%s' type='subscribed'/>", bob)
	el := bc.Next(t, 10*time.Second, answering)
	pepEqual(t, "bob's last item after the approval", pepEvents([]*wire.Element{el}, alice, pepNick), "current=Alice")

	pepCheckResult(t, pepPublish(t, ac, pepNick, "current", pepNickPayload("Alice A."), ""))
	el = bc.Next(t, 10*time.Second, answering)
	pepEqual(t, "bob's notification", pepEvents([]*wire.Element{el}, alice, pepNick), "current=Alice A.")
}
