package wire

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
)

// ErrStreamEnd is returned by ReadElement when the peer closed its stream
// with the end tag of the stream element.
var ErrStreamEnd = errors.New("wire: stream closed by peer")

// ErrNoInput may be returned by a Decoder's reader, with no data, to make
// Fill or ReadElement return without input. Unlike any other error of the
// reader it does not end the decoder: the next call reads again.
var ErrNoInput = errors.New("wire: no input")

// Header is the opening tag of a stream (RFC 6120 §4.7).
type Header struct {
	// Name is the qualified name as written, e.g. "stream:stream".
	Name string
	// Space is the namespace of the stream element; it must be NSStream.
	Space string
	// Default is the default namespace declared on the header: the
	// stream's content namespace.
	Default string
	// Attrs are all attributes as written.
	Attrs []Attr
	// To, From, ID, Version and Lang are the RFC 6120 §4.7 attributes.
	To, From, ID, Version, Lang string
	// Scope holds the namespace bindings the header declares; top-level
	// elements are parsed in it.
	Scope Scope
}

// Limits bound what a Decoder accepts.
type Limits struct {
	// MaxStanza is the largest top-level element in bytes (RFC 6120
	// §13.12); larger ones give a policy-violation error.
	MaxStanza int
	// MaxDepth is the deepest nesting of elements.
	MaxDepth int
	// ReadBuffer is the initial read buffer size.
	ReadBuffer int
}

const (
	defaultMaxStanza  = 256 << 10
	defaultReadBuffer = 2048
	maxHeader         = 8192
)

type scanState uint8

const (
	stTop   scanState = iota // between top-level elements
	stLT                     // after '<'
	stTag                    // inside a start tag
	stEnd                    // inside an end tag
	stText                   // character data inside an element
	stBang                   // after "<!"
	stCDATA                  // inside a CDATA section
)

// Decoder frames the top-level elements of a stream read from an
// io.Reader. It is not safe for concurrent use.
type Decoder struct {
	r      io.Reader
	limits Limits

	buf        []byte
	rpos, wpos int // unconsumed bytes are buf[rpos:wpos]
	scan       int // next byte to scan
	frame      int // start of the current frame, or -1

	state  scanState
	depth  int
	quote  byte
	prev   byte // previous significant byte in a tag
	closed bool // scanning a stream end tag

	// What the stream needs of its header once it is open: the name its
	// end tag must repeat and the namespaces of top-level elements. Only
	// these are kept (the common ones as constants), not the header: a
	// parked session holds as little as possible.
	open  bool
	name  string
	scope Scope
	rerr  error
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader, limits Limits) *Decoder {
	if limits.MaxStanza <= 0 {
		limits.MaxStanza = defaultMaxStanza
	}
	if limits.MaxDepth <= 0 {
		limits.MaxDepth = DefaultMaxDepth
	}
	if limits.ReadBuffer <= 0 {
		limits.ReadBuffer = defaultReadBuffer
	}
	return &Decoder{r: r, limits: limits, frame: -1}
}

// Reset discards buffered input and state and reads from r, for a stream
// restart over a new transport layer (STARTTLS, RFC 6120 §5.4.3.3).
func (d *Decoder) Reset(r io.Reader) {
	d.r = r
	d.rpos, d.wpos, d.scan = 0, 0, 0
	d.Restart()
}

// Buffered reports how many bytes have been read but not consumed.
func (d *Decoder) Buffered() int { return d.wpos - d.rpos }

// PendingData reports whether the bytes read but not consumed hold more
// than white space (which RFC 6120 §4.6.1 allows between elements).
func (d *Decoder) PendingData() bool {
	for _, b := range d.buf[d.rpos:d.wpos] {
		if !isSpace(b) {
			return true
		}
	}
	return false
}

// Restart expects a new stream header on the same transport, keeping input
// already buffered (after SASL success, RFC 6120 §6.4.6).
func (d *Decoder) Restart() {
	d.open, d.name, d.scope = false, "", Scope{}
	d.frame = -1
	d.scan = d.rpos
	d.state, d.depth, d.quote, d.prev, d.closed = stTop, 0, 0, 0, false
}

// Release drops the read buffer if it holds nothing (between elements), so
// that a decoder waiting for input holds none; the next read allocates it
// again. It reports whether it did.
func (d *Decoder) Release() bool {
	if d.rpos != d.wpos || d.frame >= 0 || d.state != stTop || d.rerr != nil {
		return false
	}
	d.buf = nil
	d.rpos, d.wpos, d.scan = 0, 0, 0
	return true
}

// Fill reads more input (at least one byte, or an error), blocking until
// the reader returns. With ReadBuffered it lets the caller choose where to
// wait for input; ReadElement is the two in a loop.
func (d *Decoder) Fill() error { return d.fill() }

// fill reads more input, compacting or growing the buffer as needed.
func (d *Decoder) fill() error {
	if d.rerr != nil {
		return d.rerr
	}
	if d.buf == nil {
		d.buf = make([]byte, d.limits.ReadBuffer)
	}
	if d.wpos == len(d.buf) {
		if d.rpos > 0 {
			n := copy(d.buf, d.buf[d.rpos:d.wpos])
			d.scan -= d.rpos
			if d.frame >= 0 {
				d.frame -= d.rpos
			}
			d.rpos, d.wpos = 0, n
		} else {
			limit := d.limits.MaxStanza + 1024
			size := 2 * len(d.buf)
			if size > limit {
				size = limit
			}
			if size <= len(d.buf) {
				return errf(CondPolicyViolation, "stanza too large")
			}
			nb := make([]byte, size)
			copy(nb, d.buf[:d.wpos])
			d.buf = nb
		}
	}
	n, err := d.r.Read(d.buf[d.wpos:])
	d.wpos += n
	if err != nil && n == 0 {
		if err != ErrNoInput {
			d.rerr = err
		}
		return err
	}
	return nil
}

// shrink returns an oversized buffer to its initial size once drained.
func (d *Decoder) shrink() {
	if d.rpos == d.wpos {
		d.rpos, d.wpos, d.scan = 0, 0, 0
		if len(d.buf) > 4*d.limits.ReadBuffer {
			d.buf = nil
		}
	}
}

// ReadHeader reads an optional XML declaration and the stream header. The
// header's namespaces are not checked: that is the caller's policy
// (RFC 6120 §4.9.3.10).
func (d *Decoder) ReadHeader() (*Header, error) {
	// Skip white space and one XML declaration.
	for {
		for d.scan < d.wpos && isSpace(d.buf[d.scan]) {
			d.scan++
		}
		d.rpos = d.scan
		if d.wpos-d.scan >= 2 {
			if d.buf[d.scan] != '<' {
				return nil, errf(CondNotWellFormed, "expected a stream header")
			}
			if d.buf[d.scan+1] != '?' {
				break
			}
			end := indexFrom(d.buf[:d.wpos], d.scan, "?>")
			if end >= 0 {
				decl := d.buf[d.scan : end+2]
				if len(decl) < 6 || string(decl[2:5]) != "xml" || !isSpace(decl[5]) {
					return nil, errf(CondRestrictedXML, "processing instructions are not allowed")
				}
				d.scan = end + 2
				continue
			}
			if d.wpos-d.scan > maxHeader {
				return nil, errf(CondPolicyViolation, "XML declaration too long")
			}
		}
		if err := d.fill(); err != nil {
			return nil, err
		}
	}
	// Scan the start tag to its '>'.
	start := d.scan
	var quote byte
	for {
		for ; d.scan < d.wpos; d.scan++ {
			c := d.buf[d.scan]
			if quote != 0 {
				if c == quote {
					quote = 0
				}
				continue
			}
			if c == '\'' || c == '"' {
				quote = c
			} else if c == '>' {
				goto done
			}
		}
		if d.scan-start > maxHeader {
			return nil, errf(CondPolicyViolation, "stream header too long")
		}
		if err := d.fill(); err != nil {
			return nil, err
		}
		start = d.rpos
	}
done:
	d.scan++
	tag := make([]byte, d.scan-d.rpos)
	copy(tag, d.buf[d.rpos:d.scan])
	d.rpos = d.scan
	h, err := parseHeader(tag)
	if err != nil {
		return nil, err
	}
	d.open, d.name, d.scope = true, intern(h.Name), h.Scope.interned()
	d.state, d.depth, d.frame = stTop, 0, -1
	return h, nil
}

// SetScope replaces the namespace scope the top-level elements of the open
// stream are parsed in (after ReadHeader). A server-to-server stream uses it
// to read its stanzas, qualified by jabber:server, as jabber:client ones:
// the server translates the content namespace between the two (RFC 6120
// §4.8.3), and everything past the stream reads jabber:client.
func (d *Decoder) SetScope(s Scope) { d.scope = s.interned() }

// intern returns the constant for the names every stream uses, else a copy
// of s: what the decoder keeps must not pin the header's buffer.
func intern(s string) string {
	switch s {
	case "stream:stream":
		return "stream:stream"
	case "stream":
		return "stream"
	case "":
		return ""
	}
	return strings.Clone(s)
}

// interned is a copy of s holding no string of the parsed input.
func (s Scope) interned() Scope {
	b := make([]binding, len(s.bindings))
	for i, x := range s.bindings {
		b[i] = binding{intern(x.prefix), internNS(x.uri)}
	}
	return Scope{bindings: b}
}

func internNS(s string) string {
	switch s {
	case NSClient:
		return NSClient
	case NSStream:
		return NSStream
	case NSServer:
		return NSServer
	}
	return strings.Clone(s)
}

func parseHeader(tag []byte) (*Header, error) {
	var p parser
	if err := p.begin(tag, Scope{}); err != nil {
		return nil, err
	}
	e, qname, selfClosing, _, err := p.startTag()
	if err != nil {
		return nil, err
	}
	if selfClosing || p.pos != len(tag) {
		return nil, errf(CondNotWellFormed, "malformed stream header")
	}
	h := &Header{Name: qname, Space: e.Space, Attrs: e.Attrs}
	h.Scope.bindings = append(h.Scope.bindings, p.bindings...)
	h.Default = h.Scope.Default()
	for _, a := range e.Attrs {
		switch a.Name {
		case "to":
			h.To = a.Value
		case "from":
			h.From = a.Value
		case "id":
			h.ID = a.Value
		case "version":
			h.Version = a.Value
		case "xml:lang":
			h.Lang = a.Value
		}
	}
	return h, nil
}

func indexFrom(b []byte, from int, sep string) int {
	i := bytes.Index(b[from:], []byte(sep))
	if i < 0 {
		return -1
	}
	return from + i
}

// ReadElement returns the next top-level element of the stream, skipping
// white space between elements (RFC 6120 §4.6.1 keepalives). It returns
// ErrStreamEnd when the peer closes the stream, a *Error for bad XML or an
// exceeded limit, or the transport's error.
func (d *Decoder) ReadElement() (*Element, error) {
	return d.ReadElementShallow(nil)
}

// ReadElementShallow is ReadElement parsing only the start tag (see
// ParseStartTag) of each element whose bytes shallow accepts.
func (d *Decoder) ReadElementShallow(shallow func(raw []byte) bool) (*Element, error) {
	for {
		el, err := d.readBuffered(shallow)
		if el != nil || err != nil {
			return el, err
		}
		if err := d.fill(); err != nil {
			return nil, err
		}
	}
}

// ReadBuffered is ReadElement without reading: it returns the next
// top-level element when the input already read holds all of it, and nil
// with no error when more input is needed (see Fill).
func (d *Decoder) ReadBuffered() (*Element, error) {
	return d.readBuffered(nil)
}

func (d *Decoder) readBuffered(shallow func(raw []byte) bool) (*Element, error) {
	if !d.open {
		return nil, errors.New("wire: ReadElement before ReadHeader")
	}
	end, err := d.scanFrame()
	if err != nil || end < 0 {
		return nil, err
	}
	if d.closed {
		d.rpos = end
		return nil, ErrStreamEnd
	}
	// scanFrame checks the size only of a frame it has not finished; one
	// that arrived whole within the read buffer's slack (MaxStanza+1024)
	// is checked here.
	if err := d.checkSize(end); err != nil {
		return nil, err
	}
	raw := make([]byte, end-d.frame)
	copy(raw, d.buf[d.frame:end])
	d.rpos = end
	d.frame = -1
	d.shrink()
	if shallow != nil && shallow(raw) {
		return ParseStartTag(raw, d.scope)
	}
	return ParseDepth(raw, d.scope, d.limits.MaxDepth)
}

// scanFrame advances the scanner over buffered input; it returns the end
// offset of a complete frame or -1 when more input is needed.
func (d *Decoder) scanFrame() (int, error) {
	buf := d.buf[:d.wpos]
	for i := d.scan; i < len(buf); i++ {
		c := buf[i]
		switch d.state {
		case stTop:
			if isSpace(c) {
				d.rpos = i + 1
				continue
			}
			if c != '<' {
				return -1, errf(CondNotWellFormed, "character data at stream level")
			}
			d.frame = i
			d.state = stLT
		case stLT:
			switch c {
			case '/':
				d.state = stEnd
				if d.depth == 0 {
					d.closed = true
				}
			case '!':
				d.state = stBang
			case '?':
				return -1, errf(CondRestrictedXML, "processing instructions are not allowed")
			default:
				d.state, d.quote, d.prev = stTag, 0, 0
			}
		case stTag:
			if d.quote != 0 {
				if c == d.quote {
					d.quote = 0
				}
				continue
			}
			switch c {
			case '\'', '"':
				d.quote = c
			case '<':
				return -1, errf(CondNotWellFormed, "'<' in a tag")
			case '>':
				if d.prev != '/' {
					d.depth++
					if d.depth > d.limits.MaxDepth {
						return -1, errf(CondPolicyViolation, "elements nested too deeply")
					}
					d.state = stText
					break
				}
				if d.depth == 0 {
					d.state = stTop
					d.scan = i + 1
					return i + 1, nil
				}
				d.state = stText
			}
			if !isSpace(c) {
				d.prev = c
			}
		case stEnd:
			if c == '<' {
				return -1, errf(CondNotWellFormed, "'<' in an end tag")
			}
			if c != '>' {
				continue
			}
			if d.closed {
				name := string(trimSpace(buf[d.frame+2 : i]))
				if name != d.name {
					return -1, errf(CondNotWellFormed, "end tag "+strconv.Quote(name)+" does not close the stream")
				}
				d.scan = i + 1
				return i + 1, nil
			}
			d.depth--
			if d.depth == 0 {
				d.state = stTop
				d.scan = i + 1
				return i + 1, nil
			}
			d.state = stText
		case stText:
			if c == '<' {
				d.state = stLT
			}
		case stBang:
			// Need "[CDATA[" (7 bytes) after "<!".
			if len(buf)-i < 7 {
				d.scan = i
				return -1, d.checkSize(i)
			}
			if string(buf[i:i+7]) == "[CDATA[" && d.depth > 0 {
				d.state = stCDATA
				i += 6
				continue
			}
			if c == '-' {
				return -1, errf(CondRestrictedXML, "comments are not allowed")
			}
			return -1, errf(CondRestrictedXML, "DTDs are not allowed")
		case stCDATA:
			if c == '>' && i >= 2 && buf[i-1] == ']' && buf[i-2] == ']' {
				d.state = stText
			}
		}
	}
	d.scan = len(buf)
	if d.state == stTop {
		d.frame = -1
		return -1, nil
	}
	return -1, d.checkSize(len(buf))
}

func (d *Decoder) checkSize(upto int) error {
	if d.frame >= 0 && upto-d.frame > d.limits.MaxStanza {
		return errf(CondPolicyViolation, "stanza larger than "+strconv.Itoa(d.limits.MaxStanza)+" bytes")
	}
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
