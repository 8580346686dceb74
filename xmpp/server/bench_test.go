package server_test

import (
	"testing"
	"time"

	"mellium.im/sasl"

	"switchboard/xmpp/config"
	"switchboard/xmpp/server/servertest"
)

// BenchmarkLogin measures one complete client login per iteration with the
// mellium client over loopback: TCP connect, STARTTLS (or none), SCRAM-SHA-1
// with the default 4096 iterations on both sides, resource binding, and
// the closing handshake that ends the session again (so that sessions do
// not pile up against max_sessions_per_user).
func BenchmarkLogin(b *testing.B) {
	cases := []struct {
		name  string
		noTLS bool
	}{
		{"STARTTLS SCRAM-SHA-1", false},
		{"plain TCP SCRAM-SHA-1", true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			s := servertest.Start(b, servertest.WithConfig(func(c *config.Config) {
				c.TLS.RequireC2S = !tc.noTLS
			}))
			alice := s.AddUser(b, "alice", "bench password")
			opts := servertest.ClientOptions{Mechanisms: []sasl.Mechanism{sasl.ScramSha1}, NoTLS: tc.noTLS}
			b.ReportAllocs()
			for b.Loop() {
				c, err := s.Login(b.Context(), alice, "bench password", opts)
				if err != nil {
					b.Fatalf("login: %v", err)
				}
				if tc.noTLS && c.ConnectionState().Version != 0 {
					b.Fatal("NoTLS login negotiated TLS")
				}
				if err := c.Close(); err != nil {
					b.Fatalf("close: %v", err)
				}
				c.Closed(b, 5*time.Second)
				c.Conn().Close()
			}
		})
	}
}
