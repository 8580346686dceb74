package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"hash"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/pbkdf2"
)

const (
	testHost     = "example.com"
	testUser     = "juliet"
	testPassword = "pencil"
	// testServerNonce replaces the random server nonce where a test needs
	// reproducible messages.
	testServerNonce = "SRVNONCEsrvnonce+/SRVNONCEsrvnon"
)

// testCredentials derives the credentials of testUser once per test binary.
var testCredentials = sync.OnceValue(func() Credentials {
	c, err := Derive(testPassword, 0)
	if err != nil {
		panic(err)
	}
	return c
})

// fakeLookup is a CredentialLookup backed by a map keyed by "host/localpart".
type fakeLookup struct {
	users map[string]Credentials
	err   error // returned for every lookup when set

	mu    sync.Mutex
	calls []string
}

func (l *fakeLookup) Lookup(_ context.Context, host, localpart string) (Credentials, error) {
	l.mu.Lock()
	l.calls = append(l.calls, host+"/"+localpart)
	l.mu.Unlock()
	if l.err != nil {
		return Credentials{}, l.err
	}
	c, ok := l.users[host+"/"+localpart]
	if !ok {
		return Credentials{}, fmt.Errorf("fake store: %q: %w", localpart, ErrUnknownUser)
	}
	return c, nil
}

func newLookup(users map[string]Credentials) *fakeLookup {
	return &fakeLookup{users: users}
}

// newTestServer returns a server knowing testUser at testHost, with a fixed
// server nonce.
func newTestServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Lookup == nil {
		opts.Lookup = newLookup(map[string]Credentials{testHost + "/" + testUser: testCredentials()})
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	s.nonce = func() []byte { return []byte(testServerNonce) }
	return s
}

// tlsPair performs a TLS handshake of the given version over net.Pipe and
// returns the server's and the client's connection states.
func tlsPair(t testing.TB, version uint16) (server, client *tls.ConnectionState) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: testHost},
		DNSNames:              []string{testHost},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)

	sraw, craw := net.Pipe()
	defer sraw.Close()
	defer craw.Close()
	sconn := tls.Server(sraw, &tls.Config{
		Certificates:           []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		MinVersion:             version,
		MaxVersion:             version,
		SessionTicketsDisabled: true, // nothing may be written after the handshake on net.Pipe
	})
	cconn := tls.Client(craw, &tls.Config{
		RootCAs:    roots,
		ServerName: testHost,
		MinVersion: version,
		MaxVersion: version,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1) // capacity 1: the server goroutine never blocks on it
	go func() { errc <- sconn.HandshakeContext(ctx) }()
	if err := cconn.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	ss, cs := sconn.ConnectionState(), cconn.ConnectionState()
	if ss.Version != version || cs.Version != version {
		t.Fatalf("negotiated %x/%x, want %x", ss.Version, cs.Version, version)
	}
	return &ss, &cs
}

// tlsStates caches one TLS 1.3 and one TLS 1.2 pair per test binary, for fuzz
// targets and benchmarks.
var tlsStates = struct {
	sync.Mutex
	m map[uint16][2]*tls.ConnectionState
}{m: map[uint16][2]*tls.ConnectionState{}}

func cachedTLSPair(t testing.TB, version uint16) (server, client *tls.ConnectionState) {
	tlsStates.Lock()
	defer tlsStates.Unlock()
	if p, ok := tlsStates.m[version]; ok {
		return p[0], p[1]
	}
	s, c := tlsPair(t, version)
	tlsStates.m[version] = [2]*tls.ConnectionState{s, c}
	return s, c
}

// scramClient is a minimal hand-written SCRAM client for crafting messages.
type scramClient struct {
	h         func() hash.Hash
	password  string
	gs2Header string
	cbData    []byte
	bare      string
}

func newScramClient(h func() hash.Hash, password, gs2Header, username, cnonce string) *scramClient {
	return &scramClient{h: h, password: password, gs2Header: gs2Header,
		bare: "n=" + username + ",r=" + cnonce}
}

func (c *scramClient) first() []byte { return []byte(c.gs2Header + c.bare) }

// final computes client-final for serverFirst; cbInput overrides the decoded
// c= value when non-nil.
func (c *scramClient) final(t testing.TB, serverFirst []byte, cbInput []byte) (msg []byte, serverSig []byte) {
	t.Helper()
	var nonce, salt string
	iter := 0
	for _, attr := range strings.Split(string(serverFirst), ",") {
		switch {
		case strings.HasPrefix(attr, "r="):
			nonce = attr[2:]
		case strings.HasPrefix(attr, "s="):
			salt = attr[2:]
		case strings.HasPrefix(attr, "i="):
			var err error
			if iter, err = strconv.Atoi(attr[2:]); err != nil {
				t.Fatalf("server-first %q: %v", serverFirst, err)
			}
		}
	}
	rawSalt, err := base64.StdEncoding.DecodeString(salt)
	if err != nil {
		t.Fatalf("server-first %q: %v", serverFirst, err)
	}
	if cbInput == nil {
		cbInput = append([]byte(c.gs2Header), c.cbData...)
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(cbInput) + ",r=" + nonce
	pw, err := preparePassword(c.password)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 5802 §3, written out independently of derive.
	salted := pbkdf2.Key(pw, rawSalt, iter, c.h().Size(), c.h)
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(c.h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	d := c.h()
	d.Write(clientKey)
	storedKey := d.Sum(nil)
	authMessage := c.bare + "," + string(serverFirst) + "," + withoutProof
	proof := make([]byte, len(clientKey))
	subtle.XORBytes(proof, clientKey, mac(storedKey, authMessage))
	serverSig = mac(mac(salted, "Server Key"), authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), serverSig
}
