package mam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Namespaces.
const (
	NS        = "urn:xmpp:mam:2"
	NSExt     = "urn:xmpp:mam:2#extended"
	NSSID     = xmpp.NSStanzaID
	NSForward = xmpp.NSForward
	NSDelay   = "urn:xmpp:delay"
	NSRSM     = "http://jabber.org/protocol/rsm"
	NSData    = xmpp.NSData
	NSHints   = xmpp.NSHints
	NSMarkers = xmpp.NSChatMarkers
	NSConv    = "urn:switchboard:conversations:0"
	NSOMEMO   = xmpp.NSOMEMO

	// NSDataValidate is XEP-0122 Data Forms Validation.
	NSDataValidate = "http://jabber.org/protocol/xdata-validate"
)

// Archiving modes (XEP-0313 §6 preferences).
const (
	ModeAlways = "always"
	ModeNever  = "never"
	ModeRoster = "roster"
)

// Paging limits.
const (
	DefaultPage = 50
	MaxPage     = 250
)

// Prefs is a user's archiving preferences.
type Prefs = store.ArchivePrefs

// Router is what the module needs of the router.
type Router interface {
	xmpp.Router
	xmpp.Sessions
}

// Options configure the module.
type Options struct {
	// DefaultMode returns a host's default archiving mode.
	DefaultMode func(host string) string
	// IDSecret keys the opaque archive ids (see IDCodec).
	IDSecret []byte
	Logger   *slog.Logger
}

// Deps are the module's collaborators.
type Deps struct {
	Archive *store.Archive
	Writer  *store.ArchiveWriter
	Rosters *store.Rosters
	Prefs   *store.ArchivePrefsStore
	Router  Router
	// Rooms, if set, adds the rooms a user follows to the conversation
	// list (package muc provides it).
	Rooms Rooms
}

// Rooms lists the rooms a user follows, for the conversation list.
type Rooms interface {
	// RoomConversations returns the rooms user follows and may still
	// read, in any order.
	RoomConversations(ctx context.Context, user jid.JID) ([]RoomConversation, error)
	// ForgetRoom takes room off user's list (until the user enters it,
	// or marks it read, again) and reports whether it was there.
	ForgetRoom(ctx context.Context, user, room jid.JID) (bool, error)
}

// RoomConversation is a room in a user's conversation list.
type RoomConversation struct {
	Room jid.JID
	// Since is when the user started following the room (first entered
	// it); it orders a room without messages.
	Since time.Time
	// Last is the room's newest message (its ID is 0 if none), as the
	// room archived it.
	Last store.ArchiveRecord
	// Unread counts the room's messages newer than the user's read
	// marker, own last message and Since, up to RoomUnreadCap; More
	// reports that there are more ("99+").
	Unread int
	More   bool
}

// RoomUnreadCap is the most unread room messages counted; beyond it a
// room shows unread='99' with unread-more='true', so that the list costs
// O(rooms × cap), not O(unread messages).
const RoomUnreadCap = 99

// Module is the archive.
type Module struct {
	opts Options
	deps Deps
	log  *slog.Logger
	ids  IDCodec

	// prefs caches preferences by owner (every archived message consults
	// them). gen counts changes, so that a value read from the store
	// while it changed is not cached over the change; an account created
	// or deleted clears the cache (AccountsChanged).
	mu    sync.Mutex
	prefs map[string]Prefs
	gen   uint64

	// roomPMs remembers the room private messages just archived: a room
	// sends one copy to each session of an occupant joined from several
	// (XEP-0045 §7.5, §7.2 multi-session nicks), and the account's
	// archive keeps one record, whose id every copy carries.
	pmMu    sync.Mutex
	roomPMs map[roomPMKey]roomPM
}

// roomPMKey identifies a room private message among its copies: they
// differ only in their 'to'.
type roomPMKey struct{ owner, from, id, body string }

type roomPM struct {
	id uint64
	at time.Time
}

// Copies of one room private message arrive back to back (the room's
// goroutine routes them in a row); roomPMWindow bounds how long one is
// remembered, maxRoomPMs how many.
const (
	roomPMWindow = 5 * time.Second
	maxRoomPMs   = 1024
)

// NSMUCUser is XEP-0045's muc#user namespace: it marks a private message
// sent through a room (§7.5), and gives a sender's real JID in the results
// of a room's archive (QueryRoomArchive).
const NSMUCUser = xmpp.NSMUCUser

// roomPMKeyOf returns the key of a room private message to owner, or false
// for any other message.
// Without an id two copies cannot be told from two messages saying the
// same thing, so such messages are not deduplicated; this server's rooms
// give an id to an id-less private message they copy to several sessions
// (muc: room.private).
func roomPMKeyOf(owner jid.JID, st *xmpp.Stanza) (roomPMKey, bool) {
	if st.ID == "" || st.From.Resourcepart() == "" || st.El.Child("x", NSMUCUser) == nil {
		return roomPMKey{}, false
	}
	return roomPMKey{owner: owner.String(), from: st.From.String(), id: st.ID, body: st.El.ChildText("body", xmpp.NSClient)}, true
}

// archivedRoomPM returns the archive id of a copy already archived.
func (m *Module) archivedRoomPM(k roomPMKey, now time.Time) (uint64, bool) {
	m.pmMu.Lock()
	defer m.pmMu.Unlock()
	pm, ok := m.roomPMs[k]
	if !ok || now.Sub(pm.at) > roomPMWindow {
		return 0, false
	}
	return pm.id, true
}

// noteRoomPM remembers an archived room private message.
func (m *Module) noteRoomPM(k roomPMKey, id uint64, now time.Time) {
	m.pmMu.Lock()
	defer m.pmMu.Unlock()
	if m.roomPMs == nil {
		m.roomPMs = map[roomPMKey]roomPM{}
	}
	if len(m.roomPMs) >= maxRoomPMs {
		for key, pm := range m.roomPMs {
			if now.Sub(pm.at) > roomPMWindow {
				delete(m.roomPMs, key)
			}
		}
		if len(m.roomPMs) >= maxRoomPMs {
			clear(m.roomPMs)
		}
	}
	m.roomPMs[k] = roomPM{id: id, at: now}
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module.
func New(opts Options, deps Deps) (*Module, error) {
	if deps.Archive == nil || deps.Writer == nil || deps.Rosters == nil || deps.Prefs == nil || deps.Router == nil {
		return nil, errors.New("mam: missing dependency")
	}
	if opts.DefaultMode == nil {
		opts.DefaultMode = func(string) string { return ModeAlways }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Module{opts: opts, deps: deps, log: opts.Logger, ids: NewIDCodec(opts.IDSecret)}, nil
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "mam" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, hooks *xmpp.Hooks) error {
	reg.AddFeature(xmpp.TargetAccount, NS, NSExt, NSSID)
	reg.AddFeature(xmpp.TargetHost, NSConv)
	t := xmpp.TargetAccount
	for _, h := range []struct {
		typ, local string
		fn         xmpp.IQHandler
	}{
		{xmpp.TypeGet, "query", m.form},
		{xmpp.TypeSet, "query", m.query},
		{xmpp.TypeGet, "prefs", m.getPrefs},
		{xmpp.TypeSet, "prefs", m.setPrefs},
		{xmpp.TypeGet, "metadata", m.metadata},
	} {
		if err := reg.HandleIQ(m.Name(), t, h.typ, NS, h.local, h.fn); err != nil {
			return err
		}
	}
	if err := reg.HandleIQ(m.Name(), t, xmpp.TypeGet, NSConv, "conversations", m.conversations); err != nil {
		return err
	}
	hooks.MessageOut.Add(m.outgoing)
	hooks.MessageIn.Add(m.incoming)
	return reg.AddCommand(xmpp.Command{
		Node: NodeDeleteConversation,
		Name: "Delete a conversation from my history",
		Allowed: func(_ context.Context, st *xmpp.Stanza) bool {
			return st.From.Localpart() != "" && st.From.Domainpart() == st.To.Domainpart()
		},
		Form: func(context.Context, *xmpp.Stanza) *wire.Element {
			return wire.New("x", NSData, wire.Attr{Name: "type", Value: "form"}).AddChild(
				wire.New("title", NSData).SetText("Delete a conversation"),
				wire.New("instructions", NSData).SetText("Every archived message exchanged with this address is deleted from your history on all devices."),
				wire.New("field", NSData, wire.Attr{Name: "var", Value: "with"}, wire.Attr{Name: "type", Value: "jid-single"},
					wire.Attr{Name: "label", Value: "Contact or room"}).AddChild(wire.New("required", NSData)),
			)
		},
		Run: m.deleteConversation,
	})
}

// NodeDeleteConversation is the ad-hoc command that deletes one
// conversation from the requester's own archive.
const NodeDeleteConversation = "urn:switchboard:mam:delete-conversation"

func (m *Module) deleteConversation(ctx context.Context, st *xmpp.Stanza, fields map[string][]string) (string, error) {
	v := fields["with"]
	if len(v) != 1 || v[0] == "" {
		return "", xmpp.StanzaError(stanza.BadRequest, "'with' is required")
	}
	with, err := jid.Parse(v[0])
	if err != nil {
		return "", xmpp.StanzaError(stanza.JIDMalformed, "")
	}
	owner := st.From.Bare().String()
	if err := m.deps.Writer.Flush(ctx); err != nil {
		return "", fmt.Errorf("mam: flush: %w", err)
	}
	n, err := m.deps.Archive.DeleteWith(ctx, owner, with.Bare().String())
	if err != nil {
		return "", fmt.Errorf("mam: delete conversation: %w", err)
	}
	m.log.Info("conversation deleted from archive", xmpp.LogJID, owner, "with", with.Bare().String(), "messages", n)
	// A room leaves the list too; its history is the room's, not the
	// user's, and stays.
	if m.deps.Rooms != nil {
		forgot, err := m.deps.Rooms.ForgetRoom(ctx, st.From.Bare(), with.Bare())
		if err != nil {
			return "", fmt.Errorf("mam: forget room: %w", err)
		}
		if forgot {
			return fmt.Sprintf("Deleted %d messages exchanged with %s and removed the room from your conversations.", n, with.Bare()), nil
		}
	}
	return fmt.Sprintf("Deleted %d messages exchanged with %s.", n, with.Bare()), nil
}

// archivable reports whether a message belongs in the archive
// (XEP-0313 §5.1.1: messages with a body or other content a person reads;
// XEP-0334 hints honoured).
func archivable(st *xmpp.Stanza) bool {
	if st.Kind != xmpp.KindMessage {
		return false
	}
	switch st.Type {
	case xmpp.TypeChat, xmpp.TypeNormal, "":
	default:
		return false
	}
	keep := false
	for _, c := range st.El.Children {
		switch {
		case c.Space == NSHints && (c.Name == "no-store" || c.Name == "no-permanent-store"):
			return false
		case c.Space == NSHints && c.Name == "store":
			keep = true
		case c.Name == "body" && c.Space == xmpp.NSClient:
			keep = true
		case c.Name == "encrypted" && c.Space == NSOMEMO:
			keep = true
		}
	}
	return keep
}

// loadPrefs returns owner's preferences, or the host default. They are
// cached per owner (see Module.prefs): a change of preferences updates the
// entry, a change of accounts drops the cache.
func (m *Module) loadPrefs(ctx context.Context, owner jid.JID) Prefs {
	key := owner.String()
	m.mu.Lock()
	p, ok := m.prefs[key]
	gen := m.gen
	m.mu.Unlock()
	if ok {
		return p
	}
	p, err := m.deps.Prefs.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.log.Error("mam: prefs", xmpp.LogJID, key, xmpp.LogErr, err)
			return Prefs{Default: m.opts.DefaultMode(owner.Domainpart())}
		}
		p = Prefs{Default: m.opts.DefaultMode(owner.Domainpart())}
	}
	m.mu.Lock()
	if m.gen == gen {
		if m.prefs == nil || len(m.prefs) >= maxCachedPrefs {
			m.prefs = map[string]Prefs{}
		}
		m.prefs[key] = p
	}
	m.mu.Unlock()
	return p
}

// maxCachedPrefs bounds the preference cache; when full it starts over.
const maxCachedPrefs = 100000

// setCachedPrefs records a preference change made in the store.
func (m *Module) setCachedPrefs(owner string, p Prefs) {
	m.mu.Lock()
	m.gen++
	if m.prefs == nil {
		m.prefs = map[string]Prefs{}
	}
	m.prefs[owner] = p
	m.mu.Unlock()
}

// AccountsChanged drops the cached preferences: an account was created
// or deleted (a re-created account starts from the host's default).
func (m *Module) AccountsChanged(string) {
	m.mu.Lock()
	m.gen++
	m.prefs = nil
	m.mu.Unlock()
}

// wanted applies the owner's preferences to a conversation partner
// (XEP-0313 §6.1).
func (m *Module) wanted(ctx context.Context, owner, with jid.JID) bool {
	p := m.loadPrefs(ctx, owner)
	w, wb := with.String(), with.Bare().String()
	for _, j := range p.Never {
		if j == w || j == wb {
			return false
		}
	}
	for _, j := range p.Always {
		if j == w || j == wb {
			return true
		}
	}
	switch p.Default {
	case ModeNever:
		return false
	case ModeRoster:
		_, err := m.deps.Rosters.Item(ctx, owner.String(), wb)
		return err == nil
	}
	return true
}

// outgoing archives a message a local user sends in their archive and
// returns the archived copy with the archive's stanza-id, for the sent
// carbons that the MessageOut hooks after this one deliver (the routed
// message itself is unchanged: the id is the sender's archive's, not the
// recipient's). The id is assigned in memory as the record is queued, so
// this adds no store transaction to the send path. Stanza-ids that claim
// to be by the sender's own archive are not the server's and are left out
// of the archived copy.
func (m *Module) outgoing(ctx context.Context, st *xmpp.Stanza) *xmpp.Stanza {
	// A marker in a room (groupchat) names the room's message and is the
	// room's to record (package muc); here only one-to-one ones.
	if st.Type != xmpp.TypeGroupchat && !xmpp.IsZero(st.To) && st.El.Child("displayed", NSMarkers) != nil {
		m.markRead(ctx, st)
	}
	if !archivable(st) || xmpp.IsZero(st.To) {
		return st
	}
	owner := st.From.Bare()
	if st.To.Bare().Equal(owner) {
		// A note to oneself: one archive, one record (XEP-0313 §7.1.1),
		// which incoming writes as it stamps the copies delivered. The
		// sent carbons go out before that record exists: without a
		// stanza-id, and without a forged one (XEP-0359 §3).
		return stripOwnIDs(st, owner)
	}
	if !m.wanted(ctx, owner, st.To) {
		return st
	}
	own := stripOwnIDs(st, owner)
	id, ok := m.append(ctx, owner, st.To.Bare().String(), store.DirOut, own)
	if !ok {
		return own
	}
	return m.stampID(own, owner, id)
}

// stampID returns st with the stanza-id of archive owner's record id.
func (m *Module) stampID(st *xmpp.Stanza, owner jid.JID, id uint64) *xmpp.Stanza {
	sid := wire.New("stanza-id", NSSID,
		wire.Attr{Name: "by", Value: owner.String()}, wire.Attr{Name: "id", Value: m.ids.Format(id)})
	return st.WithElement(st.El.Append(sid))
}

// incoming archives a message to a local user in their archive and stamps
// the archive's stanza-id on the copy that is delivered (XEP-0359 §3):
// any stanza-id claiming to be by this archive is removed first.
func (m *Module) incoming(ctx context.Context, st *xmpp.Stanza) *xmpp.Stanza {
	owner := st.To.Bare()
	st = stripOwnIDs(st, owner)
	if !archivable(st) || xmpp.IsZero(st.From) || !m.wanted(ctx, owner, st.From) {
		return st
	}
	now := time.Now()
	pmKey, roomPM := roomPMKeyOf(owner, st)
	if roomPM {
		if id, ok := m.archivedRoomPM(pmKey, now); ok {
			return m.stampID(st, owner, id) // another session's copy
		}
	}
	dir := store.DirIn
	if st.From.Bare().Equal(owner) {
		// A note to oneself (outgoing leaves it to this hook): what
		// the owner sent, so it is not unread.
		dir = store.DirOut
	}
	id, ok := m.append(ctx, owner, st.From.Bare().String(), dir, st)
	if !ok {
		return st
	}
	if roomPM {
		m.noteRoomPM(pmKey, id, now)
	}
	return m.stampID(st, owner, id)
}

// stripOwnIDs removes the stanza-ids that claim to be by the archive by.
// 'by' is compared as a JID, the way clients compare it: a spoofed
// by='Bob@Example.org' names bob@example.org's archive as well.
func stripOwnIDs(st *xmpp.Stanza, by jid.JID) *xmpp.Stanza {
	// by is formatted once, for the first stanza-id: most messages carry
	// none.
	var byStr string
	own := func(c *wire.Element) bool {
		if byStr == "" && c.Name == "stanza-id" {
			byStr = by.String()
		}
		return xmpp.IsStanzaIDBy(c, by, byStr)
	}
	if !slices.ContainsFunc(st.El.Children, own) {
		return st
	}
	keep := slices.DeleteFunc(slices.Clone(st.El.Children), own)
	return st.WithElement(st.El.WithChildren("", keep...))
}

func (m *Module) append(ctx context.Context, owner jid.JID, with string, dir store.Direction, st *xmpp.Stanza) (uint64, bool) {
	rec := store.ArchiveRecord{Archive: owner.String(), With: with, Direction: dir, Stanza: append([]byte(nil), st.Bytes()...)}
	id, err := m.deps.Writer.AppendWait(ctx, rec, func(err error) {
		if err != nil {
			m.log.Error("mam: archive write failed", xmpp.LogJID, owner.String(), xmpp.LogErr, err)
		}
	})
	if err != nil {
		m.log.Error("mam: message not archived", xmpp.LogJID, owner.String(), xmpp.LogErr, err)
		return 0, false
	}
	return id, true
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }
