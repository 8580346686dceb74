package auth

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // SCRAM-SHA-1
	"crypto/sha256"
	"hash"
	"testing"
)

func TestDerive(t *testing.T) {
	tests := []struct {
		name       string
		password   string
		iterations int
		wantErr    bool
		wantIter   int
	}{
		{name: "default iterations", password: "pencil", wantIter: DefaultIterations},
		{name: "more iterations", password: "pencil", iterations: 5000, wantIter: 5000},
		{name: "too few iterations", password: "pencil", iterations: 1000, wantErr: true},
		{name: "negative iterations", password: "pencil", iterations: -1, wantErr: true},
		{name: "too many iterations", password: "pencil", iterations: MaxIterations + 1, wantErr: true},
		{name: "empty password", password: "", wantErr: true},
		{name: "control character", password: "pen\x07cil", wantErr: true},
		{name: "invalid UTF-8", password: "pen\xffcil", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Derive(tc.password, tc.iterations)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Derive err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			for _, hc := range []struct {
				name string
				c    Credential
				h    func() hash.Hash
			}{{"SHA-1", c.SHA1, sha1.New}, {"SHA-256", c.SHA256, sha256.New}} {
				if len(hc.c.Salt) < 16 || hc.c.Iterations != tc.wantIter ||
					len(hc.c.StoredKey) != hc.h().Size() || len(hc.c.ServerKey) != hc.h().Size() {
					t.Errorf("%s credential malformed: %+v", hc.name, hc.c)
				}
				if !Verify(hc.c, hc.h, tc.password) {
					t.Errorf("%s: Verify rejects the password", hc.name)
				}
			}
			if bytes.Equal(c.SHA1.Salt, c.SHA256.Salt) {
				t.Error("SHA-1 and SHA-256 share a salt")
			}
		})
	}
}

func TestDeriveSaltsAreRandom(t *testing.T) {
	a, err := Derive("pencil", 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Derive("pencil", 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.SHA256.Salt, b.SHA256.Salt) || bytes.Equal(a.SHA256.StoredKey, b.SHA256.StoredKey) {
		t.Error("two derivations share a salt")
	}
}

func TestVerify(t *testing.T) {
	// "pässword" with a combining diaeresis and a no-break space; OpaqueString
	// maps them to NFC and ASCII space.
	c, err := Derive("pa\u0308ss\u00a0word", 0)
	if err != nil {
		t.Fatal(err)
	}
	modified := func(f func(*Credential)) Credential {
		m := c.SHA256
		m.Salt = bytes.Clone(m.Salt)
		m.StoredKey = bytes.Clone(m.StoredKey)
		m.ServerKey = bytes.Clone(m.ServerKey)
		f(&m)
		return m
	}
	tests := []struct {
		name     string
		c        Credential
		h        func() hash.Hash
		password string
		want     bool
	}{
		{"same", c.SHA256, sha256.New, "pa\u0308ss\u00a0word", true},
		{"normalised equivalent", c.SHA256, sha256.New, "p\u00e4ss word", true},
		{"SHA-1", c.SHA1, sha1.New, "p\u00e4ss word", true},
		{"wrong password", c.SHA256, sha256.New, "pass word", false},
		{"empty password", c.SHA256, sha256.New, "", false},
		{"wrong hash", c.SHA256, sha1.New, "p\u00e4ss word", false},
		{"nil hash", c.SHA256, nil, "p\u00e4ss word", false},
		{"zero credential", Credential{}, sha256.New, "p\u00e4ss word", false},
		{"other iterations", modified(func(m *Credential) { m.Iterations++ }), sha256.New, "p\u00e4ss word", false},
		{"excessive iterations", modified(func(m *Credential) { m.Iterations = MaxIterations + 1 }), sha256.New, "p\u00e4ss word", false},
		{"tampered server key", modified(func(m *Credential) { m.ServerKey[0] ^= 1 }), sha256.New, "p\u00e4ss word", false},
		{"tampered stored key", modified(func(m *Credential) { m.StoredKey[0] ^= 1 }), sha256.New, "p\u00e4ss word", false},
		{"tampered salt", modified(func(m *Credential) { m.Salt[0] ^= 1 }), sha256.New, "p\u00e4ss word", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Verify(tc.c, tc.h, tc.password); got != tc.want {
				t.Errorf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

func BenchmarkDerive(b *testing.B) {
	for b.Loop() {
		if _, err := Derive("pencil", 0); err != nil {
			b.Fatal(err)
		}
	}
}
