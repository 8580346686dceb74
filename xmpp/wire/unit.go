package wire

import "bytes"

// UnitKind says what ScanUnit found.
type UnitKind uint8

const (
	UnitSkip      UnitKind = iota // white space, the XML declaration
	UnitHeader                    // a stream header (its start tag)
	UnitStreamEnd                 // </stream:stream>
	UnitElement                   // a whole top-level element
)

// ScanUnit finds the first unit of b, which is what a stream's writer
// wrote: well-formed XML without comments, processing instructions or DTDs
// (the decoder refuses them in what it parses, and the server writes
// none). It returns the unit's kind and length, or a length of 0 when b
// does not hold all of it. It is for framed transports that cut what the
// client stream server writes into top-level elements (WebSocket, BOSH);
// it does not check well-formedness, so that what it reads from a peer
// must still be parsed.
func ScanUnit(b []byte) (UnitKind, int) {
	if len(b) == 0 {
		return UnitSkip, 0
	}
	if b[0] != '<' {
		// White space between elements (or stray text, which nothing
		// writes): skipped up to the next tag.
		if i := bytes.IndexByte(b, '<'); i >= 0 {
			return UnitSkip, i
		}
		return UnitSkip, len(b)
	}
	switch {
	case bytes.HasPrefix(b, []byte("<?")):
		if i := bytes.Index(b, []byte("?>")); i >= 0 {
			return UnitSkip, i + 2
		}
		return UnitSkip, 0
	case bytes.HasPrefix(b, []byte("</stream:stream>")):
		return UnitStreamEnd, len("</stream:stream>")
	case StartsElement(b, "stream:stream"):
		if e := TagEnd(b, 0); e >= 0 {
			return UnitHeader, e + 1
		}
		return UnitSkip, 0
	}
	depth := 0
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return UnitSkip, 0
		}
		i += j
		switch {
		case bytes.HasPrefix(b[i:], []byte("<![CDATA[")):
			k := bytes.Index(b[i+9:], []byte("]]>"))
			if k < 0 {
				return UnitSkip, 0
			}
			i += 9 + k + 3
		case i+1 < len(b) && b[i+1] == '/':
			k := bytes.IndexByte(b[i:], '>')
			if k < 0 {
				return UnitSkip, 0
			}
			i += k + 1
			if depth--; depth <= 0 {
				return UnitElement, i
			}
		default:
			e := TagEnd(b, i)
			if e < 0 {
				return UnitSkip, 0
			}
			if b[e-1] != '/' {
				depth++
			} else if depth == 0 {
				return UnitElement, e + 1
			}
			i = e + 1
		}
	}
	return UnitSkip, 0
}

// CutUnits gives fn each whole unit at the start of b in turn (ScanUnit),
// until fn returns false or no whole unit is left, and returns the bytes
// the units given took: the rest waits for more.
func CutUnits(b []byte, fn func(kind UnitKind, unit []byte) bool) int {
	off := 0
	for off < len(b) {
		kind, n := ScanUnit(b[off:])
		if n == 0 {
			break
		}
		u := b[off : off+n]
		off += n
		if !fn(kind, u) {
			break
		}
	}
	return off
}

// StartsElement reports whether b starts with the start tag of an element
// whose qualified name is name.
func StartsElement(b []byte, name string) bool {
	if len(b) < len(name)+2 || b[0] != '<' || string(b[1:1+len(name)]) != name {
		return false
	}
	switch b[1+len(name)] {
	case ' ', '\t', '\r', '\n', '/', '>':
		return true
	}
	return false
}

// TagEnd returns the index of the '>' that ends the tag starting at b[i],
// skipping quoted attribute values, or -1.
func TagEnd(b []byte, i int) int {
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

// RawAttr is an attribute of a start tag as written: its value is still
// escaped, and quoted with Quote.
type RawAttr struct {
	Name, Value []byte
	Quote       byte
}

// SplitStartTag splits the start tag b (from '<' to '>', as ScanUnit
// found it) into its qualified name, the offset just after the name, and
// its attributes.
func SplitStartTag(b []byte) (name []byte, nameEnd int, attrs []RawAttr) {
	i := 1
	for i < len(b) && !isSpace(b[i]) && b[i] != '/' && b[i] != '>' {
		i++
	}
	name, nameEnd = b[1:i], i
	for {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) || b[i] == '/' || b[i] == '>' {
			return name, nameEnd, attrs
		}
		s := i
		for i < len(b) && b[i] != '=' && !isSpace(b[i]) {
			i++
		}
		a := RawAttr{Name: b[s:i]}
		for i < len(b) && (b[i] == '=' || isSpace(b[i])) {
			i++
		}
		if i >= len(b) {
			return name, nameEnd, attrs
		}
		a.Quote = b[i]
		e := bytes.IndexByte(b[i+1:], a.Quote)
		if e < 0 {
			return name, nameEnd, attrs
		}
		a.Value = b[i+1 : i+1+e]
		i += e + 2
		attrs = append(attrs, a)
	}
}

// Declarations an element written inside a client stream takes from its
// header.
const (
	declClient = " xmlns='" + NSClient + "'"
	declStream = " xmlns:stream='" + NSStream + "'"
)

// InheritedDecl returns what the top-level element e, as ScanUnit found
// it in a client stream, must declare to be read outside the stream, and
// the offset in e where the declaration goes (just after its name): the
// stream prefix for <stream:features/> and <stream:error/>, jabber:client
// for an unprefixed element that declares no default namespace (stanzas),
// or "".
func InheritedDecl(e []byte) (at int, decl string) {
	end := TagEnd(e, 0)
	if end < 0 {
		return 0, ""
	}
	name, at, attrs := SplitStartTag(e[:end+1])
	if p, _, ok := bytes.Cut(name, []byte(":")); ok {
		if string(p) == "stream" && !hasRawAttr(attrs, "xmlns:stream") {
			return at, declStream
		}
	} else if !hasRawAttr(attrs, "xmlns") {
		return at, declClient
	}
	return at, ""
}

func hasRawAttr(attrs []RawAttr, name string) bool {
	for _, a := range attrs {
		if string(a.Name) == name {
			return true
		}
	}
	return false
}
