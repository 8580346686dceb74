package muc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/mam"
)

// Rooms in the conversation list.
//
// A user's conversation list (package mam, urn:switchboard:conversations:0)
// shows the rooms the user follows: every room the user has entered as an
// occupant, from any device and on any room service of the server, since
// the user first entered it. Posting needs an occupant, so the rooms the
// user posted in are among them. Affiliation alone does not add a room (a
// company room would otherwise appear for every user of the host, opened
// or not). A room leaves the list when it no longer exists (destroyed, or
// a temporary room that emptied) and when the user removes it with the
// delete-conversation command (until the user enters it, or sends a marker
// to it, again); it is hidden, and comes back, while the
// user may not read its history (banned, or no longer a member of a
// members-only room) — the rule of room archive queries.
//
// Each entry shows the room's last message and the number of messages
// since the newest of: the user's last XEP-0333 displayed marker in the
// room (a groupchat message carrying <displayed id='the room's
// stanza-id'/>, from any of the user's devices), the user's own last
// message in the room, and the user's first entry. Nothing is written per
// room message: the unread count is computed from the room's archive when
// the list is read, counting back from the newest message up to
// mam.RoomUnreadCap (shown as unread-more, "99+"), so a list costs
// O(rooms followed × cap) however busy the rooms are. What is written is
// one record per (user, room): when the user enters the room and when a
// marker moves it on, batched by a background writer (Inbox.Start) so
// that neither joins nor markers wait for the disk in the room's
// goroutine; reading the list writes the pending changes first, unless
// the last write failed (the writer then retries with backoff).

// Inbox keeps the rooms users follow and answers the conversation list's
// questions about them (it implements mam.Rooms). One Inbox serves every
// room service of the server: create it with NewInbox, give it to each
// service (Deps.Inbox) and tell it about each (AddService), Start it, and
// Stop it after the services.
type Inbox struct {
	deps InboxDeps
	log  *slog.Logger

	mu       sync.Mutex // guards the fields below
	services map[string]*Service
	// pending holds the changes not yet written, by (user, room); at
	// most maxInboxPending (beyond: dropped and logged, read state being
	// advisory).
	pending map[[2]string]store.RoomInboxChange
	started bool

	// kick (capacity 1) wakes the writer when the first change is
	// pending; a full channel already does.
	kick chan struct{}
	stop chan struct{} // closed by Stop
	done chan struct{} // closed when the writer has exited
	// lastErr is the writer's final write's error, set before done closes.
	lastErr error
	// failures counts the writes of pending changes that failed in a row
	// (a full disk, say): the writer backs off by it (inboxRetryDelay),
	// and the conversation list does not try again for each request
	// while it is not 0. A write that the store answers (done, refused
	// as invalid, or with nothing pending) resets it.
	failures int

	flushMu sync.Mutex // one write of pending changes at a time

	// viewWait is inboxViewWait (shorter in tests).
	viewWait time.Duration
}

var _ mam.Rooms = (*Inbox)(nil)

// InboxDeps are the Inbox's collaborators.
type InboxDeps struct {
	Inbox   *store.RoomInbox
	Archive *store.Archive
	Rooms   *store.Rooms
	// IDs reads the stanza-ids that displayed markers name.
	IDs    mam.IDCodec
	Logger *slog.Logger
}

// Batching of the Inbox's writes.
const (
	inboxDelay      = 50 * time.Millisecond
	maxInboxPending = 65536
	// maxInboxRetry bounds the wait before a write that failed for the
	// store's sake (a full disk) is tried again: the wait doubles from
	// inboxDelay with each failure in a row, and so do the error lines.
	maxInboxRetry = 5 * time.Second
	// inboxViewWait bounds how long the list waits for a running room's
	// goroutine to describe the room.
	inboxViewWait = 2 * time.Second
	// markerSkew is how far ahead of the clock a marked id may be (ids
	// are times, and run ahead of the clock under load).
	markerSkew = time.Minute
)

// NewInbox returns an Inbox.
func NewInbox(deps InboxDeps) (*Inbox, error) {
	if deps.Inbox == nil || deps.Archive == nil || deps.Rooms == nil {
		return nil, errors.New("muc: inbox: missing dependency")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Inbox{deps: deps, log: log, services: map[string]*Service{}, pending: map[[2]string]store.RoomInboxChange{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), viewWait: inboxViewWait}, nil
}

// AddService makes the Inbox answer for a room service's rooms.
func (in *Inbox) AddService(s *Service) {
	in.mu.Lock()
	in.services[s.Domain()] = s
	in.mu.Unlock()
}

// Start runs the writer. Later calls do nothing.
func (in *Inbox) Start() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.started {
		return
	}
	in.started = true
	go in.run()
}

// Stop writes the pending changes and ends the writer (started or not),
// and returns that last write's error; ctx bounds the wait for a started
// writer. Without Start, Stop writes the changes itself, and a write in
// progress is not cut short by ctx (the changes are everyone's; see
// flush). Call it after the room services stopped.
func (in *Inbox) Stop(ctx context.Context) error {
	in.mu.Lock()
	started := in.started
	in.started = true // no Start after Stop
	select {
	case <-in.stop:
	default:
		close(in.stop)
	}
	in.mu.Unlock()
	if !started {
		return in.flush(ctx)
	}
	select {
	case <-in.done:
		return in.lastErr
	case <-ctx.Done():
		return fmt.Errorf("muc: inbox: %w", ctx.Err())
	}
}

// run writes pending changes, inboxDelay after the first of a batch, or
// later after failed writes (inboxRetryDelay).
func (in *Inbox) run() {
	defer close(in.done)
	t := time.NewTimer(inboxDelay)
	t.Stop()
	for {
		select {
		case <-in.kick:
		case <-in.stop:
			in.lastErr = in.flush(context.Background())
			return
		}
		in.mu.Lock()
		failures := in.failures
		in.mu.Unlock()
		t.Reset(inboxRetryDelay(failures))
		select {
		case <-t.C:
		case <-in.stop:
			t.Stop()
			in.lastErr = in.flush(context.Background())
			return
		}
		_ = in.flush(context.Background()) // logged; failures counts it
	}
}

// inboxRetryDelay is how long a batch waits after failures write failures
// in a row: inboxDelay, doubled for each, at most maxInboxRetry.
func inboxRetryDelay(failures int) time.Duration {
	d := inboxDelay
	for range failures {
		if d >= maxInboxRetry {
			break
		}
		d *= 2
	}
	return min(d, maxInboxRetry)
}

// change queues a change, merged with one pending for the same pair.
func (in *Inbox) change(c store.RoomInboxChange) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.queueLocked(c) {
		in.log.Warn("muc: inbox: too many pending changes, one dropped", xmpp.LogJID, c.Owner, "room", c.Room)
	}
}

// queueLocked merges c into pending, or adds it unless maxInboxPending
// changes are pending (false: dropped), and wakes the writer for the
// first. in.mu is held.
func (in *Inbox) queueLocked(c store.RoomInboxChange) bool {
	key := [2]string{c.Owner, c.Room}
	p, ok := in.pending[key]
	switch {
	case ok:
		if p.Joined.IsZero() || (!c.Joined.IsZero() && c.Joined.Before(p.Joined)) {
			p.Joined = c.Joined
		}
		p.ReadID = max(p.ReadID, c.ReadID)
		in.pending[key] = p
		return true
	case len(in.pending) >= maxInboxPending:
		return false
	}
	in.pending[key] = c
	if len(in.pending) == 1 {
		select {
		case in.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// flush writes the pending changes in one transaction.
func (in *Inbox) flush(ctx context.Context) error {
	in.flushMu.Lock()
	defer in.flushMu.Unlock()
	in.mu.Lock()
	if len(in.pending) == 0 {
		// Nothing is waiting to be written, so nothing fails: a
		// ForgetRoom may have taken the last change of a failed write.
		in.failures = 0
		in.mu.Unlock()
		return nil
	}
	changes := make([]store.RoomInboxChange, 0, len(in.pending))
	for _, c := range in.pending {
		changes = append(changes, c)
	}
	clear(in.pending)
	in.mu.Unlock()
	// The changes are everyone's, so the caller's cancellation does not
	// stop the write, and a write that failed queues them again (merged
	// with any made meanwhile) for the next flush. Changes the store
	// refused as invalid are dropped (it wrote the others): written
	// again they would be refused again. (The changes are built from
	// parsed JIDs, so that should not happen.)
	skipped, err := in.deps.Inbox.Apply(context.WithoutCancel(ctx), changes)
	invalid := errors.Is(err, store.ErrInvalid)
	dropped := 0
	in.mu.Lock()
	if err != nil && !invalid {
		in.failures++
		for _, c := range changes {
			if !in.queueLocked(c) {
				dropped++
			}
		}
	} else {
		// Written, but for what was refused as invalid: the store
		// answered, and nothing is failing that a retry waits for.
		in.failures = 0
	}
	in.mu.Unlock()
	if skipped > 0 { // also when invalid changes were refused beside them
		in.log.Warn("muc: inbox: rooms not followed, the per-user limit is reached", "skipped", skipped, "limit", store.MaxRoomInbox)
	}
	switch {
	case invalid:
		in.log.Error("muc: inbox: invalid changes refused and dropped, the others written", xmpp.LogErr, err)
		return fmt.Errorf("muc: inbox: %w", err)
	case err != nil:
		in.log.Error("muc: inbox: write", "changes", len(changes), xmpp.LogErr, err)
		if dropped > 0 {
			in.log.Warn("muc: inbox: too many pending changes, some dropped", "dropped", dropped)
		}
		return fmt.Errorf("muc: inbox: %w", err)
	}
	return nil
}

// joined records that user entered the room (called by the room's
// goroutine when a join succeeds; it does not wait for the disk).
func (in *Inbox) joined(r *room, user jid.JID) {
	if in == nil || user.Localpart() == "" {
		return
	}
	in.change(store.RoomInboxChange{Owner: user.Bare().String(), Room: r.jid.String(), Joined: time.Now()})
}

// marker records the XEP-0333 displayed marker in a groupchat message an
// occupant sent to the room: the room is read up to the message whose
// stanza-id (the room's) it names. Other ids are ignored.
func (in *Inbox) marker(r *room, o *occupant, st *xmpp.Stanza) {
	// Called for groupchat messages from occupants only.
	if in == nil || o.bare.Localpart() == "" {
		return
	}
	d := st.El.Child("displayed", mam.NSMarkers)
	if d == nil {
		return
	}
	id, ok := in.deps.IDs.Parse(d.AttrValue("id"))
	if !ok || id > uint64(time.Now().Add(markerSkew).UnixMicro()) {
		return
	}
	in.change(store.RoomInboxChange{Owner: o.bare.String(), Room: r.jid.String(), Joined: time.Now(), ReadID: id})
}

// RoomConversations implements mam.Rooms: the rooms user follows and may
// read, with their last message and unread count. Rooms that no longer
// exist are taken off the list.
func (in *Inbox) RoomConversations(ctx context.Context, user jid.JID) ([]mam.RoomConversation, error) {
	owner := user.Bare()
	in.mu.Lock()
	failing := in.failures > 0
	in.mu.Unlock()
	// While writes fail, the writer retries with backoff: the list does
	// not retry too (each try would fail and log again), and serves what
	// is stored, at most the pending changes behind.
	if failing {
		in.log.Debug("muc: inbox: list without the pending changes: their write failed", xmpp.LogJID, owner.String())
	} else if err := in.flush(ctx); err != nil {
		// Someone's batch could not be written (flush logged it); it is
		// still kept for the writer to retry.
		in.log.Debug("muc: inbox: list without the pending changes", xmpp.LogJID, owner.String(), xmpp.LogErr, err)
	}
	entries, err := in.deps.Inbox.List(ctx, owner.String())
	if err != nil {
		return nil, fmt.Errorf("muc: inbox: %w", err)
	}
	// Every running room is asked first and stored rooms are read, then
	// the answers are awaited together (one inboxViewWait for the whole
	// list, however many rooms are slow), then the archive is read.
	type followed struct {
		entry store.RoomInboxEntry
		room  jid.JID
		svc   *Service
		ask   <-chan inboxView // nil: view is known
		view  inboxView
	}
	var (
		rooms []followed
		gone  []string
	)
	for _, e := range entries {
		rj, err := jid.Parse(e.Room)
		if err != nil {
			gone = append(gone, e.Room)
			continue
		}
		in.mu.Lock()
		svc := in.services[rj.Domainpart()]
		in.mu.Unlock()
		if svc == nil {
			continue // a service no longer configured: kept, not shown
		}
		ask, v, err := svc.askView(ctx, rj, owner)
		if err != nil {
			return nil, err
		}
		rooms = append(rooms, followed{entry: e, room: rj, svc: svc, ask: ask, view: v})
	}
	deadline := time.Now().Add(in.viewWait)
	var out []mam.RoomConversation
	for i := range rooms {
		f := &rooms[i]
		if f.ask != nil {
			v, err := f.svc.awaitView(ctx, f.room, f.ask, deadline)
			if err != nil {
				return nil, err
			}
			f.view = v
		}
		if !f.view.exists {
			gone = append(gone, f.entry.Room)
		}
	}
	// Removed as soon as they are known gone, before the archive reads:
	// the longer the wait, the likelier that a room of the same name was
	// made and joined meanwhile, whose pending join this would drop.
	if len(gone) > 0 {
		if _, err := in.remove(ctx, owner.String(), gone...); err != nil {
			in.log.Error("muc: inbox: remove rooms that are gone", xmpp.LogJID, owner.String(), xmpp.LogErr, err)
		}
	}
	for _, f := range rooms {
		if !f.view.exists || !f.view.readable {
			continue
		}
		var notBefore uint64
		if !f.view.created.IsZero() {
			notBefore = uint64(max(f.view.created.UnixMicro(), 0))
		}
		read := max(f.entry.ReadID, uint64(max(f.entry.Joined.UnixMicro(), 0)))
		sum, err := in.deps.Archive.Summary(ctx, f.entry.Room, owner.String(), notBefore, read, mam.RoomUnreadCap)
		if err != nil {
			return nil, fmt.Errorf("muc: inbox: %w", err)
		}
		out = append(out, mam.RoomConversation{Room: f.room, Since: f.entry.Joined, Last: sum.Last, Unread: sum.Unread, More: sum.More})
	}
	return out, nil
}

// ForgetRoom implements mam.Rooms.
func (in *Inbox) ForgetRoom(ctx context.Context, user, room jid.JID) (bool, error) {
	return in.remove(ctx, user.Bare().String(), room.Bare().String())
}

// remove removes owner's entries for rooms, and reports whether any was
// stored or pending. The pending changes for those pairs are dropped
// rather than written first: flushMu keeps a write of pending changes
// taken before from landing after the removal (and putting a room back),
// and the other pending changes wait for the writer, whose backoff a
// failing store then keeps.
func (in *Inbox) remove(ctx context.Context, owner string, rooms ...string) (bool, error) {
	in.flushMu.Lock()
	defer in.flushMu.Unlock()
	var dropped []store.RoomInboxChange
	in.mu.Lock()
	for _, room := range rooms {
		key := [2]string{owner, room}
		if c, ok := in.pending[key]; ok {
			dropped = append(dropped, c)
			delete(in.pending, key)
		}
	}
	in.mu.Unlock()
	n, err := in.deps.Inbox.Remove(ctx, owner, rooms...)
	if err != nil {
		// Nothing was removed: the pending changes stay too.
		in.mu.Lock()
		for _, c := range dropped {
			in.queueLocked(c)
		}
		in.mu.Unlock()
		return false, fmt.Errorf("muc: inbox: %w", err)
	}
	return len(dropped) > 0 || n > 0, nil
}

// inboxView is what the conversation list needs to know of a room for a
// user.
type inboxView struct {
	exists   bool
	created  time.Time
	readable bool // the user may read its history
}

// askView asks room rj to describe itself for user if its goroutine runs
// (the only place a temporary room exists): the answer comes on ask (see
// awaitView). Otherwise view is the answer: from the store, or for a
// running room that cannot take the question now (busy, or the service
// shuts down) "exists, not shown this time" (the room is not forgotten).
func (s *Service) askView(ctx context.Context, rj, user jid.JID) (ask <-chan inboxView, view inboxView, err error) {
	ch := make(chan inboxView, 1)
	s.mu.Lock()
	r := s.active[rj.String()]
	// Posted under s.mu, as deliver does: a room that decided to stop
	// has left active; one that has not will run the item.
	running := r != nil
	posted := running && !s.closed && r.post(item{fn: func(_ context.Context, r *room) { ch <- r.viewFor(user) }})
	s.mu.Unlock()
	switch {
	case posted:
		return ch, inboxView{}, nil
	case running:
		return nil, inboxView{exists: true}, nil
	}
	data, err := s.deps.Rooms.Get(ctx, rj.String())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, inboxView{}, nil
	case err != nil:
		return nil, inboxView{}, fmt.Errorf("muc: inbox: %w", err)
	}
	stored := &room{svc: s, jid: rj, data: data, exists: true}
	return nil, stored.viewFor(user), nil
}

// awaitView waits until deadline for the answer askView asked room rj
// for. A room slow to answer (its goroutine waiting for the archive) is
// treated like a busy one: the rest of the list does not fail for it.
func (s *Service) awaitView(ctx context.Context, rj jid.JID, ask <-chan inboxView, deadline time.Time) (inboxView, error) {
	select {
	case v := <-ask:
		return v, nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case v := <-ask:
		return v, nil
	case <-t.C:
		s.log.Warn("muc: inbox: room did not answer in time; left out of this list", "room", rj.String())
		return inboxView{exists: true}, nil
	case <-ctx.Done():
		return inboxView{}, fmt.Errorf("muc: inbox: %w", ctx.Err())
	}
}

// viewFor describes the room for user, with the rule of room archive
// queries (mayReadHistory).
func (r *room) viewFor(user jid.JID) inboxView {
	if r.loadErr != nil {
		// Unknown: kept, not shown this time (as a busy room).
		return inboxView{exists: true}
	}
	if !r.exists {
		return inboxView{}
	}
	occupant := len(r.occupantsOf(user.Bare())) > 0
	return inboxView{exists: true, created: r.data.Created, readable: r.mayReadHistory(user, occupant)}
}
