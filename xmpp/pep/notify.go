package pep

import (
	"context"
	"strings"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// notify sends an event of one of own's nodes to whoever is to hear of it
// (XEP-0163 §4.3.1): the owner's available resources and those of the
// contacts the node's access model admits, each only if its entity
// capabilities ask for the node (filtered notifications, XEP-0060 §9.2).
// Notifications come from the owner's bare JID (§4.3.3), so errors about
// them return to the service.
func (m *Module) notify(ctx context.Context, own jid.JID, n store.PEPNode, ev *wire.Element) {
	msg := xmpp.Build(xmpp.KindMessage, xmpp.TypeHeadline, m.newID(idPrefixNotification), own, jid.JID{},
		wire.New("event", NSEvent).AddChild(ev))
	var to []jid.JID
	to = m.interested(ctx, own, n.Node, to)
	if n.Access != AccessWhitelist {
		subs, err := m.deps.Contacts.Subscribers(ctx, own)
		if err != nil {
			m.log.Error("pep: subscribers", xmpp.LogJID, own.String(), xmpp.LogErr, err)
		}
		remote := map[string]bool{}
		for _, c := range subs {
			if c.Equal(own) {
				continue
			}
			// Subscribers pass the presence and open models; the roster
			// model asks for a group, and no one the owner blocked
			// hears of it (§4.3.3).
			if n.Access == AccessRoster {
				if m.access(ctx, own, n, c) != nil {
					continue
				}
			} else if m.deps.Blocks != nil && m.deps.Blocks(ctx, own, c) {
				continue
			}
			if m.deps.IsLocal(c.Domainpart()) {
				to = m.interested(ctx, c, n.Node, to)
			} else {
				remote[c.String()] = true
			}
		}
		if len(remote) > 0 {
			to = m.interestedRemote(own, n.Node, remote, to)
		}
	}
	for _, j := range to {
		// A block may name one resource (XEP-0191 §6): checked for
		// every recipient but the owner's own.
		if !j.Bare().Equal(own) && m.deps.Blocks != nil && m.deps.Blocks(ctx, own, j) {
			continue
		}
		m.deps.Router.Route(ctx, msg.WithTo(j, j.String()))
	}
}

// interested appends the available resources of a local account whose
// capabilities ask for node. A resource whose capabilities are not known
// (forgotten since, or never answered) is asked again, for the next time.
func (m *Module) interested(ctx context.Context, account jid.JID, node string, to []jid.JID) []jid.JID {
	for _, r := range m.deps.Sessions.Sessions(account) {
		if !r.Available || r.Presence == nil {
			continue
		}
		key, capsNode, ver := capsKey(r.Presence.El)
		nodes, ok := m.lookup(r.JID.String(), key)
		if !ok && key != "" {
			m.learn(ctx, key, capsNode, ver, key, waiter{full: r.JID, asker: account})
		}
		if nodes[node] {
			to = append(to, r.JID)
		}
	}
	return to
}

// interestedRemote appends the resources of other servers' users (bare
// JIDs in contacts) that sent own available presence asking for node.
func (m *Module) interestedRemote(own jid.JID, node string, contacts map[string]bool, to []jid.JID) []jid.JID {
	m.mu.Lock()
	defer m.mu.Unlock()
	for full, key := range m.remote[own.String()] {
		bare, _, _ := strings.Cut(full, "/")
		if !contacts[bare] {
			continue
		}
		if nodes, ok := m.lookupLocked(full, key); ok && nodes[node] {
			if j, err := jid.Parse(full); err == nil {
				to = append(to, j)
			}
		}
	}
	return to
}

// lookup returns the nodes a resource's caps key asks for, and whether
// they are known.
func (m *Module) lookup(full, key string) (map[string]bool, bool) {
	if key == "" {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookupLocked(full, key)
}

func (m *Module) lookupLocked(full, key string) (map[string]bool, bool) {
	if key == "" {
		return nil, false
	}
	if nodes, ok := m.known[key]; ok {
		return nodes, true
	}
	if o, ok := m.own[full]; ok && o.key == key {
		return o.nodes, true
	}
	return nil, false
}

// forgetLocal forgets what the module knows of a local resource (its
// full JID) that went unavailable or whose session closed.
func (m *Module) forgetLocal(fs string) {
	m.mu.Lock()
	delete(m.seen, fs)
	m.seen = xmpp.CompactMap(m.seen, &m.seenPeak)
	delete(m.own, fs)
	m.mu.Unlock()
}

// localPresence follows a local resource's broadcast presence: initial
// presence, or presence with new capabilities, gets the last item of each
// node it newly asks for, from its own account and the local accounts
// whose presence it receives (XEP-0163 §4.3.3, §4.3.4). Other servers'
// accounts send theirs when they receive that presence.
func (m *Module) localPresence(ctx context.Context, st *xmpp.Stanza) {
	full := st.From
	fs := full.String()
	if st.Type == xmpp.TypeUnavailable {
		m.forgetLocal(fs)
		return
	}
	key, node, ver := capsKey(st.El)
	m.mu.Lock()
	prev, had := m.seen[fs]
	m.seen[fs] = key
	m.seenPeak.Grew(len(m.seen))
	m.mu.Unlock()
	if had && prev == key || key == "" {
		return
	}
	owners := []jid.JID{full.Bare()}
	subs, err := m.deps.Contacts.Subscriptions(ctx, full.Bare())
	if err != nil {
		m.log.Error("pep: subscriptions", xmpp.LogJID, fs, xmpp.LogErr, err)
	}
	for _, c := range subs {
		if m.deps.IsLocal(c.Domainpart()) && !c.Equal(full.Bare()) {
			owners = append(owners, c)
		}
	}
	m.learn(ctx, key, node, ver, prev, waiter{full: full, owners: owners, asker: full.Bare()})
}

// approved follows a local account's approval of a contact's presence
// subscription (the SubscriptionApproved hook: the owner's roster records
// it, and the 'subscribed' and the owner's presence went out). The
// contact is then a new subscriber of the owner's nodes, which gets the
// last item of each node it asks for (XEP-0163 §4.3.4: "to all new
// subscribers", not only to newly available resources); sendLast checks
// the node's access model.
//   - A local contact's available resources get them at once when their
//     capabilities are known, else with the answer to the question about
//     them (learn), which joins a question already asked.
//   - Another server's contact: the module follows the resources that
//     sent the owner presence only while they are subscribers
//     (remotePresence), so none of the contact's is followed yet, and
//     until it next sends presence it would get neither the last items
//     nor notifications. If the owner has a subscription to the contact's
//     presence, the owner's server probes it now (RFC 6121 §4.3, from the
//     bare JID: the answer comes to every resource of the owner): the
//     answers are followed, and bring the last items. Without one, no
//     presence of the contact reaches the owner, and it gets nothing (as
//     XEP-0163 §4.3.2 allows without presence information).
func (m *Module) approved(ctx context.Context, st *xmpp.Stanza) {
	own, contact := st.From.Bare(), st.To.Bare()
	if contact.Localpart() == "" {
		return
	}
	if !m.deps.IsLocal(contact.Domainpart()) {
		it, err := m.deps.Rosters.Item(ctx, own.String(), contact.String())
		if err != nil {
			m.log.Error("pep: roster item", xmpp.LogJID, own.String(), xmpp.LogErr, err)
			return
		}
		if it.Subscription.HasTo() {
			m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindPresence, xmpp.TypeProbe, "", own, contact))
		}
		return
	}
	owners := []jid.JID{own}
	for _, r := range m.deps.Sessions.Sessions(contact) {
		if !r.Available || r.Presence == nil {
			continue
		}
		// The capabilities of the presence the router keeps, as for a
		// notification (interested). With no previous key every node
		// the resource asks for is new to it from this owner.
		key, capsNode, ver := capsKey(r.Presence.El)
		if key != "" {
			m.learn(ctx, key, capsNode, ver, "", waiter{full: r.JID, owners: owners, asker: contact})
		}
	}
}

// remotePresence follows the presence that other servers' users send a
// local account: where the account's notifications go (XEP-0163 §4.3.1),
// and the last items for their initial presence. It never consumes the
// presence.
func (m *Module) remotePresence(ctx context.Context, st *xmpp.Stanza) bool {
	if st.Kind != xmpp.KindPresence || st.From.Resourcepart() == "" || m.deps.IsLocal(st.From.Domainpart()) ||
		st.To.Localpart() == "" || !m.deps.IsLocal(st.To.Domainpart()) {
		return false
	}
	own := st.To.Bare()
	ownStr, fs := own.String(), st.From.String()
	switch st.Type {
	case xmpp.TypeUnavailable:
		m.forgetRemote(ownStr, fs)
		return false
	case "":
	default:
		return false
	}
	key, node, ver := capsKey(st.El)
	if key != "" {
		// Only contacts who may hear of the account's events are
		// followed (XEP-0163 §4.3.1): others would only take the
		// room and the queries of those who are.
		if ok, err := m.deps.Contacts.IsSubscriber(ctx, own, st.From); err != nil || !ok {
			key = ""
		}
	}
	m.mu.Lock()
	tracked := m.remote[ownStr]
	prev, had := tracked[fs]
	if key == "" {
		if had {
			delete(tracked, fs)
		}
		m.mu.Unlock()
		return false
	}
	if tracked == nil {
		if len(m.remote) >= maxTrackedAccounts {
			evictOne(m.remote)
		}
		tracked = map[string]string{}
		m.remote[ownStr] = tracked
	}
	if !had && len(tracked) >= maxTrackedPerAccount {
		m.mu.Unlock()
		return false
	}
	tracked[fs] = key
	m.mu.Unlock()
	if had && prev == key {
		return false
	}
	m.learn(ctx, key, node, ver, prev, waiter{full: st.From, owners: []jid.JID{own}, asker: own})
	return false
}

func (m *Module) forgetRemote(own, full string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.remote[own]; t != nil {
		delete(t, full)
		if len(t) == 0 {
			delete(m.remote, own)
		}
	}
	delete(m.own, full)
}

// learn sends w the last items of the nodes that caps key asks for and
// prev did not, asking the resource (from the account w.asker) what key
// means when that is not known yet (XEP-0115 §6.2).
func (m *Module) learn(ctx context.Context, key, node, ver, prev string, w waiter) {
	fs := w.full.String()
	w.prev = prev
	if nodes, ok := m.lookup(fs, key); ok {
		m.sendLast(ctx, w, m.fresh(fs, nodes, prev))
		return
	}
	hashName, _, _ := strings.Cut(key, " ")
	askKey := key
	if _, checked := capsHashes[hashName]; !checked {
		// Unverifiable: what one entity answers is its own.
		askKey = key + "\x00" + fs
	}
	now := m.deps.Now()
	m.mu.Lock()
	for id, q := range m.pending {
		if now.Sub(q.sent) > capsQueryTimeout {
			delete(m.pending, id)
			delete(m.asking, q.askKey)
		}
	}
	if id, ok := m.asking[askKey]; ok {
		if q := m.pending[id]; q != nil {
			if old, waiting := q.waiters[fs]; waiting {
				// The resource waits already (its presence, or an
				// approval): the answer brings the items of both's
				// owners, each node counted new against the first's
				// previous key.
				q.waiters[fs] = old.withOwners(w.owners)
			} else if len(q.waiters) < maxPendingQueries {
				q.waiters[fs] = w
			}
		}
		m.mu.Unlock()
		return
	}
	if len(m.pending) >= maxPendingQueries {
		m.mu.Unlock()
		m.log.Warn("pep: too many capability queries in flight", xmpp.LogJID, fs)
		return
	}
	id := m.newID(idPrefixCaps)
	m.pending[id] = &query{key: key, askKey: askKey, node: node, to: w.full, sent: now, waiters: map[string]waiter{fs: w}}
	m.asking[askKey] = id
	m.mu.Unlock()
	m.ask(ctx, id, node, key, w)
}

// ask sends the disco#info query id to w's resource, from w's account.
func (m *Module) ask(ctx context.Context, id, node, key string, w waiter) {
	_, ver, _ := strings.Cut(key, " ")
	q := wire.New("query", xmpp.NSDiscoInfo)
	if node != "" {
		q.Attrs = append(q.Attrs, wire.Attr{Name: "node", Value: node + "#" + ver})
	}
	m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindIQ, xmpp.TypeGet, id, w.asker, w.full, q))
}

// fresh returns the nodes that key's interests add to those of prev, the
// resource's previous key: only those get their last item again
// (XEP-0163 §4.3.3: later presence must not send it again).
func (m *Module) fresh(fs string, nodes map[string]bool, prev string) map[string]bool {
	old, _ := m.lookup(fs, prev)
	out := map[string]bool{}
	for n := range nodes {
		if !old[n] {
			out[n] = true
		}
	}
	return out
}

// evictOne removes an arbitrary entry of a full map: a bound that a flood
// of new keys cannot use to empty the map.
func evictOne[K comparable, V any](mp map[K]V) {
	for k := range mp {
		delete(mp, k)
		return
	}
}

// inbound takes the answers to the service's capability queries, and
// errors about notifications sent to other servers' users (whose
// resources are then forgotten).
func (m *Module) inbound(ctx context.Context, st *xmpp.Stanza) bool {
	switch {
	case st.Kind == xmpp.KindMessage && st.Type == xmpp.TypeError && strings.HasPrefix(st.ID, idPrefixNotification) &&
		!xmpp.IsZero(st.To) && st.To.Resourcepart() == "" && !m.deps.IsLocal(st.From.Domainpart()):
		m.forgetRemote(st.To.String(), st.From.String())
		return true
	case st.Kind != xmpp.KindIQ || (st.Type != xmpp.TypeResult && st.Type != xmpp.TypeError) ||
		!strings.HasPrefix(st.ID, idPrefixCaps):
		return false
	}
	m.mu.Lock()
	q := m.pending[st.ID]
	if q == nil || !st.From.Equal(q.to) {
		m.mu.Unlock()
		return false
	}
	delete(m.pending, st.ID)
	delete(m.asking, q.askKey)
	m.mu.Unlock()
	p := st.Payload()
	answered := st.Type == xmpp.TypeResult && p != nil && p.Name == "query" && p.Space == xmpp.NSDiscoInfo
	verified := false
	var nodes map[string]bool
	if answered {
		hashName, ver, _ := strings.Cut(q.key, " ")
		got, ok := verification(p, hashName)
		verified = ok && got == ver
		nodes = interests(p)
	}
	m.mu.Lock()
	switch {
	case verified:
		if len(m.known) >= maxKnownCaps {
			evictOne(m.known)
		}
		m.known[q.key] = nodes
	case answered:
		if len(m.own) >= maxKnownCaps {
			evictOne(m.own)
		}
		m.own[q.to.String()] = ownCaps{key: q.key, nodes: nodes}
	}
	var ready []waiter
	var next *query
	for fs, w := range q.waiters {
		// Only resources still announcing this key.
		if m.seen[fs] != q.key && m.remote[w.asker.String()][fs] != q.key {
			continue
		}
		switch {
		case verified || answered && w.full.Equal(q.to):
			ready = append(ready, w)
		case !w.full.Equal(q.to):
			// XEP-0115 §5.4 3.9: when the entity asked fails, ask
			// another that announces the same string.
			if next == nil {
				next = &query{key: q.key, askKey: q.askKey, node: q.node, to: w.full, sent: m.deps.Now(), waiters: map[string]waiter{}}
			}
			next.waiters[fs] = w
		}
	}
	var nextID string
	if next != nil {
		nextID = m.newID(idPrefixCaps)
		m.pending[nextID] = next
		m.asking[next.askKey] = nextID
	}
	m.mu.Unlock()
	for _, w := range ready {
		m.sendLast(ctx, w, m.fresh(w.full.String(), nodes, w.prev))
	}
	if next != nil {
		m.ask(ctx, nextID, next.node, next.key, next.waiters[next.to.String()])
	}
	return true
}

// sendLast sends w the newest item of each node of its owners that it
// asks for and may read, unless the node says never (XEP-0163 §4.3.4).
func (m *Module) sendLast(ctx context.Context, w waiter, nodes map[string]bool) {
	if len(nodes) == 0 {
		return
	}
	for _, own := range w.owners {
		all, err := m.deps.Store.Nodes(ctx, own.String())
		if err != nil {
			m.log.Error("pep: nodes", xmpp.LogJID, own.String(), xmpp.LogErr, err)
			continue
		}
		for _, l := range all {
			if !nodes[l.Node.Node] || l.Item.ID == "" || l.Node.SendLast != SendOnSubAndPresence {
				continue
			}
			if m.access(ctx, own, l.Node, w.full) != nil {
				continue
			}
			if !own.Equal(w.full.Bare()) && l.Node.Access != AccessPresence {
				// The contact must share the owner's presence (the
				// open and roster models too: auto-subscription,
				// §4.1); access checked it for the presence model.
				if ok, err := m.deps.Contacts.IsSubscriber(ctx, own, w.full); err != nil || !ok {
					continue
				}
			}
			p, err := parsePayload(l.Item.Payload)
			if err != nil {
				m.log.Error("pep: stored payload", xmpp.LogJID, own.String(), "node", l.Node.Node, xmpp.LogErr, err)
				continue
			}
			ev := wire.New("event", NSEvent).AddChild(
				wire.New("items", NSEvent, wire.Attr{Name: "node", Value: l.Node.Node}).AddChild(
					wire.New("item", NSEvent, wire.Attr{Name: "id", Value: l.Item.ID}).AddChild(p)))
			m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindMessage, xmpp.TypeHeadline, m.newID(idPrefixNotification), own, w.full, ev))
		}
	}
}
