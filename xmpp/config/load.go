package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/pelletier/go-toml/v2"
)

// MaxReportedErrors is the number of problems [Parse] and [Load] report at
// most; further ones are summarised by a last FieldError without key.
const MaxReportedErrors = 50

// Load reads the TOML file at path and returns [Defaults] overlaid with it,
// validated. See [Parse].
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes a TOML document over [Defaults] and validates the result.
// name (usually the file name) prefixes error messages.
//
// Keys outside the schema, values of the wrong type, unparsable durations and
// validation failures are all reported, each as a [*FieldError] with the line
// where the key was set; several are joined with errors.Join and sorted by
// line (errors without a line last), at most [MaxReportedErrors] of them. A
// document that is not valid TOML is reported as a single FieldError. On
// error the returned Config is the zero value.
func Parse(data []byte, name string) (Config, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // editors on Windows add a BOM
	idx, serr := buildIndex(data)
	if serr != nil {
		return Config{}, &FieldError{File: name, Line: serr.line, Key: serr.key, Err: errors.New(serr.msg)}
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return Config{}, documentError(name, idx, err)
	}

	cfg := Defaults()
	var d decoder
	d.table("", doc, reflect.ValueOf(&cfg).Elem())
	errs := d.errs
	for _, e := range fieldErrors(cfg.Validate()) {
		if !d.failedWithin(e.Key) {
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		return cfg, nil
	}
	for _, e := range errs {
		e.File = name
		if e.Line == 0 {
			e.Line = idx.line(e.Key)
		}
		for _, k := range e.also {
			if e.Line != 0 {
				break
			}
			e.Line = idx.line(k)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		li, lj := errs[i].Line, errs[j].Line
		return li != 0 && (lj == 0 || li < lj)
	})
	if n := len(errs) - MaxReportedErrors; n > 0 {
		errs = append(errs[:MaxReportedErrors:MaxReportedErrors],
			&FieldError{File: name, Err: fmt.Errorf("%d more problems not shown", n)})
	}
	return Config{}, joinFieldErrors(errs)
}

// documentError converts a go-toml decoding error (duplicate keys, integer
// overflow, …) into a FieldError.
func documentError(name string, idx *keyIndex, err error) *FieldError {
	fe := &FieldError{File: name, Err: err}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		fe.Err = errors.New(strings.TrimPrefix(de.Error(), "toml: "))
		row, col := de.Position()
		fe.Line = row
		fe.Key = idx.keyAt(idx.lineStart(row) + col - 1)
		if fe.Key == "" {
			for _, k := range de.Key() {
				fe.Key = joinKey(fe.Key, k)
			}
		}
	}
	return fe
}

// decoder overlays a generic TOML document on a Config, collecting a
// FieldError for every key it cannot store.
type decoder struct {
	errs   []*FieldError
	failed map[string]bool // keys of errs
}

func (d *decoder) add(key string, err error) {
	d.errs = append(d.errs, &FieldError{Key: key, Err: err})
	if d.failed == nil {
		d.failed = make(map[string]bool)
	}
	d.failed[key] = true
}

// failedWithin reports whether key, or a table or array containing it, could
// not be decoded; validation errors about such keys would only repeat the
// problem.
func (d *decoder) failedWithin(key string) bool {
	if len(d.failed) == 0 {
		return false
	}
	for {
		if d.failed[key] {
			return true
		}
		i := strings.LastIndexAny(key, ".[")
		if i <= 0 {
			return false
		}
		key = key[:i]
	}
}

// table decodes the TOML table m into the struct v, matching keys to the
// fields' toml tags.
func (d *decoder) table(key string, m map[string]any, v reflect.Value) {
	t := v.Type()
	fields := make(map[string]int, t.NumField())
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		full := joinKey(key, k)
		i, ok := fields[k]
		if !ok {
			uk := &unknownKeyError{}
			if s := suggest(k, names); s != "" {
				uk.suggestion = joinKey(key, s)
			}
			d.add(full, uk)
			continue
		}
		d.value(full, m[k], v.Field(i))
	}
}

// value decodes one TOML value into v.
func (d *decoder) value(key string, raw any, v reflect.Value) {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		s, ok := raw.(string)
		if !ok {
			d.mismatch(key, raw, v)
			return
		}
		if err := u.UnmarshalText([]byte(s)); err != nil {
			d.add(key, err)
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			d.mismatch(key, raw, v)
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			d.mismatch(key, raw, v)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, ok := raw.(int64)
		if !ok {
			d.mismatch(key, raw, v)
			return
		}
		if v.OverflowInt(n) {
			d.add(key, fmt.Errorf("integer %d is out of range", n))
			return
		}
		v.SetInt(n)
	case reflect.Slice:
		arr, ok := raw.([]any)
		if !ok {
			d.mismatch(key, raw, v)
			return
		}
		s := reflect.MakeSlice(v.Type(), len(arr), len(arr))
		for i, elem := range arr {
			ev := s.Index(i)
			if h, ok := ev.Addr().Interface().(*Host); ok {
				*h = HostDefaults("")
			}
			d.value(indexKey(key, i), elem, ev)
		}
		v.Set(s)
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			d.mismatch(key, raw, v)
			return
		}
		d.table(key, m, v)
	case reflect.Map:
		// A table of strings (s2s.routes).
		m, ok := raw.(map[string]any)
		if !ok {
			d.mismatch(key, raw, v)
			return
		}
		if len(m) == 0 {
			v.SetZero()
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m))
		for k, elem := range m {
			ev := reflect.New(v.Type().Elem()).Elem()
			d.value(key+"."+k, elem, ev)
			out.SetMapIndex(reflect.ValueOf(k), ev)
		}
		v.Set(out)
	default:
		// Only reachable if the schema gains a field of a new kind.
		d.add(key, fmt.Errorf("internal error: cannot decode into %s", v.Type()))
	}
}

func (d *decoder) mismatch(key string, raw any, v reflect.Value) {
	d.add(key, fmt.Errorf("expected %s, got %s", wantedType(key, v), describe(raw)))
}

// wantedType describes what a field accepts.
func wantedType(key string, v reflect.Value) string {
	if _, ok := v.Addr().Interface().(*Duration); ok {
		return `a duration string such as "30s"`
	}
	switch v.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Slice:
		switch v.Type().Elem().Kind() {
		case reflect.String:
			return "an array of strings"
		case reflect.Struct:
			name := key
			if i := strings.LastIndexByte(name, '.'); i >= 0 {
				name = name[i+1:]
			}
			return "an array of tables ([[" + name + "]])"
		}
		return "an array"
	case reflect.Struct:
		return "a table"
	case reflect.Map:
		return "a table of strings"
	}
	return v.Type().String()
}

// describe names the TOML type of a decoded value, with the value for scalars.
func describe(raw any) string {
	switch x := raw.(type) {
	case string:
		if len(x) > 40 {
			// A character cut at byte 40 is left out whole.
			x = strings.ToValidUTF8(x[:40], "") + "…"
		}
		return "string " + strconv.Quote(x)
	case int64:
		return "integer " + strconv.FormatInt(x, 10)
	case float64:
		return "float " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time, toml.LocalDateTime:
		return "a date-time"
	case toml.LocalDate:
		return "a date"
	case toml.LocalTime:
		return "a time"
	}
	return fmt.Sprintf("%T", raw)
}

// suggest returns the candidate closest to an unknown key, or "" if none is
// close: same letters ignoring case, '_' and '-', or at most two edits.
func suggest(key string, candidates []string) string {
	if len(key) > 64 {
		return ""
	}
	norm := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '_' || r == '-' {
				return -1
			}
			return unicode.ToLower(r)
		}, s)
	}
	nkey := norm(key)
	best, bestDist := "", 3
	for _, c := range candidates {
		if norm(c) == nkey {
			return c
		}
		if dist := editDistance(key, c); dist < bestDist && dist < len(c)/2 {
			best, bestDist = c, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
