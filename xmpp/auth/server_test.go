package auth

import (
	"context"
	"crypto/sha1" //nolint:gosec // test vectors of RFC 5802
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNewServerValidates(t *testing.T) {
	lookup := newLookup(nil)
	tests := []struct {
		name string
		opts Options
	}{
		{"no lookup", Options{}},
		{"unknown mechanism", Options{Lookup: lookup, Mechanisms: []string{"DIGEST-MD5"}}},
		{"empty mechanism list", Options{Lookup: lookup, Mechanisms: []string{}}},
		{"negative iterations", Options{Lookup: lookup, UnknownUserIterations: -1}},
		{"too many iterations", Options{Lookup: lookup, UnknownUserIterations: MaxIterations + 1}},
		{"short decoy secret", Options{Lookup: lookup, DecoySecret: []byte("short")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := NewServer(tc.opts); err == nil {
				t.Fatalf("NewServer = %v, want error", s)
			}
		})
	}
}

func TestMechanismsAndBindings(t *testing.T) {
	srv13, cli13 := tlsPair(t, tls.VersionTLS13)
	srv12, cli12 := tlsPair(t, tls.VersionTLS12)
	incomplete := &tls.ConnectionState{Version: tls.VersionTLS13}
	srv12NoUnique := &tls.ConnectionState{Version: tls.VersionTLS12, HandshakeComplete: true}
	certs := map[*tls.ConnectionState]*x509.Certificate{
		srv13: cli13.PeerCertificates[0], srv12: cli12.PeerCertificates[0], srv12NoUnique: cli12.PeerCertificates[0],
	}
	certOf := func(cs *tls.ConnectionState) *x509.Certificate { return certs[cs] }
	noCert := func(*tls.ConnectionState) *x509.Certificate { return nil }
	all := []string{MechanismSCRAMSHA256Plus, MechanismSCRAMSHA1Plus, MechanismSCRAMSHA256, MechanismSCRAMSHA1, MechanismPlain}
	tests := []struct {
		name         string
		opts         Options
		state        *tls.ConnectionState
		wantMechs    []string
		wantBindings []string
	}{
		{name: "no TLS", wantMechs: []string{MechanismSCRAMSHA256, MechanismSCRAMSHA1}},
		{name: "no TLS, PLAIN allowed", opts: Options{AllowPlainWithoutTLS: true},
			wantMechs: []string{MechanismSCRAMSHA256, MechanismSCRAMSHA1, MechanismPlain}},
		{name: "TLS 1.3", state: srv13, wantMechs: all, wantBindings: []string{BindingTLSExporter}},
		{name: "TLS 1.2", state: srv12, wantMechs: all, wantBindings: []string{BindingTLSUnique}},
		{name: "handshake incomplete", state: incomplete,
			wantMechs: []string{MechanismSCRAMSHA256, MechanismSCRAMSHA1, MechanismPlain}},
		{name: "restricted", state: srv13,
			opts:      Options{Mechanisms: []string{MechanismPlain, MechanismSCRAMSHA256Plus, MechanismSCRAMSHA256}},
			wantMechs: []string{MechanismSCRAMSHA256Plus, MechanismSCRAMSHA256, MechanismPlain}, wantBindings: []string{BindingTLSExporter}},
		{name: "no -PLUS enabled", state: srv13, opts: Options{Mechanisms: []string{MechanismSCRAMSHA1}},
			wantMechs: []string{MechanismSCRAMSHA1}},
		{name: "TLS 1.3 with certificate", state: srv13, opts: Options{ServerCertificate: certOf},
			wantMechs: all, wantBindings: []string{BindingTLSExporter, BindingTLSServerEndPoint}},
		{name: "TLS 1.2 with certificate", state: srv12, opts: Options{ServerCertificate: certOf},
			wantMechs: all, wantBindings: []string{BindingTLSUnique, BindingTLSServerEndPoint}},
		{name: "certificate unknown", state: srv13, opts: Options{ServerCertificate: noCert},
			wantMechs: all, wantBindings: []string{BindingTLSExporter}},
		{name: "only tls-server-end-point", state: srv12NoUnique, opts: Options{ServerCertificate: certOf},
			wantMechs: all, wantBindings: []string{BindingTLSServerEndPoint}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.opts)
			if got := s.Mechanisms(tc.state); !slices.Equal(got, tc.wantMechs) {
				t.Errorf("Mechanisms = %q, want %q", got, tc.wantMechs)
			}
			if got := s.ChannelBindings(tc.state); !slices.Equal(got, tc.wantBindings) {
				t.Errorf("ChannelBindings = %q, want %q", got, tc.wantBindings)
			}
		})
	}
}

func TestStart(t *testing.T) {
	srv13, _ := tlsPair(t, tls.VersionTLS13)
	tests := []struct {
		name     string
		opts     Options
		host     string
		mech     string
		state    *tls.ConnectionState
		wantCond string
	}{
		{name: "unknown mechanism", mech: "DIGEST-MD5", state: srv13, wantCond: ConditionInvalidMechanism},
		{name: "lower-case name", mech: "scram-sha-256", state: srv13, wantCond: ConditionInvalidMechanism},
		{name: "disabled mechanism", opts: Options{Mechanisms: []string{MechanismSCRAMSHA256}}, mech: MechanismSCRAMSHA1,
			wantCond: ConditionInvalidMechanism},
		{name: "-PLUS without TLS", mech: MechanismSCRAMSHA256Plus, wantCond: ConditionInvalidMechanism},
		{name: "PLAIN without TLS", mech: MechanismPlain, wantCond: ConditionEncryptionRequired},
		{name: "PLAIN without TLS allowed", opts: Options{AllowPlainWithoutTLS: true}, mech: MechanismPlain},
		{name: "PLAIN over TLS", mech: MechanismPlain, state: srv13},
		{name: "SCRAM without TLS", mech: MechanismSCRAMSHA1},
		{name: "invalid host", host: "exa mple..com", mech: MechanismSCRAMSHA1, wantCond: ConditionTemporaryAuthFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.opts)
			host := tc.host
			if host == "" {
				host = testHost
			}
			ex, err := s.Start(host, tc.mech, tc.state)
			if got := condition(err); got != tc.wantCond {
				t.Fatalf("Start: condition %q, want %q (err %v)", got, tc.wantCond, err)
			}
			if err == nil && ex.Mechanism() != tc.mech {
				t.Errorf("Mechanism() = %q, want %q", ex.Mechanism(), tc.mech)
			}
		})
	}
}

// TestSCRAMTestVectors replays the examples of RFC 5802 §5 and RFC 7677 §3.
func TestSCRAMTestVectors(t *testing.T) {
	tests := []struct {
		name     string
		mech     string
		salt     string
		sNonce   string
		messages [4]string // client-first, server-first, client-final, server-final
	}{
		{
			name:   "RFC 5802",
			mech:   MechanismSCRAMSHA1,
			salt:   "QSXCR+Q6sek8bf92",
			sNonce: "3rfcNHYJY1ZVvWVs7j",
			messages: [4]string{
				"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
				"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
				"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
				"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
			},
		},
		{
			name:   "RFC 7677",
			mech:   MechanismSCRAMSHA256,
			salt:   "W22ZaJ0SNY7soEsUEjb6gQ==",
			sNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
			messages: [4]string{
				"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
				"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
				"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
				"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			salt, err := base64.StdEncoding.DecodeString(tc.salt)
			if err != nil {
				t.Fatal(err)
			}
			var creds Credentials
			if tc.mech == MechanismSCRAMSHA1 {
				creds.SHA1 = derive([]byte("pencil"), salt, 4096, sha1.New)
			} else {
				creds.SHA256 = derive([]byte("pencil"), salt, 4096, sha256.New)
			}
			s := newTestServer(t, Options{Lookup: newLookup(map[string]Credentials{testHost + "/user": creds})})
			s.nonce = func() []byte { return []byte(tc.sNonce) }
			ex, err := s.Start(testHost, tc.mech, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, done, err := ex.Step(t.Context(), []byte(tc.messages[0]))
			if err != nil || done || string(out) != tc.messages[1] {
				t.Fatalf("server-first = %q, %v, %v; want %q", out, done, err, tc.messages[1])
			}
			out, done, err = ex.Step(t.Context(), []byte(tc.messages[2]))
			if err != nil || !done || string(out) != tc.messages[3] {
				t.Fatalf("server-final = %q, %v, %v; want %q", out, done, err, tc.messages[3])
			}
			if ex.Localpart() != "user" {
				t.Errorf("Localpart() = %q", ex.Localpart())
			}
			if _, _, err := ex.Step(t.Context(), nil); condition(err) != ConditionMalformedRequest {
				t.Errorf("step after success: %v, want malformed-request", err)
			}
			if ex.Localpart() != "user" {
				t.Errorf("a stray step after success cleared Localpart(): %q", ex.Localpart())
			}
		})
	}
}

// scramFirstStep starts a SCRAM exchange and sends client-first.
func scramFirstStep(t *testing.T, s *Server, mech string, state *tls.ConnectionState, clientFirst string) (*Exchange, []byte, error) {
	t.Helper()
	ex, err := s.Start(testHost, mech, state)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	out, done, err := ex.Step(t.Context(), []byte(clientFirst))
	if done {
		t.Fatalf("done after client-first")
	}
	return ex, out, err
}

func TestSCRAMMalformedClientFirst(t *testing.T) {
	srv13, _ := tlsPair(t, tls.VersionTLS13)
	s := newTestServer(t, Options{})
	tests := []struct {
		name     string
		mech     string
		state    *tls.ConnectionState
		msg      string
		wantCond string
	}{
		{name: "valid", msg: "n,,n=juliet,r=abc"},
		{name: "valid with extension", msg: "n,,n=juliet,r=abc,x=1,y=2"},
		{name: "valid y without TLS", msg: "y,,n=juliet,r=abc"},
		{name: "valid authzid", msg: "n,a=juliet@example.com,n=juliet,r=abc"},
		{name: "invalid escape in authzid", msg: "n,a=juliet=40example.com,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "other authzid", msg: "n,a=romeo@example.com,n=juliet,r=abc", wantCond: ConditionInvalidAuthzid},
		{name: "unparsable authzid", msg: "n,a=@,n=juliet,r=abc", wantCond: ConditionInvalidAuthzid},
		{name: "only flag", msg: "n", wantCond: ConditionMalformedRequest},
		{name: "bad flag", msg: "x,,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "flag too long", msg: "nn,,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "empty cb name", msg: "p=,,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "bad cb name", msg: "p=tls_unique,,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "binding on non-PLUS", msg: "p=tls-exporter,,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "binding on non-PLUS over TLS", state: srv13, msg: "p=tls-exporter,,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "header only", msg: "n,,", wantCond: ConditionMalformedRequest},
		{name: "missing authzid comma", msg: "n,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "no nonce", msg: "n,,n=juliet", wantCond: ConditionMalformedRequest},
		{name: "attributes swapped", msg: "n,,r=abc,n=juliet", wantCond: ConditionMalformedRequest},
		{name: "mandatory extension", msg: "n,,m=ext,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "m extension later", msg: "n,,n=juliet,r=abc,m=ext", wantCond: ConditionMalformedRequest},
		{name: "bad extension", msg: "n,,n=juliet,r=abc,garbage", wantCond: ConditionMalformedRequest},
		{name: "empty extension value", msg: "n,,n=juliet,r=abc,x=", wantCond: ConditionMalformedRequest},
		{name: "trailing comma", msg: "n,,n=juliet,r=abc,", wantCond: ConditionMalformedRequest},
		{name: "authzid without a=", msg: "n,b=juliet,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "empty authzid value", msg: "n,a=,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "empty username", msg: "n,,n=,r=abc", wantCond: ConditionMalformedRequest},
		{name: "bad escape", msg: "n,,n=jul=2Xet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "lower-case escape", msg: "n,,n=jul=2cet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "bare equals", msg: "n,,n=jul=iet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "truncated escape", msg: "n,,n=juliet=3,r=abc", wantCond: ConditionMalformedRequest},
		{name: "NUL in username", msg: "n,,n=jul\x00iet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "invalid UTF-8", msg: "n,,n=jul\xffiet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "empty nonce", msg: "n,,n=juliet,r=", wantCond: ConditionMalformedRequest},
		{name: "space in nonce", msg: "n,,n=juliet,r=a c", wantCond: ConditionMalformedRequest},
		{name: "non-ASCII nonce", msg: "n,,n=juliet,r=é", wantCond: ConditionMalformedRequest},
		{name: "invalid localpart", msg: "n,,n=jul@iet,r=abc", wantCond: ConditionNotAuthorized},
		{name: "escaped comma in unknown user", msg: "n,,n=a=2Cb,r=abc"},
		{name: "unknown user still gets server-first", msg: "n,,n=romeo,r=abc"},
		{name: "escaped equals in unknown user", msg: "n,,n=a=3Db,r=abc"},
		{name: "downgrade", state: srv13, msg: "y,,n=juliet,r=abc", wantCond: ConditionNotAuthorized},
		{name: "PLUS without binding", mech: MechanismSCRAMSHA256Plus, state: srv13, msg: "n,,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "PLUS with y", mech: MechanismSCRAMSHA256Plus, state: srv13, msg: "y,,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "PLUS with tls-unique on TLS 1.3", mech: MechanismSCRAMSHA256Plus, state: srv13, msg: "p=tls-unique,,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "PLUS with tls-server-end-point", mech: MechanismSCRAMSHA1Plus, state: srv13, msg: "p=tls-server-end-point,,n=juliet,r=abc", wantCond: ConditionMalformedRequest},
		{name: "PLUS valid", mech: MechanismSCRAMSHA1Plus, state: srv13, msg: "p=tls-exporter,,n=juliet,r=abc"},
		{name: "too large", msg: "n,,n=juliet,r=" + strings.Repeat("a", MaxMessageSize), wantCond: ConditionMalformedRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mech := tc.mech
			if mech == "" {
				mech = MechanismSCRAMSHA256
			}
			ex, out, err := scramFirstStep(t, s, mech, tc.state, tc.msg)
			if got := condition(err); got != tc.wantCond {
				t.Fatalf("condition = %q, want %q (err %v)", got, tc.wantCond, err)
			}
			if err != nil {
				if _, _, err := ex.Step(t.Context(), []byte("c=biws,r=abc,p=AAAA")); condition(err) != ConditionMalformedRequest {
					t.Errorf("step after failure: %v, want malformed-request", err)
				}
				return
			}
			if !strings.HasPrefix(string(out), "r=abc"+testServerNonce+",s=") || !strings.HasSuffix(string(out), ",i=4096") {
				t.Errorf("server-first = %q", out)
			}
		})
	}
}

func TestSCRAMMalformedClientFinal(t *testing.T) {
	s := newTestServer(t, Options{})
	const cnonce = "cnonce"
	nonce := cnonce + testServerNonce
	validProof := func(t *testing.T, serverFirst []byte) string {
		c := newScramClient(sha256.New, testPassword, "n,,", testUser, cnonce)
		msg, _ := c.final(t, serverFirst, nil)
		_, proof, _ := strings.Cut(string(msg), ",p=")
		return proof
	}
	zeroProof := base64.StdEncoding.EncodeToString(make([]byte, sha256.Size))
	tests := []struct {
		name     string
		msg      func(proof string) string
		wantCond string
	}{
		{"valid", func(p string) string { return "c=biws,r=" + nonce + ",p=" + p }, ""},
		{"valid with extension", func(p string) string { return "c=biws,r=" + nonce + ",x=1,p=" + p }, ConditionNotAuthorized},
		{"empty", func(string) string { return "" }, ConditionMalformedRequest},
		{"no commas", func(string) string { return "c=biws" }, ConditionMalformedRequest},
		{"no proof", func(string) string { return "c=biws,r=" + nonce }, ConditionMalformedRequest},
		{"no nonce", func(p string) string { return "c=biws,p=" + p }, ConditionMalformedRequest},
		{"no channel binding", func(p string) string { return "r=" + nonce + ",p=" + p }, ConditionMalformedRequest},
		{"swapped", func(p string) string { return "r=" + nonce + ",c=biws,p=" + p }, ConditionMalformedRequest},
		{"nonce mismatch", func(p string) string { return "c=biws,r=" + cnonce + ",p=" + p }, ConditionMalformedRequest},
		{"nonce prefix", func(p string) string { return "c=biws,r=" + nonce + "x,p=" + p }, ConditionMalformedRequest},
		{"bad c= base64", func(p string) string { return "c=bi!s,r=" + nonce + ",p=" + p }, ConditionMalformedRequest},
		{"bad proof base64", func(string) string { return "c=biws,r=" + nonce + ",p=!!!!" }, ConditionMalformedRequest},
		{"unpadded proof", func(p string) string { return "c=biws,r=" + nonce + ",p=" + strings.TrimRight(p, "=") }, ConditionMalformedRequest},
		{"short proof", func(string) string {
			return "c=biws,r=" + nonce + ",p=" + base64.StdEncoding.EncodeToString(make([]byte, 20))
		}, ConditionMalformedRequest},
		{"wrong proof", func(string) string { return "c=biws,r=" + nonce + ",p=" + zeroProof }, ConditionNotAuthorized},
		{"y header in c=", func(p string) string { return "c=eSws,r=" + nonce + ",p=" + p }, ConditionMalformedRequest},
		{"extra channel binding data", func(p string) string {
			return "c=" + base64.StdEncoding.EncodeToString([]byte("n,,xyz")) + ",r=" + nonce + ",p=" + p
		}, ConditionNotAuthorized},
		{"m extension", func(p string) string { return "c=biws,r=" + nonce + ",m=x,p=" + p }, ConditionMalformedRequest},
		{"bad extension", func(p string) string { return "c=biws,r=" + nonce + ",xyz,p=" + p }, ConditionMalformedRequest},
		{"proof not last", func(p string) string { return "c=biws,r=" + nonce + ",p=" + p + ",x=1" }, ConditionMalformedRequest},
		{"invalid UTF-8", func(p string) string { return "c=biws,r=" + nonce + ",x=\xff,p=" + p }, ConditionMalformedRequest},
		{"too large", func(p string) string {
			return "c=biws,r=" + nonce + ",x=" + strings.Repeat("a", MaxMessageSize) + ",p=" + p
		}, ConditionMalformedRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex, sf, err := scramFirstStep(t, s, MechanismSCRAMSHA256, nil, "n,,n=juliet,r="+cnonce)
			if err != nil {
				t.Fatal(err)
			}
			out, done, err := ex.Step(t.Context(), []byte(tc.msg(validProof(t, sf))))
			if got := condition(err); got != tc.wantCond {
				t.Fatalf("condition = %q, want %q (err %v)", got, tc.wantCond, err)
			}
			if err == nil {
				if !done || !strings.HasPrefix(string(out), "v=") || ex.Localpart() != testUser {
					t.Fatalf("success = %q, %v, %q", out, done, ex.Localpart())
				}
				return
			}
			if ex.Localpart() != "" {
				t.Errorf("Localpart() = %q after failure", ex.Localpart())
			}
		})
	}
}

// TestSCRAMChannelBinding crafts -PLUS exchanges by hand.
func TestSCRAMChannelBinding(t *testing.T) {
	srv13, cli13 := tlsPair(t, tls.VersionTLS13)
	srv12, cli12 := tlsPair(t, tls.VersionTLS12)
	exporter := func(cs *tls.ConnectionState) []byte {
		b, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The client computes tls-server-end-point from the certificate it
	// received (ECDSA with SHA-256).
	endPoint := func(cs *tls.ConnectionState) []byte {
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		return sum[:]
	}
	tests := []struct {
		name     string
		mech     string
		state    *tls.ConnectionState
		header   string
		cbData   []byte
		cbInput  []byte // overrides the whole decoded c= value
		wantCond string
	}{
		{name: "tls-exporter", mech: MechanismSCRAMSHA256Plus, state: srv13, header: "p=tls-exporter,,", cbData: exporter(cli13)},
		{name: "tls-unique", mech: MechanismSCRAMSHA1Plus, state: srv12, header: "p=tls-unique,,", cbData: cli12.TLSUnique},
		{name: "with authzid", mech: MechanismSCRAMSHA1Plus, state: srv13, header: "p=tls-exporter,a=juliet@example.com,", cbData: exporter(cli13)},
		{name: "tampered binding data", mech: MechanismSCRAMSHA256Plus, state: srv13, header: "p=tls-exporter,,",
			cbData: make([]byte, 32), wantCond: ConditionNotAuthorized},
		{name: "truncated binding data", mech: MechanismSCRAMSHA256Plus, state: srv13, header: "p=tls-exporter,,",
			cbData: exporter(cli13)[:31], wantCond: ConditionNotAuthorized},
		{name: "binding data omitted", mech: MechanismSCRAMSHA256Plus, state: srv13, header: "p=tls-exporter,,",
			cbData: nil, wantCond: ConditionNotAuthorized},
		{name: "tls-unique of another connection", mech: MechanismSCRAMSHA256Plus, state: srv12, header: "p=tls-unique,,",
			cbData: srv13.TLSUnique, wantCond: ConditionNotAuthorized},
		{name: "header differs in c=", mech: MechanismSCRAMSHA256Plus, state: srv13, header: "p=tls-exporter,,",
			cbInput: append([]byte("n,,"), exporter(cli13)...), wantCond: ConditionMalformedRequest},
		{name: "non-PLUS c= carries data", mech: MechanismSCRAMSHA256, state: srv13, header: "n,,",
			cbData: exporter(cli13), wantCond: ConditionNotAuthorized},
		{name: "tls-server-end-point on TLS 1.3", mech: MechanismSCRAMSHA256Plus, state: srv13, header: "p=tls-server-end-point,,",
			cbData: endPoint(cli13)},
		{name: "tls-server-end-point on TLS 1.2", mech: MechanismSCRAMSHA1Plus, state: srv12, header: "p=tls-server-end-point,,",
			cbData: endPoint(cli12)},
		{name: "tls-server-end-point of another certificate", mech: MechanismSCRAMSHA256Plus, state: srv13,
			header: "p=tls-server-end-point,,", cbData: endPoint(cli12), wantCond: ConditionNotAuthorized},
	}
	certs := map[*tls.ConnectionState]*x509.Certificate{srv13: cli13.PeerCertificates[0], srv12: cli12.PeerCertificates[0]}
	s := newTestServer(t, Options{ServerCertificate: func(cs *tls.ConnectionState) *x509.Certificate { return certs[cs] }})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := sha256.New
			if tc.mech == MechanismSCRAMSHA1Plus {
				h = sha1.New
			}
			c := newScramClient(h, testPassword, tc.header, testUser, "cnonce")
			c.cbData = tc.cbData
			ex, sf, err := scramFirstStep(t, s, tc.mech, tc.state, string(c.first()))
			if err != nil {
				t.Fatal(err)
			}
			final, serverSig := c.final(t, sf, tc.cbInput)
			out, done, err := ex.Step(t.Context(), final)
			if got := condition(err); got != tc.wantCond {
				t.Fatalf("condition = %q, want %q (err %v)", got, tc.wantCond, err)
			}
			if err == nil {
				want := "v=" + base64.StdEncoding.EncodeToString(serverSig)
				if !done || string(out) != want {
					t.Fatalf("server-final = %q, %v; want %q", out, done, want)
				}
			}
		})
	}
}

func TestEmptyInitialResponse(t *testing.T) {
	srv13, _ := tlsPair(t, tls.VersionTLS13)
	s := newTestServer(t, Options{})
	for _, mech := range []string{MechanismSCRAMSHA1, MechanismPlain} {
		t.Run(mech, func(t *testing.T) {
			ex, err := s.Start(testHost, mech, srv13)
			if err != nil {
				t.Fatal(err)
			}
			out, done, err := ex.Step(t.Context(), nil)
			if err != nil || done || out == nil || len(out) != 0 {
				t.Fatalf("first empty step = %q, %v, %v; want empty challenge", out, done, err)
			}
			if _, _, err := ex.Step(t.Context(), []byte{}); condition(err) != ConditionMalformedRequest {
				t.Fatalf("second empty step: %v, want malformed-request", err)
			}
		})
	}
	t.Run("then client-first", func(t *testing.T) {
		ex, err := s.Start(testHost, MechanismSCRAMSHA1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ex.Step(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		out, _, err := ex.Step(t.Context(), []byte("n,,n=juliet,r=abc"))
		if err != nil || !strings.HasPrefix(string(out), "r=abc") {
			t.Fatalf("server-first = %q, %v", out, err)
		}
	})
}

func TestPLAIN(t *testing.T) {
	srv13, _ := tlsPair(t, tls.VersionTLS13)
	sha1Only := testCredentials()
	sha1Only.SHA256 = Credential{}
	broken := testCredentials()
	broken.SHA256.StoredKey = broken.SHA256.StoredKey[:3]
	s := newTestServer(t, Options{Lookup: newLookup(map[string]Credentials{
		testHost + "/" + testUser: testCredentials(),
		testHost + "/old":         sha1Only,
		testHost + "/broken":      broken,
		testHost + "/nocreds":     {},
	})})
	tests := []struct {
		name          string
		msg           string
		wantCond      string
		wantLocalpart string
	}{
		{"valid", "\x00juliet\x00pencil", "", testUser},
		{"case mapped", "\x00JULIET\x00pencil", "", testUser},
		{"authzid", "juliet@example.com\x00juliet\x00pencil", "", testUser},
		{"SHA-1 credential only", "\x00old\x00pencil", "", "old"},
		{"other authzid", "romeo@example.com\x00juliet\x00pencil", ConditionInvalidAuthzid, ""},
		{"wrong password", "\x00juliet\x00pencil!", ConditionNotAuthorized, ""},
		{"unknown user", "\x00romeo\x00pencil", ConditionNotAuthorized, ""},
		{"user without credentials", "\x00nocreds\x00pencil", ConditionNotAuthorized, ""},
		{"full JID as authcid", "\x00juliet@example.com\x00pencil", ConditionNotAuthorized, ""},
		{"invalid stored credential", "\x00broken\x00pencil", ConditionTemporaryAuthFailure, ""},
		{"two fields", "juliet\x00pencil", ConditionMalformedRequest, ""},
		{"four fields", "\x00juliet\x00pen\x00cil", ConditionMalformedRequest, ""},
		{"empty authcid", "\x00\x00pencil", ConditionMalformedRequest, ""},
		{"empty password", "\x00juliet\x00", ConditionMalformedRequest, ""},
		{"invalid UTF-8", "\x00juliet\x00pen\xffcil", ConditionMalformedRequest, ""},
		{"no NUL", "julietpencil", ConditionMalformedRequest, ""},
		{"too large", "\x00juliet\x00" + strings.Repeat("p", MaxMessageSize), ConditionMalformedRequest, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := s.Start(testHost, MechanismPlain, srv13)
			if err != nil {
				t.Fatal(err)
			}
			out, done, err := ex.Step(t.Context(), []byte(tc.msg))
			if got := condition(err); got != tc.wantCond {
				t.Fatalf("condition = %q, want %q (err %v)", got, tc.wantCond, err)
			}
			if done != (err == nil) || out != nil {
				t.Errorf("Step = %q, %v", out, done)
			}
			if ex.Localpart() != tc.wantLocalpart {
				t.Errorf("Localpart() = %q, want %q", ex.Localpart(), tc.wantLocalpart)
			}
		})
	}
}

type failingLookup struct{ err error }

func (l failingLookup) Lookup(context.Context, string, string) (Credentials, error) {
	return Credentials{}, l.err
}

func TestLookupErrors(t *testing.T) {
	srv13, _ := tlsPair(t, tls.VersionTLS13)
	storeErr := errors.New("store: disk on fire")
	tests := []struct {
		name     string
		err      error
		wantCond string
		wantIs   error
	}{
		{"store failure", storeErr, ConditionTemporaryAuthFailure, storeErr},
		{"context canceled", context.Canceled, ConditionTemporaryAuthFailure, context.Canceled},
		{"account disabled", &Failure{Condition: ConditionAccountDisabled, Text: "banned"}, ConditionAccountDisabled, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, Options{Lookup: failingLookup{tc.err}})
			for _, msg := range []struct{ mech, msg string }{
				{MechanismSCRAMSHA256, "n,,n=juliet,r=abc"},
				{MechanismPlain, "\x00juliet\x00pencil"},
			} {
				ex, err := s.Start(testHost, msg.mech, srv13)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = ex.Step(t.Context(), []byte(msg.msg))
				if got := condition(err); got != tc.wantCond {
					t.Fatalf("%s: condition = %q, want %q (err %v)", msg.mech, got, tc.wantCond, err)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("%s: error %v does not wrap %v", msg.mech, err, tc.wantIs)
				}
				var f *Failure
				if errors.As(err, &f) && f.Text != "" && tc.wantCond == ConditionTemporaryAuthFailure {
					t.Errorf("internal error text leaks to the peer: %q", f.Text)
				}
			}
		})
	}
}

// TestUnknownUserDecoy checks that an unknown user's server-first looks like
// a real one: stable salt of the same length, the configured iteration count.
func TestUnknownUserDecoy(t *testing.T) {
	lookup := newLookup(map[string]Credentials{testHost + "/" + testUser: testCredentials()})
	secret := []byte("0123456789abcdef0123456789abcdef")
	s1 := newTestServer(t, Options{Lookup: lookup, DecoySecret: secret})
	s2 := newTestServer(t, Options{Lookup: lookup, DecoySecret: secret})
	s3 := newTestServer(t, Options{Lookup: lookup, UnknownUserIterations: 10000})

	salt := func(s *Server, mech, user string) (string, string) {
		_, out, err := scramFirstStep(t, s, mech, nil, "n,,n="+user+",r=abc")
		if err != nil {
			t.Fatalf("%s %s: %v", mech, user, err)
		}
		parts := strings.Split(string(out), ",")
		return parts[1], parts[2]
	}
	realSalt, realIter := salt(s1, MechanismSCRAMSHA256, testUser)
	a, aIter := salt(s1, MechanismSCRAMSHA256, "romeo")
	b, _ := salt(s1, MechanismSCRAMSHA256, "Romeo") // same normalised user
	c, _ := salt(s2, MechanismSCRAMSHA256, "romeo") // same secret
	d, _ := salt(s1, MechanismSCRAMSHA1, "romeo")
	e, _ := salt(s1, MechanismSCRAMSHA256, "mercutio")
	f, fIter := salt(s3, MechanismSCRAMSHA256, "romeo")
	switch {
	case a != b || a != c:
		t.Errorf("decoy salt not stable: %s %s %s", a, b, c)
	case a == d || a == e || a == f:
		t.Errorf("decoy salts collide: %s %s %s %s", a, d, e, f)
	case len(a) != len(realSalt):
		t.Errorf("decoy salt %s, real salt %s: lengths differ", a, realSalt)
	case aIter != realIter || fIter != "i=10000":
		t.Errorf("iterations: decoy %s, real %s, configured %s", aIter, realIter, fIter)
	}
}
