package server_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server"
	"switchboard/xmpp/server/servertest"
)

// The admin HTTP API over real HTTPS against a running server.

const ahPassword = "admin api pw"

// ahServer starts a server with the admin HTTP API on a loopback port;
// boss@localhost is an admin.
func ahServer(t *testing.T, opts ...servertest.Option) (*servertest.Server, string, *http.Client) {
	t.Helper()
	opts = append([]servertest.Option{servertest.WithConfig(func(c *config.Config) {
		c.Listen.HTTP = "127.0.0.1:0"
		c.Hosts[0].Admins = []string{"boss@localhost"}
	})}, opts...)
	s := servertest.Start(t, opts...)
	s.AddUser(t, "boss", ahPassword)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: s.TLSConfig()}}
	t.Cleanup(client.CloseIdleConnections)
	// The certificate names the domain; dial the bound address.
	return s, "https://" + strings.Replace(s.Addr("http").String(), "127.0.0.1", "localhost", 1), client
}

// ahDo sends a request as user (no credentials when user is "") and
// returns the status and body.
func ahDo(t *testing.T, c *http.Client, method, url, user, password, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, b
}

// ahCommand runs an admin command as boss and returns its response.
func ahCommand(t *testing.T, c *http.Client, base string, req server.AdminRequest) (int, server.AdminResponse) {
	t.Helper()
	b, _ := json.Marshal(req)
	code, _, body := ahDo(t, c, "POST", base+"/api/v1/commands", "boss@localhost", ahPassword, string(b))
	var resp server.AdminResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("%s: answer is not an AdminResponse: %q", req.Command, body)
	}
	return code, resp
}

// TestAdminHTTPAuth: only a host's admins, with their password, get in;
// anyone else gets 401 with a Basic challenge.
func TestAdminHTTPAuth(t *testing.T) {
	t.Parallel()
	s, base, c := ahServer(t)
	s.AddUser(t, "alice", ahPassword)
	for _, tc := range []struct {
		name, user, password string
		want                 int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"not an admin", "alice@localhost", ahPassword, http.StatusUnauthorized},
		{"wrong password", "boss@localhost", "wrong", http.StatusUnauthorized},
		{"unknown user", "nobody@localhost", ahPassword, http.StatusUnauthorized},
		{"malformed user", "@@", ahPassword, http.StatusUnauthorized},
		{"admin", "boss@localhost", ahPassword, http.StatusOK},
		{"admin again (cached)", "boss@localhost", ahPassword, http.StatusOK},
		{"admin, wrong password after a success", "boss@localhost", "wrong", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := ahDo(t, c, "GET", base+"/api/v1/audit", tc.user, tc.password, "")
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			if code == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("401 without a Basic challenge: %v", h)
			}
		})
	}
}

// TestAdminHTTPThrottle: repeated failures from one address are answered
// with 429 and Retry-After until the delay has passed.
func TestAdminHTTPThrottle(t *testing.T) {
	t.Parallel()
	_, base, c := ahServer(t, servertest.WithConfig(func(c *config.Config) {
		c.Limits.AuthFailureDelay = config.Duration(time.Minute)
		c.Limits.AuthFailureMaxDelay = config.Duration(time.Minute)
	}))
	if code, _, _ := ahDo(t, c, "GET", base+"/api/v1/audit", "boss@localhost", "wrong", ""); code != http.StatusUnauthorized {
		t.Fatalf("first failure: %d", code)
	}
	code, h, _ := ahDo(t, c, "GET", base+"/api/v1/audit", "boss@localhost", ahPassword, "")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("right after a failure: %d %v, want 429 with Retry-After", code, h)
	}
}

// TestAdminHTTPCommands: commands given as AdminRequest bodies run as the
// authenticated admin (the audit log's actor, whatever the body says);
// bad bodies and failing commands get 4xx with an error.
func TestAdminHTTPCommands(t *testing.T) {
	t.Parallel()
	s, base, c := ahServer(t)
	code, resp := ahCommand(t, c, base, server.AdminRequest{Command: server.CmdUserAdd,
		Args: map[string]string{"jid": "carol@localhost", "password": "carol pw", "actor": "someone-else"}})
	if code != http.StatusOK || !resp.OK {
		t.Fatalf("user.add: %d %+v", code, resp)
	}
	s.MustLogin(t, jid.MustParse("carol@localhost"), "carol pw", servertest.ClientOptions{})
	if code, resp := ahCommand(t, c, base, server.AdminRequest{Command: server.CmdUserList}); code != http.StatusOK || !slices.Contains(resp.Result, "carol@localhost") {
		t.Fatalf("user.list: %d %+v", code, resp)
	}
	if code, resp := ahCommand(t, c, base, server.AdminRequest{Command: server.CmdRoomCreate, Args: map[string]string{"room": "lobby@conference.localhost"}}); code != http.StatusOK {
		t.Fatalf("room.create: %d %+v", code, resp)
	}
	for _, tc := range []struct {
		name string
		req  server.AdminRequest
		want int
	}{
		{"existing account", server.AdminRequest{Command: server.CmdUserAdd, Args: map[string]string{"jid": "carol@localhost", "password": "x pw"}}, http.StatusConflict},
		{"existing room", server.AdminRequest{Command: server.CmdRoomCreate, Args: map[string]string{"room": "lobby@conference.localhost"}}, http.StatusConflict},
		{"missing account", server.AdminRequest{Command: server.CmdUserDel, Args: map[string]string{"jid": "nobody@localhost"}}, http.StatusNotFound},
		{"presence of a missing account", server.AdminRequest{Command: server.CmdPresenceSet, Args: map[string]string{"jid": "nobody@localhost", "show": "dnd"}}, http.StatusNotFound},
		{"missing room", server.AdminRequest{Command: server.CmdRoomDestroy, Args: map[string]string{"room": "nothing@conference.localhost"}}, http.StatusNotFound},
		{"unknown command", server.AdminRequest{Command: "no.such"}, http.StatusBadRequest},
		{"bad JID", server.AdminRequest{Command: server.CmdUserDel, Args: map[string]string{"jid": "nobody"}}, http.StatusBadRequest},
		{"invalid username", server.AdminRequest{Command: server.CmdUserAdd, Args: map[string]string{"jid": "two words@localhost", "password": "x pw"}}, http.StatusBadRequest},
		{"empty password", server.AdminRequest{Command: server.CmdUserPasswd, Args: map[string]string{"jid": "carol@localhost", "password": ""}}, http.StatusBadRequest},
		{"bad show", server.AdminRequest{Command: server.CmdPresenceSet, Args: map[string]string{"jid": "carol@localhost", "show": "asleep"}}, http.StatusBadRequest},
		{"status not XML", server.AdminRequest{Command: server.CmdPresenceSet, Args: map[string]string{"jid": "carol@localhost", "status": "bell\x07"}}, http.StatusBadRequest},
		{"profile not XML", server.AdminRequest{Command: server.CmdUserProfile, Args: map[string]string{"jid": "carol@localhost", "name": "bell\x07"}}, http.StatusBadRequest},
		{"profile of a missing account", server.AdminRequest{Command: server.CmdUserProfile, Args: map[string]string{"jid": "nobody@localhost", "name": "N"}}, http.StatusNotFound},
		{"bad limit", server.AdminRequest{Command: server.CmdAuditList, Args: map[string]string{"limit": "0"}}, http.StatusBadRequest},
		{"bad time", server.AdminRequest{Command: server.CmdAuditList, Args: map[string]string{"since": "last week"}}, http.StatusBadRequest},
		{"bad format", server.AdminRequest{Command: server.CmdHistoryExport, Args: map[string]string{"archive": "carol@localhost", "format": "xml"}}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, resp := ahCommand(t, c, base, tc.req); code != tc.want || resp.OK || resp.Error == "" {
				t.Fatalf("status %d %+v, want %d with an error", code, resp, tc.want)
			}
		})
	}
	for _, body := range []string{"{", `{"command": "user.list", "extra": 1}`, strings.Repeat(" ", 70<<10) + "{}"} {
		code, _, b := ahDo(t, c, "POST", base+"/api/v1/commands", "boss@localhost", ahPassword, body)
		if code != http.StatusBadRequest {
			t.Fatalf("malformed body %.20q: %d %s", body, code, b)
		}
	}
	// A change whose audit detail, quoted, exceeds what the log takes
	// is done and recorded, with the detail cut.
	long := strings.Repeat("\u200b", 20000)
	if code, _, b := ahDo(t, c, "PUT", base+"/api/v1/users/carol@localhost/presence", "boss@localhost", ahPassword, `{"show": "dnd", "status": "`+long+`"}`); code != http.StatusOK {
		t.Fatalf("presence with a long status: %d %s", code, b)
	}
	code, _, body := ahDo(t, c, "GET", base+"/api/v1/audit", "boss@localhost", ahPassword, "")
	var audit server.AdminResponse
	if err := json.Unmarshal(body, &audit); err != nil || code != http.StatusOK {
		t.Fatalf("audit: %d %s", code, body)
	}
	found, cut := false, false
	for _, l := range audit.Result {
		f := strings.Split(l, "\t")
		if len(f) >= 4 && f[1] == "boss@localhost" && f[2] == server.CmdUserAdd && f[3] == "carol@localhost" {
			found = true
		}
		if len(f) >= 5 && f[2] == server.CmdPresenceSet && f[3] == "carol@localhost" && strings.HasSuffix(f[4], " [cut]") {
			cut = true
		}
	}
	if !found || !cut {
		t.Fatalf("audit log lacks the admin's user.add (%v) or the presence.set with its detail cut (%v): %.300q", found, cut, audit.Result)
	}
}

// TestAdminHTTPPresence: a phone system sets a user's presence from
// outside (PUT) and clears it (DELETE); contacts see it at once.
func TestAdminHTTPPresence(t *testing.T) {
	t.Parallel()
	s, base, c := ahServer(t)
	alice := s.AddUser(t, "alice", ftPassword)
	bob := s.AddUser(t, "bob", ftPassword)
	ftSubscribe(t, s, alice, bob, true)
	pc := ftLogin(t, s, bob, "pc")
	ftOnline(t, pc, "<presence/>")
	phone := ftLogin(t, s, alice, "phone")
	ftOnline(t, phone, "<presence><show>away</show><status>Lunch</status><c xmlns='"+ftNSCaps+"' hash='sha-1' node='https://example.org' ver='abc='/></presence>")
	ftSync(t, pc)

	url := base + "/api/v1/users/alice@localhost/presence"
	code, _, body := ahDo(t, c, "PUT", url, "boss@localhost", ahPassword, `{"show": "dnd", "status": "On a call", "call": "on-call"}`)
	if code != http.StatusOK {
		t.Fatalf("PUT presence: %d %s", code, body)
	}
	ftOverridden(t, ftOne(t, "alice at bob", ftSync(t, pc), ftPresence("", phone.JID.String())), "dnd", "On a call", "on-call", "")
	code, _, body = ahDo(t, c, "DELETE", url, "boss@localhost", ahPassword, "")
	if code != http.StatusOK {
		t.Fatalf("DELETE presence: %d %s", code, body)
	}
	ftOverridden(t, ftOne(t, "alice at bob", ftSync(t, pc), ftPresence("", phone.JID.String())), "away", "Lunch", "", "")

	for _, tc := range []struct {
		name, url, body string
		want            int
	}{
		{"unknown user", base + "/api/v1/users/nobody@localhost/presence", `{"show": "dnd"}`, http.StatusNotFound},
		{"unknown user, DELETE", base + "/api/v1/users/nobody@localhost/presence", "", http.StatusNotFound},
		{"bad show", url, `{"show": "sleeping"}`, http.StatusBadRequest},
		{"unknown field", url, `{"mood": "happy"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "PUT"
			if tc.body == "" {
				method = "DELETE"
			}
			if code, _, b := ahDo(t, c, method, tc.url, "boss@localhost", ahPassword, tc.body); code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, b)
			}
		})
	}
}

// TestAdminHTTPRoomHistory: the comment log of an issue chat, GET as JSON
// and CSV; each entry carries time, author, body and stanza id; bad
// arguments are a 400 before any line.
func TestAdminHTTPRoomHistory(t *testing.T) {
	t.Parallel()
	s, base, c := ahServer(t)
	if code, resp := ahCommand(t, c, base, server.AdminRequest{Command: server.CmdRoomCreate, Args: map[string]string{"room": "TEST-5@" + mcIssues}}); code != http.StatusOK {
		t.Fatalf("room.create: %d %+v", code, resp)
	}
	alice := mcUsers(t, s, "alice")[0]
	room := "test-5@" + mcIssues
	mcJoin(t, alice, room, "Alice", "")
	for _, b := range []string{"first comment", "second, with a comma"} {
		mcSay(t, alice, room, b)
		mcHear(t, alice, room+"/Alice", b)
	}

	code, h, body := ahDo(t, c, "GET", base+"/api/v1/rooms/"+room+"/history", "boss@localhost", ahPassword, "")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("JSON history: %d %v %s", code, h, body)
	}
	var recs []server.ExportRecord
	if err := json.Unmarshal(body, &recs); err != nil {
		t.Fatalf("JSON history is not an array of records: %v: %s", err, body)
	}
	if len(recs) != 2 || recs[0].Body != "first comment" || recs[1].Body != "second, with a comma" {
		t.Fatalf("JSON history: %+v", recs)
	}
	for _, r := range recs {
		if r.ID == "" || r.Time == "" || r.From != room+"/Alice" {
			t.Fatalf("record without id, time or author: %+v", r)
		}
	}

	code, h, body = ahDo(t, c, "GET", base+"/api/v1/rooms/"+room+"/history?format=csv&since=7d", "boss@localhost", ahPassword, "")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV history: %d %v %s", code, h, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 3 || rows[2][len(rows[2])-1] != "second, with a comma" {
		t.Fatalf("CSV history (%v): %q", err, rows)
	}

	for _, q := range []string{"?since=someday", "?format=xml"} {
		code, h, body := ahDo(t, c, "GET", base+"/api/v1/rooms/"+room+"/history"+q, "boss@localhost", ahPassword, "")
		var resp server.AdminResponse
		if code != http.StatusBadRequest || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || json.Unmarshal(body, &resp) != nil || resp.Error == "" {
			t.Fatalf("history%s: %d %v %s, want 400 with an error", q, code, h, body)
		}
	}
}

// TestAdminHTTPHostScope: an admin of one host acts on that host only:
// another host's accounts, archives and rooms are 403, user.list lists
// the admin's host, and the audit log shows the admin's host.
func TestAdminHTTPHostScope(t *testing.T) {
	t.Parallel()
	s, base, c := ahServer(t, servertest.WithConfig(func(c *config.Config) {
		other := config.HostDefaults("example.org")
		other.Admins = []string{"chief@example.org"}
		c.Hosts = append(c.Hosts, other)
	}))
	if err := s.Accounts().Create(t.Context(), "example.org", "dave", "dave pw"); err != nil {
		t.Fatal(err)
	}
	if err := s.Accounts().Create(t.Context(), "example.org", "chief", ahPassword); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []server.AdminRequest{
		{Command: server.CmdUserAdd, Args: map[string]string{"jid": "eve@example.org", "password": "eve pw"}},
		{Command: server.CmdUserPasswd, Args: map[string]string{"jid": "dave@example.org", "password": "new pw"}},
		{Command: server.CmdUserDel, Args: map[string]string{"jid": "dave@example.org"}},
		{Command: server.CmdUserList, Args: map[string]string{"host": "example.org"}},
		{Command: server.CmdPresenceSet, Args: map[string]string{"jid": "dave@example.org", "show": "dnd"}},
		{Command: server.CmdHistoryExport, Args: map[string]string{"archive": "dave@example.org"}},
		{Command: server.CmdRoomCreate, Args: map[string]string{"room": "ops@conference.example.org"}},
		// The same JIDs written otherwise, as the commands normalise them.
		{Command: server.CmdUserDel, Args: map[string]string{"jid": "dave@example.org."}},
		{Command: server.CmdUserDel, Args: map[string]string{"jid": "dave@EXAMPLE.org"}},
		{Command: server.CmdHistoryExport, Args: map[string]string{"archive": "Dave@Example.Org"}},
		{Command: server.CmdRoomCreate, Args: map[string]string{"room": "ops@CONFERENCE.example.org"}},
		// A host no longer configured is no admin's over HTTP.
		{Command: server.CmdHistoryExport, Args: map[string]string{"archive": "old@gone.example"}},
		{Command: server.CmdUserList, Args: map[string]string{"host": "gone.example"}},
	} {
		if code, resp := ahCommand(t, c, base, tc); code != http.StatusForbidden || resp.OK || resp.Error == "" {
			t.Errorf("%s %v by localhost's admin: %d %+v, want 403", tc.Command, tc.Args, code, resp)
		}
	}
	if code, _, body := ahDo(t, c, "GET", base+"/api/v1/users/dave@example.org/history", "boss@localhost", ahPassword, ""); code != http.StatusForbidden {
		t.Errorf("another host's user history: %d %s, want 403", code, body)
	}
	// A bare domain names no archive: refused, not exported (empty) and
	// audited.
	for _, domain := range []string{"example.org", "gone.example", "localhost"} {
		if code, _, body := ahDo(t, c, "GET", base+"/api/v1/users/"+domain+"/history", "boss@localhost", ahPassword, ""); code != http.StatusBadRequest {
			t.Errorf("history of the bare domain %s: %d %s, want 400", domain, code, body)
		}
	}
	// Its own host written otherwise is its own.
	if code, resp := ahCommand(t, c, base, server.AdminRequest{Command: server.CmdPresenceSet, Args: map[string]string{"jid": "boss@LOCALHOST", "show": "dnd"}}); code != http.StatusOK || !resp.OK {
		t.Errorf("presence.set boss@LOCALHOST by localhost's admin: %d %+v", code, resp)
	}
	for _, host := range []string{"", "localhost", "LOCALHOST", "localhost."} {
		code, resp := ahCommand(t, c, base, server.AdminRequest{Command: server.CmdUserList, Args: map[string]string{"host": host}})
		if code != http.StatusOK || !slices.Contains(resp.Result, "boss@localhost") || slices.Contains(resp.Result, "dave@example.org") {
			t.Fatalf("user.list host=%q of localhost's admin: %d %+v", host, code, resp)
		}
	}
	// example.org's admin changes something there; localhost's admin
	// does not see it in the audit log, example.org's does.
	b, _ := json.Marshal(server.AdminRequest{Command: server.CmdUserAdd, Args: map[string]string{"jid": "erin@example.org", "password": "erin pw"}})
	if code, _, body := ahDo(t, c, "POST", base+"/api/v1/commands", "chief@example.org", ahPassword, string(b)); code != http.StatusOK {
		t.Fatalf("user.add by example.org's admin: %d %s", code, body)
	}
	audit := func(user, query string) []string {
		code, _, body := ahDo(t, c, "GET", base+"/api/v1/audit"+query, user, ahPassword, "")
		var resp server.AdminResponse
		if err := json.Unmarshal(body, &resp); err != nil || code != http.StatusOK {
			t.Fatalf("audit as %s: %d %s", user, code, body)
		}
		return resp.Result
	}
	hasErin := func(lines []string) bool {
		return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "\terin@example.org\t") })
	}
	if l := audit("boss@localhost", ""); hasErin(l) {
		t.Errorf("localhost's admin sees example.org's audit entry: %q", l)
	}
	if l := audit("chief@example.org", ""); !hasErin(l) {
		t.Errorf("example.org's admin does not see its own audit entry: %q", l)
	}
	// limit counts the admin's host's entries: localhost's older ones
	// (the presence.set above) do not use it up.
	if l := audit("chief@example.org", "?limit=1"); len(l) != 1 || !hasErin(l) {
		t.Errorf("example.org's admin, limit 1: %q, want erin's entry", l)
	}
}

// TestAdminHTTPProfileVCardBound: a profile the admin API writes is held
// to [directory] vcard_max_bytes, as a vCard a user sets is: the server
// gives the command the configured bound.
func TestAdminHTTPProfileVCardBound(t *testing.T) {
	t.Parallel()
	_, base, c := ahServer(t, servertest.WithConfig(func(c *config.Config) { c.Directory.VCardMaxBytes = 300 }))
	if code, resp := ahCommand(t, c, base, server.AdminRequest{Command: server.CmdUserAdd,
		Args: map[string]string{"jid": "carol@localhost", "password": "carol pw"}}); code != http.StatusOK || !resp.OK {
		t.Fatalf("user.add: %d %+v", code, resp)
	}
	profile := func(name string) (int, server.AdminResponse) {
		return ahCommand(t, c, base, server.AdminRequest{Command: server.CmdUserProfile,
			Args: map[string]string{"jid": "carol@localhost", "name": name}})
	}
	if code, resp := profile("Carol"); code != http.StatusOK || !resp.OK {
		t.Fatalf("a small profile: %d %+v", code, resp)
	}
	if code, resp := profile(strings.Repeat("C", 400)); code != http.StatusBadRequest || !strings.Contains(resp.Error, "vcard_max_bytes") {
		t.Fatalf("a profile over the bound: %d %+v, want 400 naming vcard_max_bytes", code, resp)
	}
}
