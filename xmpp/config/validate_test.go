package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		keys   []string // keys of the expected errors, in order; none = valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"all listeners disabled", func(c *Config) { c.Listen = Listen{AdminSocket: "-"} }, nil},
		{"ephemeral ports may repeat", func(c *Config) { c.Listen.C2S, c.Listen.S2S = "127.0.0.1:0", "127.0.0.1:0" }, nil},
		{"ipv6 with zone", func(c *Config) { c.Listen.C2S = "[fe80::1%eth0]:5222" }, nil},
		{"idle timeout disabled", func(c *Config) { c.Limits.IdleTimeout = 0 }, nil},
		{"normal archive commit priority", func(c *Config) { c.Server.ArchiveCommitPriority = PriorityNormal }, nil},
		{"no failure delay", func(c *Config) { c.Limits.AuthFailureDelay, c.Limits.AuthFailureMaxDelay = 0, 0 }, nil},
		{"unlimited connections", func(c *Config) { c.Limits.MaxConnectionsPerIP = 0 }, nil},
		{"minimum stanza size", func(c *Config) { c.Limits.MaxStanzaSize = MinStanzaSize }, nil},
		{"admins on other domains", func(c *Config) { c.Hosts[0].Admins = []string{"ops@example.net", "éva@localhost"} }, nil},
		{"ip address domain", func(c *Config) { c.Hosts[0].Domain = "192.0.2.1" }, nil},
		{"punycode domain", func(c *Config) { c.Hosts[0].Domain = "xn--bcher-kva.example" }, nil},

		{"components", func(c *Config) {
			c.Components = []Component{{Domain: "gw.localhost", Secret: "s"}, {Domain: "bots.example", Secret: "t"}}
		}, nil},
		{"component listener on the s2s address", func(c *Config) { c.Listen.Component = ":5269" }, []string{"listen.component"}},
		{"component without domain or secret", func(c *Config) { c.Components = []Component{{}} },
			[]string{"component[0].domain", "component[0].secret"}},
		{"component on a host's domain", func(c *Config) { c.Components = []Component{{Domain: "localhost", Secret: "s"}} },
			[]string{"component[0].domain"}},
		{"component twice", func(c *Config) {
			c.Components = []Component{{Domain: "gw.localhost", Secret: "s"}, {Domain: "gw.localhost", Secret: "t"}}
		}, []string{"component[1].domain"}},
		{"component domain uppercase", func(c *Config) { c.Components = []Component{{Domain: "GW.localhost", Secret: "s"}} },
			[]string{"component[0].domain"}},
		{"component secret with NUL", func(c *Config) { c.Components = []Component{{Domain: "gw.localhost", Secret: "a\x00"}} },
			[]string{"component[0].secret"}},

		{"empty data dir", func(c *Config) { c.Server.DataDir = "" }, []string{"server.data_dir"}},
		{"nul in data dir", func(c *Config) { c.Server.DataDir = "a\x00b" }, []string{"server.data_dir"}},
		{"negative shutdown", func(c *Config) { c.Server.ShutdownTimeout = -1 }, []string{"server.shutdown_timeout"}},
		{"unknown archive commit priority", func(c *Config) { c.Server.ArchiveCommitPriority = "low" }, []string{"server.archive_commit_priority"}},
		{"empty archive commit priority", func(c *Config) { c.Server.ArchiveCommitPriority = "" }, []string{"server.archive_commit_priority"}},
		{"empty log level", func(c *Config) { c.Log.Level = "" }, []string{"log.level"}},
		{"uppercase log format", func(c *Config) { c.Log.Format = "TEXT" }, []string{"log.format"}},
		{"bad address", func(c *Config) { c.Listen.HTTP = "localhost" }, []string{"listen.http"}},
		{"empty port", func(c *Config) { c.Listen.C2S = "localhost:" }, []string{"listen.c2s"}},
		{"signed port", func(c *Config) { c.Listen.C2S = ":+5222" }, []string{"listen.c2s"}},
		{"too many colons", func(c *Config) { c.Listen.S2S = "::1:5269" }, []string{"listen.s2s"}},
		{"same address twice", func(c *Config) { c.Listen.HTTP = ":5269" }, []string{"listen.http"}},
		{"nul in admin socket", func(c *Config) { c.Listen.AdminSocket = "a\x00" }, []string{"listen.admin_socket"}},
		{"cert only", func(c *Config) { c.TLS.CertFile = "c.pem" }, []string{"tls.cert_file"}},
		{"key only", func(c *Config) { c.TLS.KeyFile = "k.pem" }, []string{"tls.key_file"}},
		{"tls 1.1", func(c *Config) { c.TLS.MinVersion = "1.1" }, []string{"tls.min_version"}},
		{"small stanza size", func(c *Config) { c.Limits.MaxStanzaSize = MinStanzaSize - 1 }, []string{"limits.max_stanza_size"}},
		{"zero auth timeout", func(c *Config) { c.Limits.AuthTimeout = 0 }, []string{"limits.auth_timeout"}},
		{"negative idle timeout", func(c *Config) { c.Limits.IdleTimeout = Duration(-time.Second) }, []string{"limits.idle_timeout"}},
		{"negative rate", func(c *Config) { c.Limits.RateBytesPerSecond = -1 }, []string{"limits.rate_bytes_per_second"}},
		{"zero burst", func(c *Config) { c.Limits.RateBurstBytes = 0 }, []string{"limits.rate_burst_bytes"}},
		{"zero sessions", func(c *Config) { c.Limits.MaxSessionsPerUser = 0 }, []string{"limits.max_sessions_per_user"}},
		{"negative connections", func(c *Config) { c.Limits.MaxConnectionsPerIP = -1 }, []string{"limits.max_connections_per_ip"}},
		{"zero outbox", func(c *Config) { c.Limits.OutboxStanzas, c.Limits.OutboxBytes = 0, 0 }, []string{"limits.outbox_stanzas", "limits.outbox_bytes"}},
		{"negative failure delays", func(c *Config) { c.Limits.AuthFailureDelay, c.Limits.AuthFailureMaxDelay = -1, -1 },
			[]string{"limits.auth_failure_delay", "limits.auth_failure_max_delay"}},
		{"max delay below delay", func(c *Config) { c.Limits.AuthFailureMaxDelay = Duration(time.Millisecond) }, []string{"limits.auth_failure_max_delay"}},
		{"bad resource conflict", func(c *Config) { c.C2S.ResourceConflict = "" }, []string{"c2s.resource_conflict"}},
		{"negative resume timeout", func(c *Config) { c.C2S.ResumeTimeout = -1 }, []string{"c2s.resume_timeout"}},
		{"resume timeout over a day", func(c *Config) { c.C2S.ResumeTimeout = Duration(25 * time.Hour) }, []string{"c2s.resume_timeout"}},
		{"resumption off", func(c *Config) { c.C2S.ResumeTimeout = 0 }, nil},
		{"zero csi queue", func(c *Config) { c.C2S.CSIQueue = 0 }, []string{"c2s.csi_queue"}},
		{"csi queue as long as the outbox", func(c *Config) { c.C2S.CSIQueue = c.Limits.OutboxStanzas }, nil},
		{"csi off, its queue unchecked", func(c *Config) { c.C2S.CSI, c.C2S.CSIQueue = false, 0 }, nil},
		{"upload settings", func(c *Config) {
			c.Upload = Upload{MaxFileSize: 1, ExpireAfter: Duration(time.Hour), PublicURL: "https://chat.example.org:8443/files/", Dir: "/srv/up"}
			c.Hosts[0].UploadDomain = "-"
		}, nil},
		{"zero max file size", func(c *Config) { c.Upload.MaxFileSize = 0 }, []string{"upload.max_file_size"}},
		{"negative upload quota", func(c *Config) { c.Upload.Quota = -1 }, []string{"upload.quota"}},
		{"negative upload expiry", func(c *Config) { c.Upload.ExpireAfter = -1 }, []string{"upload.expire_after"}},
		{"http public url", func(c *Config) { c.Upload.PublicURL = "http://chat.example.org" }, []string{"upload.public_url"}},
		{"public url without host", func(c *Config) { c.Upload.PublicURL = "https:///x" }, []string{"upload.public_url"}},
		{"public url with query", func(c *Config) { c.Upload.PublicURL = "https://a.example/?x=1" }, []string{"upload.public_url"}},
		{"unparsable public url", func(c *Config) { c.Upload.PublicURL = "https://a.example/%zz" }, []string{"upload.public_url"}},
		{"nul in upload dir", func(c *Config) { c.Upload.Dir = "a\x00" }, []string{"upload.dir"}},
		{"bad upload domain", func(c *Config) { c.Hosts[0].UploadDomain = "Upload.localhost" }, []string{"host[0].upload_domain"}},
		{"directory settings", func(c *Config) { c.Directory = Directory{VCardMaxBytes: 1, MaxResults: 1} }, nil},
		{"zero vcard size", func(c *Config) { c.Directory.VCardMaxBytes = 0 }, []string{"directory.vcard_max_bytes"}},
		{"negative max results", func(c *Config) { c.Directory.MaxResults = -1 }, []string{"directory.max_results"}},
		{"negative s2s per-IP limit", func(c *Config) { c.S2S.MaxInboundPerIP = -1 }, []string{"s2s.max_inbound_per_ip"}},
		{"private settings", func(c *Config) { c.Private.MaxBytes = 1 }, nil},
		{"zero private size", func(c *Config) { c.Private.MaxBytes = 0 }, []string{"private.max_bytes"}},
		{"push settings", func(c *Config) { c.Push = Push{MaxPerAccount: 1, MaxErrors: 1, Timeout: Duration(time.Second)} }, nil},
		{"push bounds", func(c *Config) { c.Push = Push{Timeout: Duration(-time.Second)} },
			[]string{"push.max_per_account", "push.max_errors", "push.timeout"}},
		{"bosh settings", func(c *Config) {
			c.BOSH = BOSH{MaxWait: Duration(time.Second), Inactivity: Duration(time.Second), MaxBodySize: c.Limits.MaxStanzaSize + BOSHWrapperSize}
		}, nil},
		{"bosh bounds", func(c *Config) {
			c.BOSH = BOSH{MaxWait: 0, Inactivity: Duration(500 * time.Millisecond), MaxBodySize: 1000}
		},
			[]string{"bosh.max_wait", "bosh.inactivity", "bosh.max_body_size"}},
		{"bosh body below a raised stanza size", func(c *Config) { c.Limits.MaxStanzaSize = 2 << 20 }, []string{"bosh.max_body_size"}},
		{"bosh body without room for the wrapper", func(c *Config) { c.BOSH.MaxBodySize = c.Limits.MaxStanzaSize }, []string{"bosh.max_body_size"}},
		{"no hosts", func(c *Config) { c.Hosts = nil }, []string{"host"}},
		{"empty domain", func(c *Config) { c.Hosts[0].Domain = "" }, []string{"host[0].domain"}},
		{"trailing dot", func(c *Config) { c.Hosts[0].Domain = "example.org." }, []string{"host[0].domain"}},
		{"hyphen label", func(c *Config) { c.Hosts[0].Domain = "-a.example" }, []string{"host[0].domain"}},
		{"long label", func(c *Config) { c.Hosts[0].Domain = strings.Repeat("a", 64) + ".example" }, []string{"host[0].domain"}},
		{"long domain", func(c *Config) { c.Hosts[0].Domain = strings.Repeat("a.", 127) + "ab" }, []string{"host[0].domain"}},
		{"unicode domain", func(c *Config) { c.Hosts[0].Domain = "bücher.example" }, []string{"host[0].domain"}},
		{"domain with port", func(c *Config) { c.Hosts[0].Domain = "example.org:5222" }, []string{"host[0].domain"}},
		{"duplicate domains", func(c *Config) { c.SetDomains([]string{"a.example", "b.example", "a.example"}) }, []string{"host[2].domain"}},
		{"bad admins", func(c *Config) {
			c.Hosts[0].Admins = []string{"ok@localhost", "@localhost", "a@", "a b@localhost", "a@b@localhost", "x@LOCALHOST", "x@localhost/r", "\xff@localhost"}
		}, []string{"host[0].admins[1]", "host[0].admins[2]", "host[0].admins[3]", "host[0].admins[4]", "host[0].admins[5]", "host[0].admins[6]", "host[0].admins[7]"}},
		{"errors in schema order", func(c *Config) {
			c.Hosts[0].Domain = ""
			c.Log.Level = "x"
			c.Server.DataDir = ""
			c.Limits.OutboxBytes = 0
		}, []string{"server.data_dir", "log.level", "limits.outbox_bytes", "host[0].domain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.mutate(&c)
			err := c.Validate()
			errs := allFieldErrors(t, err)
			var keys []string
			for _, e := range errs {
				keys = append(keys, e.Key)
				if e.File != "" || e.Line != 0 {
					t.Errorf("Validate error %q has a location", e)
				}
				if !strings.HasPrefix(e.Error(), e.Key+": ") {
					t.Errorf("error %q does not start with its key", e)
				}
			}
			if strings.Join(keys, " ") != strings.Join(tt.keys, " ") {
				t.Fatalf("Validate() error keys = %q, want %q\n%v", keys, tt.keys, err)
			}
		})
	}
}

func TestSectionValidate(t *testing.T) {
	h := Host{Domain: "a.example", Admins: []string{"nope"}}
	err := h.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "host.admins[0]" {
		t.Fatalf("Host.Validate() = %v, want an error for host.admins[0]", err)
	}
	l := LimitsDefaults()
	l.MaxStanzaSize = 1
	if err := l.Validate(); !errors.As(err, &fe) || fe.Key != "limits.max_stanza_size" {
		t.Fatalf("Limits.Validate() = %v, want an error for limits.max_stanza_size", err)
	}
}

func TestCheckAddress(t *testing.T) {
	tests := []struct {
		addr string
		port int
		ok   bool
	}{
		{":5222", 5222, true},
		{"0.0.0.0:1", 1, true},
		{"[::]:65535", 65535, true},
		{"localhost:0", 0, true},
		{"xmpp.example.org:5269", 5269, true},
		{"foo", 0, false},
		{":", 0, false},
		{":-1", 0, false},
		{":65536", 0, false},
		{":0x10", 0, false},
		{"[::1:5222", 0, false},
		{"under_score:5222", 0, false},
		{"a b:1", 0, false},
	}
	for _, tt := range tests {
		port, err := checkAddress(tt.addr)
		if (err == nil) != tt.ok || port != tt.port {
			t.Errorf("checkAddress(%q) = %d, %v; want %d, ok=%v", tt.addr, port, err, tt.port, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), `invalid address "`+tt.addr+`"`) {
			t.Errorf("checkAddress(%q) error %q does not quote the address", tt.addr, err)
		}
	}
}
