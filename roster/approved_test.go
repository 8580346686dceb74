package roster

import (
	"context"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/xmpptest"
)

// approvalRouter routes into a recorder; example.com is the only host and
// its accounts have no sessions.
type approvalRouter struct{ xmpptest.Recorder }

func (*approvalRouter) Sessions(jid.JID) []xmpp.Resource { return nil }
func (*approvalRouter) SetInterested(jid.JID)            {}
func (*approvalRouter) IsLocal(d string) bool            { return d == "example.com" }
func (*approvalRouter) IsComponent(string) bool          { return false }

type everyoneExists struct{}

func (everyoneExists) Exists(context.Context, string, string) (bool, error) { return true, nil }

// The SubscriptionApproved hook runs once for each subscription the user
// approves (RFC 6121 §3.1.5) or whose pre-approval is taken up (§3.4), and
// for nothing else: a declined request, a repeated approval, a
// pre-approval given, a request from a contact already subscribed.
func TestSubscriptionApprovedHook(t *testing.T) {
	ctx := context.Background()
	// Requests are kept for accounts the store has.
	db := xmpptest.OpenStore(t, jid.MustParse("alice@example.com"))
	m, err := New(Options{}, Deps{Rosters: db.Rosters(), Requests: db.SubRequests(), Router: &approvalRouter{}, Users: everyoneExists{}})
	if err != nil {
		t.Fatal(err)
	}
	hooks := &xmpp.Hooks{}
	if err := m.Register(xmpp.NewRegistry(), hooks); err != nil {
		t.Fatal(err)
	}
	var got []string
	hooks.SubscriptionApproved.Add(func(_ context.Context, st *xmpp.Stanza) {
		got = append(got, st.Type+" "+st.From.String()+" → "+st.To.String())
	})

	alice := jid.MustParse("alice@example.com")
	// out sends a presence of type typ from the user's resource, in one
	// from the contact to the user.
	out := func(typ, to string) {
		t.Helper()
		m.userSend(ctx, xmpp.Build(xmpp.KindPresence, typ, "", jid.MustParse("alice@example.com/pc"), jid.MustParse(to)))
	}
	in := func(typ, from string) {
		t.Helper()
		m.presenceIn(ctx, xmpp.Build(xmpp.KindPresence, typ, "", jid.MustParse(from), alice))
	}
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"a request", func() { in(xmpp.TypeSubscribe, "bob@example.com") }, nil},
		{"declined", func() { out(xmpp.TypeUnsubscribed, "bob@example.com") }, nil},
		{"another request", func() { in(xmpp.TypeSubscribe, "carol@example.com") }, nil},
		{"approved", func() { out(xmpp.TypeSubscribed, "carol@example.com") },
			[]string{"subscribed alice@example.com → carol@example.com"}},
		{"approved again", func() { out(xmpp.TypeSubscribed, "carol@example.com") }, nil},
		{"asked again by a subscriber", func() { in(xmpp.TypeSubscribe, "carol@example.com") }, nil},
		{"a pre-approval given", func() { out(xmpp.TypeSubscribed, "dave@example.com") }, nil},
		{"the pre-approval taken up", func() { in(xmpp.TypeSubscribe, "dave@example.com") },
			[]string{"subscribed alice@example.com → dave@example.com"}},
		{"another server's contact approved", func() {
			in(xmpp.TypeSubscribe, "eve@other.example")
			out(xmpp.TypeSubscribed, "eve@other.example")
		}, []string{"subscribed alice@example.com → eve@other.example"}},
		{"a subscription to oneself", func() { out(xmpp.TypeSubscribed, "alice@example.com") }, nil},
	}
	for _, s := range steps {
		got = nil
		s.do()
		if len(got) != len(s.want) || len(got) > 0 && got[0] != s.want[0] {
			t.Errorf("%s: hook ran for %q, want %q", s.name, got, s.want)
		}
	}
}
