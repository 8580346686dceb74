package wire

import (
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Stream error conditions that parsing can produce (RFC 6120 §4.9.3).
const (
	CondNotWellFormed    = "not-well-formed"
	CondRestrictedXML    = "restricted-xml"
	CondInvalidNamespace = "invalid-namespace"
	CondPolicyViolation  = "policy-violation"
	CondBadFormat        = "bad-format"
)

// Error is an error in the XML of a stream. Condition is the stream error
// condition to send before closing the stream.
type Error struct {
	Condition string
	Msg       string
}

func (e *Error) Error() string { return "wire: " + e.Condition + ": " + e.Msg }

func errf(cond, msg string) *Error { return &Error{Condition: cond, Msg: msg} }

// DefaultMaxDepth is the nesting limit of Parse when none is given.
const DefaultMaxDepth = 64

type binding struct{ prefix, uri string }

// Scope is the namespace context a top-level element is parsed in: the
// bindings declared on the stream header. The zero Scope binds nothing.
type Scope struct {
	bindings []binding
}

// NewScope returns a scope with the default namespace defaultNS.
func NewScope(defaultNS string) Scope {
	return Scope{bindings: []binding{{"", defaultNS}}}
}

// Bind returns a copy of s with prefix bound to uri ("" binds the default
// namespace).
func (s Scope) Bind(prefix, uri string) Scope {
	b := make([]binding, len(s.bindings), len(s.bindings)+1)
	copy(b, s.bindings)
	return Scope{bindings: append(b, binding{prefix, uri})}
}

// Default returns the default namespace of the scope.
func (s Scope) Default() string {
	for i := len(s.bindings) - 1; i >= 0; i-- {
		if s.bindings[i].prefix == "" {
			return s.bindings[i].uri
		}
	}
	return ""
}

// Parse parses data, which must hold exactly one element (surrounding
// whitespace allowed), in scope sc. The returned element aliases data, which
// must not be modified afterwards.
func Parse(data []byte, sc Scope) (*Element, error) {
	return ParseDepth(data, sc, DefaultMaxDepth)
}

// ParseDepth is Parse with a nesting limit; deeper documents give a
// policy-violation error.
func ParseDepth(data []byte, sc Scope, maxDepth int) (*Element, error) {
	var p parser
	p.maxDepth = maxDepth
	if err := p.begin(data, sc); err != nil {
		return nil, err
	}
	root, err := p.element(nil)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return nil, errf(CondNotWellFormed, "content after the element")
	}
	return root, nil
}

// ParseStartTag parses only the start tag of the one element data holds:
// its name, namespace and attributes. The content is neither parsed nor
// checked: Children and Text are empty (WithChildren(e.Text, e.Children...)
// would write an empty element) and Raw is the element's bytes, without
// the white space around them. It is for a reader
// that needs an element's attributes alone, such as a load generator
// counting messages; the element must not be written back, since a prefix
// its content takes from outside it would not be declared.
func ParseStartTag(data []byte, sc Scope) (*Element, error) {
	var p parser
	if err := p.begin(data, sc); err != nil {
		return nil, err
	}
	e, qname, selfClosing, _, err := p.startTag()
	if err != nil {
		return nil, err
	}
	e.innerStart = p.pos
	if selfClosing {
		e.innerEnd, e.end = p.pos, p.pos
		if strings.TrimLeft(p.s[e.end:], " \t\r\n") != "" {
			return nil, errf(CondNotWellFormed, "content after the element")
		}
	} else {
		// The end tag is the last thing in data but white space: past
		// it, nothing is left to check.
		rest := strings.TrimRight(p.s[p.pos:], " \t\r\n")
		i := strings.LastIndex(rest, "</")
		if i < 0 || !strings.HasPrefix(rest[i+2:], qname) ||
			strings.TrimLeft(rest[i+2+len(qname):], " \t\r\n") != ">" {
			return nil, errf(CondNotWellFormed, "no end tag for "+strconv.Quote(qname))
		}
		e.innerEnd = p.pos + i
		e.end = p.pos + len(rest)
	}
	return e, nil
}

type parser struct {
	data     []byte
	s        string
	pos      int
	bindings []binding
	depth    int
	maxDepth int
	// open[:nOpen] are the elements being parsed, outermost first (the
	// first len(open) in the array, deeper ones in moreOpen: no
	// allocation for usual depths).
	open     [16]openElement
	nOpen    int
	moreOpen []openElement
}

// begin sets p to parse data in scope sc, at its first element.
func (p *parser) begin(data []byte, sc Scope) error {
	p.data, p.s = data, unsafe.String(unsafe.SliceData(data), len(data))
	p.bindings = append(p.bindings, sc.bindings...)
	p.skipSpace()
	if p.pos >= len(p.s) || p.s[p.pos] != '<' {
		return errf(CondNotWellFormed, "expected an element")
	}
	return nil
}

// openElement is an element being parsed with the binding depth it
// started at.
type openElement struct {
	e  *Element
	nb int
}

func (p *parser) push(e *Element, nb int) {
	if p.nOpen < len(p.open) {
		p.open[p.nOpen] = openElement{e, nb}
	} else {
		p.moreOpen = append(p.moreOpen, openElement{e, nb})
	}
	p.nOpen++
}

func (p *parser) pop() {
	p.nOpen--
	if p.nOpen >= len(p.open) {
		p.moreOpen = p.moreOpen[:p.nOpen-len(p.open)]
	} else {
		p.open[p.nOpen] = openElement{}
	}
}

func (p *parser) openAt(i int) *openElement {
	if i < len(p.open) {
		return &p.open[i]
	}
	return &p.moreOpen[i-len(p.open)]
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

func (p *parser) skipSpace() {
	for p.pos < len(p.s) && isSpace(p.s[p.pos]) {
		p.pos++
	}
}

// name reads an XML name at pos.
func (p *parser) name() (string, error) {
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if isSpace(c) || c == '/' || c == '>' || c == '=' || c == '<' || c == '\'' || c == '"' {
			break
		}
		p.pos++
	}
	n := p.s[start:p.pos]
	if !validName(n) {
		if p.pos >= len(p.s) {
			return "", errf(CondNotWellFormed, "unexpected end of element")
		}
		return "", errf(CondNotWellFormed, "invalid name "+strconv.Quote(n))
	}
	return n, nil
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	colons := 0
	for i := 0; i < len(n); {
		c := n[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
			case c == ':':
				colons++
				if i == 0 || i == len(n)-1 || colons > 1 {
					return false
				}
			case (c >= '0' && c <= '9') || c == '-' || c == '.':
				if i == 0 || n[i-1] == ':' {
					return false
				}
			default:
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(n[i:])
		if !validChar(r, size) {
			return false
		}
		i += size
	}
	return true
}

// ValidText reports whether s holds only XML characters (XML 1.0 §2.2,
// valid UTF-8): text that can be written into a document and parsed back.
func ValidText(s string) bool { return checkChars(s) == nil }

func validChar(r rune, size int) bool {
	if r == utf8.RuneError && size <= 1 {
		return false
	}
	return r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF ||
		r == '\t' || r == '\n' || r == '\r'
}

// checkChars validates that s holds only XML characters.
func checkChars(s string) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return errf(CondNotWellFormed, "invalid character "+strconv.Itoa(int(c)))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !validChar(r, size) {
			return errf(CondNotWellFormed, "invalid UTF-8 or character")
		}
		i += size
	}
	return nil
}

func splitName(q string) (prefix, local string) {
	if i := strings.IndexByte(q, ':'); i >= 0 {
		return q[:i], q[i+1:]
	}
	return "", q
}

// lookup resolves prefix; at is the index of its binding, or -1 for the
// predeclared xml prefix and an unbound default namespace.
func (p *parser) lookup(prefix string) (uri string, at int, ok bool) {
	if prefix == "xml" {
		return NSXML, -1, true
	}
	for i := len(p.bindings) - 1; i >= 0; i-- {
		if p.bindings[i].prefix == prefix {
			return p.bindings[i].uri, i, true
		}
	}
	if prefix == "" {
		return "", -1, true
	}
	return "", -1, false
}

// noteOuter records that e (whose own bindings start at nb) uses a prefix
// bound at index at: e and each open ancestor declared inside that binding
// need it declared when written on their own, outside the original
// document (the root in another stream, a child moved into a new parent).
func (p *parser) noteOuter(e *Element, nb int, prefix, uri string, at int) {
	if at < 0 || prefix == "" {
		return
	}
	if at < nb {
		addOuter(e, prefix, uri)
	}
	for i := p.nOpen - 1; i >= 0 && p.openAt(i).nb > at; i-- {
		addOuter(p.openAt(i).e, prefix, uri)
	}
}

func addOuter(e *Element, prefix, uri string) {
	name := "xmlns:" + prefix
	r := e.ownRare()
	for _, a := range r.outer {
		if a.Name == name {
			return
		}
	}
	r.outer = append(r.outer, Attr{Name: name, Value: uri})
}

// startTag parses a start tag at '<' and pushes its namespace bindings;
// nb is the binding depth to restore at the end of the element.
func (p *parser) startTag() (e *Element, qname string, selfClosing bool, nb int, err error) {
	tagStart := p.pos
	p.pos++ // '<'
	qname, err = p.name()
	if err != nil {
		return nil, "", false, 0, err
	}
	e = &Element{buf: p.data, start: tagStart}
	nb = len(p.bindings)
	fail := func(err error) (*Element, string, bool, int, error) { return nil, "", false, 0, err }
	for {
		sawSpace := p.pos < len(p.s) && isSpace(p.s[p.pos])
		p.skipSpace()
		if p.pos >= len(p.s) {
			return fail(errf(CondNotWellFormed, "unexpected end in start tag"))
		}
		c := p.s[p.pos]
		if c == '>' {
			p.pos++
			break
		}
		if c == '/' {
			if p.pos+1 >= len(p.s) || p.s[p.pos+1] != '>' {
				return fail(errf(CondNotWellFormed, "expected '>' after '/'"))
			}
			p.pos += 2
			selfClosing = true
			break
		}
		if !sawSpace {
			return fail(errf(CondNotWellFormed, "missing space before attribute"))
		}
		an, err := p.name()
		if err != nil {
			return fail(err)
		}
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] != '=' {
			return fail(errf(CondNotWellFormed, "attribute without value"))
		}
		p.pos++
		p.skipSpace()
		if p.pos >= len(p.s) || (p.s[p.pos] != '\'' && p.s[p.pos] != '"') {
			return fail(errf(CondNotWellFormed, "unquoted attribute value"))
		}
		q := p.s[p.pos]
		p.pos++
		vs := p.pos
		ve := strings.IndexByte(p.s[vs:], q)
		if ve < 0 {
			return fail(errf(CondNotWellFormed, "unterminated attribute value"))
		}
		raw := p.s[vs : vs+ve]
		p.pos = vs + ve + 1
		if strings.IndexByte(raw, '<') >= 0 {
			return fail(errf(CondNotWellFormed, "'<' in attribute value"))
		}
		val, err := decodeAttr(raw)
		if err != nil {
			return fail(err)
		}
		for _, a := range e.Attrs {
			if a.Name == an {
				return fail(errf(CondNotWellFormed, "duplicate attribute "+strconv.Quote(an)))
			}
		}
		e.Attrs = append(e.Attrs, Attr{Name: an, Value: val})
		switch {
		case an == "xmlns":
			p.bindings = append(p.bindings, binding{"", val})
		case strings.HasPrefix(an, "xmlns:"):
			pfx := an[len("xmlns:"):]
			if val == "" || pfx == "xmlns" || (pfx == "xml") != (val == NSXML) {
				return fail(errf(CondNotWellFormed, "invalid namespace declaration "+strconv.Quote(an)))
			}
			p.bindings = append(p.bindings, binding{pfx, val})
		}
	}
	prefix, local := splitName(qname)
	uri, at, ok := p.lookup(prefix)
	if !ok {
		return fail(errf(CondNotWellFormed, "unbound prefix "+strconv.Quote(prefix)))
	}
	p.noteOuter(e, nb, prefix, uri, at)
	e.Name, e.Prefix, e.Space = local, prefix, uri
	if prefix != "" {
		e.ownRare().contentNS, _, _ = p.lookup("")
	}
	for _, a := range e.Attrs {
		ap, _ := splitName(a.Name)
		if ap == "" || ap == "xmlns" {
			continue
		}
		auri, at, ok := p.lookup(ap)
		if !ok {
			return fail(errf(CondNotWellFormed, "unbound attribute prefix "+strconv.Quote(ap)))
		}
		p.noteOuter(e, nb, ap, auri, at)
	}
	return e, qname, selfClosing, nb, nil
}

// element parses an element starting at '<'.
func (p *parser) element(parent *Element) (*Element, error) {
	p.depth++
	if p.depth > p.maxDepth {
		return nil, errf(CondPolicyViolation, "elements nested too deeply")
	}
	e, qname, selfClosing, nb, err := p.startTag()
	if err != nil {
		return nil, err
	}
	e.innerStart = p.pos
	if selfClosing {
		e.innerEnd = p.pos
		e.end = p.pos
		p.bindings = p.bindings[:nb]
		p.depth--
		return e, nil
	}
	p.push(e, nb)
	var text strings.Builder
	var single string
	segments := 0
	addText := func(s string) {
		if s == "" {
			return
		}
		segments++
		if segments == 1 {
			single = s
			return
		}
		if segments == 2 {
			text.WriteString(single)
		}
		text.WriteString(s)
	}
	for {
		lt := strings.IndexByte(p.s[p.pos:], '<')
		if lt < 0 {
			return nil, errf(CondNotWellFormed, "unexpected end of element "+strconv.Quote(qname))
		}
		if lt > 0 {
			chunk := p.s[p.pos : p.pos+lt]
			if err := checkChars(chunk); err != nil {
				return nil, err
			}
			dec, err := decodeText(chunk)
			if err != nil {
				return nil, err
			}
			addText(dec)
			p.pos += lt
		}
		if p.pos+1 >= len(p.s) {
			return nil, errf(CondNotWellFormed, "unexpected end of element "+strconv.Quote(qname))
		}
		switch p.s[p.pos+1] {
		case '/':
			endStart := p.pos
			p.pos += 2
			n, err := p.name()
			if err != nil {
				return nil, err
			}
			if n != qname {
				return nil, errf(CondNotWellFormed, "end tag "+strconv.Quote(n)+" does not match "+strconv.Quote(qname))
			}
			p.skipSpace()
			if p.pos >= len(p.s) || p.s[p.pos] != '>' {
				return nil, errf(CondNotWellFormed, "malformed end tag")
			}
			p.pos++
			e.innerEnd = endStart
			if segments == 1 {
				e.Text = single
			} else if segments > 1 {
				e.Text = text.String()
			}
			e.end = p.pos
			p.bindings = p.bindings[:nb]
			p.pop()
			p.depth--
			return e, nil
		case '!':
			rest := p.s[p.pos:]
			if strings.HasPrefix(rest, "<![CDATA[") {
				end := strings.Index(rest[9:], "]]>")
				if end < 0 {
					return nil, errf(CondNotWellFormed, "unterminated CDATA section")
				}
				cdata := rest[9 : 9+end]
				if err := checkChars(cdata); err != nil {
					return nil, err
				}
				addText(cdata)
				p.pos += 9 + end + 3
				continue
			}
			if strings.HasPrefix(rest, "<!--") {
				return nil, errf(CondRestrictedXML, "comments are not allowed")
			}
			return nil, errf(CondRestrictedXML, "DTDs are not allowed")
		case '?':
			return nil, errf(CondRestrictedXML, "processing instructions are not allowed")
		default:
			child, err := p.element(e)
			if err != nil {
				return nil, err
			}
			e.Children = append(e.Children, child)
		}
	}
}

// decodeText resolves entity and character references in character data.
func decodeText(s string) (string, error) {
	if strings.IndexByte(s, '&') < 0 {
		return s, nil
	}
	return decodeRefs(s, false)
}

// decodeAttr resolves references and normalises literal white space in an
// attribute value (XML 1.0 §3.3.3).
func decodeAttr(s string) (string, error) {
	if err := checkChars(s); err != nil {
		return "", err
	}
	if strings.IndexByte(s, '&') < 0 && strings.IndexAny(s, "\t\n\r") < 0 {
		return s, nil
	}
	return decodeRefs(s, true)
}

func decodeRefs(s string, attr bool) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if attr && (c == '\t' || c == '\n' || c == '\r') {
			if c == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			b.WriteByte(' ')
			i++
			continue
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		semi := strings.IndexByte(s[i:], ';')
		if semi < 0 {
			return "", errf(CondNotWellFormed, "unterminated reference")
		}
		ref := s[i+1 : i+semi]
		i += semi + 1
		switch ref {
		case "lt":
			b.WriteByte('<')
		case "gt":
			b.WriteByte('>')
		case "amp":
			b.WriteByte('&')
		case "apos":
			b.WriteByte('\'')
		case "quot":
			b.WriteByte('"')
		default:
			if len(ref) < 2 || ref[0] != '#' {
				if validName(ref) {
					return "", errf(CondRestrictedXML, "entity references are not allowed")
				}
				return "", errf(CondNotWellFormed, "invalid reference")
			}
			var n uint64
			var err error
			if ref[1] == 'x' {
				n, err = strconv.ParseUint(ref[2:], 16, 32)
			} else {
				n, err = strconv.ParseUint(ref[1:], 10, 32)
			}
			if err != nil || ref[1] == '+' || (ref[1] == 'x' && len(ref) > 2 && ref[2] == '+') {
				return "", errf(CondNotWellFormed, "invalid character reference")
			}
			r := rune(n)
			if !validChar(r, 4) || n > 0x10FFFF {
				return "", errf(CondNotWellFormed, "character reference to an invalid character")
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}
