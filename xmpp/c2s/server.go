package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/auth"
	"switchboard/xmpp/listen"
)

// Router is what a client session needs from the router.
type Router interface {
	xmpp.Router
	// RouteFromClient routes a stanza the client sent.
	RouteFromClient(ctx context.Context, st *xmpp.Stanza)
	IsLocal(domain string) bool
	Bind(ctx context.Context, sess xmpp.Session, bare jid.JID, resource string) (jid.JID, error)
	Unbind(ctx context.Context, sess xmpp.Session, full jid.JID)
	// Unacknowledged takes the stanzas an ended session was given but
	// whose receipt its client did not acknowledge (XEP-0198 §4). A
	// session that closes has unbound by then; one whose hibernation
	// ends has left (Leaving) and unbinds after.
	Unacknowledged(ctx context.Context, sess xmpp.Session, sts []*xmpp.Stanza)
	// Leaving takes a session that is closing, or handing over, still
	// bound, off the account's available resources: it refuses what is
	// routed to it from then on.
	Leaving(sess xmpp.Session)
	// Hibernated says sess hibernates (XEP-0198 §5), with what its
	// client was sent and did not acknowledge, then what waits to be
	// written.
	Hibernated(ctx context.Context, sess xmpp.Session, pending []*xmpp.Stanza)
	// AckDelayed says sess's client has not acknowledged what it was
	// sent for Options.MaxAckDelay, with what it did not acknowledge,
	// then what waits to be written.
	AckDelayed(ctx context.Context, sess xmpp.Session, pending []*xmpp.Stanza)
}

// Registrar creates accounts for XEP-0077 in-band registration. Errors
// that are stanza errors (conflict, not-acceptable) are sent as they are.
type Registrar interface {
	Register(ctx context.Context, host, username, password string) error
}

// Limits bound what one connection may use.
type Limits struct {
	MaxStanzaSize      int
	AuthTimeout        time.Duration
	IdleTimeout        time.Duration // 0 = none
	RateBytesPerSecond int           // 0 = unlimited
	RateBurstBytes     int
	OutboxStanzas      int
	OutboxBytes        int
	MaxConnsPerIP      int // 0 = unlimited
	MaxAuthAttempts    int
	WriteTimeout       time.Duration
}

// Options configure a Server.
type Options struct {
	// DefaultHost names the server in stream headers sent before the
	// client said which host it wants.
	DefaultHost string
	// PostAuthFeatures are extra stream feature elements (XML) offered
	// with resource binding, e.g. roster versioning.
	PostAuthFeatures []string
	// Registration lists hosts with in-band registration open.
	Registration map[string]bool
	// TLS is the server's TLS configuration; nil disables STARTTLS.
	TLS *tls.Config
	// RequireTLS makes STARTTLS mandatory before authentication.
	RequireTLS bool
	Limits     Limits
	Logger     *slog.Logger
	// TraceXML logs every element read and stanza written at debug level.
	TraceXML bool
	// ResumeTimeout is how long a session with stream management
	// (XEP-0198) whose connection failed stays bound, waiting for the
	// client to resume it, at most; 0 disables resumption (acks remain).
	ResumeTimeout time.Duration
	// MaxAckDelay is how long a client with stream management may leave
	// the server's request for an acknowledgement (XEP-0198 §4)
	// unanswered, its connection up, before Router.AckDelayed runs; 0
	// never runs it.
	MaxAckDelay time.Duration
	// CSIQueue offers Client State Indication (XEP-0352) when positive:
	// an inactive client's outbox sends what it holds once it holds that
	// many stanzas (csi.go), or half of Limits.OutboxStanzas if fewer.
	CSIQueue int
	// ResumeCountsKept is how many ended resumable sessions' counts of
	// the stanzas they handled are kept, for the <failed/> of a late
	// resumption (endedCounts); 0 keeps none.
	ResumeCountsKept int
}

// Deps are the Server's collaborators.
type Deps struct {
	Router    Router
	Auth      *auth.Server
	Throttle  *auth.Throttle
	Registrar Registrar
}

// Server accepts client connections.
type Server struct {
	opts Options
	deps Deps
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]bool
	conns     map[*conn]bool
	perIP     map[string]int
	// The most entries conns, perIP and resumable held since each was
	// last compacted (xmpp.CompactMap): after a peak of connections
	// they shrink again.
	connsPeak, perIPPeak, resumablePeak xmpp.MapPeak
	// resumable maps the SM-IDs of resumable sessions to them
	// (XEP-0198 §5), from enable to the session's end.
	resumable map[string]*conn
	// ended are the counts of the resumable sessions that ended last.
	ended   endedCounts
	closing bool
	wg      sync.WaitGroup
	nextID  atomic.Uint64
}

// New returns a Server.
func New(opts Options, deps Deps) (*Server, error) {
	if deps.Router == nil || deps.Auth == nil {
		return nil, errors.New("c2s: missing router or authenticator")
	}
	if opts.RequireTLS && opts.TLS == nil {
		return nil, errors.New("c2s: TLS required but not configured")
	}
	l := &opts.Limits
	if l.MaxStanzaSize <= 0 {
		l.MaxStanzaSize = 256 << 10
	}
	if l.AuthTimeout <= 0 {
		l.AuthTimeout = 30 * time.Second
	}
	if l.OutboxStanzas <= 0 {
		l.OutboxStanzas = 4096
	}
	if l.OutboxBytes <= 0 {
		l.OutboxBytes = 4 << 20
	}
	if l.MaxAuthAttempts <= 0 {
		l.MaxAuthAttempts = 5
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = 30 * time.Second
	}
	if l.RateBytesPerSecond > 0 && l.RateBurstBytes < l.MaxStanzaSize {
		l.RateBurstBytes = l.MaxStanzaSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if half := max(1, l.OutboxStanzas/2); opts.CSIQueue > half {
		// What is held counts towards the outbox: it is sent long
		// before the session could be cut off as a slow consumer.
		opts.Logger.Info("c2s: CSI holds at most half the outbox", "csi_queue", opts.CSIQueue, "held_at_most", half)
		opts.CSIQueue = half
	}
	if opts.DefaultHost == "" {
		opts.DefaultHost = "localhost"
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts: opts, deps: deps, log: opts.Logger,
		ctx: ctx, cancel: cancel,
		listeners: map[net.Listener]bool{},
		conns:     map[*conn]bool{},
		perIP:     map[string]int{},
		resumable: map[string]*conn{},
		ended:     endedCounts{max: opts.ResumeCountsKept},
	}, nil
}

// Serve accepts connections on ln until Shutdown or a listener error.
// With directTLS the TLS handshake happens first (XEP-0368).
func (s *Server) Serve(ln net.Listener, directTLS bool) error {
	if directTLS && s.opts.TLS == nil {
		return errors.New("c2s: direct TLS without a TLS configuration")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[ln] = true
	s.mu.Unlock()
	err := listen.Loop(ln, s.isClosing,
		func(err error) { s.log.Warn("accept failed; retrying", xmpp.LogErr, err) },
		func(nc net.Conn) { s.accept(nc, transport{directTLS: directTLS}) })
	if err != nil {
		return fmt.Errorf("c2s: accept: %w", err)
	}
	return nil
}

// isClosing reports whether Shutdown has begun.
func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// ServeConn serves a client stream on nc, a transport the caller set up,
// such as a WebSocket connection (package ws), and returns at once. The
// stream is secure when state, the TLS state of the connection below nc,
// is set; STARTTLS is not offered on it. The connection counts towards
// the limits of its remote address as any other, and Shutdown closes it.
func (s *Server) ServeConn(nc net.Conn, state *tls.ConnectionState) {
	s.accept(nc, transport{framed: true, state: state})
}

func (s *Server) accept(nc net.Conn, t transport) {
	ip := listen.RemoteIP(nc.RemoteAddr())
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	over := s.opts.Limits.MaxConnsPerIP > 0 && s.perIP[ip] >= s.opts.Limits.MaxConnsPerIP
	if !over {
		s.perIP[ip]++
		s.perIPPeak.Grew(len(s.perIP))
	}
	c := newConn(s, nc, t)
	if !over {
		s.conns[c] = true
		s.connsPeak.Grew(len(s.conns))
		c.ipHeld = true
	}
	s.wg.Add(1)
	s.mu.Unlock()
	if over {
		go func() {
			defer s.wg.Done()
			s.log.Warn("too many connections from address", xmpp.LogRemote, ip)
			c.refuse("policy-violation", "too many connections from your address")
		}()
		return
	}
	// The connection is released (release) by whichever goroutine ends
	// it: run's, or a later one of its ingress (conn.await).
	go c.run(s.ctx)
}

// release forgets an admitted connection that has ended.
func (s *Server) release(c *conn) {
	s.mu.Lock()
	s.releaseIPLocked(c)
	delete(s.conns, c)
	s.conns = xmpp.CompactMap(s.conns, &s.connsPeak)
	s.mu.Unlock()
	s.wg.Done()
}

// releaseIPLocked stops counting c towards its address's limit (once).
func (s *Server) releaseIPLocked(c *conn) {
	if !c.ipHeld {
		return
	}
	c.ipHeld = false
	ip := listen.RemoteIP(c.raw.RemoteAddr())
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
		s.perIP = xmpp.CompactMap(s.perIP, &s.perIPPeak)
	}
}

// Shutdown stops accepting, closes every connection with a system-shutdown
// stream error and waits for them to end or ctx to expire.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close("system-shutdown", "")
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			// The TCP connection (set once), not the TLS layer over it:
			// no close_notify to a peer that is not reading. A framed
			// transport closed a second time closes the same way
			// (ws.Conn).
			c.raw.Close()
		}
		s.mu.Unlock()
		s.cancel()
		<-done
		return fmt.Errorf("c2s: shutdown: %w", ctx.Err())
	}
}

// ConnCount returns the number of open connections, with the sessions
// that hibernate without one (XEP-0198) until they end.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
