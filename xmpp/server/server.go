package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/muc"
	"switchboard/presence"
	"switchboard/roster"
	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/adhoc"
	"switchboard/xmpp/auth"
	"switchboard/xmpp/blocking"
	"switchboard/xmpp/c2s"
	"switchboard/xmpp/carbons"
	"switchboard/xmpp/component"
	"switchboard/xmpp/config"
	"switchboard/xmpp/directory"
	"switchboard/xmpp/disco"
	"switchboard/xmpp/entitytime"
	"switchboard/xmpp/lastactivity"
	"switchboard/xmpp/mam"
	"switchboard/xmpp/offline"
	"switchboard/xmpp/pep"
	"switchboard/xmpp/ping"
	"switchboard/xmpp/private"
	"switchboard/xmpp/push"
	"switchboard/xmpp/register"
	"switchboard/xmpp/router"
	"switchboard/xmpp/s2s"
	"switchboard/xmpp/session"
	"switchboard/xmpp/upload"
	"switchboard/xmpp/vcard"
	"switchboard/xmpp/version"
)

// Version is the server's software version, reported by XEP-0092 and the
// CLI.
const Version = "0.1.0"

// Server is a configured server. Build it with New, then Start it.
type Server struct {
	cfg config.Config
	log *slog.Logger

	db       *store.DB
	accounts *Accounts
	registry *xmpp.Registry
	hooks    *xmpp.Hooks
	router   *router.Router
	presence *presence.Module
	// archiveWriter group-commits archived messages.
	archiveWriter *store.ArchiveWriter
	stopJobs      context.CancelFunc
	// mucs are the room and issue services by domain, with the host
	// each belongs to.
	mam        *mam.Module
	archiveIDs mam.IDCodec
	mucs       []*muc.Service
	mucHosts   map[string]mucService
	inbox      *muc.Inbox // the rooms users follow, for their conversation lists
	// push publishes push notifications (XEP-0357); nil when [push]
	// is off.
	push *push.Module
	// upload stores and serves uploaded files; nil when no host has an
	// upload service (or without the HTTPS listener). uploads are the
	// hosts' upload services.
	upload  *upload.Service
	uploads []uploadComponent
	c2s     *c2s.Server
	// s2s federates with other servers; nil without the s2s listener.
	s2s *s2s.Server
	// components serves external components (XEP-0114); nil when none
	// is configured.
	components *component.Server
	tls        *tls.Config

	mu        sync.Mutex
	listeners map[string]net.Listener
	admin     *adminServer
	http      *http.Server // HTTPS: WebSocket, uploads, the admin HTTP API; nil when not listening
	// adminRuns owns the running admin commands, of both transports.
	adminRuns adminGate
	serveWG   sync.WaitGroup
	started   bool
	stopped   bool
}

// New opens the store and builds every component; it listens on nothing
// yet.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Server.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data directory: %w", err)
	}
	db, err := store.Open(ctx, cfg.DBPath(), store.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, log: log, db: db, listeners: map[string]net.Listener{}}
	if err := s.build(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) build() error {
	cfg := s.cfg
	domains := cfg.Domains()
	s.accounts = NewAccounts(s.db.Users(), domains)
	s.registry = xmpp.NewRegistry()
	s.hooks = &xmpp.Hooks{}
	rt, err := router.New(router.Options{
		Hosts:              domains,
		ResourceConflict:   string(cfg.C2S.ResourceConflict),
		MaxSessionsPerUser: cfg.Limits.MaxSessionsPerUser,
		Logger:             s.log,
	}, router.Deps{Registry: s.registry, Hooks: s.hooks, Users: s.accounts})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.router = rt

	// The modules, in order. Registration is data: a duplicate IQ
	// handler fails startup.
	modules := []xmpp.Module{
		disco.New(s.serviceItems),
		ping.Module{},
		session.Module{},
		&version.Module{Software: "Switchboard", Version: Version},
		&entitytime.Module{},
		register.New(s.selfService(), rt, s.closeAccount),
	}
	policies := map[string]roster.HostPolicy{}
	quotas := map[string]int{}
	for _, h := range cfg.Hosts {
		pol := roster.HostPolicy{
			SharedRoster: h.SharedRoster, SharedGroup: h.SharedRosterGroup,
			MonitorGroup: h.MonitorGroup, MaxMonitors: h.MaxMonitors,
		}
		for _, g := range h.Groups {
			sg := roster.SharedGroup{Name: g.Name}
			for _, mem := range g.Members {
				if !strings.Contains(mem, "@") {
					mem += "@" + h.Domain
				}
				if j, err := jid.Parse(mem); err == nil {
					sg.Members = append(sg.Members, j.Bare().String())
				}
			}
			pol.Groups = append(pol.Groups, sg)
		}
		policies[h.Domain] = pol
		quotas[h.Domain] = h.OfflineQuota
	}
	blockingMod, err := blocking.New(s.db.Blocklists(), rt, s.log)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	rosterMod, err := roster.New(roster.Options{Logger: s.log, Hosts: policies}, roster.Deps{
		Rosters: s.db.Rosters(), Requests: s.db.SubRequests(), Router: rt, Users: s.accounts,
		Directory: s.accounts, Blocks: blockingMod.Blocks,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	presenceMod, err := presence.New(presence.Deps{
		Contacts: rosterMod, Activity: s.db.Activity(), Overrides: s.db.PresenceOverrides(),
		Router: rt, Users: s.accounts, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.presence = presenceMod
	offlineMod, err := offline.New(offline.Options{Logger: s.log, Quota: func(host string) int { return quotas[host] }}, s.db.Offline(), rt)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	blockingMod.SetSubscriptions(rosterMod)
	lastMod, err := lastactivity.New(lastactivity.Deps{Contacts: rosterMod, Activity: s.db.Activity(), Sessions: rt})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	pepMod, err := pep.New(pep.Options{
		MaxNodes: cfg.PEP.MaxNodes, MaxItems: cfg.PEP.MaxItems, MaxBytes: cfg.PEP.MaxBytes, Logger: s.log,
	}, pep.Deps{
		Store: s.db.PEP(), Rosters: s.db.Rosters(), Contacts: rosterMod, Sessions: rt, Router: rt,
		IsLocal: rt.IsLocal, Blocks: blockingMod.Blocks,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	vcardMod, err := vcard.New(vcard.Options{MaxBytes: cfg.Directory.VCardMaxBytes, Logger: s.log}, vcard.Deps{
		Store: s.db.VCards(), Avatars: pepMod,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	privateMod, err := private.New(private.Options{MaxBytes: cfg.Private.MaxBytes}, private.Deps{Store: s.db.Private(), Bookmarks: pepMod})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	modules = append(modules, vcardMod, privateMod)
	if cfg.Push.Enabled {
		if s.push, err = s.buildPush(rt); err != nil {
			return err
		}
		modules = append(modules, s.push)
	}
	if cfg.Directory.Search {
		dirMod, err := directory.New(directory.Options{MaxResults: cfg.Directory.MaxResults}, directory.Deps{
			Directory: s.db.VCards(), Blocks: blockingMod.Blocks,
		})
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		modules = append(modules, dirMod)
	}
	s.archiveWriter = s.db.Archive().NewWriter(store.WriterOptions{
		Background: cfg.Server.ArchiveCommitPriority == config.PriorityIdle, Logger: s.log,
	})
	modes := map[string]string{}
	for _, h := range cfg.Hosts {
		modes[h.Domain] = h.ArchiveDefault
	}
	idSecret, err := loadOrCreateSecret(s.secretPath())
	if err != nil {
		return err
	}
	s.archiveIDs = mam.NewIDCodec(idSecret)
	s.inbox, err = muc.NewInbox(muc.InboxDeps{
		Inbox: s.db.RoomInbox(), Archive: s.db.Archive(), Rooms: s.db.Rooms(), IDs: s.archiveIDs, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	mamMod, err := mam.New(mam.Options{Logger: s.log, IDSecret: idSecret, DefaultMode: func(host string) string { return modes[host] }}, mam.Deps{
		Archive: s.db.Archive(), Writer: s.archiveWriter, Rosters: s.db.Rosters(), Prefs: s.db.ArchivePrefs(), Router: rt,
		Rooms: s.inbox,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.mam = mamMod
	s.accounts.OnRemove = rosterMod.AccountRemoval
	if pushMod := s.push; pushMod != nil {
		s.accounts.OnRemove = func(ctx context.Context, bare jid.JID, released []store.Released) {
			rosterMod.AccountRemoval(ctx, bare, released)
			pushMod.AccountRemoved(bare)
		}
	}
	s.accounts.OnChange = func(host string) {
		rosterMod.AccountsChanged(host)
		mamMod.AccountsChanged(host)
		blockingMod.AccountsChanged(host)
		presenceMod.AccountsChanged(host)
	}
	if err := s.buildMUC(mamMod); err != nil {
		return err
	}
	if err := s.buildUpload(); err != nil {
		return err
	}
	// Blocking first: its filters must see stanzas before the others.
	// The archive before offline storage, so that stored messages carry
	// their stanza-id, and before carbons, so that sent carbons carry the
	// stanza-id of the sender's archive (xmpp.Hooks.MessageOut).
	// PEP before the roster and presence modules: its PresenceIn filter
	// only watches the presence of other servers' users, and must see it
	// before they consume it.
	modules = append([]xmpp.Module{blockingMod, pepMod}, modules...)
	modules = append(modules, rosterMod, presenceMod, mamMod, offlineMod, carbons.New(rt), lastMod, adhoc.New())
	for _, m := range modules {
		if err := m.Register(s.registry, s.hooks); err != nil {
			return fmt.Errorf("server: module %s: %w", m.Name(), err)
		}
	}
	s.registry.Freeze()

	certFile, keyFile, selfSigned := cfg.CertFiles()
	cert, err := loadOrCreateCert(certFile, keyFile, selfSigned, domains, s.log)
	if err != nil {
		return err
	}
	s.tls = &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   cfg.TLS.MinTLSVersion(),
	}

	secret, err := loadOrCreateSecret(filepath.Join(cfg.Server.DataDir, secretFile))
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("server: parse certificate: %w", err)
	}
	authSrv, err := auth.NewServer(auth.Options{
		Lookup: s.accounts,
		// Unknown users get stable fake SCRAM parameters, so that
		// login probes cannot tell which accounts exist.
		DecoySecret:           secret,
		UnknownUserIterations: auth.DefaultIterations,
		// tls-server-end-point channel binding (RFC 5929 §4, XEP-0440).
		ServerCertificate: func(*tls.ConnectionState) *x509.Certificate { return leaf },
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	reg := map[string]bool{}
	for _, h := range cfg.Hosts {
		reg[h.Domain] = h.Registration
	}
	lim := cfg.Limits
	s.c2s, err = c2s.New(c2s.Options{
		DefaultHost: domains[0],
		// Stream features of the modules, offered after authentication.
		PostAuthFeatures: []string{
			"<ver xmlns='" + roster.NSVersioning + "'/>",
			"<sub xmlns='" + roster.NSPreApproval + "'/>",
		},
		Registration: reg,
		TLS:          s.tls,
		RequireTLS:   cfg.TLS.RequireC2S,
		Logger:       s.log,
		TraceXML:     cfg.Log.TraceXML,
		// XEP-0198 resumption.
		ResumeTimeout:    cfg.C2S.ResumeTimeout.Duration(),
		ResumeCountsKept: cfg.C2S.ResumeCountsKept,
		MaxAckDelay:      cfg.C2S.MaxAckDelay.Duration(),
		CSIQueue:         csiQueue(cfg.C2S),
		Limits: c2s.Limits{
			MaxStanzaSize:      lim.MaxStanzaSize,
			AuthTimeout:        lim.AuthTimeout.Duration(),
			IdleTimeout:        lim.IdleTimeout.Duration(),
			RateBytesPerSecond: lim.RateBytesPerSecond,
			RateBurstBytes:     lim.RateBurstBytes,
			OutboxStanzas:      lim.OutboxStanzas,
			OutboxBytes:        lim.OutboxBytes,
			MaxConnsPerIP:      lim.MaxConnectionsPerIP,
		},
	}, c2s.Deps{
		Router:    rt,
		Auth:      authSrv,
		Throttle:  auth.NewThrottle(lim.AuthFailureDelay.Duration(), lim.AuthFailureMaxDelay.Duration(), time.Now),
		Registrar: s.selfService(),
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if cfg.Listen.S2S != "" {
		// The dialback secret is derived from the server's, so that
		// keys stay valid across a restart and differ from its other
		// uses.
		dbSecret := sha256.Sum256(append([]byte("switchboard dialback\x00"), secret...))
		fed := cfg.S2S
		s.s2s, err = s2s.New(s2s.Options{
			TLS:               s.tls,
			RequireEncryption: fed.RequireEncryption,
			Secret:            dbSecret[:],
			ConnectTimeout:    fed.ConnectTimeout.Duration(),
			IdleTimeout:       fed.IdleTimeout.Duration(),
			QueueStanzas:      fed.QueueStanzas,
			QueueBytes:        fed.QueueBytes,
			MaxInbound:        fed.MaxInbound,
			MaxInboundPerIP:   fed.MaxInboundPerIP,
			MaxOutbound:       fed.MaxOutbound,
			MaxStanzaSize:     lim.MaxStanzaSize,
			Allow:             fed.Allow,
			Deny:              fed.Deny,
			Routes:            fed.Routes,
			Logger:            s.log,
			TraceXML:          cfg.Log.TraceXML,
		}, rt)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		rt.SetRemote(s.s2s)
	}
	return s.buildComponents(rt)
}

// buildComponents routes the domains of the external components
// ([[component]], XEP-0114) to their connections.
func (s *Server) buildComponents(rt *router.Router) error {
	cfg := s.cfg
	if len(cfg.Components) == 0 {
		return nil
	}
	comps := make([]component.Config, len(cfg.Components))
	for i, c := range cfg.Components {
		comps[i] = component.Config{Domain: c.Domain, Secret: c.Secret}
	}
	var err error
	s.components, err = component.New(component.Options{
		HandshakeTimeout: cfg.Limits.AuthTimeout.Duration(),
		QueueStanzas:     cfg.S2S.QueueStanzas,
		QueueBytes:       cfg.S2S.QueueBytes,
		MaxStanzaSize:    cfg.Limits.MaxStanzaSize,
		Logger:           s.log,
		TraceXML:         cfg.Log.TraceXML,
	}, rt, comps)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	for _, r := range s.components.Components() {
		if err := rt.AddExternal(r); err != nil {
			return fmt.Errorf("server: component %s: %w", r.Domain(), err)
		}
	}
	return nil
}

// buildPush returns the push notification module (XEP-0357) with the
// services stored.
func (s *Server) buildPush(rt *router.Router) (*push.Module, error) {
	c := s.cfg.Push
	m, err := push.New(push.Options{
		IncludeSender: c.IncludeSender, IncludeBody: c.IncludeBody, PlaceholderBody: c.PlaceholderBody,
		MaxPerAccount: c.MaxPerAccount, MaxErrors: c.MaxErrors, Timeout: c.Timeout.Duration(), Logger: s.log,
	}, push.Deps{Store: s.db.Push(), Router: rt, Sessions: rt})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := m.Load(context.Background()); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return m, nil
}

// selfService is the account manager for users acting on their own
// accounts (XEP-0077), which audits what they do.
func (s *Server) selfService() SelfService {
	return SelfService{Accounts: s.accounts, Audit: s.db.Audit(), Logger: s.log}
}

// closeAccount ends every session of an account (after its removal).
func (s *Server) closeAccount(bare jid.JID) {
	s.router.CloseUser(bare, "not-authorized", "account removed")
}

func (s *Server) closeUserSessions(host, local string) {
	if bare, err := jid.New(local, host, ""); err == nil {
		s.closeAccount(bare)
	}
}

// Accounts returns the account manager.
func (s *Server) Accounts() *Accounts { return s.accounts }

// Presence returns the presence module (presence set from outside).
func (s *Server) Presence() *presence.Module { return s.presence }

// Router returns the router.
func (s *Server) Router() *router.Router { return s.router }

// Federation returns the server-to-server service, nil when the s2s
// listener is off.
func (s *Server) Federation() *s2s.Server { return s.s2s }

// Components returns the external component service (XEP-0114), nil when
// no component is configured.
func (s *Server) Components() *component.Server { return s.components }

// Config returns the configuration the server runs with.
func (s *Server) Config() config.Config { return s.cfg }

// Start opens the listeners and the admin socket and starts serving.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("server: already started")
	}
	s.started = true
	// The HTTPS listener is bound first, since upload slots name its port
	// and clients of the other listeners may ask for one at once; it is
	// served last, once everything its handlers use has started.
	var httpLn net.Listener
	if addr := s.cfg.Listen.HTTP; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("server: listen http on %s: %w", addr, err)
		}
		s.listeners["http"] = ln
		s.setUploadURLs(ln.Addr())
		httpLn = ln
	}
	type stream struct {
		name, addr string
		serve      func(net.Listener) error
	}
	streams := []stream{
		{"c2s", s.cfg.Listen.C2S, func(ln net.Listener) error { return s.c2s.Serve(ln, false) }},
		{"c2s_tls", s.cfg.Listen.C2STLS, func(ln net.Listener) error { return s.c2s.Serve(ln, true) }},
	}
	if s.s2s != nil {
		streams = append(streams, stream{"s2s", s.cfg.Listen.S2S, s.s2s.Serve})
	}
	if s.components != nil {
		streams = append(streams, stream{"component", s.cfg.Listen.Component, s.components.Serve})
	}
	for _, l := range streams {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			s.closeListenersLocked()
			return fmt.Errorf("server: listen %s on %s: %w", l.name, l.addr, err)
		}
		s.listeners[l.name] = ln
		s.log.Info("listening", "listener", l.name, "addr", ln.Addr().String())
		s.serveWG.Add(1)
		go func() {
			defer s.serveWG.Done()
			if err := l.serve(ln); err != nil {
				s.log.Error("listener stopped", "listener", l.name, xmpp.LogErr, err)
			}
		}()
	}
	s.archiveWriter.Start(context.Background())
	s.inbox.Start()
	for _, m := range s.mucs {
		if err := m.Start(ctx); err != nil {
			s.closeListenersLocked()
			return err
		}
	}
	jobs, stop := context.WithCancel(context.Background())
	s.stopJobs = stop
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		s.retention(jobs)
	}()
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		s.uploadCleanup(jobs)
	}()
	if path := s.cfg.AdminSocketPath(); path != "" {
		a, err := startAdmin(path, s, s.log)
		if err != nil {
			s.closeListenersLocked()
			return err
		}
		s.admin = a
	}
	if httpLn != nil {
		var err error
		if s.http, err = s.startHTTP(httpLn); err != nil {
			s.closeListenersLocked()
			return err
		}
		s.log.Info("listening", "listener", "http", "addr", httpLn.Addr().String())
	}
	s.log.Info("server started", "domains", s.cfg.Domains(), "version", Version)
	return nil
}

func (s *Server) closeListenersLocked() {
	for _, ln := range s.listeners {
		ln.Close()
	}
}

// Addr returns the bound address of a listener ("c2s", "c2s_tls", "s2s",
// "component", "http") or nil.
func (s *Server) Addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ln := s.listeners[name]; ln != nil {
		return ln.Addr()
	}
	return nil
}

// adminHTTPShutdownWait bounds how long Shutdown lets HTTP requests in
// flight finish: admin ones (an export) and upload PUTs, which are cut
// after it (a cut PUT leaves no file and its slot unused); it takes at
// most half of what is left of Shutdown's context. WebSocket streams are
// not HTTP requests by then: they end with the other client sessions.
const adminHTTPShutdownWait = 5 * time.Second

// adminCloseGrace bounds how long Shutdown then waits for the admin
// commands still running (their HTTP connections cut) to end.
const adminCloseGrace = time.Second

// Shutdown stops the server: the HTTPS listener and the admin interfaces
// (HTTP requests in flight, such as an export or an upload, finish within
// adminHTTPShutdownWait, then
// the commands still running of either transport get adminCloseGrace),
// the room services, so that occupants still connected learn that rooms
// go down (XEP-0045 §11.2, status 332), then listeners and sessions
// (closed with system-shutdown), external components' streams (closed
// with system-shutdown once their queue is written), federation streams
// (incoming ones closed with system-shutdown, outgoing ones once their
// queue is written),
// background jobs, the rooms users follow
// (written), the archive writer (flushed), the store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	admin, hs := s.admin, s.http
	s.mu.Unlock()
	var errs []error
	if admin != nil {
		admin.stopAccepting()
	}
	if hs != nil {
		// In-flight admin requests (an export) finish first, for a
		// while: the rest of the shutdown needs its share of ctx. Those
		// still running are then cut off, which cancels their contexts
		// (net/http does not wait for their handlers: the gate below
		// does).
		wait := adminHTTPShutdownWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl)/2)
		}
		hctx, cancel := context.WithTimeout(ctx, wait)
		err := hs.Shutdown(hctx)
		cancel()
		if err != nil {
			hs.Close()
			errs = append(errs, fmt.Errorf("server: http: %w", err))
		}
	}
	// The commands still running end before what they use stops, within
	// adminCloseGrace (the rest of the shutdown keeps its share of ctx;
	// one that does not end then fails on the stopped writer or closed
	// store). Socket commands keep their connection meanwhile, to
	// answer; then the socket is cut, which cancels any still running.
	gctx, cancel := context.WithTimeout(ctx, adminCloseGrace)
	gateErr := s.adminRuns.close(gctx)
	cancel()
	if gateErr != nil {
		errs = append(errs, fmt.Errorf("server: admin commands %w", gateErr))
	}
	if admin != nil {
		admin.cut()
		// Its own grace: the gate's may be spent. With commands
		// still running, their goroutines are not waited for.
		if gateErr == nil {
			actx, cancel := context.WithTimeout(ctx, adminCloseGrace)
			if err := admin.wait(actx); err != nil {
				errs = append(errs, fmt.Errorf("server: %w", err))
			}
			cancel()
		}
	}
	for _, m := range s.mucs {
		m.Stop()
	}
	if err := s.c2s.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	// After the sessions: their last presence, and the rooms' last
	// words, go out to components and other servers before the streams
	// close.
	if s.components != nil {
		if err := s.components.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.s2s != nil {
		if err := s.s2s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.stopJobs != nil {
		s.stopJobs()
	}
	s.serveWG.Wait()
	if s.push != nil {
		// No timeout runs on the stopped router or the closed
		// store, and no notification is built from here on (one
		// already built may still be on its way to the router).
		s.push.Close()
	}
	// Sessions and rooms are gone: write the rooms users follow and
	// flush the archive before the store closes.
	if err := s.inbox.Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("server: %w", err))
	}
	if err := s.archiveWriter.Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("server: archive: %w", err))
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("server: close store: %w", err))
	}
	s.log.Info("server stopped")
	return errors.Join(errs...)
}

// Run starts the server and serves until ctx is done, then shuts down
// within the configured timeout.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		s.db.Close()
		return err
	}
	<-ctx.Done()
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout.Duration())
	defer cancel()
	return s.Shutdown(sctx)
}

// csiQueue is the c2s option that offers Client State Indication: 0 when
// [c2s] csi is off.
func csiQueue(c config.C2S) int {
	if !c.CSI {
		return 0
	}
	return c.CSIQueue
}
