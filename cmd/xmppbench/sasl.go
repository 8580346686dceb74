package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // SCRAM-SHA-1 is what the mechanism is.
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"

	"mellium.im/sasl"
)

// SASL mechanism names accepted by --mech.
const (
	mechScramSHA1   = "SCRAM-SHA-1"
	mechScramSHA256 = "SCRAM-SHA-256"
	mechPlain       = "PLAIN"
)

// saslClient starts SASL exchanges. With cacheKeys it uses its own SCRAM
// client that remembers ClientKey and ServerKey per user, salt and
// iteration count, as real clients do (RFC 5802 §5.1 allows it): the
// PBKDF2 of every login would otherwise make the load generator, not the
// server, the bottleneck of a login benchmark. Without cacheKeys every
// exchange is mellium.im/sasl's client, which derives the keys each time.
type saslClient struct {
	cacheKeys bool

	mu   sync.Mutex
	keys map[scramKeyID]scramKeys // guarded by mu
}

type scramKeyID struct {
	mech, user, password, salt string
	iter                       int
}

type scramKeys struct{ clientKey, serverKey []byte }

func newSASLClient(cacheKeys bool) *saslClient {
	return &saslClient{cacheKeys: cacheKeys, keys: make(map[scramKeyID]scramKeys)}
}

// exchange is the client side of one SASL exchange.
type exchange interface {
	// step answers the server's challenge (nil for the initial
	// response).
	step(challenge []byte) ([]byte, error)
	// verified reports an error unless the server proved itself (SCRAM
	// server signature); PLAIN has nothing to verify.
	verified() error
}

func (s *saslClient) start(mech, user, password string) (exchange, error) {
	switch mech {
	case mechPlain:
		return &plainExchange{user: user, password: password}, nil
	case mechScramSHA1, mechScramSHA256:
	default:
		return nil, fmt.Errorf("sasl: unsupported mechanism %q", mech)
	}
	if !s.cacheKeys {
		m := sasl.ScramSha1
		if mech == mechScramSHA256 {
			m = sasl.ScramSha256
		}
		n := sasl.NewClient(m, sasl.Credentials(func() (u, p, id []byte) {
			return []byte(user), []byte(password), nil
		}))
		return &melliumExchange{n: n}, nil
	}
	h := sha1.New
	if mech == mechScramSHA256 {
		h = sha256.New
	}
	var nonce [18]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	return &scramExchange{client: s, mech: mech, h: h, user: user, password: password,
		nonce: base64.RawStdEncoding.EncodeToString(nonce[:])}, nil
}

type plainExchange struct {
	user, password string
	sent           bool
}

func (p *plainExchange) step([]byte) ([]byte, error) {
	if p.sent {
		return nil, errors.New("sasl: PLAIN: unexpected challenge")
	}
	p.sent = true
	return []byte("\x00" + p.user + "\x00" + p.password), nil
}

func (p *plainExchange) verified() error { return nil }

type melliumExchange struct{ n *sasl.Negotiator }

func (m *melliumExchange) step(challenge []byte) ([]byte, error) {
	_, resp, err := m.n.Step(challenge)
	if err != nil {
		return nil, fmt.Errorf("sasl: %w", err)
	}
	return resp, nil
}

func (m *melliumExchange) verified() error {
	if m.n.State()&sasl.StepMask != sasl.ValidServerResponse {
		return errors.New("sasl: the server did not prove its knowledge of the password")
	}
	return nil
}

// scramExchange is a SCRAM client (RFC 5802, RFC 7677) without channel
// binding: gs2 header "n,,".
type scramExchange struct {
	client         *saslClient
	mech           string
	h              func() hash.Hash
	user, password string
	nonce          string

	state           int
	clientFirstBare string
	serverSignature []byte
	ok              bool
}

const gs2Header = "n,,"

func (x *scramExchange) step(challenge []byte) ([]byte, error) {
	switch x.state {
	case 0:
		x.state = 1
		x.clientFirstBare = "n=" + saslName(x.user) + ",r=" + x.nonce
		return []byte(gs2Header + x.clientFirstBare), nil
	case 1:
		x.state = 2
		return x.clientFinal(challenge)
	case 2:
		x.state = 3
		v, ok := bytes.CutPrefix(challenge, []byte("v="))
		if !ok {
			if e, isErr := bytes.CutPrefix(challenge, []byte("e=")); isErr {
				return nil, fmt.Errorf("sasl: server error %q", e)
			}
			return nil, errors.New("sasl: malformed server-final-message")
		}
		if i := bytes.IndexByte(v, ','); i >= 0 {
			v = v[:i]
		}
		sig, err := base64.StdEncoding.DecodeString(string(v))
		if err != nil || !hmac.Equal(sig, x.serverSignature) {
			return nil, errors.New("sasl: wrong server signature")
		}
		x.ok = true
		return nil, nil
	}
	return nil, errors.New("sasl: unexpected challenge")
}

func (x *scramExchange) verified() error {
	if !x.ok {
		return errors.New("sasl: the server did not prove its knowledge of the password")
	}
	return nil
}

func (x *scramExchange) clientFinal(serverFirst []byte) ([]byte, error) {
	var nonce, salt string
	iter := -1
	for _, f := range strings.Split(string(serverFirst), ",") {
		if len(f) < 2 || f[1] != '=' {
			continue
		}
		switch f[0] {
		case 'r':
			nonce = f[2:]
		case 's':
			salt = f[2:]
		case 'i':
			n, err := strconv.Atoi(f[2:])
			if err != nil {
				return nil, errors.New("sasl: bad iteration count")
			}
			iter = n
		case 'm':
			return nil, errors.New("sasl: server sent the reserved attribute m")
		}
	}
	switch {
	case !strings.HasPrefix(nonce, x.nonce) || len(nonce) == len(x.nonce):
		return nil, errors.New("sasl: server nonce does not extend ours")
	case iter < 1:
		return nil, errors.New("sasl: bad iteration count")
	}
	rawSalt, err := base64.StdEncoding.DecodeString(salt)
	if err != nil || len(rawSalt) == 0 {
		return nil, errors.New("sasl: bad salt")
	}
	keys, err := x.client.scramKeys(scramKeyID{mech: x.mech, user: x.user, password: x.password, salt: salt, iter: iter}, x.h, rawSalt)
	if err != nil {
		return nil, err
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(gs2Header)) + ",r=" + nonce
	authMessage := []byte(x.clientFirstBare + "," + string(serverFirst) + "," + withoutProof)
	storedKey := x.h()
	storedKey.Write(keys.clientKey)
	clientSig := hmacSum(x.h, storedKey.Sum(nil), authMessage)
	proof := make([]byte, len(clientSig))
	subtle.XORBytes(proof, keys.clientKey, clientSig)
	x.serverSignature = hmacSum(x.h, keys.serverKey, authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// scramKeys returns ClientKey and ServerKey, deriving them once per id.
func (s *saslClient) scramKeys(id scramKeyID, h func() hash.Hash, salt []byte) (scramKeys, error) {
	s.mu.Lock()
	k, ok := s.keys[id]
	s.mu.Unlock()
	if ok {
		return k, nil
	}
	salted, err := pbkdf2.Key(h, id.password, salt, id.iter, h().Size())
	if err != nil {
		return scramKeys{}, fmt.Errorf("sasl: %w", err)
	}
	k = scramKeys{clientKey: hmacSum(h, salted, []byte("Client Key")), serverKey: hmacSum(h, salted, []byte("Server Key"))}
	s.mu.Lock()
	s.keys[id] = k
	s.mu.Unlock()
	return k, nil
}

func hmacSum(h func() hash.Hash, key, data []byte) []byte {
	m := hmac.New(h, key)
	m.Write(data)
	return m.Sum(nil)
}

// saslName escapes a username for SCRAM (RFC 5802 §5.1).
func saslName(s string) string {
	if !strings.ContainsAny(s, "=,") {
		return s
	}
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}
