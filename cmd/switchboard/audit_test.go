package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/server"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

const nsIQRegister = "jabber:iq:register"

// iq sends an IQ from c and returns its answer.
func iq(t *testing.T, c *servertest.Client, id, xml string) *wire.Element {
	t.Helper()
	if err := c.SendRaw(context.Background(), xml); err != nil {
		t.Fatal(err)
	}
	return c.Next(t, 5*time.Second, servertest.Named("iq", "id", id))
}

// TestAuditSelfService: what users do to their own accounts over XEP-0077
// — in-band registration, a password change, removing the account — is in
// the audit log with the user as actor, read with `switchboard audit`
// through the running server's admin socket and, once it stopped, from
// the data file; a refused registration is not.
func TestAuditSelfService(t *testing.T) {
	dir := t.TempDir()
	cfg := servertest.Config(dir)
	cfg.Listen.AdminSocket = filepath.Join(dir, "admin.sock")
	cfg.Hosts[0].Registration = true
	s := servertest.StartConfig(t, cfg)
	s.AddUser(t, "taken", "pw")

	// In-band registration (XEP-0077 §3.1), before authentication.
	r := s.DialRaw(t)
	r.Open(t, s.Domain)
	r.StartTLS(t, s.TLSConfig())
	r.Open(t, s.Domain)
	for _, reg := range []struct{ user, typ string }{{"Dave", "result"}, {"taken", "error"}} {
		r.Write(t, "<iq type='set' id='reg-"+reg.user+"'><query xmlns='"+nsIQRegister+"'><username>"+reg.user+"</username><password>pw1</password></query></iq>")
		el, err := r.Read()
		if err != nil || el.Name != "iq" || el.AttrValue("type") != reg.typ {
			t.Fatalf("registering %s: %v %v, want %s", reg.user, el, err, reg.typ)
		}
	}

	dave := jid.MustParse("dave@localhost")
	c := s.MustLogin(t, dave, "pw1", servertest.ClientOptions{Resource: "r"})
	if res := iq(t, c, "pw", "<iq type='set' id='pw'><query xmlns='"+nsIQRegister+"'><username>dave</username><password>pw2</password></query></iq>"); res.AttrValue("type") != "result" {
		t.Fatalf("password change: %s", res)
	}
	// A refused change (someone else's username) is not recorded.
	if res := iq(t, c, "pw-bad", "<iq type='set' id='pw-bad'><query xmlns='"+nsIQRegister+"'><username>taken</username><password>x</password></query></iq>"); res.AttrValue("type") != "error" {
		t.Fatalf("changing another user's password: %s", res)
	}
	c2 := s.MustLogin(t, dave, "pw2", servertest.ClientOptions{Resource: "r2"})
	if res := iq(t, c2, "rm", "<iq type='set' id='rm'><query xmlns='"+nsIQRegister+"'><remove/></query></iq>"); res.AttrValue("type") != "result" {
		t.Fatalf("account removal: %s", res)
	}
	c2.Closed(t, 5*time.Second)

	want := []string{
		"\tdave@localhost\tuser.add\tdave@localhost\tin-band registration (XEP-0077)",
		"\tdave@localhost\tuser.passwd\tdave@localhost\tpassword changed by the user (XEP-0077)",
		"\tdave@localhost\tuser.del\tdave@localhost\taccount removed by the user (XEP-0077)",
	}
	check := func(how, audit string) {
		t.Helper()
		at := -1
		for _, w := range want {
			i := strings.Index(audit, w)
			if i < 0 || i < at {
				t.Errorf("%s: audit log lacks %q after the previous entry:\n%s", how, w, audit)
			}
			at = i
		}
		if strings.Contains(audit, "\ttaken@localhost\tuser.add") || strings.Count(audit, "user.passwd") != 1 {
			t.Errorf("%s: a refused action is in the audit log:\n%s", how, audit)
		}
	}
	data := []string{"--data", dir}
	check("through the admin socket", mustRun(t, "", append(data, "audit")...))
	resp, err := server.AdminCall(t.Context(), cfg.AdminSocketPath(), server.AdminRequest{Command: server.CmdAuditList})
	if err != nil {
		t.Fatal(err)
	}
	check("admin socket call", strings.Join(resp.Result, "\n"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	check("from the data file", mustRun(t, "", append(data, "audit", "--since", "1d")...))
}
