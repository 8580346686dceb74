package muc

import (
	"context"
	"crypto/rand"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// message handles groupchat messages, subject changes, private messages
// and mediated invitations (XEP-0045 §7.4, §7.5, §7.8, §8.1).
func (r *room) message(ctx context.Context, st *xmpp.Stanza) {
	if st.Type == xmpp.TypeError {
		// §18.1.2: a delivery error for something the room sent to an
		// occupant (a groupchat message from room/nick, a private
		// message) shows a ghost: it is removed with 333 (§11.1).
		if o := r.sender(st.From); o != nil && deliveryFailed(st) {
			r.leave(ctx, o, st.From, []string{"333"}, nil)
		}
		return
	}
	o := r.sender(st.From)
	if x := st.El.Child("x", NSUser); x != nil && st.To.Resourcepart() == "" {
		switch {
		case x.Child("invite", NSUser) != nil:
			r.invite(ctx, st, o, x)
			return
		case x.Child("decline", NSUser) != nil:
			r.decline(ctx, st, x.Child("decline", NSUser))
			return
		}
	}
	if st.Type != xmpp.TypeGroupchat && st.To.Resourcepart() == "" {
		// Cheap checks first: groupchat messages are not scanned.
		if form := requestForm(st); form != nil {
			r.voiceRequest(ctx, st, o, form)
			return
		}
	}
	if o == nil {
		// §7.4: only occupants may send to the room.
		r.fail(ctx, st, xmpp.StanzaError(stanza.NotAcceptable, "join the room first"))
		return
	}
	if st.To.Resourcepart() != "" {
		r.private(ctx, st, o)
		return
	}
	if st.Type != xmpp.TypeGroupchat {
		r.fail(ctx, st, xmpp.StanzaError(stanza.BadRequest, "messages to the room are of type groupchat"))
		return
	}
	r.svc.deps.Inbox.marker(r, o, st)
	if o.role == roleVisitor || o.role == roleNone {
		// §7.4: visitors in a moderated room have no voice.
		r.fail(ctx, st, xmpp.StanzaError(stanza.Forbidden, "you have no voice in this room"))
		return
	}
	if subj := subjectChange(st); subj != nil {
		if o.role != roleModerator && !r.data.ParticipantsChangeSubject {
			r.fail(ctx, st, xmpp.StanzaError(stanza.Forbidden, "only moderators may change the subject"))
			return
		}
		next := r.data
		next.Subject, next.SubjectBy, next.SubjectByJID, next.SubjectSet = subj.Text, o.nick, o.bare.String(), time.Now()
		if err := next.Validate(); err != nil {
			// What the store refuses (a subject too long): accepted
			// here, every later save of the room would fail.
			r.fail(ctx, st, xmpp.StanzaError(stanza.NotAcceptable, err.Error()))
			return
		}
		r.data = next
		r.save(ctx)
	}
	r.broadcastMessage(ctx, o, st)
}

// subjectChange returns the <subject/> of a groupchat message that changes
// the room's subject, or nil. §8.1: a subject change has a <subject/> and
// neither a <body/> nor a <thread/>; a message with a subject and a body or
// a thread "is a legitimate message, but it SHALL NOT be interpreted as a
// subject change" (§7.2.15 says the same of the body).
func subjectChange(st *xmpp.Stanza) *wire.Element {
	subj := st.El.Child("subject", xmpp.NSClient)
	if subj == nil || st.El.Child("body", xmpp.NSClient) != nil || st.El.Child("thread", xmpp.NSClient) != nil {
		return nil
	}
	return subj
}

// broadcastMessage archives a groupchat message in the room's archive
// (XEP-0313 for MUC), stamps the stanza-id by the room (XEP-0359) and the
// occupant id (XEP-0421), and sends it to every occupant session.
func (r *room) broadcastMessage(ctx context.Context, o *occupant, st *xmpp.Stanza) {
	var children []*wire.Element
	for _, c := range st.El.Children {
		if (c.Name == "stanza-id" && c.Space == NSSID) || c.Space == NSOccupant ||
			(c.Name == "x" && c.Space == NSUser) || (c.Name == "delay" && c.Space == NSDelay) {
			// Never trust these from the sender: a muc#user item
			// would claim a real JID (XEP-0313 has the archive strip
			// it), a delay a time the room did not see.
			continue
		}
		children = append(children, c)
	}
	children = append(children, wire.New("occupant-id", NSOccupant, wire.Attr{Name: "id", Value: o.id}))
	from := r.nickJID(o.nick)
	out := xmpp.Build(xmpp.KindMessage, xmpp.TypeGroupchat, st.ID, from, r.jid, children...)
	if archivable(out) {
		rec := store.ArchiveRecord{Archive: r.jid.String(), With: o.bare.String(), Direction: store.DirIn,
			Flags: store.FlagNoUnread, Stanza: append([]byte(nil), out.Bytes()...)}
		// The room waits for room in the archive's queue rather than
		// leaving the message out (bounded by store.MaxAppendWait).
		id, err := r.svc.deps.Writer.AppendWait(ctx, rec, nil)
		if err == nil {
			out = out.WithElement(out.El.Append(wire.New("stanza-id", NSSID,
				wire.Attr{Name: "by", Value: r.jid.String()}, wire.Attr{Name: "id", Value: r.formatID(id)})))
		} else {
			r.svc.log.Error("muc: message not archived", "room", r.jid.String(), xmpp.LogErr, err)
		}
	}
	// Every copy differs from out in its 'to' alone: written from one
	// serialisation of the content.
	out = out.WithElement(out.El.Frozen())
	for _, rec := range r.occupants {
		for i, s := range rec.sessions {
			r.send(ctx, out.WithTo(s, rec.addrs[i]))
		}
	}
}

// archivable reports whether a reflected groupchat message goes into the
// room's archive: it has a body and the sender did not ask otherwise with a
// XEP-0334 no-store or no-permanent-store hint (§4.2, §4.1).
func archivable(st *xmpp.Stanza) bool {
	if st.HasHint("no-store", "no-permanent-store") {
		return false
	}
	// A subject change (subject, no body) is not archived: replayed as
	// history it would reach a joining occupant before the history ends,
	// and the subject message is the marker of a completed join (§7.2.15).
	for _, c := range st.El.Children {
		if c.Space == xmpp.NSClient && c.Name == "body" {
			return true
		}
	}
	return false
}

// private relays a private message between occupants (§7.5).
func (r *room) private(ctx context.Context, st *xmpp.Stanza, o *occupant) {
	to := r.occupants[st.To.Resourcepart()]
	switch {
	case to == nil || len(to.sessions) == 0:
		r.fail(ctx, st, xmpp.StanzaError(stanza.ItemNotFound, "no such occupant"))
		return
	case st.Type == xmpp.TypeGroupchat:
		r.fail(ctx, st, xmpp.StanzaError(stanza.BadRequest, "private messages are not groupchat"))
		return
	case !r.data.AllowPM && o.role != roleModerator:
		r.fail(ctx, st, xmpp.StanzaError(stanza.NotAllowed, "private messages are off in this room"))
		return
	}
	var children []*wire.Element
	for _, c := range st.El.Children {
		switch {
		case c.Space == NSOccupant, c.Space == NSUser && c.Name == "x":
			// The room's own (the client's <x/> of §7.5 would repeat it).
		case xmpp.IsStanzaIDBy(c, r.jid, ""):
			// Spoofed: only the room speaks for the room (XEP-0359),
			// however its address is written.
		default:
			children = append(children, c)
		}
	}
	// Marked so that carbons and clients treat it as a MUC PM.
	children = append(children, wire.New("x", NSUser), wire.New("occupant-id", NSOccupant, wire.Attr{Name: "id", Value: o.id}))
	from := r.nickJID(o.nick)
	id := st.ID
	if id == "" && len(to.sessions) > 1 {
		// The copies to an occupant's sessions are one message: the
		// account's archive keeps one record for them, recognised by
		// their common id, so an id-less one gets an id of the room's.
		id = rand.Text()
	}
	pm := xmpp.Build(xmpp.KindMessage, st.Type, id, from, to.sessions[0], children...)
	for i, s := range to.sessions {
		r.send(ctx, pm.WithTo(s, to.addrs[i]))
	}
}

// invite sends a mediated invitation (§7.8.2); in a members-only room an
// invitation by an admin or owner also grants membership.
func (r *room) invite(ctx context.Context, st *xmpp.Stanza, o *occupant, x *wire.Element) {
	if o == nil {
		r.fail(ctx, st, xmpp.StanzaError(stanza.NotAcceptable, "join the room first"))
		return
	}
	if !r.data.AllowInvites && o.aff != affOwner && o.aff != affAdmin {
		r.fail(ctx, st, xmpp.StanzaError(stanza.Forbidden, "invitations are restricted"))
		return
	}
	for _, inv := range x.Children {
		if inv.Name != "invite" || inv.Space != NSUser {
			continue
		}
		to, err := jid.Parse(inv.AttrValue("to"))
		if err != nil || inv.AttrValue("to") == "" {
			r.fail(ctx, st, xmpp.StanzaError(stanza.JIDMalformed, "invalid invitee"))
			return
		}
		if r.data.MembersOnly && r.affiliation(to) == affNone {
			if o.aff != affOwner && o.aff != affAdmin {
				r.fail(ctx, st, xmpp.StanzaError(stanza.Forbidden, "only admins may invite new members"))
				return
			}
			if len(r.data.Affiliations) >= store.MaxRoomAffiliations {
				// Granted, every later save of the room would fail.
				r.fail(ctx, st, xmpp.StanzaError(stanza.ResourceConstraint, "this room has too many members"))
				return
			}
			r.data.Affiliations[to.Bare().String()] = affMember
			r.save(ctx)
		}
		r.noteInvitation(to.Bare().String(), st.From.Bare().String())
		reason := inv.ChildText("reason", NSUser)
		out := wire.New("x", NSUser).AddChild(func() *wire.Element {
			e := wire.New("invite", NSUser, wire.Attr{Name: "from", Value: st.From.Bare().String()})
			if reason != "" {
				e.AddChild(wire.New("reason", NSUser).SetText(reason))
			}
			return e
		}())
		if r.data.PasswordProtected {
			out.AddChild(wire.New("password", NSUser).SetText(r.data.Password))
		}
		body := st.From.Bare().String() + " invites you to the room " + r.jid.String()
		if reason != "" {
			body += ": " + reason
		}
		r.send(ctx, xmpp.Build(xmpp.KindMessage, "", "", r.jid, to, out,
			wire.New("body", xmpp.NSClient).SetText(body)))
	}
}

// formatID is the opaque stanza-id of an archive id (XEP-0359 §5).
func (r *room) formatID(id uint64) string {
	return r.svc.deps.MAM.FormatID(id)
}

// deliveryFailed reports whether an error stanza says that its recipient
// is gone, the conditions XEP-0045 §18.1.2 names.
func deliveryFailed(st *xmpp.Stanza) bool {
	e := st.El.Child("error", xmpp.NSClient)
	if e == nil {
		return false
	}
	for _, c := range e.Children {
		if c.Space != xmpp.NSStanzas {
			continue
		}
		switch stanza.Condition(c.Name) {
		case stanza.Gone, stanza.ItemNotFound, stanza.RecipientUnavailable, stanza.Redirect,
			stanza.RemoteServerNotFound, stanza.RemoteServerTimeout:
			return true
		}
	}
	return false
}

// maxInvitations bounds the invitations a room remembers for declines.
const maxInvitations = 1024

// noteInvitation remembers who invited invitee, for its decline.
func (r *room) noteInvitation(invitee, inviter string) {
	if r.invited == nil {
		r.invited = map[string]string{}
	}
	if _, ok := r.invited[invitee]; !ok && len(r.invited) >= maxInvitations {
		for k := range r.invited {
			delete(r.invited, k) // any one: the oldest is not worth tracking
			break
		}
	}
	r.invited[invitee] = inviter
}

// decline passes an invitee's refusal back to the inviter (§7.8.2). Only
// an invitation the room sent can be declined, so that the room relays
// nothing to addresses of the decliner's choosing; the inviter is the one
// the room remembers, whatever 'to' says.
func (r *room) decline(ctx context.Context, st *xmpp.Stanza, d *wire.Element) {
	bare := st.From.Bare().String()
	inviter, ok := r.invited[bare]
	if !ok {
		r.fail(ctx, st, xmpp.StanzaError(stanza.NotAcceptable, "there is no invitation to decline"))
		return
	}
	delete(r.invited, bare)
	to, err := jid.Parse(inviter)
	if err != nil {
		return
	}
	out := wire.New("decline", NSUser, wire.Attr{Name: "from", Value: bare})
	if reason := d.ChildText("reason", NSUser); reason != "" {
		out.AddChild(wire.New("reason", NSUser).SetText(reason))
	}
	body := bare + " declined your invitation to the room " + r.jid.String()
	r.send(ctx, xmpp.Build(xmpp.KindMessage, "", "", r.jid, to, wire.New("x", NSUser).AddChild(out),
		wire.New("body", xmpp.NSClient).SetText(body)))
}
