package auth

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"mellium.im/sasl"
)

// melliumMechanism maps our mechanism names to mellium's client mechanisms.
func melliumMechanism(name string) sasl.Mechanism {
	switch name {
	case MechanismSCRAMSHA256Plus:
		return sasl.ScramSha256Plus
	case MechanismSCRAMSHA1Plus:
		return sasl.ScramSha1Plus
	case MechanismSCRAMSHA256:
		return sasl.ScramSha256
	case MechanismSCRAMSHA1:
		return sasl.ScramSha1
	case MechanismPlain:
		return sasl.Plain
	}
	panic("unknown mechanism " + name)
}

// loginResult is what a test learns from a complete exchange.
type loginResult struct {
	localpart   string
	binding     string
	clientFirst string // the client's initial response
	err         error
}

// login drives an exchange between mellium's client and ex, in memory.
// It fails the test if the client rejects a server message (in particular a
// wrong server signature).
func login(t *testing.T, ex *Exchange, client *sasl.Negotiator) loginResult {
	t.Helper()
	var res loginResult
	_, resp, err := client.Step(nil)
	if err != nil {
		t.Fatalf("client start: %v", err)
	}
	res.clientFirst = string(resp)
	for range 4 {
		out, done, err := ex.Step(t.Context(), resp)
		if err != nil {
			res.err = err
			return res
		}
		if done {
			if ex.Mechanism() != MechanismPlain {
				// The client checks the server signature.
				if _, _, err := client.Step(out); err != nil {
					t.Fatalf("client rejected server-final %q: %v", out, err)
				}
			}
			res.localpart = ex.Localpart()
			res.binding = ex.ChannelBinding()
			return res
		}
		if _, resp, err = client.Step(out); err != nil {
			t.Fatalf("client step on %q: %v", out, err)
		}
	}
	t.Fatal("exchange did not finish")
	return res
}

func condition(err error) string {
	var f *Failure
	if errors.As(err, &f) {
		return f.Condition
	}
	if err == nil {
		return ""
	}
	return "non-Failure error: " + err.Error()
}

type tlsCase struct {
	name     string
	srv, cli *tls.ConnectionState
}

type melliumCase struct {
	name          string
	mech          string
	tls           tlsCase
	clientTLS     *tls.ConnectionState // overrides tls.cli
	user, pass    string
	authzid       string
	wantCond      string
	wantLocalpart string
	wantBinding   string
	wantGS2Prefix string
}

func TestMelliumClient(t *testing.T) {
	srv13, cli13 := tlsPair(t, tls.VersionTLS13)
	srv12, cli12 := tlsPair(t, tls.VersionTLS12)
	_, otherCli13 := tlsPair(t, tls.VersionTLS13)
	server := newTestServer(t, Options{})

	noTLS := tlsCase{name: "no TLS"}
	tls13 := tlsCase{"TLS 1.3", srv13, cli13}
	tls12 := tlsCase{"TLS 1.2", srv12, cli12}

	allMechs := []string{MechanismSCRAMSHA256Plus, MechanismSCRAMSHA1Plus, MechanismSCRAMSHA256, MechanismSCRAMSHA1, MechanismPlain}
	tests := []melliumCase{
		{name: "wrong channel binding data", mech: MechanismSCRAMSHA256Plus, tls: tls13, clientTLS: otherCli13,
			user: testUser, pass: testPassword, wantCond: ConditionNotAuthorized},
		{name: "mixed-case username", mech: MechanismSCRAMSHA256, tls: tls13, user: "JuLiEt", pass: testPassword,
			wantLocalpart: testUser},
		{name: "SCRAM without TLS", mech: MechanismSCRAMSHA256, tls: noTLS, user: testUser, pass: testPassword,
			wantLocalpart: testUser, wantGS2Prefix: "n,"},
		{name: "SCRAM-SHA-1 without TLS", mech: MechanismSCRAMSHA1, tls: noTLS, user: testUser, pass: testPassword,
			wantLocalpart: testUser, wantGS2Prefix: "n,"},
		{name: "SCRAM-SHA-256 client supporting binding on TLS 1.2", mech: MechanismSCRAMSHA256, tls: tls12,
			user: testUser, pass: testPassword, wantLocalpart: testUser},
	}
	for _, tc := range []tlsCase{tls13, tls12} {
		for _, mech := range allMechs {
			binding := ""
			prefix := "n,"
			if strings.HasSuffix(mech, "-PLUS") {
				binding = BindingTLSExporter
				if tc.srv.Version < tls.VersionTLS13 {
					binding = BindingTLSUnique
				}
				prefix = "p=" + binding + ","
			}
			if mech == MechanismPlain {
				prefix = ""
			}
			tests = append(tests,
				melliumCase{name: mech + " " + tc.name + " success", mech: mech, tls: tc, user: testUser, pass: testPassword,
					wantLocalpart: testUser, wantBinding: binding, wantGS2Prefix: prefix},
				melliumCase{name: mech + " " + tc.name + " wrong password", mech: mech, tls: tc, user: testUser, pass: "pencil2",
					wantCond: ConditionNotAuthorized},
				melliumCase{name: mech + " " + tc.name + " unknown user", mech: mech, tls: tc, user: "romeo", pass: testPassword,
					wantCond: ConditionNotAuthorized},
			)
		}
	}
	for _, mech := range []string{MechanismSCRAMSHA256Plus, MechanismSCRAMSHA1, MechanismPlain} {
		for _, az := range []struct {
			authzid, cond string
		}{
			{"juliet@example.com", ""},
			{"Juliet@EXAMPLE.com.", ""},
			{"romeo@example.com", ConditionInvalidAuthzid},
			{"juliet@example.com/balcony", ConditionInvalidAuthzid},
			{"juliet@example.org", ConditionInvalidAuthzid},
			{"example.com", ConditionInvalidAuthzid},
			{"@@", ConditionInvalidAuthzid},
		} {
			lp, binding := testUser, ""
			if mech == MechanismSCRAMSHA256Plus {
				binding = BindingTLSExporter
			}
			if az.cond != "" {
				lp, binding = "", ""
			}
			tests = append(tests, melliumCase{name: mech + " authzid " + az.authzid, mech: mech, tls: tls13, user: testUser, pass: testPassword,
				authzid: az.authzid, wantCond: az.cond, wantLocalpart: lp, wantBinding: binding})
		}
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := []sasl.Option{
				sasl.Credentials(func() ([]byte, []byte, []byte) {
					return []byte(tc.user), []byte(tc.pass), []byte(tc.authzid)
				}),
				sasl.RemoteMechanisms(server.Mechanisms(tc.tls.srv)...),
			}
			cli := tc.tls.cli
			if tc.clientTLS != nil {
				cli = tc.clientTLS
			}
			if cli != nil {
				opts = append(opts, sasl.TLSState(*cli))
			}
			ex, err := server.Start(testHost, tc.mech, tc.tls.srv)
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			res := login(t, ex, sasl.NewClient(melliumMechanism(tc.mech), opts...))
			if got := condition(res.err); got != tc.wantCond {
				t.Fatalf("condition = %q, want %q (err %v)", got, tc.wantCond, res.err)
			}
			if res.localpart != tc.wantLocalpart {
				t.Errorf("Localpart() = %q, want %q", res.localpart, tc.wantLocalpart)
			}
			if res.binding != tc.wantBinding {
				t.Errorf("ChannelBinding() = %q, want %q", res.binding, tc.wantBinding)
			}
			if !strings.HasPrefix(res.clientFirst, tc.wantGS2Prefix) {
				t.Errorf("client-first %q does not start with %q", res.clientFirst, tc.wantGS2Prefix)
			}
			if res.err != nil && ex.Localpart() != "" {
				t.Errorf("Localpart() = %q after failure", ex.Localpart())
			}
		})
	}
}

// TestMelliumClientDowngrade uses mellium's client as a client that supports
// channel binding but, because an attacker stripped the -PLUS mechanisms from
// the list it saw, sends "y,".
func TestMelliumClientDowngrade(t *testing.T) {
	srv13, cli13 := tlsPair(t, tls.VersionTLS13)
	tests := []struct {
		name     string
		opts     Options
		wantCond string
	}{
		{name: "server advertises -PLUS", wantCond: ConditionNotAuthorized},
		{name: "server does not offer -PLUS", opts: Options{Mechanisms: []string{MechanismSCRAMSHA256}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server := newTestServer(t, tc.opts)
			client := sasl.NewClient(sasl.ScramSha256Plus,
				sasl.Credentials(func() ([]byte, []byte, []byte) { return []byte(testUser), []byte(testPassword), nil }),
				sasl.RemoteMechanisms(MechanismSCRAMSHA256), // -PLUS stripped
				sasl.TLSState(*cli13))
			ex, err := server.Start(testHost, MechanismSCRAMSHA256, srv13)
			if err != nil {
				t.Fatal(err)
			}
			res := login(t, ex, client)
			if !strings.HasPrefix(res.clientFirst, "y,") {
				t.Fatalf("mellium client sent %q, want a y, header", res.clientFirst)
			}
			if got := condition(res.err); got != tc.wantCond {
				t.Fatalf("condition = %q, want %q", got, tc.wantCond)
			}
		})
	}
}
