package c2s

import (
	"slices"
	"strings"

	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Client State Indication (XEP-0352 1.0.0). A client says, with
// <inactive/> and <active/> after binding, whether its user is looking.
// While it is inactive the session holds what can wait (presence updates,
// chat states, receipts and markers, PEP notifications, archive results:
// see urgent) beside its queue, keeping only the latest presence and chat
// state of each sender (slotOf), and queues all it holds, in order, when
// something urgent arrives, when the client is active again, when
// anything starts the writer (a stream management answer, the session's
// end; not the server's own request for an acknowledgement,
// requestAgainLocked), or when Options.CSIQueue stanzas (at most half of
// Limits.OutboxStanzas) or half of Limits.OutboxBytes are held. What is
// held counts towards the outbox limits.
//
// What is held is not yet written: stream management (XEP-0198) counts it
// when it is written. A session that hibernates goes on holding; its
// resumption, or its end, takes what it holds with its queue. A resumed
// stream is active (XEP-0352 §5: the state is not restored).
const nsCSI = "urn:xmpp:csi:0"

// Namespaces that make a message urgent (see also the kernel's).
const (
	nsCallInvites = "urn:xmpp:call-invites:0" // XEP-0482, calls in rooms
	nsPubSubEvent = "http://jabber.org/protocol/pubsub#event"
	// XEP-0490: what the user's devices displayed, a PEP node.
	nodeMDS = "urn:xmpp:mds:displayed:0"
)

// maxCarbonNest is how deep urgentMessage looks into carbon copies: a copy
// of a copy is not something XEP-0280 sends.
const maxCarbonNest = 1

// csiElement handles a CSI element the client sent after binding. With
// CSI off it is an element the server does not support (RFC 6120
// §4.9.3.24), as any other.
func (c *conn) csiElement(el *wire.Element) error {
	if c.srv.opts.CSIQueue <= 0 {
		return serr("unsupported-stanza-type", "")
	}
	switch el.Name {
	case "inactive":
		c.mu.Lock()
		c.inactive = true
		c.mu.Unlock()
	case "active":
		// §4 (RFC 6120 §10.1): what is held is queued before anything
		// the client's next stanzas cause.
		c.mu.Lock()
		c.inactive = false
		c.kickLocked() // with what is held
		c.mu.Unlock()
	default:
		return serr("unsupported-stanza-type", "")
	}
	c.debug("client state", "inactive", el.Name == "inactive")
	return nil
}

// csiHold is what a session holds for its inactive client, after
// everything in its queue (conn.hold, allocated when first needed).
type csiHold struct {
	stanzas []*xmpp.Stanza
	bytes   int
}

// holdLocked holds st, which is not urgent, for an inactive client,
// dropping the held stanza it supersedes if there is one, and sends what is
// held once there is too much. c.mu is held, and the outbox has room for
// st (DeliverDeferred).
func (c *conn) holdLocked(st *xmpp.Stanza) {
	h := c.hold
	if h == nil {
		h = &csiHold{}
		c.hold = h
	}
	h.add(st)
	if len(h.stanzas) >= c.srv.opts.CSIQueue || h.bytes > c.srv.opts.Limits.OutboxBytes/2 {
		c.kickLocked()
	}
}

// add holds st after what is held, dropping the held stanza it supersedes
// if there is one. Each stanza held is compared with what is held before
// it (superseded): with csi_queue's default of 256 that cost 0.3–0.5 µs a
// stanza (BenchmarkCSIHold), so the scan stays; remembering each held
// stanza's slot made it slower, by the memory it added to the scan.
func (h *csiHold) add(st *xmpp.Stanza) {
	if i := h.superseded(st); i >= 0 {
		h.bytes -= len(h.stanzas[i].Bytes())
		h.stanzas = slices.Delete(h.stanzas, i, i+1)
	}
	h.stanzas = append(h.stanzas, st)
	h.bytes += len(st.Bytes())
}

// releaseLocked queues what is held, after what is queued: everything
// queued came before it (DeliverDeferred releases before queueing). c.mu
// is held.
func (c *conn) releaseLocked() {
	h := c.hold
	if h == nil || len(h.stanzas) == 0 {
		return
	}
	c.queue = append(c.queue, h.stanzas...)
	c.qbytes += h.bytes
	clear(h.stanzas)
	h.stanzas, h.bytes = h.stanzas[:0], 0
}

// superseded returns the index of the held stanza that st makes obsolete,
// or -1: one in the same slot (slotOf). A stanza of the sender's that is
// not in a slot stays in place, with what it follows. Nothing held is
// written yet: stream management has counted none of it.
func (h *csiHold) superseded(st *xmpp.Stanza) int {
	s, ok := slotOf(st)
	if !ok {
		return -1
	}
	for i := len(h.stanzas) - 1; i >= 0; i-- {
		q := h.stanzas[i]
		if !q.From.Equal(st.From) {
			continue
		}
		qs, ok := slotOf(q)
		switch {
		case !ok:
			if q.Kind == st.Kind {
				// A receipt, a marker or a room's status presence
				// from the sender: the state before it stays.
				return -1
			}
		case qs == s:
			return i
		}
	}
	return -1
}

// slot is what a held stanza is the latest of, for one sender (the
// stanza's 'from'): its availability (RFC 6121 §4.4.2: presence replaces
// the earlier), its chat state in a thread (XEP-0085 §5: a state replaces
// the one before), or the chat state of a message carbon-copied to the
// user (XEP-0280), in a thread of a conversation of the user's with a
// contact.
type slot struct {
	kind     slotKind
	carbon   string // sent or received
	from, to string // of the message carbon-copied
	thread   string
}

type slotKind uint8

const (
	slotPresence slotKind = iota + 1
	slotChatState
)

// slotOf returns the slot of st, if it has one. Presence that tells of a
// room's event (a muc#user status code, a room's destruction: a kick, a
// ban, a nick change, a room closing) has none: it is never replaced, nor
// does another occupant who takes the nickname later replace it.
func slotOf(st *xmpp.Stanza) (slot, bool) {
	switch {
	case isAvailability(st):
		if x := st.El.Child("x", xmpp.NSMUCUser); x != nil && (x.Child("status", xmpp.NSMUCUser) != nil || x.Child("destroy", xmpp.NSMUCUser) != nil) {
			return slot{}, false
		}
		return slot{kind: slotPresence}, true
	case st.Kind != xmpp.KindMessage || st.Type == xmpp.TypeError:
		return slot{}, false
	}
	if thread, ok := xmpp.ChatStateOnly(st.El); ok {
		return slot{kind: slotChatState, thread: thread}, true
	}
	// A carbon copy of a chat state alone.
	if len(st.El.Children) != 1 {
		return slot{}, false
	}
	cc := st.El.Children[0]
	m := xmpp.CarbonCopied(cc)
	if m == nil || m.AttrValue("type") == xmpp.TypeError {
		return slot{}, false
	}
	thread, ok := xmpp.ChatStateOnly(m)
	if !ok {
		return slot{}, false
	}
	return slot{kind: slotChatState, carbon: cc.Name, from: bareOf(m.AttrValue("from")), to: bareOf(m.AttrValue("to")), thread: thread}, true
}

// bareOf is the bare part of an address as written, for comparison only.
func bareOf(addr string) string {
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		return addr[:i]
	}
	return addr
}

// isAvailability reports whether st is presence of availability (no type,
// or unavailable: RFC 6121 §4).
func isAvailability(st *xmpp.Stanza) bool {
	return st.Kind == xmpp.KindPresence && (st.Type == "" || st.Type == xmpp.TypeUnavailable)
}

// urgent reports whether st goes to an inactive client at once, with
// everything held before it. Urgent are stream management's answers, IQs
// (a request waits for its answer; an answer is awaited), presence other
// than availability (subscription requests and answers, errors), error
// messages, and messages a user would want to know of now: with a body or
// a subject, encrypted (OMEMO, OpenPGP), invitations to rooms (XEP-0249,
// XEP-0045 §7.8), calls (XEP-0353, XEP-0482), what the user's other
// devices displayed (a carbon copy of their chat marker, XEP-0333; a
// XEP-0490 notification), which dismisses notifications, and carbon
// copies of urgent messages. Everything else waits: availability, chat
// states, receipts and markers from contacts, other PEP notifications
// (headline messages without a body), archive results (their query's IQ
// answer follows them).
func urgent(st *xmpp.Stanza) bool {
	switch st.Kind {
	case xmpp.KindIQ:
		return true
	case xmpp.KindPresence:
		return !isAvailability(st)
	case xmpp.KindMessage:
		return st.Type == xmpp.TypeError || urgentMessage(st.El, 0)
	}
	return true // a control element (stream management)
}

// urgentMessage is urgent for a message element; depth counts the carbon
// copies it is wrapped in.
func urgentMessage(el *wire.Element, depth int) bool {
	for _, ch := range el.Children {
		switch ch.Space {
		case xmpp.NSClient, wire.NSServer:
			if ch.Name == "body" || ch.Name == "subject" {
				return true
			}
		case xmpp.NSConference, nsCallInvites:
			return true
		case xmpp.NSMUCUser:
			if ch.Child("invite", xmpp.NSMUCUser) != nil || ch.Child("decline", xmpp.NSMUCUser) != nil {
				return true
			}
		case nsPubSubEvent:
			if items := ch.Child("items", nsPubSubEvent); items != nil && items.AttrValue("node") == nodeMDS {
				return true
			}
		case xmpp.NSCarbons:
			if depth >= maxCarbonNest {
				continue
			}
			m := xmpp.CarbonCopied(ch)
			if m == nil {
				continue
			}
			// XEP-0280 §7: the copy is as urgent as the message
			// copied; a marker the user's own device sent
			// dismisses notifications.
			if urgentMessage(m, depth+1) || (ch.Name == "sent" && m.Child("displayed", xmpp.NSChatMarkers) != nil) {
				return true
			}
		default:
			if xmpp.Encrypted(ch) || strings.HasPrefix(ch.Space, xmpp.NSJingleMessagePrefix) {
				return true
			}
		}
	}
	return false
}
