package s2s

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/listen"
	"switchboard/xmpp/wire"
)

// Router is what federation needs of the router: it delivers the stanzas
// other servers send, and says which domains are served here.
type Router interface {
	Route(ctx context.Context, st *xmpp.Stanza)
	Serves(domain string) bool
}

// Options configure a Server.
type Options struct {
	// TLS holds the certificate offered to incoming connections
	// (STARTTLS); nil offers no TLS.
	TLS *tls.Config
	// RequireEncryption makes both directions negotiate TLS before
	// dialback.
	RequireEncryption bool
	// Secret keys the dialback keys (XEP-0185); at least 16 bytes.
	Secret []byte
	// ConnectTimeout bounds connecting and negotiating, dialback
	// included; an incoming connection gets twice that to authenticate
	// a first domain pair (it waits for the verification).
	ConnectTimeout time.Duration
	// IdleTimeout closes an outgoing stream nothing was sent on, and an
	// authenticated incoming one nothing was received on, for that long.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write (default 30 s).
	WriteTimeout time.Duration
	// QueueStanzas and QueueBytes bound the stanzas waiting for one
	// peer.
	QueueStanzas int
	QueueBytes   int
	// MaxInbound bounds incoming connections (0: unlimited).
	MaxInbound int
	// MaxInboundPerIP bounds incoming connections from one address
	// (0: unlimited), so that one address cannot take every MaxInbound
	// slot.
	MaxInboundPerIP int
	// MaxOutbound bounds the peers at once: pairs with a connection open
	// or being opened.
	MaxOutbound int
	// MaxStanzaSize bounds a received stanza (RFC 6120 §13.12).
	MaxStanzaSize int
	// Allow, when not empty, lists the only domains federated with;
	// Deny lists domains never federated with.
	Allow, Deny []string
	// Routes maps domains to host:port addresses, before DNS.
	Routes map[string]string
	// Resolver looks up SRV records; nil is net.DefaultResolver.
	Resolver *net.Resolver
	Logger   *slog.Logger
	// TraceXML logs every element received at debug level.
	TraceXML bool
}

// maxVerifications bounds the dialback verifications running at once.
const maxVerifications = 64

// pair is an authenticated direction: stanzas from remote to local
// (inbound), or from local to remote (a peer).
type pair struct{ local, remote string }

// Server federates with other servers: it serves the server-to-server
// listener and keeps a peer per remote domain pair for outgoing stanzas.
type Server struct {
	opts   Options
	router Router
	log    *slog.Logger
	allow  map[string]bool
	deny   map[string]bool
	nextID atomic.Uint64
	// dialContext connects to peers (net.Dialer's; tests replace it).
	dialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// verifications bounds the dialback verifications running at
	// once, server-wide: each is an outgoing connection a peer's key
	// asks for.
	verifications chan struct{}

	// ctx ends at Shutdown: peers close their streams, verifications
	// stop.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closing bool
	peers   map[pair]*peer
	inbound map[*inConn]struct{}
	// perIP counts the incoming connections of each address.
	perIP     map[string]int
	perIPPeak xmpp.MapPeak
	listeners map[net.Listener]struct{}
	wg        sync.WaitGroup
}

// New returns a Server delivering received stanzas to router.
func New(opts Options, router Router) (*Server, error) {
	if router == nil {
		return nil, errors.New("s2s: no router")
	}
	if len(opts.Secret) < 16 {
		return nil, errors.New("s2s: dialback secret shorter than 16 bytes")
	}
	if opts.RequireEncryption && opts.TLS == nil {
		return nil, errors.New("s2s: encryption required without a TLS certificate")
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 15 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 10 * time.Minute
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.QueueStanzas <= 0 {
		opts.QueueStanzas = 1000
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = 4 << 20
	}
	if opts.MaxOutbound <= 0 {
		opts.MaxOutbound = 1000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	s := &Server{
		opts: opts, router: router, log: opts.Logger.With("component", "s2s"),
		allow: map[string]bool{}, deny: map[string]bool{},
		peers: map[pair]*peer{}, inbound: map[*inConn]struct{}{}, perIP: map[string]int{}, listeners: map[net.Listener]struct{}{},
	}
	for _, d := range opts.Allow {
		s.allow[d] = true
	}
	for _, d := range opts.Deny {
		s.deny[d] = true
	}
	s.dialContext = (&net.Dialer{}).DialContext
	s.verifications = make(chan struct{}, maxVerifications)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// allowed reports whether the configuration lets the server federate with
// domain.
func (s *Server) allowed(domain string) bool {
	if len(s.allow) > 0 && !s.allow[domain] {
		return false
	}
	return !s.deny[domain]
}

// Serve accepts incoming server connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	err := listen.Loop(ln, s.isClosing,
		func(err error) { s.log.Warn("s2s accept failed; retrying", xmpp.LogErr, err) },
		s.accept)
	if err != nil {
		return fmt.Errorf("s2s: accept: %w", err)
	}
	return nil
}

// isClosing reports whether Shutdown has begun.
func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) accept(nc net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	ip := listen.RemoteIP(nc.RemoteAddr())
	switch {
	case s.opts.MaxInbound > 0 && len(s.inbound) >= s.opts.MaxInbound:
		s.refuseLocked(nc, "resource-constraint", "too many server connections")
		s.log.Warn("incoming server connection refused: too many", xmpp.LogRemote, ip, "max", s.opts.MaxInbound)
		return
	case s.opts.MaxInboundPerIP > 0 && s.perIP[ip] >= s.opts.MaxInboundPerIP:
		// As c2s answers an address over its limit.
		s.refuseLocked(nc, "policy-violation", "too many server connections from your address")
		s.log.Warn("incoming server connection refused: too many from the address", xmpp.LogRemote, ip, "max", s.opts.MaxInboundPerIP)
		return
	}
	c := newInConn(s, nc)
	s.inbound[c] = struct{}{}
	s.perIP[ip]++
	s.perIPPeak.Grew(len(s.perIP))
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.run()
		s.mu.Lock()
		delete(s.inbound, c)
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
			s.perIP = xmpp.CompactMap(s.perIP, &s.perIPPeak)
		}
		s.mu.Unlock()
	}()
}

// refuseLocked unlocks s.mu and closes an incoming connection with a
// stream error: RFC 6120 §4.9.3.17 (resource-constraint) or §4.9.3.14
// (policy-violation), after a header of ours (§4.9.1.2), not waiting for
// the peer's.
func (s *Server) refuseLocked(nc net.Conn, cond, text string) {
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = nc.Write(wire.AppendStreamEnd(appendHeader(nil, "", "", newStreamID()), cond, text))
		nc.Close()
	}()
}

// Route sends a stanza to another server: it is queued on the peer for
// its domain pair, which connects and authenticates first if need be
// (router.Remote).
func (s *Server) Route(ctx context.Context, st *xmpp.Stanza) {
	local, remote := st.From.Domainpart(), st.To.Domainpart()
	if local == "" || !s.router.Serves(local) {
		// RFC 6120 §4.9.3.9: stanzas between servers carry a 'from'
		// of the sending server's domains; nothing else is sent.
		s.log.Debug("stanza to a remote domain without a local sender dropped", "to", st.To.String())
		return
	}
	if !s.allowed(remote) {
		s.bounce(ctx, st, stanza.NotAllowed, "federation with "+remote+" is not allowed")
		return
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.bounce(ctx, st, stanza.RemoteServerTimeout, "the server is shutting down")
		return
	}
	key := pair{local: local, remote: remote}
	p := s.peers[key]
	if p == nil {
		if len(s.peers) >= s.opts.MaxOutbound {
			s.mu.Unlock()
			s.bounce(ctx, st, stanza.ResourceConstraint, "too many remote domains at once")
			return
		}
		p = &peer{s: s, pair: key, wake: make(chan struct{}, 1)}
		s.peers[key] = p
	}
	ok := p.enqueue(st)
	s.mu.Unlock()
	if !ok {
		s.bounce(ctx, st, stanza.ResourceConstraint, "too many stanzas waiting for "+remote)
	}
}

// retire forgets a peer whose goroutine ended (its stream closed, idle or
// failed) with nothing queued; the next stanza for its pair makes a new
// one. Peers are thus as many as pairs with a connection open or being
// opened.
func (s *Server) retire(p *peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running && s.peers[p.pair] == p {
		delete(s.peers, p.pair)
	}
}

// bounce answers a stanza that cannot be delivered to its remote domain
// (RFC 6120 §10.4.3). Presence broadcasts and probes get no answer: the
// contact stays unavailable, as it would had the presence arrived.
func (s *Server) bounce(ctx context.Context, st *xmpp.Stanza, cond stanza.Condition, text string) {
	if st.IsAvailabilityOrProbe() {
		return
	}
	if e := st.ErrorReply(xmpp.StanzaError(cond, text)); e != nil {
		s.router.Route(ctx, e)
	}
}

// resolve returns the addresses to try for domain, in order: a configured
// route, else the targets of its _xmpp-server._tcp SRV records (RFC 6120
// §3.2.1), else the domain itself on port 5269 (§3.2.2).
func (s *Server) resolve(ctx context.Context, domain string) ([]string, error) {
	if addr, ok := s.opts.Routes[domain]; ok {
		return []string{addr}, nil
	}
	_, srvs, err := s.opts.Resolver.LookupSRV(ctx, "xmpp-server", "tcp", domain)
	if err == nil && len(srvs) > 0 {
		if len(srvs) == 1 && (srvs[0].Target == "." || srvs[0].Target == "") {
			// RFC 6120 §3.2.1 step 3 / RFC 2782: the service is
			// decidedly not available at this domain.
			return nil, fmt.Errorf("s2s: %s offers no server-to-server service", domain)
		}
		addrs := make([]string, 0, len(srvs))
		for _, r := range srvs {
			addrs = append(addrs, net.JoinHostPort(strings.TrimSuffix(r.Target, "."), strconv.Itoa(int(r.Port))))
		}
		return addrs, nil
	}
	return []string{net.JoinHostPort(domain, "5269")}, nil
}

// Shutdown closes incoming connections with system-shutdown and the
// peers' streams (after sending what they hold), and waits for them
// until ctx ends; then it cuts what remains.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	ins := make([]*inConn, 0, len(s.inbound))
	for c := range s.inbound {
		ins = append(ins, c)
	}
	s.mu.Unlock()
	s.cancel()
	for _, c := range ins {
		c.shutdown() // the connection's goroutine writes the error
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.inbound {
		c.raw.Close()
	}
	for _, p := range s.peers {
		p.cut()
	}
	s.mu.Unlock()
	<-done
	return fmt.Errorf("s2s: shutdown: %w", ctx.Err())
}

// InboundCount is the number of incoming server connections, for tests
// and metrics.
func (s *Server) InboundCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inbound)
}
