package pep

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

func parse(t testing.TB, s string) *wire.Element {
	t.Helper()
	el, err := wire.Parse([]byte(s), wire.NewScope(xmpp.NSClient))
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return el
}

// TestVerification checks the XEP-0115 §5.2 and §5.3 examples and the
// §5.4 rejections.
func TestVerification(t *testing.T) {
	const simple = `<query xmlns='http://jabber.org/protocol/disco#info'>
		<identity category='client' name='Exodus 0.9.1' type='pc'/>
		<feature var='http://jabber.org/protocol/caps'/>
		<feature var='http://jabber.org/protocol/disco#info'/>
		<feature var='http://jabber.org/protocol/disco#items'/>
		<feature var='http://jabber.org/protocol/muc'/>
	</query>`
	const complex = "<query xmlns='http://jabber.org/protocol/disco#info'>" +
		"<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>" +
		"<identity xml:lang='el' category='client' name='\u03a8 0.11' type='pc'/>" +
		"<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>" +
		"<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>" +
		"<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>" +
		"<field var='ip_version' type='text-multi'><value>ipv6</value><value>ipv4</value></field>" +
		"<field var='os'><value>Mac</value></field><field var='os_version'><value>10.5.1</value></field>" +
		"<field var='software'><value>Psi</value></field><field var='software_version'><value>0.11</value></field></x></query>"
	for _, tc := range []struct {
		name, xml, hash, want string
		ok                    bool
	}{
		{"simple", simple, "sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=", true},
		{"complex", complex, "sha-1", "q07IKJEyjvHSyhy//CH0CxmKi8w=", true},
		{"unknown hash", simple, "md5", "", false},
		{"duplicate feature", strings.Replace(simple, "</query>", "<feature var='http://jabber.org/protocol/muc'/></query>", 1), "sha-1", "", false},
		{"duplicate identity", strings.Replace(simple, "</query>", "<identity category='client' name='Exodus 0.9.1' type='pc'/></query>", 1), "sha-1", "", false},
		{"FORM_TYPE not hidden: form ignored", strings.Replace(complex, "var='FORM_TYPE' type='hidden'", "var='FORM_TYPE'", 1), "sha-1", "2ZC2Fe8xb+Ln321QG0/AaqNEfBU=", true},
		{"two FORM_TYPE fields", strings.Replace(complex, "<field var='os'>", "<field var='FORM_TYPE' type='hidden'><value>x</value></field><field var='os'>", 1), "sha-1", "", false},
		{"two forms of one type", strings.Replace(complex, "</query>",
			"<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field></x></query>", 1), "sha-1", "", false},
		{"form without FORM_TYPE is ignored", strings.Replace(simple, "</query>", "<x xmlns='jabber:x:data' type='result'><field var='a'><value>b</value></field></x></query>", 1),
			"sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := verification(parse(t, tc.xml), tc.hash)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("verification = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// fakeSessions is an account's bound resources.
type fakeSessions map[string][]xmpp.Resource

func (f fakeSessions) Sessions(bare jid.JID) []xmpp.Resource { return f[bare.String()] }
func (fakeSessions) SetInterested(jid.JID)                   {}
func (fakeSessions) IsLocal(domain string) bool              { return domain == "example.org" }

// noContacts has nobody subscribed to anyone.
type noContacts struct{}

func (noContacts) IsSubscriber(context.Context, jid.JID, jid.JID) (bool, error) { return false, nil }
func (noContacts) Subscribers(context.Context, jid.JID) ([]jid.JID, error)      { return nil, nil }
func (noContacts) Subscriptions(context.Context, jid.JID) ([]jid.JID, error)    { return nil, nil }

func newModule(t testing.TB, sessions fakeSessions) (*Module, *xmpptest.Recorder, *xmpp.Hooks) {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rec := &xmpptest.Recorder{}
	m, err := New(Options{}, Deps{
		Store: db.PEP(), Rosters: db.Rosters(), Contacts: noContacts{}, Sessions: sessions, Router: rec,
		IsLocal: sessions.IsLocal,
	})
	if err != nil {
		t.Fatal(err)
	}
	hooks := &xmpp.Hooks{}
	if err := m.Register(xmpp.NewRegistry(), hooks); err != nil {
		t.Fatal(err)
	}
	return m, rec, hooks
}

const capsPresence = "<presence from='%s'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>"

func capsAnswer(id, from, extra string) string {
	return "<iq type='result' id='" + id + "' from='" + from + "' to='juliet@example.org'><query xmlns='http://jabber.org/protocol/disco#info'>" +
		"<identity category='client' name='Exodus 0.9.1' type='pc'/>" +
		"<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>" +
		"<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>" + extra +
		"</query></iq>"
}

// TestCapsQueries covers how the service learns what a verification
// string asks for: one query per string, answers only from the entity
// asked, an answer that does not match the string kept for its sender
// alone, and then the next entity announcing the string asked.
func TestCapsQueries(t *testing.T) {
	ctx := context.Background()
	m, rec, hooks := newModule(t, fakeSessions{})
	pres := func(full string) *xmpp.Stanza {
		return xmpptest.Stanza(t, strings.Replace(capsPresence, "%s", full, 1))
	}
	const key = "sha-1 QgayPKawpkPSDYmwT/WM94uAlu0="

	hooks.PresenceBroadcast.Run(ctx, pres("juliet@example.org/balcony"))
	hooks.PresenceBroadcast.Run(ctx, pres("romeo@example.org/orchard"))
	out := rec.Take()
	if len(out) != 1 || out[0].Kind != xmpp.KindIQ || out[0].To.String() != "juliet@example.org/balcony" ||
		out[0].From.String() != "juliet@example.org" {
		t.Fatalf("want one query to juliet from her account, got %v", out)
	}
	q := out[0]
	if node := q.Payload().AttrValue("node"); node != "n#QgayPKawpkPSDYmwT/WM94uAlu0=" {
		t.Fatalf("query node %q", node)
	}

	// Not from the entity asked: not taken.
	if hooks.Inbound.Run(ctx, xmpptest.Stanza(t, capsAnswer(q.ID, "mallory@example.org/x", ""))) {
		t.Fatal("an answer from another entity was taken")
	}
	// A forged answer (its features do not hash to the string) from
	// the entity asked: kept for that entity alone.
	forged := capsAnswer(q.ID, "juliet@example.org/balcony", "<feature var='urn:xmpp:avatar:metadata+notify'/>")
	if !hooks.Inbound.Run(ctx, xmpptest.Stanza(t, forged)) {
		t.Fatal("the answer was not taken")
	}
	if nodes, ok := m.lookup("juliet@example.org/balcony", key); !ok || !nodes["urn:xmpp:avatar:metadata"] {
		t.Fatalf("juliet's own interests = %v, %v", nodes, ok)
	}
	if _, ok := m.lookup("romeo@example.org/orchard", key); ok {
		t.Fatal("a forged answer was believed for another entity")
	}
	// A second answer to the same id is not taken.
	if hooks.Inbound.Run(ctx, xmpptest.Stanza(t, forged)) {
		t.Fatal("a second answer was taken")
	}

	// Romeo, who waited on the same string, is asked in turn
	// (XEP-0115 §5.4 3.9); a true answer is kept for all.
	out = rec.Take()
	if len(out) != 1 || out[0].To.String() != "romeo@example.org/orchard" || out[0].From.String() != "romeo@example.org" {
		t.Fatalf("want a query to romeo from his account, got %v", out)
	}
	if !hooks.Inbound.Run(ctx, xmpptest.Stanza(t, strings.Replace(capsAnswer(out[0].ID, "romeo@example.org/orchard", ""), "to='juliet@example.org'", "to='romeo@example.org'", 1))) {
		t.Fatal("romeo's answer was not taken")
	}
	if nodes, ok := m.lookup("nurse@example.org/x", key); !ok || len(nodes) != 0 {
		t.Fatalf("verified interests = %v, %v", nodes, ok)
	}
	// Known now: nobody is asked.
	hooks.PresenceBroadcast.Run(ctx, pres("nurse@example.org/x"))
	if out := rec.Take(); len(out) != 0 {
		t.Fatalf("asked about a known string: %v", out)
	}
}

// FuzzPubsub feeds arbitrary pubsub requests from the account owner to
// the handlers: every request gets a result or an error, and the service
// survives.
func FuzzPubsub(f *testing.F) {
	for _, s := range []string{
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item id='1'><x xmlns='y'/></item></publish></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item><x xmlns='y'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='pubsub#max_items'><value>max</value></field></x></publish-options></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n' max_items='2'><item id='1'/></items></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='n' notify='1'><item id='1'/></retract></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='m'/><configure><x xmlns='jabber:x:data' type='submit'><field var='pubsub#access_model'><value>roster</value></field><field var='pubsub#roster_groups_allowed'><value>a</value><value>a</value></field></x></configure></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='n'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#notify_retract'><value>0</value></field></x></configure></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><purge node='n'/></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='n'/></pubsub>",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	m, rec, _ := newModule(f, fakeSessions{})
	f.Fuzz(func(t *testing.T, payload string, set bool) {
		typ := xmpp.TypeGet
		if set {
			typ = xmpp.TypeSet
		}
		el, err := wire.Parse([]byte("<iq type='"+typ+"' id='1' from='juliet@example.org/balcony'>"+payload+"</iq>"), wire.NewScope(xmpp.NSClient))
		if err != nil {
			return
		}
		st, err := xmpp.NewStanza(el)
		if err != nil || st.Payload() == nil || st.Payload().Name != "pubsub" {
			return
		}
		var h xmpp.IQHandler
		switch {
		case st.Payload().Space == NS && set:
			h = m.pubsubSet
		case st.Payload().Space == NS:
			h = m.pubsubGet
		case st.Payload().Space == NSOwner:
			h = m.ownerRequest
		default:
			return
		}
		reply, err := h(context.Background(), st)
		if err == nil && reply == nil {
			t.Fatalf("no answer to %s", payload)
		}
		if err != nil && xmpp.AsStanzaError(err).Condition == "internal-server-error" {
			t.Fatalf("internal error for %s: %v", payload, err)
		}
		if reply != nil && reply.Type != xmpp.TypeResult && reply.Type != xmpp.TypeError {
			t.Fatalf("answer of type %q", reply.Type)
		}
		rec.Take()
	})
}

// FuzzCapsAnswer checks the verification of arbitrary disco#info results:
// the string does not depend on the order of identities, features and
// forms (XEP-0115 §5.1 sorts them), and what an answer asks for stays
// within the bounds.
func FuzzCapsAnswer(f *testing.F) {
	f.Add("<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/><feature var='a+notify'/><feature var='b'/></query>", "sha-1")
	f.Add("<query xmlns='http://jabber.org/protocol/disco#info'><x xmlns='jabber:x:data'><field var='FORM_TYPE' type='hidden'><value>t</value></field><field var='a'/></x><x xmlns='jabber:x:data'><field var='FORM_TYPE' type='hidden'><value>s</value></field></x></query>", "sha-256")
	f.Fuzz(func(t *testing.T, xml, hash string) {
		el, err := wire.Parse([]byte(xml), wire.NewScope(""))
		if err != nil {
			return
		}
		reversed := &wire.Element{Name: el.Name, Space: el.Space, Attrs: el.Attrs}
		for i := len(el.Children) - 1; i >= 0; i-- {
			reversed.Children = append(reversed.Children, el.Children[i])
		}
		v1, ok1 := verification(el, hash)
		v2, ok2 := verification(reversed, hash)
		if v1 != v2 || ok1 != ok2 {
			t.Fatalf("order changes the verification: %q %v, reversed %q %v", v1, ok1, v2, ok2)
		}
		nodes := interests(el)
		if len(nodes) > maxInterests {
			t.Fatalf("%d interests", len(nodes))
		}
		for n := range nodes {
			if n == "" || len(n) > maxInterestName {
				t.Fatalf("interest %q", n)
			}
		}
	})
}
