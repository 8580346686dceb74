package server_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"

	"switchboard/xmpp/server/servertest"
)

const wait = 5 * time.Second

func TestLoginMechanisms(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "wonder land")
	cases := []struct {
		name   string
		mech   sasl.Mechanism
		tlsMax uint16
		direct bool
	}{
		{"SCRAM-SHA-256", sasl.ScramSha256, 0, false},
		{"SCRAM-SHA-1", sasl.ScramSha1, 0, false},
		{"SCRAM-SHA-256-PLUS tls-exporter", sasl.ScramSha256Plus, 0, false},
		{"SCRAM-SHA-1-PLUS tls-exporter", sasl.ScramSha1Plus, 0, false},
		{"SCRAM-SHA-256-PLUS tls-unique", sasl.ScramSha256Plus, tls.VersionTLS12, false},
		{"PLAIN", sasl.Plain, 0, false},
		{"SCRAM-SHA-256 direct TLS", sasl.ScramSha256, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.TLSConfig()
			if tc.tlsMax != 0 {
				cfg.MaxVersion = tc.tlsMax
			}
			c := s.MustLogin(t, alice, "wonder land", servertest.ClientOptions{
				Mechanisms: []sasl.Mechanism{tc.mech}, TLS: cfg, DirectTLS: tc.direct,
			})
			if c.JID.Bare().String() != "alice@localhost" || c.JID.Resourcepart() == "" {
				t.Fatalf("bound JID %s", c.JID)
			}
		})
	}
}

func TestLoginFailures(t *testing.T) {
	s := servertest.Start(t)
	alice := s.AddUser(t, "alice", "secret")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, mech := range []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha1, sasl.Plain} {
		_, err := s.Login(ctx, alice, "wrong", servertest.ClientOptions{Mechanisms: []sasl.Mechanism{mech}})
		if err == nil || !strings.Contains(err.Error(), "not-authorized") {
			t.Errorf("%s with a wrong password: err = %v, want not-authorized", mech.Name, err)
		}
	}
	bob := alice
	bob, _ = bob.WithLocal("nobody")
	if _, err := s.Login(ctx, bob, "secret", servertest.ClientOptions{}); err == nil || !strings.Contains(err.Error(), "not-authorized") {
		t.Errorf("unknown user: err = %v, want not-authorized", err)
	}
}
