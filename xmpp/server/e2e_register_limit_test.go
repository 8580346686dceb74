package server_test

import (
	"fmt"
	"testing"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
)

// TestRegistrationAttemptsBounded: one unauthenticated connection may try
// in-band registration a bounded number of times (each attempt derives a
// password and writes the store); then the stream ends with
// policy-violation.
func TestRegistrationAttemptsBounded(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Hosts[0].Registration = true }))
	r, _ := tlsOpen(t, s)
	for i := range 10 {
		r.Write(t, fmt.Sprintf("<iq type='set' id='r%d'><query xmlns='%s'><username>u%d</username><password>pw</password></query></iq>", i, nsIQRegister, i))
		if el := readEl(t, r); el.Name != "iq" || el.AttrValue("type") != "result" {
			t.Fatalf("attempt %d: %s", i, el)
		}
	}
	r.Write(t, "<iq type='set' id='r10'><query xmlns='"+nsIQRegister+"'><username>u10</username><password>pw</password></query></iq>")
	if cond := r.StreamError(t); cond != "policy-violation" {
		t.Fatalf("stream error %q, want policy-violation", cond)
	}
	// The server goes on: another connection registers.
	r2, _ := tlsOpen(t, s)
	r2.Write(t, "<iq type='set' id='x'><query xmlns='"+nsIQRegister+"'><username>late</username><password>pw</password></query></iq>")
	if el := readEl(t, r2); el.AttrValue("type") != "result" {
		t.Fatalf("fresh connection: %s", el)
	}
}
