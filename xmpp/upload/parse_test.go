package upload

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"switchboard/store"
)

const testID = "0123456789abcdef0123456789abcdef"

func TestParsePath(t *testing.T) {
	for _, tt := range []struct {
		path     string
		id, name string
		ok       bool
	}{
		{"/upload/" + testID + "/a.png", testID, "a.png", true},
		{"/upload/" + testID + "/très cool.jpg", testID, "très cool.jpg", true},
		{"/upload/" + testID + "/..", testID, "..", true}, // the name is not used to find the file
		{"/upload/" + testID, "", "", false},
		{"/upload/" + testID + "/", "", "", false},
		{"/upload/" + testID + "/a/b", "", "", false},
		{"/upload/" + testID + "/../../x", "", "", false},
		{"/upload/" + strings.ToUpper(testID) + "/a", "", "", false},
		{"/upload/" + testID[:31] + "/a", "", "", false},
		{"/upload/" + testID + "0/a", "", "", false},
		{"/upload/../" + testID + "/a", "", "", false},
		{"/upload//a", "", "", false},
		{"/upload/", "", "", false},
		{"/uploads/" + testID + "/a", "", "", false},
		{"upload/" + testID + "/a", "", "", false},
		{"", "", "", false},
	} {
		id, name, ok := ParsePath(tt.path)
		if id != tt.id || name != tt.name || ok != tt.ok {
			t.Errorf("ParsePath(%q) = %q, %q, %v; want %q, %q, %v", tt.path, id, name, ok, tt.id, tt.name, tt.ok)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	for _, tt := range []struct{ name, in, want string }{
		{"plain", "photo.jpg", "photo.jpg"},
		{"unicode kept", "très cool.jpg", "très cool.jpg"},
		{"unix path", "../../etc/passwd", "passwd"},
		{"windows path", `C:\Users\a\..\evil.exe`, "evil.exe"},
		{"trailing slash", "dir/", ""},
		{"dots", "..", ""},
		{"dot", ".", ""},
		{"hidden file kept", ".profile", ".profile"},
		{"control characters", "a\x00b\nc\td.txt", "abcd.txt"},
		{"bidi override", "invoice\u202Egnp.exe", "invoicegnp.exe"},
		{"zero width", "a\u200Bb.txt", "ab.txt"},
		{"invalid utf-8", "a\xffb.txt", "ab.txt"},
		{"spaces trimmed", "  a.txt  ", "a.txt"},
		{"only spaces", "   ", ""},
		{"empty", "", ""},
		{"long keeps extension", long + ".jpeg", strings.Repeat("é", 97) + ".jpeg"},
		{"long without extension", long, strings.Repeat("é", 100)},
		{"long extension cut", "a." + long, "a." + strings.Repeat("é", 99)},
		{"dots after truncation", "." + strings.Repeat(" ", 300) + ".", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := SanitizeName(tt.in); got != tt.want {
				t.Errorf("SanitizeName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	for _, tt := range []struct {
		name                  string
		filename, size, ctype string
		hasType               bool
		want                  request
		err                   error
	}{
		{"full", "très cool.jpg", "23456", "image/jpeg", true, request{"très cool.jpg", 23456, "image/jpeg"}, nil},
		{"no type", "a.txt", "0", "", false, request{"a.txt", 0, ""}, nil},
		{"type with parameters", "a.txt", "1", "text/plain; charset=utf-8", true, request{"a.txt", 1, "text/plain; charset=utf-8"}, nil},
		{"largest size", "a", "9223372036854775807", "", false, request{"a", 1<<63 - 1, ""}, nil},
		{"path cut", "x/../a.txt", "1", "", false, request{"a.txt", 1, ""}, nil},
		{"empty filename", "", "1", "", false, request{}, errNoFilename},
		{"filename of dots", "..", "1", "", false, request{}, errNameTooShort},
		{"no size", "a", "", "", false, request{}, errBadSize},
		{"negative size", "a", "-1", "", false, request{}, errBadSize},
		{"plus sign", "a", "+1", "", false, request{}, errBadSize},
		{"spaces", "a", " 1", "", false, request{}, errBadSize},
		{"hex", "a", "0x10", "", false, request{}, errBadSize},
		{"fraction", "a", "1.5", "", false, request{}, errBadSize},
		{"overflow", "a", "9223372036854775808", "", false, request{}, errBadSize},
		{"too many digits", "a", "00000000000000000001", "", false, request{}, errBadSize},
		{"empty type", "a", "1", "", true, request{}, errBadMediaType},
		{"type without subtype", "a", "1", "image", true, request{}, errBadMediaType},
		{"type with spaces", "a", "1", "not a type", true, request{}, errBadMediaType},
		{"long type", "a", "1", "image/" + strings.Repeat("x", store.MaxUploadContentType), true, request{}, errBadMediaType},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRequest(tt.filename, tt.size, tt.ctype, tt.hasType)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("parseRequest = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestInline(t *testing.T) {
	for mt, want := range map[string]bool{
		"image/png": true, "audio/ogg": true, "video/mp4": true,
		"text/html": false, "application/pdf": false, "imagex/png": false, "": false,
	} {
		if got := inline(mt); got != want {
			t.Errorf("inline(%q) = %v", mt, got)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	f.Add("/upload/" + testID + "/a.png")
	f.Add("/upload/" + testID + "/../x")
	f.Add("/upload//")
	f.Fuzz(func(t *testing.T, p string) {
		id, name, ok := ParsePath(p)
		if !ok {
			if id != "" || name != "" {
				t.Fatalf("ParsePath(%q) failed with %q, %q", p, id, name)
			}
			return
		}
		if !store.ValidUploadID(id) || name == "" || strings.Contains(name, "/") || p != PathPrefix+id+"/"+name {
			t.Fatalf("ParsePath(%q) = %q, %q", p, id, name)
		}
	})
}

func FuzzSanitizeName(f *testing.F) {
	f.Add("très cool.jpg")
	f.Add("../../etc/passwd")
	f.Add("a\u202Eb\x00")
	f.Add(strings.Repeat("é", 150) + ".jpeg")
	f.Fuzz(func(t *testing.T, in string) {
		got := SanitizeName(in)
		if len(got) > maxNameBytes || !utf8.ValidString(got) || strings.ContainsAny(got, `/\`) ||
			got == "." || got == ".." || got != strings.TrimSpace(got) {
			t.Fatalf("SanitizeName(%q) = %q", in, got)
		}
		if SanitizeName(got) != got {
			t.Fatalf("SanitizeName is not idempotent on %q: %q, then %q", in, got, SanitizeName(got))
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	f.Add("très cool.jpg", "23456", "image/jpeg", true)
	f.Add("", "-1", "x", false)
	f.Add("a", "9223372036854775808", "text/plain; charset=utf-8", true)
	f.Fuzz(func(t *testing.T, filename, size, ctype string, hasType bool) {
		r, err := parseRequest(filename, size, ctype, hasType)
		if err != nil {
			if r != (request{}) {
				t.Fatalf("parseRequest failed with a result %+v", r)
			}
			return
		}
		if r.size < 0 || r.name == "" || r.name != SanitizeName(r.name) ||
			(hasType && mediaType(r.contentType) == "") || (!hasType && r.contentType != "") {
			t.Fatalf("parseRequest(%q, %q, %q, %v) = %+v", filename, size, ctype, hasType, r)
		}
	})
}
