package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // SCRAM-SHA-1 is a required mechanism (RFC 6120 §13.8).
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"

	"mellium.im/xmpp/jid"
)

// SASL mechanism names.
const (
	MechanismSCRAMSHA256Plus = "SCRAM-SHA-256-PLUS"
	MechanismSCRAMSHA1Plus   = "SCRAM-SHA-1-PLUS"
	MechanismSCRAMSHA256     = "SCRAM-SHA-256"
	MechanismSCRAMSHA1       = "SCRAM-SHA-1"
	MechanismPlain           = "PLAIN"
)

// Channel binding types (IANA Channel-Binding Types registry, RFC 5056 §7).
const (
	BindingTLSExporter       = "tls-exporter"         // RFC 9266, TLS 1.3
	BindingTLSUnique         = "tls-unique"           // RFC 5929 §3, TLS 1.2 and earlier
	BindingTLSServerEndPoint = "tls-server-end-point" // RFC 5929 §4, with Options.ServerCertificate
)

const (
	// MaxMessageSize is the largest client message Step accepts.
	MaxMessageSize = 4096

	// serverNonceLen is the number of random bytes in the server nonce.
	serverNonceLen = 24
)

// mechanism describes one supported SASL mechanism.
type mechanism struct {
	name     string
	hash     func() hash.Hash // nil for PLAIN
	hashName string
	plus     bool
}

// mechanismsByStrength lists every supported mechanism, strongest first.
func mechanismsByStrength() [5]mechanism {
	return [...]mechanism{
		{name: MechanismSCRAMSHA256Plus, hash: sha256.New, hashName: "SHA-256", plus: true},
		{name: MechanismSCRAMSHA1Plus, hash: sha1.New, hashName: "SHA-1", plus: true},
		{name: MechanismSCRAMSHA256, hash: sha256.New, hashName: "SHA-256"},
		{name: MechanismSCRAMSHA1, hash: sha1.New, hashName: "SHA-1"},
		{name: MechanismPlain},
	}
}

func findMechanism(name string) (mechanism, bool) {
	for _, m := range mechanismsByStrength() {
		if m.name == name {
			return m, true
		}
	}
	return mechanism{}, false
}

// credential picks the stored credential matching the mechanism's hash.
func (m mechanism) credential(c Credentials) Credential {
	if m.hashName == "SHA-1" {
		return c.SHA1
	}
	return c.SHA256
}

// Options configures a [Server].
type Options struct {
	// Lookup fetches stored credentials. Required.
	Lookup CredentialLookup
	// AllowPlainWithoutTLS offers PLAIN on streams without TLS. By default
	// PLAIN is offered only over TLS.
	AllowPlainWithoutTLS bool
	// Mechanisms restricts the mechanisms offered; nil means all supported
	// mechanisms. Names must be among the Mechanism* constants.
	Mechanisms []string
	// UnknownUserIterations is the iteration count announced to a SCRAM
	// client for a user who does not exist; it should match the count used for
	// real users so that existence does not leak. 0 means DefaultIterations.
	UnknownUserIterations int
	// DecoySecret keys the decoy salts announced for unknown users. Set a
	// persistent random secret (at least 16 bytes) so that decoy salts, like
	// real ones, survive restarts; nil means a random secret per Server.
	DecoySecret []byte
	// ServerCertificate, if set, returns the leaf certificate this server
	// presented on the connection described by tlsState (or nil if unknown).
	// It enables the tls-server-end-point channel binding (RFC 5929 §4),
	// which XEP-0440 requires servers to implement; tls.ConnectionState does
	// not carry the server's own certificate.
	ServerCertificate func(tlsState *tls.ConnectionState) *x509.Certificate
}

// Server negotiates SASL on behalf of the streams of one server. It is safe
// for concurrent use; each authentication attempt is an [Exchange].
type Server struct {
	lookup          CredentialLookup
	allowPlainNoTLS bool
	enabled         map[string]bool
	fakeIterations  int
	serverCert      func(*tls.ConnectionState) *x509.Certificate
	// secret keys the decoy salts of unknown users.
	secret []byte
	// nonce makes a server nonce; replaced in tests.
	nonce func() []byte
}

// NewServer validates opts and returns a Server.
func NewServer(opts Options) (*Server, error) {
	if opts.Lookup == nil {
		return nil, errors.New("auth: new server: Lookup is required")
	}
	if opts.UnknownUserIterations < 0 || opts.UnknownUserIterations > MaxIterations {
		return nil, fmt.Errorf("auth: new server: UnknownUserIterations %d out of range", opts.UnknownUserIterations)
	}
	s := &Server{
		lookup:          opts.Lookup,
		allowPlainNoTLS: opts.AllowPlainWithoutTLS,
		enabled:         make(map[string]bool),
		fakeIterations:  opts.UnknownUserIterations,
		serverCert:      opts.ServerCertificate,
		nonce:           randomNonce,
	}
	if s.fakeIterations == 0 {
		s.fakeIterations = DefaultIterations
	}
	if opts.Mechanisms == nil {
		for _, m := range mechanismsByStrength() {
			s.enabled[m.name] = true
		}
	} else {
		if len(opts.Mechanisms) == 0 {
			return nil, errors.New("auth: new server: Mechanisms is empty")
		}
		for _, name := range opts.Mechanisms {
			if _, ok := findMechanism(name); !ok {
				return nil, fmt.Errorf("auth: new server: unsupported mechanism %q", name)
			}
			s.enabled[name] = true
		}
	}
	switch {
	case opts.DecoySecret == nil:
		s.secret = make([]byte, 32)
		_, _ = rand.Read(s.secret)
	case len(opts.DecoySecret) < 16:
		return nil, errors.New("auth: new server: DecoySecret shorter than 16 bytes")
	default:
		s.secret = bytes.Clone(opts.DecoySecret)
	}
	return s, nil
}

func randomNonce() []byte {
	var b [serverNonceLen]byte
	_, _ = rand.Read(b[:])
	return []byte(base64.StdEncoding.EncodeToString(b[:]))
}

// Mechanisms lists the mechanism names to advertise on a stream, strongest
// first. tlsState is nil on a stream without TLS. The -PLUS mechanisms are
// listed only when tlsState offers a channel binding, PLAIN only over TLS
// unless Options.AllowPlainWithoutTLS is set.
func (s *Server) Mechanisms(tlsState *tls.ConnectionState) []string {
	haveBinding := len(s.channelBindings(tlsState)) > 0
	var out []string
	for _, m := range mechanismsByStrength() {
		if !s.offers(m, tlsState, haveBinding) {
			continue
		}
		out = append(out, m.name)
	}
	return out
}

func (s *Server) offers(m mechanism, tlsState *tls.ConnectionState, haveBinding bool) bool {
	switch {
	case !s.enabled[m.name]:
		return false
	case m.plus:
		return haveBinding
	case m.name == MechanismPlain:
		return tlsState != nil || s.allowPlainNoTLS
	}
	return true
}

// Start begins an authentication attempt on a stream of host (the domain the
// client connected to) with the named mechanism. tlsState is nil on a stream
// without TLS; it must stay unchanged until the exchange ends.
//
// Start fails with invalid-mechanism for a mechanism that [Server.Mechanisms]
// would not list (except PLAIN without TLS, which fails with
// encryption-required). Its errors wrap a *Failure, like those of
// [Exchange.Step].
func (s *Server) Start(host, mechanismName string, tlsState *tls.ConnectionState) (*Exchange, error) {
	m, ok := findMechanism(mechanismName)
	if !ok || !s.enabled[m.name] {
		return nil, fail(ConditionInvalidMechanism, "")
	}
	if m.name == MechanismPlain && tlsState == nil && !s.allowPlainNoTLS {
		return nil, fail(ConditionEncryptionRequired, "PLAIN requires TLS")
	}
	advertisesPlus := s.advertisesPlus(tlsState)
	if m.plus && !advertisesPlus {
		return nil, fail(ConditionInvalidMechanism, "channel binding unavailable")
	}
	domain, err := jid.New("", host, "")
	if err != nil {
		return nil, internalError(fmt.Errorf("auth: start: host %q: %w", host, err))
	}
	return &Exchange{
		srv:            s,
		mech:           m,
		domain:         domain,
		tlsState:       tlsState,
		advertisesPlus: advertisesPlus,
	}, nil
}

// internalError reports err, which is our problem rather than the peer's, as
// temporary-auth-failure while keeping it available for logging.
func internalError(err error) error {
	return fmt.Errorf("%w: %w", fail(ConditionTemporaryAuthFailure, ""), err)
}

type exchangeState uint8

const (
	stateInitial exchangeState = iota
	stateFinal                 // SCRAM: server-first sent, awaiting client-final
	stateSucceeded
	stateFailed
)

// Exchange is one SASL authentication attempt. It is not safe for concurrent
// use.
type Exchange struct {
	srv            *Server
	mech           mechanism
	domain         jid.JID
	tlsState       *tls.ConnectionState
	advertisesPlus bool

	state            exchangeState
	sentEmptyPrompt  bool
	localpart        string // set on success only
	candidate        string // claimed localpart, normalised
	cred             Credential
	decoy            bool // the user does not exist; the proof must fail
	gs2Header        []byte
	cbData           []byte
	clientFirstBare  []byte
	serverFirst      []byte
	nonce            []byte
	channelBindingTy string
}

// Mechanism returns the name of the exchange's mechanism.
func (e *Exchange) Mechanism() string { return e.mech.name }

// Localpart returns the authenticated, normalised localpart after success,
// and "" before.
func (e *Exchange) Localpart() string { return e.localpart }

// ChannelBinding returns the channel binding type used by a successful -PLUS
// exchange, and "" otherwise.
func (e *Exchange) ChannelBinding() string {
	if e.state != stateSucceeded {
		return ""
	}
	return e.channelBindingTy
}

// Step consumes one client message, already base64-decoded, and returns the
// server's next message. On the first call an empty in means that the client
// sent no initial response: Step returns an empty challenge (RFC 6120 §6.4.2).
//
// done == true with err == nil means success; out is then the additional data
// for <success/> (for SCRAM, the server-final message "v=…"; nil for PLAIN).
// Any error wraps a *Failure and ends the exchange; further calls fail with
// malformed-request.
func (e *Exchange) Step(ctx context.Context, in []byte) (out []byte, done bool, err error) {
	switch e.state {
	case stateSucceeded, stateFailed:
		return nil, false, malformed("exchange already finished")
	}
	defer func() {
		if err != nil {
			e.state = stateFailed
			e.localpart = ""
		}
	}()
	if len(in) > MaxMessageSize {
		return nil, false, malformed("message too large")
	}
	switch e.state {
	case stateInitial:
		if len(in) == 0 && !e.sentEmptyPrompt {
			e.sentEmptyPrompt = true
			return []byte{}, false, nil
		}
		if e.mech.name == MechanismPlain {
			if err := e.plain(ctx, in); err != nil {
				return nil, false, err
			}
			e.succeed()
			return nil, true, nil
		}
		out, err := e.scramFirst(ctx, in)
		if err != nil {
			return nil, false, err
		}
		e.state = stateFinal
		return out, false, nil
	default: // stateFinal
		out, err := e.scramFinal(in)
		if err != nil {
			return nil, false, err
		}
		e.succeed()
		return out, true, nil
	}
}

func (e *Exchange) succeed() {
	e.state = stateSucceeded
	e.localpart = e.candidate
}

// user normalises a claimed username as the localpart of an address at the
// exchange's host.
func (e *Exchange) user(username string) (jid.JID, error) {
	if username == "" {
		return jid.JID{}, notAuthorized()
	}
	j, err := e.domain.WithLocal(username)
	if err != nil || j.Localpart() == "" {
		return jid.JID{}, notAuthorized()
	}
	return j, nil
}

// checkAuthzid accepts an empty authorization identity or one that is the
// authenticated user's bare JID.
func checkAuthzid(authzid string, user jid.JID) error {
	if authzid == "" {
		return nil
	}
	a, err := jid.Parse(authzid)
	if err != nil || !a.Equal(user) {
		return fail(ConditionInvalidAuthzid, "")
	}
	return nil
}

// credentials looks up the stored credential for the mechanism and the hash
// it is for. found is false for an unknown user (or one without a credential
// for this hash); the returned credential is then a decoy.
func (e *Exchange) credentials(ctx context.Context, localpart string) (c Credential, h func() hash.Hash, found bool, err error) {
	host := e.domain.Domainpart()
	h, hashName := e.mech.hash, e.mech.hashName
	if e.mech.name == MechanismPlain {
		h, hashName = sha256.New, "SHA-256"
	}
	creds, err := e.srv.lookup.Lookup(ctx, host, localpart)
	var f *Failure
	switch {
	case errors.Is(err, ErrUnknownUser):
		return e.srv.decoy(hashName, host, localpart), h, false, nil
	case errors.As(err, &f):
		return Credential{}, nil, false, err
	case err != nil:
		return Credential{}, nil, false, internalError(fmt.Errorf("auth: lookup %q: %w", localpart, err))
	}
	switch {
	case e.mech.name != MechanismPlain:
		c = e.mech.credential(creds)
	case !creds.SHA256.isZero():
		// PLAIN verifies against the strongest credential present.
		c = creds.SHA256
	case !creds.SHA1.isZero():
		c, h = creds.SHA1, sha1.New
	}
	if c.isZero() {
		return e.srv.decoy(hashName, host, localpart), h, false, nil
	}
	if !c.valid(h().Size()) {
		return Credential{}, nil, false, internalError(fmt.Errorf("auth: stored credential of %q is invalid", localpart))
	}
	return c, h, true, nil
}

// decoy returns a credential for a user who does not exist: its salt is
// stable for a given name so that repeated attempts look like a real user,
// and nobody can compute a matching proof.
func (s *Server) decoy(hashName, host, localpart string) Credential {
	key := func(label string) []byte {
		return hmacSum(sha256.New, s.secret, []byte(label), []byte{0}, []byte(hashName), []byte{0},
			[]byte(host), []byte{0}, []byte(localpart))
	}
	size := sha256.Size
	if hashName == "SHA-1" {
		size = sha1.Size
	}
	return Credential{
		Salt:       key("salt")[:saltLen],
		Iterations: s.fakeIterations,
		StoredKey:  key("stored")[:size],
		ServerKey:  key("server")[:size],
	}
}
