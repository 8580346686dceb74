package config

import (
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func TestDefaultsValid(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
	sections := []struct {
		name string
		err  error
	}{
		{"server", ServerDefaults().Validate()},
		{"log", LogDefaults().Validate()},
		{"listen", ListenDefaults().Validate()},
		{"tls", TLSDefaults().Validate()},
		{"limits", LimitsDefaults().Validate()},
		{"c2s", C2SDefaults().Validate()},
		{"upload", UploadDefaults().Validate()},
		{"host", HostDefaults("example.org").Validate()},
	}
	for _, s := range sections {
		if s.err != nil {
			t.Errorf("%s defaults: %v", s.name, s.err)
		}
	}
	if got := c.Domains(); !slices.Equal(got, []string{"localhost"}) {
		t.Errorf("Defaults().Domains() = %q, want [localhost]", got)
	}
}

func TestDefaultsAreFresh(t *testing.T) {
	a := Defaults()
	a.Hosts[0].Domain = "changed.example"
	a.Hosts[0].Admins = append(a.Hosts[0].Admins, "x@changed.example")
	if b := Defaults(); b.Hosts[0].Domain != "localhost" || len(b.Hosts[0].Admins) != 0 {
		t.Fatalf("Defaults() shares state between calls: %+v", b.Hosts)
	}
}

func TestHost(t *testing.T) {
	c := Defaults()
	c.Hosts = []Host{
		{Domain: "a.example", Admins: []string{"root@a.example"}},
		{Domain: "b.example", Registration: true, Admins: []string{}},
	}
	tests := []struct {
		name   string
		domain string
		want   Host
		ok     bool
	}{
		{"first", "a.example", c.Hosts[0], true},
		{"second", "b.example", c.Hosts[1], true},
		{"case-insensitive", "B.Example", c.Hosts[1], true},
		{"missing", "c.example", Host{}, false},
		{"empty", "", Host{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := c.Host(tt.domain)
			if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Host(%q) = %+v, %v; want %+v, %v", tt.domain, got, ok, tt.want, tt.ok)
			}
		})
	}
	h, _ := c.Host("a.example")
	h.Admins[0] = "mallory@a.example"
	if c.Hosts[0].Admins[0] != "root@a.example" {
		t.Fatal("Host returned admins sharing memory with the Config")
	}
}

func TestPaths(t *testing.T) {
	dataDir := filepath.Join("var", "lib", "switchboard")
	tests := []struct {
		name        string
		adminSocket string
		certFile    string
		keyFile     string
		wantSocket  string
		wantCert    string
		wantKey     string
		wantSelf    bool
	}{
		{
			name:       "defaults",
			wantSocket: filepath.Join(dataDir, "admin.sock"),
			wantCert:   filepath.Join(dataDir, "tls-cert.pem"),
			wantKey:    filepath.Join(dataDir, "tls-key.pem"),
			wantSelf:   true,
		},
		{
			name:        "explicit",
			adminSocket: "/run/switchboard.sock",
			certFile:    "/etc/ssl/chain.pem",
			keyFile:     "/etc/ssl/key.pem",
			wantSocket:  "/run/switchboard.sock",
			wantCert:    "/etc/ssl/chain.pem",
			wantKey:     "/etc/ssl/key.pem",
		},
		{
			name:        "socket disabled",
			adminSocket: "-",
			wantSocket:  "",
			wantCert:    filepath.Join(dataDir, "tls-cert.pem"),
			wantKey:     filepath.Join(dataDir, "tls-key.pem"),
			wantSelf:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			c.Server.DataDir = dataDir
			c.Listen.AdminSocket = tt.adminSocket
			c.TLS.CertFile, c.TLS.KeyFile = tt.certFile, tt.keyFile
			if got := c.AdminSocketPath(); got != tt.wantSocket {
				t.Errorf("AdminSocketPath() = %q, want %q", got, tt.wantSocket)
			}
			if got, want := c.DBPath(), filepath.Join(dataDir, "switchboard.db"); got != want {
				t.Errorf("DBPath() = %q, want %q", got, want)
			}
			cert, key, self := c.CertFiles()
			if cert != tt.wantCert || key != tt.wantKey || self != tt.wantSelf {
				t.Errorf("CertFiles() = %q, %q, %v; want %q, %q, %v", cert, key, self, tt.wantCert, tt.wantKey, tt.wantSelf)
			}
		})
	}
}

func TestSetDomains(t *testing.T) {
	base := Defaults()
	base.Hosts = []Host{
		{Domain: "localhost", Registration: true, Admins: []string{"admin@localhost"}},
		{Domain: "old.example", Admins: []string{}},
	}
	tests := []struct {
		name    string
		domains []string
		want    []Host
	}{
		{
			name:    "keeps existing settings",
			domains: []string{"localhost"},
			want:    []Host{{Domain: "localhost", Registration: true, Admins: []string{"admin@localhost"}}},
		},
		{
			name:    "new domains get defaults, in order",
			domains: []string{"new.example", "localhost"},
			want: []Host{
				HostDefaults("new.example"),
				{Domain: "localhost", Registration: true, Admins: []string{"admin@localhost"}},
			},
		},
		{
			name:    "differently cased domain is a new host",
			domains: []string{"LOCALHOST"},
			want:    []Host{HostDefaults("LOCALHOST")},
		},
		{
			name:    "empty list",
			domains: nil,
			want:    []Host{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Hosts = slices.Clone(base.Hosts)
			c.SetDomains(tt.domains)
			if !reflect.DeepEqual(c.Hosts, tt.want) {
				t.Fatalf("after SetDomains(%q): hosts = %+v, want %+v", tt.domains, c.Hosts, tt.want)
			}
			if !slices.Equal(c.Domains(), tt.domains) && len(tt.domains) != 0 {
				t.Fatalf("Domains() = %q, want %q", c.Domains(), tt.domains)
			}
		})
	}

	c := Defaults()
	c.SetDomains([]string{"a.example", "a.example"})
	if err := c.Validate(); err == nil {
		t.Error("Validate accepted duplicate domains from SetDomains")
	}
	c.SetDomains(nil)
	if err := c.Validate(); err == nil {
		t.Error("Validate accepted a config without hosts")
	}
}

func TestSetRegistration(t *testing.T) {
	shared := Defaults()
	shared.SetDomains([]string{"a.example", "b.example"})
	c := shared
	c.SetRegistration(true)
	for _, h := range c.Hosts {
		if !h.Registration {
			t.Errorf("host %s: registration closed after SetRegistration(true)", h.Domain)
		}
	}
	for _, h := range shared.Hosts {
		if h.Registration {
			t.Fatalf("SetRegistration modified a copy's hosts (%s)", h.Domain)
		}
	}
	c.SetRegistration(false)
	for _, h := range c.Hosts {
		if h.Registration {
			t.Errorf("host %s: registration open after SetRegistration(false)", h.Domain)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	tests := []struct {
		level string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
		{"bogus", slog.LevelInfo},
	}
	for _, tt := range tests {
		if got := (Log{Level: tt.level}).SlogLevel(); got != tt.want {
			t.Errorf("Log{Level: %q}.SlogLevel() = %v, want %v", tt.level, got, tt.want)
		}
	}
}

func TestMinTLSVersion(t *testing.T) {
	tests := []struct {
		version string
		want    uint16
	}{
		{"1.2", tls.VersionTLS12},
		{"1.3", tls.VersionTLS13},
		{"", tls.VersionTLS12},
	}
	for _, tt := range tests {
		if got := (TLS{MinVersion: tt.version}).MinTLSVersion(); got != tt.want {
			t.Errorf("TLS{MinVersion: %q}.MinTLSVersion() = %#x, want %#x", tt.version, got, tt.want)
		}
	}
}

func TestUploadPaths(t *testing.T) {
	c := Defaults()
	c.Server.DataDir = "/var/lib/sb"
	if got := c.UploadDir(); got != filepath.Join("/var/lib/sb", "uploads") {
		t.Errorf("UploadDir() = %q", got)
	}
	if got := c.UploadBaseURL("example.org", 5443); got != "https://example.org:5443" {
		t.Errorf("UploadBaseURL default = %q", got)
	}
	c.Upload.Dir, c.Upload.PublicURL = "/srv/files", "https://chat.example.org/x/"
	if got := c.UploadDir(); got != "/srv/files" {
		t.Errorf("UploadDir() with upload.dir = %q", got)
	}
	if got := c.UploadBaseURL("example.org", 5443); got != "https://chat.example.org/x" {
		t.Errorf("UploadBaseURL with public_url = %q", got)
	}
	h := HostDefaults("example.org")
	if got := h.ServiceDomain(h.UploadDomain, "upload"); got != "upload.example.org" {
		t.Errorf("default upload domain = %q", got)
	}
}
