package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// The router with fake sessions that record their outboxes (DESIGN §6,
// level 2): RFC 6121 §8.5 delivery rules, RFC 6120 §7.7.2.2 resource
// conflicts, session caps.

// recordingSession records what it is given.
type recordingSession struct {
	full   jid.JID
	mu     sync.Mutex
	got    []*xmpp.Stanza
	closed string // the stream error it was closed with
	full0  bool   // refuse deliveries (a full outbox)
}

func (s *recordingSession) JID() jid.JID { return s.full }

func (s *recordingSession) Deliver(st *xmpp.Stanza) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full0 {
		return false
	}
	s.got = append(s.got, st)
	return true
}

func (s *recordingSession) Close(cond, _ string) {
	s.mu.Lock()
	s.closed = cond
	s.mu.Unlock()
}

func (s *recordingSession) take() []*xmpp.Stanza {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.got
	s.got = nil
	return out
}

// accounts is a fixed user directory.
type accounts map[string]bool

func (a accounts) Exists(_ context.Context, host, local string) (bool, error) {
	if local == "broken" {
		return false, errors.New("directory down")
	}
	return a[local+"@"+host], nil
}

func newTestRouter(t *testing.T, opts Options) *Router {
	t.Helper()
	return newHookedRouter(t, opts, &xmpp.Hooks{})
}

// newHookedRouter is newTestRouter with the modules' hooks.
func newHookedRouter(t *testing.T, opts Options, hooks *xmpp.Hooks) *Router {
	t.Helper()
	opts.Hosts = []string{"example.org"}
	r, err := New(opts, Deps{Registry: xmpp.NewRegistry(), Hooks: hooks,
		Users: accounts{"alice@example.org": true, "bob@example.org": true, "carol@example.org": true}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// bind binds a recording session as full.
func bind(t *testing.T, r *Router, full string) *recordingSession {
	t.Helper()
	j := jid.MustParse(full)
	s := &recordingSession{full: j}
	got, err := r.Bind(t.Context(), s, j.Bare(), j.Resourcepart())
	if err != nil || !got.Equal(j) {
		t.Fatalf("bind %s: %s, %v", full, got, err)
	}
	return s
}

// stanzaFrom parses a stanza and stamps it as sent by from.
func stanzaFrom(t *testing.T, from, xml string) *xmpp.Stanza {
	t.Helper()
	el, err := wire.Parse([]byte(xml), wire.NewScope(wire.NSClient))
	if err != nil {
		t.Fatalf("%s: %v", xml, err)
	}
	st, err := xmpp.NewStanza(el)
	if err != nil {
		t.Fatalf("%s: %v", xml, err)
	}
	f := jid.MustParse(from)
	st.Stamp(f, f.String())
	return st
}

// errorCondition is the condition of an error stanza ("" if none).
func errorCondition(st *xmpp.Stanza) string {
	if st.Type != xmpp.TypeError {
		return ""
	}
	if e := st.El.Child("error", xmpp.NSClient); e != nil {
		for _, c := range e.Children {
			if c.Space == xmpp.NSStanzas && c.Name != "text" {
				return c.Name
			}
		}
	}
	return "?"
}

// TestRouteRFC6121 drives the delivery rules of RFC 6121 §8.5 with alice
// online on phone (priority 5), desk (priority 5 or 1) and bot (priority
// -1), bob existing but offline, nobody unknown; carol sends.
func TestRouteRFC6121(t *testing.T) {
	type want struct {
		phone, desk, bot int    // stanzas each alice resource receives
		bounce           string // the error condition carol gets, "" none
	}
	for _, tc := range []struct {
		name      string
		deskPrio  string
		xml       string
		want      want
		rfcClause string
	}{
		{"chat to bare: highest priority only", "1", `<message to='alice@example.org' type='chat'><body>x</body></message>`, want{1, 0, 0, ""}, "8.5.2.1.1"},
		{"chat to bare: every resource of the highest priority", "5", `<message to='alice@example.org' type='chat'><body>x</body></message>`, want{1, 1, 0, ""}, "8.5.2.1.1"},
		{"normal to bare", "1", `<message to='alice@example.org'><body>x</body></message>`, want{1, 0, 0, ""}, "8.5.2.1.1"},
		{"headline to bare: every non-negative resource", "1", `<message to='alice@example.org' type='headline'><body>x</body></message>`, want{1, 1, 0, ""}, "8.5.2.1.1"},
		{"groupchat to bare: error", "1", `<message to='alice@example.org' type='groupchat'><body>x</body></message>`, want{0, 0, 0, "service-unavailable"}, "8.5.2.1.1"},
		{"error to bare: ignored", "1", `<message to='alice@example.org' type='error'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, want{0, 0, 0, ""}, "8.5.2.1.1"},
		{"chat to a full JID", "1", `<message to='alice@example.org/desk' type='chat'><body>x</body></message>`, want{0, 1, 0, ""}, "8.5.3.1"},
		{"chat to a negative-priority resource by full JID", "1", `<message to='alice@example.org/bot' type='chat'><body>x</body></message>`, want{0, 0, 1, ""}, "8.5.3.1"},
		{"chat to an unknown resource: as to the bare JID", "1", `<message to='alice@example.org/gone' type='chat'><body>x</body></message>`, want{1, 0, 0, ""}, "8.5.3.2.1"},
		{"groupchat to an unknown resource: error", "1", `<message to='alice@example.org/gone' type='groupchat'><body>x</body></message>`, want{0, 0, 0, "service-unavailable"}, "8.5.3.2.1"},
		{"error to an unknown resource: ignored", "1", `<message to='alice@example.org/gone' type='error'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, want{0, 0, 0, ""}, "8.5.3.2.1"},
		{"IQ get to an unknown resource: error", "1", `<iq to='alice@example.org/gone' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>`, want{0, 0, 0, "service-unavailable"}, "8.5.3.2.1"},
		{"IQ result to an unknown resource: ignored", "1", `<iq to='alice@example.org/gone' type='result' id='q'/>`, want{0, 0, 0, ""}, "8.5.3.2.1"},
		{"IQ to a full JID", "1", `<iq to='alice@example.org/bot' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>`, want{0, 0, 1, ""}, "8.5.3.1"},
		{"IQ to the bare JID without a handler", "1", `<iq to='alice@example.org' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>`, want{0, 0, 0, "service-unavailable"}, "8.5.2.1.3"},
		{"IQ with two children", "1", `<iq to='alice@example.org' type='get' id='q'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>`, want{0, 0, 0, "bad-request"}, "RFC 6120 8.2.3"},
		{"directed presence to bare: every available resource", "1", `<presence to='alice@example.org'/>`, want{1, 1, 1, ""}, "8.5.2.1.2"},
		{"directed presence to an unknown resource: ignored", "1", `<presence to='alice@example.org/gone'/>`, want{0, 0, 0, ""}, "8.5.3.2.2"},
		{"probe: not delivered (the presence module's)", "1", `<presence to='alice@example.org/desk' type='probe'/>`, want{0, 0, 0, ""}, "8.5.3.1"},
		{"chat to an offline account: error without offline storage", "1", `<message to='bob@example.org' type='chat'><body>x</body></message>`, want{0, 0, 0, "service-unavailable"}, "8.5.2.2.1"},
		{"chat to an unknown account", "1", `<message to='nobody@example.org' type='chat'><body>x</body></message>`, want{0, 0, 0, "service-unavailable"}, "8.5.1"},
		{"IQ to an unknown account", "1", `<iq to='nobody@example.org' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>`, want{0, 0, 0, "service-unavailable"}, "8.5.1"},
		{"a directory failure is not an account", "1", `<message to='broken@example.org' type='chat'><body>x</body></message>`, want{0, 0, 0, "service-unavailable"}, "8.5.1"},
		{"to another domain: no federation", "1", `<message to='dave@elsewhere.example' type='chat'><body>x</body></message>`, want{0, 0, 0, "remote-server-not-found"}, "RFC 6120 10.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			r := newTestRouter(t, Options{})
			phone := bind(t, r, "alice@example.org/phone")
			desk := bind(t, r, "alice@example.org/desk")
			bot := bind(t, r, "alice@example.org/bot")
			carol := bind(t, r, "carol@example.org/c")
			for _, p := range []struct {
				s    *recordingSession
				prio string
			}{{phone, "5"}, {desk, tc.deskPrio}, {bot, "-1"}} {
				r.Route(ctx, stanzaFrom(t, p.s.full.String(), "<presence><priority>"+p.prio+"</priority></presence>"))
			}
			for _, s := range []*recordingSession{phone, desk, bot, carol} {
				s.take()
			}

			r.Route(ctx, stanzaFrom(t, "carol@example.org/c", tc.xml))

			got := want{len(phone.take()), len(desk.take()), len(bot.take()), ""}
			back := carol.take()
			for _, st := range back {
				if c := errorCondition(st); c != "" {
					got.bounce = c
				}
			}
			if got != tc.want {
				t.Fatalf("RFC 6121 §%s: got %+v, want %+v (carol got %d stanzas)", tc.rfcClause, got, tc.want, len(back))
			}
		})
	}
}

// TestBindConflicts: the three resource conflict policies of RFC 6120
// §7.7.2.2 and the cap on sessions per account.
func TestBindConflicts(t *testing.T) {
	alice := jid.MustParse("alice@example.org")
	for _, tc := range []struct {
		policy    string
		wantErr   stanza.Condition
		oldClosed string
		newSuffix bool // the new session got another resource
	}{
		{ConflictKickOld, "", "conflict", false},
		{ConflictRefuse, stanza.Conflict, "", false},
		{ConflictRandom, "", "", true},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			r := newTestRouter(t, Options{ResourceConflict: tc.policy})
			old := bind(t, r, "alice@example.org/desk")
			s := &recordingSession{}
			full, err := r.Bind(t.Context(), s, alice, "desk")
			if tc.wantErr != "" {
				if se := xmpp.AsStanzaError(err); err == nil || se.Condition != tc.wantErr {
					t.Fatalf("bind: %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if old.closed != tc.oldClosed {
				t.Fatalf("old session closed with %q, want %q", old.closed, tc.oldClosed)
			}
			if got := full.Resourcepart() != "desk"; got != tc.newSuffix {
				t.Fatalf("new resource %q", full.Resourcepart())
			}
			want := 1
			if tc.newSuffix {
				want = 2
			}
			if n := len(r.Resources(alice)); n != want || r.SessionCount() != want {
				t.Fatalf("%d resources, %d sessions counted, want %d", n, r.SessionCount(), want)
			}
		})
	}
	t.Run("cap", func(t *testing.T) {
		r := newTestRouter(t, Options{MaxSessionsPerUser: 2})
		bind(t, r, "alice@example.org/a")
		b := bind(t, r, "alice@example.org/b")
		if _, err := r.Bind(t.Context(), &recordingSession{}, alice, "c"); xmpp.AsStanzaError(err).Condition != stanza.ResourceConstraint {
			t.Fatalf("third session: %v, want resource-constraint", err)
		}
		r.Unbind(t.Context(), b, b.full)
		bind(t, r, "alice@example.org/c")
		if r.SessionCount() != 2 {
			t.Fatalf("%d sessions counted after unbind and bind", r.SessionCount())
		}
	})
}

// TestUnbindBroadcastsUnavailable: a session that ends while available
// has its unavailable presence sent to the account's other resources
// (RFC 6121 §4.5.2); one that never sent presence does not.
func TestUnbindBroadcastsUnavailable(t *testing.T) {
	ctx := t.Context()
	r := newTestRouter(t, Options{})
	phone := bind(t, r, "alice@example.org/phone")
	desk := bind(t, r, "alice@example.org/desk")
	silent := bind(t, r, "alice@example.org/silent")
	r.Route(ctx, stanzaFrom(t, phone.full.String(), "<presence/>"))
	r.Route(ctx, stanzaFrom(t, desk.full.String(), "<presence/>"))
	desk.take()

	r.Unbind(ctx, silent, silent.full)
	if got := desk.take(); len(got) != 0 {
		t.Fatalf("a session without presence ended: desk got %d stanzas", len(got))
	}
	r.Unbind(ctx, phone, phone.full)
	got := desk.take()
	if len(got) != 1 || got[0].Kind != xmpp.KindPresence || got[0].Type != xmpp.TypeUnavailable || !got[0].From.Equal(phone.full) {
		t.Fatalf("desk after phone's end: %v", stanzaStrings(got))
	}
	if res := r.Resources(phone.full.Bare()); slices.ContainsFunc(res, phone.full.Equal) {
		t.Fatalf("phone still bound: %v", res)
	}
}

// TestDeliverFailureBounces: an IQ to a full JID whose session refuses it
// (a full outbox, a session ending) is answered service-unavailable; a
// message goes where one to a resource that is gone would (RFC 6121
// §8.5.3.2.1): here, offline storage, without a second trip through
// MessageIn.
func TestDeliverFailureBounces(t *testing.T) {
	ctx := t.Context()
	hooks := &xmpp.Hooks{}
	var stored, seen int
	hooks.Undeliverable.Add(func(context.Context, *xmpp.Stanza) bool { stored++; return true })
	hooks.MessageIn.Add(func(_ context.Context, st *xmpp.Stanza) *xmpp.Stanza { seen++; return st })
	r := newHookedRouter(t, Options{}, hooks)
	desk := bind(t, r, "alice@example.org/desk")
	carol := bind(t, r, "carol@example.org/c")
	desk.full0 = true
	r.Route(ctx, stanzaFrom(t, "carol@example.org/c", `<iq to='alice@example.org/desk' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>`))
	r.Route(ctx, stanzaFrom(t, "carol@example.org/c", `<message to='alice@example.org/desk' type='chat'><body>x</body></message>`))
	got := carol.take()
	if len(got) != 1 || errorCondition(got[0]) != "service-unavailable" || got[0].Kind != xmpp.KindIQ {
		t.Fatalf("carol got %v, want one IQ error", stanzaStrings(got))
	}
	if stored != 1 || seen != 1 {
		t.Fatalf("message stored %d times, through MessageIn %d times; want 1 and 1", stored, seen)
	}
}

func stanzaStrings(sts []*xmpp.Stanza) []string {
	out := make([]string, 0, len(sts))
	for _, st := range sts {
		out = append(out, fmt.Sprintf("%s", st.Bytes()))
	}
	return out
}

// deferringSession is a recording session that can leave its writer to a
// Deferred; it records what came through DeliverDeferred.
type deferringSession struct {
	*recordingSession
	viaDeferred []*xmpp.Stanza
}

func (s *deferringSession) DeliverDeferred(st *xmpp.Stanza, d *xmpp.Deferred) bool {
	s.mu.Lock()
	s.viaDeferred = append(s.viaDeferred, st)
	s.mu.Unlock()
	if d == nil {
		panic("DeliverDeferred without a Deferred")
	}
	return s.Deliver(st)
}

func (s *deferringSession) Flush(bool) {}

// TestOnlyMessagesDeferred: with a Deferred in the routing context, the
// router defers the writer for messages only; presence and IQ routes may go
// on to commits after their delivery, so those are delivered at once.
func TestOnlyMessagesDeferred(t *testing.T) {
	r := newTestRouter(t, Options{})
	j := jid.MustParse("alice@example.org/desk")
	s := &deferringSession{recordingSession: &recordingSession{full: j}}
	if _, err := r.Bind(t.Context(), s, j.Bare(), j.Resourcepart()); err != nil {
		t.Fatal(err)
	}
	// Available (initial presence), so that a message to the bare JID
	// reaches this resource (RFC 6121 §8.5.2.1.1).
	r.Route(t.Context(), stanzaFrom(t, j.String(), "<presence/>"))
	s.take()
	var d xmpp.Deferred
	d.Open()
	defer d.Close(false)
	ctx := xmpp.WithDeferred(t.Context(), &d)
	for _, x := range []string{
		`<message to='alice@example.org/desk' type='chat' id='m'><body>x</body></message>`,
		`<presence to='alice@example.org/desk' id='p'/>`,
		`<iq to='alice@example.org/desk' type='get' id='i'><ping xmlns='urn:xmpp:ping'/></iq>`,
		// To the bare JID: the highest-priority resource's delivery.
		`<message to='alice@example.org' type='chat' id='mb'><body>x</body></message>`,
	} {
		r.Route(ctx, stanzaFrom(t, "carol@example.org/c", x))
	}
	if got := s.take(); len(got) != 4 {
		t.Fatalf("alice got %v, want the four stanzas", stanzaStrings(got))
	}
	if len(s.viaDeferred) != 2 || s.viaDeferred[0].ID != "m" || s.viaDeferred[1].ID != "mb" {
		t.Fatalf("deferred: %v, want the two messages only", stanzaStrings(s.viaDeferred))
	}
}
