package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
)

// stropheDir holds the npm manifest and lock file of Strophe.js, the
// XMPP library of Converse.js; .ci/run installs it there with npm ci.
const stropheDir = "testdata/strophe"

// requireStrophe returns the path of node when it and the Strophe.js of
// stropheDir are installed. It skips the test otherwise, except in CI (CI
// set), where a missing client must fail rather than pass by skipping.
func requireStrophe(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missingClient(t, "Node.js not available ("+err.Error()+")", "Debian's nodejs")
		return ""
	}
	data, err := os.ReadFile(filepath.Join(stropheDir, "node_modules", "strophe.js", "package.json"))
	var pkg struct{ Version string }
	if err == nil {
		err = json.Unmarshal(data, &pkg)
	}
	if err != nil {
		missingClient(t, "strophe.js not installed in "+stropheDir+" ("+err.Error()+")", "npm ci --prefix xmpp/server/"+stropheDir)
		return ""
	}
	t.Logf("strophe.js %s, %s", pkg.Version, node)
	return node
}

// syncBuffer is the script's output, written by exec's copying goroutine
// and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStropheBOSH is the BOSH endpoint (XEP-0124, XEP-0206) against a
// third-party client: Strophe.js, as Converse.js drives it in a browser,
// here under Node.js with an XMLHttpRequest over node:https
// (testdata/strophe_bosh.js) verifying the server's certificate. Strophe
// logs in with the SASL mechanism of its choice, sends presence and a chat
// message to bob, who is on TCP and replies to the full JID the message
// came from, and disconnects while the server holds its empty request
// with a type='terminate' request: the server must answer both before
// Strophe's disconnection timeout (3 s), and alice's session must end.
func TestStropheBOSH(t *testing.T) {
	node := requireStrophe(t)
	s := servertest.Start(t, servertest.WithHTTP())
	alice := s.AddUser(t, "alice", "alice's pässword")
	bob := s.AddUser(t, "bob", "bob's secret")
	b := s.MustLogin(t, bob, "bob's secret", servertest.ClientOptions{Resource: "desk"})

	body := "hello from Strophe.js " + randomHex(t)
	tag := randomHex(t)
	reply, replyXML := "back <&> to Strophe.js "+tag, "back &lt;&amp;&gt; to Strophe.js "+tag
	args := []string{"testdata/strophe_bosh.js",
		"--url", s.BOSHURL(),
		"--jid", alice.String(), "--password", "alice's pässword",
		"--peer", b.JID.String(), "--body", body, "--timeout", "20",
	}
	if os.Getenv("SWITCHBOARD_TEST_LOG") != "" {
		args = append(args, "--verbose")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+filepath.Join(s.DataDir, config.SelfSignedCertName))
	cmd.WaitDelay = 5 * time.Second
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var (
		exited, shown bool
		exitErr       error
	)
	wait := func() error {
		if !exited {
			exitErr, exited = <-done, true
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				exitErr = errors.New("killed after 60s")
			}
		}
		return exitErr
	}
	// Registered after the server's: runs first, with the server still
	// up, and shows what the script saw when bob's side failed.
	t.Cleanup(func() {
		if t.Failed() && !shown {
			err := wait()
			t.Logf("strophe_bosh.js: %v\n%s", err, out.String())
		}
	})

	m := b.Next(t, 20*time.Second, servertest.Named("message"))
	from := m.AttrValue("from")
	if m.AttrValue("type") != "chat" || m.ChildText("body", "jabber:client") != body || !strings.HasPrefix(from, "alice@localhost/") {
		t.Fatalf("bob got %s", m)
	}
	if res := s.Router().Resources(alice); len(res) != 1 || res[0].String() != from {
		t.Fatalf("alice's resources while Strophe is connected: %v, want [%s]", res, from)
	}
	if err := b.SendRaw(t.Context(), "<message xmlns='jabber:client' type='chat' to='"+from+"'><body>"+replyXML+"</body></message>"); err != nil {
		t.Fatal(err)
	}

	err := wait()
	shown = true
	if err != nil {
		t.Fatalf("strophe_bosh.js: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Logf("strophe_bosh.js:\n%s", text)
	requireOutput(t, "strophe_bosh.js", text,
		"\nauth: SCRAM-",
		"\nOK: connected as "+from+"\n",
		"\nOK: reply "+reply+"\n",
		// Strophe's empty request was held when it terminated.
		"\nheld: request #",
		"\nOK: disconnected\n",
		"\nOK\n",
	)
	// The terminate request ended the session: alice has no resource
	// left (its unbinding may follow the response by a moment).
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Router().Resources(alice)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("alice's resources after Strophe disconnected: %v", s.Router().Resources(alice))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
