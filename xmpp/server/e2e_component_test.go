package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"switchboard/xmpp/component"
	"switchboard/xmpp/config"
	"switchboard/xmpp/server"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

// Helpers and names of the external component tests are prefixed ec.

const (
	ecDomain = "gw.localhost"
	ecSecret = "gateway secret"
)

// ecStart starts a server with the external component gw.localhost, and
// alice online.
func ecStart(t *testing.T) (*servertest.Server, *servertest.Client) {
	t.Helper()
	s := servertest.Start(t, servertest.WithComponent(ecDomain, ecSecret))
	alice := s.MustLogin(t, s.AddUser(t, "alice", "a"), "a", servertest.ClientOptions{Resource: "desk"})
	rtOnline(t, alice, 0)
	return s, alice
}

// ecCheck compares a stanza the component read (in its namespace) with w.
func ecCheck(t *testing.T, el *wire.Element, w rtWant) {
	t.Helper()
	if el.Space != component.NSAccept {
		t.Errorf("the component read %s in %q", el, el.Space)
	}
	// Read again as a client would: what the server translated.
	xml := strings.NewReplacer("'"+component.NSAccept+"'", "'jabber:client'", `"`+component.NSAccept+`"`, `"jabber:client"`).Replace(el.String())
	rtCheck(t, xmpptest.Element(t, xml), w)
}

// TestComponentChat: a user and an external component (mellium's XEP-0114
// client) exchange messages and IQs through the server; the component is
// listed in the host's service discovery; while it is not connected, what
// is sent to it is answered with service-unavailable.
func TestComponentChat(t *testing.T) {
	s, alice := ecStart(t)

	rtSend(t, alice, "<message to='bot@%s' id='early'><body>anyone?</body></message>", ecDomain)
	rtCheck(t, alice.Next(t, wait, rtMatch("message", "bot@"+ecDomain, "early")), rtWant{
		name: "message", typ: "error", from: "bot@" + ecDomain, to: alice.JID.String(),
		errType: "cancel", errCond: "service-unavailable",
	})

	gw := s.MustConnectComponent(t, ecDomain, ecSecret)
	rtSend(t, alice, "<message to='bot@%s' id='m1' type='chat'><body>call bob</body></message>", ecDomain)
	ecCheck(t, gw.Next(t, wait, rtMatch("message", "", "m1")), rtWant{
		name: "message", typ: "chat", from: alice.JID.String(), to: "bot@" + ecDomain, body: "call bob",
	})
	rtSend(t, gw, "<message from='bot@%s/phone' to='%s' id='r1' type='chat'><body>calling bob</body></message>", ecDomain, alice.JID)
	rtCheck(t, alice.Next(t, wait, rtMatch("message", "", "r1")), rtWant{
		name: "message", typ: "chat", from: "bot@" + ecDomain + "/phone", to: alice.JID.String(), body: "calling bob",
	})

	// An IQ from the user to the component, answered by it.
	rtSend(t, alice, "<iq to='%s' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>", ecDomain)
	ecCheck(t, gw.Next(t, wait, rtMatch("iq", "", "v1")), rtWant{name: "iq", typ: "get", from: alice.JID.String(), to: ecDomain})
	rtSend(t, gw, "<iq from='%s' to='%s' type='result' id='v1'><query xmlns='jabber:iq:version'><name>gateway</name></query></iq>", ecDomain, alice.JID)
	rtCheck(t, alice.Next(t, wait, rtMatch("iq", ecDomain, "v1")), rtWant{name: "iq", typ: "result", from: ecDomain, to: alice.JID.String()})

	// The component asks the server itself.
	rtSend(t, gw, "<iq from='%s' to='%s' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>", ecDomain, s.Domain)
	ecCheck(t, gw.Next(t, wait, rtMatch("iq", s.Domain, "p1")), rtWant{name: "iq", typ: "result", from: s.Domain, to: ecDomain})

	// The host lists the component among its services.
	rtSend(t, alice, "<iq to='%s' type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", s.Domain)
	items := alice.Next(t, wait, rtMatch("iq", s.Domain, "d1"))
	if got := mcItems(items); !slices.Contains(got, ecDomain) {
		t.Errorf("disco#items of %s: %v, want %s among them", s.Domain, got, ecDomain)
	}

	gw.Close()
	deadline := time.Now().Add(wait)
	for s.Components().Connected(ecDomain) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rtSend(t, alice, "<message to='bot@%s' id='late'><body>still there?</body></message>", ecDomain)
	rtCheck(t, alice.Next(t, wait, rtMatch("message", "bot@"+ecDomain, "late")), rtWant{
		name: "message", typ: "error", from: "bot@" + ecDomain, to: alice.JID.String(),
		errType: "cancel", errCond: "service-unavailable",
	})
}

// TestComponentLimits: the server's services answer a component as they
// answer another server's users (the user directory is not for it), and a
// component that forges another domain's address is cut off with
// invalid-from (XEP-0114 §3) before anything reaches the user; it may
// connect again.
func TestComponentLimits(t *testing.T) {
	s, alice := ecStart(t)
	gw := s.MustConnectComponent(t, ecDomain, ecSecret)

	rtSend(t, gw, "<iq from='%s' to='%s' type='get' id='s1'><query xmlns='jabber:iq:search'/></iq>", ecDomain, s.Domain)
	ecCheck(t, gw.Next(t, wait, rtMatch("iq", s.Domain, "s1")), rtWant{
		name: "iq", typ: "error", from: s.Domain, to: ecDomain, errType: "cancel", errCond: "service-unavailable",
	})

	rtSend(t, gw, "<message from='bob@%s/x' to='%s' id='forged'><body>from bob, honest</body></message>", s.Domain, alice.JID)
	gw.Closed(t, wait)
	alice.NoMore(t, rtQuiet, rtMatch("message", "", "forged"))

	again := s.MustConnectComponent(t, ecDomain, ecSecret)
	rtSend(t, again, "<message from='bot@%s' to='%s' id='honest'><body>back</body></message>", ecDomain, alice.JID)
	rtCheck(t, alice.Next(t, wait, rtMatch("message", "", "honest")), rtWant{
		name: "message", from: "bot@" + ecDomain, to: alice.JID.String(), body: "back",
	})
}

// TestComponentSubscription: a user adds a gateway's contact to the
// roster, in the monitored group; the component receives the subscription request and approves
// it, and its presence reaches the user (RFC 6121 §3 with a component as
// the contact's server).
func TestComponentSubscription(t *testing.T) {
	s, alice := ecStart(t)
	gw := s.MustConnectComponent(t, ecDomain, ecSecret)
	contact := "+15551234@" + ecDomain
	// Roster pushes go to the resources that asked for the roster
	// (RFC 6121 §2.1.6).
	rtSend(t, alice, "<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
	alice.Next(t, wait, rtMatch("iq", "", "r0"))
	// A gateway's contact is a person: the receptionist may monitor it
	// (a room or upload service may not be).
	rtSend(t, alice, "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='%s'><group>Monitored</group></item></query></iq>", contact)
	rtCheck(t, alice.Next(t, wait, rtMatch("iq", "", "r1")), rtWant{name: "iq", typ: "result", from: "", to: alice.JID.String()})

	rtSend(t, alice, "<presence to='%s' type='subscribe'/>", contact)
	ecCheck(t, gw.Next(t, wait, rtMatch("presence", "", "")), rtWant{
		name: "presence", typ: "subscribe", from: alice.JID.Bare().String(), to: contact,
	})
	rtSend(t, gw, "<presence from='%s' to='%s' type='subscribed'/>", contact, alice.JID.Bare())
	rtSend(t, gw, "<presence from='%s/line' to='%s'><show>dnd</show><status>on a call</status></presence>", contact, alice.JID.Bare())
	push := alice.Next(t, wait, func(e *wire.Element) bool {
		q := e.Child("query", "jabber:iq:roster")
		return e.Name == "iq" && q != nil && q.Child("item", "jabber:iq:roster") != nil &&
			q.Child("item", "jabber:iq:roster").AttrValue("subscription") == "to"
	})
	if item := push.Child("query", "jabber:iq:roster").Child("item", "jabber:iq:roster"); item.AttrValue("jid") != contact {
		t.Errorf("roster push for %s", item.AttrValue("jid"))
	}
	p := alice.Next(t, wait, rtMatch("presence", contact+"/line", ""))
	if p.ChildText("show", "jabber:client") != "dnd" || p.ChildText("status", "jabber:client") != "on a call" {
		t.Errorf("the contact's presence: %s", p)
	}
}

// TestComponentOnServiceDomain: a component configured on the domain of
// one of the server's own services (the room service here) is refused at
// startup, naming the domain, and the store is left closed.
func TestComponentOnServiceDomain(t *testing.T) {
	cfg := servertest.Config(t.TempDir())
	cfg.Components = []config.Component{{Domain: "conference." + cfg.Hosts[0].Domain, Secret: "s"}}
	srv, err := server.New(context.Background(), cfg, nil)
	if err == nil {
		srv.Shutdown(context.Background())
		t.Fatal("the server started")
	}
	if !strings.Contains(err.Error(), "conference.localhost") {
		t.Errorf("error %q does not name the domain", err)
	}
	// A second server on the same data directory opens the store: the
	// first one closed it.
	cfg.Components = nil
	srv, err = server.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("the store was left open: %v", err)
	}
	srv.Shutdown(context.Background())
}
