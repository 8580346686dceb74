package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp/jid"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server"
	"switchboard/xmpp/server/servertest"
	"switchboard/xmpp/wire"
)

// Federation with Prosody, Debian's package, as a real peer: each server
// dials the other's s2s port, negotiates STARTTLS with a self-signed
// certificate and authenticates with Server Dialback both ways (XEP-0220);
// users on each side chat and become friends.
//
// Prosody finds our domain through a hosts file of its own (its resolver,
// libunbound, reads no /etc/hosts unless told), and dials port 5269: each
// server listens on port 5269 of its own loopback address.

const (
	prosodyDomain = "pros.test"
	prosodyIP     = "127.0.0.77"
	prosodyC2S    = "15222"
	ourFedDomain  = "sb.test"
	ourFedIP      = "127.0.0.78"
)

// requireProsody returns the prosody binary, or skips the test when it is
// missing, except in CI (CI set), where it must fail: .ci/run installs it.
func requireProsody(t *testing.T) (prosody, prosodyctl string) {
	t.Helper()
	p, err1 := exec.LookPath("prosody")
	ctl, err2 := exec.LookPath("prosodyctl")
	if err1 == nil && err2 == nil {
		return p, ctl
	}
	msg := "prosody not installed"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI must install it (.ci/run)")
	}
	t.Skip(msg)
	return "", ""
}

// startProsody runs a Prosody instance for prosodyDomain with the users
// given (local part → password) and stops it when the test ends.
func startProsody(t *testing.T, users map[string]string) {
	t.Helper()
	prosody, prosodyctl := requireProsody(t)
	dir := t.TempDir()
	// WriteSelfSigned makes the certs directory.
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "certs", prosodyDomain+".crt"), filepath.Join(dir, "certs", prosodyDomain+".key")
	if err := server.WriteSelfSigned(certFile, keyFile, []string{prosodyDomain}); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte(prosodyIP+" "+prosodyDomain+"\n"+ourFedIP+" "+ourFedDomain+" conference."+ourFedDomain+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// No name server: every name this test uses is in the hosts file.
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "prosody.cfg.lua")
	cfg := fmt.Sprintf(`-- Prosody instance of a federation test.
run_as_root = true
pidfile = %[1]q
data_path = %[2]q
certificates = %[3]q
log = { debug = %[4]q; info = "*console" }
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "posix" }
interfaces = { %[5]q }
c2s_interfaces = { %[5]q }
c2s_ports = { %[6]s }
s2s_interfaces = { %[5]q }
s2s_ports = { 5269 }
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
authentication = "internal_plain"
unbound = { hoststxt = %[7]q; resolvconf = %[8]q }
VirtualHost %[9]q
    ssl = { certificate = %[10]q; key = %[11]q }
`, filepath.Join(dir, "prosody.pid"), filepath.Join(dir, "data"), filepath.Join(dir, "certs"),
		filepath.Join(dir, "debug.log"), prosodyIP, prosodyC2S, hosts, resolv, prosodyDomain, certFile, keyFile)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for local, pw := range users {
		out, err := exec.CommandContext(t.Context(), prosodyctl, "--config", cfgFile, "register", local, prosodyDomain, pw).CombinedOutput()
		if err != nil {
			t.Fatalf("prosodyctl register %s: %v\n%s", local, err, out)
		}
	}
	cmd := exec.Command(prosody, "--config", cfgFile, "-F")
	logFile, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prosody: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "debug.log")); err == nil {
				lines := strings.Split(string(b), "\n")
				t.Logf("prosody debug log (last lines):\n%s", strings.Join(lines[max(0, len(lines)-80):], "\n"))
			}
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range []string{net.JoinHostPort(prosodyIP, prosodyC2S), net.JoinHostPort(prosodyIP, "5269")} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				b, _ := os.ReadFile(filepath.Join(dir, "console.log"))
				t.Fatalf("prosody exited:\n%s", b)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("prosody does not listen on %s: %v", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// loginProsody logs a user in to the Prosody instance with the mellium
// client (PLAIN over STARTTLS; Prosody's certificate is self-signed).
func loginProsody(t *testing.T, local, password, resource string) *servertest.Client {
	t.Helper()
	peer := &servertest.Server{Domain: prosodyDomain, C2S: net.JoinHostPort(prosodyIP, prosodyC2S)}
	user := jid.MustParse(local + "@" + prosodyDomain)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := peer.Login(ctx, user, password, servertest.ClientOptions{
		Resource:   resource,
		Mechanisms: []sasl.Mechanism{sasl.Plain},
		TLS:        &tls.Config{InsecureSkipVerify: true, ServerName: prosodyDomain},
	})
	if err != nil {
		t.Fatalf("log in to prosody as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestProsodyFederation: a user of ours and a Prosody user chat both ways
// and become friends (RFC 6121 §3), and presence then flows both ways.
func TestProsodyFederation(t *testing.T) {
	startProsody(t, map[string]string{"carol": "carol's pw"})
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.SetDomains([]string{ourFedDomain})
		c.Listen.S2S = net.JoinHostPort(ourFedIP, "5269")
		c.S2S.Routes = map[string]string{prosodyDomain: net.JoinHostPort(prosodyIP, "5269")}
	}))
	alice := s.AddUser(t, "alice", "pw")
	ac := s.MustLogin(t, alice, "pw", servertest.ClientOptions{Resource: "desk"})
	cc := loginProsody(t, "carol", "carol's pw", "laptop")
	for _, c := range []*servertest.Client{ac, cc} {
		rtSend(t, c, "<iq id='roster' type='get'><query xmlns='jabber:iq:roster'/></iq>")
		c.Next(t, wait, rtMatch("iq", "", "roster"))
		rtSend(t, c, "<presence/>")
	}

	// Ours to Prosody: our outgoing stream, verified by Prosody
	// through its own connection back to us.
	rtSend(t, ac, "<message id='to-carol' to='carol@pros.test/laptop' type='chat'><body>hello from Switchboard ✓</body></message>")
	el := cc.Next(t, 20*time.Second, rtMatch("message", "", "to-carol"))
	rtCheck(t, el, rtWant{name: "message", typ: "chat", id: "to-carol", from: "alice@sb.test/desk", to: "carol@pros.test/laptop", body: "hello from Switchboard ✓"})
	// Prosody to ours.
	rtSend(t, cc, "<message id='to-alice' to='alice@sb.test' type='chat'><body>hi alice &amp; co</body></message>")
	el = ac.Next(t, 20*time.Second, rtMatch("message", "", "to-alice"))
	rtCheck(t, el, rtWant{name: "message", typ: "chat", id: "to-alice", from: "carol@pros.test/laptop", to: "alice@sb.test", body: "hi alice & co"})

	// A friend request from our user, approved on Prosody's side.
	rtSend(t, ac, "<presence to='carol@pros.test' type='subscribe'/>")
	cc.Next(t, 20*time.Second, servertest.Named("presence", "type", "subscribe", "from", "alice@sb.test"))
	rtSend(t, cc, "<presence to='alice@sb.test' type='subscribed'/>")
	fedExpectAll(t, ac,
		servertest.Named("presence", "type", "subscribed", "from", "carol@pros.test"),
		fedRosterPush("carol@pros.test", "to"),
		func(e *wire.Element) bool {
			return e.Name == "presence" && e.AttrValue("type") == "" && e.AttrValue("from") == "carol@pros.test/laptop"
		})
	// And back: Prosody's user asks, ours approves.
	rtSend(t, cc, "<presence to='alice@sb.test' type='subscribe'/>")
	ac.Next(t, 20*time.Second, servertest.Named("presence", "type", "subscribe", "from", "carol@pros.test"))
	rtSend(t, ac, "<presence to='carol@pros.test' type='subscribed'/>")
	fedExpectAll(t, ac, fedRosterPush("carol@pros.test", "both"))
	cc.Next(t, 20*time.Second, func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("type") == "" && e.AttrValue("from") == "alice@sb.test/desk"
	})
	// A status set on our side reaches the Prosody user.
	rtSend(t, ac, "<presence><show>away</show><status>lunch</status></presence>")
	el = cc.Next(t, 20*time.Second, func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("from") == "alice@sb.test/desk" && e.ChildText("show", "jabber:client") == "away"
	})
	if got := el.ChildText("status", "jabber:client"); got != "lunch" {
		t.Errorf("status %q, want lunch", got)
	}
	// The Prosody user joins a room of ours (XEP-0045 over
	// federation: Prosody authenticates with conference.sb.test, and
	// the room service with pros.test).
	rtSend(t, ac, "<presence to='team@conference.sb.test/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	ac.Next(t, 20*time.Second, func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("from") == "team@conference.sb.test/alice"
	})
	rtSend(t, ac, "<iq id='unlock' type='set' to='team@conference.sb.test'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>")
	ac.Next(t, 20*time.Second, rtMatch("iq", "team@conference.sb.test", "unlock"))
	rtSend(t, cc, "<presence to='team@conference.sb.test/carol'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	cc.Next(t, 20*time.Second, func(e *wire.Element) bool {
		x := e.Child("x", "http://jabber.org/protocol/muc#user")
		return e.Name == "presence" && e.AttrValue("from") == "team@conference.sb.test/carol" && x != nil
	})
	ac.Next(t, 20*time.Second, func(e *wire.Element) bool {
		return e.Name == "presence" && e.AttrValue("from") == "team@conference.sb.test/carol" && e.AttrValue("type") == ""
	})
	rtSend(t, cc, "<message id='gc1' to='team@conference.sb.test' type='groupchat'><body>hello room</body></message>")
	for _, c := range []*servertest.Client{ac, cc} {
		el := c.Next(t, 20*time.Second, rtMatch("message", "team@conference.sb.test/carol", "gc1"))
		if el.AttrValue("type") != "groupchat" || el.ChildText("body", "jabber:client") != "hello room" {
			t.Errorf("%s got %s", c.JID, el.Raw())
		}
	}

	// A ping to Prosody's domain is answered over the other stream.
	rtSend(t, ac, "<iq id='ping' type='get' to='pros.test'><ping xmlns='urn:xmpp:ping'/></iq>")
	el = ac.Next(t, 20*time.Second, rtMatch("iq", "pros.test", "ping"))
	rtCheck(t, el, rtWant{name: "iq", typ: "result", id: "ping", from: "pros.test", to: "alice@sb.test/desk"})
}
