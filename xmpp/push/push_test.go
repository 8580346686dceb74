package push

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/xmpptest"
)

var (
	bob     = jid.MustParse("bob@localhost")
	fixedAt = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
)

// fakeSessions lists the resources the test sets.
type fakeSessions struct {
	mu  sync.Mutex
	res []xmpp.Resource
}

func (f *fakeSessions) Sessions(bare jid.JID) []xmpp.Resource {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []xmpp.Resource
	for _, r := range f.res {
		if r.JID.Bare().Equal(bare) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeSessions) SetInterested(jid.JID)      {}
func (f *fakeSessions) IsLocal(domain string) bool { return domain == "localhost" }

// set binds bob's resources: name → not connected (hibernating, closing
// or late acknowledging).
func (f *fakeSessions) set(resources map[string]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.res = nil
	for name, h := range resources {
		full := at(name)
		f.res = append(f.res, xmpp.Resource{JID: full, Available: true, Session: &fakeSession{full: full, away: h}})
	}
}

type fakeSession struct {
	full jid.JID
	away bool // not connected
}

func (s *fakeSession) JID() jid.JID              { return s.full }
func (s *fakeSession) Deliver(*xmpp.Stanza) bool { return true }
func (s *fakeSession) Close(string, string)      {}
func (s *fakeSession) Connected() bool           { return !s.away }

type fixture struct {
	m        *Module
	db       *store.DB
	hooks    *xmpp.Hooks
	reg      *xmpp.Registry
	router   *xmpptest.Recorder
	sessions *fakeSessions
}

// newFixture returns the module over db (nil: a new store), registered,
// with opts completed by defaults.
func newFixture(t *testing.T, db *store.DB, opts Options) *fixture {
	t.Helper()
	if db == nil {
		db = xmpptest.OpenStore(t, bob)
	}
	if opts.MaxPerAccount == 0 {
		opts.MaxPerAccount = 5
	}
	if opts.MaxErrors == 0 {
		opts.MaxErrors = 3
	}
	if opts.Timeout == 0 {
		opts.Timeout = time.Hour
	}
	// Each enable a second after the one before.
	clock := xmpptest.NewClock(fixedAt)
	opts.Now = func() time.Time {
		clock.Advance(time.Second)
		return clock.Now()
	}
	f := &fixture{db: db, hooks: &xmpp.Hooks{}, reg: xmpp.NewRegistry(), router: &xmpptest.Recorder{}, sessions: &fakeSessions{}}
	m, err := New(opts, Deps{Store: db.Push(), Router: f.router, Sessions: f.sessions})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := m.Register(f.reg, f.hooks); err != nil {
		t.Fatal(err)
	}
	f.m = m
	return f
}

// iq runs the handler registered for an IQ and returns its answer.
func (f *fixture) iq(t *testing.T, xml string) (*xmpp.Stanza, error) {
	t.Helper()
	st := xmpptest.Stanza(t, xml)
	h := f.reg.IQ(xmpp.TargetAccount, st)
	if h == nil {
		t.Fatalf("no handler for %s", xml)
	}
	return h(t.Context(), st)
}

// enable enables a service from bob's resource res, or fails the test.
func (f *fixture) enable(t *testing.T, res, service, node, form string) {
	t.Helper()
	xml := "<iq type='set' id='e' from='bob@localhost/" + res + "'><enable xmlns='urn:xmpp:push:0' jid='" + service + "' node='" + node + "'>" + form + "</enable></iq>"
	got, err := f.iq(t, xml)
	if err != nil || got.Type != xmpp.TypeResult {
		t.Fatalf("enable: %v, %v", got, err)
	}
}

// notification is what the test reads of a published notification.
type notification struct {
	id, from, to, node string
	fields             map[string][]string
	options            map[string][]string // nil: no publish-options
}

// notifications takes what was routed and reads each as a notification.
func (f *fixture) notifications(t *testing.T) []notification {
	t.Helper()
	var out []notification
	for _, st := range f.router.Take() {
		if st.Kind != xmpp.KindIQ || st.Type != xmpp.TypeSet {
			t.Fatalf("routed %s, want a notification", st.Bytes())
		}
		ps := st.El.Child("pubsub", NSPubSub)
		pub := ps.Child("publish", NSPubSub)
		x := pub.Child("item", NSPubSub).Child("notification", NS).Child("x", xmpp.NSData)
		n := notification{id: st.ID, from: st.From.String(), to: st.To.String(), node: pub.AttrValue("node"), fields: xmpp.FormValues(x)}
		if po := ps.Child("publish-options", NSPubSub); po != nil {
			n.options = xmpp.FormValues(po.Child("x", xmpp.NSData))
		}
		out = append(out, n)
	}
	return out
}

// answerIQ hands the module a service's answer; it reports whether the
// module took it.
func (f *fixture) answerIQ(t *testing.T, xml string) bool {
	t.Helper()
	return f.hooks.Inbound.Run(t.Context(), xmpptest.Stanza(t, xml))
}

const secretForm = "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s3cr3t</value></field></x>"

func TestEnableErrors(t *testing.T) {
	tests := []struct {
		name string
		iq   string
		cond stanza.Condition
	}{
		{"another account", "<iq type='set' id='1' from='eve@localhost/r' to='bob@localhost'><enable xmlns='urn:xmpp:push:0' jid='p.example' node='n'/></iq>", stanza.Forbidden},
		{"no jid", "<iq type='set' id='1' from='bob@localhost/r'><enable xmlns='urn:xmpp:push:0' node='n'/></iq>", stanza.BadRequest},
		{"empty jid", "<iq type='set' id='1' from='bob@localhost/r'><enable xmlns='urn:xmpp:push:0' jid='' node='n'/></iq>", stanza.BadRequest},
		{"bad jid", "<iq type='set' id='1' from='bob@localhost/r'><enable xmlns='urn:xmpp:push:0' jid='@p.example' node='n'/></iq>", stanza.JIDMalformed},
		{"node too long", "<iq type='set' id='1' from='bob@localhost/r'><enable xmlns='urn:xmpp:push:0' jid='p.example' node='" + strings.Repeat("n", store.MaxPushNode+1) + "'/></iq>", stanza.NotAcceptable},
		{"another form type", "<iq type='set' id='1' from='bob@localhost/r'><enable xmlns='urn:xmpp:push:0' jid='p.example'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></enable></iq>", stanza.BadRequest},
		{"form without a type", "<iq type='set' id='1' from='bob@localhost/r'><enable xmlns='urn:xmpp:push:0' jid='p.example'><x xmlns='jabber:x:data' type='submit'/></enable></iq>", stanza.BadRequest},
		{"two forms", "<iq type='set' id='1' from='bob@localhost/r'><enable xmlns='urn:xmpp:push:0' jid='p.example'>" + secretForm + secretForm + "</enable></iq>", stanza.BadRequest},
		{"form too big", "<iq type='set' id='1' from='bob@localhost/r'><enable xmlns='urn:xmpp:push:0' jid='p.example'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>" + strings.Repeat("s", maxOptionsBytes) + "</value></field></x></enable></iq>", stanza.NotAcceptable},
		// carol@localhost has no account.
		{"no such account", "<iq type='set' id='1' from='carol@localhost/r'><enable xmlns='urn:xmpp:push:0' jid='p.example' node='n'/></iq>", stanza.ItemNotFound},
		{"disable, another account", "<iq type='set' id='1' from='eve@localhost/r' to='bob@localhost'><disable xmlns='urn:xmpp:push:0' jid='p.example'/></iq>", stanza.Forbidden},
		{"disable, no jid", "<iq type='set' id='1' from='bob@localhost/r'><disable xmlns='urn:xmpp:push:0'/></iq>", stanza.BadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, Options{})
			res, err := f.iq(t, tc.iq)
			xmpptest.HandlerError(t, res, err, tc.cond)
			if got, _ := f.db.Push().List(t.Context(), bob.String()); len(got) != 0 {
				t.Errorf("stored %+v", got)
			}
		})
	}
}

// A message stored offline is notified to the service with its node, the
// enable's publish options and a placeholder body, from the server's
// domain; what arrives while it is in flight is published, counted, in
// one more when the service answers.
func TestNotifyOffline(t *testing.T) {
	f := newFixture(t, nil, Options{PlaceholderBody: "New message"})
	f.enable(t, "phone", "push.example.net", "node-1", secretForm)
	msg := func(body string) *xmpp.Stanza {
		return xmpptest.Stanza(t, "<message type='chat' from='alice@localhost/desk' to='bob@localhost'><body>"+body+"</body></message>")
	}
	f.hooks.OfflineStored.Run(t.Context(), msg("one"))
	got := f.notifications(t)
	want := []notification{{id: got[0].id, from: "localhost", to: "push.example.net", node: "node-1",
		fields:  map[string][]string{"FORM_TYPE": {FormSummary}, "message-count": {"1"}, "last-message-body": {"New message"}},
		options: map[string][]string{"FORM_TYPE": {FormPublishOptions}, "secret": {"s3cr3t"}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("notifications = %+v, want %+v", got, want)
	}
	first := got[0].id
	f.hooks.OfflineStored.Run(t.Context(), msg("two"))
	f.hooks.OfflineStored.Run(t.Context(), msg("three"))
	if got := f.notifications(t); len(got) != 0 {
		t.Fatalf("while one is in flight: %+v", got)
	}
	// An answer from another JID is not the service's.
	if f.answerIQ(t, "<iq type='result' id='"+first+"' from='eve@localhost' to='localhost'/>") {
		t.Error("an answer from another JID was taken")
	}
	if !f.answerIQ(t, "<iq type='result' id='"+first+"' from='push.example.net' to='localhost'/>") {
		t.Fatal("the service's answer was not taken")
	}
	got = f.notifications(t)
	if len(got) != 1 || !reflect.DeepEqual(got[0].fields["message-count"], []string{"2"}) || got[0].id == first {
		t.Fatalf("after the answer: %+v, want one notification of 2 messages", got)
	}
	// The same answer again is not taken.
	if f.answerIQ(t, "<iq type='result' id='"+first+"' from='push.example.net' to='localhost'/>") {
		t.Error("a second answer to one notification was taken")
	}
}

// Which deliveries notify: see delivered's and stored's documentation.
func TestNotifyWhich(t *testing.T) {
	const chat = "<message type='chat' from='alice@localhost/desk' to='bob@localhost'><body>hi</body></message>"
	const groupchat = "<message type='groupchat' from='room@conference.localhost/alice' to='bob@localhost/%s'><body>hi all</body></message>"
	const chatState = "<message type='chat' from='alice@localhost/desk' to='bob@localhost/phone'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
	tests := []struct {
		name      string
		resources map[string]bool // bound: name → not connected
		hook      string          // "offline", "delivered" (to the resources in to), "hibernated" or "ack delayed" (phone)
		msg       string
		to        []string
		want      bool
	}{
		{"offline, phone absent", nil, "offline", chat, nil, true},
		{"offline, phone hibernating", map[string]bool{"phone": true}, "offline", chat, nil, true},
		{"offline, phone connected", map[string]bool{"phone": false}, "offline", chat, nil, false},
		{"offline, chat state", nil, "offline", "<message type='chat' from='alice@localhost/desk' to='bob@localhost'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", nil, false},
		{"offline, blank body", nil, "offline", "<message type='chat' from='alice@localhost/desk' to='bob@localhost'><body> </body></message>", nil, false},
		{"offline, receipt", nil, "offline", "<message from='alice@localhost/desk' to='bob@localhost'><received xmlns='urn:xmpp:receipts' id='x'/></message>", nil, false},
		{"offline, OMEMO", nil, "offline", "<message type='chat' from='alice@localhost/desk' to='bob@localhost'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>", nil, true},
		{"offline, OMEMO 2", nil, "offline", "<message type='chat' from='alice@localhost/desk' to='bob@localhost'><encrypted xmlns='urn:xmpp:omemo:2'/></message>", nil, true},
		{"offline, invitation", nil, "offline", "<message from='alice@localhost/desk' to='bob@localhost'><x xmlns='jabber:x:conference' jid='room@conference.localhost'/></message>", nil, true},
		{"offline, mediated invitation", nil, "offline", "<message from='room@conference.localhost' to='bob@localhost'><x xmlns='http://jabber.org/protocol/muc#user'><invite from='alice@localhost'/></x></message>", nil, true},
		{"offline, call", nil, "offline", "<message from='alice@localhost/desk' to='bob@localhost'><propose xmlns='urn:xmpp:jingle-message:0' id='c'/></message>", nil, true},
		{"offline, call retracted", nil, "offline", "<message from='alice@localhost/desk' to='bob@localhost'><retract xmlns='urn:xmpp:jingle-message:0' id='c'/></message>", nil, false},
		{"offline, carbons exclusion", nil, "offline", "<message type='chat' from='alice@localhost/desk' to='bob@localhost'><body>hi</body><private xmlns='urn:xmpp:carbons:2'/></message>", nil, true},
		{"delivered elsewhere, phone absent", map[string]bool{"desk": false}, "delivered", chat, []string{"desk"}, true},
		{"delivered elsewhere, phone connected", map[string]bool{"desk": false, "phone": false}, "delivered", chat, []string{"desk"}, false},
		{"delivered elsewhere, phone hibernating", map[string]bool{"desk": false, "phone": true}, "delivered", chat, []string{"desk"}, true},
		{"delivered to the hibernating phone", map[string]bool{"phone": true}, "delivered", chat, []string{"phone"}, true},
		{"delivered, headline", map[string]bool{"desk": false}, "delivered", "<message type='headline' from='localhost' to='bob@localhost'><body>news</body></message>", []string{"desk"}, false},
		{"delivered, error", map[string]bool{"desk": false}, "delivered", "<message type='error' from='alice@localhost' to='bob@localhost'><body>hi</body></message>", []string{"desk"}, false},
		{"groupchat elsewhere, phone absent", map[string]bool{"desk": false}, "delivered", strings.Replace(groupchat, "%s", "desk", 1), []string{"desk"}, false},
		{"groupchat elsewhere, phone hibernating", map[string]bool{"desk": false, "phone": true}, "delivered", strings.Replace(groupchat, "%s", "desk", 1), []string{"desk"}, false},
		{"groupchat to the hibernating phone", map[string]bool{"phone": true}, "delivered", strings.Replace(groupchat, "%s", "phone", 1), []string{"phone"}, true},
		{"groupchat subject", map[string]bool{"phone": true}, "delivered", "<message type='groupchat' from='room@conference.localhost' to='bob@localhost/phone'><subject>topic</subject></message>", []string{"phone"}, false},
		{"received carbon", map[string]bool{"phone": true}, "hibernated", "<message from='bob@localhost' to='bob@localhost/phone'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' from='alice@localhost/desk' to='bob@localhost/desk'><body>hi</body></message></forwarded></received></message>", nil, true},
		{"sent carbon", map[string]bool{"phone": true}, "hibernated", "<message from='bob@localhost' to='bob@localhost/phone'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' from='bob@localhost/desk' to='alice@localhost'><body>hi</body></message></forwarded></sent></message>", nil, false},
		{"archive result", map[string]bool{"phone": true}, "hibernated", "<message from='bob@localhost' to='bob@localhost/phone'><result xmlns='urn:xmpp:mam:2' id='1'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' from='alice@localhost/desk'><body>old</body></message></forwarded></result></message>", nil, false},
		{"hibernated with a message", map[string]bool{"phone": true}, "hibernated", chat, nil, true},
		{"acknowledgement overdue with a message", map[string]bool{"phone": true}, "ack delayed", chat, nil, true},
		{"acknowledgement overdue with a chat state", map[string]bool{"phone": true}, "ack delayed", chatState, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, Options{})
			f.enable(t, "phone", "push.example.net", "n", "")
			f.sessions.set(tc.resources)
			st := xmpptest.Stanza(t, tc.msg)
			switch tc.hook {
			case "offline":
				f.hooks.OfflineStored.Run(t.Context(), st)
			case "delivered":
				var to []jid.JID
				for _, r := range tc.to {
					to = append(to, at(r))
				}
				f.hooks.Delivered.Run(t.Context(), xmpp.Delivery{Stanza: st, To: to})
			case "hibernated":
				phone := at("phone")
				f.hooks.Hibernated.Run(t.Context(), xmpp.Unreached{JID: phone, Pending: []*xmpp.Stanza{st}})
			case "ack delayed":
				phone := at("phone")
				f.hooks.AckDelayed.Run(t.Context(), xmpp.Unreached{JID: phone, Session: &fakeSession{full: phone, away: true}, Pending: []*xmpp.Stanza{st}})
			}
			if got := len(f.notifications(t)); got != map[bool]int{true: 1}[tc.want] {
				t.Errorf("%d notifications, want notified = %v", got, tc.want)
			}
		})
	}
}

// A hibernation counts the messages worth a notification among what its
// client did not get; the sender and body are sent only when allowed, the
// body cut to a preview.
func TestNotifyContent(t *testing.T) {
	// An odd number of bytes before two-byte characters: the cut falls
	// inside one.
	long := "a" + strings.Repeat("é", maxBodyBytes)
	tests := []struct {
		name string
		opts Options
		want map[string][]string
	}{
		{"nothing allowed", Options{}, map[string][]string{"FORM_TYPE": {FormSummary}, "message-count": {"2"}}},
		{"placeholder", Options{PlaceholderBody: "New message"}, map[string][]string{"FORM_TYPE": {FormSummary}, "message-count": {"2"}, "last-message-body": {"New message"}}},
		{"sender and body", Options{IncludeSender: true, IncludeBody: true, PlaceholderBody: "New message"},
			map[string][]string{"FORM_TYPE": {FormSummary}, "message-count": {"2"}, "last-message-sender": {"carol@localhost/pc"}, "last-message-body": {preview(long)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, tc.opts)
			f.enable(t, "phone", "push.example.net", "n", "")
			phone := at("phone")
			pending := []*xmpp.Stanza{
				xmpptest.Stanza(t, "<message type='chat' from='alice@localhost/desk' to='bob@localhost/phone'><body>first</body></message>"),
				xmpptest.Stanza(t, "<presence from='alice@localhost/desk' to='bob@localhost/phone'/>"),
				xmpptest.Stanza(t, "<message type='chat' from='alice@localhost/desk' to='bob@localhost/phone'><active xmlns='http://jabber.org/protocol/chatstates'/></message>"),
				xmpptest.Stanza(t, "<message type='chat' from='carol@localhost/pc' to='bob@localhost/phone'><body>"+long+"</body></message>"),
			}
			// Another resource's hibernation is not the phone's, nor
			// is one its client resumed already, nor an overdue
			// acknowledgement that came meanwhile.
			f.hooks.Hibernated.Run(t.Context(), xmpp.Unreached{JID: at("tablet"), Pending: pending})
			f.hooks.Hibernated.Run(t.Context(), xmpp.Unreached{JID: phone, Session: &fakeSession{full: phone}, Pending: pending})
			f.hooks.AckDelayed.Run(t.Context(), xmpp.Unreached{JID: phone, Session: &fakeSession{full: phone}, Pending: pending})
			if got := f.notifications(t); len(got) != 0 {
				t.Fatalf("notified %+v for another resource, a resumed session or an acknowledging client", got)
			}
			f.hooks.Hibernated.Run(t.Context(), xmpp.Unreached{JID: phone, Session: &fakeSession{full: phone, away: true}, Pending: pending})
			got := f.notifications(t)
			if len(got) != 1 || !reflect.DeepEqual(got[0].fields, tc.want) || got[0].options != nil {
				t.Errorf("notifications = %+v, want one with %v and no options", got, tc.want)
			}
		})
	}
	if p := preview(long); len(p) != maxBodyBytes-1+len("…") || !utf8.ValidString(p) || !strings.HasSuffix(p, "é…") {
		t.Errorf("preview of %d bytes = %d bytes ending %q", len(long), len(p), p[len(p)-5:])
	}
}

// The body of an encrypted message is a fallback text: the placeholder
// goes instead, even with IncludeBody.
func TestNotifyEncryptedBody(t *testing.T) {
	f := newFixture(t, nil, Options{IncludeBody: true, PlaceholderBody: "New message"})
	f.enable(t, "phone", "push.example.net", "n", "")
	var bodies []string
	for _, msg := range []string{
		"<message type='chat' from='alice@localhost/desk' to='bob@localhost'><body>I sent you an OMEMO encrypted message</body><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>",
		"<message type='chat' from='alice@localhost/desk' to='bob@localhost'><body>signed</body><x xmlns='jabber:x:encrypted'>...</x></message>",
		"<message type='chat' from='alice@localhost/desk' to='bob@localhost'><body>plain</body></message>",
	} {
		f.hooks.OfflineStored.Run(t.Context(), xmpptest.Stanza(t, msg))
		for _, n := range f.notifications(t) {
			bodies = append(bodies, n.fields["last-message-body"]...)
			f.answerIQ(t, "<iq type='result' id='"+n.id+"' from='push.example.net' to='localhost'/>")
		}
	}
	if want := []string{"New message", "New message", "plain"}; !reflect.DeepEqual(bodies, want) {
		t.Errorf("bodies %q, want %q", bodies, want)
	}
}

// A service answering MaxErrors notifications in a row with errors is
// disabled, in the store too; 'wait' errors do not count, and a success
// starts the count again (§7). One that does not answer in time counts.
func TestFailingServiceDisabled(t *testing.T) {
	f := newFixture(t, nil, Options{MaxErrors: 2, Timeout: 50 * time.Millisecond})
	f.enable(t, "phone", "push.example.net", "n", "")
	offline := func() {
		f.hooks.OfflineStored.Run(t.Context(), xmpptest.Stanza(t, "<message type='chat' from='alice@localhost/desk' to='bob@localhost'><body>hi</body></message>"))
	}
	errorAnswer := func(id, typ string) {
		t.Helper()
		if !f.answerIQ(t, "<iq type='error' id='"+id+"' from='push.example.net' to='localhost'><error type='"+typ+"'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>") {
			t.Fatal("answer not taken")
		}
	}
	one := func() string {
		t.Helper()
		offline()
		got := f.notifications(t)
		if len(got) != 1 {
			t.Fatalf("%d notifications, want 1", len(got))
		}
		return got[0].id
	}
	errorAnswer(one(), "cancel")                                                               // 1
	errorAnswer(one(), "wait")                                                                 // not counted
	f.answerIQ(t, "<iq type='result' id='"+one()+"' from='push.example.net' to='localhost'/>") // reset
	errorAnswer(one(), "cancel")                                                               // 1
	if got, _ := f.db.Push().List(t.Context(), bob.String()); len(got) != 1 {
		t.Fatalf("disabled too early: %+v", got)
	}
	one() // no answer: the timeout counts, 2
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := f.db.Push().List(t.Context(), bob.String())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still enabled after the timeout: %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	offline()
	if got := f.notifications(t); len(got) != 0 {
		t.Errorf("notified a disabled service: %+v", got)
	}
}

// Close waits for a failing service's removal from the store, forgets
// the notifications in flight (their timeouts never run: with MaxErrors
// 1, one would disable its service) and publishes nothing more.
func TestClose(t *testing.T) {
	const timeout = time.Second
	f := newFixture(t, nil, Options{MaxErrors: 1, Timeout: timeout})
	f.enable(t, "phone", "push.example.net", "n", "")
	f.enable(t, "tablet", "push.example.org", "n", "")
	offline := func() {
		f.hooks.OfflineStored.Run(t.Context(), xmpptest.Stanza(t, "<message type='chat' from='alice@localhost/desk' to='bob@localhost'><body>hi</body></message>"))
	}
	offline()
	got := f.notifications(t)
	if len(got) != 2 {
		t.Fatalf("%d notifications, want 2", len(got))
	}
	var failing string
	for _, n := range got {
		if n.to == "push.example.org" {
			failing = n.id
		}
	}
	if !f.answerIQ(t, "<iq type='error' id='"+failing+"' from='push.example.org' to='localhost'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>") {
		t.Fatal("answer not taken")
	}
	f.m.Close()
	list, err := f.db.Push().List(t.Context(), bob.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].JID != "push.example.net" {
		t.Fatalf("services after Close: %+v, want push.example.net's alone", list)
	}
	time.Sleep(timeout + 300*time.Millisecond)
	if list, _ := f.db.Push().List(t.Context(), bob.String()); len(list) != 1 {
		t.Fatalf("a timeout ran after Close: services %+v", list)
	}
	offline()
	if got := f.notifications(t); len(got) != 0 {
		t.Fatalf("published after Close: %+v", got)
	}
}

// Disabling one node, or every node of a JID (§5); the services of a
// restarted server are those stored; a removed account's are forgotten.
func TestDisableLoadRemove(t *testing.T) {
	db := xmpptest.OpenStore(t, bob)
	f := newFixture(t, db, Options{})
	f.enable(t, "phone", "push.example.net", "n1", secretForm)
	f.enable(t, "tablet", "push.example.net", "n2", "")
	f.enable(t, "laptop", "other.example.net", "n3", "")
	services := func(f *fixture) []string {
		t.Helper()
		f.hooks.OfflineStored.Run(t.Context(), xmpptest.Stanza(t, "<message type='chat' from='alice@localhost/desk' to='bob@localhost'><body>hi</body></message>"))
		var out []string
		for _, n := range f.notifications(t) {
			out = append(out, n.to+" "+n.node)
			f.answerIQ(t, "<iq type='result' id='"+n.id+"' from='"+n.to+"' to='localhost'/>")
		}
		return out
	}
	if got, want := services(f), []string{"push.example.net n1", "push.example.net n2", "other.example.net n3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("notified %v, want %v", got, want)
	}
	if _, err := f.iq(t, "<iq type='set' id='d' from='bob@localhost/phone'><disable xmlns='urn:xmpp:push:0' jid='push.example.net' node='n1'/></iq>"); err != nil {
		t.Fatal(err)
	}
	if got, want := services(f), []string{"push.example.net n2", "other.example.net n3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after disabling n1: %v, want %v", got, want)
	}
	// A restarted server notifies what is stored.
	g := newFixture(t, db, Options{})
	if got, want := services(g), []string{"push.example.net n2", "other.example.net n3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after a restart: %v, want %v", got, want)
	}
	if _, err := g.iq(t, "<iq type='set' id='d' from='bob@localhost/phone'><disable xmlns='urn:xmpp:push:0' jid='push.example.net'/></iq>"); err != nil {
		t.Fatal(err)
	}
	if got, want := services(g), []string{"other.example.net n3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after disabling every node of push.example.net: %v, want %v", got, want)
	}
	g.m.AccountRemoved(bob)
	if got := services(g); len(got) != 0 {
		t.Errorf("after the account's removal: %v", got)
	}
}

// Enabling beyond MaxPerAccount drops the oldest.
func TestMaxPerAccount(t *testing.T) {
	f := newFixture(t, nil, Options{MaxPerAccount: 2})
	for _, node := range []string{"n1", "n2", "n3"} {
		f.enable(t, "phone", "push.example.net", node, "")
	}
	f.hooks.OfflineStored.Run(t.Context(), xmpptest.Stanza(t, "<message type='chat' from='alice@localhost/desk' to='bob@localhost'><body>hi</body></message>"))
	var nodes []string
	for _, n := range f.notifications(t) {
		nodes = append(nodes, n.node)
	}
	if want := []string{"n2", "n3"}; !reflect.DeepEqual(nodes, want) {
		t.Errorf("notified nodes %v, want %v", nodes, want)
	}
}

// at is bob's resource name.
func at(name string) jid.JID { return jid.MustParse("bob@localhost/" + name) }
