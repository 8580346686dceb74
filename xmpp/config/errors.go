package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnknownKey is matched (errors.Is) by the errors of keys that are not part
// of the schema.
var ErrUnknownKey = errors.New("unknown key")

// FieldError is one configuration problem. [Load], [Parse] and the Validate
// methods return a single *FieldError, or several joined with errors.Join;
// use errors.As to get the first, or the Unwrap() []error method for all.
type FieldError struct {
	File string // file name given to Parse or Load; "" from Validate
	Line int    // 1-based line of the key in File; 0 when unknown or a default
	// Key is the dotted key, with array indices: "limits.auth_timeout",
	// "host[1].admins[0]". Empty for syntax errors that cannot be attributed.
	Key string
	Err error // what is wrong, without the key

	// also lists further keys the problem concerns, used to find a line
	// when Key was not set in the file (e.g. the key_file of a cert_file).
	also []string
}

// Error formats the problem as "file:line: key: problem".
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	var uk *unknownKeyError
	switch {
	case errors.As(e.Err, &uk):
		fmt.Fprintf(&b, "unknown key %q", e.Key)
		if uk.suggestion != "" {
			fmt.Fprintf(&b, " (did you mean %q?)", uk.suggestion)
		}
		return b.String()
	case e.Key != "":
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid")
	}
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *FieldError) Unwrap() error { return e.Err }

// unknownKeyError is the Err of a FieldError for a key outside the schema.
type unknownKeyError struct {
	suggestion string // full key the user probably meant, or ""
}

func (e *unknownKeyError) Error() string {
	if e.suggestion != "" {
		return fmt.Sprintf("unknown key (did you mean %q?)", e.suggestion)
	}
	return "unknown key"
}

func (e *unknownKeyError) Is(target error) bool { return target == ErrUnknownKey }

// problems collects FieldErrors in the order they are found.
type problems struct {
	errs []*FieldError
}

func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Key: key, Err: fmt.Errorf(format, args...)})
}

// addAlso is add for a problem that also concerns the keys in also.
func (p *problems) addAlso(key string, also []string, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Key: key, Err: fmt.Errorf(format, args...), also: also})
}

func (p *problems) addErr(key string, err error) {
	p.errs = append(p.errs, &FieldError{Key: key, Err: err})
}

// err joins the problems, or returns nil if there are none.
func (p *problems) err() error {
	return joinFieldErrors(p.errs)
}

func joinFieldErrors(errs []*FieldError) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}

// fieldErrors flattens err (as returned by a Validate method) into its
// FieldErrors. Other errors become FieldErrors without a key.
func fieldErrors(err error) []*FieldError {
	if err == nil {
		return nil
	}
	if fe, ok := err.(*FieldError); ok {
		return []*FieldError{fe}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*FieldError
		for _, e := range j.Unwrap() {
			out = append(out, fieldErrors(e)...)
		}
		return out
	}
	return []*FieldError{{Err: err}}
}

// joinKey appends one key part to a dotted key, quoting parts that are not
// bare TOML keys.
func joinKey(prefix, part string) string {
	if !isBareKey(part) {
		part = strconv.Quote(part)
	}
	if prefix == "" {
		return part
	}
	return prefix + "." + part
}

// indexKey returns the key of element i of the array at key.
func indexKey(key string, i int) string {
	return key + "[" + strconv.Itoa(i) + "]"
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
