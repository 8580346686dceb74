package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// startWithSocket starts a server with its admin socket, creates the
// accounts through it (password "pw") and returns the server and the
// CLI's --data arguments.
func startWithSocket(t *testing.T, accounts ...string) (*servertest.Server, []string) {
	t.Helper()
	dir := t.TempDir()
	cfg := servertest.Config(dir)
	cfg.Listen.AdminSocket = filepath.Join(dir, "admin.sock")
	s := servertest.StartConfig(t, cfg)
	data := []string{"--data", dir}
	for _, a := range accounts {
		mustRun(t, "", append(data, "user", "add", a, "--password", "pw")...)
	}
	return s, data
}

// TestHistoryExportAndAudit: archived messages stream out as JSON Lines
// and CSV through a running server's admin socket, and then from the data
// file with the server stopped; every admin action is in the audit log.
func TestHistoryExportAndAudit(t *testing.T) {
	s, data := startWithSocket(t, "alice@localhost", "bob@localhost")
	mustRun(t, "", append(data, "presence", "set", "bob@localhost", "--show", "dnd", "--status", "On a call")...)

	alice := s.MustLogin(t, jid.MustParse("alice@localhost"), "pw", servertest.ClientOptions{Resource: "a"})
	bodies := []string{"Hello Bob", "Ticket TEST-1, \"urgent\"", "Bye"}
	for _, b := range bodies {
		if err := alice.SendRaw(context.Background(), "<message to='bob@localhost' type='chat'><body>"+b+"</body></message>"); err != nil {
			t.Fatal(err)
		}
	}
	// A round trip: the messages were routed (and queued for the
	// archive) before the export, which flushes the archive first.
	if err := alice.SendRaw(context.Background(), "<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
		t.Fatal(err)
	}
	alice.Next(t, 5*time.Second, servertest.Named("iq", "id", "p"))

	out := mustRun(t, "", append(data, "history", "export", "--user", "alice@localhost", "--format", "jsonl")...)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") { // in archive order, not sorted
		var rec struct{ Body, Direction, With, From, ID, Time string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("bad JSON line %q: %v", l, err)
		}
		if rec.Direction != "out" || rec.With != "bob@localhost" || !strings.HasPrefix(rec.From, "alice@localhost/") || rec.ID == "" {
			t.Fatalf("record %+v", rec)
		}
		if _, err := time.Parse(time.RFC3339Nano, rec.Time); err != nil {
			t.Fatalf("time %q: %v", rec.Time, err)
		}
		got = append(got, rec.Body)
	}
	if strings.Join(got, "|") != strings.Join(bodies, "|") {
		t.Fatalf("exported bodies %q, want %q", got, bodies)
	}

	// Bob's side, as CSV, after the server stopped.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "", append(data, "history", "export", "--user", "bob@localhost", "--with", "alice@localhost", "--since", "1d", "--format", "csv")...)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("bad CSV %q: %v", out, err)
	}
	if len(rows) != 1+len(bodies) || rows[0][0] != "time" || rows[2][8] != bodies[1] || rows[1][4] != "in" {
		t.Fatalf("CSV rows %q", rows)
	}
	if out := mustRun(t, "", append(data, "history", "export", "--user", "bob@localhost", "--until", "2000-01-01", "--format", "csv")...); len(lines(out)) != 1 {
		t.Fatalf("export until 2000 printed %q, want only the header", out)
	}
	if _, _, err := run(t, "", append(data, "history", "export", "--user", "bob@localhost", "--format", "xml")...); err == nil {
		t.Fatal("an unknown format was accepted")
	}

	audit := mustRun(t, "", append(data, "audit")...)
	for _, want := range []string{"user.add\talice@localhost", "user.add\tbob@localhost", "presence.set\tbob@localhost", "history.export\talice@localhost", "history.export\tbob@localhost"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %q:\n%s", want, audit)
		}
	}
	if !strings.Contains(audit, "cli") {
		t.Errorf("audit log names no actor:\n%s", audit)
	}
}

// TestRoomHistoryExport: an issue chat's history exports as a JSON array
// of the comments (time, author, body, stanza id).
func TestRoomHistoryExport(t *testing.T) {
	dir := t.TempDir()
	cfg := servertest.Config(dir)
	cfg.Listen.AdminSocket = filepath.Join(dir, "admin.sock")
	s := servertest.StartConfig(t, cfg)
	data := []string{"--data", dir}
	mustRun(t, "", append(data, "user", "add", "alice@localhost", "--password", "pw")...)
	alice := s.MustLogin(t, jid.MustParse("alice@localhost"), "pw", servertest.ClientOptions{Resource: "a"})
	room := "test-123@issues.localhost"
	if err := alice.SendRaw(context.Background(), "<presence to='"+room+"/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"); err != nil {
		t.Fatal(err)
	}
	alice.Next(t, 5*time.Second, servertest.Named("presence", "from", room+"/Alice"))
	comments := []string{"Reproduced on 2.1", "Fixed in build 42"}
	for _, c := range comments {
		if err := alice.SendRaw(context.Background(), "<message to='"+room+"' type='groupchat'><body>"+c+"</body></message>"); err != nil {
			t.Fatal(err)
		}
		alice.Next(t, 5*time.Second, func(e *wire.Element) bool { return e.Name == "message" && e.ChildText("body", "") == c })
	}
	out := mustRun(t, "", append(data, "room", "history", room)...)
	var recs []struct{ ID, Time, From, With, Body string }
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	if len(recs) != len(comments) {
		t.Fatalf("%d records, want %d: %s", len(recs), len(comments), out)
	}
	for i, r := range recs {
		if r.Body != comments[i] || r.From != room+"/Alice" || r.With != "alice@localhost" || r.ID == "" || r.Time == "" {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	csvOut := mustRun(t, "", append(data, "room", "history", room, "--format", "csv", "--since", "1d")...)
	if rows, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll(); err != nil || len(rows) != 1+len(comments) {
		t.Fatalf("CSV: %v %q", err, csvOut)
	}
}

// TestRoomCreateDestroy: admins create rooms ahead of use and destroy
// them (occupants are told why), through a running server and with it
// stopped; both are audited.
func TestRoomCreateDestroy(t *testing.T) {
	dir := t.TempDir()
	data := []string{"--data", dir}
	// With no server running: straight into the data file.
	mustRun(t, "", append(data, "room", "create", "support@conference.localhost", "--owner", "alice@localhost")...)
	if _, _, err := run(t, "", append(data, "room", "create", "support@conference.localhost")...); err == nil {
		t.Fatal("creating an existing room succeeded")
	}
	cfg := servertest.Config(dir)
	cfg.Listen.AdminSocket = filepath.Join(dir, "admin.sock")
	s := servertest.StartConfig(t, cfg)
	mustRun(t, "", append(data, "user", "add", "bob@localhost", "--password", "pw")...)
	bob := s.MustLogin(t, jid.MustParse("bob@localhost"), "pw", servertest.ClientOptions{Resource: "b"})
	room := "support@conference.localhost"
	if err := bob.SendRaw(context.Background(), "<presence to='"+room+"/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>"); err != nil {
		t.Fatal(err)
	}
	self := bob.Next(t, 5*time.Second, servertest.Named("presence", "from", room+"/Bob"))
	for _, st := range self.Child("x", "http://jabber.org/protocol/muc#user").Children {
		if st.AttrValue("code") == "201" {
			t.Fatal("the admin-created room was created again on join")
		}
	}
	// Through the running server: the occupant is told.
	mustRun(t, "", append(data, "room", "destroy", room, "--reason", "Moved to the helpdesk")...)
	gone := bob.Next(t, 5*time.Second, servertest.Named("presence", "from", room+"/Bob", "type", "unavailable"))
	d := gone.Child("x", "http://jabber.org/protocol/muc#user").Child("destroy", "")
	if d == nil || d.ChildText("reason", "") != "Moved to the helpdesk" {
		t.Fatalf("destroy presence %s", gone)
	}
	mustRun(t, "", append(data, "room", "create", "TEST-7@issues.localhost")...)
	if _, _, err := run(t, "", append(data, "room", "destroy", "nothing@conference.localhost")...); err == nil {
		t.Fatal("destroying a missing room succeeded")
	}
	if _, _, err := run(t, "", append(data, "room", "create", "x@elsewhere.example")...); err == nil {
		t.Fatal("a room on an unknown service was created")
	}
	audit := mustRun(t, "", append(data, "audit")...)
	for _, want := range []string{"room.create\tsupport@conference.localhost", "room.destroy\tsupport@conference.localhost", "room.create\tTEST-7@issues.localhost"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %q:\n%s", want, audit)
		}
	}
}
