package muc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/mam"
	"switchboard/xmpp/wire"
)

// Namespaces.
const (
	NS           = "http://jabber.org/protocol/muc"
	NSUser       = xmpp.NSMUCUser
	NSAdmin      = "http://jabber.org/protocol/muc#admin"
	NSOwner      = "http://jabber.org/protocol/muc#owner"
	NSRoomConf   = "http://jabber.org/protocol/muc#roomconfig"
	NSRoomInfo   = "http://jabber.org/protocol/muc#roominfo"
	NSStableID   = "http://jabber.org/protocol/muc#stable_id"
	NSData       = xmpp.NSData
	NSDelay      = "urn:xmpp:delay"
	NSSID        = xmpp.NSStanzaID
	NSOccupant   = "urn:xmpp:occupant-id:0"
	NSPing       = "urn:xmpp:ping"
	NSMAM        = "urn:xmpp:mam:2"
	NSConference = "jabber:x:conference"
)

// Room kinds.
const (
	KindRoom    = "room"
	KindCompany = "company"
	KindIssue   = "issue"
)

// Options configure a MUC service.
type Options struct {
	// Domain is the service's domain (conference.example.org).
	Domain string
	// Host is the user domain the service belongs to.
	Host string
	// Issues makes this the issue-chat service: rooms are issue keys,
	// persistent, open to the host's users, created on first join.
	Issues bool
	// MayCreate reports whether a user may create rooms (the creation
	// ACL); nil allows the host's users.
	MayCreate func(ctx context.Context, user jid.JID) bool
	// InGroup reports whether a user is a member of a configured group,
	// for private rooms' access lists ("group:NAME").
	InGroup func(user jid.JID, group string) bool
	// CompanyRoom names the company-wide room ("" = none): persistent,
	// members-only, every user of Host a member.
	CompanyRoom string
	// DefaultHistory is the history length of new rooms (default 20).
	DefaultHistory int
	// IdleStop stops an empty room's goroutine after this long (default
	// 5 minutes); it restarts from the store on the next stanza.
	IdleStop time.Duration
	// LockTimeout is how long a room created by a join stays locked
	// awaiting its owner's configuration (XEP-0045 §10.1.1) before it
	// opens with the defaults (default 5 minutes).
	LockTimeout time.Duration
	// Secret keys occupant ids (XEP-0421).
	Secret []byte
	Logger *slog.Logger
}

// Archive is the room archive (XEP-0313 for rooms).
type Archive interface {
	// QueryRoomArchive answers a MAM query st on a room's archive, as
	// view says the requester sees it (records before view.NotBefore
	// hidden, real JIDs shown or not).
	QueryRoomArchive(ctx context.Context, room jid.JID, st *xmpp.Stanza, view mam.RoomView) (*xmpp.Stanza, error)
	// FormatID returns the opaque id clients see for an archive id.
	FormatID(id uint64) string
}

// RoomStore is what the service uses of the room store (*store.Rooms):
// the persistent rooms' records. Get answers store.ErrNotFound for a room
// that is not stored; any other error is the store's failure.
type RoomStore interface {
	Get(ctx context.Context, jid string) (store.Room, error)
	Put(ctx context.Context, room store.Room) error
	Delete(ctx context.Context, jid string) error
	List(ctx context.Context, service string) ([]store.Room, error)
}

var _ RoomStore = (*store.Rooms)(nil)

// Deps are the service's collaborators.
type Deps struct {
	Rooms   RoomStore
	History *store.Archive
	Writer  *store.ArchiveWriter
	MAM     Archive
	Router  xmpp.Router
	Inbox   *Inbox // optional: rooms in users' conversation lists (inbox.go)
}

// Service is a multi-user chat service (a component).
type Service struct {
	opts   Options
	deps   Deps
	log    *slog.Logger
	domain jid.JID

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	active map[string]*room
	closed bool
}

var _ xmpp.Component = (*Service)(nil)

// New returns a service.
func New(opts Options, deps Deps) (*Service, error) {
	if deps.Rooms == nil || deps.History == nil || deps.Writer == nil || deps.MAM == nil || deps.Router == nil {
		return nil, errors.New("muc: missing dependency")
	}
	d, err := jid.Parse(opts.Domain)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
		return nil, fmt.Errorf("muc: invalid service domain %q", opts.Domain)
	}
	if opts.DefaultHistory <= 0 {
		opts.DefaultHistory = 20
	}
	if opts.IdleStop <= 0 {
		opts.IdleStop = 5 * time.Minute
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{opts: opts, deps: deps, log: opts.Logger.With(xmpp.LogDomain, opts.Domain), domain: d,
		ctx: ctx, cancel: cancel, active: map[string]*room{}}, nil
}

// Domain implements xmpp.Component.
func (s *Service) Domain() string { return s.opts.Domain }

// Start creates the company room if configured.
func (s *Service) Start(ctx context.Context) error {
	if s.opts.CompanyRoom == "" {
		return nil
	}
	rj, err := jid.New(s.opts.CompanyRoom, s.opts.Domain, "")
	if err != nil {
		return fmt.Errorf("muc: company room %q: %w", s.opts.CompanyRoom, err)
	}
	_, err = s.deps.Rooms.Get(ctx, rj.String())
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("muc: company room: %w", err)
	}
	r := s.newRoomData(rj, jid.JID{})
	r.Kind, r.Name = KindCompany, s.opts.CompanyRoom
	r.Persistent, r.MembersOnly, r.Public = true, true, true
	if err := s.deps.Rooms.Put(ctx, r); err != nil {
		return fmt.Errorf("muc: company room: %w", err)
	}
	s.log.Info("company room created", "room", rj.String())
	return nil
}

// stopGrace bounds how long Stop waits for the rooms to drain their
// queues and tell their occupants (332) before it cancels them.
const stopGrace = 5 * time.Second

// Stop ends every room goroutine: from now on stanzas are refused
// (service-unavailable); each room handles what it had queued, then tells
// its occupants that the service is going down (XEP-0045 §11.2, 332).
func (s *Service) Stop() {
	s.mu.Lock()
	s.closed = true
	rooms := make([]*room, 0, len(s.active))
	for _, r := range s.active {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.post(item{stop: true}) // a full inbox: cancelled below
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	s.cancel()
	<-done
}

func (s *Service) newRoomData(rj jid.JID, creator jid.JID) store.Room {
	r := store.Room{
		JID: rj.String(), Kind: KindRoom, Name: rj.Localpart(),
		Public: true, AllowInvites: true, AllowPM: true, WhoIs: "moderators",
		HistoryLength: s.opts.DefaultHistory, Created: time.Now(),
		Affiliations: map[string]string{},
	}
	if !xmpp.IsZero(creator) {
		r.Creator = creator.Bare().String()
		r.Affiliations[r.Creator] = affOwner
	}
	if s.opts.Issues {
		r.Kind, r.Persistent, r.WhoIs = KindIssue, true, "anyone"
		r.Name = rj.Localpart()
		r.IssueKey = rj.Localpart()
	}
	return r
}

// Route implements xmpp.Component.
func (s *Service) Route(ctx context.Context, st *xmpp.Stanza) {
	if st.To.Localpart() == "" {
		s.routeService(ctx, st)
		return
	}
	posted, err := s.deliver(st.To.Bare(), item{st: st})
	if err != nil {
		s.bounce(ctx, st, xmpp.StanzaError(stanza.ServiceUnavailable, "the service is shutting down"))
		return
	}
	if !posted {
		s.bounce(ctx, st, xmpp.StanzaError(stanza.ResourceConstraint, "the room is busy"))
	}
}

func (s *Service) bounce(ctx context.Context, st *xmpp.Stanza, err error) {
	if e := st.ErrorReply(xmpp.AsStanzaError(err)); e != nil && !xmpp.IsZero(st.From) {
		s.deps.Router.Route(ctx, e)
	}
}

// deliver posts st to the running actor of a room, starting it. Finding
// the actor and posting happen under s.mu, as the actor's decision to stop
// (stopped) does: a stanza is never posted to an actor that has already
// decided to stop with an empty inbox.
func (s *Service) deliver(rj jid.JID, it item) (bool, error) {
	key := rj.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, errors.New("muc: closed")
	}
	if r := s.active[key]; r != nil {
		return r.post(it), nil
	}
	r := newRoom(s, rj)
	s.active[key] = r
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		r.run(s.ctx)
	}()
	return r.post(it), nil
}

// stopped removes an actor that ended (idle or destroyed); it reports
// false if stanzas arrived meanwhile and the actor must go on.
func (s *Service) stopped(r *room) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(r.inbox) > 0 && !s.closed {
		return false
	}
	if s.active[r.jid.String()] == r {
		delete(s.active, r.jid.String())
	}
	return true
}

// routeService answers stanzas to the service itself: disco.
func (s *Service) routeService(ctx context.Context, st *xmpp.Stanza) {
	if !st.IsIQRequest() {
		return
	}
	p := st.Payload()
	var reply *xmpp.Stanza
	var err error
	switch {
	case st.Type == xmpp.TypeGet && p != nil && p.Name == "query" && p.Space == xmpp.NSDiscoInfo && p.AttrValue("node") == "":
		name := "Chat rooms"
		if s.opts.Issues {
			name = "Issue chats"
		}
		q := wire.New("query", xmpp.NSDiscoInfo).AddChild(
			wire.New("identity", xmpp.NSDiscoInfo, wire.Attr{Name: "category", Value: "conference"},
				wire.Attr{Name: "type", Value: "text"}, wire.Attr{Name: "name", Value: name}))
		// muc#stable_id: every room reflects groupchat messages with
		// the id their sender gave (§7.4: advertised "on both the
		// service domain and on individual MUCs").
		for _, f := range []string{NS, NSStableID, xmpp.NSDiscoInfo, xmpp.NSDiscoItem, NSMAM, NSSID, NSOccupant, NSPing} {
			q.AddChild(wire.New("feature", xmpp.NSDiscoInfo, wire.Attr{Name: "var", Value: f}))
		}
		reply = st.Result(q)
	case st.Type == xmpp.TypeGet && p != nil && p.Name == "query" && p.Space == xmpp.NSDiscoItem:
		reply, err = s.publicRooms(ctx, st)
	case st.Type == xmpp.TypeGet && p != nil && p.Name == "ping" && p.Space == NSPing:
		reply = st.Result(nil)
	default:
		err = xmpp.StanzaError(stanza.ServiceUnavailable, "")
	}
	if err != nil {
		s.bounce(ctx, st, err)
		return
	}
	s.deps.Router.Route(ctx, reply)
}

// publicRooms lists the public rooms (XEP-0045 §6.3).
func (s *Service) publicRooms(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	rooms, err := s.deps.Rooms.List(ctx, s.opts.Domain)
	if err != nil {
		return nil, fmt.Errorf("muc: list rooms: %w", err)
	}
	seen := map[string]bool{}
	type item struct{ jid, name string }
	var items []item
	for _, r := range rooms {
		if r.Public {
			items = append(items, item{r.JID, r.Name})
			seen[r.JID] = true
		}
	}
	s.mu.Lock()
	for k, r := range s.active {
		if !seen[k] && r.publicTemp.Load() {
			items = append(items, item{k, r.jid.Localpart()})
		}
	}
	s.mu.Unlock()
	sort.Slice(items, func(i, j int) bool { return items[i].jid < items[j].jid })
	q := wire.New("query", xmpp.NSDiscoItem)
	for _, it := range items {
		q.AddChild(wire.New("item", xmpp.NSDiscoItem, wire.Attr{Name: "jid", Value: it.jid}, wire.Attr{Name: "name", Value: it.name}))
	}
	return st.Result(q), nil
}
