package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Validate checks the whole configuration. It returns nil or every problem
// found, as [*FieldError]s joined with errors.Join, in schema order.
func (c *Config) Validate() error {
	var p problems
	c.Server.validate(&p)
	c.Log.validate(&p)
	c.Listen.validate(&p)
	c.TLS.validate(&p)
	c.Limits.validate(&p)
	c.C2S.validate(&p)
	c.S2S.validate(&p)
	c.Upload.validate(&p)
	c.PEP.validate(&p)
	c.Private.validate(&p)
	c.Push.validate(&p)
	c.BOSH.validate(&p, c.Limits)
	c.Directory.validate(&p)
	validateHosts(&p, c.Hosts)
	validateComponents(&p, c.Components, c.Hosts)
	return p.err()
}

// Validate checks [server].
func (s Server) Validate() error { return validated(s.validate) }

// Validate checks [log].
func (l Log) Validate() error { return validated(l.validate) }

// Validate checks [listen].
func (l Listen) Validate() error { return validated(l.validate) }

// Validate checks [tls].
func (t TLS) Validate() error { return validated(t.validate) }

// Validate checks [limits].
func (l Limits) Validate() error { return validated(l.validate) }

// Validate checks [c2s].
func (c C2S) Validate() error { return validated(c.validate) }

// Validate checks [s2s].
func (s S2S) Validate() error { return validated(s.validate) }

// Validate checks [upload].
func (u Upload) Validate() error { return validated(u.validate) }

// Validate checks [pep].
func (e PEP) Validate() error { return validated(e.validate) }

// Validate checks [private].
func (e Private) Validate() error { return validated(e.validate) }

// Validate checks [push].
func (e Push) Validate() error { return validated(e.validate) }

// Validate checks [directory].
func (d Directory) Validate() error { return validated(d.validate) }

// Validate checks one [[host]] table; keys are reported as "host.<key>".
func (h Host) Validate() error {
	var p problems
	h.validate(&p, "host")
	return p.err()
}

func validated(check func(*problems)) error {
	var p problems
	check(&p)
	return p.err()
}

func (s Server) validate(p *problems) {
	switch {
	case s.DataDir == "":
		p.add("server.data_dir", "must not be empty")
	case strings.ContainsRune(s.DataDir, 0):
		p.add("server.data_dir", "must not contain NUL")
	}
	nonNegative(p, "server.shutdown_timeout", s.ShutdownTimeout)
	oneOf(p, "server.archive_commit_priority", s.ArchiveCommitPriority, PriorityIdle, PriorityNormal)
}

func (l Log) validate(p *problems) {
	oneOf(p, "log.level", l.Level, LevelDebug, LevelInfo, LevelWarn, LevelError)
	oneOf(p, "log.format", l.Format, FormatText, FormatJSON)
}

func (l Listen) validate(p *problems) {
	addrs := []struct{ key, addr string }{
		{"listen.c2s", l.C2S},
		{"listen.c2s_tls", l.C2STLS},
		{"listen.s2s", l.S2S},
		{"listen.http", l.HTTP},
		{"listen.component", l.Component},
	}
	seen := make(map[string]string, len(addrs)) // address → key
	for _, a := range addrs {
		if a.addr == "" {
			continue
		}
		port, err := checkAddress(a.addr)
		if err != nil {
			p.addErr(a.key, err)
			continue
		}
		if port == 0 {
			continue // ephemeral ports never collide
		}
		if prev, ok := seen[a.addr]; ok {
			p.addAlso(a.key, []string{prev}, "address %q is already used by %s", a.addr, prev)
			continue
		}
		seen[a.addr] = a.key
	}
	if strings.ContainsRune(l.AdminSocket, 0) {
		p.add("listen.admin_socket", "must not contain NUL")
	}
}

func (t TLS) validate(p *problems) {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		p.addAlso("tls.cert_file", []string{"tls.key_file"}, "tls.key_file must be set too (or both left empty for a self-signed certificate)")
	case t.CertFile == "" && t.KeyFile != "":
		p.addAlso("tls.key_file", []string{"tls.cert_file"}, "tls.cert_file must be set too (or both left empty for a self-signed certificate)")
	}
	if strings.ContainsRune(t.CertFile, 0) {
		p.add("tls.cert_file", "must not contain NUL")
	}
	if strings.ContainsRune(t.KeyFile, 0) {
		p.add("tls.key_file", "must not contain NUL")
	}
	oneOf(p, "tls.min_version", t.MinVersion, TLS12, TLS13)
}

func (l Limits) validate(p *problems) {
	if l.MaxStanzaSize < MinStanzaSize {
		p.add("limits.max_stanza_size", "must be at least %d (RFC 6120 §13.12), got %d", MinStanzaSize, l.MaxStanzaSize)
	}
	if l.AuthTimeout <= 0 {
		p.add("limits.auth_timeout", "must be positive, got %q", l.AuthTimeout)
	}
	nonNegative(p, "limits.idle_timeout", l.IdleTimeout)
	atLeast(p, "limits.rate_bytes_per_second", l.RateBytesPerSecond, 0)
	atLeast(p, "limits.rate_burst_bytes", l.RateBurstBytes, 1)
	atLeast(p, "limits.max_sessions_per_user", l.MaxSessionsPerUser, 1)
	atLeast(p, "limits.max_connections_per_ip", l.MaxConnectionsPerIP, 0)
	atLeast(p, "limits.outbox_stanzas", l.OutboxStanzas, 1)
	atLeast(p, "limits.outbox_bytes", l.OutboxBytes, 1)
	nonNegative(p, "limits.auth_failure_delay", l.AuthFailureDelay)
	nonNegative(p, "limits.auth_failure_max_delay", l.AuthFailureMaxDelay)
	if l.AuthFailureDelay >= 0 && l.AuthFailureMaxDelay >= 0 && l.AuthFailureMaxDelay < l.AuthFailureDelay {
		p.addAlso("limits.auth_failure_max_delay", []string{"limits.auth_failure_delay"},
			"must not be less than limits.auth_failure_delay (%s), got %q", l.AuthFailureDelay, l.AuthFailureMaxDelay)
	}
}

func (c C2S) validate(p *problems) {
	oneOf(p, "c2s.resource_conflict", c.ResourceConflict, KickOld, Refuse, Random)
	nonNegative(p, "c2s.resume_timeout", c.ResumeTimeout)
	if c.ResumeTimeout > Duration(MaxResumeTimeout) {
		p.add("c2s.resume_timeout", "must be at most %s, got %q", Duration(MaxResumeTimeout), c.ResumeTimeout)
	}
	atLeast(p, "c2s.resume_counts_kept", c.ResumeCountsKept, 0)
	nonNegative(p, "c2s.max_ack_delay", c.MaxAckDelay)
	if c.CSI {
		atLeast(p, "c2s.csi_queue", c.CSIQueue, 1)
	}
}

func (s S2S) validate(p *problems) {
	if s.ConnectTimeout.Duration() <= 0 {
		p.add("s2s.connect_timeout", "must be positive, got %s", s.ConnectTimeout.Duration())
	}
	if s.IdleTimeout.Duration() <= 0 {
		p.add("s2s.idle_timeout", "must be positive, got %s", s.IdleTimeout.Duration())
	}
	if s.QueueStanzas < 1 {
		p.add("s2s.queue_stanzas", "must be at least 1, got %d", s.QueueStanzas)
	}
	if s.QueueBytes < MinStanzaSize {
		p.add("s2s.queue_bytes", "must be at least %d, got %d", MinStanzaSize, s.QueueBytes)
	}
	if s.MaxInbound < 0 {
		p.add("s2s.max_inbound", "must be at least 0, got %d", s.MaxInbound)
	}
	if s.MaxInboundPerIP < 0 {
		p.add("s2s.max_inbound_per_ip", "must be at least 0, got %d", s.MaxInboundPerIP)
	}
	if s.MaxOutbound < 1 {
		p.add("s2s.max_outbound", "must be at least 1, got %d", s.MaxOutbound)
	}
	for _, list := range []struct {
		key     string
		domains []string
	}{{"s2s.allow", s.Allow}, {"s2s.deny", s.Deny}} {
		for _, d := range list.domains {
			if err := checkDomain(d); err != nil {
				p.addErr(list.key, err)
			}
		}
	}
	for d, addr := range s.Routes {
		if err := checkDomain(d); err != nil {
			p.addErr("s2s.routes", err)
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			p.add("s2s.routes", "%s: %q is not host:port", d, addr)
		}
	}
}

func (u Upload) validate(p *problems) {
	if u.MaxFileSize < 1 {
		p.add("upload.max_file_size", "must be at least 1, got %d", u.MaxFileSize)
	}
	if u.Quota < 0 {
		p.add("upload.quota", "must be at least 0, got %d", u.Quota)
	}
	nonNegative(p, "upload.expire_after", u.ExpireAfter)
	if u.PublicURL != "" {
		if err := checkPublicURL(u.PublicURL); err != nil {
			p.addErr("upload.public_url", err)
		}
	}
	if strings.ContainsRune(u.Dir, 0) {
		p.add("upload.dir", "must not contain NUL")
	}
}

func (e PEP) validate(p *problems) {
	if e.MaxNodes < 1 {
		p.add("pep.max_nodes", "must be at least 1, got %d", e.MaxNodes)
	}
	if e.MaxItems < 1 {
		p.add("pep.max_items", "must be at least 1, got %d", e.MaxItems)
	}
	if e.MaxBytes < 1 {
		p.add("pep.max_bytes", "must be at least 1, got %d", e.MaxBytes)
	}
}

func (e Private) validate(p *problems) {
	if e.MaxBytes < 1 {
		p.add("private.max_bytes", "must be at least 1, got %d", e.MaxBytes)
	}
}

func (e Push) validate(p *problems) {
	atLeast(p, "push.max_per_account", e.MaxPerAccount, 1)
	atLeast(p, "push.max_errors", e.MaxErrors, 1)
	if e.Timeout.Duration() <= 0 {
		p.add("push.timeout", "must be positive, got %s", e.Timeout.Duration())
	}
}

func (b BOSH) validate(p *problems, l Limits) {
	for _, f := range [...]struct {
		key string
		d   Duration
	}{{"bosh.max_wait", b.MaxWait}, {"bosh.inactivity", b.Inactivity}} {
		if f.d.Duration() < time.Second {
			p.add(f.key, "must be at least 1s (BOSH counts in seconds), got %q", f.d)
		}
	}
	// Room for the <body/> wrapper around a stanza of the largest size.
	if b.MaxBodySize < l.MaxStanzaSize+BOSHWrapperSize {
		p.addAlso("bosh.max_body_size", []string{"limits.max_stanza_size"},
			"must be at least limits.max_stanza_size + %d (%d), got %d", BOSHWrapperSize, l.MaxStanzaSize+BOSHWrapperSize, b.MaxBodySize)
	}
}

func (d Directory) validate(p *problems) {
	if d.VCardMaxBytes < 1 {
		p.add("directory.vcard_max_bytes", "must be at least 1, got %d", d.VCardMaxBytes)
	}
	if d.MaxResults < 1 {
		p.add("directory.max_results", "must be at least 1, got %d", d.MaxResults)
	}
}

// checkPublicURL checks a base URL for upload links: https, a host, no
// query or fragment (XEP-0363 §4: the service must use TLS).
func checkPublicURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("invalid URL %q: %w", s, err)
	case u.Scheme != "https":
		return fmt.Errorf("invalid URL %q: must start with https:// (XEP-0363 requires TLS)", s)
	case u.Host == "":
		return fmt.Errorf("invalid URL %q: missing host", s)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("invalid URL %q: must be scheme, host, optional port and path only", s)
	}
	return nil
}

func validateHosts(p *problems, hosts []Host) {
	if len(hosts) == 0 {
		p.add("host", "at least one [[host]] is required")
		return
	}
	seen := make(map[string]int, len(hosts))
	for i, h := range hosts {
		key := indexKey("host", i)
		h.validate(p, key)
		if h.Domain == "" {
			continue
		}
		if j, ok := seen[h.Domain]; ok {
			p.addAlso(key+".domain", []string{indexKey("host", j) + ".domain"},
				"duplicate domain %q (also host[%d])", h.Domain, j)
			continue
		}
		seen[h.Domain] = i
	}
}

// validateComponents checks the [[component]] tables: a domain of its
// own each (no host's, no other component's) and a secret.
func validateComponents(p *problems, comps []Component, hosts []Host) {
	taken := make(map[string]string, len(hosts)+len(comps)) // domain → key
	for i, h := range hosts {
		taken[h.Domain] = indexKey("host", i) + ".domain"
	}
	for i, c := range comps {
		key := indexKey("component", i)
		if err := checkDomain(c.Domain); err != nil {
			p.addErr(key+".domain", err)
		} else if prev, ok := taken[c.Domain]; ok {
			p.addAlso(key+".domain", []string{prev}, "domain %q is already served (%s)", c.Domain, prev)
		} else {
			taken[c.Domain] = key + ".domain"
		}
		switch {
		case c.Secret == "":
			p.add(key+".secret", "must not be empty")
		case !utf8.ValidString(c.Secret) || strings.ContainsRune(c.Secret, 0):
			p.add(key+".secret", "must be UTF-8 text without NUL")
		}
	}
}

func (h Host) validate(p *problems, key string) {
	if err := checkDomain(h.Domain); err != nil {
		p.addErr(key+".domain", err)
	}
	for i, a := range h.Admins {
		if err := checkBareJID(a); err != nil {
			p.addErr(indexKey(key+".admins", i), err)
		}
	}
	atLeast(p, key+".offline_quota", h.OfflineQuota, 0)
	oneOf(p, key+".archive_default", h.ArchiveDefault, "always", "roster", "never")
	atLeast(p, key+".archive_retention_days", h.ArchiveRetentionDays, 0)
	oneOf(p, key+".room_creators", h.RoomCreators, "everyone", "local", "admins", "listed")
	for i, e := range h.RoomCreatorList {
		if strings.HasPrefix(e, "group:") {
			continue
		}
		if err := checkBareJID(e); err != nil {
			p.addErr(indexKey(key+".room_creator_list", i), err)
		}
	}
	for _, d := range []struct{ key, v string }{{".muc_domain", h.MUCDomain}, {".issues_domain", h.IssuesDomain}, {".upload_domain", h.UploadDomain}} {
		if d.v != "" && d.v != DisabledSocket {
			if err := checkDomain(d.v); err != nil {
				p.addErr(key+d.key, err)
			}
		}
	}
	if h.CompanyRoom != "" && (strings.ContainsAny(h.CompanyRoom, "@/ ") || len(h.CompanyRoom) > 1023) {
		p.add(key+".company_room", "must be a room name (no @, / or spaces)")
	}
	if h.RoomLockTimeout <= 0 {
		p.add(key+".room_lock_timeout", "must be positive, got %q", h.RoomLockTimeout)
	}
	atLeast(p, key+".max_monitors", h.MaxMonitors, 0)
	checkGroupName(p, key+".shared_roster_group", h.SharedRosterGroup)
	checkGroupName(p, key+".monitor_group", h.MonitorGroup)
	names := map[string]bool{}
	for i, g := range h.Groups {
		gk := indexKey(key+".group", i)
		checkGroupName(p, gk+".name", g.Name)
		if names[g.Name] {
			p.add(gk+".name", "duplicate group %q", g.Name)
		}
		names[g.Name] = true
		for j, m := range g.Members {
			member := m
			if !strings.Contains(m, "@") {
				member = m + "@" + h.Domain
			}
			if err := checkBareJID(member); err != nil {
				p.addErr(indexKey(gk+".members", j), err)
			}
		}
	}
}

func checkGroupName(p *problems, key, name string) {
	switch {
	case strings.TrimSpace(name) == "":
		p.add(key, "must not be empty")
	case len(name) > 1023:
		p.add(key, "longer than 1023 bytes")
	}
}

func oneOf[T ~string](p *problems, key string, v T, allowed ...T) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(string(a))
	}
	p.add(key, "invalid value %q (want one of %s)", v, strings.Join(quoted, ", "))
}

func nonNegative(p *problems, key string, d Duration) {
	if d < 0 {
		p.add(key, "must not be negative, got %q", d)
	}
}

func atLeast(p *problems, key string, v, limit int) {
	if v < limit {
		p.add(key, "must be at least %d, got %d", limit, v)
	}
}

// checkAddress checks a listener address "host:port" and returns the port.
func checkAddress(addr string) (int, error) {
	bad := func(why string) (int, error) {
		return 0, fmt.Errorf("invalid address %q: %s (want host:port, e.g. \":5222\")", addr, why)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return bad(ae.Err)
		}
		return bad(err.Error())
	}
	if port == "" {
		return bad("missing port number")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return bad(fmt.Sprintf("port %q is not a number from 0 to 65535", port))
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && checkHostname(host) != nil {
			return bad(fmt.Sprintf("host %q is neither an IP address nor a host name", host))
		}
	}
	return int(n), nil
}

// checkDomain checks that s is a lowercase DNS name (an XMPP domainpart
// without internationalised labels; use the xn-- form for those).
func checkDomain(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if s != strings.ToLower(s) {
		return fmt.Errorf("invalid domain %q: must be lowercase", s)
	}
	if err := checkHostname(s); err != nil {
		return fmt.Errorf("invalid domain %q: %w", s, err)
	}
	return nil
}

// checkHostname checks s as a DNS host name of letters, digits and hyphens.
func checkHostname(s string) error {
	if len(s) > 253 {
		return fmt.Errorf("longer than 253 bytes")
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" {
			return fmt.Errorf("empty label")
		}
		if len(label) > 63 {
			return fmt.Errorf("label longer than 63 bytes")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("invalid character %q", rune(c))
			}
		}
	}
	return nil
}

// checkBareJID checks that s looks like a bare JID localpart@domainpart
// (RFC 7622) with a lowercase localpart and a domain accepted by checkDomain.
func checkBareJID(s string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid bare JID %q: %s (want user@domain)", s, why)
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok {
		return bad("missing '@'")
	}
	if strings.Contains(domain, "/") {
		return bad("must not have a resource")
	}
	if local == "" {
		return bad("empty localpart")
	}
	if domain == "" {
		return bad("empty domainpart")
	}
	if len(local) > 1023 {
		return bad("localpart longer than 1023 bytes")
	}
	if !utf8.ValidString(local) {
		return bad("localpart is not valid UTF-8")
	}
	for _, r := range local {
		if strings.ContainsRune(`"&'/:<>@`, r) || unicode.IsSpace(r) || unicode.IsControl(r) {
			return bad(fmt.Sprintf("character %q is not allowed in a localpart", r))
		}
	}
	if local != strings.ToLower(local) {
		return bad("localpart must be lowercase")
	}
	if err := checkDomain(domain); err != nil {
		return bad(err.Error())
	}
	return nil
}
