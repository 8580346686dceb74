package ws

import (
	"bytes"

	"switchboard/xmpp/wire"
)

// unitKind says what scanUnit found.
type unitKind uint8

const (
	unitSkip      unitKind = iota // white space, the XML declaration
	unitHeader                    // a stream header (its start tag)
	unitStreamEnd                 // </stream:stream>
	unitElement                   // a whole top-level element
)

// scanUnit finds the first unit of b, which is what c2s writes: well-formed
// XML without comments, processing instructions or DTDs (package wire
// refuses them in what it parses, and c2s writes none). It returns the
// unit's kind and length, or a length of 0 when b does not hold all of it.
func scanUnit(b []byte) (unitKind, int) {
	if len(b) == 0 {
		return unitSkip, 0
	}
	if b[0] != '<' {
		// White space between elements (or stray text, which nothing
		// writes): skipped up to the next tag.
		if i := bytes.IndexByte(b, '<'); i >= 0 {
			return unitSkip, i
		}
		return unitSkip, len(b)
	}
	switch {
	case bytes.HasPrefix(b, []byte("<?")):
		if i := bytes.Index(b, []byte("?>")); i >= 0 {
			return unitSkip, i + 2
		}
		return unitSkip, 0
	case bytes.HasPrefix(b, []byte("</stream:stream>")):
		return unitStreamEnd, len("</stream:stream>")
	case startsElement(b, "stream:stream"):
		if e := tagEnd(b, 0); e >= 0 {
			return unitHeader, e + 1
		}
		return unitSkip, 0
	}
	depth := 0
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return unitSkip, 0
		}
		i += j
		switch {
		case bytes.HasPrefix(b[i:], []byte("<![CDATA[")):
			k := bytes.Index(b[i+9:], []byte("]]>"))
			if k < 0 {
				return unitSkip, 0
			}
			i += 9 + k + 3
		case i+1 < len(b) && b[i+1] == '/':
			k := bytes.IndexByte(b[i:], '>')
			if k < 0 {
				return unitSkip, 0
			}
			i += k + 1
			if depth--; depth <= 0 {
				return unitElement, i
			}
		default:
			e := tagEnd(b, i)
			if e < 0 {
				return unitSkip, 0
			}
			if b[e-1] != '/' {
				depth++
			} else if depth == 0 {
				return unitElement, e + 1
			}
			i = e + 1
		}
	}
	return unitSkip, 0
}

// tagEnd returns the index of the '>' that ends the tag starting at b[i],
// skipping quoted attribute values, or -1.
func tagEnd(b []byte, i int) int {
	var quote byte
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '>':
			return i
		}
	}
	return -1
}

// attr is an attribute of a start tag as written: its value is still
// escaped, and quoted with quote.
type attr struct {
	name, value []byte
	quote       byte
}

// startTag splits the start tag b (from '<' to '>') into its name, the
// offset just after the name, and its attributes.
func startTag(b []byte) (name []byte, nameEnd int, attrs []attr) {
	i := 1
	for i < len(b) && !isTagSpace(b[i]) && b[i] != '/' && b[i] != '>' {
		i++
	}
	name, nameEnd = b[1:i], i
	for {
		for i < len(b) && isTagSpace(b[i]) {
			i++
		}
		if i >= len(b) || b[i] == '/' || b[i] == '>' {
			return name, nameEnd, attrs
		}
		s := i
		for i < len(b) && b[i] != '=' && !isTagSpace(b[i]) {
			i++
		}
		a := attr{name: b[s:i]}
		for i < len(b) && (b[i] == '=' || isTagSpace(b[i])) {
			i++
		}
		if i >= len(b) {
			return name, nameEnd, attrs
		}
		a.quote = b[i]
		e := bytes.IndexByte(b[i+1:], a.quote)
		if e < 0 {
			return name, nameEnd, attrs
		}
		a.value = b[i+1 : i+1+e]
		i += e + 2
		attrs = append(attrs, a)
	}
}

func isTagSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// appendText appends s as one text message.
func appendText(b []byte, s string) []byte {
	b = appendFrameHeader(b, opText, len(s))
	return append(b, s...)
}

// appendOpen appends the <open/> that stands for the stream header h
// (RFC 7395, "Stream Initiation"): its attributes but the namespace
// declarations.
func appendOpen(b []byte, h []byte) []byte {
	_, _, attrs := startTag(h)
	open := append(make([]byte, 0, len(h)), "<open xmlns='"+NSFraming+"'"...)
	for _, a := range attrs {
		if string(a.name) == "xmlns" || bytes.HasPrefix(a.name, []byte("xmlns:")) {
			continue
		}
		open = append(open, ' ')
		open = append(open, a.name...)
		open = append(open, '=', a.quote)
		open = append(open, a.value...)
		open = append(open, a.quote)
	}
	open = append(open, "/>"...)
	b = appendFrameHeader(b, opText, len(open))
	return append(b, open...)
}

// Declarations an element written inside the stream takes from its header.
const (
	declClient = " xmlns='" + wire.NSClient + "'"
	declStream = " xmlns:stream='" + wire.NSStream + "'"
)

// appendElement appends the top-level element e as one text message,
// declaring the namespace it took from the stream header: the stream prefix
// of <stream:features/> and <stream:error/>, or jabber:client for an
// unprefixed element that declares no default namespace (stanzas).
func appendElement(b []byte, e []byte) []byte {
	name, at, attrs := startTag(e[:tagEnd(e, 0)+1])
	decl := ""
	if p, _, ok := bytes.Cut(name, []byte(":")); ok {
		if string(p) == "stream" && !hasAttr(attrs, "xmlns:stream") {
			decl = declStream
		}
	} else if !hasAttr(attrs, "xmlns") {
		decl = declClient
	}
	b = appendFrameHeader(b, opText, len(e)+len(decl))
	b = append(b, e[:at]...)
	b = append(b, decl...)
	return append(b, e[at:]...)
}

func hasAttr(attrs []attr, name string) bool {
	for _, a := range attrs {
		if string(a.name) == name {
			return true
		}
	}
	return false
}
