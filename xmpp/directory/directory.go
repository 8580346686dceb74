package directory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// Namespaces.
const (
	NS    = "jabber:iq:search"
	NSRSM = "http://jabber.org/protocol/rsm"
	// NSFields qualifies the form fields XEP-0055 does not register.
	NSFields = "urn:switchboard:directory:0"
)

// Form fields: the registered ones, then ours in Clark notation.
const (
	FieldFirst      = "first"
	FieldLast       = "last"
	FieldNick       = "nick"
	FieldEmail      = "email"
	FieldName       = "{" + NSFields + "}name"
	FieldUser       = "{" + NSFields + "}user"
	FieldDepartment = "{" + NSFields + "}department"
	FieldExtension  = "{" + NSFields + "}extension"
	fieldJID        = "jid"
	fieldFormType   = "FORM_TYPE"
)

// Directory lists a host's accounts with their profiles;
// *store.VCards implements it.
type Directory interface {
	Directory(ctx context.Context, host string, fn func(local string, p store.Profile) bool) error
}

// Options are the module's settings.
type Options struct {
	// MaxResults bounds the entries one answer holds. Positive.
	MaxResults int
}

// Deps are the module's collaborators.
type Deps struct {
	Directory Directory
	// Blocks, if not nil, reports whether user blocks contact
	// (XEP-0191): a user who blocks the searcher is left out.
	Blocks func(ctx context.Context, user, contact jid.JID) bool
}

// Module answers directory searches.
type Module struct {
	opts Options
	deps Deps
}

var _ xmpp.Module = (*Module)(nil)

// New returns the module.
func New(opts Options, deps Deps) (*Module, error) {
	if deps.Directory == nil {
		return nil, errors.New("directory: missing store")
	}
	if opts.MaxResults < 1 {
		return nil, fmt.Errorf("directory: max results must be positive, got %d", opts.MaxResults)
	}
	return &Module{opts: opts, deps: deps}, nil
}

// Name implements xmpp.Module.
func (*Module) Name() string { return "directory" }

// Register implements xmpp.Module.
func (m *Module) Register(reg *xmpp.Registry, _ *xmpp.Hooks) error {
	reg.AddFeature(xmpp.TargetHost, NS)
	reg.AddIdentity(xmpp.Identity{Target: xmpp.TargetHost, Category: "directory", Type: "user", Name: "User directory"})
	if err := reg.HandleIQ(m.Name(), xmpp.TargetHost, xmpp.TypeGet, NS, "query", m.form); err != nil {
		return err
	}
	return reg.HandleIQ(m.Name(), xmpp.TargetHost, xmpp.TypeSet, NS, "query", m.search)
}

// field describes one search field: its label and how it matches.
type field struct {
	v, label string
	legacy   bool // also an element of the legacy query (§2)
	// values returns what the field is matched against.
	values func(local string, p store.Profile) []string
	// shown, if not nil, returns what a result shows of the field
	// (values otherwise), under reportedLabel (label otherwise).
	shown         func(local string, p store.Profile) []string
	reportedLabel string
	digits        bool // compare digits alone when the query has any
}

// result returns what a result item shows for the field.
func (f field) result(local string, p store.Profile) []string {
	if f.shown != nil {
		return f.shown(local, p)
	}
	return f.values(local, p)
}

func one(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// searchFields returns the search fields in the order the form shows
// them.
func searchFields() []field {
	return []field{
		{v: FieldName, label: "Name", values: func(local string, p store.Profile) []string {
			full := p.FullName
			if full == "" {
				// "Alice Liddell" finds a vCard with N but no FN.
				full = strings.TrimSpace(p.Given + " " + p.Family)
			}
			return []string{full, p.Given, p.Family, p.Nick, local}
		}, shown: func(_ string, p store.Profile) []string { return one(p.FullName) }, reportedLabel: "Full name"},
		{v: FieldUser, label: "User name", values: func(local string, _ store.Profile) []string { return []string{local} }},
		{v: FieldFirst, label: "Given Name", legacy: true, values: func(_ string, p store.Profile) []string { return one(p.Given) }},
		{v: FieldLast, label: "Family Name", legacy: true, values: func(_ string, p store.Profile) []string { return one(p.Family) }},
		{v: FieldNick, label: "Nickname", legacy: true, values: func(_ string, p store.Profile) []string { return one(p.Nick) }},
		{v: FieldEmail, label: "Email Address", legacy: true, values: func(_ string, p store.Profile) []string { return p.Emails }},
		{v: FieldDepartment, label: "Department", values: func(_ string, p store.Profile) []string { return one(p.OrgUnit) }},
		{v: FieldExtension, label: "Extension or phone number", digits: true, values: func(_ string, p store.Profile) []string { return p.Phones }},
	}
}

func fieldByVar(v string) *field {
	for _, f := range searchFields() {
		if f.v == v {
			return &f
		}
	}
	return nil
}

// allowed reports whether st's sender may search the host it asks: its
// own host's users only.
func allowed(st *xmpp.Stanza) error {
	if st.From.Localpart() == "" || st.From.Domainpart() != st.To.Domainpart() {
		return xmpp.StanzaError(stanza.Forbidden, "the directory is open to this server's users only")
	}
	return nil
}

func (m *Module) form(_ context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if err := allowed(st); err != nil {
		return nil, err
	}
	host := st.To.Domainpart()
	q := wire.New("query", NS)
	q.AddChild(wire.New("instructions", NS).SetText("Fill in one or more fields to search for users of " + host + "."))
	all := searchFields()
	for _, f := range all {
		if f.legacy {
			q.AddChild(wire.New(f.v, NS))
		}
	}
	x := wire.New("x", xmpp.NSData, wire.Attr{Name: "type", Value: "form"})
	x.AddChild(
		wire.New("title", xmpp.NSData).SetText("User directory of "+host),
		wire.New("instructions", xmpp.NSData).SetText("Fill in one or more fields; each must match part of the user's entry. Leave them all empty to list everyone."),
		xmpp.FormField(fieldFormType, "hidden", NS),
	)
	for _, f := range all {
		x.AddChild(labelled(xmpp.FormField(f.v, "text-single"), f.label))
	}
	return st.Result(q.AddChild(x)), nil
}

func labelled(f *wire.Element, label string) *wire.Element {
	f.Attrs = append(f.Attrs, wire.Attr{Name: "label", Value: label})
	return f
}

// criterion is one field to match, with its folded query.
type criterion struct {
	f      *field
	q      string // lower case, without '*'
	digits []byte // q's digits, for a digits field
}

// page is the XEP-0059 part of a request.
type page struct {
	max   int    // -1: not given
	after string // localpart; "" from the first
	set   bool   // the request had a <set/>
}

func (m *Module) search(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if err := allowed(st); err != nil {
		return nil, err
	}
	host := st.To.Domainpart()
	q := st.Payload()
	crit, isForm, err := criteria(q)
	if err != nil {
		return nil, err
	}
	pg, err := parsePage(q.Child("set", NSRSM), host)
	if err != nil {
		return nil, err
	}
	limit := m.opts.MaxResults
	if pg.max >= 0 && pg.max < limit {
		limit = pg.max
	}
	// The whole result set, in the order of localparts: XEP-0059 §2.1's
	// count and index are over all of it, whichever page is asked.
	type hit struct {
		local string
		p     store.Profile
	}
	var all []hit
	err = m.deps.Directory.Directory(ctx, host, func(local string, p store.Profile) bool {
		if matches(crit, local, p) {
			all = append(all, hit{local, p})
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("directory: search %s: %w", host, err)
	}
	if m.deps.Blocks != nil {
		// After the walk: the blocklists are read from the store,
		// which the walk's transaction must not wait on.
		kept := all[:0]
		for _, h := range all {
			owner, err := jid.New(h.local, host, "")
			if err != nil || !m.deps.Blocks(ctx, owner, st.From) {
				kept = append(kept, h)
			}
		}
		all = kept
	}
	count := len(all)
	if count == 0 {
		// XEP-0055 §2: no match is an empty <query/>, also with a
		// <set/> (XEP-0059 §2.5: an empty result set is the wrapper's).
		return st.Result(wire.New("query", NS)), nil
	}
	start := 0
	if pg.after != "" {
		start = sort.Search(count, func(i int) bool { return all[i].local > pg.after })
	}
	hits := all[start:min(start+limit, count)]
	res := wire.New("query", NS)
	fields := searchFields()
	var x *wire.Element
	if isForm {
		x = wire.New("x", xmpp.NSData, wire.Attr{Name: "type", Value: "result"})
		x.AddChild(xmpp.FormField(fieldFormType, "hidden", NS))
		rep := wire.New("reported", xmpp.NSData)
		rep.AddChild(labelled(xmpp.FormField(fieldJID, "jid-single"), "JID"))
		for _, f := range fields {
			label := f.label
			if f.reportedLabel != "" {
				label = f.reportedLabel
			}
			rep.AddChild(labelled(xmpp.FormField(f.v, "text-single"), label))
		}
		x.AddChild(rep)
		res.AddChild(x)
	}
	for _, h := range hits {
		j := h.local + "@" + host
		if !isForm {
			item := wire.New("item", NS, wire.Attr{Name: "jid", Value: j})
			item.AddChild(
				wire.New(FieldFirst, NS).SetText(h.p.Given),
				wire.New(FieldLast, NS).SetText(h.p.Family),
				wire.New(FieldNick, NS).SetText(h.p.Nick),
				wire.New(FieldEmail, NS).SetText(first(h.p.Emails)),
			)
			res.AddChild(item)
			continue
		}
		item := wire.New("item", xmpp.NSData)
		item.AddChild(xmpp.FormField(fieldJID, "", j))
		for _, f := range fields {
			item.AddChild(xmpp.FormField(f.v, "", f.result(h.local, h.p)...))
		}
		x.AddChild(item)
	}
	if pg.set || count > len(hits) {
		set := wire.New("set", NSRSM)
		if len(hits) > 0 {
			set.AddChild(
				wire.New("first", NSRSM, wire.Attr{Name: "index", Value: strconv.Itoa(start)}).SetText(hits[0].local+"@"+host),
				wire.New("last", NSRSM).SetText(hits[len(hits)-1].local+"@"+host),
			)
		}
		set.AddChild(wire.New("count", NSRSM).SetText(strconv.Itoa(count)))
		res.AddChild(set)
	}
	return st.Result(res), nil
}

func first(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}

// criteria reads a search request: a submitted data form (XEP-0055 §3),
// or else the legacy fields (§2). A field the directory does not know, or
// a form that is not a search's, is bad-request.
func criteria(q *wire.Element) ([]criterion, bool, error) {
	var out []criterion
	add := func(v, val string) error {
		f := fieldByVar(v)
		if f == nil {
			return xmpp.StanzaError(stanza.BadRequest, "unknown search field "+v)
		}
		folded := strings.ToLower(strings.TrimSpace(strings.ReplaceAll(val, "*", "")))
		if folded == "" {
			return nil
		}
		c := criterion{f: f, q: folded}
		if f.digits {
			c.digits = appendDigits(nil, folded)
		}
		out = append(out, c)
		return nil
	}
	if x := q.Child("x", xmpp.NSData); x != nil {
		if t := x.AttrValue("type"); t != "submit" {
			return nil, true, xmpp.StanzaError(stanza.BadRequest, "a search form must be of type submit")
		}
		for v, vals := range xmpp.FormValues(x) {
			if v == fieldFormType {
				if len(vals) != 1 || vals[0] != NS {
					return nil, true, xmpp.StanzaError(stanza.BadRequest, "not a jabber:iq:search form")
				}
				continue
			}
			if v == fieldJID {
				continue
			}
			for _, val := range vals {
				if err := add(v, val); err != nil {
					return nil, true, err
				}
			}
		}
		return out, true, nil
	}
	for _, c := range q.Children {
		if c.Space != NS || c.Name == "instructions" {
			// <set/>; instructions a client sends back as it got
			// them (the schema allows them in a query).
			continue
		}
		if f := fieldByVar(c.Name); f == nil || !f.legacy {
			return nil, false, xmpp.StanzaError(stanza.BadRequest, "unknown search field "+c.Name)
		}
		if err := add(c.Name, c.Text); err != nil {
			return nil, false, err
		}
	}
	return out, false, nil
}

// parsePage reads XEP-0059's <set/> of a request.
func parsePage(set *wire.Element, host string) (page, error) {
	pg := page{max: -1}
	if set == nil {
		return pg, nil
	}
	pg.set = true
	if set.Child("before", NSRSM) != nil || set.Child("index", NSRSM) != nil {
		return pg, xmpp.StanzaError(stanza.FeatureNotImplemented, "the directory pages forward only")
	}
	if mx := set.Child("max", NSRSM); mx != nil {
		n, err := strconv.Atoi(strings.TrimSpace(mx.Text))
		if err != nil || n < 0 {
			return pg, xmpp.StanzaError(stanza.BadRequest, "max must be a non-negative integer")
		}
		pg.max = n
	}
	if a := set.Child("after", NSRSM); a != nil {
		j, err := jid.Parse(strings.TrimSpace(a.Text))
		if err != nil || j.Domainpart() != host || j.Localpart() == "" || j.Resourcepart() != "" {
			// XEP-0059 §2.5: an unknown UID is item-not-found.
			return pg, xmpp.StanzaError(stanza.ItemNotFound, "after must be a JID of this directory")
		}
		pg.after = j.Localpart()
	}
	return pg, nil
}

// matches reports whether every criterion matches the entry.
func matches(crit []criterion, local string, p store.Profile) bool {
	for _, c := range crit {
		if !c.match(local, p) {
			return false
		}
	}
	return true
}

func (c criterion) match(local string, p store.Profile) bool {
	for _, v := range c.f.values(local, p) {
		if v == "" {
			continue
		}
		if len(c.digits) > 0 {
			var buf [64]byte
			if bytes.Contains(appendDigits(buf[:0], v), c.digits) {
				return true
			}
			continue
		}
		if containsFold(v, c.q) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains sub, a lower-case string,
// ignoring case; without allocating when s is ASCII.
func containsFold(s, sub string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.Contains(strings.ToLower(s), sub)
		}
	}
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// appendDigits appends the ASCII digits of s to dst.
func appendDigits(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			dst = append(dst, s[i])
		}
	}
	return dst
}
