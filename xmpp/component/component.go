package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/listen"
	"switchboard/xmpp/wire"
)

// NSAccept is the namespace of a component's stream (XEP-0114).
const NSAccept = "jabber:component:accept"

// Router delivers the stanzas components send, and the errors that answer
// stanzas a component could not take.
type Router interface {
	Route(ctx context.Context, st *xmpp.Stanza)
}

// Config is one component the server accepts.
type Config struct {
	// Domain is the component's domain.
	Domain string
	// Secret is the shared secret of its handshake.
	Secret string
}

// Options configure a Server.
type Options struct {
	// HandshakeTimeout bounds the time from the connection to a
	// successful handshake (default 30 s).
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write (default 30 s).
	WriteTimeout time.Duration
	// QueueStanzas and QueueBytes bound the stanzas waiting to be written
	// to one component (defaults 1000 and 4 MiB).
	QueueStanzas int
	QueueBytes   int
	// MaxPending bounds the connections that have not completed their
	// handshake (default 16); beyond it a new one is closed with
	// resource-constraint.
	MaxPending int
	// MaxStanzaSize bounds a received stanza (RFC 6120 §13.12; default
	// 256 KiB).
	MaxStanzaSize int
	Logger        *slog.Logger
	// TraceXML logs every element received at debug level.
	TraceXML bool
}

// closeLinger bounds how long a closing stream waits for the component's
// closing tag.
const closeLinger = 2 * time.Second

// Server accepts the configured components' connections.
type Server struct {
	opts   Options
	router Router
	log    *slog.Logger
	routes map[string]*Route // fixed after New
	nextID atomic.Uint64
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closing   bool
	conns     map[*conn]struct{}
	pending   int // conns without a handshake yet
	listeners map[net.Listener]struct{}
	wg        sync.WaitGroup
}

// New returns a Server for comps, delivering what they send to router.
func New(opts Options, router Router, comps []Config) (*Server, error) {
	if router == nil {
		return nil, errors.New("component: no router")
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 30 * time.Second
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
	if opts.MaxPending <= 0 {
		opts.MaxPending = 16
	}
	if opts.MaxStanzaSize <= 0 {
		opts.MaxStanzaSize = 256 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts: opts, router: router, log: opts.Logger.With("component", "external"),
		routes: make(map[string]*Route, len(comps)),
		conns:  map[*conn]struct{}{}, listeners: map[net.Listener]struct{}{},
	}
	for _, c := range comps {
		d, err := jid.New("", c.Domain, "")
		if err != nil || d.Domainpart() != c.Domain {
			return nil, fmt.Errorf("component: invalid domain %q", c.Domain)
		}
		if c.Secret == "" {
			return nil, fmt.Errorf("component: %s has no secret", c.Domain)
		}
		if s.routes[c.Domain] != nil {
			return nil, fmt.Errorf("component: %s configured twice", c.Domain)
		}
		s.routes[c.Domain] = &Route{s: s, domain: c.Domain, addr: d, secret: c.Secret}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Components returns the routes of the configured components, by domain,
// for the router (xmpp.Component).
func (s *Server) Components() []*Route {
	out := make([]*Route, 0, len(s.routes))
	for _, r := range s.routes {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Route) int { return strings.Compare(a.domain, b.domain) })
	return out
}

// Connected reports whether the component of domain is connected (its
// handshake done).
func (s *Server) Connected(domain string) bool {
	r := s.routes[domain]
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn != nil
}

// Serve accepts component connections on ln until Shutdown.
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
		func(err error) { s.log.Warn("component accept failed; retrying", xmpp.LogErr, err) },
		s.accept)
	if err != nil {
		return fmt.Errorf("component: accept: %w", err)
	}
	return nil
}

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
	if s.pending >= s.opts.MaxPending {
		s.wg.Add(1) // under s.mu: Shutdown waits for it
		s.mu.Unlock()
		s.log.Warn("component connection refused: too many without a handshake", xmpp.LogRemote, nc.RemoteAddr().String(), "max", s.opts.MaxPending)
		go func() {
			defer s.wg.Done()
			// RFC 6120 §4.9.3.17, after a header of ours (§4.9.1.2).
			_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = nc.Write(wire.AppendStreamEnd(appendHeader(nil, "", newStreamID()), "resource-constraint", "too many component connections"))
			nc.Close()
		}()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.pending++
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.run()
		s.mu.Lock()
		delete(s.conns, c)
		if !c.authed {
			s.pending--
		}
		s.mu.Unlock()
	}()
}

// authenticated moves c out of the connections without a handshake.
func (s *Server) authenticated() {
	s.mu.Lock()
	s.pending--
	s.mu.Unlock()
}

// bounce answers a stanza a component could not take. Presence of
// availability and probes get no answer (RFC 6120 §10.4.3, as for a
// remote server that cannot be reached).
func (s *Server) bounce(st *xmpp.Stanza, cond stanza.Condition, text string) {
	if st.IsAvailabilityOrProbe() || xmpp.IsZero(st.From) {
		return
	}
	if e := st.ErrorReply(xmpp.StanzaError(cond, text)); e != nil {
		s.router.Route(s.ctx, e)
	}
}

// Shutdown closes every component connection with system-shutdown, after
// writing what its queue holds, and waits for them until ctx ends; then
// it cuts what remains.
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
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.raw.Close()
		}
		s.mu.Unlock()
		<-done
		err = fmt.Errorf("component: shutdown: %w", ctx.Err())
	}
	s.cancel()
	return err
}

// Route is a configured component as the router sees it: every stanza for
// its domain comes to Route (xmpp.Component).
type Route struct {
	s      *Server
	domain string
	addr   jid.JID // the domain as a JID
	secret string

	mu   sync.Mutex // before conn.mu
	conn *conn      // the connection past its handshake; nil when none
}

var _ xmpp.Component = (*Route)(nil)

// Domain is the component's domain.
func (r *Route) Domain() string { return r.domain }

// Route queues st for the component, or answers it when the component is
// not connected or its queue is full.
func (r *Route) Route(_ context.Context, st *xmpp.Stanza) {
	_ = st.Bytes() // serialised outside r.mu (enqueue reads its length)
	r.mu.Lock()
	cond := stanza.ServiceUnavailable
	if r.conn != nil {
		cond = r.conn.enqueue(st)
	}
	r.mu.Unlock()
	switch cond {
	case "":
	case stanza.ServiceUnavailable:
		r.s.bounce(st, cond, "the component is not connected")
	default:
		r.s.bounce(st, cond, "too many stanzas waiting for the component")
	}
}

// attach makes c the component's connection; false when another one is.
func (r *Route) attach(c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		return false
	}
	r.conn = c
	return true
}

// detach forgets c: stanzas for the component are answered from now on.
func (r *Route) detach(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == c {
		r.conn = nil
	}
}
