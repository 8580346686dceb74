package server_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// Push notifications (XEP-0357) over real streams. The app server's push
// service is a resource of a local account, which answers the server's
// publications as a pubsub service would.

const (
	nsPush       = "urn:xmpp:push:0"
	nsPubSub     = "http://jabber.org/protocol/pubsub"
	pushSecretXF = "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s3cr3t</value></field></x>"
)

// pushNotification reads a published notification: its node, summary and
// publish options.
type pushNotification struct {
	id, from, node   string
	summary, options map[string][]string
}

func pushIsNotification(e *wire.Element) bool {
	return e.Name == "iq" && e.AttrValue("type") == "set" && e.Child("pubsub", nsPubSub) != nil
}

// pushNext waits for the next notification the app server is sent.
func pushNext(t testing.TB, app *servertest.Client) pushNotification {
	t.Helper()
	el := app.Next(t, ftWait, pushIsNotification)
	ps := el.Child("pubsub", nsPubSub)
	pub := ps.Child("publish", nsPubSub)
	if pub == nil || pub.Child("item", nsPubSub) == nil || pub.Child("item", nsPubSub).Child("notification", nsPush) == nil {
		t.Fatalf("not a notification: %s", el)
	}
	n := pushNotification{
		id: el.AttrValue("id"), from: el.AttrValue("from"), node: pub.AttrValue("node"),
		summary: xmpp.FormValues(pub.Child("item", nsPubSub).Child("notification", nsPush).Child("x", xmpp.NSData)),
	}
	if po := ps.Child("publish-options", nsPubSub); po != nil {
		n.options = xmpp.FormValues(po.Child("x", xmpp.NSData))
	}
	return n
}

// pushAnswer answers notification n: a result, or an error of type typ.
func pushAnswer(t testing.TB, app *servertest.Client, n pushNotification, typ string) {
	t.Helper()
	if typ == "" {
		ftSend(t, app, "<iq type='result' id='%s' to='%s'/>", n.id, n.from)
		return
	}
	ftSend(t, app, "<iq type='error' id='%s' to='%s'><error type='%s'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", n.id, n.from, typ)
}

// pushApp logs in the app server's push service, app@localhost/push.
func pushApp(t testing.TB, s *servertest.Server) *servertest.Client {
	t.Helper()
	return ftLogin(t, s, s.AddUser(t, "app", ftPassword), "push")
}

// pushUsers logs in the push service, alice's phone and bob's desk.
func pushUsers(t testing.TB, s *servertest.Server) (alice jid.JID, app, phone, b *servertest.Client) {
	t.Helper()
	alice = s.AddUser(t, "alice", ftPassword)
	bob := s.AddUser(t, "bob", ftPassword)
	app = pushApp(t, s)
	b = ftLogin(t, s, bob, "desk")
	return alice, app, ftLogin(t, s, alice, "phone"), b
}

// pushEnable enables the app's service for c with a secret.
func pushEnable(t testing.TB, c *servertest.Client, service, node string) {
	t.Helper()
	_, res := ftExchange(t, c, "<iq type='set' id='%s'><enable xmlns='urn:xmpp:push:0' jid='%s' node='%s'>"+pushSecretXF+"</enable></iq>", service, node)
	if res.AttrValue("type") != "result" {
		t.Fatalf("enable: %s", res)
	}
}

// TestPushOffline: a client enables a push service, announced on its
// account (§5), then goes; a message stored offline, and one delivered to
// the account's other device, are notified to the service from the
// server, with the node, a placeholder body and the enable's publish
// options (§6). A service that answers with errors is disabled (§7).
func TestPushOffline(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Push.MaxErrors = 1 }))
	alice, app, phone, b := pushUsers(t, s)
	_, info := ftExchange(t, phone, "<iq type='get' id='%s' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if !slices.Contains(mcFeatures(info), nsPush) {
		t.Fatalf("the account does not announce %s: %s", nsPush, info)
	}
	// Errors first: another account may not enable alice's, nor may a
	// request without the service's JID.
	_, res := ftExchange(t, b, "<iq type='set' id='%s' to='alice@localhost'><enable xmlns='urn:xmpp:push:0' jid='app@localhost/push'/></iq>")
	ftWantError(t, res, "forbidden")
	_, res = ftExchange(t, phone, "<iq type='set' id='%s'><enable xmlns='urn:xmpp:push:0' node='n'/></iq>")
	ftWantError(t, res, "bad-request")
	pushEnable(t, phone, app.JID.String(), "node-1")
	ftLogout(t, phone)

	ftSend(t, b, "<message to='alice@localhost' id='m1' type='chat'><body>are you there?</body></message>")
	n := pushNext(t, app)
	if n.from != "localhost" || n.node != "node-1" ||
		n.summary["message-count"][0] != "1" || n.summary["last-message-body"][0] != "New message" ||
		n.summary["last-message-sender"] != nil || n.options["secret"][0] != "s3cr3t" {
		t.Fatalf("notification %+v", n)
	}
	pushAnswer(t, app, n, "")

	// Her desktop is online: the message goes there, and the phone's
	// service is told.
	desk := ftLogin(t, s, alice, "desk")
	ftOnline(t, desk, "<presence/>")
	ftSend(t, b, "<message to='alice@localhost' id='m2' type='chat'><body>saw you at your desk</body></message>")
	desk.Next(t, ftWait, ftWithID("message", "m2"))
	n = pushNext(t, app)
	if n.summary["message-count"][0] != "1" {
		t.Fatalf("notification %+v", n)
	}
	pushAnswer(t, app, n, "")
	// A chat state alone is not worth one.
	ftSend(t, b, "<message to='alice@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	desk.Next(t, ftWait, func(e *wire.Element) bool { return e.Name == "message" && e.Child("composing", mtNSChatStates) != nil })
	app.NoMore(t, 300*time.Millisecond, pushIsNotification)

	ftSend(t, b, "<message to='alice@localhost' id='m3' type='chat'><body>hello?</body></message>")
	pushAnswer(t, app, pushNext(t, app), "cancel")
	// The error disabled the service (max_errors = 1).
	ftSend(t, b, "<message to='alice@localhost' id='m4' type='chat'><body>still there?</body></message>")
	desk.Next(t, ftWait, ftWithID("message", "m4"))
	app.NoMore(t, 300*time.Millisecond, pushIsNotification)
}

// TestPushAccountRemoved: an account removed (XEP-0077) and created again
// under the same name does not notify the removed one's devices.
func TestPushAccountRemoved(t *testing.T) {
	s := servertest.Start(t)
	alice, app, phone, b := pushUsers(t, s)
	pushEnable(t, phone, app.JID.String(), "node-1")
	_, res := ftExchange(t, phone, "<iq type='set' id='%s'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	if res.AttrValue("type") != "result" {
		t.Fatalf("account removal: %s", res)
	}
	phone.Closed(t, ftWait)
	s.AddUser(t, "alice", ftPassword)
	ftSend(t, b, "<message to='alice@localhost' id='m1' type='chat'><body>welcome</body></message>")
	ftSync(t, b)
	app.NoMore(t, 300*time.Millisecond, pushIsNotification)
	// The new account's own service is notified.
	phone = ftLogin(t, s, alice, "phone")
	pushEnable(t, phone, app.JID.String(), "node-2")
	ftLogout(t, phone)
	ftSend(t, b, "<message to='alice@localhost' id='m2' type='chat'><body>again</body></message>")
	if n := pushNext(t, app); n.node != "node-2" {
		t.Fatalf("notification %+v, want node-2's", n)
	}
}

// pushSMFriends logs in the app server's push service, and alice and bob
// as smFriends does (alice with resumable stream management), alice
// enabling the service; bob sends alice m1, which she reads and does not
// acknowledge.
func pushSMFriends(t testing.TB, s *servertest.Server) (app *servertest.Client, a *smRaw, afull string, enabled *wire.Element, b *servertest.Client) {
	t.Helper()
	app = pushApp(t, s)
	a, afull, enabled, b = smFriends(t, s, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	a.Write(t, "<iq type='set' id='en'><enable xmlns='urn:xmpp:push:0' jid='"+app.JID.String()+"' node='n'/></iq>")
	if el := a.next(t, ftWithID("iq", "en")); el.AttrValue("type") != "result" {
		t.Fatalf("enable: %s", el)
	}
	ftSend(t, b, "<message to='alice@localhost' id='m1' type='chat'><body>one</body></message>")
	a.next(t, smMessage("m1"))
	return app, a, afull, enabled, b
}

// TestPushResumeTakeover: a client that resumes its session on a new
// connection while the server still has the old one (a phone switching
// networks) is not notified of what it did not acknowledge: it is back.
func TestPushResumeTakeover(t *testing.T) {
	s := servertest.Start(t)
	app, a, _, enabled, _ := pushSMFriends(t, s)
	// The old connection is still open: the resumption takes it over.
	r, res := smResume(t, s, "alice", enabled.AttrValue("id"), a.h-1)
	if res.Name != "resumed" {
		t.Fatalf("resume: %s", res)
	}
	r.next(t, smMessage("m1"))
	app.NoMore(t, 300*time.Millisecond, pushIsNotification)
}

// TestPushHibernation: a stream-management session that hibernates with a
// message its client did not acknowledge notifies its service; what
// arrives while that notification is in flight goes in one more when the
// service answers; a resumed session is notified no more.
func TestPushHibernation(t *testing.T) {
	s := servertest.Start(t)
	app, a, afull, enabled, b := pushSMFriends(t, s)
	// Not acknowledged: the connection drops.
	a.Conn.Close()
	n := pushNext(t, app)
	if n.summary["message-count"][0] != "1" {
		t.Fatalf("notification %+v", n)
	}
	smHibernating(t, s, afull)
	for i := 2; i <= 3; i++ {
		ftSend(t, b, "<message to='alice@localhost' id='m%d' type='chat'><body>%d</body></message>", i, i)
	}
	ftSync(t, b)
	app.NoMore(t, 200*time.Millisecond, pushIsNotification)
	pushAnswer(t, app, n, "")
	n = pushNext(t, app)
	if n.summary["message-count"][0] != "2" {
		t.Fatalf("notification %+v, want 2 messages", n)
	}
	pushAnswer(t, app, n, "")

	r, res := smResume(t, s, "alice", enabled.AttrValue("id"), a.h)
	if res.Name != "resumed" {
		t.Fatalf("resume: %s", res)
	}
	// m1 was read (counted in a.h), though not acknowledged.
	for _, id := range []string{"m2", "m3"} {
		r.next(t, smMessage(id))
	}
	ftSend(t, b, "<message to='alice@localhost' id='m4' type='chat'><body>welcome back</body></message>")
	r.next(t, smMessage("m4"))
	app.NoMore(t, 300*time.Millisecond, pushIsNotification)
}

// TestPushAckDelayed: a stream-management client that leaves the
// server's request for an acknowledgement unanswered for max_ack_delay,
// its connection still open (a phone that lost its network without a
// word), notifies its service of what it did not acknowledge, and of each
// message that comes until it answers; once it answers, nothing more. A
// session that hibernates while lagging does not notify the same message
// twice.
func TestPushAckDelayed(t *testing.T) {
	const delay = 2 * time.Second
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.C2S.MaxAckDelay = config.Duration(delay) }))
	app, a, afull, _, b := pushSMFriends(t, s)
	ack := func() { a.Write(t, "<a xmlns='urn:xmpp:sm:3' h='"+strconv.FormatUint(uint64(a.h), 10)+"'/>") }
	// m1 was read; the <r/> after it is left unanswered.
	n := pushNext(t, app)
	if n.summary["message-count"][0] != "1" {
		t.Fatalf("notification %+v, want 1 message", n)
	}
	pushAnswer(t, app, n, "")
	ftSend(t, b, "<message to='alice@localhost' id='m2' type='chat'><body>two</body></message>")
	a.next(t, smMessage("m2"))
	if n = pushNext(t, app); n.summary["message-count"][0] != "1" {
		t.Fatalf("notification %+v of the message that came while lagging, want 1 message", n)
	}
	pushAnswer(t, app, n, "")

	// It answers (the ping after its <a/> is handled after it), and
	// answers each <r/> from then on: notified no more.
	ack()
	a.Write(t, "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.next(t, ftWithID("iq", "p1"))
	a.next(t, smNamed("r"))
	ack()
	ftSend(t, b, "<message to='alice@localhost' id='m3' type='chat'><body>three</body></message>")
	a.next(t, smMessage("m3"))
	a.next(t, smNamed("r"))
	ack()
	app.NoMore(t, delay+500*time.Millisecond, pushIsNotification)

	// Lagging again, then the connection drops: m4 was notified when
	// its acknowledgement was overdue, not again when the session
	// hibernates.
	ftSend(t, b, "<message to='alice@localhost' id='m4' type='chat'><body>four</body></message>")
	a.next(t, smMessage("m4"))
	n = pushNext(t, app)
	pushAnswer(t, app, n, "")
	a.Conn.Close()
	smHibernating(t, s, afull)
	app.NoMore(t, 300*time.Millisecond, pushIsNotification)
}
