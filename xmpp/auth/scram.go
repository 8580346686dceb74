package auth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"
)

var b64 = base64.StdEncoding.Strict()

// clientFirst is a parsed SCRAM client-first-message (RFC 5802 §7):
//
//	client-first-message = gs2-header client-first-message-bare
//	gs2-header = gs2-cbind-flag "," [ authzid ] ","
//	gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
//	client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
type clientFirst struct {
	cbFlag    byte // 'n', 'y' or 'p'
	cbName    string
	authzid   string // unescaped
	gs2Header []byte // including the final ','
	bare      []byte
	username  string // unescaped, not yet normalised
	nonce     []byte
}

func parseClientFirst(msg []byte) (clientFirst, *Failure) {
	var cf clientFirst
	if !utf8.Valid(msg) {
		return cf, malformed("invalid UTF-8")
	}
	flag, rest, ok := bytes.Cut(msg, []byte{','})
	if !ok {
		return cf, malformed("missing gs2 header")
	}
	switch {
	case len(flag) == 1 && (flag[0] == 'n' || flag[0] == 'y'):
		cf.cbFlag = flag[0]
	case bytes.HasPrefix(flag, []byte("p=")) && isCBName(flag[2:]):
		cf.cbFlag = 'p'
		cf.cbName = string(flag[2:])
	default:
		return cf, malformed("invalid channel binding flag")
	}
	authzid, bare, ok := bytes.Cut(rest, []byte{','})
	if !ok {
		return cf, malformed("missing gs2 header")
	}
	if len(authzid) > 0 {
		if !bytes.HasPrefix(authzid, []byte("a=")) {
			return cf, malformed("invalid authzid")
		}
		a, ok := unescapeSaslname(authzid[2:])
		if !ok {
			return cf, malformed("invalid authzid")
		}
		cf.authzid = a
	}
	cf.gs2Header = msg[:len(msg)-len(bare)]
	cf.bare = bare

	fields := bytes.Split(bare, []byte{','})
	if bytes.HasPrefix(fields[0], []byte("m=")) {
		return cf, malformed("unsupported mandatory extension")
	}
	if len(fields) < 2 {
		return cf, malformed("missing attributes")
	}
	if !bytes.HasPrefix(fields[0], []byte("n=")) {
		return cf, malformed("missing username")
	}
	username, ok := unescapeSaslname(fields[0][2:])
	if !ok {
		return cf, malformed("invalid username")
	}
	cf.username = username
	if !bytes.HasPrefix(fields[1], []byte("r=")) || !isPrintable(fields[1][2:]) {
		return cf, malformed("invalid nonce")
	}
	cf.nonce = fields[1][2:]
	for _, ext := range fields[2:] {
		if !isExtension(ext) {
			return cf, malformed("invalid extension")
		}
	}
	return cf, nil
}

// scramFirst handles the client-first message and returns server-first.
func (e *Exchange) scramFirst(ctx context.Context, in []byte) ([]byte, error) {
	cf, f := parseClientFirst(in)
	if f != nil {
		return nil, f
	}
	// Channel binding policy (RFC 5802 §6).
	switch {
	case e.mech.plus && cf.cbFlag != 'p':
		return nil, malformed("-PLUS mechanism requires channel binding")
	case e.mech.plus:
		data, ok := e.srv.channelBindingData(e.tlsState, cf.cbName)
		if !ok {
			return nil, malformed("unsupported channel binding type")
		}
		e.cbData = data
		e.channelBindingTy = cf.cbName
	case cf.cbFlag == 'p':
		return nil, malformed("channel binding requires a -PLUS mechanism")
	case cf.cbFlag == 'y' && e.advertisesPlus:
		// The client thinks we do not support channel binding although we
		// advertised it: someone removed the -PLUS mechanisms.
		return nil, fail(ConditionNotAuthorized, "channel binding downgrade")
	}
	user, err := e.user(cf.username)
	if err != nil {
		return nil, err
	}
	if err := checkAuthzid(cf.authzid, user); err != nil {
		return nil, err
	}
	c, _, found, err := e.credentials(ctx, user.Localpart())
	if err != nil {
		return nil, err
	}
	e.candidate = user.Localpart()
	e.cred = c
	e.decoy = !found
	e.gs2Header = cf.gs2Header
	e.clientFirstBare = cf.bare

	e.nonce = append(append([]byte(nil), cf.nonce...), e.srv.nonce()...)
	var sf []byte
	sf = append(sf, "r="...)
	sf = append(sf, e.nonce...)
	sf = append(sf, ",s="...)
	sf = b64.AppendEncode(sf, c.Salt)
	sf = append(sf, ",i="...)
	sf = strconv.AppendInt(sf, int64(c.Iterations), 10)
	e.serverFirst = sf
	return bytes.Clone(sf), nil
}

// scramFinal verifies the client-final message and returns server-final:
//
//	client-final-message-without-proof = channel-binding "," nonce ["," extensions]
//	client-final-message = client-final-message-without-proof "," proof
func (e *Exchange) scramFinal(in []byte) ([]byte, error) {
	if !utf8.Valid(in) {
		return nil, malformed("invalid UTF-8")
	}
	i := bytes.LastIndexByte(in, ',')
	if i < 0 {
		return nil, malformed("missing attributes")
	}
	withoutProof, proofAttr := in[:i], in[i+1:]
	if !bytes.HasPrefix(proofAttr, []byte("p=")) {
		return nil, malformed("missing proof")
	}
	fields := bytes.Split(withoutProof, []byte{','})
	if len(fields) < 2 || !bytes.HasPrefix(fields[0], []byte("c=")) || !bytes.HasPrefix(fields[1], []byte("r=")) {
		return nil, malformed("missing attributes")
	}
	for _, ext := range fields[2:] {
		if !isExtension(ext) {
			return nil, malformed("invalid extension")
		}
	}
	cb, err := b64.DecodeString(string(fields[0][2:]))
	if err != nil {
		return nil, malformed("invalid channel binding encoding")
	}
	if !bytes.Equal(fields[1][2:], e.nonce) {
		return nil, malformed("nonce mismatch")
	}
	size := e.mech.hash().Size()
	proof, err := b64.DecodeString(string(proofAttr[2:]))
	if err != nil || len(proof) != size {
		return nil, malformed("invalid proof")
	}
	if !bytes.HasPrefix(cb, e.gs2Header) {
		return nil, malformed("channel binding header mismatch")
	}
	// Without channel binding e.cbData is empty and c= must be exactly the
	// gs2 header.
	cbOK := subtle.ConstantTimeCompare(cb[len(e.gs2Header):], e.cbData) == 1

	// RFC 5802 §3:
	//   AuthMessage     := client-first-message-bare + "," + server-first-message + "," + client-final-message-without-proof
	//   ClientSignature := HMAC(StoredKey, AuthMessage)
	//   ClientKey       := ClientProof XOR ClientSignature
	//   ServerSignature := HMAC(ServerKey, AuthMessage)
	comma := []byte{','}
	h := e.mech.hash
	clientSig := hmacSum(h, e.cred.StoredKey, e.clientFirstBare, comma, e.serverFirst, comma, withoutProof)
	clientKey := make([]byte, size)
	subtle.XORBytes(clientKey, proof, clientSig)
	proofOK := subtle.ConstantTimeCompare(hashSum(h, clientKey), e.cred.StoredKey) == 1
	if !proofOK || !cbOK || e.decoy {
		return nil, notAuthorized()
	}
	serverSig := hmacSum(h, e.cred.ServerKey, e.clientFirstBare, comma, e.serverFirst, comma, withoutProof)
	return b64.AppendEncode([]byte("v="), serverSig), nil
}

// unescapeSaslname decodes a non-empty saslname (RFC 5802 §7):
//
//	saslname = 1*(value-safe-char / "=2C" / "=3D")
//	value-safe-char = UTF8-char except NUL, "=" and ","
func unescapeSaslname(b []byte) (string, bool) {
	if len(b) == 0 {
		return "", false
	}
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case 0, ',':
			return "", false
		case '=':
			switch {
			case bytes.HasPrefix(b[i:], []byte("=2C")):
				sb.WriteByte(',')
			case bytes.HasPrefix(b[i:], []byte("=3D")):
				sb.WriteByte('=')
			default:
				return "", false
			}
			i += 2
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String(), true
}

// isCBName reports whether b is a cb-name: 1*(ALPHA / DIGIT / "." / "-").
func isCBName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isAlpha(c) && !('0' <= c && c <= '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// isPrintable reports whether b is a non-empty run of printable:
// %x21-2B / %x2D-7E (ASCII without ',').
func isPrintable(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// isExtension reports whether b is an attr-val "ALPHA = 1*value-char"
// other than the reserved "m" attribute.
func isExtension(b []byte) bool {
	return len(b) >= 3 && isAlpha(b[0]) && b[0] != 'm' && b[1] == '=' && bytes.IndexByte(b, 0) < 0
}

func isAlpha(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
