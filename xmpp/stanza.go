package xmpp

import (
	"errors"
	"strings"
	"sync"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/xmpp/wire"
)

// Kind is the kind of a stanza (RFC 6120 §8).
type Kind uint8

// Stanza kinds.
const (
	KindMessage Kind = iota + 1
	KindPresence
	KindIQ
)

func (k Kind) String() string {
	switch k {
	case KindMessage:
		return "message"
	case KindPresence:
		return "presence"
	case KindIQ:
		return "iq"
	}
	return "unknown"
}

// Stanza types used by the router.
const (
	TypeGet          = "get"
	TypeSet          = "set"
	TypeResult       = "result"
	TypeError        = "error"
	TypeChat         = "chat"
	TypeNormal       = "normal"
	TypeGroupchat    = "groupchat"
	TypeHeadline     = "headline"
	TypeUnavailable  = "unavailable"
	TypeProbe        = "probe"
	TypeSubscribe    = "subscribe"
	TypeSubscribed   = "subscribed"
	TypeUnsubscribe  = "unsubscribe"
	TypeUnsubscribed = "unsubscribed"
)

// ErrNotStanza is returned by NewStanza for an element that is not a
// message, presence or iq in the stream's content namespace.
var ErrNotStanza = errors.New("xmpp: not a stanza")

// Stanza is a routed message, presence or IQ. It is immutable once built
// (but for Stamp, on the stanza a connection just read): fan-out derives
// copies with With or WithTo, and Bytes is computed once and shared by
// every recipient.
type Stanza struct {
	// Type is the 'type' attribute ("" when absent).
	Type string
	// ID is the 'id' attribute.
	ID string
	// From and To are the addresses; the zero JID when absent.
	From, To jid.JID
	// El is the element as it will be written (its from/to attributes
	// match From and To).
	El *wire.Element

	// toStr is To's string form when it was at hand (Build, WithTo),
	// else "".
	toStr string

	once sync.Once
	// Kind after once, in its padding: a Stanza, allocated per stanza
	// and per copy, fits the 176-byte size class (TestStanzaSize).
	Kind Kind
	enc  []byte
}

// Control returns a top-level element that is not a stanza, such as a
// stream management element (XEP-0198), to queue on a session among
// stanzas: b is written as it is. Its Kind is 0 and it has no element.
func Control(b []byte) *Stanza {
	s := &Stanza{enc: b}
	s.once.Do(func() {})
	return s
}

// IsControl reports whether s is a Control element.
func (s *Stanza) IsControl() bool { return s.Kind == 0 }

// IsZero reports whether j is the empty JID (an absent address).
func IsZero(j jid.JID) bool { return j.Domainpart() == "" }

// NewStanza builds a Stanza from a top-level element. Malformed 'to' or
// 'from' addresses give a jid-malformed stanza error (RFC 6120 §8.3.3.8).
func NewStanza(e *wire.Element) (*Stanza, error) {
	return NewStanzaCached(e, nil)
}

// NewStanzaCached is NewStanza parsing addresses through a connection's
// JIDCache.
func NewStanzaCached(e *wire.Element, cache *JIDCache) (*Stanza, error) {
	if e.Prefix != "" || (e.Space != wire.NSClient && e.Space != wire.NSServer) {
		return nil, ErrNotStanza
	}
	st := &Stanza{El: e}
	switch e.Name {
	case "message":
		st.Kind = KindMessage
	case "presence":
		st.Kind = KindPresence
	case "iq":
		st.Kind = KindIQ
	default:
		return nil, ErrNotStanza
	}
	// Every attribute is read even after a malformed address: the error
	// reply needs the id, and a stanza of type error is never answered
	// (RFC 6120 §8.3.1), whatever the order of its attributes.
	var malformed bool
	for _, a := range e.Attrs {
		var err error
		switch a.Name {
		case "type":
			st.Type = a.Value
		case "id":
			st.ID = a.Value
		case "to":
			st.To, err = cache.Parse(a.Value)
		case "from":
			st.From, err = cache.Parse(a.Value)
		}
		if err != nil {
			malformed = true
		}
	}
	if malformed {
		return st, stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed}
	}
	return st, nil
}

// Build returns a Stanza for a constructed element of the given kind with
// from and to set.
func Build(kind Kind, typ, id string, from, to jid.JID, children ...*wire.Element) *Stanza {
	e := wire.New(kind.String(), wire.NSClient)
	if typ != "" {
		e.Attrs = append(e.Attrs, wire.Attr{Name: "type", Value: typ})
	}
	if id != "" {
		e.Attrs = append(e.Attrs, wire.Attr{Name: "id", Value: id})
	}
	if !IsZero(from) {
		e.Attrs = append(e.Attrs, wire.Attr{Name: "from", Value: from.String()})
	}
	var toStr string
	if !IsZero(to) {
		toStr = to.String()
		e.Attrs = append(e.Attrs, wire.Attr{Name: "to", Value: toStr})
	}
	e.Children = children
	return &Stanza{Kind: kind, Type: typ, ID: id, From: from, To: to, El: e, toStr: toStr}
}

// With returns a copy addressed from from to to. The payload is shared and
// written verbatim.
func (s *Stanza) With(from, to jid.JID) *Stanza {
	e := readdressed(s.El, "from", from, s.From)
	e = readdressed(e, "to", to, s.To)
	return &Stanza{Kind: s.Kind, Type: s.Type, ID: s.ID, From: from, To: to, El: e}
}

// Stamp sets the sender's full JID, given with its string form (which the
// sender's connection keeps, so that stamping does not format the address
// for every stanza), on s itself; the 'to' address is unchanged. Only for
// a stanza nothing else holds yet, and before its Bytes: the one its
// connection just read (a copy would be garbage at once).
func (s *Stanza) Stamp(from jid.JID, fromStr string) {
	s.El.SetAttr("from", fromStr)
	s.From = from
}

// WithTo returns a copy addressed to to, given with its string form
// (which the caller keeps, so that a fan-out does not format the address
// for every copy); to must not be the zero JID, and toStr must be
// to.String(), which BareTo and the written 'to' rely on. The 'from'
// address is unchanged (and written, as With writes it).
func (s *Stanza) WithTo(to jid.JID, toStr string) *Stanza {
	e := s.El
	if e.AttrValue("from") == "" && !IsZero(s.From) {
		e = setAddr(e, "from", s.From)
	}
	if e.AttrValue("to") != toStr {
		e = e.WithAttr("to", toStr)
	}
	return &Stanza{Kind: s.Kind, Type: s.Type, ID: s.ID, From: s.From, To: to, El: e, toStr: toStr}
}

// BareTo returns the string form of To's bare JID, from the form Build or
// WithTo had when there is one: its first '/' starts the resourcepart
// (RFC 7622 §3.1; §3.3.1 excludes '/' from the localpart).
func (s *Stanza) BareTo() string {
	if s.toStr == "" {
		return s.To.Bare().String()
	}
	if i := strings.IndexByte(s.toStr, '/'); i >= 0 {
		return s.toStr[:i]
	}
	return s.toStr
}

// WithElement returns a copy with a new element (whose addresses must
// match From and To).
func (s *Stanza) WithElement(e *wire.Element) *Stanza {
	return &Stanza{Kind: s.Kind, Type: s.Type, ID: s.ID, From: s.From, To: s.To, El: e, toStr: s.toStr}
}

// readdressed is e with its address attribute name for j, where it was
// written for old (rewritten only if j differs, or is missing from e).
func readdressed(e *wire.Element, name string, j, old jid.JID) *wire.Element {
	if !j.Equal(old) || e.AttrValue(name) == "" && !IsZero(j) {
		return setAddr(e, name, j)
	}
	return e
}

func setAddr(e *wire.Element, name string, j jid.JID) *wire.Element {
	if IsZero(j) {
		return e.WithoutAttr(name)
	}
	return e.WithAttr(name, j.String())
}

// Bytes returns the stanza's XML for writing at the top level of a stream.
// It is computed once; callers must not modify it.
func (s *Stanza) Bytes() []byte {
	s.once.Do(func() {
		s.enc = s.El.AppendXML(make([]byte, 0, 64+len(s.El.Raw())), s.El.Space)
	})
	return s.enc
}

// HasHint reports whether the stanza carries any of the named XEP-0334
// processing hints (no-store, no-permanent-store, no-copy, store).
func (s *Stanza) HasHint(names ...string) bool {
	for _, c := range s.El.Children {
		if c.Space != NSHints {
			continue
		}
		for _, n := range names {
			if c.Name == n {
				return true
			}
		}
	}
	return false
}

// Payload returns the first child element (the IQ payload) or nil.
func (s *Stanza) Payload() *wire.Element { return s.El.FirstChild() }

// ToOwnAccount reports whether s, sent by a user, is addressed to that
// user's own account: no 'to', or the sender's bare JID (RFC 6121 §2.1.5,
// and the other requests a server answers on the user's behalf).
func (s *Stanza) ToOwnAccount() bool { return IsZero(s.To) || s.To.Equal(s.From.Bare()) }

// IsIQRequest reports whether s is an IQ get or set.
func (s *Stanza) IsIQRequest() bool {
	return s.Kind == KindIQ && (s.Type == TypeGet || s.Type == TypeSet)
}

// IsAvailabilityOrProbe reports whether s is presence of availability
// (RFC 6121 §4: no type, or unavailable) or a probe. Undelivered, such
// presence gets no error: the contact simply stays unavailable.
func (s *Stanza) IsAvailabilityOrProbe() bool {
	return s.Kind == KindPresence && (s.Type == "" || s.Type == TypeUnavailable || s.Type == TypeProbe)
}

// Result returns the IQ result for request s, with the optional payload.
func (s *Stanza) Result(payload *wire.Element) *Stanza {
	var children []*wire.Element
	if payload != nil {
		children = []*wire.Element{payload}
	}
	return Build(KindIQ, TypeResult, s.ID, s.To, s.From, children...)
}

// ErrorReply returns the error stanza answering s (RFC 6120 §8.3): the
// addresses swapped, type "error", the original payload and the error
// element. It returns nil for a stanza of type error, which must never be
// answered with an error (RFC 6120 §8.3.1), and for an IQ of type result,
// which must not be answered with a further IQ response (§8.2.3).
func (s *Stanza) ErrorReply(se stanza.Error) *Stanza {
	return s.ErrorReplyApp(se, nil)
}

// ErrorReplyApp is ErrorReply with an application-specific condition
// element (RFC 6120 §8.3.2) inside <error/>, after the defined condition
// and text; app may be nil.
func (s *Stanza) ErrorReplyApp(se stanza.Error, app *wire.Element) *Stanza {
	if s.Type == TypeError || (s.Kind == KindIQ && s.Type == TypeResult) {
		return nil
	}
	from := s.To
	if !IsZero(se.By) {
		from = se.By
	}
	children := make([]*wire.Element, 0, len(s.El.Children)+1)
	if s.Kind != KindIQ || s.Type == TypeGet || s.Type == TypeSet {
		children = append(children, s.El.Children...)
	}
	errEl := ErrorElement(se)
	if app != nil {
		errEl.AddChild(app)
	}
	children = append(children, errEl)
	return Build(s.Kind, TypeError, s.ID, from, s.From, children...)
}

// NSStanzas is the namespace of stanza error conditions.
const NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// ErrorElement renders a stanza error element.
func ErrorElement(se stanza.Error) *wire.Element {
	typ := string(se.Type)
	if typ == "" {
		typ = string(stanza.Cancel)
	}
	cond := string(se.Condition)
	if cond == "" {
		cond = string(stanza.UndefinedCondition)
	}
	e := wire.New("error", wire.NSClient, wire.Attr{Name: "type", Value: typ})
	e.AddChild(wire.New(cond, NSStanzas))
	for lang, text := range se.Text {
		t := wire.New("text", NSStanzas)
		if lang != "" {
			t.Attrs = append(t.Attrs, wire.Attr{Name: "xml:lang", Value: lang})
		}
		e.AddChild(t.SetText(text))
	}
	return e
}

// StanzaError returns a stanza error with condition cond, the RFC 6120
// §8.3.3 default type for it, and an optional English text.
func StanzaError(cond stanza.Condition, text string) stanza.Error {
	se := stanza.Error{Type: defaultErrorType(cond), Condition: cond}
	if text != "" {
		se.Text = map[string]string{"en": text}
	}
	return se
}

func defaultErrorType(cond stanza.Condition) stanza.ErrorType {
	switch cond {
	case stanza.BadRequest, stanza.JIDMalformed, stanza.NotAcceptable, stanza.PolicyViolation,
		stanza.Redirect, stanza.Gone:
		return stanza.Modify
	case stanza.Forbidden, stanza.NotAuthorized, stanza.RegistrationRequired, stanza.SubscriptionRequired:
		return stanza.Auth
	case stanza.RecipientUnavailable, stanza.RemoteServerTimeout, stanza.ResourceConstraint,
		stanza.UnexpectedRequest:
		return stanza.Wait
	}
	return stanza.Cancel
}

// AsStanzaError maps an error to the stanza error sent to the peer: a
// stanza.Error passes through; anything else is internal-server-error
// without detail (the cause is for our logs only).
func AsStanzaError(err error) stanza.Error {
	var se stanza.Error
	if errors.As(err, &se) {
		if se.Type == "" {
			se.Type = defaultErrorType(se.Condition)
		}
		return se
	}
	return stanza.Error{Type: stanza.Cancel, Condition: stanza.InternalServerError}
}

// Validate checks the stanza attributes RFC 6120 §8.1 requires.
func Validate(st *Stanza) error {
	switch st.Kind {
	case KindIQ:
		// RFC 6120 §8.2.3: id and a known type are required. The
		// error is never answered to a response (ErrorReply).
		if st.ID == "" {
			return StanzaError(stanza.BadRequest, "IQ without id")
		}
		switch st.Type {
		case TypeGet, TypeSet, TypeResult, TypeError:
		default:
			return StanzaError(stanza.BadRequest, "unknown IQ type")
		}
	case KindPresence:
		switch st.Type {
		case "", TypeUnavailable, TypeProbe, TypeSubscribe, TypeSubscribed,
			TypeUnsubscribe, TypeUnsubscribed, TypeError:
		default:
			return StanzaError(stanza.BadRequest, "unknown presence type")
		}
	case KindMessage:
		// RFC 6121 §5.2.2: unknown message types are treated as
		// normal by the recipient; pass them on.
	}
	return nil
}

// CarbonCopied returns the message that el, a XEP-0280 <sent/> or
// <received/> copy, forwards; nil for any other element, or a copy
// without a message.
func CarbonCopied(el *wire.Element) *wire.Element {
	if el.Space != NSCarbons || (el.Name != "sent" && el.Name != "received") {
		return nil
	}
	fwd := el.Child("forwarded", NSForward)
	if fwd == nil {
		return nil
	}
	return fwd.Child("message", NSClient)
}

// Encrypted reports whether c, a message's child, is an end-to-end
// encrypted payload: OMEMO (0.3 and 2), OpenPGP for XMPP, legacy OpenPGP.
// A message that has one may also have a body, which is only a fallback
// text for clients without that encryption.
func Encrypted(c *wire.Element) bool {
	switch c.Space {
	case NSOMEMO, NSOMEMO2:
		return c.Name == "encrypted"
	case NSOpenPGP:
		return c.Name == "openpgp"
	case NSLegacyPGP:
		return c.Name == "x"
	}
	return false
}

// ChatStateOnly reports whether message element m's content is a chat
// state (XEP-0085) and nothing else: beside it only a thread, processing
// hints (XEP-0334) and stanza or origin IDs (XEP-0359). It returns the
// thread. Such a message is ephemeral: a later state replaces it.
func ChatStateOnly(m *wire.Element) (thread string, ok bool) {
	for _, ch := range m.Children {
		switch {
		case ch.Space == NSChatStates:
			ok = true
		case ch.Space == NSClient && ch.Name == "thread":
			thread = ch.Text
		case ch.Space == NSHints, ch.Space == NSStanzaID:
		default:
			return "", false
		}
	}
	return thread, ok
}
