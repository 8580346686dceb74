package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

const examplePath = "../../config.example.toml"

// allFieldErrors returns the FieldErrors in err, in order.
func allFieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	if err == nil {
		return nil
	}
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		t.Errorf("error %v (%T) is not a *FieldError", e, e)
	}
	walk(err)
	return out
}

func TestLoadExample(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if want := Defaults(); !reflect.DeepEqual(c, want) {
		t.Fatalf("example config differs from Defaults():\n got %+v\nwant %+v", c, want)
	}
}

// TestExampleDocumentsEveryKey checks that config.example.toml sets every
// option of the schema and that each has a comment: on its line, or above it
// (possibly above a group of assignments).
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	idx, serr := buildIndex(data)
	if serr != nil {
		t.Fatalf("example: syntax error line %d: %s", serr.line, serr.msg)
	}
	keys := schemaKeys("", reflect.TypeFor[Config]())
	if len(keys) < 25 {
		t.Fatalf("schemaKeys found only %d keys: %q", len(keys), keys)
	}
	lines := strings.Split(string(data), "\n")
	for _, key := range keys {
		if strings.Contains(key, ".group[") {
			// Shared groups are empty by default; the example
			// documents them as a commented table.
			if !strings.Contains(string(data), "# [[host.group]]") || !strings.Contains(string(data), "# "+key[strings.LastIndex(key, ".")+1:]+" = ") {
				t.Errorf("%s: no commented example in %s", key, examplePath)
			}
			continue
		}
		if strings.HasPrefix(key, "component[") {
			// No component by default: the example documents
			// them as a commented table.
			if !strings.Contains(string(data), "# [[component]]") || !strings.Contains(string(data), "# "+key[strings.LastIndex(key, ".")+1:]+" = ") {
				t.Errorf("%s: no commented example in %s", key, examplePath)
			}
			continue
		}
		line, ok := idx.lines[key]
		if !ok {
			t.Errorf("%s: not in %s", key, examplePath)
			continue
		}
		if !documented(lines, line) {
			t.Errorf("%s (line %d): no comment documents it", key, line)
		}
	}
}

// schemaKeys lists the leaf keys of the schema; array-of-tables fields are
// listed for their first element ("host[0].domain").
func schemaKeys(prefix string, typ reflect.Type) []string {
	var keys []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		key := joinKey(prefix, f.Tag.Get("toml"))
		switch {
		case f.Type.Kind() == reflect.Struct:
			keys = append(keys, schemaKeys(key, f.Type)...)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			keys = append(keys, schemaKeys(indexKey(key, 0), f.Type.Elem())...)
		default:
			keys = append(keys, key)
		}
	}
	return keys
}

func documented(lines []string, line int) bool {
	if strings.Contains(lines[line-1], "#") {
		return true
	}
	for i := line - 2; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(l, "#"):
			return true
		case l == "" || strings.HasPrefix(l, "["):
			return false
		}
		// Another assignment of the same group: keep looking up.
	}
	return false
}

// TestExampleCommentedHost checks that the commented-out [[host]] example of
// config.example.toml is valid once uncommented, and replaces the hosts.
func TestExampleCommentedHost(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var doc []string
	inExample := false
	for _, l := range lines {
		if l == "# [[host]]" {
			inExample = true
		}
		if inExample {
			if !strings.HasPrefix(l, "#") {
				break
			}
			l = strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ")
		}
		doc = append(doc, l)
	}
	if !inExample {
		t.Fatal("no commented-out [[host]] example found")
	}
	c, err := Parse([]byte(strings.Join(doc, "\n")), "uncommented")
	if err != nil {
		t.Fatalf("uncommented example: %v", err)
	}
	if got := c.Domains(); !reflect.DeepEqual(got, []string{"localhost", "chat.example.org"}) {
		t.Fatalf("uncommented example serves %q", got)
	}
	h, _ := c.Host("chat.example.org")
	if !h.Registration || len(h.Admins) != 1 {
		t.Fatalf("uncommented example host = %+v", h)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want func(*Config)
	}{
		{
			name: "empty document is the defaults",
			doc:  "",
			want: func(*Config) {},
		},
		{
			name: "comments only",
			doc:  "# nothing\n\n   # here\n",
			want: func(*Config) {},
		},
		{
			name: "byte order mark",
			doc:  "\uFEFF[log]\nlevel = \"debug\"\n",
			want: func(c *Config) { c.Log.Level = "debug" },
		},
		{
			name: "sections overlay defaults",
			doc: `
[server]
data_dir = "/var/lib/switchboard"
[limits]
idle_timeout = "0s"
auth_timeout = "1m30s"
rate_bytes_per_second = 65536
[listen]
http = ""
admin_socket = "-"
`,
			want: func(c *Config) {
				c.Server.DataDir = "/var/lib/switchboard"
				c.Limits.IdleTimeout = 0
				c.Limits.AuthTimeout = Duration(90 * time.Second)
				c.Limits.RateBytesPerSecond = 65536
				c.Listen.HTTP = ""
				c.Listen.AdminSocket = "-"
			},
		},
		{
			name: "hosts replace the default host",
			doc: `
[[host]]
domain = "a.example"
registration = true
admins = ["root@a.example", "ops@b.example"]

[[host]]
domain = "b.example"
`,
			want: func(c *Config) {
				a := HostDefaults("a.example")
				a.Registration, a.Admins = true, []string{"root@a.example", "ops@b.example"}
				c.Hosts = []Host{a, HostDefaults("b.example")}
			},
		},
		{
			name: "inline array of hosts",
			doc:  `host = [{domain = "a.example"}, {domain = "b.example", registration = true}]`,
			want: func(c *Config) {
				b := HostDefaults("b.example")
				b.Registration = true
				c.Hosts = []Host{HostDefaults("a.example"), b}
			},
		},
		{
			name: "dotted keys and enums",
			doc: `
log.level = "warn"
log.format = "json"
tls.min_version = "1.3"
c2s.resource_conflict = "random"
`,
			want: func(c *Config) {
				c.Log.Level = LevelWarn
				c.Log.Format = FormatJSON
				c.TLS.MinVersion = TLS13
				c.C2S.ResourceConflict = Random
			},
		},
		{
			name: "certificate pair",
			doc:  "[tls]\ncert_file = \"/etc/ssl/c.pem\"\nkey_file = \"/etc/ssl/k.pem\"\nrequire_c2s = false\n",
			want: func(c *Config) {
				c.TLS.CertFile, c.TLS.KeyFile, c.TLS.RequireC2S = "/etc/ssl/c.pem", "/etc/ssl/k.pem", false
			},
		},
		{
			name: "integer syntaxes",
			doc:  "[limits]\nmax_stanza_size = 1_000_000\noutbox_bytes = 0x10000\n",
			want: func(c *Config) {
				c.Limits.MaxStanzaSize = 1000000
				c.Limits.OutboxBytes = 0x10000
			},
		},
		{
			name: "listener addresses",
			doc:  "[listen]\nc2s = \"127.0.0.1:0\"\nc2s_tls = \"[::1]:5223\"\ns2s = \"xmpp.example.org:5269\"\nhttp = \"127.0.0.1:0\"\n",
			want: func(c *Config) {
				c.Listen.C2S, c.Listen.C2STLS, c.Listen.S2S, c.Listen.HTTP = "127.0.0.1:0", "[::1]:5223", "xmpp.example.org:5269", "127.0.0.1:0"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.doc), "test.toml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Defaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		key  string // FieldError.Key
		line int    // FieldError.Line
		msg  string // substring of the message after "test.toml:<line>: "
	}{
		// Unknown keys.
		{
			name: "unknown key in section",
			doc:  "[limits]\nmax_stanza_size = 20000\nmax_stanzasize = 10000\n",
			key:  "limits.max_stanzasize", line: 3,
			msg: `unknown key "limits.max_stanzasize" (did you mean "limits.max_stanza_size"?)`,
		},
		{
			name: "unknown section",
			doc:  "[log]\nlevel = \"info\"\n\n[logging]\nlevel = \"debug\"\n",
			key:  "logging", line: 4,
			msg: `unknown key "logging"`,
		},
		{
			name: "unknown top-level key",
			doc:  "verbose = true\n",
			key:  "verbose", line: 1,
			msg: `unknown key "verbose"`,
		},
		{
			name: "unknown key in second host",
			doc:  "[[host]]\ndomain = \"a.example\"\n[[host]]\ndomain = \"b.example\"\nregistraton = true\n",
			key:  "host[1].registraton", line: 5,
			msg: `unknown key "host[1].registraton" (did you mean "host[1].registration"?)`,
		},
		{
			name: "unknown dotted key",
			doc:  "\nlimits.max_sessions = 3\n",
			key:  "limits.max_sessions", line: 2,
			msg: `unknown key "limits.max_sessions"`,
		},
		{
			name: "unknown key in inline table",
			doc:  "host = [\n  {domain = \"a.example\"},\n  {domain = \"b.example\", admin = []},\n]\n",
			key:  "host[1].admin", line: 3,
			msg: `unknown key "host[1].admin" (did you mean "host[1].admins"?)`,
		},
		{
			name: "unknown quoted key",
			doc:  "[listen]\n\"c2s.tls\" = \":5223\"\n",
			key:  `listen."c2s.tls"`, line: 2,
			msg: `unknown key "listen.\"c2s.tls\""`,
		},
		{
			name: "plural section name",
			doc:  "[[hosts]]\ndomain = \"a.example\"\n",
			key:  "hosts", line: 1,
			msg: `unknown key "hosts" (did you mean "host"?)`,
		},

		// Type mismatches.
		{
			name: "string for integer",
			doc:  "[limits]\nmax_stanza_size = \"256k\"\n",
			key:  "limits.max_stanza_size", line: 2,
			msg: `limits.max_stanza_size: expected an integer, got string "256k"`,
		},
		{
			name: "float for integer",
			doc:  "[limits]\n\n\noutbox_bytes = 1e6\n",
			key:  "limits.outbox_bytes", line: 4,
			msg: "limits.outbox_bytes: expected an integer, got float 1e+06",
		},
		{
			name: "string for boolean",
			doc:  "[log]\ntrace_xml = \"yes\"\n",
			key:  "log.trace_xml", line: 2,
			msg: `log.trace_xml: expected a boolean (true or false), got string "yes"`,
		},
		{
			name: "integer for duration",
			doc:  "[limits]\nidle_timeout = 600\n",
			key:  "limits.idle_timeout", line: 2,
			msg: `limits.idle_timeout: expected a duration string such as "30s", got integer 600`,
		},
		{
			name: "integer for string",
			doc:  "[listen]\nc2s = 5222\n",
			key:  "listen.c2s", line: 2,
			msg: "listen.c2s: expected a string, got integer 5222",
		},
		{
			name: "date for string",
			doc:  "[server]\ndata_dir = 2024-01-01\n",
			key:  "server.data_dir", line: 2,
			msg: "server.data_dir: expected a string, got a date",
		},
		{
			name: "table for string",
			doc:  "[listen]\nc2s.port = 5222\n",
			key:  "listen.c2s", line: 2,
			msg: "listen.c2s: expected a string, got a table",
		},
		{
			name: "value for section",
			doc:  "log = \"debug\"\n",
			key:  "log", line: 1,
			msg: `log: expected a table, got string "debug"`,
		},
		{
			name: "string for admins",
			doc:  "[[host]]\ndomain = \"a.example\"\nadmins = \"root@a.example\"\n",
			key:  "host[0].admins", line: 3,
			msg: `host[0].admins: expected an array of strings, got string "root@a.example"`,
		},
		{
			name: "integer in admins",
			doc:  "[[host]]\ndomain = \"a.example\"\nadmins = [\n  \"root@a.example\",\n  42,\n]\n",
			key:  "host[0].admins[1]", line: 5,
			msg: "host[0].admins[1]: expected a string, got integer 42",
		},
		{
			name: "host as a table",
			doc:  "[host]\ndomain = \"a.example\"\n",
			key:  "host", line: 1,
			msg: "host: expected an array of tables ([[host]]), got a table",
		},
		{
			name: "host element not a table",
			doc:  "host = [\"a.example\"]\n",
			key:  "host[0]", line: 1,
			msg: `host[0]: expected a table, got string "a.example"`,
		},

		// Bad values caught while decoding.
		{
			name: "duration without unit",
			doc:  "[limits]\nauth_timeout = \"30\"\n",
			key:  "limits.auth_timeout", line: 2,
			msg: `limits.auth_timeout: invalid duration "30"`,
		},
		{
			name: "duration in days",
			doc:  "[server]\nshutdown_timeout = \"1d\"\n",
			key:  "server.shutdown_timeout", line: 2,
			msg: `server.shutdown_timeout: invalid duration "1d"`,
		},

		// Bad values caught by validation.
		{
			name: "address without port",
			doc:  "[listen]\n\nc2s = \"foo\"\n",
			key:  "listen.c2s", line: 3,
			msg: `listen.c2s: invalid address "foo"`,
		},
		{
			name: "port out of range",
			doc:  "[listen]\ns2s = \":65536\"\n",
			key:  "listen.s2s", line: 2,
			msg: `listen.s2s: invalid address ":65536"`,
		},
		{
			name: "named port",
			doc:  "[listen]\nhttp = \":http\"\n",
			key:  "listen.http", line: 2,
			msg: `listen.http: invalid address ":http"`,
		},
		{
			name: "bad listen host",
			doc:  "[listen]\nc2s_tls = \"bad host:5223\"\n",
			key:  "listen.c2s_tls", line: 2,
			msg: `listen.c2s_tls: invalid address "bad host:5223"`,
		},
		{
			name: "listeners on the same address",
			doc:  "[listen]\ns2s = \":5222\"\n",
			key:  "listen.s2s", line: 2,
			msg: `listen.s2s: address ":5222" is already used by listen.c2s`,
		},
		{
			name: "log level",
			doc:  "[log]\nlevel = \"verbose\"\n",
			key:  "log.level", line: 2,
			msg: `log.level: invalid value "verbose" (want one of "debug", "info", "warn", "error")`,
		},
		{
			name: "log format",
			doc:  "[log]\nformat = \"JSON\"\n",
			key:  "log.format", line: 2,
			msg: `log.format: invalid value "JSON"`,
		},
		{
			name: "tls version",
			doc:  "[tls]\nmin_version = \"1.0\"\n",
			key:  "tls.min_version", line: 2,
			msg: `tls.min_version: invalid value "1.0" (want one of "1.2", "1.3")`,
		},
		{
			name: "resource conflict",
			doc:  "[c2s]\nresource_conflict = \"kick_new\"\n",
			key:  "c2s.resource_conflict", line: 2,
			msg: `c2s.resource_conflict: invalid value "kick_new"`,
		},
		{
			name: "cert without key",
			doc:  "[tls]\ncert_file = \"/etc/ssl/c.pem\"\n",
			key:  "tls.cert_file", line: 2,
			msg: "tls.cert_file: tls.key_file must be set too",
		},
		{
			name: "key without cert",
			doc:  "[tls]\nrequire_c2s = true\nkey_file = \"/etc/ssl/k.pem\"\n",
			key:  "tls.key_file", line: 3,
			msg: "tls.key_file: tls.cert_file must be set too",
		},
		{
			name: "empty data dir",
			doc:  "[server]\ndata_dir = \"\"\n",
			key:  "server.data_dir", line: 2,
			msg: "server.data_dir: must not be empty",
		},
		{
			name: "negative duration",
			doc:  "[server]\nshutdown_timeout = \"-1s\"\n",
			key:  "server.shutdown_timeout", line: 2,
			msg: `server.shutdown_timeout: must not be negative, got "-1s"`,
		},
		{
			name: "negative idle timeout",
			doc:  "[limits]\nidle_timeout = \"-10m\"\n",
			key:  "limits.idle_timeout", line: 2,
			msg: `limits.idle_timeout: must not be negative`,
		},
		{
			name: "zero auth timeout",
			doc:  "[limits]\nauth_timeout = \"0s\"\n",
			key:  "limits.auth_timeout", line: 2,
			msg: `limits.auth_timeout: must be positive, got "0s"`,
		},
		{
			name: "stanza size below RFC minimum",
			doc:  "[limits]\nmax_stanza_size = 9999\n",
			key:  "limits.max_stanza_size", line: 2,
			msg: "limits.max_stanza_size: must be at least 10000",
		},
		{
			name: "zero sessions per user",
			doc:  "[limits]\nmax_sessions_per_user = 0\n",
			key:  "limits.max_sessions_per_user", line: 2,
			msg: "limits.max_sessions_per_user: must be at least 1, got 0",
		},
		{
			name: "negative connections per ip",
			doc:  "[limits]\nmax_connections_per_ip = -1\n",
			key:  "limits.max_connections_per_ip", line: 2,
			msg: "limits.max_connections_per_ip: must be at least 0, got -1",
		},
		{
			name: "negative rate",
			doc:  "[limits]\nrate_bytes_per_second = -5\n",
			key:  "limits.rate_bytes_per_second", line: 2,
			msg: "limits.rate_bytes_per_second: must be at least 0",
		},
		{
			name: "zero burst",
			doc:  "[limits]\nrate_burst_bytes = 0\n",
			key:  "limits.rate_burst_bytes", line: 2,
			msg: "limits.rate_burst_bytes: must be at least 1",
		},
		{
			name: "zero outbox stanzas",
			doc:  "[limits]\noutbox_stanzas = 0\n",
			key:  "limits.outbox_stanzas", line: 2,
			msg: "limits.outbox_stanzas: must be at least 1",
		},
		{
			name: "zero outbox bytes",
			doc:  "[limits]\noutbox_bytes = 0\n",
			key:  "limits.outbox_bytes", line: 2,
			msg: "limits.outbox_bytes: must be at least 1",
		},
		{
			name: "failure delay above its maximum",
			doc:  "[limits]\nauth_failure_delay = \"1m\"\n",
			key:  "limits.auth_failure_max_delay", line: 2, // the line of the key that was set
			msg: `limits.auth_failure_max_delay: must not be less than limits.auth_failure_delay (1m), got "30s"`,
		},
		{
			name: "uppercase domain",
			doc:  "[[host]]\ndomain = \"Example.org\"\n",
			key:  "host[0].domain", line: 2,
			msg: `host[0].domain: invalid domain "Example.org": must be lowercase`,
		},
		{
			name: "domain with bad character",
			doc:  "[[host]]\ndomain = \"my_host.example\"\n",
			key:  "host[0].domain", line: 2,
			msg: `host[0].domain: invalid domain "my_host.example": invalid character '_'`,
		},
		{
			name: "host without domain",
			doc:  "[log]\nlevel = \"info\"\n\n[[host]]\nregistration = true\n",
			key:  "host[0].domain", line: 4, // the [[host]] header
			msg: "host[0].domain: must not be empty",
		},
		{
			name: "duplicate domain",
			doc:  "[[host]]\ndomain = \"a.example\"\n\n[[host]]\ndomain = \"a.example\"\n",
			key:  "host[1].domain", line: 5,
			msg: `host[1].domain: duplicate domain "a.example" (also host[0])`,
		},
		{
			name: "no hosts",
			doc:  "# no hosts at all\n\nhost = []\n[log]\nlevel = \"info\"\n",
			key:  "host", line: 3,
			msg: "host: at least one [[host]] is required",
		},
		{
			name: "admin without localpart",
			doc:  "[[host]]\ndomain = \"a.example\"\nadmins = [\n  \"root@a.example\",\n  \"a.example\",\n]\n",
			key:  "host[0].admins[1]", line: 5,
			msg: `host[0].admins[1]: invalid bare JID "a.example": missing '@'`,
		},
		{
			name: "admin full JID",
			doc:  "[[host]]\ndomain = \"a.example\"\nadmins = [\"root@a.example/phone\"]\n",
			key:  "host[0].admins[0]", line: 3,
			msg: `host[0].admins[0]: invalid bare JID "root@a.example/phone": must not have a resource`,
		},
		{
			name: "admin uppercase",
			doc:  "[[host]]\ndomain = \"a.example\"\nadmins = [\"Root@a.example\"]\n",
			key:  "host[0].admins[0]", line: 3,
			msg: "localpart must be lowercase",
		},

		// Documents that are not valid TOML.
		{
			name: "unquoted address",
			doc:  "[listen]\nc2s = \":5222\"\ns2s = :5269\n",
			key:  "listen.s2s", line: 3,
			msg: "listen.s2s: unexpected character",
		},
		{
			name: "syntax error in multi-line array",
			doc:  "[[host]]\ndomain = \"a.example\"\nadmins = [\n  # the operators\n  \"root@a.example\",\n  ops@a.example,\n]\n",
			key:  "host[0].admins", line: 6,
			msg: "host[0].admins: ",
		},
		{
			name: "integer overflow",
			doc:  "[limits]\nmax_stanza_size = 99999999999999999999\n",
			key:  "limits.max_stanza_size", line: 2,
			msg: "limits.max_stanza_size: ",
		},
		{
			name: "duplicate key",
			doc:  "[log]\nlevel = \"info\"\nformat = \"text\"\nlevel = \"debug\"\n",
			key:  "log.level", line: 4,
			msg: "log.level: ",
		},
		{
			name: "duplicate table",
			doc:  "[log]\nlevel = \"info\"\n[log]\nformat = \"json\"\n",
			key:  "log", line: 3,
			msg: "already exists",
		},
		{
			name: "unterminated table header",
			doc:  "[log\nlevel = \"info\"\n",
			key:  "", line: 1,
		},
		{
			name: "unterminated string at end",
			doc:  "[log]\nlevel = \"info",
			key:  "log.level", line: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc), "test.toml")
			if err == nil {
				t.Fatalf("Parse succeeded, want an error about %q", tt.key)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("Parse returned a non-zero Config with an error")
			}
			errs := allFieldErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(errs), err)
			}
			fe := errs[0]
			if fe.Key != tt.key || fe.Line != tt.line || fe.File != "test.toml" {
				t.Errorf("error at %s:%d key %q, want test.toml:%d key %q\n%v", fe.File, fe.Line, fe.Key, tt.line, tt.key, err)
			}
			prefix := fmt.Sprintf("test.toml:%d: ", tt.line)
			if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.msg) ||
				!strings.Contains(msg, tt.key) && !strings.Contains(msg, strconv.Quote(tt.key)) {
				t.Errorf("error %q\nwant prefix %q, the key %q and %q", msg, prefix, tt.key, tt.msg)
			}
			if tt.key != "" && strings.Contains(tt.msg, "unknown key") != errors.Is(err, ErrUnknownKey) {
				t.Errorf("errors.Is(err, ErrUnknownKey) = %v", errors.Is(err, ErrUnknownKey))
			}
		})
	}
}

// TestParseReportsAllErrors pins the reporting policy: every decoding and
// validation problem at once, sorted by line, each once.
func TestParseReportsAllErrors(t *testing.T) {
	doc := `[server]
shutdown_timeout = "soon"

[limits]
max_stanza_size = 100
outbox_stanzas = "many"
bogus = 1

[[host]]
domain = "A.example"
`
	_, err := Parse([]byte(doc), "all.toml")
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	want := []string{
		`all.toml:2: server.shutdown_timeout: invalid duration "soon"`,
		`all.toml:5: limits.max_stanza_size: must be at least 10000`,
		`all.toml:6: limits.outbox_stanzas: expected an integer, got string "many"`,
		`all.toml:7: unknown key "limits.bogus"`,
		`all.toml:10: host[0].domain: invalid domain "A.example": must be lowercase`,
	}
	errs := allFieldErrors(t, err)
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, fe := range errs {
		if !strings.HasPrefix(fe.Error(), want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, fe.Error(), want[i])
		}
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) {
		t.Errorf("Error() has %d lines, want one per problem:\n%s", len(lines), err)
	}
}

func TestParseCapsErrors(t *testing.T) {
	var doc strings.Builder
	doc.WriteString("[limits]\n")
	for i := range MaxReportedErrors + 10 {
		fmt.Fprintf(&doc, "unknown_%d = 1\n", i)
	}
	_, err := Parse([]byte(doc.String()), "many.toml")
	errs := allFieldErrors(t, err)
	if len(errs) != MaxReportedErrors+1 {
		t.Fatalf("got %d errors, want %d", len(errs), MaxReportedErrors+1)
	}
	if errs[0].Line != 2 || errs[MaxReportedErrors-1].Line != MaxReportedErrors+1 {
		t.Errorf("errors not sorted by line: first at %d, last at %d", errs[0].Line, errs[MaxReportedErrors-1].Line)
	}
	if got, want := errs[MaxReportedErrors].Error(), "many.toml: 10 more problems not shown"; got != want {
		t.Errorf("last error = %q, want %q", got, want)
	}
}

// TestParseSyntaxErrorStops pins that a TOML syntax error is the only error
// reported, even when other lines have problems.
func TestParseSyntaxErrorStops(t *testing.T) {
	doc := "bogus = 1\n[limits]\nmax_stanza_size = 1\nauth_timeout = 30s\n"
	_, err := Parse([]byte(doc), "syntax.toml")
	errs := allFieldErrors(t, err)
	if len(errs) != 1 || errs[0].Line != 4 || errs[0].Key != "limits.auth_timeout" {
		t.Fatalf("got %v, want one syntax error at line 4 (limits.auth_timeout)", err)
	}
}

func TestValidationErrorLines(t *testing.T) {
	// A problem between a file value and a default is located at the
	// file's key.
	doc := "[limits]\nauth_failure_max_delay = \"0s\"\n"
	_, err := Parse([]byte(doc), "x.toml")
	errs := allFieldErrors(t, err)
	if len(errs) != 1 || errs[0].Line != 2 {
		t.Fatalf("got %v, want one error at line 2", err)
	}

	// A problem found by Validate outside Parse has neither file nor line.
	c := Defaults()
	c.SetDomains([]string{"Bad_Domain"})
	err = c.Validate()
	errs = allFieldErrors(t, err)
	if len(errs) != 1 || errs[0].Line != 0 || errs[0].File != "" {
		t.Fatalf("got %#v, want one error without file and line", errs)
	}
	if got, want := err.Error(), `host[0].domain: invalid domain "Bad_Domain": must be lowercase`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "switchboard.toml")
	doc := "[[host]]\ndomain = \"example.org\"\nadmins = [\"admin@example.org\"]\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Domains(); !reflect.DeepEqual(got, []string{"example.org"}) {
		t.Errorf("Domains() = %q", got)
	}

	if err := os.WriteFile(path, []byte("[limits]\nmax_stanza_size = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":2: limits.max_stanza_size: ") {
		t.Errorf("Load(bad) = %v, want an error at %s:2", err, path)
	}

	_, err = Load(filepath.Join(dir, "missing.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}

// TestMarshalRoundTrip checks that a Config written with go-toml reads back
// identically, so the effective configuration can be printed.
func TestMarshalRoundTrip(t *testing.T) {
	c := Defaults()
	c.Limits.IdleTimeout = Duration(90 * time.Minute)
	c.Limits.AuthFailureDelay = Duration(1500 * time.Millisecond)
	c.SetDomains([]string{"a.example", "b.example"})
	c.Hosts[1].Admins = []string{"root@b.example"}
	data, err := toml.Marshal(c)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := Parse(data, "marshalled")
	if err != nil {
		t.Fatalf("Parse(Marshal(c)): %v\n%s", err, data)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v\n%s", back, c, data)
	}
	if !strings.Contains(string(data), `idle_timeout = '1h30m'`) {
		t.Errorf("durations are not written as strings:\n%s", data)
	}
}

// A long string value in an error is cut to 40 bytes with a mark, a
// character astride the cut left out whole.
func TestDescribeCutsLongStrings(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"short", `string "short"`},
		{strings.Repeat("a", 40), `string "` + strings.Repeat("a", 40) + `"`},
		{strings.Repeat("a", 41), `string "` + strings.Repeat("a", 40) + `…"`},
		{strings.Repeat("a", 39) + "é" + "bc", `string "` + strings.Repeat("a", 39) + `…"`},
		{strings.Repeat("a", 38) + "é" + "bc", `string "` + strings.Repeat("a", 38) + `é…"`},
	} {
		if got := describe(tc.in); got != tc.want {
			t.Errorf("describe(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
