package router

import (
	"context"
	"slices"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
)

// TestUnacknowledged: what an ended session never acknowledged (XEP-0198
// §4) is treated as a stanza to a resource that is gone. alice's phone
// ended; her desk (priority 1) is available or not; carol sent the
// stanzas; offline storage takes messages or refuses them.
func TestUnacknowledged(t *testing.T) {
	const forwardedXML = `<message to='alice@example.org/phone'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='carol@example.org/c' to='alice@example.org/desk' type='chat'><body>x</body></message></forwarded></received></message>`
	for _, tc := range []struct {
		name    string
		from    string
		xml     string
		desk    bool // alice's desk is available
		offline bool // offline storage takes messages
		toDesk  int
		stored  int
		bounce  string // the error carol gets
	}{
		{"chat: to the available resource", "carol@example.org/c", `<message to='alice@example.org/phone' type='chat'><body>x</body></message>`, true, true, 1, 0, ""},
		{"chat: offline storage without one", "carol@example.org/c", `<message to='alice@example.org/phone' type='chat'><body>x</body></message>`, false, true, 0, 1, ""},
		{"normal to the bare JID: offline storage", "carol@example.org/c", `<message to='alice@example.org'><body>x</body></message>`, false, true, 0, 1, ""},
		{"chat: bounced when offline storage refuses", "carol@example.org/c", `<message to='alice@example.org/phone' type='chat'><body>x</body></message>`, false, false, 0, 0, "service-unavailable"},
		{"headline: dropped", "carol@example.org/c", `<message to='alice@example.org/phone' type='headline'><body>x</body></message>`, true, true, 0, 0, ""},
		{"groupchat: dropped", "carol@example.org/c", `<message to='alice@example.org/phone' type='groupchat'><body>x</body></message>`, false, true, 0, 0, ""},
		{"error: dropped", "carol@example.org/c", `<message to='alice@example.org/phone' type='error'><body>x</body></message>`, false, true, 0, 0, ""},
		{"carbon copy: dropped", "alice@example.org", forwardedXML, true, true, 0, 0, ""},
		{"forwarded from elsewhere: dropped", "carol@example.org/c", forwardedXML, false, true, 0, 0, ""},
		{"IQ request: service-unavailable", "carol@example.org/c", `<iq to='alice@example.org/phone' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>`, true, true, 0, 0, "service-unavailable"},
		{"IQ result: dropped", "carol@example.org/c", `<iq to='alice@example.org/phone' type='result' id='q'/>`, true, true, 0, 0, ""},
		{"chat state alone: dropped", "carol@example.org/c", `<message to='alice@example.org/phone' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/></message>`, true, true, 0, 0, ""},
		{"receipt: to the available resource", "carol@example.org/c", `<message to='alice@example.org/phone'><received xmlns='urn:xmpp:receipts' id='r'/></message>`, true, true, 1, 0, ""},
		{"presence: dropped", "carol@example.org/c", `<presence to='alice@example.org/phone'/>`, true, true, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			hooks := &xmpp.Hooks{}
			stored := 0
			hooks.Undeliverable.Add(func(_ context.Context, st *xmpp.Stanza) bool {
				if !st.To.Equal(jid.MustParse("alice@example.org")) {
					t.Errorf("stored for %s, want the bare JID", st.To)
				}
				if tc.offline {
					stored++
				}
				return tc.offline
			})
			r := newHookedRouter(t, Options{}, hooks)
			desk := bind(t, r, "alice@example.org/desk")
			carol := bind(t, r, "carol@example.org/c")
			if tc.desk {
				r.Route(ctx, stanzaFrom(t, "alice@example.org/desk", "<presence><priority>1</priority></presence>"))
			}
			desk.take()
			carol.take()

			st := stanzaFrom(t, tc.from, tc.xml)
			r.Unacknowledged(ctx, &recordingSession{full: jid.MustParse("alice@example.org/phone")}, []*xmpp.Stanza{st})

			if n := len(desk.take()); n != tc.toDesk {
				t.Errorf("desk got %d, want %d", n, tc.toDesk)
			}
			if stored != tc.stored {
				t.Errorf("stored %d, want %d", stored, tc.stored)
			}
			bounce := ""
			for _, b := range carol.take() {
				if c := errorCondition(b); c != "" {
					bounce = c
				}
			}
			if bounce != tc.bounce {
				t.Errorf("carol got error %q, want %q", bounce, tc.bounce)
			}
		})
	}
}

// hibernatingSession is a recording session waiting for a resumption.
type hibernatingSession struct{ recordingSession }

func (*hibernatingSession) Hibernating() bool { return true }

// TestBindReplacesHibernating: a session waiting for a resumption
// (XEP-0198) gives way to a new bind of its resource under every policy,
// and to a new resource at the session limit; a connected one does not.
func TestBindReplacesHibernating(t *testing.T) {
	alice := jid.MustParse("alice@example.org")
	for _, policy := range []string{ConflictRefuse, ConflictKickOld, ConflictRandom} {
		t.Run(policy, func(t *testing.T) {
			r := newTestRouter(t, Options{ResourceConflict: policy, MaxSessionsPerUser: 2})
			old := &hibernatingSession{recordingSession{full: jid.MustParse("alice@example.org/phone")}}
			if _, err := r.Bind(t.Context(), old, alice, "phone"); err != nil {
				t.Fatal(err)
			}
			got, err := r.Bind(t.Context(), &recordingSession{}, alice, "phone")
			if err != nil || got.Resourcepart() != "phone" {
				t.Fatalf("bind over a hibernating session: %s, %v", got, err)
			}
			if old.closed != "conflict" {
				t.Fatalf("the hibernating session was closed with %q, want conflict", old.closed)
			}
		})
	}
	r := newTestRouter(t, Options{ResourceConflict: ConflictRefuse, MaxSessionsPerUser: 2})
	bind(t, r, "alice@example.org/desk")
	old := &hibernatingSession{recordingSession{full: jid.MustParse("alice@example.org/phone")}}
	if _, err := r.Bind(t.Context(), old, alice, "phone"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Bind(t.Context(), &recordingSession{}, alice, "laptop"); err != nil {
		t.Fatalf("bind at the limit with a hibernating session: %v", err)
	}
	if old.closed != "conflict" {
		t.Fatalf("the hibernating session was closed with %q, want conflict", old.closed)
	}
	if _, err := r.Bind(t.Context(), &recordingSession{}, alice, "tablet"); err == nil {
		t.Fatal("bind over the limit of connected sessions succeeded")
	}
}

// TestRedeliverPassesOverFailed: a message the resource it went to did
// not take goes to the account's other resources, never back to that one
// though it is still bound and has the highest priority; a copy forwarded
// to it (an archive query result) and a chat state alone go nowhere, not
// to offline storage either. Redelivered, a message is addressed to the
// bare JID.
func TestRedeliverPassesOverFailed(t *testing.T) {
	const (
		chat      = `<message to='alice@example.org/phone' type='chat' id='c'><body>x</body></message>`
		result    = `<message to='alice@example.org/phone' id='r'><result xmlns='urn:xmpp:mam:2' id='1'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='carol@example.org/c'><body>old</body></message></forwarded></result></message>`
		chatState = `<message to='alice@example.org/phone' type='chat' id='s'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`
	)
	for _, tc := range []struct {
		name, from, xml string
		ended           bool // the phone's session ended (Unacknowledged), else it refuses (routed)
		toDesk          int
	}{
		{"ended: chat", "carol@example.org/c", chat, true, 1},
		{"ended: archive result", "alice@example.org", result, true, 0},
		{"refused: chat", "carol@example.org/c", chat, false, 1},
		{"refused: archive result", "alice@example.org", result, false, 0},
		{"refused: chat state", "carol@example.org/c", chatState, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			hooks := &xmpp.Hooks{}
			stored := 0
			hooks.Undeliverable.Add(func(context.Context, *xmpp.Stanza) bool { stored++; return true })
			r := newHookedRouter(t, Options{}, hooks)
			phone := bind(t, r, "alice@example.org/phone")
			desk := bind(t, r, "alice@example.org/desk")
			r.Route(ctx, stanzaFrom(t, "alice@example.org/phone", "<presence><priority>5</priority></presence>"))
			r.Route(ctx, stanzaFrom(t, "alice@example.org/desk", "<presence><priority>1</priority></presence>"))
			phone.take()
			desk.take()

			st := stanzaFrom(t, tc.from, tc.xml)
			if tc.ended {
				r.Unacknowledged(ctx, phone, []*xmpp.Stanza{st})
			} else {
				phone.mu.Lock()
				phone.full0 = true
				phone.mu.Unlock()
				r.Route(ctx, st)
			}
			if got := phone.take(); len(got) != 0 {
				t.Errorf("the phone got %d again", len(got))
			}
			got := desk.take()
			if len(got) != tc.toDesk {
				t.Fatalf("desk got %d, want %d", len(got), tc.toDesk)
			}
			if len(got) > 0 && got[0].To.String() != "alice@example.org" {
				t.Errorf("redelivered to %s, want the bare JID", got[0].To)
			}
			if stored != 0 {
				t.Errorf("stored %d offline with the desk online", stored)
			}
		})
	}
}

// TestUnacknowledgedReconnected: a device that reconnected under the same
// resource before its old session ended (kick_old replaces the session
// under the same full JID) gets what the old one never acknowledged, as
// the account's available resource with the highest priority; the old
// session gets nothing.
func TestUnacknowledgedReconnected(t *testing.T) {
	ctx := t.Context()
	hooks := &xmpp.Hooks{}
	stored := 0
	hooks.Undeliverable.Add(func(context.Context, *xmpp.Stanza) bool { stored++; return true })
	r := newHookedRouter(t, Options{ResourceConflict: ConflictKickOld}, hooks)
	alice := jid.MustParse("alice@example.org")
	old := &recordingSession{full: jid.MustParse("alice@example.org/phone")}
	if _, err := r.Bind(ctx, old, alice, "phone"); err != nil {
		t.Fatal(err)
	}
	phone := &recordingSession{full: jid.MustParse("alice@example.org/phone")}
	if full, err := r.Bind(ctx, phone, alice, "phone"); err != nil || !full.Equal(phone.full) {
		t.Fatalf("rebind: %s, %v", full, err)
	}
	r.Route(ctx, stanzaFrom(t, "alice@example.org/phone", "<presence/>"))
	old.take()
	phone.take()

	r.Unacknowledged(ctx, old, []*xmpp.Stanza{stanzaFrom(t, "carol@example.org/c", `<message to='alice@example.org/phone' type='chat' id='m'><body>x</body></message>`)})
	if got := phone.take(); len(got) != 1 || got[0].ID != "m" {
		t.Fatalf("the reconnected phone got %d, want the message", len(got))
	}
	if got := old.take(); len(got) != 0 {
		t.Errorf("the ended session got %d", len(got))
	}
	if stored != 0 {
		t.Errorf("stored %d offline with the phone online", stored)
	}
}

// TestUnacknowledgedLeaving: a session still bound while it hands over
// (a hibernation that ended: Leaving, then Unacknowledged) is no longer
// among the account's available resources: offline storage, storing what it hands over, does not find it
// (and would hand everything stored back to it), and a message routed to
// the account meanwhile is not given to it. Its unavailable presence is
// still broadcast when it unbinds.
func TestUnacknowledgedLeaving(t *testing.T) {
	ctx := t.Context()
	hooks := &xmpp.Hooks{}
	alice := jid.MustParse("alice@example.org")
	var r *Router
	var seen []bool // the phone's availability, as each message is stored
	hooks.Undeliverable.Add(func(context.Context, *xmpp.Stanza) bool {
		for _, res := range r.Sessions(alice) {
			seen = append(seen, res.Available)
		}
		return true
	})
	var broadcast []string
	hooks.PresenceBroadcast.Add(func(_ context.Context, st *xmpp.Stanza) {
		broadcast = append(broadcast, st.From.String()+" "+st.Type)
	})
	r = newHookedRouter(t, Options{}, hooks)
	phone := bind(t, r, "alice@example.org/phone")
	r.Route(ctx, stanzaFrom(t, "alice@example.org/phone", "<presence/>"))
	phone.take()
	broadcast = nil

	msg := func(id string) *xmpp.Stanza {
		return stanzaFrom(t, "carol@example.org/c", "<message to='alice@example.org/phone' type='chat' id='"+id+"'><body>x</body></message>")
	}
	r.Leaving(phone)
	r.Unacknowledged(ctx, phone, []*xmpp.Stanza{msg("m1"), msg("m2")})
	if !slices.Equal(seen, []bool{false, false}) {
		t.Fatalf("the phone's availability as each was stored: %v, want it bound and unavailable", seen)
	}
	r.Route(ctx, stanzaFrom(t, "carol@example.org/c", "<message to='alice@example.org' type='chat' id='m3'><body>y</body></message>"))
	if got := phone.take(); len(got) != 0 {
		t.Fatalf("the leaving phone got %d stanzas", len(got))
	}
	if len(seen) != 3 {
		t.Fatalf("m3 not stored offline: %v", seen)
	}
	r.Unbind(ctx, phone, phone.full)
	if want := []string{"alice@example.org/phone unavailable"}; !slices.Equal(broadcast, want) {
		t.Fatalf("broadcast %q, want %q", broadcast, want)
	}
}

// TestLeavingIgnoresPresence: what the client of a closing session
// (Leaving) sends before its transport closes does not make it available
// again, nor count as an initial presence, and its unavailable presence
// is broadcast once, when it unbinds.
func TestLeavingIgnoresPresence(t *testing.T) {
	ctx := t.Context()
	hooks := &xmpp.Hooks{}
	var broadcast, initial []string
	hooks.PresenceBroadcast.Add(func(_ context.Context, st *xmpp.Stanza) {
		broadcast = append(broadcast, st.From.String()+" "+st.Type)
	})
	hooks.InitialPresence.Add(func(_ context.Context, st *xmpp.Stanza) {
		initial = append(initial, st.From.String())
	})
	r := newHookedRouter(t, Options{}, hooks)
	alice := jid.MustParse("alice@example.org")
	phone := bind(t, r, "alice@example.org/phone")
	r.Route(ctx, stanzaFrom(t, "alice@example.org/phone", "<presence/>"))
	broadcast, initial = nil, nil

	r.Leaving(phone)
	r.Route(ctx, stanzaFrom(t, "alice@example.org/phone", "<presence><show>away</show></presence>"))
	r.Route(ctx, stanzaFrom(t, "alice@example.org/phone", "<presence type='unavailable'/>"))
	if len(broadcast) != 0 || len(initial) != 0 {
		t.Fatalf("presence of a closing session: broadcast %q, initial %q", broadcast, initial)
	}
	if res := r.Sessions(alice); len(res) != 1 || res[0].Available {
		t.Fatalf("sessions %+v, want the phone bound and not available", res)
	}
	r.Unbind(ctx, phone, phone.full)
	if want := []string{"alice@example.org/phone unavailable"}; !slices.Equal(broadcast, want) {
		t.Fatalf("broadcast %q, want %q", broadcast, want)
	}
}

// TestBindOverLeaving: a new bind of the resource of a session that is
// handing over (a hibernation that ended: the client failed to resume and
// binds again) replaces it whatever the conflict policy, and its
// unavailable presence is broadcast once, by the bind: the old session's
// Unbind no longer finds it.
func TestBindOverLeaving(t *testing.T) {
	ctx := t.Context()
	hooks := &xmpp.Hooks{}
	var broadcast []string
	hooks.PresenceBroadcast.Add(func(_ context.Context, st *xmpp.Stanza) {
		broadcast = append(broadcast, st.From.String()+" "+st.Type)
	})
	r := newHookedRouter(t, Options{ResourceConflict: ConflictRefuse, MaxSessionsPerUser: 1}, hooks)
	alice := jid.MustParse("alice@example.org")
	old := bind(t, r, "alice@example.org/phone")
	r.Route(ctx, stanzaFrom(t, "alice@example.org/phone", "<presence/>"))
	broadcast = nil
	r.Leaving(old)

	phone := &recordingSession{full: old.full}
	if full, err := r.Bind(ctx, phone, alice, "phone"); err != nil || !full.Equal(old.full) {
		t.Fatalf("bind over the leaving session: %s, %v", full, err)
	}
	if old.closed != "conflict" {
		t.Errorf("the leaving session was closed with %q, want conflict", old.closed)
	}
	r.Unbind(ctx, old, old.full)
	if want := []string{"alice@example.org/phone unavailable"}; !slices.Equal(broadcast, want) {
		t.Fatalf("broadcast %q, want %q", broadcast, want)
	}
	// At the session limit, another resource takes a leaving session's
	// place too.
	r.Route(ctx, stanzaFrom(t, "alice@example.org/phone", "<presence/>"))
	r.Leaving(phone)
	if _, err := r.Bind(ctx, &recordingSession{full: jid.MustParse("alice@example.org/desk")}, alice, "desk"); err != nil {
		t.Fatalf("bind at the session limit over a leaving session: %v", err)
	}
}

// TestUnacknowledgedAccountDeleted: what a session hands over after its
// account was deleted is stored for nobody, though the session is still
// bound (a hibernation that ended): its messages go back to the sender.
func TestUnacknowledgedAccountDeleted(t *testing.T) {
	ctx := t.Context()
	hooks := &xmpp.Hooks{}
	stored := 0
	hooks.Undeliverable.Add(func(context.Context, *xmpp.Stanza) bool { stored++; return true })
	users := accounts{"alice@example.org": true, "carol@example.org": true}
	r, err := New(Options{Hosts: []string{"example.org"}}, Deps{Registry: xmpp.NewRegistry(), Hooks: hooks, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	phone := bind(t, r, "alice@example.org/phone")
	carol := bind(t, r, "carol@example.org/c")
	r.Route(ctx, stanzaFrom(t, "alice@example.org/phone", "<presence/>"))
	delete(users, "alice@example.org")

	r.Unacknowledged(ctx, phone, []*xmpp.Stanza{stanzaFrom(t, "carol@example.org/c", `<message to='alice@example.org/phone' type='chat' id='m'><body>x</body></message>`)})
	if stored != 0 {
		t.Fatalf("stored %d for a deleted account", stored)
	}
	bounced := false
	for _, st := range carol.take() {
		bounced = bounced || errorCondition(st) == "service-unavailable"
	}
	if !bounced {
		t.Fatal("the sender got no service-unavailable")
	}
}

// TestUnacknowledgedOneTarget: what an ended session hands over goes to
// one place. The desk becomes available while the first message is being
// stored: the second is stored too, rather than delivered live ahead of
// the first (which offline storage hands the desk after it).
func TestUnacknowledgedOneTarget(t *testing.T) {
	ctx := t.Context()
	hooks := &xmpp.Hooks{}
	var r *Router
	var stored []string
	hooks.Undeliverable.Add(func(_ context.Context, st *xmpp.Stanza) bool {
		stored = append(stored, st.ID)
		if len(stored) == 1 {
			r.Route(ctx, stanzaFrom(t, "alice@example.org/desk", "<presence/>"))
		}
		return true
	})
	r = newHookedRouter(t, Options{}, hooks)
	desk := bind(t, r, "alice@example.org/desk")
	var sts []*xmpp.Stanza
	for _, id := range []string{"m1", "m2"} {
		sts = append(sts, stanzaFrom(t, "carol@example.org/c", "<message to='alice@example.org/phone' type='chat' id='"+id+"'><body>x</body></message>"))
	}
	r.Unacknowledged(ctx, &recordingSession{full: jid.MustParse("alice@example.org/phone")}, sts)
	if want := []string{"m1", "m2"}; !slices.Equal(stored, want) {
		t.Errorf("stored %v, want %v", stored, want)
	}
	for _, st := range desk.take() {
		if st.Kind == xmpp.KindMessage {
			t.Errorf("the desk got %s live", st.ID)
		}
	}
}
