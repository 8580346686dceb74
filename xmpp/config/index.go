package config

import (
	"bytes"
	"errors"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// maxIndexDepth bounds how deep the index follows nested arrays and inline
// tables. The schema is three levels deep; deeper values are type errors
// reported at their enclosing key anyway.
const maxIndexDepth = 8

// keyIndex maps the keys of a TOML document to the lines defining them. Keys
// use the same spelling as FieldError.Key: "limits.auth_timeout",
// "host[1].admins[0]".
type keyIndex struct {
	data     []byte
	newlines []int          // offsets of '\n' in data, ascending
	lines    map[string]int // key → line of its first definition
	spans    []keySpan      // every key = value expression, for offset lookups
}

// keySpan is the byte range of one "key = value" expression.
type keySpan struct {
	start, end int
	key        string
}

// syntaxError is a TOML syntax error located in the document.
type syntaxError struct {
	line int
	key  string // key of the expression being parsed, if known
	msg  string
}

func newKeyIndex(data []byte) *keyIndex {
	x := &keyIndex{data: data, lines: make(map[string]int)}
	for i, c := range data {
		if c == '\n' {
			x.newlines = append(x.newlines, i)
		}
	}
	return x
}

// buildIndex parses data and indexes its keys. On a syntax error it returns
// the error, located and attributed to a key where possible.
func buildIndex(data []byte) (*keyIndex, *syntaxError) {
	x := newKeyIndex(data)
	b := indexBuilder{x: x, arrays: make(map[string]int)}
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		b.expression(p.Expression())
	}
	if err := p.Error(); err != nil {
		return x, b.syntaxError(err)
	}
	return x, nil
}

// lineAt returns the 1-based line of a byte offset.
func (x *keyIndex) lineAt(offset int) int {
	return sort.SearchInts(x.newlines, offset) + 1
}

// lineStart returns the offset at which 1-based line n starts.
func (x *keyIndex) lineStart(n int) int {
	if n <= 1 || n-2 >= len(x.newlines) {
		return 0
	}
	return x.newlines[n-2] + 1
}

// lineText returns the text of 1-based line n without its line ending.
func (x *keyIndex) lineText(n int) []byte {
	if n < 1 || n > len(x.newlines)+1 {
		return nil
	}
	start := x.lineStart(n)
	end := len(x.data)
	if n-1 < len(x.newlines) {
		end = x.newlines[n-1]
	}
	return bytes.TrimSuffix(x.data[start:end], []byte("\r"))
}

func (x *keyIndex) set(key string, line int) {
	if _, ok := x.lines[key]; !ok {
		x.lines[key] = line
	}
}

// line returns the line where key was set, or 0 if the document does not set
// it. A key missing from an array element resolves to the element (a
// [[host]] without domain points at its header), and an array element without
// a position of its own to the array.
func (x *keyIndex) line(key string) int {
	if x == nil {
		return 0
	}
	if l, ok := x.lines[key]; ok {
		return l
	}
	if i := strings.LastIndexByte(key, '.'); i > 0 && strings.HasSuffix(key[:i], "]") {
		if l, ok := x.lines[key[:i]]; ok {
			return l
		}
	}
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndexByte(key, '['); i > 0 {
			return x.line(key[:i])
		}
	}
	return 0
}

// keyAt returns the key of the innermost "key = value" expression containing
// offset, or "".
func (x *keyIndex) keyAt(offset int) string {
	best, bestLen := "", -1
	for _, s := range x.spans {
		if s.start <= offset && offset < s.end && (bestLen < 0 || s.end-s.start < bestLen) {
			best, bestLen = s.key, s.end-s.start
		}
	}
	return best
}

// indexBuilder walks the expressions of a document in order, tracking the
// current table the way TOML resolves it.
type indexBuilder struct {
	x       *keyIndex
	table   string         // key of the current [table] or [[array]] element
	arrays  map[string]int // array-of-tables key → elements so far
	lastEnd int            // offset just after the last complete expression
}

func (b *indexBuilder) expression(e *unstable.Node) {
	switch e.Kind {
	case unstable.Table, unstable.ArrayTable:
		key := ""
		it := e.Key()
		for it.Next() {
			k := it.Node()
			line := b.x.lineAt(int(k.Raw.Offset))
			b.lastEnd = int(k.Raw.Offset + k.Raw.Length)
			key = joinKey(key, string(k.Data))
			if e.Kind == unstable.ArrayTable && it.IsLast() {
				n := b.arrays[key]
				b.arrays[key] = n + 1
				b.x.set(key, line)
				key = indexKey(key, n)
				b.x.set(key, line)
			} else if n := b.arrays[key]; n > 0 {
				key = indexKey(key, n-1) // [a.b] after [[a]] is in a's last element
			} else {
				b.x.set(key, line)
			}
		}
		b.table = key
	case unstable.KeyValue:
		b.keyValue(b.table, e, 0)
		b.lastEnd = int(e.Raw.Offset + e.Raw.Length)
	}
}

// keyValue indexes a key = value expression under table.
func (b *indexBuilder) keyValue(table string, kv *unstable.Node, depth int) {
	key := table
	it := kv.Key()
	for it.Next() {
		k := it.Node()
		key = joinKey(key, string(k.Data))
		b.x.set(key, b.x.lineAt(int(k.Raw.Offset)))
	}
	start := int(kv.Raw.Offset)
	b.x.spans = append(b.x.spans, keySpan{start: start, end: start + int(kv.Raw.Length), key: key})
	b.value(key, kv.Value(), depth)
}

// value indexes the contents of arrays and inline tables.
func (b *indexBuilder) value(key string, v *unstable.Node, depth int) {
	if depth >= maxIndexDepth {
		return
	}
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				b.keyValue(key, c, depth+1)
			}
		}
	case unstable.Array:
		it := v.Children()
		i := 0
		for it.Next() {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			elem := indexKey(key, i)
			i++
			if c.Raw.Length > 0 {
				b.x.set(elem, b.x.lineAt(int(c.Raw.Offset)))
			}
			b.value(elem, c, depth+1)
		}
	}
}

// syntaxError locates a parser error and names the key of the expression it
// happened in when that expression is a key = value.
func (b *indexBuilder) syntaxError(err error) *syntaxError {
	se := &syntaxError{msg: err.Error()}
	var perr *unstable.ParserError
	if errors.As(err, &perr) {
		se.msg = perr.Message
		if off, ok := offsetIn(b.x.data, perr.Highlight); ok {
			se.line = b.x.lineAt(off)
		}
	}
	if parts := b.failedKey(); parts != nil {
		key := b.table
		for _, p := range parts {
			key = joinKey(key, p)
		}
		se.key = key
	}
	return se
}

// failedKey returns the key parts of the expression that failed to parse, if
// it starts like "key =". The failed expression begins at the first line
// after the last complete expression that is neither blank nor a comment.
func (b *indexBuilder) failedKey() []string {
	line := b.x.lineAt(b.lastEnd)
	if b.lastEnd > 0 {
		line++ // the previous expression ends its line
	}
	for ; line <= len(b.x.newlines)+1; line++ {
		text := bytes.TrimSpace(b.x.lineText(line))
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		if text[0] == '[' {
			return nil
		}
		return keyOfLine(text)
	}
	return nil
}

// keyOfLine parses the key of a line starting with "key = ...", trying the
// first few '=' in turn since quoted keys may contain one.
func keyOfLine(text []byte) []string {
	const maxTries = 4 // bounds the work on pathological lines
	tries := 0
	for i := range text {
		if text[i] != '=' {
			continue
		}
		if tries++; tries > maxTries {
			return nil
		}
		doc := make([]byte, 0, i+4)
		doc = append(doc, text[:i]...)
		doc = append(doc, "= 0"...)
		var p unstable.Parser
		p.Reset(doc)
		if !p.NextExpression() {
			continue
		}
		e := p.Expression()
		if e.Kind != unstable.KeyValue {
			return nil
		}
		var parts []string
		it := e.Key()
		for it.Next() {
			parts = append(parts, string(it.Node().Data))
		}
		return parts
	}
	return nil
}

// offsetIn returns the offset of sub within data if sub is a subslice of it.
func offsetIn(data, sub []byte) (int, bool) {
	off := cap(data) - cap(sub)
	if sub == nil || off < 0 || off+len(sub) > len(data) {
		return 0, false
	}
	return off, true
}
