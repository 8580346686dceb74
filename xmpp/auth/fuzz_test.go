package auth

import (
	"crypto/sha1" //nolint:gosec // SCRAM-SHA-1
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"hash"
	"strings"
	"testing"
)

// fuzzMechanisms are the SASL mechanisms the fuzz targets pick from.
var fuzzMechanisms = [...]struct {
	name   string
	h      func() hash.Hash
	header string // gs2 header of a valid client-first
}{
	{MechanismSCRAMSHA256Plus, sha256.New, "p=tls-exporter,,"},
	{MechanismSCRAMSHA1Plus, sha1.New, "p=tls-exporter,,"},
	{MechanismSCRAMSHA256, sha256.New, "n,,"},
	{MechanismSCRAMSHA1, sha1.New, "n,,"},
}

// fuzzServer returns a server with fixed nonces, cheap credentials and cheap
// decoys, so that the fuzzer can reach the proof check quickly.
func fuzzServer(f *testing.F) (*Server, *tls.ConnectionState, *tls.ConnectionState) {
	cheap := Credentials{
		SHA1:   derive([]byte(testPassword), []byte("salt-for-sha-1.."), 1, sha1.New),
		SHA256: derive([]byte(testPassword), []byte("salt-for-sha-256"), 1, sha256.New),
	}
	s := newTestServer(f, Options{
		Lookup:                newLookup(map[string]Credentials{testHost + "/" + testUser: cheap}),
		UnknownUserIterations: 1,
	})
	srv13, cli13 := cachedTLSPair(f, tls.VersionTLS13)
	return s, srv13, cli13
}

// checkFailure fails the test unless err is nil or wraps a *Failure with a
// condition of RFC 6120 §6.5.
func checkFailure(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %v does not wrap *Failure", err)
	}
	switch f.Condition {
	case ConditionMalformedRequest, ConditionNotAuthorized, ConditionInvalidAuthzid:
	default:
		t.Fatalf("unexpected condition %q", f.Condition)
	}
}

func FuzzSCRAMClientFirst(f *testing.F) {
	s, srv13, _ := fuzzServer(f)
	for i, m := range fuzzMechanisms {
		f.Add(uint8(i), []byte(m.header+"n=juliet,r=abc"))
	}
	for _, seed := range []string{
		"", "n", "n,", "n,,", "y,,n=juliet,r=abc", "p=tls-unique,,n=juliet,r=abc",
		"n,a=juliet@example.com,n=juliet,r=abc", "n,a=romeo@example.com,n=juliet,r=abc",
		"n,,m=x,n=juliet,r=abc", "n,,n=ju=2Cl=3Diet,r=abc,x=y", "n,,n=jul=iet,r=abc", "n,,n=,r=",
		"n,,n=\xff,r=abc", "n,,n=romeo,r=abc", "n,,n=a@b,r=abc", "p=,,", ",,,,", "=,=,=",
	} {
		f.Add(uint8(2), []byte(seed))
		f.Add(uint8(0), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, mech uint8, in []byte) {
		m := fuzzMechanisms[int(mech)%len(fuzzMechanisms)]
		var state *tls.ConnectionState
		if mech&0x80 == 0 {
			state = srv13
		}
		ex, err := s.Start(testHost, m.name, state)
		if err != nil {
			return // -PLUS without TLS
		}
		out, done, err := ex.Step(t.Context(), in)
		checkFailure(t, err)
		if done {
			t.Fatalf("done after client-first %q", in)
		}
		if err == nil && len(in) > 0 && !strings.HasPrefix(string(out), "r=") {
			t.Fatalf("server-first %q", out)
		}
		// The exchange must survive another arbitrary step.
		_, _, err = ex.Step(t.Context(), in)
		checkFailure(t, err)
	})
}

func FuzzSCRAMClientFinal(f *testing.F) {
	s, srv13, cli13 := fuzzServer(f)
	const cnonce = "fuzz"
	exporter, err := cli13.ExportKeyingMaterial(exporterLabel, nil, exporterLen)
	if err != nil {
		f.Fatal(err)
	}
	// Seed each mechanism with its valid client-final and mutations of it.
	for i, m := range fuzzMechanisms {
		c := newScramClient(m.h, testPassword, m.header, testUser, cnonce)
		if strings.HasPrefix(m.header, "p=") {
			c.cbData = exporter
		}
		ex, err := s.Start(testHost, m.name, srv13)
		if err != nil {
			f.Fatal(err)
		}
		sf, _, err := ex.Step(f.Context(), c.first())
		if err != nil {
			f.Fatal(err)
		}
		final, _ := c.final(f, sf, nil)
		f.Add(uint8(i), final)
		f.Add(uint8(i), final[:len(final)-5])
		f.Add(uint8(i), []byte(strings.Replace(string(final), ",p=", ",x=y,p=", 1)))
	}
	for _, seed := range []string{"", ",", "c=,r=,p=", "c=biws,r=fuzz,p=AAAA", "p=", "c=biws,r=" + cnonce + testServerNonce + ",p=====", ",,,p="} {
		f.Add(uint8(2), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, mech uint8, in []byte) {
		m := fuzzMechanisms[int(mech)%len(fuzzMechanisms)]
		ex, err := s.Start(testHost, m.name, srv13)
		if err != nil {
			t.Fatal(err)
		}
		first := m.header + "n=" + testUser + ",r=" + cnonce
		if _, _, err := ex.Step(t.Context(), []byte(first)); err != nil {
			t.Fatal(err)
		}
		out, done, err := ex.Step(t.Context(), in)
		checkFailure(t, err)
		if err == nil {
			if !done || !strings.HasPrefix(string(out), "v=") || ex.Localpart() != testUser {
				t.Fatalf("success with %q: %q, %v, %q", in, out, done, ex.Localpart())
			}
		}
		if _, _, err := ex.Step(t.Context(), in); condition(err) != ConditionMalformedRequest {
			t.Fatalf("step after the end: %v", err)
		}
	})
}

func FuzzPLAIN(f *testing.F) {
	s, srv13, _ := fuzzServer(f)
	for _, seed := range []string{
		"\x00juliet\x00pencil", "juliet@example.com\x00juliet\x00pencil", "\x00romeo\x00pencil",
		"\x00juliet\x00wrong", "", "\x00", "\x00\x00", "a\x00b\x00c\x00d", "\x00JULIET\x00pencil",
		"\x00jul\xffiet\x00pencil", "x@y/z\x00juliet\x00pencil", "\x00juliet\x00pen\u00a0cil",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ex, err := s.Start(testHost, MechanismPlain, srv13)
		if err != nil {
			t.Fatal(err)
		}
		out, done, err := ex.Step(t.Context(), in)
		checkFailure(t, err)
		if done && (err != nil || out != nil || ex.Localpart() != testUser) {
			t.Fatalf("success with %q: %q, %v, %q", in, out, err, ex.Localpart())
		}
		if !done && err == nil && len(in) != 0 {
			t.Fatalf("PLAIN neither done nor failed on %q", in)
		}
	})
}

func BenchmarkSCRAMSHA1Login(b *testing.B) {
	s := newTestServer(b, Options{})
	c := newScramClient(sha1.New, testPassword, "n,,", testUser, "benchnonce")
	first := c.first()
	ex, err := s.Start(testHost, MechanismSCRAMSHA1, nil)
	if err != nil {
		b.Fatal(err)
	}
	sf, _, err := ex.Step(b.Context(), first)
	if err != nil {
		b.Fatal(err)
	}
	final, _ := c.final(b, sf, nil)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		ex, err := s.Start(testHost, MechanismSCRAMSHA1, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := ex.Step(ctx, first); err != nil {
			b.Fatal(err)
		}
		if _, done, err := ex.Step(ctx, final); err != nil || !done {
			b.Fatal(done, err)
		}
	}
}
