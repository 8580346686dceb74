package push

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// idPrefix starts the id of every notification, so that answer passes
// other IQ answers by at once.
const idPrefix = "push-"

// maxBodyBytes bounds the body a notification carries (IncludeBody): it
// is a preview.
const maxBodyBytes = 512

// connected returns the names of bare's resources whose session has its
// client (xmpp.Connected).
func (m *Module) connected(bare jid.JID) map[string]bool {
	out := map[string]bool{}
	for _, r := range m.deps.Sessions.Sessions(bare) {
		if xmpp.Connected(r.Session) {
			out[r.JID.Resourcepart()] = true
		}
	}
	return out
}

// watched reports whether an account has services: the check every
// message delivered or stored goes through (after enabled's), without a
// lock.
func (m *Module) watched(bare jid.JID) bool {
	_, ok := m.accounts.Load(bare.String())
	return ok
}

// delivered notifies, of a message delivered to some of an account's
// sessions, the services whose resource has no connected session: the
// client would see the message only when it connects (from the archive),
// or resumes (it took the message, or a carbon copy of it). A groupchat
// message counts only for the sessions that took it: a client without
// one is in no room.
func (m *Module) delivered(ctx context.Context, d xmpp.Delivery) {
	if m.enabled.Load() == 0 || len(d.To) == 0 {
		return
	}
	bare := d.To[0].Bare()
	if !m.watched(bare) || !worth(d.Stanza.El, d.Stanza.Type) {
		return
	}
	connected := m.connected(bare)
	groupchat := d.Stanza.Type == xmpp.TypeGroupchat
	m.notify(ctx, bare, d.Stanza.El, 1, func(s *service) bool {
		if connected[s.Resource] {
			return false
		}
		if !groupchat {
			return true
		}
		for _, to := range d.To {
			if to.Resourcepart() == s.Resource {
				return true
			}
		}
		return false
	})
}

// stored notifies, of a message stored offline, the services whose
// resource has no connected session.
func (m *Module) stored(ctx context.Context, st *xmpp.Stanza) {
	if m.enabled.Load() == 0 {
		return
	}
	bare := st.To.Bare()
	if !m.watched(bare) || !worth(st.El, st.Type) {
		return
	}
	connected := m.connected(bare)
	m.notify(ctx, bare, st.El, 1, func(s *service) bool { return !connected[s.Resource] })
}

// unreached notifies the service of a session that hibernates, or whose
// client is late acknowledging, of the messages worth it that its client
// was sent and did not acknowledge, or was not sent yet.
func (m *Module) unreached(ctx context.Context, u xmpp.Unreached) {
	if m.enabled.Load() == 0 {
		return
	}
	bare := u.JID.Bare()
	if !m.watched(bare) {
		return
	}
	if u.Session != nil && xmpp.Connected(u.Session) {
		return // resumed, or acknowledged, meanwhile
	}
	n := 0
	var last *wire.Element
	for _, st := range u.Pending {
		if st.Kind == xmpp.KindMessage && worth(st.El, st.Type) {
			n++
			last = st.El
		}
	}
	if n == 0 {
		return
	}
	res := u.JID.Resourcepart()
	m.notify(ctx, bare, last, n, func(s *service) bool { return s.Resource == res })
}

// notify counts n messages, the newest msg, for each of bare's services
// that which picks, and publishes a notification to each that has none
// in flight.
func (m *Module) notify(ctx context.Context, bare jid.JID, msg *wire.Element, n int, which func(*service) bool) {
	var out []*xmpp.Stanza
	m.mu.Lock()
	if v, ok := m.accounts.Load(bare.String()); ok && !m.closed {
		for _, s := range v.(*account).services {
			if !which(s) {
				continue
			}
			s.waiting += n
			s.last = msg
			if s.id == "" {
				out = append(out, m.publishLocked(ctx, s))
			}
		}
	}
	m.mu.Unlock()
	for _, st := range out {
		m.deps.Router.Route(ctx, st)
	}
}

// publishLocked builds the notification of what s waits for and marks it
// in flight until its answer, or Timeout (m.mu held).
func (m *Module) publishLocked(ctx context.Context, s *service) *xmpp.Stanza {
	m.seq++
	id := idPrefix + strconv.FormatUint(m.seq, 10)
	s.id = id
	m.inflight[id] = s
	s.timer = time.AfterFunc(m.opts.Timeout, func() { m.settle(context.WithoutCancel(ctx), id, false, true) })
	x := wire.New("x", xmpp.NSData, wire.Attr{Name: "type", Value: "submit"}).AddChild(
		xmpp.FormField("FORM_TYPE", "hidden", FormSummary),
		xmpp.FormField("message-count", "", strconv.Itoa(s.waiting)),
	)
	sender, body := summary(s.last)
	if m.opts.IncludeSender && sender != "" {
		x.AddChild(xmpp.FormField("last-message-sender", "", sender))
	}
	switch {
	case m.opts.IncludeBody && body != "":
		x.AddChild(xmpp.FormField("last-message-body", "", preview(body)))
	case m.opts.PlaceholderBody != "":
		x.AddChild(xmpp.FormField("last-message-body", "", m.opts.PlaceholderBody))
	}
	s.waiting, s.last = 0, nil
	publish := wire.New("publish", NSPubSub)
	if s.Node != "" {
		publish.Attrs = append(publish.Attrs, wire.Attr{Name: "node", Value: s.Node})
	}
	publish.AddChild(wire.New("item", NSPubSub).AddChild(wire.New("notification", NS).AddChild(x)))
	ps := wire.New("pubsub", NSPubSub).AddChild(publish)
	if s.options != nil {
		// §6: the enable's data, as publish options.
		ps.AddChild(wire.New("publish-options", NSPubSub).AddChild(s.options))
	}
	from, _ := jid.New("", s.owner.Domainpart(), "")
	return xmpp.Build(xmpp.KindIQ, xmpp.TypeSet, id, from, s.to, ps)
}

// answer takes a service's answer to a notification (the Inbound hook).
func (m *Module) answer(ctx context.Context, st *xmpp.Stanza) bool {
	if st.Kind != xmpp.KindIQ || (st.Type != xmpp.TypeResult && st.Type != xmpp.TypeError) ||
		!strings.HasPrefix(st.ID, idPrefix) {
		return false
	}
	m.mu.Lock()
	s := m.inflight[st.ID]
	ok := s != nil && st.From.Equal(s.to) && !xmpp.IsZero(st.To) && st.To.Localpart() == "" &&
		st.To.Domainpart() == s.owner.Domainpart()
	m.mu.Unlock()
	if !ok {
		return false
	}
	wait := false
	if e := st.El.Child("error", xmpp.NSClient); e != nil {
		wait = e.AttrValue("type") == "wait"
	}
	m.settle(ctx, st.ID, st.Type == xmpp.TypeResult, !wait)
	return true
}

// settle ends notification id: a success resets its service's error
// count, a failure that counts adds to it, and the service is disabled
// at MaxErrors (§7). What arrived meanwhile is published now.
func (m *Module) settle(ctx context.Context, id string, success, counts bool) {
	m.mu.Lock()
	s := m.inflight[id]
	if s == nil {
		m.mu.Unlock()
		return
	}
	delete(m.inflight, id)
	s.id = ""
	s.timer.Stop()
	switch {
	case success:
		s.errors = 0
	case counts:
		s.errors++
	}
	failing := s.errors >= m.opts.MaxErrors
	var next *xmpp.Stanza
	switch {
	case failing:
		// Notified no more from now; removed from the store on
		// another goroutine (not the routing one: a store write),
		// which Close waits for.
		m.removeLocked(s.owner, s.JID, s.Node, false)
		m.removals.Add(1)
	case s.waiting > 0:
		next = m.publishLocked(ctx, s)
	}
	m.mu.Unlock()
	if failing {
		m.log.Warn("push service failing: disabled", xmpp.LogJID, s.owner.String(), "service", s.JID, "node", s.Node, "errors", s.errors)
		go m.disableFailing(context.WithoutCancel(ctx), s)
		return
	}
	if next != nil {
		m.deps.Router.Route(ctx, next)
	}
}

// disableFailing removes from the store a service that failed MaxErrors
// times in a row (settle removed it from memory), unless its client
// enabled it again meanwhile.
func (m *Module) disableFailing(ctx context.Context, s *service) {
	defer m.removals.Done()
	m.writes.Lock()
	defer m.writes.Unlock()
	m.mu.Lock()
	again := false
	if v, ok := m.accounts.Load(s.owner.String()); ok {
		again = slices.ContainsFunc(v.(*account).services, func(o *service) bool { return o.JID == s.JID && o.Node == s.Node })
	}
	m.mu.Unlock()
	if again {
		return
	}
	if _, err := m.deps.Store.Remove(ctx, s.owner.String(), s.JID, s.Node, false); err != nil {
		m.log.Error("push: disable failing service", xmpp.LogJID, s.owner.String(), "service", s.JID, xmpp.LogErr, err)
	}
}

// worth reports whether a message (el, of type typ) is worth a
// notification: see the package documentation.
func worth(el *wire.Element, typ string) bool {
	switch typ {
	case xmpp.TypeError, xmpp.TypeHeadline:
		return false
	}
	for _, c := range el.Children {
		if m := xmpp.CarbonCopied(c); m != nil {
			// A copy of what another resource received, not of what
			// the user sent (XEP-0280).
			return c.Name == "received" && worthContent(m)
		}
	}
	return worthContent(el)
}

// worthContent reports whether a message element has content worth a
// notification.
func worthContent(el *wire.Element) bool {
	for _, c := range el.Children {
		switch c.Space {
		case xmpp.NSClient, wire.NSServer:
			if c.Name == "body" && strings.TrimSpace(c.Text) != "" {
				return true
			}
		case xmpp.NSConference:
			return true
		case xmpp.NSMUCUser:
			if c.Child("invite", xmpp.NSMUCUser) != nil {
				return true
			}
		default:
			if xmpp.Encrypted(c) || strings.HasPrefix(c.Space, xmpp.NSJingleMessagePrefix) && c.Name == "propose" {
				return true
			}
		}
	}
	return false
}

// summary returns the sender and body a notification may carry of msg
// (the message a carbon copy forwards, for a copy). An encrypted message
// has no body to show: what it has is a fallback text for clients without
// its encryption.
func summary(msg *wire.Element) (sender, body string) {
	if msg == nil {
		return "", ""
	}
	for _, c := range msg.Children {
		if inner := xmpp.CarbonCopied(c); inner != nil {
			msg = inner
			break
		}
	}
	sender = msg.AttrValue("from")
	for _, c := range msg.Children {
		switch {
		case c.Name == "body" && (c.Space == xmpp.NSClient || c.Space == wire.NSServer):
			if body == "" {
				body = c.Text
			}
		case xmpp.Encrypted(c):
			return sender, ""
		}
	}
	return sender, body
}

// preview cuts a body to maxBodyBytes, at a character boundary.
func preview(body string) string {
	if len(body) <= maxBodyBytes {
		return body
	}
	cut := maxBodyBytes
	for cut > 0 && !utf8.RuneStart(body[cut]) {
		cut--
	}
	return body[:cut] + "…"
}
