package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
)

// python is the interpreter with Debian's python3-slixmpp; .ci/run
// installs the package.
const python = "/usr/bin/python3"

// requireSlixmpp skips the test when slixmpp cannot be imported, except
// in CI (CI set), where a missing client must fail rather than pass by
// skipping.
func requireSlixmpp(t *testing.T) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), python, "-c", "import slixmpp; print(slixmpp.__version__)").CombinedOutput()
	if err == nil {
		t.Logf("slixmpp %s", bytes.TrimSpace(out))
		return
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	missingClient(t, "slixmpp not available ("+python+" -c 'import slixmpp': "+err.Error()+": "+lines[len(lines)-1]+")", "python3-slixmpp")
}

// missingClient skips the test for want of a third-party client, except
// in CI (CI set), where a missing client must fail rather than pass by
// skipping: .ci/run installs it (install).
func missingClient(t *testing.T, msg, install string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI must install it (.ci/run: " + install + ")")
	}
	t.Skip(msg)
}

// requireOutput fails the test unless a client script's output holds
// each of want.
func requireOutput(t *testing.T, script, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("%s output lacks %q:\n%s", script, w, out)
		}
	}
}

// TestSlixmppChat is the third-party client check: a slixmpp client
// registers an account in band (XEP-0077) or logs in to an existing one,
// with STARTTLS verifying our certificate, and sends a chat message to a
// second slixmpp client whose account the test created.
//
// slixmpp 1.8.3 binds SCRAM-*-PLUS to tls-unique only, which TLS 1.3 does
// not define (RFC 9266), and announces "y" (client supports channel
// binding) with plain SCRAM, which a server offering -PLUS must refuse as a
// downgrade (RFC 5802 §6). Over TLS 1.3 it therefore reaches PLAIN only
// after four failed attempts; the cases pin what each TLS version can do
// rather than depend on that fallback and on the attempt limit.
func TestSlixmppChat(t *testing.T) {
	requireSlixmpp(t)
	cases := []struct {
		name     string
		register bool
		tlsMax   string
		mech     string // pinned mechanism; "" = slixmpp's choice
		wantMech string
		wantTLS  string
	}{
		{"in-band registration TLS 1.2 SCRAM-SHA-256-PLUS tls-unique", true, "1.2", "", "SCRAM-SHA-256-PLUS", "TLSv1.2"},
		{"in-band registration TLS 1.3 PLAIN", true, "1.3", "PLAIN", "PLAIN", "TLSv1.3"},
		{"existing accounts TLS 1.2 SCRAM-SHA-1-PLUS tls-unique", false, "1.2", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1-PLUS", "TLSv1.2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
				c.SetRegistration(tc.register)
			}))
			s.AddUser(t, "bob", "bob's secret")
			args := []string{"--sender", "alice", "--sender-password", "alice's pässword", "--tls-max", tc.tlsMax}
			if tc.mech != "" {
				args = append(args, "--mechanism", tc.mech)
			}
			if !tc.register {
				s.AddUser(t, "alice", "alice's pässword")
				args = append(args, "--no-register")
			}
			body := "hello from slixmpp " + randomHex(t)
			out, err := runSlixmpp(t, s, append(args,
				"--receiver", "bob", "--receiver-password", "bob's secret", "--body", body)...)
			if err != nil {
				t.Fatalf("slixmpp_chat.py: %v\n%s", err, out)
			}
			requireOutput(t, "slixmpp_chat.py", out,
				"OK: bob@localhost/", body,
				"auth: receiver "+tc.wantMech+" "+tc.wantTLS+" after 0 failed attempts\n",
				"auth: sender "+tc.wantMech+" "+tc.wantTLS+" after 0 failed attempts\n",
			)
			if tc.register {
				if !strings.Contains(out, "registered alice@localhost in band") {
					t.Fatalf("slixmpp did not register in band:\n%s", out)
				}
				ok, err := s.Accounts().Exists(t.Context(), s.Domain, "alice")
				if err != nil || !ok {
					t.Fatalf("registered account alice: exists = %v, %v", ok, err)
				}
			}
		})
	}
}

// TestSlixmppVerifiesCertificate guards TestSlixmppChat against passing
// with a script that does not check the server's certificate: trusting
// another server's certificate must fail the script.
func TestSlixmppVerifiesCertificate(t *testing.T) {
	requireSlixmpp(t)
	s := servertest.Start(t)
	other := servertest.Start(t)
	s.AddUser(t, "alice", "a")
	s.AddUser(t, "bob", "b")
	out, err := runSlixmppCA(t, s, filepath.Join(other.DataDir, config.SelfSignedCertName),
		"--sender", "alice", "--sender-password", "a", "--no-register",
		"--receiver", "bob", "--receiver-password", "b", "--body", "unseen")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("slixmpp_chat.py with an untrusted certificate: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(out, "FAIL: receiver (bob@localhost): server certificate not trusted") {
		t.Fatalf("slixmpp_chat.py did not report the untrusted certificate:\n%s", out)
	}
}

// runSlixmpp runs testdata/slixmpp_chat.py against s and returns its
// combined output.
func runSlixmpp(t *testing.T, s *servertest.Server, args ...string) (string, error) {
	t.Helper()
	return runSlixmppCA(t, s, filepath.Join(s.DataDir, config.SelfSignedCertName), args...)
}

// runSlixmppCA is runSlixmpp trusting the certificates in caFile.
func runSlixmppCA(t *testing.T, s *servertest.Server, caFile string, args ...string) (string, error) {
	t.Helper()
	return runPython(t, s, "testdata/slixmpp_chat.py", caFile, "10", args...)
}

// runSlixmppScript runs a slixmpp script of testdata against s, trusting
// its certificate, and returns the combined output.
func runSlixmppScript(t *testing.T, s *servertest.Server, script string, args ...string) (string, error) {
	t.Helper()
	return runPython(t, s, script, filepath.Join(s.DataDir, config.SelfSignedCertName), "20", args...)
}

// runPython runs a client script against s's STARTTLS listener with the
// common arguments (address, CA file, domain, the script's own timeout in
// seconds), bounded by a minute.
func runPython(t *testing.T, s *servertest.Server, script, caFile, timeout string, args ...string) (string, error) {
	t.Helper()
	host, port, err := net.SplitHostPort(s.C2S)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	args = append([]string{script,
		"--host", host, "--port", port,
		"--ca", caFile,
		"--domain", s.Domain, "--timeout", timeout,
	}, args...)
	if os.Getenv("SWITCHBOARD_TEST_LOG") != "" {
		args = append(args, "--debug")
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONWARNINGS=ignore::DeprecationWarning")
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = errors.New("killed after 60s")
	}
	return out.String(), err
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
