package roster

import "switchboard/store"

// State is a subscription state of RFC 6121 Appendix A.1: the
// subscription plus the pending flags ("None + Pending Out", ...).
type State struct {
	Sub        store.Subscription
	PendingOut bool // ask='subscribe'
	PendingIn  bool // an inbound request awaits the user's answer
}

func (s State) hasTo() bool   { return s.Sub.HasTo() }
func (s State) hasFrom() bool { return s.Sub.HasFrom() }

func (s State) withTo(on bool) State {
	switch {
	case on && s.Sub == store.SubNone:
		s.Sub = store.SubTo
	case on && s.Sub == store.SubFrom:
		s.Sub = store.SubBoth
	case !on && s.Sub == store.SubTo:
		s.Sub = store.SubNone
	case !on && s.Sub == store.SubBoth:
		s.Sub = store.SubFrom
	}
	return s
}

func (s State) withFrom(on bool) State {
	switch {
	case on && s.Sub == store.SubNone:
		s.Sub = store.SubFrom
	case on && s.Sub == store.SubTo:
		s.Sub = store.SubBoth
	case !on && s.Sub == store.SubFrom:
		s.Sub = store.SubNone
	case !on && s.Sub == store.SubBoth:
		s.Sub = store.SubTo
	}
	return s
}

// Outbound applies a subscription stanza the user sends to the contact
// (RFC 6121 Appendix A.2) and reports whether the user's server routes it.
// Pre-approval (§3.4) of a "subscribed" without a pending request is
// handled by the caller.
func Outbound(s State, typ string) (next State, route bool) {
	switch typ {
	case "subscribe": // A.2.1
		if s.hasTo() {
			return s, true // already subscribed: no change; routed so the contact re-confirms
		}
		s.PendingOut = true
		return s, true
	case "unsubscribe": // A.2.2
		if !s.hasTo() && !s.PendingOut {
			return s, false
		}
		s = s.withTo(false)
		s.PendingOut = false
		return s, true
	case "subscribed": // A.2.3
		if !s.PendingIn {
			return s, false
		}
		s = s.withFrom(true)
		s.PendingIn = false
		return s, true
	case "unsubscribed": // A.2.4
		if !s.hasFrom() && !s.PendingIn {
			return s, false
		}
		s = s.withFrom(false)
		s.PendingIn = false
		return s, true
	}
	return s, false
}

// Inbound applies a subscription stanza received from the contact (RFC 6121
// Appendix A.3) and reports whether it is delivered to the user. An inbound
// "subscribe" when the contact already has a subscription from the user is
// answered by the server (§3.1.3); the caller handles that and
// pre-approval.
func Inbound(s State, typ string) (next State, deliver bool) {
	switch typ {
	case "subscribe": // A.3.1
		if s.hasFrom() || s.PendingIn {
			return s, false
		}
		s.PendingIn = true
		return s, true
	case "unsubscribe": // A.3.2
		if !s.hasFrom() && !s.PendingIn {
			return s, false
		}
		s = s.withFrom(false)
		s.PendingIn = false
		return s, true
	case "subscribed": // A.3.3
		if !s.PendingOut {
			return s, false
		}
		s = s.withTo(true)
		s.PendingOut = false
		return s, true
	case "unsubscribed": // A.3.4
		if !s.hasTo() && !s.PendingOut {
			return s, false
		}
		s = s.withTo(false)
		s.PendingOut = false
		return s, true
	}
	return s, false
}
