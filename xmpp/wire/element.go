package wire

import (
	"bytes"
	"slices"
	"strings"
)

// Namespaces used by the stream layer.
const (
	NSStream = "http://etherx.jabber.org/streams"
	NSClient = "jabber:client"
	NSServer = "jabber:server"
	NSXML    = "http://www.w3.org/XML/1998/namespace"
)

// Attr is one attribute as written: Name is the qualified name ("to",
// "xml:lang", "xmlns", "xmlns:foo") and Value the decoded value.
type Attr struct {
	Name  string
	Value string
}

// Element is an XML element. Parsed elements are immutable (but for SetAttr
// before they are shared) and their strings may alias Raw; constructed
// elements are built by the server (Raw is nil unless they were frozen:
// see Frozen).
type Element struct {
	// Name is the local name and Prefix the prefix as written ("" when
	// unprefixed).
	Name   string
	Prefix string
	// Space is the resolved namespace URI.
	Space string
	// Attrs are the attributes in document order, namespace declarations
	// included.
	Attrs []Attr
	// Children are the child elements in document order.
	Children []*Element
	// Text is the concatenated, decoded character data directly inside
	// this element.
	Text string

	// buf holds the document the element was parsed from; the element
	// spans buf[start:end] and its content buf[innerStart:innerEnd] (for
	// a frozen element, its own serialisation). buf is nil for an element
	// written from its tree: constructed, or after WithChildren.
	buf                              []byte
	start, innerStart, innerEnd, end int
	// rare is what few elements have, nil for the others: the common
	// element (an unprefixed stanza and its payloads) stays in a smaller
	// allocation size.
	rare *elementRare
}

// elementRare holds the fields of an Element that most elements leave
// empty. Copies share it: it is filled in while its element is parsed or
// made, and a copy that changes it gets its own.
type elementRare struct {
	// outer lists prefix bindings inherited from outside the element that
	// its subtree uses; AppendXML declares them on the start tag.
	outer []Attr
	// contentNS is, for a parsed prefixed element, the default namespace
	// in scope inside it (its own xmlns, or inherited): its verbatim
	// content is in it, and AppendXML declares it where it differs.
	contentNS string
	// appendRaw are children added after the verbatim content.
	appendRaw []*Element
}

// rareFields returns e's rare fields, empty ones when it has none.
func (e *Element) rareFields() elementRare {
	if e.rare == nil {
		return elementRare{}
	}
	return *e.rare
}

// ownRare returns e's rare fields for writing while e is parsed, adding
// them when it has none.
func (e *Element) ownRare() *elementRare {
	if e.rare == nil {
		e.rare = new(elementRare)
	}
	return e.rare
}

// New returns a constructed element in namespace space with the given
// attributes.
func New(name, space string, attrs ...Attr) *Element {
	return &Element{Name: name, Space: space, Attrs: attrs}
}

// Raw returns the bytes the element was parsed from (a frozen element's:
// its serialisation), or nil.
func (e *Element) Raw() []byte {
	if e.buf == nil {
		return nil
	}
	return e.buf[e.start:e.end:e.end]
}

// Attr returns the value of the unprefixed or qualified attribute name and
// whether it is present.
func (e *Element) Attr(name string) (string, bool) {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name {
			return e.Attrs[i].Value, true
		}
	}
	return "", false
}

// AttrValue returns the attribute's value or "".
func (e *Element) AttrValue(name string) string {
	v, _ := e.Attr(name)
	return v
}

// Child returns the first child with the local name and namespace; an empty
// space matches any namespace.
func (e *Element) Child(name, space string) *Element {
	for _, c := range e.Children {
		if c.Name == name && (space == "" || c.Space == space) {
			return c
		}
	}
	return nil
}

// ChildText returns the text of the first matching child or "".
func (e *Element) ChildText(name, space string) string {
	if c := e.Child(name, space); c != nil {
		return c.Text
	}
	return ""
}

// FirstChild returns the first child element or nil.
func (e *Element) FirstChild() *Element {
	if len(e.Children) == 0 {
		return nil
	}
	return e.Children[0]
}

// shallow copies e keeping its content.
func (e *Element) shallow() *Element {
	c := *e
	c.Attrs = append([]Attr(nil), e.Attrs...)
	return &c
}

// WithAttr returns a copy of e with attribute name set to value (appended
// when absent). The content is shared and still written verbatim.
func (e *Element) WithAttr(name, value string) *Element {
	c := e.shallow()
	for i := range c.Attrs {
		if c.Attrs[i].Name == name {
			c.Attrs[i].Value = value
			return c
		}
	}
	c.Attrs = append(c.Attrs, Attr{Name: name, Value: value})
	return c
}

// SetAttr sets attribute name to value on e itself (appended when absent).
// Only for an element nothing else holds yet, such as the one a Decoder
// just returned to its reader: elements that may be shared are immutable,
// and WithAttr makes the changed copy.
func (e *Element) SetAttr(name, value string) {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name {
			e.Attrs[i].Value = value
			return
		}
	}
	e.Attrs = append(e.Attrs, Attr{Name: name, Value: value})
}

// WithoutAttr returns a copy of e without the attribute.
func (e *Element) WithoutAttr(name string) *Element {
	c := e.shallow()
	out := c.Attrs[:0]
	for _, a := range c.Attrs {
		if a.Name != name {
			out = append(out, a)
		}
	}
	c.Attrs = out
	return c
}

// Renamespaced returns e with every element of its tree in namespace from
// moved to namespace to, and every declaration of from (a default or a
// prefix binding) declaring to instead: a stream's content namespace
// translated into the one the rest of the server reads (RFC 6120 §4.8.3
// does this for jabber:server). It returns e itself when nothing in the
// tree is in from or declares it. An element whose verbatim content
// declares from is written from its tree from then on.
func (e *Element) Renamespaced(from, to string) *Element {
	out, _ := e.renamespaced(from, to)
	return out
}

// renamespaced is Renamespaced; declares reports whether e's subtree,
// e included, declares from.
func (e *Element) renamespaced(from, to string) (out *Element, declares bool) {
	var children []*Element
	inner := false // the verbatim content declares from
	for i, ch := range e.Children {
		c, d := ch.renamespaced(from, to)
		inner = inner || d
		if c != ch && children == nil {
			children = append(make([]*Element, 0, len(e.Children)), e.Children[:i]...)
		}
		if children != nil {
			children = append(children, c)
		}
	}
	own := false
	for _, a := range e.Attrs {
		if isNSDecl(a.Name) && a.Value == from {
			own = true
		}
	}
	rare := e.rareFields()
	outer := slices.ContainsFunc(rare.outer, func(a Attr) bool { return a.Value == from })
	if !own && !inner && !outer && children == nil && e.Space != from && rare.contentNS != from {
		return e, false
	}
	c := e.shallow()
	if e.Space == from {
		c.Space = to
	}
	for i := range c.Attrs {
		if isNSDecl(c.Attrs[i].Name) && c.Attrs[i].Value == from {
			c.Attrs[i].Value = to
		}
	}
	if children != nil {
		c.Children = children
	}
	if outer || rare.contentNS == from {
		r := rare
		r.outer = slices.Clone(rare.outer)
		for i := range r.outer {
			if r.outer[i].Value == from {
				r.outer[i].Value = to
			}
		}
		if r.contentNS == from {
			r.contentNS = to
		}
		c.rare = &r
	}
	if inner && c.buf != nil {
		// The verbatim bytes would declare from again.
		c = c.WithChildren(c.Text, c.Children...)
	}
	return c, own || inner
}

// isNSDecl reports whether the attribute name declares a namespace
// (xmlns, xmlns:prefix).
func isNSDecl(name string) bool { return name == "xmlns" || strings.HasPrefix(name, "xmlns:") }

// WithChildren returns a copy of e whose content is text followed by
// children; the copy is written from its tree, not verbatim.
func (e *Element) WithChildren(text string, children ...*Element) *Element {
	c := e.shallow()
	c.Children = children
	c.Text = text
	// Written from the tree now: children once appended after the
	// verbatim content are in it or gone.
	c.buf = nil
	if r := c.rareFields(); r.appendRaw != nil {
		r.appendRaw = nil
		c.rare = &r
	}
	return c
}

// Append returns a copy of e with children added after the existing ones.
func (e *Element) Append(children ...*Element) *Element {
	all := make([]*Element, 0, len(e.Children)+len(children))
	all = append(all, e.Children...)
	all = append(all, children...)
	if e.buf != nil {
		// Keep the verbatim inner bytes and write the new children after
		// them: the content is copied rather than escaped again from the
		// tree (mam stamps a stanza-id on every archived message), and
		// mixed content, which the tree alone cannot reproduce, stays.
		c := e.shallow()
		c.Children = all
		// The children appended after the verbatim content are always
		// the tail of Children (WithChildren drops them with the
		// content): the same tail of the new list, longer by the
		// children appended now.
		r := e.rareFields()
		r.appendRaw = all[len(all)-len(r.appendRaw)-len(children):]
		c.rare = &r
		return c
	}
	return e.WithChildren(e.Text, all...)
}

// Frozen returns a copy of a constructed element that is written from one
// serialisation of its content, as a parsed element is: copies made from it
// with WithAttr or WithoutAttr write their start tag and copy the content's
// bytes. A stanza fanned out to many recipients differs only in its
// addresses, so freezing it once saves escaping its whole tree for each.
// A parsed element, a prefixed one (whose content's namespace depends on
// where it is written), an empty one and one whose xmlns attribute is not
// its namespace are returned as they are.
func (e *Element) Frozen() *Element {
	if e.buf != nil || e.Prefix != "" || e.Text == "" && len(e.Children) == 0 {
		return e
	}
	if v, ok := e.Attr("xmlns"); ok && v != e.Space {
		return e // inconsistent; the tree writer leaves such an xmlns out
	}
	b := e.AppendXML(nil, e.Space)
	c := e.shallow()
	// The start tag ends at the first '>': attribute values escape it.
	c.buf, c.start, c.end = b, 0, len(b)
	c.innerStart = bytes.IndexByte(b, '>') + 1
	c.innerEnd = len(b) - len("</>") - len(e.Name)
	return c
}

// SetText sets the text of a constructed element and returns it, for use
// while building; it panics if e was parsed or frozen.
func (e *Element) SetText(text string) *Element {
	if e.buf != nil {
		panic("wire: SetText on a parsed or frozen element")
	}
	e.Text = text
	return e
}

// AddChild appends a child to a constructed element and returns e, for use
// while building; it panics if e was parsed or frozen.
func (e *Element) AddChild(children ...*Element) *Element {
	if e.buf != nil {
		panic("wire: AddChild on a parsed or frozen element")
	}
	e.Children = append(e.Children, children...)
	return e
}

// qname returns the qualified name as written.
func (e *Element) qname() string {
	if e.Prefix == "" {
		return e.Name
	}
	return e.Prefix + ":" + e.Name
}

// AppendXML appends the element's XML to dst. parentNS is the default
// namespace in scope where the element is written: an unprefixed element
// whose namespace differs declares it. Top-level stanzas are written with
// parentNS equal to their own namespace so that they inherit the stream's
// content namespace (jabber:client or jabber:server).
func (e *Element) AppendXML(dst []byte, parentNS string) []byte {
	q := e.qname()
	rare := e.rareFields()
	dst = append(dst, '<')
	dst = append(dst, q...)
	wroteNS := false
	for _, a := range e.Attrs {
		if a.Name == "xmlns" {
			switch {
			case a.Value == parentNS && (e.Prefix != "" || e.Space == parentNS):
				// Already in scope.
				continue
			case e.Prefix == "" && e.Space == parentNS && e.buf == nil:
				// Inconsistent with the element's own namespace:
				// the tree writes its children in e.Space.
				continue
			}
			// A prefixed element's default namespace is its content's
			// (verbatim, or the children's written from the tree).
			wroteNS = true
		}
		dst = AppendAttr(dst, a.Name, a.Value)
	}
	if e.Prefix == "" && !wroteNS && e.Space != parentNS {
		dst = AppendAttr(dst, "xmlns", e.Space)
	}
	if e.Prefix != "" && e.buf != nil && !wroteNS && rare.contentNS != parentNS {
		// The verbatim content's default namespace, which it does not
		// declare where it was parsed.
		dst = AppendAttr(dst, "xmlns", rare.contentNS)
	}
	for _, a := range rare.outer {
		dst = AppendAttr(dst, a.Name, a.Value)
	}
	ns := e.Space
	switch {
	case e.Prefix != "" && e.buf != nil:
		ns = rare.contentNS
	case e.Prefix != "":
		ns = parentNS
		if v, ok := e.Attr("xmlns"); ok {
			ns = v
		}
	}
	if e.buf != nil {
		if e.innerEnd == e.innerStart && len(rare.appendRaw) == 0 {
			return append(dst, '/', '>')
		}
		dst = append(dst, '>')
		dst = append(dst, e.buf[e.innerStart:e.innerEnd]...)
		for _, c := range rare.appendRaw {
			dst = c.AppendXML(dst, ns)
		}
	} else {
		if e.Text == "" && len(e.Children) == 0 {
			return append(dst, '/', '>')
		}
		dst = append(dst, '>')
		dst = AppendEscapedText(dst, e.Text)
		for _, c := range e.Children {
			dst = c.AppendXML(dst, ns)
		}
	}
	dst = append(dst, '<', '/')
	dst = append(dst, q...)
	return append(dst, '>')
}

// String returns the element's XML with its namespace declared.
func (e *Element) String() string {
	return string(e.AppendXML(nil, ""))
}

// AppendAttr appends the attribute name with value, escaped and quoted,
// after a space, as in a start tag.
func AppendAttr(dst []byte, name, value string) []byte {
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=', '\'')
	dst = AppendEscapedAttr(dst, value)
	return append(dst, '\'')
}

// AppendEscapedText appends s escaped for character data.
func AppendEscapedText(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '&':
			esc = "&amp;"
		case '\r':
			esc = "&#13;"
		default:
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		last = i + 1
	}
	return append(dst, s[last:]...)
}

// AppendEscapedAttr appends s escaped for a single-quoted attribute value.
func AppendEscapedAttr(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '&':
			esc = "&amp;"
		case '\'':
			esc = "&apos;"
		case '"':
			esc = "&quot;"
		case '\t':
			esc = "&#9;"
		case '\n':
			esc = "&#10;"
		case '\r':
			esc = "&#13;"
		default:
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		last = i + 1
	}
	return append(dst, s[last:]...)
}

// AppendStreamError appends a stream error (RFC 6120 §4.9) with the
// condition cond and, if not empty, a text in English.
func AppendStreamError(b []byte, cond, text string) []byte {
	return AppendStreamErrorApp(b, cond, text, nil)
}

// AppendStreamErrorApp is AppendStreamError with an application-specific
// condition element, app (XML, written as it is after the text, RFC 6120
// §4.9.4).
func AppendStreamErrorApp(b []byte, cond, text string, app []byte) []byte {
	b = append(b, "<stream:error><"...)
	b = append(b, cond...)
	b = append(b, " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"...)
	if text != "" {
		b = append(b, "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>"...)
		b = AppendEscapedText(b, text)
		b = append(b, "</text>"...)
	}
	b = append(b, app...)
	return append(b, "</stream:error>"...)
}

// AppendStreamEnd appends the end of a stream: the stream error cond (none
// if cond is "") and the closing tag.
func AppendStreamEnd(b []byte, cond, text string) []byte {
	return AppendStreamEndApp(b, cond, text, nil)
}

// AppendStreamEndApp is AppendStreamEnd with an application-specific
// condition element (see AppendStreamErrorApp).
func AppendStreamEndApp(b []byte, cond, text string, app []byte) []byte {
	if cond != "" {
		b = AppendStreamErrorApp(b, cond, text, app)
	}
	return append(b, "</stream:stream>"...)
}
