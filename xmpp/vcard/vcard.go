package vcard

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NS is the vcard-temp namespace.
const NS = "vcard-temp"

// Store keeps the vCards; *store.VCards implements it.
type Store interface {
	Set(ctx context.Context, owner string, vcard []byte, p store.Profile) error
	Get(ctx context.Context, owner string) ([]byte, error)
}

// Options are the module's settings.
type Options struct {
	// MaxBytes bounds a vCard, serialised. Positive.
	MaxBytes int
	// Logger receives the module's errors; nil discards them.
	Logger *slog.Logger
}

// Deps are the module's collaborators.
type Deps struct {
	Store Store
	// Avatars, if set, are the accounts' avatar nodes: the module
	// converts between them and the vCards' photos (XEP-0398).
	Avatars Avatars
}

// Module serves the accounts' vCards.
type Module struct {
	opts        Options
	deps        Deps
	log         *slog.Logger
	avatarLocks avatarLocks
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module.
func New(opts Options, deps Deps) (*Module, error) {
	if deps.Store == nil {
		return nil, errors.New("vcard: missing store")
	}
	if opts.MaxBytes < 1 {
		return nil, fmt.Errorf("vcard: max bytes must be positive, got %d", opts.MaxBytes)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Module{opts: opts, deps: deps, log: log, avatarLocks: avatarLocks{seed: maphash.MakeSeed()}}, nil
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "vcard" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, hooks *xmpp.Hooks) error {
	reg.AddFeature(xmpp.TargetHost|xmpp.TargetAccount, NS)
	if m.deps.Avatars != nil {
		// XEP-0398 §2: on the account.
		reg.AddFeature(xmpp.TargetAccount, NSConversion)
		hooks.PresenceOut.Add(m.presenceOut)
	}
	if err := reg.HandleIQ(m.Name(), xmpp.TargetAccount, xmpp.TypeGet, NS, "vCard", m.get); err != nil {
		return err
	}
	return reg.HandleIQ(m.Name(), xmpp.TargetAccount, xmpp.TypeSet, NS, "vCard", m.set)
}

func (m *Module) get(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	own := st.ToOwnAccount()
	owner := st.From.Bare()
	if !own {
		owner = st.To.Bare()
	}
	raw, err := m.deps.Store.Get(ctx, owner.String())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("vcard: get %s: %w", owner, err)
	}
	var el *wire.Element
	if err == nil {
		if el, err = wire.Parse(raw, wire.NewScope("")); err != nil {
			return nil, fmt.Errorf("vcard: stored vCard of %s: %w", owner, err)
		}
	}
	if m.deps.Avatars != nil {
		photo, decided, err := m.photo(ctx, owner, st.From)
		if err != nil {
			return nil, err
		}
		if photo != nil && len(raw)+len(photo.ChildText("BINVAL", NS)) > m.opts.MaxBytes {
			// The answer stays within what a vCard may take.
			photo = nil
		}
		if decided && (el != nil || photo != nil) {
			el = withPhoto(el, photo)
		}
	}
	switch {
	case el != nil:
		return st.Result(el), nil
	case own:
		// §3.1: an empty vCard (or item-not-found); clients take the
		// empty one as "nothing set yet".
		return st.Result(wire.New("vCard", NS)), nil
	default:
		// §3.2 (1.3): the same error as for a missing account, which
		// the router answers before this handler.
		return nil, xmpp.StanzaError(stanza.ServiceUnavailable, "")
	}
}

func (m *Module) set(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !st.ToOwnAccount() {
		// §2: only the owner sets a vCard.
		return nil, xmpp.StanzaError(stanza.Forbidden, "only the owner may set a vCard")
	}
	v := st.Payload()
	var raw []byte
	if len(v.Children) > 0 || strings.TrimSpace(v.Text) != "" {
		raw = v.AppendXML(nil, "")
		if len(raw) > m.opts.MaxBytes {
			return nil, xmpp.StanzaError(stanza.NotAcceptable, fmt.Sprintf("the vCard takes %d bytes, more than the %d allowed", len(raw), m.opts.MaxBytes))
		}
	}
	if raw != nil && m.deps.Avatars != nil {
		stored, err := m.publishPhoto(ctx, st.From, v)
		if err != nil {
			return nil, err
		}
		if stored != v {
			raw = stored.AppendXML(nil, "")
		}
	}
	owner := st.From.Bare().String()
	err := m.deps.Store.Set(ctx, owner, raw, ProfileOf(v))
	if errors.Is(err, store.ErrNotFound) {
		// The account was removed while this session was ending.
		return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
	}
	if err != nil {
		return nil, fmt.Errorf("vcard: set %s: %w", owner, err)
	}
	return st.Result(nil), nil
}

// Bounds of a profile: what a directory search reads of a vCard.
const (
	maxProfileField = 256 // bytes of one field, cut at a rune boundary
	maxProfileList  = 8   // email addresses, phone numbers
)

// ProfileOf returns the directory profile of a vCard element: FN,
// N/GIVEN, N/FAMILY, NICKNAME, ORG/ORGUNIT, the EMAIL/USERID addresses
// (or an EMAIL's own text, as some clients write it) and the TEL/NUMBER
// numbers, trimmed and bounded.
func ProfileOf(v *wire.Element) store.Profile {
	p := store.Profile{
		FullName: field(v.ChildText("FN", NS)),
		Nick:     field(v.ChildText("NICKNAME", NS)),
	}
	if n := v.Child("N", NS); n != nil {
		p.Given = field(n.ChildText("GIVEN", NS))
		p.Family = field(n.ChildText("FAMILY", NS))
	}
	if org := v.Child("ORG", NS); org != nil {
		p.OrgUnit = field(org.ChildText("ORGUNIT", NS))
	}
	for _, c := range v.Children {
		if c.Space != NS {
			continue
		}
		switch c.Name {
		case "EMAIL":
			s := c.ChildText("USERID", NS)
			if c.Child("USERID", NS) == nil {
				s = c.Text
			}
			p.Emails = appendField(p.Emails, s)
		case "TEL":
			p.Phones = appendField(p.Phones, c.ChildText("NUMBER", NS))
		}
	}
	return p
}

func appendField(list []string, s string) []string {
	if s = field(s); s == "" || len(list) >= maxProfileList {
		return list
	}
	return append(list, s)
}

// field trims s and cuts it to maxProfileField bytes at a rune boundary.
func field(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxProfileField {
		return s
	}
	s = s[:maxProfileField]
	for len(s) > 0 {
		// A rune cut in two decodes as (RuneError, 1).
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
