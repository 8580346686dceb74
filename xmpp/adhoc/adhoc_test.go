package adhoc

import (
	"context"
	"fmt"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// testModule returns the module with one command of one form, node
// "cmd", and a clock the test moves.
func testModule(t *testing.T) (*Module, *time.Time) {
	t.Helper()
	reg := xmpp.NewRegistry()
	err := reg.AddCommand(xmpp.Command{
		Node: "cmd", Name: "Command",
		Form: func(context.Context, *xmpp.Stanza) *wire.Element {
			return wire.New("x", NSData, wire.Attr{Name: "type", Value: "form"})
		},
		Run: func(context.Context, *xmpp.Stanza, map[string][]string) (string, error) { return "done", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	m := New()
	if err := m.Register(reg, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m.now = func() time.Time { return now }
	return m, &now
}

// stage sends one command stage from from and returns the answer's
// command element, or the app condition of its error.
func stage(t *testing.T, m *Module, from, sessionid string, submit bool) (status, id, app string) {
	t.Helper()
	c := wire.New("command", xmpp.NSCommands, wire.Attr{Name: "node", Value: "cmd"})
	if sessionid != "" {
		c.Attrs = append(c.Attrs, wire.Attr{Name: "sessionid", Value: sessionid})
	}
	if submit {
		c.AddChild(wire.New("x", NSData, wire.Attr{Name: "type", Value: "submit"}))
	}
	return answer(t, m, xmpp.Build(xmpp.KindIQ, xmpp.TypeSet, "1", jid.MustParse(from), jid.MustParse("localhost"), c))
}

// answer executes st and returns the answer's status and sessionid, or
// the app condition of its error.
func answer(t *testing.T, m *Module, st *xmpp.Stanza) (status, id, app string) {
	t.Helper()
	res, err := m.execute(t.Context(), st)
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	if res.Type == xmpp.TypeError {
		for _, e := range res.El.Children {
			if e.Name == "error" {
				for _, ch := range e.Children {
					if ch.Space == xmpp.NSCommands {
						return "", "", ch.Name
					}
				}
			}
		}
		t.Fatalf("error without an application condition: %s", res.El)
	}
	cmd := res.Payload()
	return cmd.AttrValue("status"), cmd.AttrValue("sessionid"), ""
}

// XEP-0050 §4.4: a session left open longer than SessionLifetime (since
// its form was last asked for) is expired (session-expired), and then
// gone (bad-sessionid); a cancel of an expired session is no error.
func TestSessionExpires(t *testing.T) {
	m, now := testModule(t)
	const alice = "alice@localhost/desk"
	_, id, _ := stage(t, m, alice, "", false)
	*now = now.Add(SessionLifetime - time.Second)
	if status, got, app := stage(t, m, alice, id, false); status != "executing" || got != id {
		t.Fatalf("form again before expiry: %q %q %q, want executing in the same session", status, got, app)
	}
	*now = now.Add(SessionLifetime - time.Second)
	if status, _, app := stage(t, m, alice, id, true); status != "completed" {
		t.Fatalf("submission within the renewed lifetime: %q %q, want completed", status, app)
	}
	_, id, _ = stage(t, m, alice, "", false)
	*now = now.Add(SessionLifetime + time.Second)
	if _, _, app := stage(t, m, alice, id, true); app != "session-expired" {
		t.Fatalf("submission after expiry: app condition %q, want session-expired", app)
	}
	if _, _, app := stage(t, m, alice, id, true); app != "bad-sessionid" {
		t.Fatalf("submission after the expiry was answered: %q, want bad-sessionid", app)
	}
	_, id, _ = stage(t, m, alice, "", false)
	*now = now.Add(SessionLifetime + time.Second)
	if status, got, app := cancel(t, m, alice, id); status != "canceled" || got != id {
		t.Fatalf("cancel after expiry: %q %q %q, want canceled", status, got, app)
	}
}

// cancel sends a cancel of session id from from.
func cancel(t *testing.T, m *Module, from, id string) (status, sessionid, app string) {
	t.Helper()
	c := wire.New("command", xmpp.NSCommands, wire.Attr{Name: "node", Value: "cmd"},
		wire.Attr{Name: "sessionid", Value: id}, wire.Attr{Name: "action", Value: "cancel"})
	return answer(t, m, xmpp.Build(xmpp.KindIQ, xmpp.TypeSet, "1", jid.MustParse(from), jid.MustParse("localhost"), c))
}

// One account keeps at most MaxSessionsPerUser sessions over all its
// resources: opening one more closes its oldest, and leaves other
// accounts' alone.
func TestSessionsPerUser(t *testing.T) {
	m, now := testModule(t)
	const bob = "bob@localhost/pc"
	_, bobs, _ := stage(t, m, bob, "", false)
	ids := make([]string, MaxSessionsPerUser+1)
	from := make([]string, len(ids))
	for i := range ids {
		*now = now.Add(time.Second)
		from[i] = fmt.Sprintf("alice@localhost/r%d", i)
		_, ids[i], _ = stage(t, m, from[i], "", false)
	}
	if _, _, app := stage(t, m, from[0], ids[0], true); app != "bad-sessionid" {
		t.Errorf("alice's oldest session: %q, want bad-sessionid (closed)", app)
	}
	for i, id := range ids[1:] {
		if status, _, app := stage(t, m, from[i+1], id, true); status != "completed" {
			t.Errorf("alice's session %d: %q %q, want completed", i+1, status, app)
		}
	}
	if status, _, app := stage(t, m, bob, bobs, true); status != "completed" {
		t.Errorf("bob's session: %q %q, want completed", status, app)
	}
	if n := len(m.sessions); n != 0 {
		t.Errorf("%d sessions left open, want none", n)
	}
}

// Beyond MaxSessions open sessions, a new one closes the oldest of all:
// nobody is locked out.
func TestSessionsBounded(t *testing.T) {
	m, now := testModule(t)
	for i := range MaxSessions {
		m.sessions[fmt.Sprint(i)] = session{requester: jid.MustParse(fmt.Sprintf("u%d@localhost/r", i)), node: "cmd", opened: now.Add(time.Duration(i) * time.Millisecond)}
	}
	*now = now.Add(time.Second)
	if status, _, app := stage(t, m, "alice@localhost/desk", "", false); status != "executing" {
		t.Fatalf("a session beyond the bound: %q %q, want executing", status, app)
	}
	if _, ok := m.sessions["0"]; ok || len(m.sessions) != MaxSessions {
		t.Errorf("%d sessions, the oldest kept %v; want %d without the oldest", len(m.sessions), ok, MaxSessions)
	}
}
