package bosh

import (
	"bytes"
	"mime"
	"strconv"
	"strings"

	"switchboard/xmpp/wire"
)

// Namespaces of the binding.
const (
	// NS qualifies the <body/> wrapper (XEP-0124 §4).
	NS = "http://jabber.org/protocol/httpbind"
	// NSXBOSH qualifies XMPP's attributes of the wrapper (XEP-0206 §4).
	NSXBOSH = "urn:xmpp:xbosh"
)

// Version is the version of XEP-0124 the handler speaks (the 'ver'
// attribute).
const Version = "1.11"

// maxRID is the largest request ID (XEP-0124 §14.1: 2^53-1, which a
// client's IEEE double still holds exactly).
const maxRID = 1<<53 - 1

// Terminal binding conditions (XEP-0124 §17.2).
const (
	condBadRequest         = "bad-request"
	condHostUnknown        = "host-unknown"
	condImproperAddressing = "improper-addressing"
	condItemNotFound       = "item-not-found"
	condPolicyViolation    = "policy-violation"
	condRemoteConnFailed   = "remote-connection-failed"
	condRemoteStreamError  = "remote-stream-error"
	condSystemShutdown     = "system-shutdown"
)

// reqBody is a client's <body/> wrapper.
type reqBody struct {
	rid uint64
	sid string
	// Attributes of a session creation request (and 'to' and 'xml:lang'
	// of a restart).
	to, from, lang, ver, content string
	wait, hold                   int // -1 when absent
	terminate                    bool
	restart                      bool
	// payload holds the children, written in the client stream's scope
	// (jabber:client the default namespace), ready for the stream.
	payload []byte
}

// parseBody parses a request's <body/>. What it returns is the condition
// to terminate with, and why, when the body is not acceptable: a syntax
// error or a missing or malformed 'rid' is bad-request (XEP-0124 §17.2).
func parseBody(b []byte) (*reqBody, string, string) {
	b = skipXMLDecl(b)
	// One level more than a stream's stanzas: the wrapper.
	el, err := wire.ParseDepth(b, wire.Scope{}, wire.DefaultMaxDepth+1)
	if err != nil {
		return nil, condBadRequest, err.Error()
	}
	if el.Name != "body" || el.Space != NS {
		return nil, condBadRequest, "the request is not a <body/> of " + NS
	}
	if strings.TrimLeft(el.Text, " \t\r\n") != "" {
		// §4: the wrapper holds no character data.
		return nil, condBadRequest, "character data in <body/>"
	}
	rb := &reqBody{wait: -1, hold: -1}
	rid, err := strconv.ParseUint(el.AttrValue("rid"), 10, 64)
	if err != nil || rid == 0 || rid > maxRID {
		return nil, condBadRequest, "missing or invalid 'rid'"
	}
	rb.rid = rid
	rb.sid = el.AttrValue("sid")
	rb.to, rb.from, rb.ver = el.AttrValue("to"), el.AttrValue("from"), el.AttrValue("ver")
	rb.lang = el.AttrValue("xml:lang")
	rb.content = el.AttrValue("content")
	for _, a := range [...]struct {
		name string
		dst  *int
	}{{"wait", &rb.wait}, {"hold", &rb.hold}} {
		v, ok := el.Attr(a.name)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, condBadRequest, "invalid '" + a.name + "'"
		}
		*a.dst = n
	}
	switch t := el.AttrValue("type"); t {
	case "":
	case "terminate":
		rb.terminate = true
	default:
		return nil, condBadRequest, "unknown 'type' " + strconv.Quote(t)
	}
	rb.restart = isTrue(xboshAttr(el, "restart"))
	for _, c := range el.Children {
		if c.Space == NS {
			// XEP-0206 §3: a stanza that does not declare its namespace
			// takes the wrapper's, which stands for jabber:client.
			c = c.Renamespaced(NS, wire.NSClient)
		}
		rb.payload = c.AppendXML(rb.payload, wire.NSClient)
	}
	return rb, "", ""
}

// skipXMLDecl skips white space and an XML declaration before the root.
func skipXMLDecl(b []byte) []byte {
	t := bytes.TrimLeft(b, " \t\r\n")
	if bytes.HasPrefix(t, []byte("<?xml")) && len(t) > 5 && strings.ContainsRune(" \t\r\n", rune(t[5])) {
		if i := bytes.Index(t, []byte("?>")); i >= 0 {
			return t[i+2:]
		}
	}
	return b
}

// xboshAttr returns the value of the attribute local of the xbosh
// namespace, under whichever prefix the wrapper binds to it.
func xboshAttr(el *wire.Element, local string) string {
	for _, a := range el.Attrs {
		if p, ok := strings.CutPrefix(a.Name, "xmlns:"); ok && a.Value == NSXBOSH {
			if v, ok := el.Attr(p + ":" + local); ok {
				return v
			}
		}
	}
	return ""
}

// isTrue reads an XML Schema boolean.
func isTrue(v string) bool { return v == "true" || v == "1" }

// respAttrs are the attributes of a response's wrapper beyond its
// namespaces.
type respAttrs struct {
	// creation holds the session creation response's attributes (§7.2),
	// written as they are; empty on other responses.
	creation  []wire.Attr
	terminate bool
	cond      string
}

// appendResponse appends a response's <body/> holding payload, translated
// top-level elements of the client stream.
func appendResponse(b []byte, a respAttrs, payload []byte) []byte {
	b = append(b, "<body xmlns='"+NS+"' xmlns:stream='"+wire.NSStream+"'"...)
	if len(a.creation) > 0 {
		b = append(b, " xmlns:xmpp='"+NSXBOSH+"'"...)
	}
	for _, at := range a.creation {
		b = wire.AppendAttr(b, at.Name, at.Value)
	}
	if a.terminate {
		b = append(b, " type='terminate'"...)
		if a.cond != "" {
			b = append(b, " condition='"...)
			b = append(b, a.cond...)
			b = append(b, '\'')
		}
	}
	if len(payload) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = append(b, payload...)
	return append(b, "</body>"...)
}

// terminateBody is a response that ends the session with cond.
func terminateBody(cond string) []byte {
	return appendResponse(nil, respAttrs{terminate: true, cond: cond}, nil)
}

// recoverableBody is a recoverable binding error (§17.3): the client
// resends the requests it has no response to.
var recoverableBody = []byte("<body xmlns='" + NS + "' type='error'/>")

// minVersion returns the lower of the client's 'ver' and Version
// ("<major>.<minor>", each compared as an integer: §7.1), Version when the
// client's is absent or malformed.
func minVersion(client string) string {
	cmaj, cmin, ok := splitVersion(client)
	if !ok {
		return Version
	}
	maj, mnr, _ := splitVersion(Version)
	if cmaj < maj || (cmaj == maj && cmin < mnr) {
		return strconv.Itoa(cmaj) + "." + strconv.Itoa(cmin)
	}
	return Version
}

func splitVersion(v string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(v, ".")
	if !found {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	return major, minor, err1 == nil && err2 == nil && major >= 0 && minor >= 0
}

// validContentType reports whether a 'content' attribute can be the
// Content-Type of the session's responses (§7.1): an XML type, with a
// charset at most. A page type would let a response, which holds what
// others sent, run as a page of the server's origin.
func validContentType(v string) bool {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || (mt != "text/xml" && mt != "application/xml") {
		return false
	}
	for k := range params {
		if k != "charset" {
			return false
		}
	}
	return !strings.ContainsAny(v, "\r\n")
}

// sidOf returns the 'sid' of the <body/> start tag b opens with, for a
// request refused before it was parsed; "" if there is none.
func sidOf(b []byte) string {
	b = skipXMLDecl(b)
	b = bytes.TrimLeft(b, " \t\r\n")
	end := wire.TagEnd(b, 0)
	if end < 0 || !wire.StartsElement(b, "body") {
		return ""
	}
	_, _, attrs := wire.SplitStartTag(b[:end+1])
	for _, a := range attrs {
		if string(a.Name) == "sid" {
			return string(a.Value)
		}
	}
	return ""
}
