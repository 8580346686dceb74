package private

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// NS is the private XML storage namespace.
const NS = "jabber:iq:private"

// maxElements bounds the children of one query: a get reads each
// namespace separately.
const maxElements = 64

// Store keeps the private XML; *store.Private implements it.
type Store interface {
	Get(ctx context.Context, owner, ns string) ([]byte, error)
	Set(ctx context.Context, owner string, items []store.PrivateItem, maxBytes int) error
}

// Options are the module's settings.
type Options struct {
	// MaxBytes bounds one account's private XML. Positive.
	MaxBytes int
}

// Deps are the module's collaborators.
type Deps struct {
	Store Store
	// Bookmarks, when set, keeps storage:bookmarks in step with the
	// account's XEP-0402 bookmarks (FeatureBookmarksCompat).
	Bookmarks Bookmarks
}

// Module serves private XML storage.
type Module struct {
	opts Options
	deps Deps
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module.
func New(opts Options, deps Deps) (*Module, error) {
	if deps.Store == nil {
		return nil, errors.New("private: missing store")
	}
	if opts.MaxBytes < 1 {
		return nil, fmt.Errorf("private: max bytes must be positive, got %d", opts.MaxBytes)
	}
	return &Module{opts: opts, deps: deps}, nil
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "private" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, _ *xmpp.Hooks) error {
	reg.AddFeature(xmpp.TargetHost|xmpp.TargetAccount, NS)
	if m.deps.Bookmarks != nil {
		reg.AddFeature(xmpp.TargetAccount, FeatureBookmarksCompat)
	}
	if err := reg.HandleIQ(m.Name(), xmpp.TargetAccount, xmpp.TypeGet, NS, "query", m.get); err != nil {
		return err
	}
	return reg.HandleIQ(m.Name(), xmpp.TargetAccount, xmpp.TypeSet, NS, "query", m.set)
}

// group is the elements of one namespace in a query, in document order.
type group struct {
	ns    string
	elems []*wire.Element
}

// groups checks a query's children and groups them by namespace, in the
// order each namespace first appears. empty is the condition for a query
// without children.
func groups(q *wire.Element, empty stanza.Condition) ([]group, error) {
	switch {
	case len(q.Children) == 0:
		// §2: at least one child element with a proper namespace.
		return nil, xmpp.StanzaError(empty, "the query needs a child element in its own namespace")
	case len(q.Children) > maxElements:
		return nil, xmpp.StanzaError(stanza.NotAcceptable, fmt.Sprintf("at most %d elements per query", maxElements))
	}
	var gs []group
	for _, c := range q.Children {
		if c.Space == "" || c.Space == NS {
			return nil, xmpp.StanzaError(stanza.NotAcceptable, "each element must be in its own namespace")
		}
		if len(c.Space) > store.MaxPrivateNamespace {
			return nil, xmpp.StanzaError(stanza.NotAcceptable, fmt.Sprintf("a namespace may take at most %d bytes", store.MaxPrivateNamespace))
		}
		i := 0
		for i < len(gs) && gs[i].ns != c.Space {
			i++
		}
		if i == len(gs) {
			gs = append(gs, group{ns: c.Space})
		}
		gs[i].elems = append(gs[i].elems, c)
	}
	return gs, nil
}

// own refuses a request that is not the account's own (§3).
func own(st *xmpp.Stanza) error {
	if !st.ToOwnAccount() {
		return xmpp.StanzaError(stanza.Forbidden, "private XML is only its owner's")
	}
	return nil
}

func (m *Module) get(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if err := own(st); err != nil {
		return nil, err
	}
	gs, err := groups(st.Payload(), stanza.BadRequest)
	if err != nil {
		return nil, err
	}
	owner := st.From.Bare().String()
	var out []*wire.Element
	for _, g := range gs {
		var stored []*wire.Element
		raw, err := m.deps.Store.Get(ctx, owner, g.ns)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("private: get %q of %s: %w", g.ns, owner, err)
		default:
			if stored, err = decode(raw); err != nil {
				return nil, fmt.Errorf("private: stored %q of %s: %w", g.ns, owner, err)
			}
		}
		switch {
		case g.ns == NSBookmarks && m.deps.Bookmarks != nil:
			view, err := m.bookmarksView(ctx, st.From, stored)
			if err != nil {
				return nil, err
			}
			out = append(out, view...)
		case stored == nil:
			// Nothing stored: the request's elements as sent.
			out = append(out, g.elems...)
		default:
			out = append(out, stored...)
		}
	}
	return st.Result(wire.New("query", NS).WithChildren("", out...)), nil
}

func (m *Module) set(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if err := own(st); err != nil {
		return nil, err
	}
	gs, err := groups(st.Payload(), stanza.NotAcceptable)
	if err != nil {
		return nil, err
	}
	items := make([]store.PrivateItem, len(gs))
	var marks []bookmark
	syncMarks := false
	for i, g := range gs {
		items[i].NS = g.ns
		elems := g.elems
		if g.ns == NSBookmarks && m.deps.Bookmarks != nil {
			// The rooms go to XEP-0402's node, after the rest is
			// stored here (and has passed the quota).
			marks, elems = splitLegacy(elems)
			syncMarks = true
			if most := m.deps.Bookmarks.PrivateMaxItems(); len(marks) > most {
				// Checked before anything is stored: the node would
				// drop the oldest rooms.
				return nil, xmpp.StanzaError(stanza.ResourceConstraint, fmt.Sprintf("at most %d bookmarked rooms", most))
			}
		}
		if !allEmpty(elems) {
			for _, e := range elems {
				items[i].XML = e.AppendXML(items[i].XML, "")
			}
		}
	}
	owner := st.From.Bare().String()
	err = m.deps.Store.Set(ctx, owner, items, m.opts.MaxBytes)
	if err == nil && syncMarks {
		if err = m.syncBookmarks(ctx, st.From, marks); err != nil {
			return nil, bookmarksError(err)
		}
	}
	switch {
	case errors.Is(err, store.ErrQuota):
		return nil, xmpp.StanzaError(stanza.ResourceConstraint, fmt.Sprintf("private XML may take at most %d bytes", m.opts.MaxBytes))
	case errors.Is(err, store.ErrNotFound):
		// The account was removed while this session was ending.
		return nil, xmpp.StanzaError(stanza.ItemNotFound, "")
	case err != nil:
		return nil, fmt.Errorf("private: set of %s: %w", owner, err)
	}
	return st.Result(nil), nil
}

// allEmpty reports whether every element is empty: no content and no
// attribute but namespace declarations (whitespace is not content). Storing such elements clears
// their namespace, which then reads back as the request sent it.
func allEmpty(es []*wire.Element) bool {
	for _, e := range es {
		if strings.TrimSpace(e.Text) != "" || len(e.Children) > 0 {
			return false
		}
		for _, a := range e.Attrs {
			if a.Name != "xmlns" && !strings.HasPrefix(a.Name, "xmlns:") {
				return false
			}
		}
	}
	return true
}

// decode parses stored elements: one namespace's elements, each
// serialised with its namespace declared.
func decode(raw []byte) ([]*wire.Element, error) {
	doc := make([]byte, 0, len(raw)+64)
	doc = append(doc, "<query xmlns='"+NS+"'>"...)
	doc = append(doc, raw...)
	doc = append(doc, "</query>"...)
	q, err := wire.Parse(doc, wire.NewScope(""))
	if err != nil {
		return nil, err
	}
	return q.Children, nil
}
