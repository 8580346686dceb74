package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
)

// startServer runs a Switchboard for the scenarios: no TLS requirement,
// open registration, no per-IP connection limit.
func startServer(t *testing.T) *servertest.Server {
	t.Helper()
	return servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.TLS.RequireC2S = false
		c.Hosts[0].Registration = true
		c.Limits.MaxConnectionsPerIP = 0
	}))
}

// run executes xmppbench with args against srv and returns its result.
func run(t *testing.T, srv *servertest.Server, args ...string) Result {
	t.Helper()
	out := filepath.Join(t.TempDir(), "result.json")
	root := newRoot()
	var stdout bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stdout)
	root.SetArgs(append([]string{"--addr", srv.C2S, "--domain", srv.Domain, "--register",
		"--pid", strconv.Itoa(os.Getpid()), "--json", out}, args...))
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("xmppbench %s: %v\n%s", strings.Join(args, " "), err, stdout.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("result JSON: %v\n%s", err, data)
	}
	t.Logf("xmppbench %s\n%s", strings.Join(args, " "), stdout.String())
	return r
}

// want checks metric name against a predicate.
func want(t *testing.T, r Result, name string, ok func(float64) bool, what string) {
	t.Helper()
	v, found := r.Metrics.Get(name)
	if !found {
		t.Errorf("%s: no metric %q", r.Scenario, name)
		return
	}
	if !ok(v) {
		t.Errorf("%s: %s = %v, want %s", r.Scenario, name, v, what)
	}
}

func eq(x float64) func(float64) bool { return func(v float64) bool { return v == x } }
func positive(v float64) bool         { return v > 0 }

func TestScenarios(t *testing.T) {
	srv := startServer(t)
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, r Result)
	}{
		{"login SCRAM-SHA-1 cached", []string{"--prefix", "lg", "--users", "10", "login", "--logins", "40"}, func(t *testing.T, r Result) {
			want(t, r, "logins_ok", eq(40), "40")
			want(t, r, "errors", eq(0), "0")
			want(t, r, "logins_per_s", positive, "> 0")
			want(t, r, "login_latency_p99_ms", positive, "> 0")
			want(t, r, "server_cpu_us_per_login", positive, "> 0")
		}},
		{"login SCRAM-SHA-256 mellium", []string{"--prefix", "lg", "--users", "10", "--mech", "SCRAM-SHA-256", "--scram-cache=false", "login", "--logins", "10"}, func(t *testing.T, r Result) {
			want(t, r, "logins_ok", eq(10), "10")
			want(t, r, "errors", eq(0), "0")
		}},
		{"login PLAIN starttls", []string{"--prefix", "lg", "--users", "10", "--mech", "PLAIN", "--tls", "starttls", "login", "--logins", "10"}, func(t *testing.T, r Result) {
			want(t, r, "logins_ok", eq(10), "10")
			want(t, r, "errors", eq(0), "0")
		}},
		{"idle", []string{"--prefix", "id", "--users", "10", "--duration", "1s", "idle"}, func(t *testing.T, r Result) {
			want(t, r, "sessions", eq(10), "10")
			want(t, r, "dropped", eq(0), "0")
			want(t, r, "server_rss_after_mb", positive, "> 0")
		}},
		{"idle, resources and source addresses", []string{"--prefix", "id", "--users", "4", "--source", "127.0.0.1-127.0.0.3", "--duration", "1s", "idle", "--sessions", "10"}, func(t *testing.T, r Result) {
			want(t, r, "sessions", eq(10), "10")
			want(t, r, "dropped", eq(0), "0")
		}},
		{"login starttls x25519", []string{"--prefix", "lg", "--users", "10", "--tls", "starttls", "--tls-curves", "x25519", "login", "--logins", "10"}, func(t *testing.T, r Result) {
			want(t, r, "logins_ok", eq(10), "10")
			want(t, r, "errors", eq(0), "0")
		}},
		{"chat saturation", []string{"--prefix", "ch", "--users", "10", "--duration", "1s", "--warmup", "200ms", "chat"}, func(t *testing.T, r Result) {
			want(t, r, "delivered_per_s", positive, "> 0")
			want(t, r, "loss", eq(0), "0")
			want(t, r, "errors", eq(0), "0")
			want(t, r, "latency_p99_ms", positive, "> 0")
			want(t, r, "server_cpu_us_per_msg", positive, "> 0")
		}},
		// With stream management the client answers the server's
		// requests and asks for acknowledgements itself: both must have
		// happened, with nothing lost.
		{"chat stream management", []string{"--prefix", "ch", "--users", "10", "--duration", "1s", "--warmup", "200ms", "--sm", "chat"}, func(t *testing.T, r Result) {
			want(t, r, "delivered_per_s", positive, "> 0")
			want(t, r, "loss", eq(0), "0")
			want(t, r, "errors", eq(0), "0")
			want(t, r, "dropped_sessions", eq(0), "0")
			want(t, r, "sm_acks_read", positive, "> 0")
			want(t, r, "sm_requests_answered", positive, "> 0")
			if r.Params["sm"] != true || r.Params["sm_request"] != float64(5) {
				t.Errorf("params sm=%v sm_request=%v, want true and 5", r.Params["sm"], r.Params["sm_request"])
			}
		}},
		{"chat stream management, server's requests only", []string{"--prefix", "ch", "--users", "4", "--duration", "500ms", "--warmup", "100ms", "--sm", "--sm-request", "0", "chat"}, func(t *testing.T, r Result) {
			want(t, r, "loss", eq(0), "0")
			want(t, r, "sm_acks_read", eq(0), "0 (the client never asked)")
			want(t, r, "sm_requests_answered", positive, "> 0")
		}},
		{"chat rate", []string{"--prefix", "ch", "--users", "10", "--duration", "1s", "--warmup", "200ms", "chat", "--rate", "200"}, func(t *testing.T, r Result) {
			want(t, r, "delivered_per_s", func(v float64) bool { return v > 100 && v < 300 }, "about 200")
			want(t, r, "loss", eq(0), "0")
		}},
		{"muc", []string{"--prefix", "mu", "--users", "10", "--duration", "1s", "--warmup", "200ms", "muc", "--senders", "2"}, func(t *testing.T, r Result) {
			want(t, r, "occupants", eq(10), "10")
			want(t, r, "deliveries_per_s", positive, "> 0")
			want(t, r, "loss", eq(0), "0")
			want(t, r, "errors", eq(0), "0")
		}},
		{"muc stream management", []string{"--prefix", "mu", "--users", "6", "--duration", "500ms", "--warmup", "100ms", "--sm", "muc", "--senders", "2", "--room", "smroom"}, func(t *testing.T, r Result) {
			want(t, r, "deliveries_per_s", positive, "> 0")
			want(t, r, "loss", eq(0), "0")
			want(t, r, "sm_acks_read", positive, "> 0")
			want(t, r, "sm_requests_answered", positive, "> 0")
		}},
		{"presence", []string{"--prefix", "pr", "--users", "10", "presence", "--contacts", "4"}, func(t *testing.T, r Result) {
			want(t, r, "incomplete_users", eq(0), "0")
			want(t, r, "setup_s", positive, "> 0")
			want(t, r, "presence_complete_s", positive, "> 0")
		}},
		{"presence again on existing rosters", []string{"--prefix", "pr", "--users", "10", "presence", "--contacts", "4"}, func(t *testing.T, r Result) {
			want(t, r, "incomplete_users", eq(0), "0")
		}},
		// On the rosters the "presence" case above set up: the cases
		// run in order, and this one needs them.
		{"presence without setup on set-up rosters", []string{"--prefix", "pr", "--users", "10", "presence", "--contacts", "4", "--setup=false"}, func(t *testing.T, r Result) {
			want(t, r, "incomplete_users", eq(0), "0")
			if v, found := r.Metrics.Get("setup_s"); found {
				t.Errorf("setup_s = %v without a setup, want none", v)
			}
			want(t, r, "presence_complete_s", positive, "> 0")
		}},
		// Accounts without contacts: without the setup nobody sees
		// anyone, and the run says so.
		{"presence without setup on empty rosters", []string{"--prefix", "pe", "--users", "6", "--register", "presence", "--contacts", "2", "--setup=false", "--presence-timeout", "300ms"}, func(t *testing.T, r Result) {
			want(t, r, "incomplete_users", eq(6), "6")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, srv, tc.args...)
			if r.Server.Addr != srv.C2S {
				t.Errorf("server addr %q, want %q", r.Server.Addr, srv.C2S)
			}
			tc.check(t, r)
		})
	}
}
