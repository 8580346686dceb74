package muc

import (
	"context"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp"
)

// maxPendingIQs bounds the IQs a room forwards between occupants and waits
// to see answered; pendingIQTimeout is when a forgotten one may be
// dropped to make room.
const (
	maxPendingIQs    = 256
	pendingIQTimeout = time.Minute
)

// pendingIQ is an IQ request forwarded from one occupant to another.
type pendingIQ struct {
	requester jid.JID // the requesting session (a real full JID)
	origID    string  // the id it used
	target    jid.JID // where the request went (full, or bare for vCards)
	toNick    string  // the nick it was addressed to
	sent      time.Time
}

// forwardIQ passes an IQ request from an occupant to another occupant's
// real JID (XEP-0045 §17.4): the recipient sees it from the sender's
// occupant JID with an id of the room's, and neither learns the other's
// real JID. A vCard request goes to the occupant's bare JID, where the
// vCard lives (any session answering would otherwise need to).
func (r *room) forwardIQ(ctx context.Context, st *xmpp.Stanza, from *occupant) {
	to := r.occupants[st.To.Resourcepart()]
	if to == nil || len(to.sessions) == 0 {
		r.fail(ctx, st, xmpp.StanzaError(stanza.ItemNotFound, "no such occupant"))
		return
	}
	target := to.sessions[len(to.sessions)-1] // the session that joined last
	if p := st.Payload(); p != nil && p.Name == "vCard" && p.Space == "vcard-temp" {
		target = to.bare
	}
	if r.iqs == nil {
		r.iqs = map[string]pendingIQ{}
	}
	if len(r.iqs) >= maxPendingIQs && !r.expireIQs(time.Now()) {
		r.fail(ctx, st, xmpp.StanzaError(stanza.ResourceConstraint, "too many requests in flight in this room"))
		return
	}
	r.iqSeq++
	id := "muc-iq-" + strconv.FormatUint(r.iqSeq, 36)
	r.iqs[id] = pendingIQ{requester: st.From, origID: st.ID, target: target, toNick: to.nick, sent: time.Now()}
	fwd := st.WithElement(st.El.WithAttr("id", id)).With(r.nickJID(from.nick), target)
	fwd.ID = id
	r.send(ctx, fwd)
}

// expireIQs drops requests older than pendingIQTimeout and reports
// whether any place was freed.
func (r *room) expireIQs(now time.Time) bool {
	freed := false
	for id, p := range r.iqs {
		if now.Sub(p.sent) > pendingIQTimeout {
			delete(r.iqs, id)
			freed = true
		}
	}
	return freed
}

// answerIQ routes the answer (result or error) to a forwarded IQ back to
// the requesting session, from the answerer's occupant JID and with the
// requester's own id. Answers from anyone but the forward's target, or to
// unknown ids, are dropped (RFC 6120 §8.2.3: never answer a response).
func (r *room) answerIQ(ctx context.Context, st *xmpp.Stanza) {
	p, ok := r.iqs[st.ID]
	if !ok || !st.From.Equal(p.target) {
		return
	}
	delete(r.iqs, st.ID)
	ans := st.WithElement(st.El.WithAttr("id", p.origID)).With(r.nickJID(p.toNick), p.requester)
	ans.ID = p.origID
	r.send(ctx, ans)
}
