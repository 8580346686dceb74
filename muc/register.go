package muc

import (
	"context"
	"strings"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Namespaces of room registration (XEP-0045 §7.10, XEP-0077).
const (
	NSRegister    = "jabber:iq:register"
	NSMUCRegister = "http://jabber.org/protocol/muc#register"
)

// nodeRoomUser is the disco node that tells a user its reserved nick
// (§7.12).
const nodeRoomUser = "x-roomuser-item"

// register handles registration with a room (§7.10): a user reserves a
// nick and becomes a member. In a members-only room only members may
// register (to reserve their nick); admins grant membership. <remove/>
// cancels a registration (XEP-0077 §3.2): the nick is released and a
// member by registration becomes unaffiliated.
func (r *room) register(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	user := st.From.Bare()
	key := user.String()
	aff := r.affiliation(st.From)
	if aff == affOutcast {
		return nil, xmpp.StanzaError(stanza.Forbidden, "you are banned from this room")
	}
	q := st.Payload()
	if st.Type == xmpp.TypeGet {
		if nick, ok := r.data.Nicks[key]; ok {
			return st.Result(wire.New("query", NSRegister).AddChild(
				wire.New("registered", NSRegister), wire.New("username", NSRegister).SetText(nick))), nil
		}
		if r.data.MembersOnly && aff == affNone {
			return nil, xmpp.StanzaError(stanza.NotAllowed, "only members may register with this room")
		}
		return st.Result(wire.New("query", NSRegister).AddChild(
			wire.New("instructions", NSRegister).SetText("Choose the nickname to reserve in "+r.jid.String()+"."),
			wire.New("x", xmpp.NSData, wire.Attr{Name: "type", Value: "form"}).AddChild(
				wire.New("title", xmpp.NSData).SetText("Registration with "+r.jid.String()),
				xmpp.FormField("FORM_TYPE", "hidden", NSMUCRegister),
				xmpp.FormField("muc#register_roomnick", "text-single").AddChild(wire.New("required", xmpp.NSData)),
			))), nil
	}
	if q.Child("remove", NSRegister) != nil {
		return r.unregister(ctx, st, user)
	}
	x := q.Child("x", xmpp.NSData)
	if x == nil || x.AttrValue("type") != "submit" {
		return nil, xmpp.StanzaError(stanza.BadRequest, "submit the registration form")
	}
	v := xmpp.FormValues(x)
	if ft := v["FORM_TYPE"]; len(ft) > 0 && ft[0] != NSMUCRegister {
		return nil, xmpp.StanzaError(stanza.BadRequest, "not a muc#register form")
	}
	nicks := v["muc#register_roomnick"]
	if len(nicks) == 0 || strings.TrimSpace(nicks[0]) == "" {
		return nil, xmpp.StanzaError(stanza.BadRequest, "a nickname is required")
	}
	nj, err := r.jid.WithResource(nicks[0])
	if err != nil {
		return nil, xmpp.StanzaError(stanza.JIDMalformed, "that nickname cannot be used")
	}
	nick := nj.Resourcepart() // normalised and at most 1023 bytes (RFC 7622 §3.4)
	if r.data.MembersOnly && aff == affNone {
		return nil, xmpp.StanzaError(stanza.NotAllowed, "only members may register with this room")
	}
	if r.reservedByOther(nick, user) {
		return nil, xmpp.StanzaError(stanza.Conflict, "that nickname is registered by someone else")
	}
	if o := r.occupants[nick]; o != nil && !o.bare.Equal(user) {
		return nil, xmpp.StanzaError(stanza.Conflict, "that nickname is in use")
	}
	if _, ok := r.data.Nicks[key]; !ok && (len(r.data.Nicks) >= store.MaxRoomNicks || len(r.data.Affiliations) >= store.MaxRoomAffiliations) {
		return nil, xmpp.StanzaError(stanza.ResourceConstraint, "this room has too many registrations")
	}
	if r.data.Nicks == nil {
		r.data.Nicks = map[string]string{}
	}
	r.data.Nicks[key] = nick
	becameMember := false
	if aff == affNone {
		r.data.Affiliations[key] = affMember
		becameMember = true
	}
	r.save(ctx)
	r.svc.log.Info("nick registered", "room", r.jid.String(), xmpp.LogJID, key)
	// §7.10: an occupant learns of its new affiliation, and of its new
	// nick (210) if the registration changed it.
	for _, o := range r.occupantsOf(user) {
		o.aff = r.affiliation(o.bare)
		if o.role == roleVisitor && becameMember {
			o.role = r.defaultRole(o.aff)
		}
		if o.nick != nick && r.occupants[nick] == nil {
			r.rename(ctx, o, nick, nil, []string{"210"})
		} else if becameMember {
			r.broadcastPresence(ctx, o, "", nil, nil, nil)
		}
	}
	return st.Result(nil), nil
}

// unregister cancels a registration.
func (r *room) unregister(ctx context.Context, st *xmpp.Stanza, user jid.JID) (*xmpp.Stanza, error) {
	key := user.String()
	if _, ok := r.data.Nicks[key]; !ok {
		return nil, xmpp.StanzaError(stanza.ItemNotFound, "you are not registered with this room")
	}
	delete(r.data.Nicks, key)
	if r.data.Affiliations[key] == affMember {
		delete(r.data.Affiliations, key)
	}
	r.save(ctx)
	for _, o := range r.occupantsOf(user) {
		r.affiliationChanged(ctx, o)
	}
	return st.Result(nil), nil
}

// reservedByOther reports whether nick is registered with the room by
// someone other than user (§7.10: such a nick is refused to others, on
// entering, changing nick or registering).
func (r *room) reservedByOther(nick string, user jid.JID) bool {
	key := user.Bare().String()
	for bare, reserved := range r.data.Nicks {
		if reserved == nick && bare != key {
			return true
		}
	}
	return false
}

// occupantsOf returns the occupants of one user (a user may be in the room
// under several nicks, one per session).
func (r *room) occupantsOf(user jid.JID) []*occupant {
	var out []*occupant
	for _, o := range r.occupants {
		if o.bare.Equal(user) {
			out = append(out, o)
		}
	}
	return out
}

// reservedNick answers the disco#info request on node x-roomuser-item
// with the user's registered nick, or an empty query (§7.12).
func (r *room) reservedNick(st *xmpp.Stanza) *xmpp.Stanza {
	q := wire.New("query", xmpp.NSDiscoInfo, wire.Attr{Name: "node", Value: nodeRoomUser})
	if nick, ok := r.data.Nicks[st.From.Bare().String()]; ok {
		q.AddChild(wire.New("identity", xmpp.NSDiscoInfo, wire.Attr{Name: "category", Value: "conference"},
			wire.Attr{Name: "name", Value: nick}, wire.Attr{Name: "type", Value: "text"}))
	}
	return st.Result(q)
}
