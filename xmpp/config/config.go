package config

import (
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// File names inside [Server.DataDir].
const (
	DBFileName         = "switchboard.db"
	AdminSocketName    = "admin.sock"
	SelfSignedCertName = "tls-cert.pem"
	SelfSignedKeyName  = "tls-key.pem"
)

// DisabledSocket as [Listen.AdminSocket] disables the admin socket.
const DisabledSocket = "-"

// Log levels accepted by [Log.Level].
const (
	LevelDebug = "debug"
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// Log formats accepted by [Log.Format].
const (
	FormatText = "text"
	FormatJSON = "json"
)

// TLS versions accepted by [TLS.MinVersion].
const (
	TLS12 = "1.2"
	TLS13 = "1.3"
)

// MinStanzaSize is the smallest accepted [Limits.MaxStanzaSize]: RFC 6120
// §13.12 forbids blocking stanzas smaller than 10000 bytes.
const MinStanzaSize = 10000

// MaxResumeTimeout bounds [C2S.ResumeTimeout]: a hibernating session holds
// its outbox and stays available to its contacts.
const MaxResumeTimeout = 24 * time.Hour

// ResourceConflict is the policy applied when a client binds a full JID that
// is already bound (RFC 6120 §7.7.2.2).
type ResourceConflict string

// Resource conflict policies.
const (
	// KickOld terminates the existing session with a <conflict/> stream
	// error and binds the new one.
	KickOld ResourceConflict = "kick_old"
	// Refuse answers the new bind request with a <conflict/> stanza error.
	Refuse ResourceConflict = "refuse"
	// Random binds the new session to a server-generated resourcepart.
	Random ResourceConflict = "random"
)

// Config is the complete server configuration. The zero value is not valid;
// start from [Defaults] or use [Load]/[Parse].
//
// A Config is a plain value. Its slices are never modified in place by this
// package, so a Config may be shared read-only between goroutines.
type Config struct {
	Server Server `toml:"server"`
	Log    Log    `toml:"log"`
	Listen Listen `toml:"listen"`
	TLS    TLS    `toml:"tls"`
	Limits Limits `toml:"limits"`
	C2S    C2S    `toml:"c2s"`
	S2S    S2S    `toml:"s2s"`
	Upload Upload `toml:"upload"`
	PEP    PEP    `toml:"pep"`
	// Private bounds private XML storage (XEP-0049).
	Private Private `toml:"private"`
	// Push holds the push notification settings (XEP-0357).
	Push Push `toml:"push"`
	// BOSH holds the settings of XMPP over BOSH (XEP-0124, XEP-0206).
	BOSH BOSH `toml:"bosh"`
	// Directory holds the vCard and user directory settings.
	Directory Directory `toml:"directory"`
	Hosts     []Host    `toml:"host"`
	// Components are the external components ([[component]], XEP-0114)
	// that may connect to the component listener ([Listen.Component]).
	Components []Component `toml:"component"`
}

// Server holds process-wide settings ([server]).
type Server struct {
	// DataDir holds switchboard.db, the generated TLS certificate and key
	// and admin.sock. Relative paths are relative to the working directory.
	DataDir string `toml:"data_dir"`
	// ShutdownTimeout bounds the graceful shutdown; remaining connections
	// are closed when it expires.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// ArchiveCommitPriority is the CPU priority of message archive
	// commits: PriorityIdle (commits run on CPU time nothing else wants,
	// while the archive keeps up) or PriorityNormal.
	ArchiveCommitPriority string `toml:"archive_commit_priority"`
}

// Values of Server.ArchiveCommitPriority.
const (
	PriorityIdle   = "idle"
	PriorityNormal = "normal"
)

// Log configures logging ([log]).
type Log struct {
	Level  string `toml:"level"`  // LevelDebug, LevelInfo, LevelWarn or LevelError
	Format string `toml:"format"` // FormatText or FormatJSON
	// TraceXML logs every stanza's XML at debug level (never passwords or
	// SASL payloads).
	TraceXML bool `toml:"trace_xml"`
}

// Listen holds listener addresses ([listen]). An empty address disables the
// listener.
type Listen struct {
	C2S    string `toml:"c2s"`     // client-to-server with STARTTLS
	C2STLS string `toml:"c2s_tls"` // client-to-server with direct TLS (XEP-0368)
	S2S    string `toml:"s2s"`     // server-to-server
	HTTP   string `toml:"http"`    // web features
	// Component is where external components connect (XEP-0114); it
	// is opened only when [[component]] tables are configured.
	Component string `toml:"component"`
	// AdminSocket is the Unix socket of the admin API: "" means
	// <data_dir>/admin.sock, DisabledSocket ("-") disables it. Use
	// [Config.AdminSocketPath] rather than reading this field.
	AdminSocket string `toml:"admin_socket"`
}

// TLS configures certificates and TLS policy ([tls]).
type TLS struct {
	// CertFile and KeyFile are PEM files. Both empty means a self-signed
	// certificate generated in the data directory (see [Config.CertFiles]).
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// RequireC2S makes clients negotiate STARTTLS before authenticating.
	RequireC2S bool `toml:"require_c2s"`
	// MinVersion is TLS12 or TLS13; see [TLS.MinTLSVersion].
	MinVersion string `toml:"min_version"`
}

// Limits holds resource limits ([limits]). Sizes are in bytes.
type Limits struct {
	// MaxStanzaSize closes the stream with <policy-violation/> when a
	// stanza exceeds it. At least MinStanzaSize.
	MaxStanzaSize int `toml:"max_stanza_size"`
	// AuthTimeout is the time an unauthenticated connection has to
	// complete SASL and resource binding. Positive.
	AuthTimeout Duration `toml:"auth_timeout"`
	// IdleTimeout closes a stream with <connection-timeout/> when nothing
	// was received for that long. Zero means never.
	IdleTimeout Duration `toml:"idle_timeout"`
	// RateBytesPerSecond refills a per-connection token bucket on inbound
	// bytes of RateBurstBytes capacity. Zero means unlimited.
	RateBytesPerSecond int `toml:"rate_bytes_per_second"`
	RateBurstBytes     int `toml:"rate_burst_bytes"`
	// MaxSessionsPerUser bounds concurrently bound resources per account.
	MaxSessionsPerUser int `toml:"max_sessions_per_user"`
	// MaxConnectionsPerIP bounds concurrent connections from one address.
	// Zero means unlimited.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// OutboxStanzas and OutboxBytes bound each session's outbox; a session
	// whose outbox overflows is closed as a slow consumer.
	OutboxStanzas int `toml:"outbox_stanzas"`
	OutboxBytes   int `toml:"outbox_bytes"`
	// AuthFailureDelay is the delay after a failed login from an address;
	// it doubles with each further failure up to AuthFailureMaxDelay.
	AuthFailureDelay    Duration `toml:"auth_failure_delay"`
	AuthFailureMaxDelay Duration `toml:"auth_failure_max_delay"`
}

// C2S configures client sessions ([c2s]).
type C2S struct {
	ResourceConflict ResourceConflict `toml:"resource_conflict"`
	// ResumeTimeout is how long a session with stream management
	// (XEP-0198) whose connection broke stays bound for its client to
	// resume it; 0 disables resumption.
	ResumeTimeout Duration `toml:"resume_timeout"`
	// ResumeCountsKept is how many ended resumable sessions' counts of
	// the stanzas the server handled are kept, so that a client that
	// tries to resume one too late learns which of its stanzas arrived
	// (the 'h' of XEP-0198's <failed/>); 0 keeps none.
	ResumeCountsKept int `toml:"resume_counts_kept"`
	// MaxAckDelay is how long a client with stream management may leave
	// the server's request for an acknowledgement unanswered before its
	// push services (XEP-0357) learn of what it did not acknowledge, its
	// connection still up; 0 waits until the session hibernates.
	MaxAckDelay Duration `toml:"max_ack_delay"`
	// CSI offers Client State Indication (XEP-0352): while a client says
	// it is inactive, the stanzas that can wait are held for it, at most
	// CSIQueue of them (and half of [Limits.OutboxStanzas] and of
	// [Limits.OutboxBytes]) before they are sent.
	CSI      bool `toml:"csi"`
	CSIQueue int  `toml:"csi_queue"`
}

// S2S configures federation with other servers ([s2s]). Federation is on
// when the server-to-server listener is ([Listen.S2S]): other servers
// authenticate on it with Server Dialback (XEP-0220), which also needs it
// to verify this server's own outgoing connections.
type S2S struct {
	// RequireEncryption makes both directions negotiate TLS before
	// dialback; without it, TLS is used when the peer offers it.
	RequireEncryption bool `toml:"require_encryption"`
	// ConnectTimeout bounds connecting to a peer and negotiating the
	// stream, TLS and dialback.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// IdleTimeout closes an outgoing stream nothing was sent on, and an
	// incoming one nothing was received on, for that long. Positive.
	IdleTimeout Duration `toml:"idle_timeout"`
	// QueueStanzas bounds the stanzas waiting for one peer's connection;
	// more are answered with resource-constraint.
	QueueStanzas int `toml:"queue_stanzas"`
	// QueueBytes bounds the bytes of those stanzas.
	QueueBytes int `toml:"queue_bytes"`
	// MaxInbound bounds incoming server connections. Zero means
	// unlimited.
	MaxInbound int `toml:"max_inbound"`
	// MaxInboundPerIP bounds incoming server connections from one
	// address, so that one address cannot take all of MaxInbound. Zero
	// means unlimited.
	MaxInboundPerIP int `toml:"max_inbound_per_ip"`
	// MaxOutbound bounds the remote domain pairs with a connection open
	// or being opened at once (up to IdleTimeout after their last
	// stanza); stanzas for further ones are answered with
	// resource-constraint.
	MaxOutbound int `toml:"max_outbound"`
	// Allow, when not empty, lists the only domains federated with;
	// Deny lists domains never federated with.
	Allow []string `toml:"allow"`
	Deny  []string `toml:"deny"`
	// Routes maps remote domains to host:port addresses, used instead of
	// DNS (the _xmpp-server._tcp SRV records, then the domain's port
	// 5269).
	Routes map[string]string `toml:"routes"`
}

// Upload configures XEP-0363 HTTP File Upload ([upload]), served on the
// HTTPS listener ([Listen.HTTP]) by each host's upload service
// ([Host.UploadDomain]).
type Upload struct {
	// MaxFileSize is the largest file accepted, in bytes. Positive.
	MaxFileSize int64 `toml:"max_file_size"`
	// Quota bounds the bytes an account's files (and slots reserved for
	// files not yet uploaded) take; 0 means unlimited.
	Quota int64 `toml:"quota"`
	// ExpireAfter deletes uploaded files this long after their slot was
	// requested; 0 keeps them forever.
	ExpireAfter Duration `toml:"expire_after"`
	// PublicURL is the base of the upload URLs, such as
	// "https://chat.example.org"; "" means https://<host domain>:<port of
	// the HTTPS listener>. Use [Config.UploadBaseURL].
	PublicURL string `toml:"public_url"`
	// Dir holds the uploaded files: "" means <data_dir>/uploads. Use
	// [Config.UploadDir].
	Dir string `toml:"dir"`
}

// PEP bounds what each account keeps in its personal eventing service
// (XEP-0163: avatars, nicknames, bookmarks, OMEMO keys) ([pep]).
type PEP struct {
	// MaxNodes is how many nodes an account may have. Positive.
	MaxNodes int `toml:"max_nodes"`
	// MaxItems is the most items one node keeps, and what a client's
	// pubsub#max_items "max" means. Positive.
	MaxItems int `toml:"max_items"`
	// MaxBytes bounds the bytes an account's items take together.
	// Positive.
	MaxBytes int64 `toml:"max_bytes"`
}

// Private bounds what each account keeps in private XML storage
// (XEP-0049: older clients' bookmarks, roster notes, preferences)
// ([private]).
type Private struct {
	// MaxBytes bounds the bytes an account's private XML takes (its
	// elements and their namespaces). Positive.
	MaxBytes int `toml:"max_bytes"`
}

// BOSH holds the settings of XMPP over BOSH (XEP-0124, XEP-0206), served
// on [Listen.HTTP] ([bosh]).
type BOSH struct {
	// Enabled serves BOSH at /http-bind.
	Enabled bool `toml:"enabled"`
	// MaxWait bounds how long a request is held when there is nothing
	// to send (a client's 'wait'). Positive.
	MaxWait Duration `toml:"max_wait"`
	// Inactivity is how long a session may go with no request held
	// before it ends (its client is gone). Positive.
	Inactivity Duration `toml:"inactivity"`
	// MaxBodySize bounds a request's body, what waits for a client
	// between its requests, and what waits for the server to read. At
	// least [Limits.MaxStanzaSize] + [BOSHWrapperSize].
	MaxBodySize int `toml:"max_body_size"`
}

// BOSHWrapperSize is the room [BOSH.MaxBodySize] leaves beyond a stanza of
// [Limits.MaxStanzaSize] for the <body/> wrapper around it.
const BOSHWrapperSize = 1024

// Push holds the settings of push notifications (XEP-0357), which mobile
// clients whose connection their operating system closes ask for ([push]).
type Push struct {
	// Enabled offers push notifications to clients.
	Enabled bool `toml:"enabled"`
	// IncludeSender and IncludeBody put a message's sender and body into
	// its notification, which goes to the app's vendor.
	IncludeSender bool `toml:"include_sender"`
	IncludeBody   bool `toml:"include_body"`
	// PlaceholderBody is the body sent when the message's is not; ""
	// sends none.
	PlaceholderBody string `toml:"placeholder_body"`
	// MaxPerAccount bounds the services one account enables. Positive.
	MaxPerAccount int `toml:"max_per_account"`
	// MaxErrors is how many notifications in a row a service may answer
	// with an error before it is disabled. Positive.
	MaxErrors int `toml:"max_errors"`
	// Timeout is how long a notification waits for its answer. Positive.
	Timeout Duration `toml:"timeout"`
}

// Directory holds the users' vCards (XEP-0054) and the directory search
// over them (XEP-0055) ([directory]).
type Directory struct {
	// VCardMaxBytes bounds one account's vCard, serialised; a larger
	// one is refused with not-acceptable. Positive.
	VCardMaxBytes int `toml:"vcard_max_bytes"`
	// Search lets each host's users search the host's users by name,
	// user name, email, department or extension.
	Search bool `toml:"search"`
	// MaxResults is the most entries one search answers with (a client
	// pages through more with XEP-0059). Positive.
	MaxResults int `toml:"max_results"`
}

// Component is an external component ([[component]]): a program that
// serves a domain of its own through the server (XEP-0114), such as a
// gateway to a phone system or a bot framework's component.
type Component struct {
	// Domain is the component's domain, e.g. "gateway.example.org": the
	// server routes every stanza addressed to it, or to an address at
	// it, to the component. Not one of the hosts or their services.
	Domain string `toml:"domain"`
	// Secret is the shared secret the component's handshake proves it
	// knows (SHA-1 of the stream id and the secret).
	Secret string `toml:"secret"`
}

// Host is one virtual host ([[host]]).
type Host struct {
	// Domain is the lowercase domain served, e.g. "example.org".
	Domain string `toml:"domain"`
	// Registration opens XEP-0077 in-band registration on this host.
	Registration bool `toml:"registration"`
	// Admins are bare JIDs (user@domain) with administrative rights.
	Admins []string `toml:"admins"`
	// OfflineQuota bounds the messages stored for a user who is offline
	// (XEP-0160); beyond it messages are bounced. 0 disables storage.
	OfflineQuota int `toml:"offline_quota"`
	// SharedRoster puts every user of the host in every other user's
	// roster with a mutual subscription, in group SharedRosterGroup.
	SharedRoster      bool   `toml:"shared_roster"`
	SharedRosterGroup string `toml:"shared_roster_group"`
	// MonitorGroup is the roster group of temporary monitors; a user may
	// keep at most MaxMonitors of them (0: no limit), and adding one more
	// removes the oldest.
	MonitorGroup string `toml:"monitor_group"`
	MaxMonitors  int    `toml:"max_monitors"`
	// Groups are shared groups ([[host.group]]): each member sees every
	// other member in the roster, with a mutual subscription.
	Groups []SharedGroup `toml:"group"`
	// ArchiveDefault is the default archiving mode of the host's users
	// (XEP-0313 preferences): always, roster or never.
	ArchiveDefault string `toml:"archive_default"`
	// ArchiveRetentionDays deletes archived messages older than this
	// many days; 0 keeps them forever.
	ArchiveRetentionDays int `toml:"archive_retention_days"`
	// MUCDomain is the chat room service: "" means conference.<domain>,
	// "-" disables it.
	MUCDomain string `toml:"muc_domain"`
	// IssuesDomain is the issue chat service: "" means issues.<domain>,
	// "-" disables it.
	IssuesDomain string `toml:"issues_domain"`
	// UploadDomain is the HTTP File Upload service (XEP-0363): "" means
	// upload.<domain>, "-" disables it. It runs only with the HTTPS
	// listener ([Listen.HTTP]).
	UploadDomain string `toml:"upload_domain"`
	// RoomCreators says who may create rooms: everyone, local (the
	// host's users), admins, or listed (RoomCreatorList).
	RoomCreators    string   `toml:"room_creators"`
	RoomCreatorList []string `toml:"room_creator_list"`
	// CompanyRoom names a company-wide room on the room service whose
	// members are all users of the host ("" = none).
	CompanyRoom string `toml:"company_room"`
	// RoomLockTimeout is how long a room created by a join waits for its
	// owner's configuration, closed to others (XEP-0045 §10.1.1), before
	// it opens with the default configuration.
	RoomLockTimeout Duration `toml:"room_lock_timeout"`
}

// ServiceDomain resolves a service setting: "" gives prefix.<domain>, "-"
// disables ("").
func (h Host) ServiceDomain(setting, prefix string) string {
	switch setting {
	case "":
		return prefix + "." + h.Domain
	case DisabledSocket:
		return ""
	}
	return setting
}

// SharedGroup is a configured shared roster group ([[host.group]]).
type SharedGroup struct {
	// Name is the roster group the members appear in.
	Name string `toml:"name"`
	// Members are localparts of this host's users or bare JIDs.
	Members []string `toml:"members"`
}

// Host defaults.
const (
	DefaultOfflineQuota      = 1000
	DefaultSharedRosterGroup = "Colleagues"
	DefaultMonitorGroup      = "Monitored"
	DefaultMaxMonitors       = 20
)

// Defaults returns the default configuration: every section's defaults and
// one host, "localhost".
func Defaults() Config {
	return Config{
		Server:     ServerDefaults(),
		Log:        LogDefaults(),
		Listen:     ListenDefaults(),
		TLS:        TLSDefaults(),
		Limits:     LimitsDefaults(),
		C2S:        C2SDefaults(),
		S2S:        S2SDefaults(),
		Upload:     UploadDefaults(),
		PEP:        PEPDefaults(),
		Private:    PrivateDefaults(),
		Push:       PushDefaults(),
		BOSH:       BOSHDefaults(),
		Directory:  DirectoryDefaults(),
		Hosts:      []Host{HostDefaults("localhost")},
		Components: []Component{},
	}
}

// ServerDefaults returns the defaults of [server].
func ServerDefaults() Server {
	return Server{
		DataDir:               "./data",
		ShutdownTimeout:       Duration(10 * time.Second),
		ArchiveCommitPriority: PriorityIdle,
	}
}

// LogDefaults returns the defaults of [log].
func LogDefaults() Log {
	return Log{Level: LevelInfo, Format: FormatText}
}

// ListenDefaults returns the defaults of [listen].
func ListenDefaults() Listen {
	return Listen{
		C2S:    ":5222",
		C2STLS: ":5223",
		S2S:    ":5269",
		HTTP:   ":5443",
		// Loopback: the protocol has no TLS (XEP-0114).
		Component: "127.0.0.1:5347",
	}
}

// TLSDefaults returns the defaults of [tls].
func TLSDefaults() TLS {
	return TLS{RequireC2S: true, MinVersion: TLS12}
}

// LimitsDefaults returns the defaults of [limits].
func LimitsDefaults() Limits {
	return Limits{
		MaxStanzaSize:       256 << 10,
		AuthTimeout:         Duration(30 * time.Second),
		IdleTimeout:         Duration(10 * time.Minute),
		RateBytesPerSecond:  0,
		RateBurstBytes:      1 << 20,
		MaxSessionsPerUser:  10,
		MaxConnectionsPerIP: 100,
		OutboxStanzas:       4096,
		OutboxBytes:         4 << 20,
		AuthFailureDelay:    Duration(time.Second),
		AuthFailureMaxDelay: Duration(30 * time.Second),
	}
}

// C2SDefaults returns the defaults of [c2s].
func C2SDefaults() C2S {
	return C2S{ResourceConflict: KickOld, ResumeTimeout: Duration(5 * time.Minute), ResumeCountsKept: 10000, MaxAckDelay: Duration(30 * time.Second), CSI: true, CSIQueue: 256}
}

// S2SDefaults returns the defaults of [s2s].
func S2SDefaults() S2S {
	return S2S{
		RequireEncryption: true,
		ConnectTimeout:    Duration(15 * time.Second),
		IdleTimeout:       Duration(10 * time.Minute),
		QueueStanzas:      1000,
		QueueBytes:        4 << 20,
		MaxInbound:        1000,
		MaxInboundPerIP:   100,
		MaxOutbound:       1000,
		Allow:             []string{},
		Deny:              []string{},
	}
}

// Upload defaults.
const (
	DefaultMaxFileSize = 100 << 20
	DefaultUploadQuota = 1 << 30
	// UploadDirName is the default upload directory inside the data
	// directory.
	UploadDirName = "uploads"
)

// PEPDefaults returns the defaults of [pep].
func PEPDefaults() PEP {
	return PEP{MaxNodes: 128, MaxItems: 256, MaxBytes: 4 << 20}
}

// PrivateDefaults returns the defaults of [private].
func PrivateDefaults() Private {
	return Private{MaxBytes: 1 << 20}
}

// BOSHDefaults returns the defaults of [bosh].
func BOSHDefaults() BOSH {
	return BOSH{Enabled: true, MaxWait: Duration(time.Minute), Inactivity: Duration(time.Minute), MaxBodySize: 1 << 20}
}

// PushDefaults returns the defaults of [push].
func PushDefaults() Push {
	return Push{Enabled: true, PlaceholderBody: "New message", MaxPerAccount: 5, MaxErrors: 5, Timeout: Duration(time.Minute)}
}

// DirectoryDefaults returns the defaults of [directory].
func DirectoryDefaults() Directory {
	return Directory{VCardMaxBytes: 128 << 10, Search: true, MaxResults: 100}
}

// UploadDefaults returns the defaults of [upload].
func UploadDefaults() Upload {
	return Upload{MaxFileSize: DefaultMaxFileSize, Quota: DefaultUploadQuota}
}

// DefaultRoomLockTimeout is the default of room_lock_timeout.
const DefaultRoomLockTimeout = 5 * time.Minute

// HostDefaults returns the defaults of a [[host]] table serving domain.
func HostDefaults(domain string) Host {
	return Host{
		Domain: domain, Admins: []string{},
		OfflineQuota:      DefaultOfflineQuota,
		SharedRosterGroup: DefaultSharedRosterGroup,
		MonitorGroup:      DefaultMonitorGroup,
		MaxMonitors:       DefaultMaxMonitors,
		Groups:            []SharedGroup{},
		ArchiveDefault:    "always",
		RoomCreators:      "local",
		RoomCreatorList:   []string{},
		RoomLockTimeout:   Duration(DefaultRoomLockTimeout),
	}
}

// Host returns the host serving domain (compared case-insensitively). The
// returned Host does not share memory with c.
func (c Config) Host(domain string) (Host, bool) {
	domain = strings.ToLower(domain)
	for _, h := range c.Hosts {
		if h.Domain == domain {
			h.Admins = slices.Clone(h.Admins)
			return h, true
		}
	}
	return Host{}, false
}

// Domains returns the domains of all hosts, in configuration order.
func (c Config) Domains() []string {
	domains := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		domains[i] = h.Domain
	}
	return domains
}

// DBPath returns the path of the database file, <data_dir>/switchboard.db.
func (c Config) DBPath() string {
	return filepath.Join(c.Server.DataDir, DBFileName)
}

// AdminSocketPath returns the admin API socket path: listen.admin_socket if
// set, <data_dir>/admin.sock if empty, and "" if disabled ("-").
func (c Config) AdminSocketPath() string {
	switch c.Listen.AdminSocket {
	case DisabledSocket:
		return ""
	case "":
		return filepath.Join(c.Server.DataDir, AdminSocketName)
	default:
		return c.Listen.AdminSocket
	}
}

// UploadDir returns the directory of uploaded files: upload.dir if set,
// else <data_dir>/uploads.
func (c Config) UploadDir() string {
	if c.Upload.Dir != "" {
		return c.Upload.Dir
	}
	return filepath.Join(c.Server.DataDir, UploadDirName)
}

// UploadBaseURL returns the base of a host's upload URLs (no trailing
// slash): upload.public_url if set, else https://<domain>:<httpsPort>.
func (c Config) UploadBaseURL(domain string, httpsPort int) string {
	if c.Upload.PublicURL != "" {
		return strings.TrimSuffix(c.Upload.PublicURL, "/")
	}
	return "https://" + net.JoinHostPort(domain, strconv.Itoa(httpsPort))
}

// CertFiles returns the certificate and key files to use. When tls.cert_file
// and tls.key_file are empty, they are <data_dir>/tls-cert.pem and
// <data_dir>/tls-key.pem and selfSigned is true: the server generates a
// self-signed certificate there if the files do not exist.
func (c Config) CertFiles() (certFile, keyFile string, selfSigned bool) {
	if c.TLS.CertFile == "" && c.TLS.KeyFile == "" {
		return filepath.Join(c.Server.DataDir, SelfSignedCertName),
			filepath.Join(c.Server.DataDir, SelfSignedKeyName), true
	}
	return c.TLS.CertFile, c.TLS.KeyFile, false
}

// SetDomains replaces the hosts with one per domain, in order. A host whose
// domain was already configured keeps its settings; new ones get
// [HostDefaults]. Call [Config.Validate] afterwards.
func (c *Config) SetDomains(domains []string) {
	hosts := make([]Host, 0, len(domains))
	for _, d := range domains {
		h, ok := c.Host(d)
		if !ok || h.Domain != d {
			h = HostDefaults(d)
		}
		hosts = append(hosts, h)
	}
	c.Hosts = hosts
}

// SetRegistration opens (or closes) in-band registration on every host.
func (c *Config) SetRegistration(open bool) {
	hosts := slices.Clone(c.Hosts)
	for i := range hosts {
		hosts[i].Registration = open
	}
	c.Hosts = hosts
}

// SlogLevel returns Level as a slog.Level; unknown levels map to Info.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case LevelDebug:
		return slog.LevelDebug
	case LevelWarn:
		return slog.LevelWarn
	case LevelError:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// MinTLSVersion returns MinVersion as a crypto/tls version constant;
// unknown values map to TLS 1.2.
func (t TLS) MinTLSVersion() uint16 {
	if t.MinVersion == TLS13 {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}
