package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // SCRAM-SHA-1 is a required mechanism (RFC 6120 §13.8).
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"unicode/utf8"

	"golang.org/x/crypto/pbkdf2"
	"golang.org/x/text/secure/precis"
)

const (
	// DefaultIterations is the PBKDF2 iteration count used by [Derive] when
	// none is given, and the minimum it accepts (RFC 7677 §4).
	DefaultIterations = 4096

	// MaxIterations is the largest iteration count [Derive] accepts and
	// [Verify] processes, so that a corrupt stored credential cannot make a
	// PLAIN login spin.
	MaxIterations = 10_000_000

	// saltLen is the length in bytes of the random salts made by Derive (and
	// of the decoy salts for unknown users).
	saltLen = 16
)

var (
	clientKeyLabel = []byte("Client Key")
	serverKeyLabel = []byte("Server Key")
)

// Credential is a stored SCRAM credential for one hash function
// (RFC 5802 §3). It has the same shape as store.ScramCredential.
type Credential struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Credentials holds a user's stored credentials for every supported hash.
// A zero Credential means the user has no credential for that hash; SCRAM
// with that hash then fails as for an unknown user.
type Credentials struct {
	SHA1   Credential
	SHA256 Credential
}

// ErrUnknownUser is returned (possibly wrapped) by a [CredentialLookup] when
// the user does not exist.
var ErrUnknownUser = errors.New("auth: unknown user")

// CredentialLookup returns the user's credentials or an error wrapping
// ErrUnknownUser. localpart is already normalised (UsernameCaseMapped) and
// host is the normalised domainpart given to [Server.Start].
//
// Any other error fails the exchange with temporary-auth-failure, unless the
// error wraps a *Failure (for example account-disabled), whose condition is
// then reported to the client as is.
type CredentialLookup interface {
	Lookup(ctx context.Context, host, localpart string) (Credentials, error)
}

// Derive prepares password with the OpaqueString profile (RFC 8265 §4.2) and
// derives SCRAM-SHA-1 and SCRAM-SHA-256 credentials, each with its own random
// salt. iterations 0 means DefaultIterations; otherwise it must lie between
// DefaultIterations and MaxIterations.
func Derive(password string, iterations int) (Credentials, error) {
	if iterations == 0 {
		iterations = DefaultIterations
	}
	if iterations < DefaultIterations || iterations > MaxIterations {
		return Credentials{}, fmt.Errorf("auth: derive: iteration count %d outside [%d, %d]",
			iterations, DefaultIterations, MaxIterations)
	}
	pw, err := preparePassword(password)
	if err != nil {
		return Credentials{}, fmt.Errorf("auth: derive: %w", err)
	}
	salt1 := make([]byte, saltLen)
	salt256 := make([]byte, saltLen)
	// crypto/rand.Read never returns an error (it crashes the program if the
	// system's randomness is broken).
	_, _ = rand.Read(salt1)
	_, _ = rand.Read(salt256)
	return Credentials{
		SHA1:   derive(pw, salt1, iterations, sha1.New),
		SHA256: derive(pw, salt256, iterations, sha256.New),
	}, nil
}

// Verify reports whether password matches the stored credential c for hash
// h (sha1.New or sha256.New). It is what PLAIN uses. The password is
// prepared as by [Derive]; the comparison takes constant time.
func Verify(c Credential, h func() hash.Hash, password string) bool {
	if h == nil || !c.valid(h().Size()) {
		return false
	}
	pw, err := preparePassword(password)
	if err != nil {
		return false
	}
	d := derive(pw, c.Salt, c.Iterations, h)
	return subtle.ConstantTimeCompare(d.StoredKey, c.StoredKey)&
		subtle.ConstantTimeCompare(d.ServerKey, c.ServerKey) == 1
}

// preparePassword applies the OpaqueString profile and rejects empty and
// invalid passwords.
func preparePassword(password string) ([]byte, error) {
	if password == "" {
		return nil, errors.New("empty password")
	}
	if !utf8.ValidString(password) {
		return nil, errors.New("invalid password: not UTF-8")
	}
	pw, err := precis.OpaqueString.Bytes([]byte(password))
	if err != nil {
		return nil, fmt.Errorf("invalid password: %w", err)
	}
	if len(pw) == 0 {
		return nil, errors.New("empty password")
	}
	return pw, nil
}

// derive computes a credential from a prepared password (RFC 5802 §3).
func derive(pw, salt []byte, iterations int, h func() hash.Hash) Credential {
	salted := pbkdf2.Key(pw, salt, iterations, h().Size(), h)
	clientKey := hmacSum(h, salted, clientKeyLabel)
	storedKey := hashSum(h, clientKey)
	return Credential{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  storedKey,
		ServerKey:  hmacSum(h, salted, serverKeyLabel),
	}
}

// isZero reports whether c is absent.
func (c Credential) isZero() bool {
	return len(c.Salt) == 0 && c.Iterations == 0 && len(c.StoredKey) == 0 && len(c.ServerKey) == 0
}

// valid reports whether c is usable with a hash of the given output size.
func (c Credential) valid(size int) bool {
	return len(c.Salt) > 0 && c.Iterations > 0 && c.Iterations <= MaxIterations &&
		len(c.StoredKey) == size && len(c.ServerKey) == size
}

func hmacSum(h func() hash.Hash, key []byte, parts ...[]byte) []byte {
	m := hmac.New(h, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

func hashSum(h func() hash.Hash, b []byte) []byte {
	d := h()
	d.Write(b)
	return d.Sum(nil)
}
