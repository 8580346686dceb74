package muc

import (
	"context"
	"maps"
	"strconv"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/mam"
	"switchboard/xmpp/wire"
)

// iq answers IQs to the room (disco, owner, admin, archive,
// registration) and self-pings (XEP-0410), and forwards other IQs between
// occupants (§17.4).
func (r *room) iq(ctx context.Context, st *xmpp.Stanza) {
	if !st.IsIQRequest() {
		if (st.Type == xmpp.TypeResult || st.Type == xmpp.TypeError) && st.To.Resourcepart() != "" {
			r.answerIQ(ctx, st)
		}
		return
	}
	p := st.Payload()
	if p == nil {
		r.fail(ctx, st, xmpp.StanzaError(stanza.BadRequest, ""))
		return
	}
	o := r.sender(st.From)
	if st.To.Resourcepart() != "" {
		// XEP-0410: a ping to one's own occupant JID tells whether one
		// is still joined.
		if p.Name == "ping" && p.Space == NSPing && o != nil && o.nick == st.To.Resourcepart() {
			r.send(ctx, st.Result(nil))
			return
		}
		if o == nil {
			r.fail(ctx, st, xmpp.StanzaError(stanza.NotAcceptable, "not an occupant"))
			return
		}
		r.forwardIQ(ctx, st, o)
		return
	}
	if !r.exists || (r.locked() && r.affiliation(st.From) != affOwner) {
		// §7.2.10: a locked room does not exist yet but for its owner.
		r.fail(ctx, st, xmpp.StanzaError(stanza.ItemNotFound, "no such room"))
		return
	}
	var reply *xmpp.Stanza
	var err error
	switch {
	case p.Space == xmpp.NSDiscoInfo && st.Type == xmpp.TypeGet && p.AttrValue("node") == nodeRoomUser:
		reply = r.reservedNick(st)
	case p.Space == xmpp.NSDiscoInfo && st.Type == xmpp.TypeGet && p.AttrValue("node") != "":
		err = xmpp.StanzaError(stanza.ItemNotFound, "no such node")
	case p.Space == xmpp.NSDiscoInfo && st.Type == xmpp.TypeGet:
		reply = r.discoInfo(st)
	case p.Space == NSRegister && p.Name == "query":
		reply, err = r.register(ctx, st)
	case p.Space == xmpp.NSDiscoItem && st.Type == xmpp.TypeGet:
		reply = st.Result(wire.New("query", xmpp.NSDiscoItem))
	case p.Space == NSMAM && p.Name == "query":
		reply, err = r.archiveQuery(ctx, st, o)
	case p.Space == NSOwner:
		reply, err = r.owner(ctx, st, o)
	case p.Space == NSAdmin:
		reply, err = r.admin(ctx, st, o)
	case p.Space == NSPing:
		reply = st.Result(nil)
	default:
		err = xmpp.StanzaError(stanza.ServiceUnavailable, "")
	}
	if err != nil {
		r.fail(ctx, st, err)
		return
	}
	if reply != nil {
		r.send(ctx, reply)
	}
}

// discoInfo describes the room (§6.4) with the muc#roominfo form.
func (r *room) discoInfo(st *xmpp.Stanza) *xmpp.Stanza {
	q := wire.New("query", xmpp.NSDiscoInfo).AddChild(wire.New("identity", xmpp.NSDiscoInfo,
		wire.Attr{Name: "category", Value: "conference"}, wire.Attr{Name: "type", Value: "text"},
		wire.Attr{Name: "name", Value: r.data.Name}))
	// muc#stable_id: groupchat messages are reflected with the id their
	// sender gave (broadcastMessage; §7.4).
	feats := []string{NS, NSStableID, NSMAM, NSSID, NSOccupant, xmpp.NSDiscoInfo, NSRegister, NSMUCRegister}
	pick := func(b bool, yes, no string) {
		if b {
			feats = append(feats, yes)
		} else {
			feats = append(feats, no)
		}
	}
	pick(r.data.Public, "muc_public", "muc_hidden")
	pick(r.data.Persistent, "muc_persistent", "muc_temporary")
	pick(r.data.MembersOnly, "muc_membersonly", "muc_open")
	pick(r.data.Moderated, "muc_moderated", "muc_unmoderated")
	pick(r.data.PasswordProtected, "muc_passwordprotected", "muc_unsecured")
	pick(r.data.WhoIs == "anyone", "muc_nonanonymous", "muc_semianonymous")
	for _, f := range feats {
		q.AddChild(wire.New("feature", xmpp.NSDiscoInfo, wire.Attr{Name: "var", Value: f}))
	}
	q.AddChild(wire.New("x", NSData, wire.Attr{Name: "type", Value: "result"}).AddChild(
		xmpp.FormField("FORM_TYPE", "hidden", NSRoomInfo),
		xmpp.FormField("muc#roominfo_description", "", r.data.Description),
		xmpp.FormField("muc#roominfo_subject", "", r.data.Subject),
		xmpp.FormField("muc#roominfo_occupants", "", strconv.Itoa(len(r.occupants))),
	))
	return st.Result(q)
}

// archiveQuery lets occupants and members read the room's archive
// (XEP-0313 §5 for MUC).
func (r *room) archiveQuery(ctx context.Context, st *xmpp.Stanza, o *occupant) (*xmpp.Stanza, error) {
	if !r.mayReadHistory(st.From, o != nil) {
		return nil, xmpp.StanzaError(stanza.Forbidden, "join the room to read its history")
	}
	realJIDs := r.seesRealJIDs(st.From, o)
	if !realJIDs && filtersWith(st) {
		// The archive knows each message's sender by real JID: in a
		// semi-anonymous room, a 'with' filter would tell who is
		// behind a nick to those who may not see it (§7.2.2).
		return nil, xmpp.StanzaError(stanza.Forbidden, "real JIDs are hidden in this room: no 'with' filter")
	}
	// Only what was said since this room was created: a room reusing an
	// old name does not show its predecessor's history (which stays in
	// the archive for admins' exports). XEP-0313 §6.1.2: the senders'
	// real JIDs are given to those who may see them now, in a
	// non-anonymous room everyone.
	return r.svc.deps.MAM.QueryRoomArchive(ctx, r.jid, st, mam.RoomView{NotBefore: r.data.Created, RealJIDs: realJIDs})
}

// seesRealJIDs reports whether user (the occupant o, nil if that session
// is not one) may learn the real JIDs behind the nicks: everyone in a
// non-anonymous room; in a semi-anonymous room moderators (§7.2.4), and
// admins and owners, who are moderators whenever they are in the room.
func (r *room) seesRealJIDs(user jid.JID, o *occupant) bool {
	return r.data.WhoIs == "anyone" || (o != nil && o.role == roleModerator) || rank(r.affiliation(user)) >= 3
}

// filtersWith reports whether an archive query's form has a 'with' field
// with a value.
func filtersWith(st *xmpp.Stanza) bool {
	q := st.Payload()
	if q == nil {
		return false
	}
	v := xmpp.FormValues(q.Child("x", NSData))["with"]
	return len(v) > 0 && v[0] != ""
}

// mayReadHistory is who may read the room's archive: occupants, the
// affiliated and, in a public room anyone may enter (neither members-only
// nor password-protected), everyone; outcasts never; a locked room only
// its owners.
func (r *room) mayReadHistory(user jid.JID, occupant bool) bool {
	aff := r.affiliation(user)
	open := r.data.Public && !r.data.MembersOnly && !r.data.PasswordProtected
	return aff != affOutcast && (occupant || aff == affOwner || aff == affAdmin || aff == affMember || open) &&
		(!r.locked() || aff == affOwner)
}

// configForm is the muc#roomconfig form (§10.2) with the current values.
func (r *room) configForm() *wire.Element {
	d := r.data
	allowPM := "anyone"
	if !d.AllowPM {
		allowPM = "moderators"
	}
	access := xmpp.FormField("switchboard#access", "text-multi", d.Access...)
	access.Attrs = append(access.Attrs, wire.Attr{Name: "label", Value: "Access list: user@host, group:NAME or domain:example.org"})
	return wire.New("x", NSData, wire.Attr{Name: "type", Value: "form"}).AddChild(
		wire.New("title", NSData).SetText("Configuration of "+r.jid.String()),
		xmpp.FormField("FORM_TYPE", "hidden", NSRoomConf),
		xmpp.FormField("muc#roomconfig_roomname", "text-single", d.Name),
		xmpp.FormField("muc#roomconfig_roomdesc", "text-single", d.Description),
		xmpp.FormField("muc#roomconfig_publicroom", "boolean", xmpp.FormBool(d.Public)),
		xmpp.FormField("muc#roomconfig_persistentroom", "boolean", xmpp.FormBool(d.Persistent)),
		xmpp.FormField("muc#roomconfig_membersonly", "boolean", xmpp.FormBool(d.MembersOnly)),
		xmpp.FormField("muc#roomconfig_moderatedroom", "boolean", xmpp.FormBool(d.Moderated)),
		xmpp.FormField("muc#roomconfig_passwordprotectedroom", "boolean", xmpp.FormBool(d.PasswordProtected)),
		xmpp.FormField("muc#roomconfig_roomsecret", "text-private", d.Password),
		xmpp.FormField("muc#roomconfig_maxusers", "text-single", strconv.Itoa(d.MaxUsers)),
		xmpp.FormField("muc#roomconfig_whois", "list-single", d.WhoIs).AddChild(xmpp.FormOption("moderators"), xmpp.FormOption("anyone")),
		xmpp.FormField("muc#roomconfig_changesubject", "boolean", xmpp.FormBool(d.ParticipantsChangeSubject)),
		xmpp.FormField("muc#roomconfig_allowinvites", "boolean", xmpp.FormBool(d.AllowInvites)),
		xmpp.FormField("muc#roomconfig_allowpm", "list-single", allowPM).AddChild(xmpp.FormOption("anyone"), xmpp.FormOption("moderators")),
		xmpp.FormField("muc#maxhistoryfetch", "text-single", strconv.Itoa(d.HistoryLength)),
		access,
	)
}

func truthy(v []string) (bool, bool) {
	if len(v) == 0 {
		return false, false
	}
	return v[0] == "1" || v[0] == "true", true
}

// owner handles the owner use cases: configuration (§10.2) and
// destruction (§10.9).
func (r *room) owner(ctx context.Context, st *xmpp.Stanza, o *occupant) (*xmpp.Stanza, error) {
	if r.affiliation(st.From) != affOwner {
		return nil, xmpp.StanzaError(stanza.Forbidden, "only owners may do this")
	}
	q := st.Payload()
	if st.Type == xmpp.TypeGet {
		return st.Result(wire.New("query", NSOwner).AddChild(r.configForm())), nil
	}
	if d := q.Child("destroy", NSOwner); d != nil {
		r.destroy(ctx, d)
		return st.Result(nil), nil
	}
	x := q.Child("x", NSData)
	if x == nil {
		return nil, xmpp.StanzaError(stanza.BadRequest, "")
	}
	switch x.AttrValue("type") {
	case "cancel":
		if r.locked() {
			// §10.1.1 step 6: cancelling the initial configuration
			// destroys the room.
			r.destroy(ctx, wire.New("destroy", NSOwner))
		}
		return st.Result(nil), nil
	case "submit":
	default:
		return nil, xmpp.StanzaError(stanza.BadRequest, "")
	}
	v := xmpp.FormValues(x)
	if len(v) == 0 {
		// §10.1.2: an empty submission accepts the defaults (an
		// instant room) and unlocks it.
		r.unlock()
		r.save(ctx)
		return st.Result(nil), nil
	}
	d := &r.data
	before := *d
	if s, ok := v["muc#roomconfig_roomname"]; ok && len(s) > 0 {
		d.Name = s[0]
	}
	if s, ok := v["muc#roomconfig_roomdesc"]; ok && len(s) > 0 {
		d.Description = s[0]
	}
	for key, dst := range map[string]*bool{
		"muc#roomconfig_publicroom":            &d.Public,
		"muc#roomconfig_persistentroom":        &d.Persistent,
		"muc#roomconfig_membersonly":           &d.MembersOnly,
		"muc#roomconfig_moderatedroom":         &d.Moderated,
		"muc#roomconfig_passwordprotectedroom": &d.PasswordProtected,
		"muc#roomconfig_changesubject":         &d.ParticipantsChangeSubject,
		"muc#roomconfig_allowinvites":          &d.AllowInvites,
	} {
		if b, ok := truthy(v[key]); ok {
			*dst = b
		}
	}
	if s := v["muc#roomconfig_roomsecret"]; len(s) > 0 {
		d.Password = s[0]
	}
	if d.PasswordProtected && d.Password == "" {
		*d = before
		return nil, xmpp.StanzaError(stanza.NotAcceptable, "a password-protected room needs a password")
	}
	if s := v["muc#roomconfig_maxusers"]; len(s) > 0 {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 0 {
			*d = before
			return nil, xmpp.StanzaError(stanza.NotAcceptable, "invalid maxusers")
		}
		d.MaxUsers = n
	}
	if s := v["muc#roomconfig_whois"]; len(s) > 0 {
		if s[0] != "moderators" && s[0] != "anyone" {
			*d = before
			return nil, xmpp.StanzaError(stanza.NotAcceptable, "invalid whois")
		}
		d.WhoIs = s[0]
	}
	if s := v["muc#roomconfig_allowpm"]; len(s) > 0 {
		d.AllowPM = s[0] == "anyone" || s[0] == "participants"
	}
	if s := v["muc#maxhistoryfetch"]; len(s) > 0 {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 0 {
			*d = before
			return nil, xmpp.StanzaError(stanza.NotAcceptable, "invalid history length")
		}
		d.HistoryLength = min(n, 1000)
	}
	if s, ok := v["switchboard#access"]; ok {
		var list []string
		for _, e := range s {
			if e != "" {
				list = append(list, e)
			}
		}
		d.Access = list
	}
	if err := d.Validate(); err != nil {
		// What the store refuses (lengths, the access list): accepted
		// here, every later save of the room would fail.
		*d = before
		return nil, xmpp.StanzaError(stanza.NotAcceptable, err.Error())
	}
	if before.Persistent && !d.Persistent {
		if err := r.svc.deps.Rooms.Delete(ctx, r.jid.String()); err != nil {
			r.svc.log.Error("muc: unpersist room", "room", r.jid.String(), xmpp.LogErr, err)
		}
	}
	// §10.1.3: a configured room is unlocked.
	r.unlock()
	r.save(ctx)
	r.publicTemp.Store(d.Public)
	// §10.2.1: occupants learn of the change (104; 172/173 for
	// anonymity).
	codes := []string{"104"}
	if before.WhoIs != d.WhoIs {
		if d.WhoIs == "anyone" {
			codes = append(codes, "172")
		} else {
			codes = append(codes, "173")
		}
	}
	x2 := wire.New("x", NSUser)
	for _, c := range codes {
		x2.AddChild(wire.New("status", NSUser, wire.Attr{Name: "code", Value: c}))
	}
	for _, rec := range r.occupants {
		for _, s := range rec.sessions {
			r.send(ctx, xmpp.Build(xmpp.KindMessage, xmpp.TypeGroupchat, "", r.jid, s, x2))
		}
	}
	r.applyAccess(ctx)
	return st.Result(nil), nil
}

// applyAccess removes occupants who lost access (a members-only change, an
// access list change) with status 322, at once (§9.6).
func (r *room) applyAccess(ctx context.Context) {
	if !r.data.MembersOnly {
		return
	}
	for _, occ := range r.occupants {
		occ.aff = r.affiliation(occ.bare)
		if occ.aff == affNone {
			for _, s := range append([]jid.JID(nil), occ.sessions...) {
				r.leave(ctx, occ, s, []string{"322"}, nil)
			}
		}
	}
}

// destroy ends the room (§10.9), telling occupants of an alternate venue.
func (r *room) destroy(ctx context.Context, d *wire.Element) {
	dest := wire.New("destroy", NSUser)
	if alt := d.AttrValue("jid"); alt != "" {
		dest.Attrs = append(dest.Attrs, wire.Attr{Name: "jid", Value: alt})
	}
	if reason := d.ChildText("reason", NSOwner); reason != "" {
		dest.AddChild(wire.New("reason", NSUser).SetText(reason))
	}
	for _, occ := range r.occupants {
		x := wire.New("x", NSUser).AddChild(
			wire.New("item", NSUser, wire.Attr{Name: "affiliation", Value: affNone}, wire.Attr{Name: "role", Value: roleNone}),
			dest)
		// presenceOf: with the occupant id, which XEP-0421 §4 puts on
		// every presence the room sends, this last one included.
		for _, s := range occ.sessions {
			r.send(ctx, r.presenceOf(occ, xmpp.TypeUnavailable, s, occ, x))
		}
	}
	if err := r.svc.deps.Rooms.Delete(ctx, r.jid.String()); err != nil && r.data.Persistent {
		r.svc.log.Error("muc: destroy room", "room", r.jid.String(), xmpp.LogErr, err)
	}
	r.svc.log.Info("room destroyed", "room", r.jid.String())
	r.occupants = map[string]*occupant{}
	r.byJID = map[string]string{}
	r.end()
}

func rank(aff string) int {
	switch aff {
	case affOwner:
		return 4
	case affAdmin:
		return 3
	case affMember:
		return 2
	case affNone:
		return 1
	}
	return 0
}

// admin handles the moderator and admin use cases (§8, §9): lists of
// affiliations and roles, kick, voice, moderator, ban, membership.
//
// A set is all or nothing: every item is checked, against the state the
// items before it would leave, before any is applied, and the first that
// may not be done fails the request with nothing changed. §9.2 says so of
// the ban list (the service "SHOULD NOT apply any of the requested
// changes" when one is prohibited); the other lists (§8.5, §9.5, §9.8,
// §10.5, §10.8) are edited the same way and are held to the same rule.
func (r *room) admin(ctx context.Context, st *xmpp.Stanza, o *occupant) (*xmpp.Stanza, error) {
	actorAff := r.affiliation(st.From)
	actorRole := roleNone
	if o != nil {
		actorRole = o.role
	}
	q := st.Payload()
	items := []*wire.Element{}
	for _, c := range q.Children {
		if c.Name == "item" && c.Space == NSAdmin {
			items = append(items, c)
		}
	}
	if len(items) == 0 {
		return nil, xmpp.StanzaError(stanza.BadRequest, "")
	}
	if st.Type == xmpp.TypeGet {
		return r.adminList(st, items[0], actorAff, actorRole)
	}
	var actor *wire.Element
	if o != nil {
		// §8.2, §9.1: who kicked or banned, by nick (the real JID
		// would unmask a moderator of a semi-anonymous room).
		actor = wire.New("actor", NSUser, wire.Attr{Name: "nick", Value: o.nick})
	}
	plan := adminPlan{affs: maps.Clone(r.data.Affiliations), gone: map[*occupant]bool{}, affOf: map[*occupant]string{}}
	if plan.affs == nil {
		plan.affs = map[string]string{}
	}
	ops := make([]adminOp, 0, len(items))
	for _, it := range items {
		// The actor's own affiliation as the items before leave it: an
		// owner who steps down does the rest as what they become.
		op, err := r.checkAdminItem(it, st.From, r.affiliationIn(plan.affs, st.From), actorRole, &plan)
		if err != nil {
			return nil, err
		}
		if actor != nil {
			op.extra = append(op.extra, actor)
		}
		if reason := it.ChildText("reason", NSAdmin); reason != "" {
			op.extra = append(op.extra, wire.New("reason", NSUser).SetText(reason))
		}
		ops = append(ops, op)
	}
	next := r.data
	next.Affiliations = plan.affs
	if err := next.Validate(); err != nil {
		// What the store refuses (too many affiliations, a JID too
		// long): applied, every later save of the room would fail.
		return nil, xmpp.StanzaError(stanza.NotAcceptable, err.Error())
	}
	for _, op := range ops {
		if !r.exists {
			// An item before emptied a temporary room, which ended
			// (§10.9): the rest concern a room that is gone.
			break
		}
		r.applyAdmin(ctx, op)
	}
	r.save(ctx)
	return st.Result(nil), nil
}

// listsOpenTo reports whether the member, admin and owner lists of a
// non-anonymous room are open to a member or occupant (§9.5: in such a
// room the real JIDs are no secret; clients read the lists to know whom
// a private group includes, for end-to-end encryption among others).
func (r *room) listsOpenTo(aff, actorAff, actorRole string) bool {
	if r.data.WhoIs != "anyone" || rank(aff) < 2 {
		return false
	}
	return rank(actorAff) >= 2 || actorRole != roleNone
}

func (r *room) adminList(st *xmpp.Stanza, it *wire.Element, actorAff, actorRole string) (*xmpp.Stanza, error) {
	res := wire.New("query", NSAdmin)
	if aff := it.AttrValue("affiliation"); aff != "" {
		if rank(actorAff) < 3 && !(aff == affMember && actorRole == roleModerator) && !r.listsOpenTo(aff, actorAff, actorRole) {
			return nil, xmpp.StanzaError(stanza.Forbidden, "")
		}
		for j, a := range r.data.Affiliations {
			if a == aff {
				res.AddChild(wire.New("item", NSAdmin, wire.Attr{Name: "affiliation", Value: a}, wire.Attr{Name: "jid", Value: j}))
			}
		}
		return st.Result(res), nil
	}
	role := it.AttrValue("role")
	if role == "" || actorRole != roleModerator {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	for _, occ := range r.occupants {
		if occ.role == role {
			res.AddChild(wire.New("item", NSAdmin, wire.Attr{Name: "role", Value: occ.role},
				wire.Attr{Name: "nick", Value: occ.nick}, wire.Attr{Name: "affiliation", Value: occ.aff},
				wire.Attr{Name: "jid", Value: occ.bare.String()}))
		}
	}
	return st.Result(res), nil
}

// adminOp is one checked item of a muc#admin set: a new role for an
// occupant (target set), or a new affiliation for a bare JID or a domain.
type adminOp struct {
	target *occupant
	role   string
	key    string  // affiliation: the bare JID, or the domain
	jid    jid.JID // affiliation: the JID as given
	aff    string
	extra  []*wire.Element // the actor and reason, for those removed
}

// adminPlan is what the items of a set checked so far would do, which the
// next items are checked against.
type adminPlan struct {
	affs  map[string]string    // the room's affiliations after them
	gone  map[*occupant]bool   // occupants they remove
	affOf map[*occupant]string // occupants whose affiliation they change
}

// occAff is occ's affiliation after the items checked so far.
func (p *adminPlan) occAff(occ *occupant) string {
	if a, ok := p.affOf[occ]; ok {
		return a
	}
	return occ.aff
}

// checkAdminItem checks one item of a muc#admin set against plan, and
// records in plan what it would do.
func (r *room) checkAdminItem(it *wire.Element, actor jid.JID, actorAff, actorRole string, plan *adminPlan) (adminOp, error) {
	if role := it.AttrValue("role"); role != "" {
		target := r.occupants[it.AttrValue("nick")]
		if target == nil || plan.gone[target] {
			return adminOp{}, xmpp.StanzaError(stanza.ItemNotFound, "no such occupant")
		}
		targetAff := plan.occAff(target)
		switch {
		case role != roleNone && role != roleVisitor && role != roleParticipant && role != roleModerator:
			return adminOp{}, xmpp.StanzaError(stanza.BadRequest, "unknown role")
		case actorRole != roleModerator:
			return adminOp{}, xmpp.StanzaError(stanza.Forbidden, "moderators only")
		case role == roleModerator && rank(actorAff) < 3:
			return adminOp{}, xmpp.StanzaError(stanza.Forbidden, "admins grant moderation")
		case rank(targetAff) > rank(actorAff) || (rank(targetAff) >= 3 && role != roleModerator):
			// §8.2: nobody kicks someone of a higher affiliation;
			// §8.4: nobody takes an admin's or owner's voice.
			return adminOp{}, xmpp.StanzaError(stanza.NotAllowed, "")
		case role == roleVisitor && rank(targetAff) >= rank(actorAff):
			// §8.4: "A moderator MUST NOT be able to revoke voice
			// from a user whose affiliation is at or above the
			// moderator's level" (not-allowed, type cancel).
			return adminOp{}, xmpp.StanzaError(stanza.NotAllowed, "that occupant's affiliation is not below yours")
		case target.role == roleModerator && role != roleModerator && role != roleNone && rank(actorAff) < 3:
			// §5.1.3: only an admin or owner takes a moderator's
			// moderation (or voice) away.
			return adminOp{}, xmpp.StanzaError(stanza.NotAllowed, "admins revoke moderation")
		}
		if role == roleNone {
			plan.gone[target] = true
		}
		return adminOp{target: target, role: role}, nil
	}
	aff := it.AttrValue("affiliation")
	j, err := jid.Parse(it.AttrValue("jid"))
	if err != nil || it.AttrValue("jid") == "" {
		if occ := r.occupants[it.AttrValue("nick")]; occ != nil {
			j = occ.bare
		} else {
			return adminOp{}, xmpp.StanzaError(stanza.JIDMalformed, "")
		}
	}
	key := j.Bare().String()
	if j.Localpart() == "" {
		key = j.Domainpart() // a whole domain ("company")
	}
	old := plan.affs[key]
	if old == "" {
		old = affNone
	}
	switch aff {
	case affOwner, affAdmin, affMember, affOutcast, affNone:
	default:
		return adminOp{}, xmpp.StanzaError(stanza.BadRequest, "unknown affiliation")
	}
	// §9/§10: admins manage members and outcasts below them; owners
	// manage everyone; nobody else manages affiliations.
	if actorAff != affOwner && actorAff != affAdmin {
		return adminOp{}, xmpp.StanzaError(stanza.Forbidden, "")
	}
	if aff == affOutcast && j.Localpart() != "" && j.Bare().Equal(actor.Bare()) {
		// §9.1: an admin or owner does not ban themselves.
		return adminOp{}, xmpp.StanzaError(stanza.Conflict, "you cannot ban yourself")
	}
	if aff == affOutcast && actorAff == affAdmin && rank(old) >= 3 {
		// §9.1: an admin may not ban an admin or an owner.
		return adminOp{}, xmpp.StanzaError(stanza.NotAllowed, "")
	}
	if actorAff != affOwner && (rank(aff) >= 3 || rank(old) >= 3) {
		return adminOp{}, xmpp.StanzaError(stanza.Forbidden, "")
	}
	if old == affOwner && aff != affOwner {
		owners := 0
		for _, a := range plan.affs {
			if a == affOwner {
				owners++
			}
		}
		if owners <= 1 {
			return adminOp{}, xmpp.StanzaError(stanza.Conflict, "a room needs an owner")
		}
	}
	if aff == affNone {
		delete(plan.affs, key)
	} else {
		plan.affs[key] = aff
	}
	for _, occ := range r.occupants {
		if plan.gone[occ] || (!occ.bare.Equal(j.Bare()) && occ.bare.Domainpart() != key) {
			continue
		}
		a := r.affiliationIn(plan.affs, occ.bare)
		plan.affOf[occ] = a
		if r.removalCode(a) != "" {
			plan.gone[occ] = true
		}
	}
	return adminOp{key: key, jid: j, aff: aff}, nil
}

// applyAdmin does what a checked item of a muc#admin set asks.
func (r *room) applyAdmin(ctx context.Context, op adminOp) {
	if op.target != nil {
		switch op.role {
		case roleNone:
			// §8.2 kick: status 307.
			for _, s := range append([]jid.JID(nil), op.target.sessions...) {
				r.leave(ctx, op.target, s, []string{"307"}, nil, op.extra...)
			}
		default:
			op.target.role = op.role
			r.broadcastPresence(ctx, op.target, "", nil, nil, nil)
		}
		return
	}
	if op.aff == affNone {
		delete(r.data.Affiliations, op.key)
	} else {
		r.data.Affiliations[op.key] = op.aff
	}
	if op.aff == affOutcast {
		// §9.1: a banned user's reserved nick is free again.
		delete(r.data.Nicks, op.key)
	}
	for _, occ := range r.occupants {
		if !occ.bare.Equal(op.jid.Bare()) && occ.bare.Domainpart() != op.key {
			continue
		}
		r.affiliationChanged(ctx, occ, op.extra...)
	}
}

// affiliationChanged applies occ's affiliation as it now stands in the
// room's data: a banned occupant leaves with 301 (§9.1), one no longer a
// member of a members-only room with 321 (§9.4); anyone else takes the
// default role of the affiliation, announced to the room. extra goes
// into the status of those who leave (an actor, a reason).
func (r *room) affiliationChanged(ctx context.Context, occ *occupant, extra ...*wire.Element) {
	occ.aff = r.affiliation(occ.bare)
	if code := r.removalCode(occ.aff); code != "" {
		for _, s := range append([]jid.JID(nil), occ.sessions...) {
			r.leave(ctx, occ, s, []string{code}, nil, extra...)
		}
		return
	}
	occ.role = r.defaultRole(occ.aff)
	r.broadcastPresence(ctx, occ, "", nil, nil, nil)
}

// removalCode is the status code with which an occupant whose affiliation
// becomes aff leaves the room, "" if it stays: 301 when banned (§9.1),
// 321 when no longer a member of a members-only room (§9.4). The checks
// of an admin set (checkAdminItem) and their application
// (affiliationChanged) both ask it.
func (r *room) removalCode(aff string) string {
	switch {
	case aff == affOutcast:
		return "301"
	case r.data.MembersOnly && aff == affNone:
		return "321"
	}
	return ""
}
