package upload

import (
	"errors"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"

	"switchboard/store"
)

// PathPrefix is where the HTTP handler is mounted.
const PathPrefix = "/upload/"

// ParsePath splits a request path (decoded, as in url.URL.Path) of the
// form /upload/<slot id>/<name> into the slot id and the name. The name
// must be one non-empty path segment; it is not checked against the
// stored one (a client may encode it differently).
func ParsePath(p string) (id, name string, ok bool) {
	rest, ok := strings.CutPrefix(p, PathPrefix)
	if !ok {
		return "", "", false
	}
	id, name, ok = strings.Cut(rest, "/")
	if !ok || !store.ValidUploadID(id) || name == "" || strings.Contains(name, "/") {
		return "", "", false
	}
	return id, name, true
}

// maxNameBytes bounds a sanitised file name (most file systems allow 255
// bytes; the name is only shown and offered for saving).
const maxNameBytes = 200

// SanitizeName turns a requested file name into the one used in URLs and
// Content-Disposition: its last path element (after the last '/' or
// '\'), without control and format characters (bidirectional overrides
// that disguise an extension), invalid UTF-8, or surrounding spaces, and
// at most maxNameBytes bytes, keeping the extension when it is short
// (XEP-0363 §4: the service SHOULD keep the file name and especially the
// file ending intact). "." and ".." are not names. It returns "" when
// nothing is left.
func SanitizeName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, ""))
	name = strings.TrimSpace(name)
	if len(name) > maxNameBytes {
		ext := ""
		if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= 16 {
			ext = name[i:]
		}
		name = strings.TrimSpace(truncateUTF8(name[:len(name)-len(ext)], maxNameBytes-len(ext))) + ext
	}
	if name == "." || name == ".." {
		return ""
	}
	return name
}

// truncateUTF8 is s cut to at most n bytes at a character boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// request is a parsed slot request (XEP-0363 §4).
type request struct {
	name        string // sanitised
	size        int64
	contentType string // "" when not given
}

// Reasons a slot request is a bad-request.
var (
	errNoFilename   = errors.New("the filename attribute is missing or empty")
	errBadSize      = errors.New("the size attribute must be a number of bytes")
	errBadMediaType = errors.New("the content-type attribute is not a media type")
	errNameTooShort = errors.New("the filename has no usable characters")
)

// maxSizeDigits is the number of digits of math.MaxInt64.
const maxSizeDigits = 19

// parseRequest reads the attributes of a <request/> element.
func parseRequest(filename, size, contentType string, hasType bool) (request, error) {
	if filename == "" {
		return request{}, errNoFilename
	}
	name := SanitizeName(filename)
	if name == "" {
		return request{}, errNameTooShort
	}
	n, ok := parseSize(size)
	if !ok {
		return request{}, errBadSize
	}
	r := request{name: name, size: n}
	if hasType {
		ct := strings.TrimSpace(contentType)
		if ct == "" || len(ct) > store.MaxUploadContentType || mediaType(ct) == "" {
			return request{}, errBadMediaType
		}
		r.contentType = ct
	}
	return r, nil
}

// parseSize parses a size: decimal digits only (no sign, no spaces),
// within int64.
func parseSize(s string) (int64, bool) {
	if s == "" || len(s) > maxSizeDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// mediaType returns the lowercase media type of a Content-Type value
// without parameters, or "" if it does not parse as type/subtype.
func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") {
		return ""
	}
	return mt
}

// inline reports whether a file of media type mt is shown in the browser
// rather than downloaded.
func inline(mt string) bool {
	major, _, _ := strings.Cut(mt, "/")
	return major == "image" || major == "audio" || major == "video"
}
