package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp/server"
	"switchboard/xmpp/server/servertest"
)

// run executes the CLI with args and stdin and returns what it printed.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(strings.NewReader(stdin), &out, &errOut)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// mustRun is run that fails the test on error.
func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, stdin, args...)
	if err != nil {
		t.Fatalf("switchboard %s: %v (stderr %q)", strings.Join(args, " "), err, errOut)
	}
	return out
}

// lines splits output into its non-empty lines, sorted.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersion(t *testing.T) {
	if got, want := mustRun(t, "", "version"), "switchboard "+server.Version+"\n"; got != want {
		t.Fatalf("version printed %q, want %q", got, want)
	}
}

func TestConfigCheck(t *testing.T) {
	unknown := writeFile(t, "unknown.toml", "[server]\ndata_dir = \"./data\"\nshutdown_timout = \"5s\"\n")
	invalid := writeFile(t, "invalid.toml", "[limits]\nmax_stanza_size = 100\n")
	syntax := writeFile(t, "syntax.toml", "[server\ndata_dir = 1\n")
	cases := []struct {
		name    string
		args    []string
		wantOut string   // printed on success
		wantErr []string // substrings of the error; nil = success
	}{
		{"example", []string{"config", "check", "../../config.example.toml"}, "../../config.example.toml: OK\n", nil},
		{"example via --config", []string{"--config", "../../config.example.toml", "config", "check"}, "../../config.example.toml: OK\n", nil},
		{"unknown key", []string{"config", "check", unknown}, "", []string{unknown + ":3:", "shutdown_timout", `"server.shutdown_timeout"`}},
		{"invalid value", []string{"config", "check", invalid}, "", []string{invalid + ":2:", "limits.max_stanza_size"}},
		{"syntax error", []string{"config", "check", syntax}, "", []string{syntax}},
		{"missing file", []string{"config", "check", filepath.Join(t.TempDir(), "nope.toml")}, "", []string{"nope.toml"}},
		{"no file", []string{"config", "check"}, "", []string{"name a file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := run(t, "", tc.args...)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				if out != tc.wantOut {
					t.Fatalf("printed %q, want %q", out, tc.wantOut)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; printed %q", out)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestUserOffline manages accounts directly on the data file, with no
// server running, then checks the result by logging in.
func TestUserOffline(t *testing.T) {
	dir := t.TempDir()
	data := []string{"--data", dir}
	user := func(stdin string, args ...string) (string, error) {
		out, _, err := run(t, stdin, append(append(slices.Clone(data), "user"), args...)...)
		return out, err
	}
	steps := []struct {
		name    string
		stdin   string
		args    []string
		wantOut []string // for list
		wantErr string   // "" = success
	}{
		{"add with --password", "", []string{"add", "alice@localhost", "--password", "pw-1"}, nil, ""},
		{"add from stdin", "pw-bob\n", []string{"add", "bob@localhost"}, nil, ""},
		{"add from stdin, CRLF", "pw-carol\r\n", []string{"add", "carol@localhost"}, nil, ""},
		{"list", "", []string{"list"}, []string{"alice@localhost", "bob@localhost", "carol@localhost"}, ""},
		{"list host", "", []string{"list", "localhost"}, []string{"alice@localhost", "bob@localhost", "carol@localhost"}, ""},
		{"add existing", "", []string{"add", "alice@localhost", "--password", "x"}, nil, "alice@localhost"},
		{"add without password", "", []string{"add", "dave@localhost"}, nil, "no password"},
		{"add without host", "", []string{"add", "dave", "--password", "x"}, nil, "USER@HOST"},
		{"add unknown host", "", []string{"add", "dave@example.org", "--password", "x"}, nil, "unknown host"},
		{"list unknown host", "", []string{"list", "example.org"}, nil, "unknown host"},
		{"passwd with --password", "", []string{"passwd", "alice@localhost", "--password", "pw-2"}, nil, ""},
		{"passwd from stdin", "pw-carol-2\n", []string{"passwd", "carol@localhost"}, nil, ""},
		{"passwd unknown user", "", []string{"passwd", "nobody@localhost", "--password", "x"}, nil, "nobody@localhost"},
		{"del", "", []string{"del", "bob@localhost"}, nil, ""},
		{"del unknown user", "", []string{"del", "bob@localhost"}, nil, "bob@localhost"},
		{"list after del", "", []string{"list"}, []string{"alice@localhost", "carol@localhost"}, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out, err := user(st.stdin, st.args...)
			if st.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), st.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, st.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.wantOut != nil && !slices.Equal(lines(out), st.wantOut) {
				t.Fatalf("printed %q, want %q", lines(out), st.wantOut)
			}
		})
	}

	// The server sees what the commands did.
	s := servertest.StartConfig(t, servertest.Config(dir))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	logins := []struct {
		user, password string
		ok             bool
	}{
		{"alice", "pw-2", true},
		{"alice", "pw-1", false},
		{"carol", "pw-carol-2", true},
		{"carol", "pw-carol", false},
		{"bob", "pw-bob", false},
	}
	for _, l := range logins {
		c, err := s.Login(ctx, jid.MustParse(l.user+"@localhost"), l.password, servertest.ClientOptions{})
		if err == nil {
			c.Close()
		}
		if (err == nil) != l.ok {
			t.Errorf("login %s with %q: err = %v, want success %v", l.user, l.password, err, l.ok)
		}
	}
}

// TestUserThroughAdminSocket: with a server running on the data
// directory, the commands go through its admin socket.
func TestUserThroughAdminSocket(t *testing.T) {
	dir := t.TempDir()
	cfg := servertest.Config(dir)
	cfg.Listen.AdminSocket = filepath.Join(dir, "admin.sock")
	s := servertest.StartConfig(t, cfg)
	s.AddUser(t, "alice", "pw")
	data := []string{"--data", dir, "user"}

	mustRun(t, "", append(data, "add", "bob@localhost", "--password", "pw-bob")...)
	bob := jid.MustParse("bob@localhost")
	c := s.MustLogin(t, bob, "pw-bob", servertest.ClientOptions{})

	if got, want := lines(mustRun(t, "", append(data, "list")...)), []string{"alice@localhost", "bob@localhost"}; !slices.Equal(got, want) {
		t.Fatalf("list printed %q, want %q", got, want)
	}
	if _, _, err := run(t, "", append(data, "add", "alice@localhost", "--password", "x")...); err == nil || !strings.Contains(err.Error(), "alice@localhost") {
		t.Fatalf("adding an existing account: %v", err)
	}
	mustRun(t, "pw-alice-2\n", append(data, "passwd", "alice@localhost")...)
	s.MustLogin(t, jid.MustParse("alice@localhost"), "pw-alice-2", servertest.ClientOptions{})

	// Deleting an account ends its sessions.
	mustRun(t, "", append(data, "del", "bob@localhost")...)
	c.Closed(t, 5*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := s.Login(ctx, bob, "pw-bob", servertest.ClientOptions{}); err == nil {
		t.Fatal("bob logged in after deletion")
	}
}

// TestUserServerWithoutSocket: a running server with the admin socket
// disabled holds the data file; the commands say so.
func TestUserServerWithoutSocket(t *testing.T) {
	dir := t.TempDir()
	servertest.StartConfig(t, servertest.Config(dir)) // admin socket disabled
	conf := writeFile(t, "nosocket.toml", "[server]\ndata_dir = \""+dir+"\"\n[listen]\nadmin_socket = \"-\"\n")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"socket disabled", []string{"--config", conf, "user", "list"}, "admin socket is disabled"},
		{"socket absent", []string{"--data", dir, "user", "list"}, "not reachable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := run(t, "", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
