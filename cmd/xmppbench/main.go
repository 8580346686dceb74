package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"switchboard/xmpp/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmppbench:", err)
		os.Exit(1)
	}
}

// bench holds the global flags and what every scenario shares.
type bench struct {
	cfg         clientConfig
	users       int
	prefix      string
	register    bool
	pid         int
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	jsonFile    string
	scramCache  bool
	cpuProfile  string
	tlsCurves   string
	sources     string
	// smRequestSet says --sm-request was given: it needs --sm.
	smRequestSet bool

	sampler *sampler
	epoch   time.Time // the origin of time stamps embedded in stanzas
	runTag  string    // distinguishes this run's stanzas from a previous run's
	out     io.Writer
}

func newRoot() *cobra.Command {
	b := &bench{}
	root := &cobra.Command{
		Use:   "xmppbench",
		Short: "Load generator for XMPP servers (client-to-server, loopback only)",
		Long: `xmppbench opens many XMPP client connections to a server on loopback and
measures logins, idle sessions, 1:1 chat, group chat and presence.

Only loopback addresses are accepted. With --tls starttls the server's
certificate is NOT verified (InsecureSkipVerify): acceptable for a load tool
talking to a local server, never for anything else.

Accounts are <prefix><n>@<domain> (bench0, bench1, ...) with one password;
create them with --register (XEP-0077 in-band registration, "already exists"
is fine) or with the server's admin tools.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&b.cfg.Addr, "addr", "127.0.0.1:5222", "c2s address (loopback only)")
	pf.StringVar(&b.cfg.Domain, "domain", "localhost", "XMPP domain of the accounts")
	pf.StringVar(&b.cfg.TLS, "tls", tlsNone, "none|starttls (starttls does not verify the certificate)")
	pf.StringVar(&b.tlsCurves, "tls-curves", "", "key exchanges the client offers, in order: comma-separated x25519, p256, p384, x25519mlkem768 (empty: Go's defaults, post-quantum hybrid first)")
	pf.StringVar(&b.sources, "source", "", "local addresses to connect from, in turn: comma-separated loopback IPs, or a range such as 127.0.0.1-127.0.0.8 (each has ~28,000 ephemeral ports; empty: the kernel's choice)")
	pf.StringVar(&b.cfg.Mech, "mech", mechScramSHA1, "SASL mechanism: SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN")
	pf.IntVar(&b.users, "users", 200, "number of accounts used")
	pf.StringVar(&b.prefix, "prefix", "bench", "account name prefix")
	pf.StringVar(&b.cfg.Password, "password", "benchpw", "password of every account")
	pf.BoolVar(&b.register, "register", false, "create the accounts first with XEP-0077 in-band registration")
	pf.IntVar(&b.pid, "pid", 0, "server process to sample CPU and RSS from /proc (0: none)")
	pf.DurationVar(&b.duration, "duration", 10*time.Second, "measured duration (chat, muc, idle hold)")
	pf.DurationVar(&b.warmup, "warmup", 2*time.Second, "unmeasured load before the measurement (chat, muc)")
	pf.IntVar(&b.concurrency, "concurrency", 0, "parallel connection attempts (0: scenario default)")
	pf.StringVar(&b.jsonFile, "json", "", "also write the result as JSON to this file")
	pf.DurationVar(&b.cfg.Timeout, "timeout", 30*time.Second, "limit for connecting and negotiating one stream")
	pf.BoolVar(&b.scramCache, "scram-cache", true, "cache SCRAM keys per account (false: mellium.im/sasl derives them on every login)")
	pf.BoolVar(&b.cfg.SM, "sm", false, "enable stream management (XEP-0198) after binding, asking for resumption; the client answers the server's requests for acknowledgements")
	pf.IntVar(&b.cfg.SMRequest, "sm-request", 5, "with --sm, ask for an acknowledgement after every this many stanza writes (5: slixmpp's default window; 0: never ask)")
	pf.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of this load generator to this file (go tool pprof)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		b.out = cmd.OutOrStdout()
		b.smRequestSet = cmd.Flags().Changed("sm-request")
		return b.validate()
	}
	root.AddCommand(b.loginCmd(), b.idleCmd(), b.chatCmd(), b.mucCmd(), b.presenceCmd())
	for _, sub := range root.Commands() {
		if runE := sub.RunE; runE != nil {
			sub.RunE = func(cmd *cobra.Command, args []string) error {
				return b.profiled(func() error { return runE(cmd, args) })
			}
		}
	}
	return root
}

// profiled runs scenario under the --cpuprofile profile, if one was asked
// for. The profile is written whether the scenario succeeded or not: a
// failed run's profile is often the one worth reading.
func (b *bench) profiled(scenario func() error) (err error) {
	if b.cpuProfile == "" {
		return scenario()
	}
	f, err := os.Create(b.cpuProfile)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	defer func() {
		pprof.StopCPUProfile()
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("--cpuprofile: %w", cerr)
		}
	}()
	return scenario()
}

func (b *bench) validate() error {
	if err := checkLoopback(b.cfg.Addr); err != nil {
		return err
	}
	switch b.cfg.TLS {
	case tlsNone, tlsStartTLS:
	default:
		return fmt.Errorf("--tls %q: want none or starttls", b.cfg.TLS)
	}
	switch b.cfg.Mech {
	case mechScramSHA1, mechScramSHA256, mechPlain:
	default:
		return fmt.Errorf("--mech %q: want SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN", b.cfg.Mech)
	}
	switch {
	case b.cfg.Domain == "":
		return errors.New("--domain is empty")
	case b.users < 1:
		return errors.New("--users must be at least 1")
	case b.duration <= 0:
		return errors.New("--duration must be positive")
	case b.warmup < 0:
		return errors.New("--warmup must not be negative")
	case b.concurrency < 0:
		return errors.New("--concurrency must not be negative")
	case b.pid < 0:
		return errors.New("--pid must not be negative")
	case b.cfg.SMRequest < 0:
		return errors.New("--sm-request must not be negative")
	case b.smRequestSet && !b.cfg.SM:
		return errors.New("--sm-request needs --sm: without stream management nothing is acknowledged")
	}
	curves, err := parseCurves(b.tlsCurves)
	if err != nil {
		return err
	}
	b.cfg.Curves = curves
	srcs, err := parseSources(b.sources)
	if err != nil {
		return err
	}
	b.cfg.Sources = srcs
	b.cfg.SASL = newSASLClient(b.scramCache)
	s, err := newSampler(b.pid)
	if err != nil {
		return err
	}
	b.sampler = s
	b.epoch = time.Now()
	b.runTag = strconv.FormatInt(b.epoch.UnixNano()&0xffffff, 36)
	return nil
}

// user is the localpart of account i.
func (b *bench) user(i int) string { return b.prefix + strconv.Itoa(i) }

// bare is the bare JID of account i.
func (b *bench) bare(i int) string { return b.user(i) + "@" + b.cfg.Domain }

// conc is --concurrency or def.
func (b *bench) conc(def int) int {
	if b.concurrency > 0 {
		return b.concurrency
	}
	return def
}

// now is the time since the run started, the clock of embedded time
// stamps (monotonic).
func (b *bench) now() int64 { return int64(time.Since(b.epoch)) }

// parallel runs fn(i) for i in [0,n) on at most conc goroutines and
// returns the first error; after an error, or when ctx ends, the
// remaining calls are skipped.
func parallel(ctx context.Context, n, conc int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(conc, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return first
}

// registerAll creates accounts 0..n-1 when --register is set.
func (b *bench) registerAll(ctx context.Context, n int) error {
	if !b.register {
		return nil
	}
	var created, existed atomic.Int64
	err := parallel(ctx, n, b.conc(16), func(i int) error {
		ex, err := Register(ctx, &b.cfg, b.user(i))
		if err != nil {
			return err
		}
		if ex {
			existed.Add(1)
		} else {
			created.Add(1)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	fmt.Fprintf(os.Stderr, "registered %d accounts (%d already existed)\n", created.Load(), existed.Load())
	return nil
}

// loginAll opens n sessions, conc at a time, and starts their readers
// with h(i); with presence each sends initial presence. Session i is
// account i mod --users with resource, followed by i / --users from the
// second round of accounts on (more sessions than accounts: several
// resources each). On error the sessions already open are closed.
func (b *bench) loginAll(ctx context.Context, n, conc int, resource string, h func(i int) Handler, presence bool) ([]*Conn, error) {
	conns := make([]*Conn, n)
	err := parallel(ctx, n, conc, func(i int) error {
		res := resource
		if i >= b.users {
			res += strconv.Itoa(i / b.users)
		}
		c, err := Login(ctx, &b.cfg, b.user(i%b.users), res)
		if err != nil {
			return err
		}
		c.Start(h(i))
		conns[i] = c
		if presence {
			return c.Write([]byte("<presence/>"))
		}
		return nil
	})
	if err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

// closeAll ends the streams of the non-nil conns in parallel.
func closeAll(conns []*Conn) {
	_ = parallel(context.Background(), len(conns), 64, func(i int) error {
		if c := conns[i]; c != nil {
			_ = c.Close(5 * time.Second)
		}
		return nil
	})
}

// addSM adds, with stream management on, the acknowledgements the
// connections read and the server's requests they answered: a run whose
// server never asked nor answered did not exercise it.
func (b *bench) addSM(m *Metrics, conns []*Conn) {
	if !b.cfg.SM {
		return
	}
	var acks, answered int64
	for _, c := range conns {
		if c != nil {
			a, r := c.SMCounts()
			acks += a
			answered += r
		}
	}
	m.Add("sm_acks_read", float64(acks))
	m.Add("sm_requests_answered", float64(answered))
}

// discard is a Handler that ignores everything.
func discard(*Conn, *wire.Element) {}

// Result is one scenario's outcome.
type Result struct {
	Scenario string         `json:"scenario"`
	Server   ServerInfo     `json:"server"`
	Params   map[string]any `json:"params"`
	Metrics  Metrics        `json:"metrics"`
}

// ServerInfo identifies the server measured.
type ServerInfo struct {
	Addr string `json:"addr"`
	PID  int    `json:"pid,omitempty"`
}

// MarshalJSON writes the metrics as an object in their order; values
// that are not finite become 0.
func (m Metrics) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, x := range m {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(x.Name)
		b = append(b, k...)
		b = append(b, ':')
		v := x.Value
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads metrics written by MarshalJSON (sorted by name:
// JSON objects carry no order).
func (m *Metrics) UnmarshalJSON(data []byte) error {
	var raw map[string]float64
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*m = (*m)[:0]
	for k, v := range raw {
		*m = append(*m, Metric{k, v})
	}
	sort.Slice(*m, func(i, j int) bool { return (*m)[i].Name < (*m)[j].Name })
	return nil
}

// report prints the table and writes the JSON file.
func (b *bench) report(scenario string, params map[string]any, m Metrics) error {
	params["users"] = b.users
	params["prefix"] = b.prefix
	params["domain"] = b.cfg.Domain
	params["tls"] = b.cfg.TLS
	params["mech"] = b.cfg.Mech
	params["scram_cache"] = b.scramCache
	if b.tlsCurves != "" {
		params["tls_curves"] = b.tlsCurves
	}
	if b.sources != "" {
		params["sources"] = b.sources
	}
	params["concurrency"] = b.concurrency
	params["sm"] = b.cfg.SM
	if b.cfg.SM {
		params["sm_request"] = b.cfg.SMRequest
	}
	r := Result{Scenario: scenario, Server: ServerInfo{Addr: b.cfg.Addr, PID: b.pid}, Params: params, Metrics: m}
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(b.out, "scenario %s against %s", scenario, b.cfg.Addr)
	if b.pid > 0 {
		fmt.Fprintf(b.out, " (pid %d)", b.pid)
	}
	fmt.Fprintln(b.out)
	for _, x := range m {
		fmt.Fprintf(tw, "%s\t%s\t\n", x.Name, formatValue(x.Value))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if b.jsonFile == "" {
		return nil
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(b.jsonFile, append(data, '\n'), 0o644)
}

func formatValue(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}
