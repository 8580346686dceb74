package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestShown(t *testing.T) {
	cases := []struct {
		name      string
		v, target float64
		format    func(float64) string
		want      string
	}{
		// A miss the format already tells from its target stays as it is.
		{"factor, miss by a lot", 1.2, 2, two, "1.20"},
		{"factor, miss by 0.01", 1.99, 2, two, "1.99"},
		{"absolute µs, miss by a lot", 35, 20, num, "35.0"},
		{"absolute MiB, miss by a lot", 3000, 2048, num, "3,000"},
		{"absolute ms, miss by a lot", 0.61, 0.5, num, "0.61"},
		// A miss the format rounds onto its target gets one more decimal
		// at a time until it differs, with the format's thousands
		// separators.
		{"factor, miss by 0.004", 1.996, 2, two, "1.996"},
		{"factor, miss by 0.0004", 1.9996, 2, two, "1.9996"},
		{"absolute ms, miss by 0.003", 0.503, 0.5, num, "0.503"},
		{"small target, miss by 0.0001", 0.0051, 0.005, num, "0.0051"},
		{"two-digit target, miss by 0.04", 20.04, 20, num, "20.04"},
		{"four-digit target, miss by 0.3", 2048.3, 2048, num, "2,048.3"},
		{"negative, grouped", -2048.3, -2048, num, "-2,048.3"},
		{"just below the target", 1.9999999999999998, 2, two, "1.9999999999999998"},
		// Equal to the target: no precision tells them apart.
		{"equal", 2, 2, two, "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := shown(tc.v, tc.target, tc.format); got != tc.want {
				t.Errorf("shown(%v, %v) = %q, want %q", tc.v, tc.target, got, tc.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	cases := []struct {
		name string
		xs   []float64
		want float64 // NaN: none
	}{
		{"none", nil, math.NaN()},
		{"one", []float64{7}, 7},
		{"odd, unsorted", []float64{30, 10, 20}, 20},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"two", []float64{1, 4}, 2.5},
		{"repeated", []float64{5, 1, 5, 9, 5}, 5},
		{"outlier does not move it", []float64{100, 101, 1e9}, 101},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.xs)
			got := median(in)
			if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(tc.want) && got != tc.want) {
				t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
			}
			if !slices.Equal(in, tc.xs) {
				t.Errorf("median reordered its argument: %v, was %v", in, tc.xs)
			}
		})
	}
}

// rowOf is the table's row of metric in scenario, as the report builds
// it for 10,000 idle sessions and many.
func rowOf(t *testing.T, many, scenario, metric string) row {
	t.Helper()
	for _, rw := range rows("10,000", many) {
		if rw.scenario == scenario && rw.metric == metric {
			return rw
		}
	}
	t.Fatalf("no row for %s %s", scenario, metric)
	return row{}
}

func val(v float64) cell { return cell{value: v, ok: 1, all: 1} }

func TestMet(t *testing.T) {
	const many = "100,000"
	nan := cell{value: math.NaN(), ok: 0, all: 1}
	noted := func(v float64, notes ...string) cell { c := val(v); c.notes = notes; return c }
	cases := []struct {
		name      string
		scenario  string // the row: its scenario
		metric    string // and metric
		sb        cell
		peers     []cell
		archiveOn bool
		want      string
	}{
		// Higher is better: Switchboard over the better (higher) peer, ≥ 2×
		// with the archive off, ≥ 1.5× with it on.
		{"higher, met", "login_tcp", "logins_per_s", val(2000), []cell{val(900), val(1000)}, false, "yes (2.00×)"},
		{"higher, met by a lot", "login_tcp", "logins_per_s", val(5000), []cell{val(1000)}, false, "yes (5.00×)"},
		{"higher, missed by a little", "login_tcp", "logins_per_s", val(1999.6), []cell{val(1000)}, false, "**no** (1.9996×)"},
		{"higher, missed", "login_tcp", "logins_per_s", val(1500), []cell{val(1000), val(700)}, false, "**no** (1.50×)"},
		{"higher, archive on met at 1.5×", "login_tcp", "logins_per_s", val(1500), []cell{val(1000)}, true, "yes (1.50×)"},
		{"higher, archive on missed", "login_tcp", "logins_per_s", val(1400), []cell{val(1000)}, true, "**no** (1.40×)"},
		{"higher, noted cell never meets", "chat_sat", "delivered_per_s", noted(5000, "run 1: loss 3"), []cell{val(1000)}, false, "**no** (5.00×)"},
		{"higher, failed peer ignored", "login_tcp", "logins_per_s", val(2000), []cell{nan, val(1000)}, false, "yes (2.00×)"},
		{"higher, no peer data", "login_tcp", "logins_per_s", val(2000), []cell{nan}, false, "no peer data"},
		{"higher, no Switchboard data", "login_tcp", "logins_per_s", nan, []cell{val(1000)}, false, "no data"},
		// Lower is better: the better peer is the lower one; the factor is
		// peer / Switchboard.
		{"lower, met", "presence", "presence_complete_s", val(1), []cell{val(2.5), val(2.1)}, false, "yes (2.10×)"},
		{"lower, missed", "presence", "presence_complete_s", val(1.2), []cell{val(2.1), val(3)}, false, "**no** (1.75×)"},
		{"lower, archive on met", "presence", "presence_complete_s", val(1.3), []cell{val(2.1)}, true, "yes (1.62×)"},
		// Lower is better with an absolute bound: the bound with the
		// archive off, the peers with it on.
		{"absolute, met", "chat_sat", "server_cpu_us_per_msg", val(14.5), []cell{val(30)}, false, "yes (14.5 ≤ 20.0)"},
		{"absolute, missed", "chat_sat", "server_cpu_us_per_msg", val(35), []cell{val(30)}, false, "**no** (35.0 > 20.0)"},
		{"absolute, missed by a little", "chat_steady", "latency_p99_ms", val(0.503), []cell{val(1)}, false, "**no** (0.503 > 0.50)"},
		{"absolute, noted", "chat_steady", "latency_p99_ms", noted(0.4, "run 2: loss 1"), []cell{val(1)}, false, "**no** (run 2: loss 1)"},
		{"absolute, archive on against the peers", "chat_sat", "server_cpu_us_per_msg", val(18), []cell{val(30), val(40)}, true, "yes (1.67×)"},
		// Absolute only: the same bound for both row sets.
		{"absolute only, met", "idle_many", "server_rss_after_mb", val(1500), nil, true, "yes (1,500 ≤ 2,048)"},
		{"absolute only, missed", "idle_many", "server_rss_after_mb", val(2100), nil, false, "**no** (2,100 > 2,048)"},
		// Ratio to a fresh process of the same server: ≥ 0.95, no peers.
		{"ratio, met", "chat_churn", "delivered_per_s", val(0.96), nil, false, "yes"},
		{"ratio, met exactly", "chat_churn", "delivered_per_s", val(0.95), nil, true, "yes"},
		{"ratio, missed", "chat_churn", "delivered_per_s", val(0.94), nil, false, "**no**"},
		{"ratio, noted", "chat_churn", "delivered_per_s", noted(0.99, "run 1: loss 2"), nil, false, "**no**"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rw := rowOf(t, many, tc.scenario, tc.metric)
			if got := rw.met(tc.sb, tc.peers, tc.archiveOn); got != tc.want {
				t.Errorf("met = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("absolute only, at a smaller scale", func(t *testing.T) {
		rw := rowOf(t, "40,000", "idle_many", "server_rss_after_mb")
		want := "**no** (measured with 40,000 sessions, not 100,000 (open-files limit))"
		if got := rw.met(val(1500), nil, false); got != want {
			t.Errorf("met = %q, want %q", got, want)
		}
	})
}

func TestTarget(t *testing.T) {
	cases := []struct{ scenario, metric, want string }{
		{"login_tcp", "logins_per_s", "≥ 2× the better peer (archive on: ≥ 1.5×)"},
		{"presence", "presence_complete_s", "≤ 1/2 of the better peer (archive on: ≤ 1/1.5)"},
		{"chat_sat", "server_cpu_us_per_msg", "≤ 20 (archive on: ≤ 1/1.5 of the better peer)"},
		{"chat_steady", "latency_p99_ms", "≤ 0.5 (archive on: ≤ 1/1.5 of the better peer)"},
		{"idle", "server_rss_per_session_kb", "≤ 15.6 (archive on: ≤ 1/1.5 of the better peer)"},
		{"idle_many", "server_rss_after_mb", "≤ 2,048 with 100,000 sessions, none dropped"},
		{"chat_churn", "delivered_per_s", "≥ 95 % of a fresh process"},
		{"chat_sm", "delivered_per_s", "≥ 2× the better peer (archive on: ≥ 1.5×)"},
	}
	for _, tc := range cases {
		t.Run(tc.scenario+"/"+tc.metric, func(t *testing.T) {
			if got := rowOf(t, "100,000", tc.scenario, tc.metric).target(); got != tc.want {
				t.Errorf("target = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestStreamManagementRunCounts: a chat_sm run counts only without loss
// and with acknowledgements both ways.
func TestStreamManagementRunCounts(t *testing.T) {
	invalid := rowOf(t, "100,000", "chat_sm", "delivered_per_s").invalid
	for _, tc := range []struct {
		m    metrics
		want string
	}{
		{metrics{"loss": 0, "sm_acks_read": 10, "sm_requests_answered": 3}, ""},
		{metrics{"loss": 2, "sm_acks_read": 10, "sm_requests_answered": 3}, "loss 2.00"},
		{metrics{"loss": 0, "sm_acks_read": 0, "sm_requests_answered": 3}, "no acknowledgement from the server"},
		{metrics{"loss": 0, "sm_acks_read": 10}, "no request from the server"},
		{metrics{"loss": 0}, "no acknowledgement from the server, no request from the server"},
	} {
		if got := invalid(tc.m); got != tc.want {
			t.Errorf("invalid(%v) = %q, want %q", tc.m, got, tc.want)
		}
	}
}

// writeFile writes data to dir/name, making its directories.
func writeFile(t *testing.T, dir, name, data string) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func result(scenario, metrics string) string {
	return `{"scenario":"` + scenario + `","params":{"users":200},"metrics":{` + metrics + `}}`
}

// TestReport runs the report on a small results directory and checks the
// table's cells, the notes, the per-run values and that the hand-written
// analysis of the existing output survives, twice over.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "results")
	for name, data := range map[string]string{
		"switchboard/chat_sat/run1.json":   result("chat", `"delivered_per_s": 10000, "loss": 0, "server_cpu_us_per_msg": 12`),
		"switchboard/chat_sat/run2.json":   result("chat", `"delivered_per_s": 30000, "loss": 0, "server_cpu_us_per_msg": 30`),
		"switchboard/chat_sat/run3.json":   result("chat", `"delivered_per_s": 20000, "loss": 0, "server_cpu_us_per_msg": 14`),
		"switchboard/chat_sat/run2.host":   "other_cpu_pct: 40\nsteal_pct: 1\n",
		"switchboard/chat_churn/run1.json": result("chat", `"delivered_per_s": 9900, "loss": 0`),
		"switchboard/chat_churn/run2.json": result("chat", `"delivered_per_s": 29100, "loss": 0`),
		"switchboard/chat_churn/run3.json": result("chat", `"delivered_per_s": 19400, "loss": 0`),
		"prosody/chat_sat/run1.json":       result("chat", `"delivered_per_s": 8000, "loss": 0, "server_cpu_us_per_msg": 40`),
		"prosody/chat_sat/run2.json":       result("chat", `"delivered_per_s": 9000, "loss": 0, "server_cpu_us_per_msg": 36`),
		"ejabberd/chat_sat/run1.json":      result("chat", `"delivered_per_s": 9500, "loss": 0, "server_cpu_us_per_msg": 33`),
		"ejabberd/chat_sat/run2.err":       "starting ejabberd\nxmppbench: dial tcp 127.0.0.1:5222: connection refused\n",
		"ejabberd/chat_sat/notes.txt":      "not a run: ignored",
	} {
		writeFile(t, res, name, data)
	}
	writeFile(t, dir, "machine.txt", `date: 2026-01-02 03:04 UTC
runs: 3
cpus: 2
cpu model: Test CPU @ 3.0GHz
memory: 8 GiB
chat users: 200
presence users: 1000
presence contacts: 20
idle sessions: 10000
idle sessions, many: 100000
duration: 10s
logins: 2000
`)
	out := filepath.Join(dir, "docs", "performance.md")
	const analysis = "### Analysis\n\nHand-written: the router costs 3 µs a message."
	writeFile(t, dir, "docs/performance.md", "# Old report\n\n| stale | table |\n\n"+
		markBegin+"\n"+analysis+"\n"+markEnd+"\n")

	for pass := 1; pass <= 2; pass++ {
		if err := run1(res, filepath.Join(dir, "machine.txt"), "", out); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)

	for _, want := range []string{
		"Generated by `make bench-compare` (`bench/compare.sh`, load from `cmd/xmppbench`) on 2026-01-02 03:04 UTC; medians of 3 runs.",
		"- cpu model: Test CPU @ 3.0GHz\n",
		"- kernel: ?\n",
		// Only the servers with results are columns.
		"| scenario | Switchboard, archive off | Prosody | ejabberd | target | met? (archive off) | met? (archive on) |\n|---|---:|---:|---:|---|---|---|\n",
		// Medians: 20,000 of three runs, 8,500 of two; ejabberd's failed
		// run is left out and counted. 20,000 / 9,500 = 2.11×.
		"| 1:1 chat at saturation, delivered msgs/s (zero loss) | 20,000 | 8,500 | 9,500 † (1 of 2 runs) | ≥ 2× the better peer (archive on: ≥ 1.5×) | yes (2.11×) | not run |\n",
		// Lower is better, absolute bound with the archive off: 14 ≤ 20.
		"| server CPU per delivered message (chat at saturation), µs | 14.0 | 38.0 | 33.0 † (1 of 2 runs) | ≤ 20 (archive on: ≤ 1/1.5 of the better peer) | yes (14.0 ≤ 20.0) | not run |\n",
		// Ratio of the paired runs: 0.99, 0.97, 0.97; msgs/s the median.
		"| chat throughput after 10,000 sessions logged in and out, vs a fresh process | 19,400 msgs/s (97 % of fresh) | not run | not run | ≥ 95 % of a fresh process | yes | not run |\n",
		"| logins/s, SCRAM-SHA-1, plain TCP | not run | not run | not run | ≥ 2× the better peer (archive on: ≥ 1.5×) | no data | not run |\n",
		"- 1:1 chat at saturation, delivered msgs/s (zero loss) — ejabberd: run 2 failed: xmppbench: dial tcp 127.0.0.1:5222: connection refused\n",
		// Per-run values in run order; * marks the busy run.
		"| 1:1 chat at saturation, delivered msgs/s (zero loss) | 10,000 / 30,000* / 20,000 | 8,000 / 9,000 | 9,500 / failed |\n",
		"- Switchboard, archive off, chat_sat, run 2: other processes used 40 % of a core\n",
		"No profile: the Switchboard measured does not write one",
		// The method's counts come from the run's settings.
		"beyond their 200 chat accounts",
		"its 20,000 roster items",
		"- Chat: 200 users in pairs,",
		"\n" + markBegin + "\n" + analysis + "\n" + markEnd + "\n",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(doc, "stale") || strings.Contains(doc, "TODO") {
		t.Error("report kept the old text outside the analysis markers, or replaced the analysis")
	}
	if n := strings.Count(doc, markBegin); n != 1 {
		t.Errorf("%d analysis sections, want 1", n)
	}
	if !strings.HasSuffix(doc, markEnd+"\n") {
		t.Errorf("report does not end with the analysis: ...%q", doc[max(0, len(doc)-80):])
	}

	// Without an earlier output, the analysis is the placeholder.
	fresh := filepath.Join(dir, "fresh", "performance.md")
	if err := run1(res, filepath.Join(dir, "machine.txt"), "", fresh); err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if want := markBegin + "\n" + analysisTODO + markEnd + "\n"; !strings.HasSuffix(string(data), want) {
		t.Errorf("fresh report does not end with the placeholder analysis %q", want)
	}
}

func TestReportErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "machine.txt", "runs: 1\n")
	writeFile(t, dir, "bad/switchboard/chat_sat/run1.json", "{not json")
	machine := filepath.Join(dir, "machine.txt")
	cases := []struct {
		name, results, machine, want string
	}{
		{"no results", "", machine, "-results and -machine are required"},
		{"no machine", dir, "", "-results and -machine are required"},
		{"bad JSON", filepath.Join(dir, "bad"), machine, filepath.Join("chat_sat", "run1.json") + ": invalid character"},
		{"missing machine file", dir, filepath.Join(dir, "absent.txt"), "absent.txt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.md")
			err := run1(tc.results, tc.machine, "", out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run1 = %v, want an error with %q", err, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output written despite the error (stat: %v)", err)
			}
		})
	}
}
