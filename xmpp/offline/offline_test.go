package offline_test

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/offline"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

var (
	bob     = jid.MustParse("bob@localhost")
	bobRes  = jid.MustParse("bob@localhost/phone")
	alice   = jid.MustParse("alice@localhost/desk")
	fixedAt = time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
)

// fakeSessions is the session manager: a fixed list of resources.
type fakeSessions struct {
	mu  sync.Mutex
	res []xmpp.Resource
	// listed, if set, runs once, after a list of resources was made.
	listed func()
}

func (f *fakeSessions) Sessions(bare jid.JID) []xmpp.Resource {
	f.mu.Lock()
	var out []xmpp.Resource
	for _, r := range f.res {
		if r.JID.Bare().Equal(bare) {
			out = append(out, r)
		}
	}
	listed := f.listed
	f.listed = nil
	f.mu.Unlock()
	if listed != nil {
		listed()
	}
	return out
}

func (f *fakeSessions) SetInterested(jid.JID)      {}
func (f *fakeSessions) IsLocal(domain string) bool { return domain == "localhost" }

func (f *fakeSessions) set(res ...xmpp.Resource) {
	f.mu.Lock()
	f.res = res
	f.mu.Unlock()
}

// fakeSession records what it is given; it takes at most accept stanzas
// (negative: any number).
type fakeSession struct {
	full   jid.JID
	mu     sync.Mutex
	accept int
	got    []*xmpp.Stanza
	// refusing, if set, runs when the session first refuses a stanza.
	refusing func()
	// taking, if set, runs once, after the session took its first
	// stanza.
	taking func()
}

func (s *fakeSession) JID() jid.JID { return s.full }

func (s *fakeSession) Deliver(st *xmpp.Stanza) bool {
	s.mu.Lock()
	if s.accept >= 0 && len(s.got) >= s.accept {
		f := s.refusing
		s.refusing = nil
		s.mu.Unlock()
		if f != nil {
			f()
		}
		return false
	}
	s.got = append(s.got, st)
	f := s.taking
	s.taking = nil
	s.mu.Unlock()
	if f != nil {
		f()
	}
	return true
}

func (s *fakeSession) Close(string, string) {}

func (s *fakeSession) bodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, st := range s.got {
		out = append(out, st.El.ChildText("body", xmpp.NSClient))
	}
	return out
}

type fixture struct {
	hooks    *xmpp.Hooks
	store    *store.Offline
	sessions *fakeSessions
}

// newFixture returns the module registered with hooks over a real store;
// quota is the quota of every host (nil: the default).
func newFixture(t *testing.T, quota func(string) int) *fixture {
	t.Helper()
	// bob's account exists: messages put back (Restore) are kept only
	// for an account that exists.
	db := xmpptest.OpenStore(t, bob)
	f := &fixture{hooks: &xmpp.Hooks{}, store: db.Offline(), sessions: &fakeSessions{}}
	m, err := offline.New(offline.Options{Quota: quota, Now: func() time.Time { return fixedAt }}, f.store, f.sessions)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	if err := m.Register(xmpp.NewRegistry(), f.hooks); err != nil {
		t.Fatalf("register: %v", err)
	}
	return f
}

// stanza parses a stanza given as XML in jabber:client.
func stanza(t *testing.T, s string) *xmpp.Stanza {
	t.Helper()
	el, err := wire.Parse([]byte(s), wire.NewScope(wire.NSClient))
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	st, err := xmpp.NewStanza(el)
	if err != nil {
		t.Fatalf("stanza %s: %v", s, err)
	}
	return st
}

func chat(t *testing.T, body string) *xmpp.Stanza {
	t.Helper()
	return stanza(t, "<message type='chat' from='"+alice.String()+"' to='"+bob.String()+"'><body>"+body+"</body></message>")
}

func (f *fixture) count(t *testing.T) int {
	t.Helper()
	n, err := f.store.Count(t.Context(), bob.String())
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// presence runs the hooks the router runs for a broadcast presence of
// res, after recording it.
func (f *fixture) presence(t *testing.T, res xmpp.Resource, typ string) {
	t.Helper()
	if typ == "" {
		f.sessions.set(res)
	} else {
		f.sessions.set()
	}
	st := xmpp.Build(xmpp.KindPresence, typ, "", res.JID, jid.JID{})
	f.hooks.PresenceBroadcast.Run(t.Context(), st)
	if typ == "" {
		f.hooks.InitialPresence.Run(t.Context(), st)
	}
}

// TestStorable covers XEP-0160 §3 and XEP-0334 §4: what an undeliverable
// message leads to.
func TestStorable(t *testing.T) {
	const (
		from = "from='alice@localhost/desk' to='bob@localhost'"
	)
	cases := []struct {
		name     string
		xml      string
		consumed bool // the hook took it: stored, or dropped without a bounce
		stored   bool
	}{
		{"chat with body", "<message type='chat' " + from + "><body>hi</body></message>", true, true},
		{"normal with subject", "<message " + from + "><subject>s</subject></message>", true, true},
		{"chat state only", "<message type='chat' " + from + "><active xmlns='http://jabber.org/protocol/chatstates'/></message>", true, false},
		{"chat state and thread", "<message type='chat' " + from + "><composing xmlns='http://jabber.org/protocol/chatstates'/><thread>t1</thread></message>", true, false},
		{"receipt only", "<message " + from + "><received xmlns='urn:xmpp:receipts' id='x'/></message>", true, false},
		{"chat marker only", "<message " + from + "><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>", true, false},
		{"no-store with body", "<message type='chat' " + from + "><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>", true, false},
		{"no-permanent-store with body", "<message type='chat' " + from + "><body>secret</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>", true, true},
		{"no-permanent-store on a chat state", "<message type='chat' " + from + "><no-permanent-store xmlns='urn:xmpp:hints'/><paused xmlns='http://jabber.org/protocol/chatstates'/></message>", true, false},
		{"no-copy on a chat state", "<message type='chat' " + from + "><composing xmlns='http://jabber.org/protocol/chatstates'/><no-copy xmlns='urn:xmpp:hints'/></message>", true, false},
		{"store hint on a chat state", "<message type='chat' " + from + "><gone xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='urn:xmpp:hints'/></message>", true, true},
		{"presence", "<presence " + from + "/>", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			if got := f.hooks.Undeliverable.Run(t.Context(), stanza(t, tc.xml)); got != tc.consumed {
				t.Errorf("Undeliverable = %v, want %v", got, tc.consumed)
			}
			want := 0
			if tc.stored {
				want = 1
			}
			if n := f.count(t); n != want {
				t.Errorf("stored %d messages, want %d", n, want)
			}
		})
	}
}

// TestQuota: beyond the per-user quota the hook declines, so that the
// router bounces the message with service-unavailable (XEP-0160 §3).
func TestQuota(t *testing.T) {
	cases := []struct {
		name   string
		quota  int
		send   int
		stored int
	}{
		{"quota 1", 1, 3, 1},
		{"quota 3", 3, 5, 3},
		{"unlimited", -1, 5, 5},
		{"storage disabled", 0, 2, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(host string) int {
				if host != "localhost" {
					t.Errorf("quota asked for host %q", host)
				}
				return tc.quota
			})
			for i := range tc.send {
				got := f.hooks.Undeliverable.Run(t.Context(), chat(t, "m"+strconv.Itoa(i)))
				if want := i < tc.stored; got != want {
					t.Fatalf("message %d: Undeliverable = %v, want %v", i, got, want)
				}
			}
			if n := f.count(t); n != tc.stored {
				t.Fatalf("stored %d, want %d", n, tc.stored)
			}
			// Delivery frees the quota.
			sess := &fakeSession{full: bobRes, accept: -1}
			f.presence(t, xmpp.Resource{JID: bobRes, Available: true, Session: sess}, "")
			if got := len(sess.bodies()); got != tc.stored {
				t.Fatalf("delivered %d, want %d", got, tc.stored)
			}
			f.sessions.set()
			if got := f.hooks.Undeliverable.Run(t.Context(), chat(t, "after delivery")); got != (tc.quota != 0) {
				t.Fatalf("message after delivery: Undeliverable = %v", got)
			}
		})
	}
}

// TestDeliver covers XEP-0160 §3 with XEP-0203: stored messages go, oldest
// first and stamped, to a resource available with a non-negative priority,
// whether by its initial presence or a later one that raised its priority;
// not to one with a negative priority, nor on unavailable presence.
func TestDeliver(t *testing.T) {
	f := newFixture(t, nil)
	for _, b := range []string{"one", "two", "three"} {
		if !f.hooks.Undeliverable.Run(t.Context(), chat(t, b)) {
			t.Fatalf("message %q not stored", b)
		}
	}
	sess := &fakeSession{full: bobRes, accept: -1}

	f.presence(t, xmpp.Resource{JID: bobRes, Available: true, Priority: -1, Session: sess}, "")
	if got := sess.bodies(); len(got) != 0 {
		t.Fatalf("negative priority: delivered %q", got)
	}
	f.presence(t, xmpp.Resource{JID: bobRes, Session: sess}, xmpp.TypeUnavailable)
	if got := sess.bodies(); len(got) != 0 {
		t.Fatalf("unavailable: delivered %q", got)
	}
	// A later presence raises the priority (not an initial presence:
	// only PresenceBroadcast runs).
	f.sessions.set(xmpp.Resource{JID: bobRes, Available: true, Priority: 0, Session: sess})
	f.hooks.PresenceBroadcast.Run(t.Context(), xmpp.Build(xmpp.KindPresence, "", "", bobRes, jid.JID{}))
	if got, want := sess.bodies(), []string{"one", "two", "three"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	for _, st := range sess.got {
		d := st.El.Child("delay", offline.NSDelay)
		if d == nil {
			t.Fatalf("no delay in %s", st.El)
		}
		stamp, err := time.Parse(time.RFC3339, d.AttrValue("stamp"))
		if err != nil || !stamp.Equal(fixedAt) || d.AttrValue("from") != "localhost" {
			t.Errorf("delay = %s (stamp %v, %v), want from localhost at %v", d, stamp, err, fixedAt)
		}
		if !st.From.Equal(alice) || !st.To.Equal(bob) {
			t.Errorf("delivered from %s to %s", st.From, st.To)
		}
	}
	if n := f.count(t); n != 0 {
		t.Fatalf("%d messages left after delivery", n)
	}
	f.hooks.PresenceBroadcast.Run(t.Context(), xmpp.Build(xmpp.KindPresence, "", "", bobRes, jid.JID{}))
	if n := len(sess.bodies()); n != 3 {
		t.Fatalf("second presence: %d messages delivered in all, want 3", n)
	}
}

// TestDeliverSessionGone: what a closing session cannot take stays stored,
// in order, before a message stored while it was being delivered.
func TestDeliverSessionGone(t *testing.T) {
	f := newFixture(t, nil)
	for _, b := range []string{"one", "two", "three"} {
		f.hooks.Undeliverable.Run(t.Context(), chat(t, b))
	}
	sess := &fakeSession{full: bobRes, accept: 1}
	sess.refusing = func() {
		// The session is gone; a message for it is stored meanwhile.
		f.sessions.set()
		if !f.hooks.Undeliverable.Run(t.Context(), chat(t, "four")) {
			t.Error("message four not stored")
		}
	}
	f.presence(t, xmpp.Resource{JID: bobRes, Available: true, Session: sess}, "")
	if got := sess.bodies(); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("delivered %q, want [one]", got)
	}
	next := &fakeSession{full: bobRes, accept: -1}
	f.presence(t, xmpp.Resource{JID: bobRes, Available: true, Session: next}, "")
	if got, want := next.bodies(), []string{"two", "three", "four"}; !slices.Equal(got, want) {
		t.Fatalf("next session got %q, want %q", got, want)
	}
}

// TestDeliverSessionGoneOtherResource: a resource that becomes available
// while another's delivery has taken the stored messages finds nothing
// stored; what the other then cannot take goes to it at once, not at its
// next presence.
func TestDeliverSessionGoneOtherResource(t *testing.T) {
	f := newFixture(t, nil)
	for _, b := range []string{"one", "two", "three"} {
		f.hooks.Undeliverable.Run(t.Context(), chat(t, b))
	}
	deskRes := jid.MustParse("bob@localhost/desk")
	phone := &fakeSession{full: bobRes, accept: 1}
	desk := &fakeSession{full: deskRes, accept: -1}
	phoneAvail := xmpp.Resource{JID: bobRes, Available: true, Session: phone}
	deskAvail := xmpp.Resource{JID: deskRes, Available: true, Session: desk}
	phone.refusing = func() {
		// The desk comes online while the phone's delivery holds
		// the messages; the phone, going away, is still listed.
		f.sessions.set(phoneAvail, deskAvail)
		f.hooks.PresenceBroadcast.Run(t.Context(), xmpp.Build(xmpp.KindPresence, "", "", deskRes, jid.JID{}))
	}
	f.presence(t, phoneAvail, "")
	if got := phone.bodies(); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("phone got %q, want [one]", got)
	}
	if got, want := desk.bodies(), []string{"two", "three"}; !slices.Equal(got, want) {
		t.Fatalf("desk got %q, want %q", got, want)
	}
	if n := f.count(t); n != 0 {
		t.Fatalf("%d messages left stored", n)
	}
}

// TestDeliverOneAtATime: a message stored while the account's stored
// messages are being delivered (the router found no available resource
// just before the one being delivered to became available) comes after
// them, not in their midst.
func TestDeliverOneAtATime(t *testing.T) {
	f := newFixture(t, nil)
	for _, b := range []string{"one", "two", "three"} {
		f.hooks.Undeliverable.Run(t.Context(), chat(t, b))
	}
	sess := &fakeSession{full: bobRes, accept: -1}
	avail := xmpp.Resource{JID: bobRes, Available: true, Session: sess}
	sess.taking = func() {
		// Stored by another goroutine (the sender's), which returns
		// while the delivery is in progress.
		done := make(chan bool)
		go func() { done <- f.hooks.Undeliverable.Run(t.Context(), chat(t, "four")) }()
		if !<-done {
			t.Error("message four not stored")
		}
	}
	f.presence(t, avail, "")
	if got, want := sess.bodies(), []string{"one", "two", "three", "four"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	if n := f.count(t); n != 0 {
		t.Fatalf("%d messages left stored", n)
	}
}

// TestDeliverWhileTaken: a resource that becomes available while a
// delivery holds the stored messages (taken, refused by one session, then
// by the next it tried) gets them when that delivery ends, not at its own
// next presence.
func TestDeliverWhileTaken(t *testing.T) {
	f := newFixture(t, nil)
	for _, b := range []string{"one", "two", "three"} {
		f.hooks.Undeliverable.Run(t.Context(), chat(t, b))
	}
	res := func(name string, s *fakeSession) xmpp.Resource {
		return xmpp.Resource{JID: jid.MustParse("bob@localhost/" + name), Available: true, Session: s}
	}
	phone := &fakeSession{full: bobRes, accept: 0}
	desk := &fakeSession{full: jid.MustParse("bob@localhost/desk"), accept: 1}
	laptop := &fakeSession{full: jid.MustParse("bob@localhost/laptop"), accept: -1}
	desk.refusing = func() {
		f.sessions.set(res("phone", phone), res("desk", desk), res("laptop", laptop))
		f.hooks.PresenceBroadcast.Run(t.Context(), xmpp.Build(xmpp.KindPresence, "", "", laptop.full, jid.JID{}))
	}
	f.sessions.set(res("phone", phone), res("desk", desk))
	f.hooks.PresenceBroadcast.Run(t.Context(), xmpp.Build(xmpp.KindPresence, "", "", bobRes, jid.JID{}))
	if got := desk.bodies(); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("desk got %q, want [one]", got)
	}
	if got, want := laptop.bodies(), []string{"two", "three"}; !slices.Equal(got, want) {
		t.Fatalf("laptop got %q, want %q", got, want)
	}
	if n := f.count(t); n != 0 {
		t.Fatalf("%d messages left stored", n)
	}
}

// TestDeliverPendingGone: a resource that asked for the stored messages
// while a delivery ran, and has since gone unavailable, is not given them
// when that delivery ends; the account's best available resource is.
func TestDeliverPendingGone(t *testing.T) {
	f := newFixture(t, nil)
	for _, b := range []string{"one", "two"} {
		f.hooks.Undeliverable.Run(t.Context(), chat(t, b))
	}
	laptopRes := jid.MustParse("bob@localhost/laptop")
	phone := &fakeSession{full: bobRes, accept: -1}
	laptop := &fakeSession{full: laptopRes, accept: -1}
	phoneAvail := xmpp.Resource{JID: bobRes, Available: true, Session: phone}
	phone.taking = func() {
		f.sessions.set(phoneAvail, xmpp.Resource{JID: laptopRes, Available: true, Session: laptop})
		f.hooks.PresenceBroadcast.Run(t.Context(), xmpp.Build(xmpp.KindPresence, "", "", laptopRes, jid.JID{}))
		// The laptop goes unavailable (still bound); a message is
		// stored meanwhile.
		f.sessions.set(phoneAvail, xmpp.Resource{JID: laptopRes, Session: laptop})
		if _, err := f.store.Put(t.Context(), bob.String(), chat(t, "three").Bytes(), fixedAt, 10); err != nil {
			t.Errorf("put: %v", err)
		}
	}
	f.presence(t, phoneAvail, "")
	if got := laptop.bodies(); len(got) != 0 {
		t.Fatalf("the unavailable laptop got %q", got)
	}
	if got, want := phone.bodies(), []string{"one", "two", "three"}; !slices.Equal(got, want) {
		t.Fatalf("phone got %q, want %q", got, want)
	}
}

// TestDeliverPendingGoneThenAnother: a delivery that finds the resource
// that asked meanwhile gone, and none other available, still serves a
// resource that became available in that moment.
func TestDeliverPendingGoneThenAnother(t *testing.T) {
	f := newFixture(t, nil)
	f.hooks.Undeliverable.Run(t.Context(), chat(t, "one"))
	laptopRes := jid.MustParse("bob@localhost/laptop")
	deskRes := jid.MustParse("bob@localhost/desk")
	phone := &fakeSession{full: bobRes, accept: -1}
	laptop := &fakeSession{full: laptopRes, accept: -1}
	desk := &fakeSession{full: deskRes, accept: -1}
	phone.taking = func() {
		f.sessions.set(xmpp.Resource{JID: bobRes, Available: true, Session: phone}, xmpp.Resource{JID: laptopRes, Available: true, Session: laptop})
		f.hooks.PresenceBroadcast.Run(t.Context(), xmpp.Build(xmpp.KindPresence, "", "", laptopRes, jid.JID{}))
		// Both go unavailable; a message is stored meanwhile.
		f.sessions.set(xmpp.Resource{JID: bobRes, Session: phone}, xmpp.Resource{JID: laptopRes, Session: laptop})
		if _, err := f.store.Put(t.Context(), bob.String(), chat(t, "two").Bytes(), fixedAt, 10); err != nil {
			t.Errorf("put: %v", err)
		}
		// The desk comes online just after the delivery found no
		// available resource.
		f.sessions.mu.Lock()
		f.sessions.listed = func() {
			f.sessions.set(xmpp.Resource{JID: bobRes, Session: phone}, xmpp.Resource{JID: laptopRes, Session: laptop},
				xmpp.Resource{JID: deskRes, Available: true, Session: desk})
			f.hooks.PresenceBroadcast.Run(t.Context(), xmpp.Build(xmpp.KindPresence, "", "", deskRes, jid.JID{}))
		}
		f.sessions.mu.Unlock()
	}
	f.presence(t, xmpp.Resource{JID: bobRes, Available: true, Session: phone}, "")
	if got := laptop.bodies(); len(got) != 0 {
		t.Fatalf("the unavailable laptop got %q", got)
	}
	if got, want := desk.bodies(), []string{"two"}; !slices.Equal(got, want) {
		t.Fatalf("desk got %q, want %q", got, want)
	}
	if n := f.count(t); n != 0 {
		t.Fatalf("%d messages left stored", n)
	}
}

// TestStoreWhileBecomingAvailable: a message the router found no resource
// for, stored after a resource became available (and found nothing to
// deliver), is delivered at once rather than at the next presence.
func TestStoreWhileBecomingAvailable(t *testing.T) {
	f := newFixture(t, nil)
	sess := &fakeSession{full: bobRes, accept: -1}
	f.presence(t, xmpp.Resource{JID: bobRes, Available: true, Session: sess}, "")
	if !f.hooks.Undeliverable.Run(t.Context(), chat(t, "late")) {
		t.Fatal("message not taken")
	}
	if got := sess.bodies(); !slices.Equal(got, []string{"late"}) {
		t.Fatalf("delivered %q, want [late]", got)
	}
	if n := f.count(t); n != 0 {
		t.Fatalf("%d messages left stored", n)
	}
}

var _ xmpp.Session = (*fakeSession)(nil)
var _ offline.Sessions = (*fakeSessions)(nil)
