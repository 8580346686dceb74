package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"switchboard/xmpp/wire"
)

func TestHistogramPercentiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		p      float64
		want   time.Duration
		tol    float64 // relative
	}{
		{"empty", nil, 99, 0, 0},
		{"single", []time.Duration{5 * time.Millisecond}, 50, 5 * time.Millisecond, 0},
		{"small values exact", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 50, 5, 0},
		{"p100 is max", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 100, 10, 0},
		{"p0 is min", []time.Duration{7, 8, 9}, 0, 7, 0},
		{"uniform p50", uniform(1000, time.Microsecond), 50, 500 * time.Microsecond, 1.0 / 64},
		{"uniform p99", uniform(1000, time.Microsecond), 99, 990 * time.Microsecond, 1.0 / 64},
		{"large", []time.Duration{time.Hour}, 99, time.Hour, 0},
		{"negative is zero", []time.Duration{-5}, 50, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tc.values {
				h.Record(v)
			}
			got := h.Percentile(tc.p)
			if got < tc.want || float64(got) > float64(tc.want)*(1+tc.tol) {
				t.Errorf("p%v = %v, want %v (+%.1f%%)", tc.p, got, tc.want, 100*tc.tol)
			}
			if h.Count() != uint64(len(tc.values)) {
				t.Errorf("count %d, want %d", h.Count(), len(tc.values))
			}
		})
	}
}

func uniform(n int, unit time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * unit
	}
	return out
}

func TestHistogramBuckets(t *testing.T) {
	// Every value lies in its bucket, and bucket bounds are within
	// 1/64 of it.
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 123456789, 1 << 40, 1<<46 + 12345} {
		i := histIndex(v)
		up := histUpper(i)
		if v > up {
			t.Errorf("value %d above its bucket bound %d", v, up)
		}
		if i > 0 && histUpper(i-1) >= v {
			t.Errorf("value %d not above the previous bucket bound %d", v, histUpper(i-1))
		}
		if v >= histSub && float64(up-v) > float64(v)/histSub {
			t.Errorf("bucket bound %d too far above %d", up, v)
		}
	}
	if got := histIndex(math.MaxUint64); got != histBuckets-1 {
		t.Errorf("overflow index %d, want %d", got, histBuckets-1)
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name string
		stat string
		hz   int64
		want time.Duration
		err  bool
	}{
		{"plain", "1234 (switchboard) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 1000000 2000 18446744073709551615", 100, 3 * time.Second, false},
		{"odd name", "77 (a) b (c) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0", 100, 100 * time.Millisecond, false},
		{"250 Hz", "1 (x) S 0 0 0 0 0 0 0 0 0 0 500 0 0 0", 250, 2 * time.Second, false},
		{"zero hz means 100", "1 (x) S 0 0 0 0 0 0 0 0 0 0 100 0 0 0", 0, time.Second, false},
		{"truncated", "1 (x) S 0 0 0", 100, 0, true},
		{"no name", "garbage", 100, 0, true},
		{"bad number", "1 (x) S 0 0 0 0 0 0 0 0 0 0 x 0 0 0", 100, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat), tc.hz)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("cpu = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseStatusRSS(t *testing.T) {
	tests := []struct {
		name   string
		status string
		want   int64
		err    bool
	}{
		{"typical", "Name:\tswitchboard\nVmPeak:\t  900000 kB\nVmRSS:\t   20480 kB\nRssAnon:\t 1 kB\n", 20480 * 1024, false},
		{"last line without newline", "Name:\tx\nVmRSS:\t 4 kB", 4096, false},
		{"kernel thread", "Name:\tkthreadd\nState:\tS\n", 0, true},
		{"odd unit", "VmRSS:\t 4 MB\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatusRSS([]byte(tc.status))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("rss = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestClockTicks(t *testing.T) {
	var auxv []byte
	for _, kv := range [][2]uint64{{6, 4096}, {atClkTck, 250}, {0, 0}} {
		auxv = binary.NativeEndian.AppendUint64(auxv, kv[0])
		auxv = binary.NativeEndian.AppendUint64(auxv, kv[1])
	}
	if got := auxvLookup(auxv, atClkTck); got != 250 {
		t.Errorf("auxvLookup = %d, want 250", got)
	}
	if got := auxvLookup(auxv[:16], atClkTck); got != 0 {
		t.Errorf("auxvLookup without the entry = %d, want 0", got)
	}
	if hz := clockTicks(); hz <= 0 || hz > 10000 {
		t.Errorf("clockTicks() = %d", hz)
	}
}

func TestSampler(t *testing.T) {
	if _, err := newSampler(1 << 30); err == nil {
		t.Error("a sampler for a missing process: no error")
	}
	s, err := newSampler(0)
	if err != nil || s.enabled() {
		t.Fatalf("newSampler(0) = %v, %v; want a disabled sampler", s, err)
	}
}

// TestSCRAM checks the client against the example exchanges of RFC 5802
// §5 (SHA-1) and RFC 7677 §3 (SHA-256), with the cache cold and warm.
func TestSCRAM(t *testing.T) {
	tests := []struct {
		mech, nonce, serverFirst, clientFinal, serverFinal string
	}{
		{mechScramSHA1, "fyko+d2lbbFgONRv9qkxdawL",
			"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="},
		{mechScramSHA256, "rOprNGfwEbeRWgbNEkqO",
			"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
	}
	client := newSASLClient(true)
	for _, tc := range tests {
		for _, round := range []string{"cold", "cached"} {
			t.Run(tc.mech+" "+round, func(t *testing.T) {
				ex, err := client.start(tc.mech, "user", "pencil")
				if err != nil {
					t.Fatal(err)
				}
				x := ex.(*scramExchange)
				x.nonce = tc.nonce
				first, err := x.step(nil)
				if want := "n,,n=user,r=" + tc.nonce; string(first) != want || err != nil {
					t.Fatalf("client-first = %q, %v; want %q", first, err, want)
				}
				final, err := x.step([]byte(tc.serverFirst))
				if string(final) != tc.clientFinal || err != nil {
					t.Fatalf("client-final = %q, %v; want %q", final, err, tc.clientFinal)
				}
				if err := x.verified(); err == nil {
					t.Error("verified before the server signature")
				}
				if _, err := x.step([]byte(tc.serverFinal)); err != nil {
					t.Fatalf("server-final: %v", err)
				}
				if err := x.verified(); err != nil {
					t.Error(err)
				}
			})
		}
	}
	if len(client.keys) != 2 {
		t.Errorf("%d cached keys, want 2", len(client.keys))
	}
}

func TestSCRAMRejects(t *testing.T) {
	tests := []struct {
		name, serverFirst, serverFinal string
	}{
		{"foreign nonce", "r=other,s=QSXCR+Q6sek8bf92,i=4096", ""},
		{"nonce not extended", "r=abc,s=QSXCR+Q6sek8bf92,i=4096", ""},
		{"no iterations", "r=abcdef,s=QSXCR+Q6sek8bf92", ""},
		{"bad salt", "r=abcdef,s=!!!,i=4096", ""},
		{"reserved m", "m=x,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096", ""},
		{"wrong signature", "r=abcdef,s=QSXCR+Q6sek8bf92,i=1", "v=" + base64.StdEncoding.EncodeToString([]byte("nope"))},
		{"server error", "r=abcdef,s=QSXCR+Q6sek8bf92,i=1", "e=invalid-proof"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := newSASLClient(true).start(mechScramSHA1, "user", "pencil")
			if err != nil {
				t.Fatal(err)
			}
			ex.(*scramExchange).nonce = "abc"
			if _, err := ex.step(nil); err != nil {
				t.Fatal(err)
			}
			_, err = ex.step([]byte(tc.serverFirst))
			if tc.serverFinal == "" {
				if err == nil {
					t.Fatal("server-first accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ex.step([]byte(tc.serverFinal)); err == nil {
				t.Error("server-final accepted")
			}
			if ex.verified() == nil {
				t.Error("verified")
			}
		})
	}
}

func TestSASLName(t *testing.T) {
	if got := saslName("a=b,c"); got != "a=3Db=2Cc" {
		t.Errorf("saslName = %q", got)
	}
}

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:5222", true},
		{"127.1.2.3:5222", true},
		{"[::1]:5222", true},
		{"localhost:5222", true},
		{"LOCALHOST:5222", true},
		{"10.0.0.1:5222", false},
		{"0.0.0.0:5222", false},
		{"[::]:5222", false},
		{"example.org:5222", false},
		{"127.0.0.1", false},
		{"127.0.0.1:", false},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			err := checkLoopback(tc.addr)
			if (err == nil) != tc.ok {
				t.Errorf("checkLoopback(%q) = %v, want ok %v", tc.addr, err, tc.ok)
			}
		})
	}
	if err := checkLoopback("192.168.1.1:5222"); !errors.Is(err, errNotLoopback) {
		t.Errorf("non-loopback error %v is not errNotLoopback", err)
	}
}

func TestCLIRefusesRemote(t *testing.T) {
	root := newRoot()
	root.SetArgs([]string{"--addr", "192.0.2.1:5222", "login"})
	root.SetOut(new(discardWriter))
	if err := root.ExecuteContext(t.Context()); !errors.Is(err, errNotLoopback) {
		t.Errorf("remote address: err = %v, want errNotLoopback", err)
	}
}

// TestCLIFlagCombinations: flags that mean nothing without another are
// refused before anything connects.
func TestCLIFlagCombinations(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error
	}{
		{"sm-request without sm", []string{"--sm-request", "3", "login"}, "--sm-request needs --sm"},
		{"sm-request 0 without sm", []string{"--sm-request", "0", "login"}, "--sm-request needs --sm"},
		{"negative sm-request", []string{"--sm", "--sm-request", "-1", "login"}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot()
			root.SetArgs(append([]string{"--addr", "127.0.0.1:1"}, tc.args...))
			root.SetOut(new(discardWriter))
			root.SetErr(new(discardWriter))
			err := root.ExecuteContext(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// A scenario that fails still leaves a complete CPU profile.
func TestCPUProfileWrittenWhenScenarioFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every login fails
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	root := newRoot()
	root.SetArgs([]string{"--addr", addr, "--cpuprofile", prof, "--timeout", "2s", "--users", "1", "login", "--logins", "1"})
	root.SetOut(new(discardWriter))
	if err := root.ExecuteContext(t.Context()); err == nil {
		t.Fatal("login against a closed port succeeded")
	}
	data, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	// A profile is gzip-compressed protobuf; an unstopped one is empty.
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Fatalf("profile is %d bytes, not a gzip stream", len(data))
	}
}

type discardWriter struct{}

func (*discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func TestRingContacts(t *testing.T) {
	tests := []struct{ n, r int }{{10, 4}, {10, 9}, {10, 1}, {3, 2}, {200, 10}, {6, 5}}
	for _, tc := range tests {
		sets := make([][]int, tc.n)
		for i := range sets {
			sets[i] = ringContacts(i, tc.n, tc.r)
			if len(sets[i]) != tc.r {
				t.Fatalf("n=%d r=%d: user %d has %d contacts", tc.n, tc.r, i, len(sets[i]))
			}
			s := slices.Clone(sets[i])
			slices.Sort(s)
			if len(slices.Compact(s)) != tc.r || slices.Contains(s, i) {
				t.Fatalf("n=%d r=%d: user %d contacts %v have duplicates or itself", tc.n, tc.r, i, sets[i])
			}
		}
		for i, s := range sets {
			for _, j := range s {
				if !slices.Contains(sets[j], i) {
					t.Errorf("n=%d r=%d: %d has %d but not the reverse", tc.n, tc.r, i, j)
				}
			}
		}
	}
}

func TestParseMUCID(t *testing.T) {
	tests := []struct {
		in     string
		sender int
		seq    uint64
		ts     int64
		ok     bool
	}{
		{"a-ff-1234", 10, 255, 0x1234, true},
		{"0-0-0", 0, 0, 0, true},
		{"1-2", 0, 0, 0, false},
		{"x-1-2", 0, 0, 0, false},
		{"1-2-zz", 0, 0, 0, false},
	}
	for _, tc := range tests {
		s, q, ts, ok := parseMUCID(tc.in)
		if ok != tc.ok || (ok && (s != tc.sender || q != tc.seq || ts != tc.ts)) {
			t.Errorf("parseMUCID(%q) = %d %d %d %v", tc.in, s, q, ts, ok)
		}
	}
}

func TestMetricsJSON(t *testing.T) {
	m := Metrics{{"z_first", 1.5}, {"a_second", 2}, {"nan", math.NaN()}}
	data, err := json.Marshal(Result{Scenario: "x", Params: map[string]any{}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"scenario":"x","server":{"addr":""},"params":{},"metrics":{"z_first":1.5,"a_second":2,"nan":0}}`
	if string(data) != want {
		t.Errorf("JSON\n got %s\nwant %s", data, want)
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if v, ok := back.Metrics.Get("z_first"); !ok || v != 1.5 {
		t.Errorf("round trip: z_first = %v, %v", v, ok)
	}
}

func TestPacer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stop := make(chan struct{})
		p := pacer{interval: time.Millisecond}
		start := time.Now()
		for range 20 {
			if !p.wait(stop) {
				t.Fatal("stopped")
			}
		}
		if el := time.Since(start); el != 19*time.Millisecond {
			t.Errorf("20 paced sends at 1ms took %v", el)
		}
		// A sender more than a second behind skips ahead.
		time.Sleep(5 * time.Second)
		before := time.Now()
		p.wait(stop)
		if d := time.Since(before); d != 0 {
			t.Errorf("after falling behind, the next send waited %v, want 0", d)
		}
		// Phases spread senders over the interval.
		q := newPacer(10*time.Millisecond, 3, 4)
		before = time.Now()
		q.wait(stop)
		if d := time.Since(before); d != 7500*time.Microsecond {
			t.Errorf("sender 3 of 4 at 10ms started after %v, want 7.5ms", d)
		}
		close(stop)
		if p.wait(stop) {
			t.Error("wait after stop returned true")
		}
		if (&pacer{}).wait(stop) {
			t.Error("unpaced wait after stop returned true")
		}
	})
}

func TestParseSources(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // nil with bad: an error
		bad      bool
	}{
		{"empty", "", nil, false},
		{"list", "127.0.0.1, 127.0.0.3", []string{"127.0.0.1", "127.0.0.3"}, false},
		{"range", "127.0.0.2-127.0.0.4", []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, false},
		{"range and one", "127.0.0.9,127.0.1.1-127.0.1.2", []string{"127.0.0.9", "127.0.1.1", "127.0.1.2"}, false},
		{"not loopback", "10.0.0.1", nil, true},
		{"range leaves loopback", "127.0.0.1-10.0.0.1", nil, true},
		{"range across bytes", "127.0.0.1-127.0.1.1", nil, true},
		{"range backwards", "127.0.0.5-127.0.0.4", nil, true},
		{"garbage", "x", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ips, err := parseSources(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("err = %v", err)
			}
			var got []string
			for _, ip := range ips {
				got = append(got, ip.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseCurves(t *testing.T) {
	if c, err := parseCurves(""); err != nil || c != nil {
		t.Fatalf("empty: %v %v", c, err)
	}
	c, err := parseCurves("X25519, p256")
	if err != nil || len(c) != 2 || c[0].String() != "X25519" || c[1].String() != "CurveP256" {
		t.Fatalf("got %v %v", c, err)
	}
	if _, err := parseCurves("x448"); err == nil {
		t.Fatal("unknown curve accepted")
	}
}

func TestIsMessage(t *testing.T) {
	for in, want := range map[string]bool{
		"<message id='1'><body>b</body></message>": true,
		"<message>x</message>":                     true,
		"<message/>":                               true,
		"<message\n to='a'/>":                      true,
		"<messages/>":                              false,
		"<message":                                 false,
		"<presence/>":                              false,
		"<iq id='message'/>":                       false,
	} {
		if got := isMessage([]byte(in)); got != want {
			t.Errorf("isMessage(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestEnableSMRefused: a server that does not offer stream management, or
// answers <enable/> with <failed/>, fails the login with the reason.
func TestEnableSMRefused(t *testing.T) {
	tests := []struct {
		name   string
		offer  bool
		answer string // what the server writes after <enable/>
		want   string
	}{
		{"not offered", false, "", "does not offer stream management"},
		{"failed", true, "<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>", "refused: unexpected-request"},
		{"enabled after a stanza", true, "<message xmlns='jabber:client'/><enabled xmlns='urn:xmpp:sm:3' id='x' resume='true'/>", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			// A regression that reads on fails here, not at the
			// test binary's timeout.
			_ = client.SetDeadline(time.Now().Add(10 * time.Second))
			go func() {
				_, _ = server.Write([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"))
				if tc.answer == "" {
					return
				}
				buf := make([]byte, 256)
				if _, err := server.Read(buf); err != nil {
					return
				}
				_, _ = server.Write([]byte(tc.answer))
			}()
			c := &Conn{nc: client, dec: wire.NewDecoder(client, wire.Limits{}), done: make(chan struct{})}
			if _, err := c.dec.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			feats := &wire.Element{Name: "features", Space: wire.NSStream}
			if tc.offer {
				feats.Children = append(feats.Children, &wire.Element{Name: "sm", Space: nsSM})
			}
			err := c.enableSM(feats, 5)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("enableSM: %v", err)
			case tc.want == "" && (!c.sm || c.smEvery != 5):
				t.Fatalf("enabled, but sm=%v every=%d", c.sm, c.smEvery)
			case tc.want == "" && strings.Contains(tc.answer, "<message") && (len(c.early) != 1 || c.early[0].Name != "message"):
				t.Fatalf("the stanza before <enabled/> was not kept for the handler: %v", c.early)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("enableSM: %v, want an error with %q", err, tc.want)
			case tc.want != "" && c.sm:
				t.Fatal("stream management on after a refusal")
			}
		})
	}
}

// TestSMAnswers: with stream management the reader answers the server's
// <r/> with the stanzas it read since <enabled/> (XEP-0198 §4), passes
// the stanzas on, and Close acknowledges what was read before its
// </stream:stream>, after which nothing is written: no <r/> is answered,
// however close to the end it was read (RFC 6120 §4.4).
func TestSMAnswers(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	_ = server.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, _ = server.Write([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"))
	}()
	c := &Conn{nc: client, dec: wire.NewDecoder(client, wire.Limits{}), done: make(chan struct{}), sm: true}
	if _, err := c.dec.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	c.Start(func(_ *Conn, el *wire.Element) {
		if el.Name == "message" {
			got.Add(1)
		}
	})
	read := func() string {
		buf := make([]byte, 512)
		n, err := server.Read(buf)
		if err != nil {
			return "error: " + err.Error()
		}
		return string(buf[:n])
	}
	if _, err := server.Write([]byte("<message id='1'/><message id='2'/><presence/><r xmlns='urn:xmpp:sm:3'/>")); err != nil {
		t.Fatal(err)
	}
	if a := read(); a != "<a xmlns='urn:xmpp:sm:3' h='3'/>" {
		t.Fatalf("answer to <r/>: %q, want h='3'", a)
	}
	if got.Load() != 2 {
		t.Fatalf("the handler got %d messages, want 2", got.Load())
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close(5 * time.Second) }()
	if end := read(); end != "<a xmlns='urn:xmpp:sm:3' h='3'/></stream:stream>" {
		t.Fatalf("close: %q, want the acknowledgement, then the stream's end", end)
	}
	// An <a/> the reader writes for an <r/> read just before Close, and
	// an answer to a request, come after the end: nothing is written.
	// (The pipe is unbuffered: a write would block until read.)
	after := make(chan error, 1)
	go func() {
		err := c.send(appendAck(nil, 3))
		if werr := c.Write([]byte("<iq type='result' id='x'/>")); err == nil {
			err = werr
		}
		after <- err
	}()
	select {
	case err := <-after:
		if err != nil {
			t.Fatalf("write after the stream's end: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a write after the stream's end went to the socket")
	}
	if _, err := server.Write([]byte("<r xmlns='urn:xmpp:sm:3'/></stream:stream>")); err != nil {
		t.Fatal(err)
	}
	if after := read(); !strings.HasPrefix(after, "error: ") {
		t.Fatalf("after </stream:stream> the client wrote %q", after)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}
