package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"testing"
	"time"
)

func TestServerEndPoint(t *testing.T) {
	selfSigned := func(t *testing.T, pub, priv any, alg x509.SignatureAlgorithm) *x509.Certificate {
		t.Helper()
		tmpl := &x509.Certificate{
			SerialNumber:       big.NewInt(1),
			NotBefore:          time.Now().Add(-time.Hour),
			NotAfter:           time.Now().Add(time.Hour),
			SignatureAlgorithm: alg,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sum256 := func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	sum384 := func(b []byte) []byte { s := sha512.Sum384(b); return s[:] }
	sum512 := func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }
	tests := []struct {
		name string
		cert *x509.Certificate
		sum  func([]byte) []byte // nil: unavailable
	}{
		{"nil", nil, nil},
		{"ECDSA SHA-256", selfSigned(t, &p256.PublicKey, p256, x509.ECDSAWithSHA256), sum256},
		{"ECDSA SHA-384", selfSigned(t, &p384.PublicKey, p384, x509.ECDSAWithSHA384), sum384},
		{"ECDSA SHA-512", selfSigned(t, &p384.PublicKey, p384, x509.ECDSAWithSHA512), sum512},
		{"Ed25519", selfSigned(t, edPub, edPriv, x509.PureEd25519), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := serverEndPoint(tc.cert)
			if ok != (tc.sum != nil) {
				t.Fatalf("available = %v, want %v", ok, tc.sum != nil)
			}
			// Advertisement checks availability without the data:
			// both must agree, on every TLS version.
			s := &Server{serverCert: func(*tls.ConnectionState) *x509.Certificate { return tc.cert }}
			for _, st := range []*tls.ConnectionState{
				nil,
				{Version: tls.VersionTLS13},
				{Version: tls.VersionTLS13, HandshakeComplete: true},
				{Version: tls.VersionTLS12, HandshakeComplete: true},
				{Version: tls.VersionTLS12, HandshakeComplete: true, TLSUnique: []byte{1}},
			} {
				for _, name := range []string{BindingTLSExporter, BindingTLSUnique, BindingTLSServerEndPoint} {
					if name == BindingTLSExporter && st != nil && st.HandshakeComplete && st.Version >= tls.VersionTLS13 {
						continue // needs a real connection's keying material
					}
					_, ok := s.channelBindingData(st, name)
					if has := s.hasChannelBinding(st, name); has != ok {
						t.Errorf("%s on %+v: advertised %v, data %v", name, st, has, ok)
					}
				}
			}
			if ok && !bytes.Equal(got, tc.sum(tc.cert.Raw)) {
				t.Errorf("data = %x", got)
			}
		})
	}
}
