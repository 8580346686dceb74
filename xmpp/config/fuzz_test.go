package config

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// FuzzParse checks that Parse never panics, that every error is a located
// FieldError, and that an accepted document yields a Config that validates
// and survives a write/read round trip.
func FuzzParse(f *testing.F) {
	if example, err := os.ReadFile(examplePath); err == nil {
		f.Add(example)
	}
	seeds := []string{
		"",
		"[limits]\nmax_stanza_size = 20000\nidle_timeout = \"0s\"\n",
		"[[host]]\ndomain = \"a.example\"\nadmins = [\"root@a.example\"]\n[[host]]\ndomain = \"b.example\"\n",
		"host = [{domain = \"a.example\", registration = true}]\n",
		"log.level = \"debug\"\nlisten.c2s = \"127.0.0.1:0\"\n",
		"[listen]\nc2s = :5222\n",
		"[limits]\nmax_stanzasize = 1\nauth_timeout = 30\n",
		"[[host]]\nadmins = [\n  1,\n  [2, [3]],\n  {a = 1},\n]\n",
		"[host]\n[host.x]\n[[host.y]]\n",
		"a.b.c = 1\n[a.b]\n",
		"\"\\u00e9\" = 1\n'x.y' = {z = [1979-05-27T07:32:00Z]}\n",
		"[tls]\ncert_file = \"c\"\n[c2s]\nresource_conflict = \"random\"\n",
		"[limits]\nmax_stanza_size = 99999999999999999999\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			lines := bytes.Count(data, []byte("\n")) + 1
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a FieldError", err, err)
			}
			for _, fe := range fieldErrors(err) {
				if fe.File != "fuzz.toml" || fe.Line < 0 || fe.Line > lines {
					t.Fatalf("error %q has a bad location (%d lines)", fe, lines)
				}
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Fatal("Parse returned a non-zero Config with an error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
		out, err := toml.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := Parse(out, "marshalled")
		if err != nil {
			t.Fatalf("Parse(Marshal(c)): %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", back, c)
		}
	})
}
