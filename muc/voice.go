package muc

import (
	"context"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NSRequest is the FORM_TYPE of voice requests (XEP-0045 §7.13, §8.6).
const NSRequest = "http://jabber.org/protocol/muc#request"

// voiceRequestInterval is how often one occupant may ask the moderators
// for voice.
const voiceRequestInterval = time.Minute

// requestForm returns the muc#request data form a message carries, if any.
func requestForm(st *xmpp.Stanza) *wire.Element {
	for _, c := range st.El.Children {
		if c.Name != "x" || c.Space != xmpp.NSData {
			continue
		}
		if v := xmpp.FormValues(c)["FORM_TYPE"]; len(v) > 0 && v[0] == NSRequest {
			return c
		}
	}
	return nil
}

// voiceRequest handles both halves of voice requests: a visitor asking for
// voice (§7.13), which becomes an approval form sent to every moderator,
// and a moderator's submitted approval (§8.6), which grants it.
func (r *room) voiceRequest(ctx context.Context, st *xmpp.Stanza, o *occupant, form *wire.Element) {
	if o == nil {
		r.fail(ctx, st, xmpp.StanzaError(stanza.NotAcceptable, "join the room first"))
		return
	}
	if form.AttrValue("type") != "submit" {
		r.fail(ctx, st, xmpp.StanzaError(stanza.BadRequest, "a voice request is a submitted form"))
		return
	}
	v := xmpp.FormValues(form)
	if _, approval := v["muc#request_allow"]; approval {
		r.approveVoice(ctx, st, o, v)
		return
	}
	if role := v["muc#role"]; len(role) == 0 || role[0] != roleParticipant {
		r.fail(ctx, st, xmpp.StanzaError(stanza.BadRequest, "only voice (the participant role) can be requested"))
		return
	}
	if o.role != roleVisitor {
		return // it has voice already: nothing to ask
	}
	now := time.Now()
	if now.Sub(o.voiceAsked) < voiceRequestInterval {
		r.fail(ctx, st, xmpp.StanzaError(stanza.ResourceConstraint, "the moderators were asked a moment ago"))
		return
	}
	o.voiceAsked = now
	x := wire.New("x", xmpp.NSData, wire.Attr{Name: "type", Value: "form"}).AddChild(
		wire.New("title", xmpp.NSData).SetText("Voice request"),
		wire.New("instructions", xmpp.NSData).SetText("To grant "+o.nick+" voice in "+r.jid.String()+", tick the box and submit the form."),
		xmpp.FormField("FORM_TYPE", "hidden", NSRequest),
		xmpp.FormField("muc#role", "list-single", roleParticipant),
		xmpp.FormField("muc#jid", "jid-single", st.From.String()),
		xmpp.FormField("muc#roomnick", "text-single", o.nick),
		xmpp.FormField("muc#request_allow", "boolean", "false"),
	)
	for _, m := range r.occupants {
		if m.role != roleModerator {
			continue
		}
		for _, s := range m.sessions {
			r.send(ctx, xmpp.Build(xmpp.KindMessage, "", "", r.jid, s, x))
		}
	}
}

// approveVoice applies a moderator's answer to a voice request (§8.6).
func (r *room) approveVoice(ctx context.Context, st *xmpp.Stanza, mod *occupant, v map[string][]string) {
	if mod.role != roleModerator {
		r.fail(ctx, st, xmpp.StanzaError(stanza.Forbidden, "only moderators grant voice"))
		return
	}
	if allow, _ := truthy(v["muc#request_allow"]); !allow {
		return // declined: the visitor stays a visitor
	}
	var target *occupant
	if nick := v["muc#roomnick"]; len(nick) > 0 {
		target = r.occupants[nick[0]]
	}
	if target == nil {
		if j := v["muc#jid"]; len(j) > 0 {
			if from, err := jid.Parse(j[0]); err == nil {
				target = r.sender(from)
			}
		}
	}
	if target == nil {
		r.fail(ctx, st, xmpp.StanzaError(stanza.ItemNotFound, "that occupant has left"))
		return
	}
	if target.role != roleVisitor {
		return // granted meanwhile
	}
	target.role = roleParticipant
	r.broadcastPresence(ctx, target, "", nil, nil, nil)
}
