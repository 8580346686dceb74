package muc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Affiliations and roles (XEP-0045 §5).
const (
	affOwner   = "owner"
	affAdmin   = "admin"
	affMember  = "member"
	affOutcast = "outcast"
	affNone    = "none"

	roleModerator   = "moderator"
	roleParticipant = "participant"
	roleVisitor     = "visitor"
	roleNone        = "none"
)

// inboxSize bounds a room's queue; when full, senders get
// resource-constraint.
const inboxSize = 1024

type occupant struct {
	nick     string
	bare     jid.JID
	sessions []jid.JID
	// addrs holds sessions' string forms, index for index, so that a
	// fan-out addresses each copy without formatting the JID.
	addrs    []string
	role     string
	aff      string
	presence *xmpp.Stanza // the occupant's last presence, as sent
	id       string       // XEP-0421 occupant id
	// voiceAsked is when the occupant last asked for voice (§7.13),
	// to bound how often moderators are asked.
	voiceAsked time.Time
}

func (o *occupant) hasSession(j jid.JID) bool {
	for _, s := range o.sessions {
		if s.Equal(j) {
			return true
		}
	}
	return false
}

// room is the actor of one room: one goroutine owns its state.
type room struct {
	svc        *Service
	jid        jid.JID
	inbox      chan item
	publicTemp atomic.Bool

	// Owned by run.
	data   store.Room
	exists bool
	// loadErr is the store's error reading the room, other than not
	// found: everything sent to the room is refused with it.
	loadErr   error
	occupants map[string]*occupant // by nick
	byJID     map[string]string    // occupant full JID → nick
	// lockTimer is set while the room is locked (locked): created by a
	// join and not yet configured by its owner (§10.1.1); others cannot
	// enter until the owner submits a configuration (or accepts the
	// defaults), or the timer fires.
	lockTimer *time.Timer
	// iqs are the IQs forwarded between occupants awaiting an answer
	// (§17.4), by the id the room gave them; at most maxPendingIQs.
	iqs   map[string]pendingIQ
	iqSeq uint64
	// invited maps an invitee's bare JID to the bare JID of the last
	// occupant who invited it, so that a decline goes back to the
	// inviter only (§7.8.2); at most maxInvitations.
	invited map[string]string
}

// item is what a room's inbox carries: a stanza, an admin operation run
// by the room's goroutine, or the service's shutdown.
type item struct {
	st   *xmpp.Stanza
	fn   func(ctx context.Context, r *room)
	stop bool
}

func newRoom(s *Service, rj jid.JID) *room {
	return &room{svc: s, jid: rj, inbox: make(chan item, inboxSize),
		occupants: map[string]*occupant{}, byJID: map[string]string{}}
}

func (r *room) post(it item) bool {
	select {
	case r.inbox <- it:
		return true
	default:
		return false
	}
}

// load reads the room from the store. An error other than not found is
// kept in loadErr, and the room is not taken for one that does not exist:
// the next to join would create it anew, own it and overwrite the stored
// one. Until a later load succeeds (run tries again before each item),
// everything sent to the room is refused.
func (r *room) load(ctx context.Context) {
	data, err := r.svc.deps.Rooms.Get(ctx, r.jid.String())
	r.loadErr = nil
	switch {
	case err == nil:
		r.data, r.exists = data, true
		if r.data.Affiliations == nil {
			// The store reads an empty map back as nil (the company
			// room has no affiliations); grants write to it.
			r.data.Affiliations = map[string]string{}
		}
	case errors.Is(err, store.ErrNotFound):
	default:
		r.svc.log.Error("muc: load room", "room", r.jid.String(), xmpp.LogErr, err)
		r.loadErr = err
	}
}

func (r *room) run(ctx context.Context) {
	r.load(ctx)
	idle := time.NewTimer(r.svc.opts.IdleStop)
	defer idle.Stop()
	defer func() {
		if r.lockTimer != nil {
			r.lockTimer.Stop()
		}
	}()
	for {
		var lockC <-chan time.Time
		if r.lockTimer != nil {
			lockC = r.lockTimer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-lockC:
			// §10.1.1 step 5: the owner did not configure the room in
			// time and is taken to accept the defaults.
			r.unlock()
			r.svc.log.Info("room unlocked after the lock timeout", "room", r.jid.String())
		case it := <-r.inbox:
			if it.stop {
				r.shutdown(ctx)
				return
			}
			if r.loadErr != nil {
				r.load(ctx)
			}
			if it.fn != nil {
				it.fn(ctx, r)
			} else {
				r.handle(ctx, it.st)
			}
			if len(r.occupants) == 0 {
				idle.Reset(r.svc.opts.IdleStop)
			}
		case <-idle.C:
			if len(r.occupants) == 0 && r.svc.stopped(r) {
				return
			}
			idle.Reset(r.svc.opts.IdleStop)
		}
	}
}

func (r *room) handle(ctx context.Context, st *xmpp.Stanza) {
	defer func() {
		if p := recover(); p != nil {
			r.svc.log.Error("muc: panic in room", "room", r.jid.String(), "panic", p)
		}
	}()
	r.dispatch(ctx, st)
}

// dispatch hands a stanza to the handler of its kind.
func (r *room) dispatch(ctx context.Context, st *xmpp.Stanza) {
	if r.loadErr != nil {
		se := xmpp.StanzaError(stanza.InternalServerError, "the room could not be loaded")
		se.Type = stanza.Wait
		r.fail(ctx, st, se)
		return
	}
	switch st.Kind {
	case xmpp.KindPresence:
		r.presence(ctx, st)
	case xmpp.KindMessage:
		r.message(ctx, st)
	case xmpp.KindIQ:
		r.iq(ctx, st)
	}
}

func (r *room) send(ctx context.Context, st *xmpp.Stanza) { r.svc.deps.Router.Route(ctx, st) }

func (r *room) fail(ctx context.Context, st *xmpp.Stanza, err error) {
	if e := st.ErrorReply(xmpp.AsStanzaError(err)); e != nil {
		r.send(ctx, e)
	}
}

func (r *room) save(ctx context.Context) {
	if !r.data.Persistent {
		return
	}
	if err := r.svc.deps.Rooms.Put(ctx, r.data); err != nil {
		r.svc.log.Error("muc: save room", "room", r.jid.String(), xmpp.LogErr, err)
	}
}

// affiliation of a user: explicit, then the rules of business rooms (the
// company room's members are the host's users; a private room's access
// list grants membership).
func (r *room) affiliation(user jid.JID) string {
	return r.affiliationIn(r.data.Affiliations, user)
}

// affiliationIn is the affiliation of user were affs the room's explicit
// affiliations.
func (r *room) affiliationIn(affs map[string]string, user jid.JID) string {
	bare := user.Bare().String()
	if a, ok := affs[bare]; ok {
		return a
	}
	if a, ok := affs[user.Domainpart()]; ok {
		return a
	}
	if r.data.Kind == KindCompany && user.Domainpart() == r.svc.opts.Host {
		return affMember
	}
	for _, e := range r.data.Access {
		switch {
		case e == bare:
			return affMember
		case strings.HasPrefix(e, "domain:") && strings.TrimPrefix(e, "domain:") == user.Domainpart():
			return affMember
		case strings.HasPrefix(e, "group:") && r.svc.opts.InGroup != nil && r.svc.opts.InGroup(user.Bare(), strings.TrimPrefix(e, "group:")):
			return affMember
		}
	}
	return affNone
}

func (r *room) defaultRole(aff string) string {
	switch aff {
	case affOwner, affAdmin:
		return roleModerator
	case affMember:
		return roleParticipant
	case affOutcast:
		return roleNone
	}
	if r.data.Moderated {
		return roleVisitor
	}
	return roleParticipant
}

func (r *room) occupantID(bare jid.JID) string {
	m := hmac.New(sha256.New, r.svc.opts.Secret)
	m.Write([]byte(r.jid.String()))
	m.Write([]byte{0})
	m.Write([]byte(bare.String()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

func (r *room) nickJID(nick string) jid.JID {
	j, _ := r.jid.WithResource(nick)
	return j
}

// sender finds the occupant of a real full JID.
func (r *room) sender(from jid.JID) *occupant {
	if nick, ok := r.byJID[from.String()]; ok {
		return r.occupants[nick]
	}
	return nil
}

// userX is the muc#user payload describing o for a recipient.
func (r *room) userX(o *occupant, recipient *occupant, codes ...string) *wire.Element {
	item := wire.New("item", NSUser, wire.Attr{Name: "affiliation", Value: o.aff}, wire.Attr{Name: "role", Value: o.role})
	if r.data.WhoIs == "anyone" || (recipient != nil && recipient.role == roleModerator) || recipient == o {
		item.Attrs = append(item.Attrs, wire.Attr{Name: "jid", Value: o.sessionJID(recipient).String()})
	}
	x := wire.New("x", NSUser).AddChild(item)
	for _, c := range codes {
		x.AddChild(wire.New("status", NSUser, wire.Attr{Name: "code", Value: c}))
	}
	return x
}

func (o *occupant) sessionJID(_ *occupant) jid.JID {
	if len(o.sessions) > 0 {
		return o.sessions[0]
	}
	return o.bare
}

// presenceOf builds o's presence for one session of a recipient; status
// is the <status/> of an exit (§7.14), for unavailable presence.
func (r *room) presenceOf(o *occupant, typ string, to jid.JID, recipient *occupant, x *wire.Element, status ...*wire.Element) *xmpp.Stanza {
	var children []*wire.Element
	if o.presence != nil && typ == "" {
		for _, c := range o.presence.El.Children {
			if c.Space == NS || c.Space == NSUser || c.Space == NSOccupant {
				continue
			}
			children = append(children, c)
		}
	}
	children = append(children, status...)
	children = append(children, x, wire.New("occupant-id", NSOccupant, wire.Attr{Name: "id", Value: o.id}))
	return xmpp.Build(xmpp.KindPresence, typ, "", r.nickJID(o.nick), to, children...)
}

// broadcastPresence sends o's presence to every occupant (self-presence
// gets status 110 and the extra self codes); extra goes in the item,
// status (an exit's) in the presence.
func (r *room) broadcastPresence(ctx context.Context, o *occupant, typ string, codes, selfCodes []string, status []*wire.Element, extra ...*wire.Element) {
	for _, rec := range r.occupants {
		cs := codes
		if rec == o {
			cs = append(append([]string{}, codes...), "110")
			cs = append(cs, selfCodes...)
		}
		x := itemChildren(r.userX(o, rec, cs...), extra)
		for _, s := range rec.sessions {
			r.send(ctx, r.presenceOf(o, typ, s, rec, x, status...))
		}
	}
}

// presence handles joins, presence changes, nick changes and leaving
// (XEP-0045 §7.2, §7.6, §7.7, §7.14).
func (r *room) presence(ctx context.Context, st *xmpp.Stanza) {
	nick := st.To.Resourcepart()
	cur := r.sender(st.From)
	switch {
	case st.Type == xmpp.TypeUnavailable:
		if cur != nil {
			r.exit(ctx, cur, st)
		}
	case st.Type == xmpp.TypeError:
		if cur != nil {
			// §18.1: an error bounced from an occupant removes it,
			// with 333 (removed because of an error, §11.1).
			r.leave(ctx, cur, st.From, []string{"333"}, nil)
		}
	case st.Type != "":
		// Subscriptions and probes to rooms carry no meaning.
	case nick == "":
		// §7.2.1: joining needs a nickname.
		r.fail(ctx, st, xmpp.StanzaError(stanza.JIDMalformed, "a nickname is required"))
	case blankNick(nick):
		// §17.1: "a MUC service MUST NOT allow empty or invisible
		// Room Nicknames", to join or as a new nick (§7.6). No error
		// is named: the one of §7.2.1 for a missing nickname.
		r.fail(ctx, st, xmpp.StanzaError(stanza.JIDMalformed, "a nickname cannot be only spaces"))
	case cur == nil && st.El.Child("x", NS) == nil:
		// §7.2.18 (since XEP-0045 1.32): presence without the MUC <x/>
		// from a non-occupant is a groupchat 1.0 join or a client that
		// lost track of its membership; it gets an explicit kick.
		r.notInRoom(ctx, st)
	case cur == nil:
		r.join(ctx, st, nick)
	case cur.nick != nick:
		r.changeNick(ctx, cur, st, nick)
	default:
		cur.presence = st
		if join := st.El.Child("x", NS); join != nil {
			r.resync(ctx, cur, st.From, join)
			return
		}
		r.broadcastPresence(ctx, cur, "", nil, nil, nil)
	}
}

func (r *room) join(ctx context.Context, st *xmpp.Stanza, nick string) {
	user := st.From
	created := false
	if !r.exists {
		if r.svc.opts.Issues {
			if user.Domainpart() != r.svc.opts.Host {
				r.fail(ctx, st, xmpp.StanzaError(stanza.NotAllowed, "issue chats are for local users"))
				return
			}
		} else if r.svc.opts.MayCreate != nil && !r.svc.opts.MayCreate(ctx, user) {
			// §10.1.1: creation restricted.
			r.fail(ctx, st, xmpp.StanzaError(stanza.NotAllowed, "you may not create rooms"))
			return
		}
		r.data = r.svc.newRoomData(r.jid, user)
		r.exists, created = true, true
		if r.svc.opts.Issues {
			// Issue chats are ready at once; the key keeps the case
			// the first joiner typed (the room JID is case-folded).
			name, _, _ := strings.Cut(st.El.AttrValue("to"), "@")
			r.svc.nameIssue(&r.data, r.jid, name)
			r.save(ctx)
		} else {
			// §10.1.1: locked until the owner configures it.
			r.lock()
		}
		r.svc.log.Info("room created", "room", r.jid.String(), xmpp.LogJID, user.Bare().String())
	}
	aff := r.affiliation(user)
	if r.svc.opts.Issues && aff == affNone && user.Domainpart() == r.svc.opts.Host {
		aff = affMember
	}
	join := st.El.Child("x", NS)
	switch {
	case r.locked() && aff != affOwner:
		// §7.2.10: the room does not exist yet for
		// anyone but its owner.
		r.fail(ctx, st, xmpp.StanzaError(stanza.ItemNotFound, "the room is being configured"))
		return
	case aff == affOutcast:
		r.fail(ctx, st, xmpp.StanzaError(stanza.Forbidden, "you are banned from this room"))
		return
	case r.data.MembersOnly && aff == affNone:
		r.fail(ctx, st, xmpp.StanzaError(stanza.RegistrationRequired, "members only"))
		return
	case r.data.PasswordProtected && aff != affOwner && (join == nil || join.ChildText("password", NS) != r.data.Password):
		r.fail(ctx, st, xmpp.StanzaError(stanza.NotAuthorized, "a password is required"))
		return
	}
	if o := r.occupants[nick]; o != nil && !o.bare.Equal(user.Bare()) {
		r.fail(ctx, st, xmpp.StanzaError(stanza.Conflict, "that nickname is in use"))
		return
	}
	if r.reservedByOther(nick, user) {
		r.fail(ctx, st, xmpp.StanzaError(stanza.Conflict, "that nickname is reserved"))
		return
	}
	if r.data.MaxUsers > 0 && len(r.occupants) >= r.data.MaxUsers && aff != affOwner && aff != affAdmin && r.occupants[nick] == nil {
		// §7.2.9: service-unavailable, of type wait as in its
		// example (the room can be entered once someone leaves).
		full := xmpp.StanzaError(stanza.ServiceUnavailable, "the room is full")
		full.Type = stanza.Wait
		r.fail(ctx, st, full)
		return
	}
	o := r.occupants[nick]
	if o == nil {
		o = &occupant{nick: nick, bare: user.Bare(), aff: aff, role: r.defaultRole(aff), id: r.occupantID(user.Bare())}
		r.occupants[nick] = o
	}
	addr := user.String()
	o.sessions = append(o.sessions, user)
	o.addrs = append(o.addrs, addr)
	o.presence = st
	r.byJID[addr] = nick
	r.publicTemp.Store(r.data.Public && !r.locked())
	r.svc.deps.Inbox.joined(r, user)

	// §7.2.3: the others' presence to the newcomer, then its own
	// presence to everyone, then history and subject.
	r.othersTo(ctx, o, user)
	self := r.selfCodes(created)
	if nickModified(st, nick) {
		self = append(self, "210")
	}
	if len(o.sessions) > 1 {
		// Another session of the same occupant: only it learns.
		r.send(ctx, r.presenceOf(o, "", user, o, r.userX(o, o, append([]string{"110"}, self...)...)))
	} else {
		r.broadcastPresence(ctx, o, "", nil, self, nil)
	}
	r.sendHistory(ctx, user, join)
	r.sendSubject(ctx, user)
}

// resync answers a join from a session that is already joined: XEP-0045
// §17.1 makes it a full synchronisation request, answered with everything
// a join brings; the others get the occupant's presence update.
func (r *room) resync(ctx context.Context, o *occupant, session jid.JID, join *wire.Element) {
	r.othersTo(ctx, o, session)
	for _, rec := range r.occupants {
		var codes []string
		if rec == o {
			codes = []string{"110"}
		}
		x := r.userX(o, rec, codes...)
		for _, s := range rec.sessions {
			if rec != o || !s.Equal(session) {
				r.send(ctx, r.presenceOf(o, "", s, rec, x))
			}
		}
	}
	r.send(ctx, r.presenceOf(o, "", session, o, r.userX(o, o, append([]string{"110"}, r.selfCodes(false)...)...)))
	r.sendHistory(ctx, session, join)
	r.sendSubject(ctx, session)
}

// othersTo sends the presence of every other occupant to a joining
// session of o.
func (r *room) othersTo(ctx context.Context, o *occupant, session jid.JID) {
	for _, other := range r.occupants {
		if other != o {
			r.send(ctx, r.presenceOf(other, "", session, o, r.userX(other, o)))
		}
	}
}

// selfCodes are the status codes of a joining occupant's self-presence
// besides 110.
func (r *room) selfCodes(created bool) []string {
	var self []string
	if r.data.WhoIs == "anyone" {
		self = append(self, "100")
	}
	self = append(self, "170") // the room is logged (archived)
	if created {
		self = append(self, "201")
	}
	return self
}

// sendSubject sends the subject, which ends a join (§7.2.15), from the
// occupant JID of whoever set it (the room's if nobody did). It carries
// that occupant's XEP-0421 id (§4: on "every message ... sent by a MUC")
// when the room knows it, and a <delay/> from the room stamped with when
// the subject was set or cleared (§7.2.15 SHOULD; none if it never was).
func (r *room) sendSubject(ctx context.Context, to jid.JID) {
	children := []*wire.Element{wire.New("subject", xmpp.NSClient).SetText(r.data.Subject)}
	from := r.jid
	if r.data.SubjectBy != "" {
		from = r.nickJID(r.data.SubjectBy)
		if setter, err := jid.Parse(r.data.SubjectByJID); err == nil && r.data.SubjectByJID != "" {
			children = append(children, wire.New("occupant-id", NSOccupant, wire.Attr{Name: "id", Value: r.occupantID(setter)}))
		}
	}
	if !r.data.SubjectSet.IsZero() {
		children = append(children, wire.New("delay", NSDelay, wire.Attr{Name: "from", Value: r.jid.String()},
			wire.Attr{Name: "stamp", Value: r.data.SubjectSet.UTC().Format(delayStamp)}))
	}
	r.send(ctx, xmpp.Build(xmpp.KindMessage, xmpp.TypeGroupchat, "", from, to, children...))
}

// delayStamp is the XEP-0082 DateTime layout of the <delay/> stamps the
// room writes.
const delayStamp = "2006-01-02T15:04:05.000000Z"

// itemChildren adds children (the reason of a kick, ban or removal) to the
// <item/> of a muc#user payload x, where XEP-0045 puts them (§8.2, §9.1).
func itemChildren(x *wire.Element, children []*wire.Element) *wire.Element {
	if len(children) > 0 {
		x.Children[0].AddChild(children...)
	}
	return x
}

// exit removes the session that sent unavailable presence st (§7.14):
// its custom exit message, the <status/> it may carry, goes with the
// unavailable presence the others get (§17.3 rule 11).
func (r *room) exit(ctx context.Context, o *occupant, st *xmpp.Stanza) {
	var status []*wire.Element
	for _, c := range st.El.Children {
		if c.Name == "status" && c.Space == xmpp.NSClient {
			status = append(status, c)
		}
	}
	r.leave(ctx, o, st.From, nil, status)
}

// leave removes one session of an occupant; codes and extra (children of
// the item) describe why (kicked, banned, ...), status is the occupant's
// own exit message (exit).
func (r *room) leave(ctx context.Context, o *occupant, session jid.JID, codes []string, status []*wire.Element, extra ...*wire.Element) {
	delete(r.byJID, session.String())
	rest, addrs := o.sessions[:0], o.addrs[:0]
	for i, s := range o.sessions {
		if !s.Equal(session) {
			rest, addrs = append(rest, s), append(addrs, o.addrs[i])
		}
	}
	o.sessions, o.addrs = rest, addrs
	if len(o.sessions) > 0 {
		x := itemChildren(r.userX(o, o, append([]string{"110"}, codes...)...), extra)
		r.send(ctx, r.presenceOf(o, xmpp.TypeUnavailable, session, o, x, status...))
		return
	}
	// Unavailable to everyone, the leaver included (110 to self).
	o.role = roleNone
	r.broadcastPresence(ctx, o, xmpp.TypeUnavailable, codes, nil, status, extra...)
	x := itemChildren(r.userX(o, o, append([]string{"110"}, codes...)...), extra)
	r.send(ctx, r.presenceOf(o, xmpp.TypeUnavailable, session, o, x, status...))
	delete(r.occupants, o.nick)
	if len(r.occupants) == 0 && !r.data.Persistent {
		// §10.9: a temporary room ends with its last occupant.
		r.end()
	}
}

// end forgets the room (its last occupant left a temporary room, or it
// was destroyed): what a later creation under the same JID must not
// inherit.
func (r *room) end() {
	r.exists = false
	r.data = store.Room{}
	r.unlock()
	r.publicTemp.Store(false)
	r.iqs, r.invited = nil, nil
}

// changeNick renames an occupant (§7.6): unavailable with 303 and the new
// nick, then available under the new nick.
func (r *room) changeNick(ctx context.Context, o *occupant, st *xmpp.Stanza, nick string) {
	// Taken even by another occupant of the same user (a session joined
	// under another nick): renaming onto it would replace that occupant
	// and orphan its sessions.
	if other := r.occupants[nick]; other != nil && other != o {
		r.fail(ctx, st, xmpp.StanzaError(stanza.Conflict, "that nickname is in use"))
		return
	}
	if r.reservedByOther(nick, o.bare) {
		r.fail(ctx, st, xmpp.StanzaError(stanza.Conflict, "that nickname is reserved"))
		return
	}
	var self []string
	if nickModified(st, nick) {
		self = []string{"210"}
	}
	r.rename(ctx, o, nick, st, self)
}

// rename moves o to nick (§7.6): unavailable with 303 and the new nick
// under the old one to everyone, then presence under the new one, with
// selfCodes to o only. st is the presence that
// asked for it, nil when the service renames (§7.10: a registered nick).
func (r *room) rename(ctx context.Context, o *occupant, nick string, st *xmpp.Stanza, selfCodes []string) {
	for _, rec := range r.occupants {
		codes := []string{"303"}
		if rec == o {
			codes = append(codes, "110")
		}
		x := r.userX(o, rec, codes...)
		// The item carries the new nick.
		x.Children[0].Attrs = append(x.Children[0].Attrs, wire.Attr{Name: "nick", Value: nick})
		for _, s := range rec.sessions {
			r.send(ctx, r.presenceOf(o, xmpp.TypeUnavailable, s, rec, x))
		}
	}
	delete(r.occupants, o.nick)
	o.nick = nick
	if st != nil {
		o.presence = st
	}
	r.occupants[nick] = o
	for _, a := range o.addrs {
		r.byJID[a] = nick
	}
	r.broadcastPresence(ctx, o, "", nil, selfCodes, nil)
}

// blankNick reports whether a nick is made of spaces only (RFC 7622's
// resourcepart maps every Unicode space to U+0020; any other space is
// caught too).
func blankNick(nick string) bool {
	return strings.TrimFunc(nick, unicode.IsSpace) == ""
}

// nickModified reports whether the nick the room uses differs from the one
// the client typed: the occupant JID's resourcepart is normalised
// (RFC 7622 §3.4), and the client is told with 210 (§12, §7.10).
func nickModified(st *xmpp.Stanza, nick string) bool {
	raw := st.El.AttrValue("to")
	i := strings.IndexByte(raw, '/')
	return i >= 0 && raw[i+1:] != nick
}

// notInRoom answers presence from a session that is not in the room with a
// kick (110, 307, 333) so that the client knows it must join again.
func (r *room) notInRoom(ctx context.Context, st *xmpp.Stanza) {
	x := wire.New("x", NSUser).AddChild(
		wire.New("item", NSUser, wire.Attr{Name: "affiliation", Value: affNone}, wire.Attr{Name: "role", Value: roleNone}).AddChild(
			wire.New("reason", NSUser).SetText("You are not in the room.")),
		statusEl("110"), statusEl("307"), statusEl("333"))
	r.send(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeUnavailable, st.ID, st.To, st.From, x))
}

func statusEl(code string) *wire.Element {
	return wire.New("status", NSUser, wire.Attr{Name: "code", Value: code})
}

// lock keeps a room created by a join closed to everyone but its owners
// until they configure it (§10.1.1), for at most Options.LockTimeout.
func (r *room) lock() {
	r.lockTimer = time.NewTimer(r.svc.opts.LockTimeout)
}

// locked reports whether the room waits for its owner's configuration.
func (r *room) locked() bool { return r.lockTimer != nil }

// unlock opens a locked room (and stops its timer).
func (r *room) unlock() {
	if r.lockTimer != nil {
		r.lockTimer.Stop()
		r.lockTimer = nil
		r.publicTemp.Store(r.exists && r.data.Public)
	}
}

// shutdown tells every occupant session that the service is going down
// (332, §11.2) as it removes them.
func (r *room) shutdown(ctx context.Context) {
	x := wire.New("x", NSUser).AddChild(
		wire.New("item", NSUser, wire.Attr{Name: "affiliation", Value: affNone}, wire.Attr{Name: "role", Value: roleNone}),
		statusEl("110"), statusEl("332"))
	for _, o := range r.occupants {
		for _, s := range o.sessions {
			r.send(ctx, r.presenceOf(o, xmpp.TypeUnavailable, s, o, x)) // with the occupant id (XEP-0421 §4)
		}
	}
	r.occupants = map[string]*occupant{}
	r.byJID = map[string]string{}
}

// sendHistory sends the discussion history to a joining session (§7.2.15)
// honouring <history maxchars maxstanzas seconds since/>.
func (r *room) sendHistory(ctx context.Context, to jid.JID, join *wire.Element) {
	max := r.data.HistoryLength
	var since time.Time
	maxChars := -1
	if join != nil {
		if h := join.Child("history", NS); h != nil {
			if v, err := strconv.Atoi(h.AttrValue("maxstanzas")); err == nil && v >= 0 {
				max = min(max, v)
			}
			if v, err := strconv.Atoi(h.AttrValue("maxchars")); err == nil && v >= 0 {
				maxChars = v
			}
			if v, err := strconv.Atoi(h.AttrValue("seconds")); err == nil && v >= 0 {
				since = time.Now().Add(-time.Duration(v) * time.Second)
			}
			if v := h.AttrValue("since"); v != "" {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.After(since) {
					since = t
				}
			}
		}
	}
	if max <= 0 || maxChars == 0 {
		return
	}
	if err := r.svc.deps.Writer.Flush(ctx); err != nil {
		return
	}
	// Only what was said since this room was created (see archiveQuery).
	if since.Before(r.data.Created) {
		since = r.data.Created
	}
	page, err := r.svc.deps.History.Query(ctx, store.ArchiveQuery{Archive: r.jid.String(), Start: since, Max: max, Last: true})
	if err != nil {
		r.svc.log.Error("muc: history", "room", r.jid.String(), xmpp.LogErr, err)
		return
	}
	var out []*xmpp.Stanza
	chars := 0
	for i := len(page.Records) - 1; i >= 0; i-- {
		rec := page.Records[i]
		el, err := wire.Parse(rec.Stanza, wire.NewScope(wire.NSClient))
		if err != nil {
			continue
		}
		msg, err := xmpp.NewStanza(el)
		if err != nil {
			continue
		}
		delay := wire.New("delay", NSDelay, wire.Attr{Name: "from", Value: r.jid.String()},
			wire.Attr{Name: "stamp", Value: rec.Time().UTC().Format(delayStamp)})
		// The stanza id the occupants got live (XEP-0359), so that
		// clients tell history from what they already have or fetch by
		// MAM.
		sid := wire.New("stanza-id", NSSID, wire.Attr{Name: "by", Value: r.jid.String()}, wire.Attr{Name: "id", Value: r.formatID(rec.ID)})
		h := msg.With(msg.From, to)
		h = h.WithElement(h.El.Append(sid, delay))
		if maxChars > 0 {
			chars += len(h.Bytes())
			if chars > maxChars {
				break
			}
		}
		out = append(out, h)
	}
	for i := len(out) - 1; i >= 0; i-- {
		r.send(ctx, out[i])
	}
}
