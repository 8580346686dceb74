package s2s

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Namespaces of Server Dialback (XEP-0220).
const (
	NSDialback        = "jabber:server:dialback"
	NSDialbackFeature = "urn:xmpp:features:dialback"
)

// condRemoteConnectionFailed is the dialback error for an authoritative
// server that could not be reached (XEP-0220 "Dialback Error
// Conditions"); RFC 6120 defines no such stanza error constant.
const condRemoteConnectionFailed stanza.Condition = "remote-connection-failed"

// Key returns the dialback key for a stream (XEP-0185 §3): the hex
// HMAC-SHA256, keyed with the SHA-256 of secret in hex (the XEP's
// "hexadecimal representation", as its examples show), of the receiving
// domain, the originating domain and the stream id the receiving server
// gave, separated by spaces.
func Key(secret []byte, receiving, originating, streamID string) string {
	k := sha256.Sum256(secret)
	m := hmac.New(sha256.New, []byte(hex.EncodeToString(k[:])))
	m.Write([]byte(receiving))
	m.Write([]byte{' '})
	m.Write([]byte(originating))
	m.Write([]byte{' '})
	m.Write([]byte(streamID))
	return hex.EncodeToString(m.Sum(nil))
}

// checkKey reports whether key is the dialback key for the stream, in
// constant time.
func checkKey(secret []byte, receiving, originating, streamID, key string) bool {
	want := Key(secret, receiving, originating, streamID)
	return hmac.Equal([]byte(want), []byte(strings.TrimSpace(key)))
}

// newStreamID returns a fresh, unpredictable stream id (RFC 6120 §4.7.3).
func newStreamID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// appendHeader appends a server-to-server stream header declaring the
// dialback namespace (XEP-0220 "Traditional Dialback"); id is the
// responder's stream id, "" for the initiator.
func appendHeader(b []byte, from, to, id string) []byte {
	b = append(b, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'"...)
	for _, a := range [...]wire.Attr{{Name: "from", Value: from}, {Name: "to", Value: to}, {Name: "id", Value: id}} {
		if a.Value != "" {
			b = wire.AppendAttr(b, a.Name, a.Value)
		}
	}
	return append(b, " version='1.0'>"...)
}

// appendDialback appends a dialback element: name is "result" or "verify",
// id is set on verify only, and an error element follows for type error
// (XEP-0220 "Dialback Error Conditions").
func appendDialback(b []byte, name, from, to, id, typ string, cond stanza.Condition, key string) []byte {
	b = append(b, "<db:"...)
	b = append(b, name...)
	b = append(b, " from='"...)
	b = wire.AppendEscapedAttr(b, from)
	b = append(b, "' to='"...)
	b = wire.AppendEscapedAttr(b, to)
	if id != "" {
		b = append(b, "' id='"...)
		b = wire.AppendEscapedAttr(b, id)
	}
	if typ != "" {
		b = append(b, "' type='"...)
		b = append(b, typ...)
	}
	b = append(b, '\'')
	switch {
	case typ == "error":
		b = append(b, "><error type='"...)
		b = append(b, errorType(cond)...)
		b = append(b, "'><"...)
		b = append(b, cond...)
		b = append(b, " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:"...)
		b = append(b, name...)
		b = append(b, '>')
	case key != "":
		b = append(b, '>')
		b = wire.AppendEscapedText(b, key)
		b = append(b, "</db:"...)
		b = append(b, name...)
		b = append(b, '>')
	default:
		b = append(b, "/>"...)
	}
	return b
}

func errorType(cond stanza.Condition) string {
	switch cond {
	case stanza.RemoteServerTimeout, condRemoteConnectionFailed, stanza.ResourceConstraint:
		return "wait"
	case stanza.NotAuthorized, stanza.Forbidden:
		return "auth"
	case stanza.PolicyViolation:
		return "modify"
	}
	return "cancel"
}

// dialbackError reads the condition of a dialback element of type error.
func dialbackError(el *wire.Element) stanza.Condition {
	if e := el.Child("error", wire.NSClient); e != nil {
		for _, c := range e.Children {
			if c.Space == xmpp.NSStanzas {
				return stanza.Condition(c.Name)
			}
		}
	}
	return stanza.UndefinedCondition
}

// serr is a stream error to send (RFC 6120 §4.9.3), as package wire
// reports the ones of XML it reads.
func serr(cond, text string) error { return &wire.Error{Condition: cond, Msg: text} }

// checkHeader checks a peer's stream header (RFC 6120 §4.7, §4.8.2): the
// stream namespace, jabber:server content and version 1.0 or later. It
// returns the stream error to send, or nil.
func checkHeader(h *wire.Header) error {
	switch {
	case h.Space != wire.NSStream:
		return serr("invalid-namespace", "stream namespace must be "+wire.NSStream)
	case h.Default != wire.NSServer:
		return serr("invalid-namespace", "content namespace must be jabber:server")
	case h.Name != "stream" && !strings.HasSuffix(h.Name, ":stream"):
		return serr("invalid-xml", "the stream element must be <stream>")
	}
	major, _, _ := strings.Cut(h.Version, ".")
	if n, err := strconv.Atoi(major); err != nil || n < 1 {
		// RFC 6120 §4.7.5; dialback without stream features (RFC
		// 3920's version-less streams) is not spoken.
		return serr("unsupported-version", "")
	}
	return nil
}

// readScope is the scope stanzas of a stream with header h are read in:
// the header's bindings with jabber:client as the default namespace
// (RFC 6120 §4.8.3 translation).
func readScope(h *wire.Header) wire.Scope {
	return h.Scope.Bind("", wire.NSClient)
}

// isStreamElement reports whether el is <stream:NAME/>.
func isStreamElement(el *wire.Element, name string) bool {
	return el.Name == name && el.Space == wire.NSStream
}

// peerStreamError turns a <stream:error/> the peer sent into an error.
func peerStreamError(el *wire.Element) error {
	for _, c := range el.Children {
		if c.Space == xmpp.NSStreamErr && c.Name != "text" {
			return fmt.Errorf("s2s: peer sent stream error %s", c.Name)
		}
	}
	return errors.New("s2s: peer sent a stream error")
}
