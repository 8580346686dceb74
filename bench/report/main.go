package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// server is a column of the table.
type server struct {
	key, name string
	features  string
}

var servers = []server{
	{"switchboard", "Switchboard, archive off",
		"defaults except: TLS not required (STARTTLS offered), rate limits off (inbound byte rate, connections per address, failed-login delay), " +
			"registration open, `archive_default = \"never\"` (no 1:1 archive; rooms still keep their room archive). " +
			"On: SCRAM-SHA-1/-256, roster, presence, offline storage, carbons, blocking, stream management with resumption (XEP-0198), MUC, issue chats. Config: `bench/switchboard.toml`."},
	{"switchboard-archive", "Switchboard, archive on (default)",
		"as above with the default `archive_default = \"always\"`: every 1:1 message is archived for both parties (XEP-0313), " +
			"a second row set with a feature the peers do not run here."},
	{"prosody", "Prosody",
		"Debian's package, `bench/prosody.cfg.lua`: epoll backend, TLS not required (STARTTLS offered), SCRAM-SHA-1 (internal_hashed, 4096 iterations), " +
			"open registration, no mod_limits, roster, presence, offline, carbons, blocklist, disco, ping, version, time, uptime, last activity, MUC " +
			"(20 messages of in-memory history), stream management (mod_smacks, its defaults); no MAM, no s2s."},
	{"ejabberd", "ejabberd",
		"Debian's package, `bench/ejabberd.yml`: Mnesia, STARTTLS offered not required, SCRAM-SHA-1 stored as SCRAM, open registration " +
			"(`registration_timeout: infinity`), c2s shaper none, roster, presence, offline, carbons, privacy/blocking, disco, ping, version, time, " +
			"last activity, MUC (20 messages of history, no message/presence intervals), stream management (mod_stream_mgmt, its defaults); no MAM, no s2s."},
}

// row is a line of the table: one metric of one scenario.
type row struct {
	label    string // with the unit
	scenario string
	metric   string
	higher   bool    // higher is better
	factor   float64 // target: Switchboard this many times better than the better peer
	// abs, when set, is an absolute upper bound (lower-is-better rows)
	// that replaces the relative target for the comparable set.
	abs float64
	// ratioTo, when set, makes the row the ratio metric(scenario) /
	// metric(ratioTo) of the same server, with target ratio ≥ factor.
	ratioTo string
	// absOnly makes abs the target of both row sets, with no peer
	// comparison; short, when set, says why the run cannot meet it
	// (measured at a smaller scale than the target states).
	absOnly bool
	short   string
	// invalid returns why a run does not count as the row describes it
	// ("" if it does).
	invalid func(m metrics) string
}

func zeroLoss(m metrics) string {
	var why []string
	for _, k := range []string{"loss", "errors", "dropped_sessions"} {
		if v, ok := m[k]; ok && v != 0 {
			why = append(why, fmt.Sprintf("%s %s", strings.ReplaceAll(k, "_", " "), num(v)))
		}
	}
	return strings.Join(why, ", ")
}

func noErrors(m metrics) string {
	if v := m["errors"]; v != 0 {
		return "errors " + num(v)
	}
	return ""
}

// manySessions is the scale of the idle100k target.
const manySessions = 100000

// rows are the table's rows; idle and many are the sessions of the idle
// scenarios (as the machine file states them).
func rows(idle, many string) []row {
	short := ""
	if n, err := strconv.Atoi(strings.ReplaceAll(many, ",", "")); err == nil && n < manySessions {
		short = "measured with " + many + " sessions, not " + commas(strconv.Itoa(manySessions)) + " (open-files limit)"
	}
	return []row{
		{label: "1:1 chat at saturation, delivered msgs/s (zero loss)", scenario: "chat_sat", metric: "delivered_per_s",
			higher: true, factor: 2, invalid: zeroLoss},
		{label: "server CPU per delivered message (chat at saturation), µs", scenario: "chat_sat", metric: "server_cpu_us_per_msg",
			factor: 2, abs: 20},
		{label: "p99 latency at a steady 5,000 msgs/s, ms", scenario: "chat_steady", metric: "latency_p99_ms",
			factor: 2, abs: 0.5, invalid: func(m metrics) string {
				if why := zeroLoss(m); why != "" {
					return why
				}
				if r, ok := m["delivered_per_s"]; ok && r < 0.95*5000 {
					return "only " + num(r) + " msgs/s delivered"
				}
				return ""
			}},
		{label: "1:1 chat at saturation, clients with stream management (XEP-0198), delivered msgs/s (zero loss)", scenario: "chat_sm", metric: "delivered_per_s",
			higher: true, factor: 2, invalid: func(m metrics) string {
				if why := zeroLoss(m); why != "" {
					return why
				}
				// A run in which acknowledgements did not go both ways
				// did not measure stream management.
				var why []string
				if m["sm_acks_read"] == 0 {
					why = append(why, "no acknowledgement from the server")
				}
				if m["sm_requests_answered"] == 0 {
					why = append(why, "no request from the server")
				}
				return strings.Join(why, ", ")
			}},
		{label: "RSS per idle authenticated session (" + idle + " sessions), KiB", scenario: "idle", metric: "server_rss_per_session_kb",
			factor: 2, abs: 16000.0 / 1024, invalid: func(m metrics) string {
				if v := m["dropped"]; v != 0 {
					return "dropped " + num(v)
				}
				return ""
			}},
		{label: "server RSS with " + many + " idle authenticated sessions (Switchboard as shipped, one run), MiB", scenario: "idle_many",
			metric: "server_rss_after_mb", abs: 2048, absOnly: true, short: short, invalid: func(m metrics) string {
				if v := m["dropped"]; v != 0 {
					return "dropped " + num(v)
				}
				return ""
			}},
		{label: "logins/s, SCRAM-SHA-1, plain TCP", scenario: "login_tcp", metric: "logins_per_s",
			higher: true, factor: 2, invalid: noErrors},
		{label: "logins/s, SCRAM-SHA-1, STARTTLS", scenario: "login_starttls", metric: "logins_per_s",
			higher: true, factor: 2, invalid: noErrors},
		{label: "MUC fan-out deliveries/s, 50 occupants, 10 senders", scenario: "muc_50", metric: "deliveries_per_s",
			higher: true, factor: 2, invalid: zeroLoss},
		{label: "MUC fan-out deliveries/s, 200 occupants, 10 senders", scenario: "muc_200", metric: "deliveries_per_s",
			higher: true, factor: 2, invalid: zeroLoss},
		{label: "presence storm: 1,000 users × 20 mutual contacts log in at once, s until all presence is seen", scenario: "presence",
			metric: "presence_complete_s", factor: 2, invalid: func(m metrics) string {
				if v := m["incomplete_users"]; v != 0 {
					return num(v) + " users incomplete"
				}
				return ""
			}},
		{label: "chat throughput after " + idle + " sessions logged in and out, vs a fresh process", scenario: "chat_churn",
			metric: "delivered_per_s", higher: true, factor: 0.95, ratioTo: "chat_sat", invalid: zeroLoss},
	}
}

type metrics map[string]float64

// run is one run of a scenario on a server.
type run struct {
	n    int
	m    metrics // nil if the run failed
	err  string  // the run failed: last line of its output
	host metrics // what else used the machine meanwhile (runN.host)
}

// results[server][scenario] are the runs, by run number.
type results map[string]map[string][]run

// busyHost is the share of one core that other processes (or other
// guests, as steal time) may take during a run before the run is flagged.
const busyHost = 20

func load(dir string) (results, error) {
	byN := map[string]map[string]map[int]*run{}
	re := regexp.MustCompile(`^run(\d+)\.(json|err|host)$`)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 3 {
			return nil
		}
		mm := re.FindStringSubmatch(parts[2])
		if mm == nil {
			return nil
		}
		n, _ := strconv.Atoi(mm[1])
		if byN[parts[0]] == nil {
			byN[parts[0]] = map[string]map[int]*run{}
		}
		if byN[parts[0]][parts[1]] == nil {
			byN[parts[0]][parts[1]] = map[int]*run{}
		}
		r := byN[parts[0]][parts[1]][n]
		if r == nil {
			r = &run{n: n}
			byN[parts[0]][parts[1]][n] = r
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch mm[2] {
		case "err":
			r.err = lastLine(string(data))
		case "host":
			r.host = keyValues(string(data))
		default:
			var v struct {
				Metrics metrics `json:"metrics"`
			}
			if err := json.Unmarshal(data, &v); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			r.m = v.Metrics
		}
		return nil
	})
	res := results{}
	for srv, bySc := range byN {
		res[srv] = map[string][]run{}
		for sc, runs := range bySc {
			for _, r := range runs {
				if r.m == nil && r.err == "" {
					r.err = "no result"
				}
				res[srv][sc] = append(res[srv][sc], *r)
			}
			slices.SortFunc(res[srv][sc], func(a, b run) int { return a.n - b.n })
		}
	}
	return res, err
}

// keyValues parses "key: number" lines.
func keyValues(s string) metrics {
	m := metrics{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			m[strings.TrimSpace(k)] = f
		}
	}
	return m
}

// noisy says what else used the machine during r, if that was more than
// busyHost % of a core.
func (r run) noisy() string {
	var why []string
	if v := r.host["other_cpu_pct"]; v > busyHost {
		why = append(why, fmt.Sprintf("other processes used %.0f %% of a core", v))
	}
	if v := r.host["steal_pct"]; v > busyHost {
		why = append(why, fmt.Sprintf("steal time %.0f %% of a core", v))
	}
	return strings.Join(why, ", ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 160 {
		l = l[:160] + "…"
	}
	return l
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cell is a row's median for one server.
type cell struct {
	value   float64 // NaN: no run succeeded
	base    float64 // ratio rows: the value the ratio is taken of
	ok, all int     // successful runs, runs
	notes   []string
}

// values are the row's metric in the successful runs of scenario, and a
// note per run that failed or does not count as the row describes it.
func (rw row) values(res results, srv, scenario string) (xs []float64, all int, notes []string) {
	runs := res[srv][scenario]
	for _, r := range runs {
		if r.err != "" {
			notes = append(notes, fmt.Sprintf("run %d failed: %s", r.n, r.err))
			continue
		}
		v, ok := r.m[rw.metric]
		if !ok {
			notes = append(notes, fmt.Sprintf("run %d: no metric %s", r.n, rw.metric))
			continue
		}
		if rw.invalid != nil {
			if why := rw.invalid(r.m); why != "" {
				notes = append(notes, fmt.Sprintf("run %d: %s", r.n, why))
			}
		}
		xs = append(xs, v)
	}
	return xs, len(runs), notes
}

func (rw row) cell(res results, srv string) cell {
	xs, all, notes := rw.values(res, srv, rw.scenario)
	c := cell{value: median(xs), ok: len(xs), all: all, notes: notes}
	if rw.ratioTo != "" {
		var pairs int
		var unpaired []string
		c.base = c.value
		c.value, pairs, unpaired = rw.pairedRatio(res, srv)
		c.ok = pairs
		c.notes = append(c.notes, unpaired...)
	}
	return c
}

// pairedRatio is the median over runs of metric(scenario) /
// metric(ratioTo) within the same run number: compare.sh measures the two
// close together (see its stages), so a slow drift of the machine's speed cancels in each
// ratio instead of landing in the ratio of two medians. Runs where either
// side failed are left out, with a note each when only the fresh side
// is missing; a fresh run that does not count as the row describes it
// (lost messages) is noted; the ratio is NaN if no pair remains.
func (rw row) pairedRatio(res results, srv string) (ratio float64, pairs int, notes []string) {
	base := map[int]float64{}
	for _, r := range res[srv][rw.ratioTo] {
		if v, ok := r.m[rw.metric]; ok && r.err == "" && v > 0 {
			base[r.n] = v
			// Noted as the churned side is (values): the cell does
			// not count as the row describes it.
			if rw.invalid != nil {
				if why := rw.invalid(r.m); why != "" {
					notes = append(notes, fmt.Sprintf("run %d: fresh %s: %s", r.n, rw.ratioTo, why))
				}
			}
		}
	}
	var ratios []float64
	for _, r := range res[srv][rw.scenario] {
		v, ok := r.m[rw.metric]
		if !ok || r.err != "" {
			continue // values() already notes it
		}
		b, paired := base[r.n]
		if !paired {
			notes = append(notes, fmt.Sprintf("run %d: no fresh %s of the same run to compare with", r.n, rw.ratioTo))
			continue
		}
		ratios = append(ratios, v/b)
	}
	return median(ratios), len(ratios), notes
}

func num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "—"
	case a >= 1000:
		return commas(strconv.FormatFloat(v, 'f', 0, 64))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func commas(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func (rw row) format(c cell) string {
	if c.ok == 0 {
		if c.all == 0 {
			return "not run"
		}
		return "failed"
	}
	s := num(c.value)
	if rw.ratioTo != "" {
		pct := "—"
		if !math.IsNaN(c.value) {
			pct = strconv.FormatFloat(100*c.value, 'f', 0, 64)
		}
		s = fmt.Sprintf("%s msgs/s (%s %% of fresh)", num(c.base), pct)
	}
	if len(c.notes) > 0 {
		s += " †"
	}
	if c.ok < c.all {
		s += fmt.Sprintf(" (%d of %d runs)", c.ok, c.all)
	}
	return s
}

func (rw row) target() string {
	switch {
	case rw.ratioTo != "":
		return fmt.Sprintf("≥ %.0f %% of a fresh process", 100*rw.factor)
	case rw.absOnly:
		return fmt.Sprintf("≤ %s with %s sessions, none dropped", num(rw.abs), commas(strconv.Itoa(manySessions)))
	case rw.abs > 0:
		return fmt.Sprintf("≤ %.3g (archive on: ≤ 1/%g of the better peer)", rw.abs, archiveFactor)
	case rw.higher:
		return fmt.Sprintf("≥ %g× the better peer (archive on: ≥ %g×)", rw.factor, archiveFactor)
	default:
		return fmt.Sprintf("≤ 1/%g of the better peer (archive on: ≤ 1/%g)", rw.factor, archiveFactor)
	}
}

// archiveFactor is the advantage over the better peer the row set with
// the archive on must keep (a feature the peers do not run).
const archiveFactor = 1.5

// met compares Switchboard's cell with the peers' and the target.
func (rw row) met(sb cell, peers []cell, archiveOn bool) string {
	if sb.ok == 0 {
		return "no data"
	}
	valid := len(sb.notes) == 0
	if rw.absOnly || (rw.abs > 0 && !archiveOn) {
		switch {
		case rw.short != "":
			return "**no** (" + rw.short + ")"
		case !valid:
			return "**no** (" + strings.Join(sb.notes, "; ") + ")"
		case sb.value <= rw.abs:
			return fmt.Sprintf("yes (%s ≤ %s)", num(sb.value), num(rw.abs))
		}
		return fmt.Sprintf("**no** (%s > %s)", shown(sb.value, rw.abs, num), num(rw.abs))
	}
	factor := rw.factor
	if archiveOn && rw.ratioTo == "" {
		factor = archiveFactor
	}
	if rw.ratioTo != "" {
		if sb.value >= rw.factor && valid {
			return "yes"
		}
		return "**no**"
	}
	best := math.NaN()
	for _, p := range peers {
		if p.ok == 0 || math.IsNaN(p.value) {
			continue
		}
		if math.IsNaN(best) || (rw.higher && p.value > best) || (!rw.higher && p.value < best) {
			best = p.value
		}
	}
	if math.IsNaN(best) {
		return "no peer data"
	}
	adv := sb.value / best
	if !rw.higher {
		adv = best / sb.value
	}
	verdict := "yes"
	if adv < factor || !valid {
		verdict = "**no**"
	}
	s := two(adv)
	if adv < factor {
		s = shown(adv, factor, two)
	}
	return fmt.Sprintf("%s (%s×)", verdict, s)
}

// shown formats a miss v as format does, or with one more decimal at a
// time until it tells v from its target (1.9996 is not 2.00, 0.503 not
// 0.50, 20.04 not 20.0), keeping the format's thousands separators.
func shown(v, target float64, format func(float64) string) string {
	s := format(v)
	if s != format(target) {
		return s
	}
	p := 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		p = len(s) - i - 1
	}
	grouped := strings.Contains(s, ",")
	for p++; p < 17; p++ {
		if d := strconv.FormatFloat(v, 'f', p, 64); d != strconv.FormatFloat(target, 'f', p, 64) {
			if grouped {
				whole, frac, _ := strings.Cut(d, ".")
				d = commas(whole) + "." + frac
			}
			return d
		}
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func readMachine(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var kv [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if ok {
			kv = append(kv, [2]string{k, v})
		}
	}
	return kv, sc.Err()
}

func get(kv [][2]string, key string) string {
	for _, p := range kv {
		if p[0] == key {
			return p[1]
		}
	}
	return "?"
}

const (
	markBegin = "<!-- analysis:begin (kept across runs of make bench-compare) -->"
	markEnd   = "<!-- analysis:end -->"
)

const analysisTODO = `### Analysis

**TODO (lead):** what the profiles above say: where Switchboard spends its CPU
per message, and what the archive adds. This subsection, between its markers,
is kept when the file is regenerated.
`

func keptSection(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s := string(data)
	i, j := strings.Index(s, markBegin), strings.Index(s, markEnd)
	if i < 0 || j < i {
		return ""
	}
	return strings.TrimSpace(s[i+len(markBegin) : j])
}

// profileTop is pprof's -top output for server in dir, without the lines
// naming local files, or "".
func profileTop(dir, server string) string {
	if dir == "" {
		return ""
	}
	data, err := os.ReadFile(filepath.Join(dir, server+".txt"))
	if err != nil {
		return ""
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if strings.HasPrefix(l, "File: ") || strings.HasPrefix(l, "Build ID: ") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

func main() {
	resDir := flag.String("results", "", "results directory of bench/compare.sh")
	machineFile := flag.String("machine", "", "machine description (key: value lines)")
	profiles := flag.String("profiles", "", "directory of pprof -top outputs, SERVER.txt")
	out := flag.String("out", "docs/performance.md", "Markdown file to write")
	flag.Parse()
	if err := run1(*resDir, *machineFile, *profiles, *out); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run1(resDir, machineFile, profiles, out string) error {
	if resDir == "" || machineFile == "" {
		return errors.New("-results and -machine are required")
	}
	res, err := load(resDir)
	if err != nil {
		return err
	}
	kv, err := readMachine(machineFile)
	if err != nil {
		return err
	}
	var present []server
	for _, s := range servers {
		if res[s.key] != nil {
			present = append(present, s)
		}
	}

	idle, many := commas(get(kv, "idle sessions")), commas(get(kv, "idle sessions, many"))
	chatUsers := commas(get(kv, "chat users"))
	rosterItems := "?"
	if n, err := strconv.Atoi(get(kv, "presence users")); err == nil {
		if r, err := strconv.Atoi(get(kv, "presence contacts")); err == nil {
			rosterItems = commas(strconv.Itoa(n * r))
		}
	}
	table := rows(idle, many)

	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	// header writes a table's header: the scenario column, a column per
	// server present (with its alignment, align) and the columns after.
	header := func(align string, after ...string) {
		p("| scenario |")
		for _, s := range present {
			p(" %s |", s.name)
		}
		for _, c := range after {
			p(" %s |", c)
		}
		p("\n|---|")
		for range present {
			p("%s|", align)
		}
		for range after {
			p("---|")
		}
		p("\n")
	}
	p("# Performance: Switchboard, Prosody and ejabberd\n\n")
	p("Generated by `make bench-compare` (`bench/compare.sh`, load from `cmd/xmppbench`) on %s; ", get(kv, "date"))
	p("medians of %s runs. Regenerate rather than edit: only the \"Analysis\" subsection is kept.\n\n", get(kv, "runs"))

	p("## Machine\n\n")
	for _, k := range []string{"cpus", "cpu model", "memory", "kernel", "os", "go", "switchboard", "prosody", "ejabberd", "open files limit", "elapsed"} {
		p("- %s: %s\n", k, get(kv, k))
	}
	p("\nServer and load generator share the machine: every figure includes the\n")
	p("client's CPU use on the same %s cores, for every server alike. Prosody runs on one\n", get(kv, "cpus"))
	p("core by design; Switchboard and ejabberd use both. Server CPU is the process's\n")
	p("user + system time from /proc. Runs during which something else was busy on the\n")
	p("machine are marked in [Runs](#runs).\n\n")

	p("## Results\n\n")
	header("---:", "target", "met? (archive off)", "met? (archive on)")
	var notes []string
	for _, rw := range table {
		cells := map[string]cell{}
		p("| %s |", rw.label)
		for _, s := range present {
			c := rw.cell(res, s.key)
			cells[s.key] = c
			p(" %s |", rw.format(c))
			for _, n := range c.notes {
				notes = append(notes, fmt.Sprintf("%s — %s: %s", rw.label, s.name, n))
			}
		}
		var peers []cell
		for _, k := range []string{"prosody", "ejabberd"} {
			if c, ok := cells[k]; ok {
				peers = append(peers, c)
			}
		}
		met := func(k string) string {
			c, ok := cells[k]
			if !ok {
				return "not run"
			}
			return rw.met(c, peers, k == "switchboard-archive")
		}
		p(" %s | %s | %s |\n", rw.target(), met("switchboard"), met("switchboard-archive"))
	}
	p("\n\"Better peer\" is the better of Prosody and ejabberd in that row; the factor in\n")
	p("\"met?\" is Switchboard's advantage over it (>1: Switchboard is better). The\n")
	p("comparable set is \"archive off\"; \"archive on\" is Switchboard as shipped.\n")
	if len(notes) > 0 {
		p("\n† Runs that failed or do not count as the row describes (the median is over\n")
		p("the runs that produced a value; a † cell never meets its target):\n\n")
		for _, n := range notes {
			p("- %s\n", n)
		}
	}

	p("\n## Features on per server\n\n")
	for _, s := range present {
		p("- **%s**: %s\n", s.name, s.features)
	}

	p("\n## Method and scaling\n\n")
	p("- Each server listens on its own loopback port with its own configuration and data\n")
	p("  directory under a scratch directory; Debian's system instances are not used.\n")
	p("- Accounts are registered in-band (XEP-0077) once per server, and the presence\n")
	p("  contacts subscribed with real subscription stanzas, the servers side by side\n")
	p("  (this is not measured); every measured run starts a fresh server process on a\n")
	p("  copy of that data. Registering costs Prosody and ejabberd a password hash each\n")
	p("  (Prosody about 130 registrations/s on its one core, ejabberd about 14 ms of CPU\n")
	p("  each): beyond their %s chat accounts, registered in-band, their accounts are\n", chatUsers)
	p("  copies of the first one's (the same password, so the same stored keys: Prosody's\n")
	p("  account files, ejabberd's passwd records loaded from a Mnesia text dump), the\n")
	p("  first copy checked by a login. Prosody confirms only about 90 subscriptions/s, so\n")
	p("  its %s roster items are written into its storage directly (the files it would\n", rosterItems)
	p("  have written) and checked by the presence scenario's setup. The measured presence\n")
	p("  runs start from the seed's rosters without setting them up again, so the storm\n")
	p("  meets an idle server.\n")
	p("- Before each scenario the script waits until the server is idle (under 5 %% of a\n")
	p("  core for 0.5 s, at most 60 s), so no scenario pays for the previous one's tail.\n")
	p("- Scenario groups, each on one fresh process: (1) chat at saturation, chat at a\n")
	p("  steady 5,000 msgs/s, chat at saturation with stream management, logins on plain\n")
	p("  TCP, logins with STARTTLS, MUC with 50 and 200 occupants; (2) idle sessions,\n")
	p("  then chat again on the same process after those sessions logged in and out (the\n")
	p("  churn row, against (1)'s fresh chat); (3) the\n")
	p("  presence storm. Within a group, runs alternate servers and the order rotates run\n")
	p("  by run. Groups (1) and (2) run back to back for each server, (1) first in odd\n")
	p("  runs and (2) first in even ones; the churn row's percentage is the median of the\n")
	p("  per-run ratios (run n's churned chat over run n's fresh chat), so that a drift of\n")
	p("  the machine's speed over minutes cancels; its msgs/s is the median of the runs.\n")
	p("  The two chats are adjacent when (2) goes first; when (1) goes first, the rest of\n")
	p("  (1) and (2)'s logins lie between them.\n")
	p("- Chat: %s users in pairs, 32-byte bodies, at most 8 messages in flight per sender.\n", chatUsers)
	p("  With stream management (XEP-0198) each client enables it with resumption after\n")
	p("  binding, asks for an acknowledgement with every fifth stanza (slixmpp's default)\n")
	p("  and answers the server's requests; a run counts only if acknowledgements went\n")
	p("  both ways. That row is not among the stated targets: it holds the chat row's\n")
	p("  target for clients as they are deployed (Conversations, Monal, Dino, Gajim and\n")
	p("  slixmpp enable stream management).\n")
	p("  MUC: 10 of the occupants send, 32-byte bodies, at most 4 messages per sender not\n")
	p("  yet received by every occupant. Both: %s.\n", get(kv, "duration"))
	p("- Logins: %s; each a full connect, SASL SCRAM-SHA-1,\n", get(kv, "logins"))
	p("  bind and stream close, many in\n")
	p("  parallel because ejabberd takes about 100 ms to close an authenticated stream,\n")
	p("  which with few workers would be measured instead of its CPU. Each account logs\n")
	p("  in once before the timed logins (the client derives its SCRAM keys there, once per\n")
	p("  account, as real clients do). With STARTTLS the client offers X25519 only, the key\n")
	p("  exchange the peers' OpenSSL 3.0 negotiates (Go's default offer would add an ML-KEM\n")
	p("  hybrid that only Switchboard can accept and pay for).\n")
	p("- Idle: %s sessions with initial presence (the target is stated for 10,000; fewer only\n", idle)
	p("  when the open-files limit does not allow it); RSS growth from before the logins to\n")
	p("  1 s after the last, divided by the sessions. Many idle sessions: %s (the target is\n", many)
	p("  stated for 100,000; fewer only when the open-files limit cannot be raised), the\n")
	p("  idle accounts with up to 10 resources each, connecting from 127.0.0.1-127.0.0.8\n")
	p("  (~28,000 ephemeral ports per address), Switchboard as shipped, one run; the\n")
	p("  server's RSS 1 s after the last login.\n")
	p("- Scaled to finish within 20 minutes on 2 cores: %s runs, short measurement windows\n", get(kv, "runs"))
	p("  as above. Prosody stores SCRAM credentials with 4096 iterations like the others\n")
	p("  (its default is 10000; this changes registration cost only). Prosody's and\n")
	p("  ejabberd's listen backlogs are raised to 4096 (Switchboard listens with the kernel's\n")
	p("  somaxconn) so that login storms measure the servers rather than SYN retransmits.\n")
	p("- Raw results: run with `BENCH_KEEP=1` to keep the scratch directory (JSON per run,\n")
	p("  server logs).\n")

	p("\n## Runs\n\n")
	p("Each run's value of the row's metric, in run order. * marks a run during which\n")
	p("something else used more than %d %% of a core (other processes on the machine, or\n", busyHost)
	p("steal time from other guests of the hypervisor): its figures may be low.\n\n")
	header("---")
	for _, rw := range table {
		p("| %s |", rw.label)
		for _, s := range present {
			var vs []string
			for _, r := range res[s.key][rw.scenario] {
				v, ok := r.m[rw.metric]
				switch {
				case !ok || r.err != "":
					vs = append(vs, "failed")
				case r.noisy() != "":
					vs = append(vs, num(v)+"*")
				default:
					vs = append(vs, num(v))
				}
			}
			p(" %s |", strings.Join(vs, " / "))
		}
		p("\n")
	}

	var noisy []string
	for _, s := range present {
		scs := make([]string, 0, len(res[s.key]))
		for sc := range res[s.key] {
			scs = append(scs, sc)
		}
		slices.Sort(scs)
		for _, sc := range scs {
			for _, r := range res[s.key][sc] {
				if why := r.noisy(); why != "" {
					noisy = append(noisy, fmt.Sprintf("%s, %s, run %d: %s", s.name, sc, r.n, why))
				}
			}
		}
	}
	if len(noisy) > 0 {
		p("\nRuns with something else busy:\n\n")
		for _, n := range noisy {
			p("- %s\n", n)
		}
	}

	p("\n## Where time goes\n\n")
	profiled := false
	for _, s := range present {
		top := profileTop(profiles, s.key)
		if top == "" {
			continue
		}
		if !profiled {
			p("CPU profiles of Switchboard over one more chat-at-saturation run each, outside\n")
			p("the measured runs (`SWITCHBOARD_CPUPROFILE`: the whole process life, i.e. start,\n")
			p("one chat run as in the table, shutdown); `go tool pprof -top`, then `-top -cum`.\n")
			profiled = true
		}
		p("\n### %s\n\n```text\n%s\n```\n", s.name, top)
	}
	if !profiled {
		p("No profile: the Switchboard measured does not write one (`SWITCHBOARD_CPUPROFILE`),\n")
		p("or no Switchboard ran the main group.\n")
	}
	p("\n%s\n", markBegin)
	if kept := keptSection(out); kept != "" {
		p("%s\n", kept)
	} else {
		p("%s", analysisTODO)
	}
	p("%s\n", markEnd)

	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

// two is v with two decimals.
func two(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
