package roster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strconv"

	"mellium.im/xmpp/jid"

	"switchboard/store"
)

// HostPolicy is a host's roster configuration.
type HostPolicy struct {
	// SharedRoster: every user of the host sees every other user, in
	// group SharedGroup, with a mutual subscription.
	SharedRoster bool
	SharedGroup  string
	// Groups are shared groups; members are bare JIDs.
	Groups []SharedGroup
	// MonitorGroup holds temporary monitors, at most MaxMonitors of them
	// (0: no limit); adding one more removes the oldest.
	MonitorGroup string
	MaxMonitors  int
}

// SharedGroup is a configured shared group.
type SharedGroup struct {
	Name    string
	Members []string // bare JIDs
}

// Directory lists the accounts of a host (for the shared roster).
type Directory interface {
	List(ctx context.Context, host string) ([]string, error)
}

// AccountsChanged drops the cached account list of a host; call it after
// an account is created or deleted.
func (m *Module) AccountsChanged(host string) {
	m.mu.Lock()
	delete(m.users, host)
	m.mu.Unlock()
}

func (m *Module) hostUsers(ctx context.Context, host string) ([]string, error) {
	m.mu.RLock()
	l, ok := m.users[host]
	m.mu.RUnlock()
	if ok {
		return l, nil
	}
	if m.deps.Directory == nil {
		return nil, nil
	}
	// The list is read under the lock that AccountsChanged takes, so a
	// change (made in the store before AccountsChanged) is either seen
	// by this read or drops its result afterwards: a list read before
	// the change never outlives it in the cache.
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.users[host]; ok {
		return l, nil
	}
	locals, err := m.deps.Directory.List(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("roster: users of %s: %w", host, err)
	}
	l = make([]string, len(locals))
	for i, lp := range locals {
		l[i] = lp + "@" + host
	}
	m.users[host] = l
	return l, nil
}

// shared returns the contacts the configuration shares with user, each
// with its groups.
func (m *Module) shared(ctx context.Context, user jid.JID) (map[string][]string, error) {
	pol, ok := m.opts.Hosts[user.Domainpart()]
	if !ok || (!pol.SharedRoster && len(pol.Groups) == 0) {
		return nil, nil
	}
	self := user.String()
	out := map[string][]string{}
	if pol.SharedRoster {
		all, err := m.hostUsers(ctx, user.Domainpart())
		if err != nil {
			return nil, err
		}
		for _, u := range all {
			if u != self {
				out[u] = append(out[u], pol.SharedGroup)
			}
		}
	}
	for _, g := range pol.Groups {
		if !slices.Contains(g.Members, self) {
			continue
		}
		for _, u := range g.Members {
			if u != self && !slices.Contains(out[u], g.Name) {
				out[u] = append(out[u], g.Name)
			}
		}
	}
	return out, nil
}

// merge applies the shared groups to a stored item (or makes one): the
// subscription is mutual and the shared groups are added.
func merge(it store.RosterItem, groups []string) store.RosterItem {
	it.Subscription = store.SubBoth
	it.Ask = false
	for _, g := range groups {
		if !slices.Contains(it.Groups, g) {
			it.Groups = append(slices.Clip(it.Groups), g)
		}
	}
	return it
}

// view returns the user's effective roster: stored items merged with the
// shared contacts, sorted by contact, and the version string.
func (m *Module) view(ctx context.Context, user jid.JID) ([]store.RosterItem, string, bool, error) {
	items, version, err := m.deps.Rosters.Items(ctx, user.String())
	if err != nil {
		return nil, "", false, fmt.Errorf("roster: items: %w", err)
	}
	sh, err := m.shared(ctx, user)
	if err != nil {
		return nil, "", false, err
	}
	if len(sh) == 0 {
		return items, ver(version), false, nil
	}
	seen := map[string]bool{}
	for i, it := range items {
		if g, ok := sh[it.Contact]; ok {
			items[i] = merge(it, g)
			seen[it.Contact] = true
		}
	}
	keys := make([]string, 0, len(sh))
	for c := range sh {
		keys = append(keys, c)
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, c := range keys {
		h.Write([]byte(c))
		for _, g := range sh[c] {
			h.Write([]byte{0})
			h.Write([]byte(g))
		}
		h.Write([]byte{1})
		if !seen[c] {
			items = append(items, merge(store.RosterItem{Contact: c}, sh[c]))
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Contact < items[j].Contact })
	// The version covers the shared part too, so that a client's
	// cached roster is replaced when colleagues come and go.
	return items, ver(version) + "-" + strconv.FormatUint(h.Sum64(), 36), true, nil
}

// viewItem returns the effective form of one item, for pushes.
func (m *Module) viewItem(ctx context.Context, user jid.JID, it store.RosterItem) store.RosterItem {
	sh, err := m.shared(ctx, user)
	if err != nil || sh == nil {
		return it
	}
	if g, ok := sh[it.Contact]; ok {
		return merge(it, g)
	}
	return it
}

// isShared reports whether contact is shared with user.
func (m *Module) isShared(ctx context.Context, user jid.JID, contact string) bool {
	sh, err := m.shared(ctx, user)
	if err != nil {
		m.log.Error("roster: shared contacts", "jid", user.String(), "err", err)
		return false
	}
	_, ok := sh[contact]
	return ok
}

// Subscribers returns the contacts that receive the user's presence:
// subscription from or both, and shared contacts (RFC 6121 §4.2.2).
func (m *Module) Subscribers(ctx context.Context, user jid.JID) ([]jid.JID, error) {
	return m.contacts(ctx, user, store.Subscription.HasFrom)
}

// Subscriptions returns the contacts whose presence the user receives:
// subscription to or both, and shared contacts.
func (m *Module) Subscriptions(ctx context.Context, user jid.JID) ([]jid.JID, error) {
	return m.contacts(ctx, user, store.Subscription.HasTo)
}

func (m *Module) contacts(ctx context.Context, user jid.JID, want func(store.Subscription) bool) ([]jid.JID, error) {
	items, _, _, err := m.view(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]jid.JID, 0, len(items))
	for _, it := range items {
		if !want(it.Subscription) {
			continue
		}
		j, err := jid.Parse(it.Contact)
		if err == nil {
			out = append(out, j)
		}
	}
	return out, nil
}

// IsSubscriber reports whether contact may see user's presence.
func (m *Module) IsSubscriber(ctx context.Context, user, contact jid.JID) (bool, error) {
	c := contact.Bare().String()
	if m.isShared(ctx, user, c) {
		return true, nil
	}
	it, err := m.deps.Rosters.Item(ctx, user.String(), c)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("roster: item: %w", err)
	}
	return it.Subscription.HasFrom(), nil
}

// enforceMonitors removes the oldest monitored items beyond the host's
// cap, keeping keep (the item just added).
func (m *Module) enforceMonitors(ctx context.Context, user jid.JID, keep string) {
	pol, ok := m.opts.Hosts[user.Domainpart()]
	if !ok || pol.MaxMonitors <= 0 || pol.MonitorGroup == "" {
		return
	}
	items, _, err := m.deps.Rosters.Items(ctx, user.String())
	if err != nil {
		m.log.Error("roster: monitors", "jid", user.String(), "err", err)
		return
	}
	var monitored []store.RosterItem
	for _, it := range items {
		if slices.Contains(it.Groups, pol.MonitorGroup) {
			monitored = append(monitored, it)
		}
	}
	excess := len(monitored) - pol.MaxMonitors
	if excess <= 0 {
		return
	}
	sort.SliceStable(monitored, func(i, j int) bool { return monitored[i].Added.Before(monitored[j].Added) })
	for _, it := range monitored {
		if excess == 0 {
			break
		}
		if it.Contact == keep {
			continue
		}
		contact, err := jid.Parse(it.Contact)
		if err != nil {
			continue
		}
		if err := m.removeItem(ctx, user, contact); err != nil {
			m.log.Error("roster: evict monitor", "jid", user.String(), "contact", it.Contact, "err", err)
			continue
		}
		excess--
	}
}
