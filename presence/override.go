package presence

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NSCall is the namespace of the call state extension: a presence child
// <call xmlns='urn:switchboard:call:0' state='on-call'/> tells monitoring
// clients (a receptionist's console) whether a user is ringing, on a call,
// in a meeting, forwarding all calls or private. Clients that do not know it
// ignore it and still see <show/> and <status/>.
const NSCall = "urn:switchboard:call:0"

// Call states.
var CallStates = []string{"ringing", "on-call", "in-meeting", "forwarding", "private"}

// Shows are the valid <show/> values ("" is plain available).
var Shows = []string{"", "away", "chat", "dnd", "xa"}

// ErrInvalidOverride reports an unknown show or call state.
var ErrInvalidOverride = errors.New("presence: invalid override")

// ErrNoOverrides reports a module built without an override store.
var ErrNoOverrides = errors.New("presence: overrides not configured")

// ValidateOverride checks show and call state values.
func ValidateOverride(o store.PresenceOverride) error {
	okShow := false
	for _, s := range Shows {
		okShow = okShow || s == o.Show
	}
	if !okShow {
		return fmt.Errorf("%w: show %q (one of away, chat, dnd, xa, or empty)", ErrInvalidOverride, o.Show)
	}
	if !wire.ValidText(o.Status) {
		// The status is written into presence stanzas as it is.
		return fmt.Errorf("%w: status holds characters XML does not allow", ErrInvalidOverride)
	}
	if o.CallState != "" {
		okCall := false
		for _, s := range CallStates {
			okCall = okCall || s == o.CallState
		}
		if !okCall {
			return fmt.Errorf("%w: call state %q (one of %v)", ErrInvalidOverride, o.CallState, CallStates)
		}
	}
	return nil
}

// loadOverrides fills the in-memory copy of the overrides.
func (m *Module) loadOverrides(ctx context.Context) error {
	if m.deps.Overrides == nil {
		return nil
	}
	all, err := m.deps.Overrides.All(ctx)
	if err != nil {
		return fmt.Errorf("presence: load overrides: %w", err)
	}
	m.mu.Lock()
	m.overrides = all
	m.mu.Unlock()
	return nil
}

// SetOverride sets presence from outside for an account: every available
// resource's presence is replaced (show, status, call state) and broadcast
// again to contacts and the user's own devices, until ClearOverride.
func (m *Module) SetOverride(ctx context.Context, bare jid.JID, o store.PresenceOverride) error {
	if err := ValidateOverride(o); err != nil {
		return err
	}
	if m.deps.Overrides == nil {
		return ErrNoOverrides
	}
	if o.Set.IsZero() {
		o.Set = m.deps.Now()
	}
	if err := m.deps.Overrides.Set(ctx, bare.String(), o); err != nil {
		return fmt.Errorf("presence: set override: %w", err)
	}
	m.mu.Lock()
	m.overrides[bare.String()] = o
	m.mu.Unlock()
	m.rebroadcast(ctx, bare)
	return nil
}

// ClearOverride removes presence set from outside and broadcasts the
// user's own last presence again.
func (m *Module) ClearOverride(ctx context.Context, bare jid.JID) error {
	if m.deps.Overrides == nil {
		return ErrNoOverrides
	}
	if err := m.deps.Overrides.Clear(ctx, bare.String()); err != nil {
		return fmt.Errorf("presence: clear override: %w", err)
	}
	m.mu.Lock()
	delete(m.overrides, bare.String())
	m.mu.Unlock()
	m.rebroadcast(ctx, bare)
	return nil
}

// rebroadcast sends each available resource's own last presence through
// the broadcast path again, where the override (if any) applies.
func (m *Module) rebroadcast(ctx context.Context, bare jid.JID) {
	for _, r := range m.deps.Router.Sessions(bare) {
		if !r.Available {
			continue
		}
		m.mu.Lock()
		orig := m.original[r.JID.String()]
		m.mu.Unlock()
		if orig == nil {
			continue
		}
		m.deps.Router.Route(ctx, orig.With(r.JID, jid.JID{}))
	}
}

// transform is the BroadcastPresence hook: it remembers the client's own
// presence and applies an override.
func (m *Module) transform(_ context.Context, st *xmpp.Stanza) *xmpp.Stanza {
	if p := st.El.ChildText("priority", xmpp.NSClient); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < -128 || n > 127 {
			// The router refuses it (RFC 6121 §4.7.2.3): it must not
			// replace the resource's last valid presence, which a
			// rebroadcast sends again.
			return st
		}
	}
	m.mu.Lock()
	// Rebroadcasts re-send this original too, so it is always the
	// client's own presence.
	m.original[st.From.String()] = st
	m.originalPeak.Grew(len(m.original))
	o, ok := m.overrides[st.From.Bare().String()]
	m.mu.Unlock()
	if !ok {
		return st
	}
	var children []*wire.Element
	for _, c := range st.El.Children {
		switch {
		case c.Space == xmpp.NSClient && (c.Name == "show" || c.Name == "status"):
		case c.Space == NSCall:
		default:
			children = append(children, c)
		}
	}
	if o.Show != "" {
		children = append(children, wire.New("show", xmpp.NSClient).SetText(o.Show))
	}
	if o.Status != "" {
		children = append(children, wire.New("status", xmpp.NSClient).SetText(o.Status))
	}
	if o.CallState != "" {
		children = append(children, wire.New("call", NSCall, wire.Attr{Name: "state", Value: o.CallState}))
	}
	return st.WithElement(st.El.WithChildren("", children...))
}

// AccountsChanged reloads the overrides from the store: an account was
// created or deleted, and a deleted account's override went with it.
func (m *Module) AccountsChanged(string) {
	if err := m.loadOverrides(context.Background()); err != nil {
		m.log.Error("presence: reload overrides", xmpp.LogErr, err)
	}
}
