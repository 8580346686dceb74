package server_test

import (
	"net"
	"testing"

	"switchboard/xmpp/server/servertest"
)

// TestSlixmppComponent: slixmpp's ComponentXMPP connects as the external
// component gw.localhost (XEP-0114), answers a slixmpp user's disco#info
// and echoes its chat message (testdata/slixmpp_component.py).
func TestSlixmppComponent(t *testing.T) {
	requireSlixmpp(t)
	s := servertest.Start(t, servertest.WithComponent(ecDomain, ecSecret))
	s.AddUser(t, "alice", "a")
	_, port, err := net.SplitHostPort(s.Component)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runSlixmppScript(t, s, "testdata/slixmpp_component.py",
		"--user", "alice", "--password", "a",
		"--component", ecDomain, "--component-port", port, "--secret", ecSecret)
	if err != nil {
		t.Fatalf("slixmpp_component.py: %v\n%s", err, out)
	}
	requireOutput(t, "slixmpp_component.py", out,
		"OK: the component completed its handshake\n",
		"OK: the component answered disco#info\n",
		"OK: the echo came from echo@"+ecDomain+"/bot\n",
		"\nOK\n",
	)
}
