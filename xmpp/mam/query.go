package mam

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// own reports whether an IQ concerns the sender's own archive.
func own(st *xmpp.Stanza) bool { return xmpp.IsZero(st.To) || st.To.Equal(st.From.Bare()) }

func field(v, typ string, values ...string) *wire.Element {
	f := wire.New("field", NSData, wire.Attr{Name: "var", Value: v})
	if typ != "" {
		f.Attrs = append(f.Attrs, wire.Attr{Name: "type", Value: typ})
	}
	for _, val := range values {
		f.AddChild(wire.New("value", NSData).SetText(val))
	}
	return f
}

// form answers a form request (XEP-0313 §5.3 and §7 extended fields).
func (m *Module) form(_ context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !own(st) {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	x := wire.New("x", NSData, wire.Attr{Name: "type", Value: "form"}).AddChild(
		field("FORM_TYPE", "hidden", NS),
		field("with", "jid-single"),
		field("start", "text-single"),
		field("end", "text-single"),
		field("before-id", "text-single"),
		field("after-id", "text-single"),
		field("ids", "list-multi"),
	)
	return st.Result(wire.New("query", NS).AddChild(x)), nil
}

func badRequest(text string) error { return xmpp.StanzaError(stanza.BadRequest, text) }

// parseTime reads an XEP-0082 DateTime.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badRequest("invalid date and time " + strconv.Quote(s))
}

// parseQuery turns a XEP-0313 query into a store query.
func parseQuery(owner string, q *wire.Element) (store.ArchiveQuery, bool, error) {
	aq := store.ArchiveQuery{Archive: owner, Max: DefaultPage}
	if x := q.Child("x", NSData); x != nil {
		for _, f := range x.Children {
			if f.Name != "field" || f.Space != NSData {
				continue
			}
			var values []string
			for _, v := range f.Children {
				if v.Name == "value" && v.Space == NSData {
					values = append(values, v.Text)
				}
			}
			one := ""
			if len(values) > 0 {
				one = values[0]
			}
			var err error
			switch f.AttrValue("var") {
			case "FORM_TYPE":
				if one != NS {
					return aq, false, badRequest("unknown FORM_TYPE")
				}
			case "with":
				j, perr := jid.Parse(one)
				if perr != nil {
					return aq, false, xmpp.StanzaError(stanza.JIDMalformed, "invalid 'with'")
				}
				aq.With = j.Bare().String()
			case "start":
				aq.Start, err = parseTime(one)
			case "end":
				aq.End, err = parseTime(one)
			case "after-id":
				id, ok := parseID(one)
				if !ok {
					return aq, false, xmpp.StanzaError(stanza.ItemNotFound, "unknown after-id")
				}
				aq.AfterID = id
			case "before-id":
				id, ok := parseID(one)
				if !ok {
					return aq, false, xmpp.StanzaError(stanza.ItemNotFound, "unknown before-id")
				}
				aq.BeforeID = id
			case "ids":
				for _, v := range values {
					id, ok := parseID(v)
					if !ok {
						return aq, false, xmpp.StanzaError(stanza.ItemNotFound, "unknown id")
					}
					aq.IDs = append(aq.IDs, id)
				}
			default:
				// XEP-0313 §5.1.1: unknown fields are an error.
				return aq, false, badRequest("unsupported field " + strconv.Quote(f.AttrValue("var")))
			}
			if err != nil {
				return aq, false, err
			}
		}
	}
	flip := q.Child("flip-page", NS) != nil
	if set := q.Child("set", NSRSM); set != nil {
		if s := set.Child("max", NSRSM); s != nil {
			n, err := strconv.Atoi(s.Text)
			if err != nil || n < 0 {
				return aq, false, badRequest("invalid <max/>")
			}
			aq.Max = min(n, MaxPage)
		}
		if a := set.Child("after", NSRSM); a != nil {
			id, ok := parseID(a.Text)
			if !ok {
				return aq, false, xmpp.StanzaError(stanza.ItemNotFound, "unknown <after/> id")
			}
			aq.AfterID = max(aq.AfterID, id)
		}
		if b := set.Child("before", NSRSM); b != nil {
			if b.Text == "" {
				aq.Last = true
			} else {
				id, ok := parseID(b.Text)
				if !ok {
					return aq, false, xmpp.StanzaError(stanza.ItemNotFound, "unknown <before/> id")
				}
				if aq.BeforeID == 0 || id < aq.BeforeID {
					aq.BeforeID = id
				}
				aq.Last = true
			}
		}
		if set.Child("index", NSRSM) != nil {
			return aq, false, xmpp.StanzaError(stanza.FeatureNotImplemented, "<index/> is not supported")
		}
	}
	if aq.BeforeID != 0 && aq.AfterID == 0 && !aq.Last {
		// before-id alone asks for the newest page before it.
		aq.Last = true
	}
	aq.WantCount = aq.Max == 0
	return aq, flip, nil
}

// query answers an archive query (XEP-0313 §4): the results as messages,
// then the IQ result with <fin/>.
func (m *Module) query(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !own(st) {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	owner := st.From.Bare()
	q := st.Payload()
	aq, flip, err := parseQuery(owner.String(), q)
	if err != nil {
		return nil, err
	}
	for _, cursor := range []uint64{aq.AfterID, aq.BeforeID} {
		if cursor == 0 {
			continue
		}
		if _, err := m.deps.Archive.Get(ctx, owner.String(), cursor); errors.Is(err, store.ErrNotFound) {
			return nil, xmpp.StanzaError(stanza.ItemNotFound, "unknown id")
		} else if err != nil {
			return nil, fmt.Errorf("mam: cursor: %w", err)
		}
	}
	// Everything appended before the query is visible to it.
	if err := m.deps.Writer.Flush(ctx); err != nil {
		return nil, fmt.Errorf("mam: flush: %w", err)
	}
	page, err := m.deps.Archive.Query(ctx, aq)
	if err != nil {
		return nil, fmt.Errorf("mam: query: %w", err)
	}
	queryID := q.AttrValue("queryid")
	records := page.Records
	if flip {
		records = make([]store.ArchiveRecord, len(page.Records))
		for i, r := range page.Records {
			records[len(records)-1-i] = r
		}
	}
	for _, r := range records {
		el, err := wire.Parse(r.Stanza, wire.NewScope(wire.NSClient))
		if err != nil {
			m.log.Error("mam: stored message unreadable", xmpp.LogJID, owner.String(), xmpp.LogID, formatID(r.ID), xmpp.LogErr, err)
			continue
		}
		res := wire.New("result", NS, wire.Attr{Name: "id", Value: formatID(r.ID)})
		if queryID != "" {
			res.Attrs = append(res.Attrs, wire.Attr{Name: "queryid", Value: queryID})
		}
		res.AddChild(wire.New("forwarded", NSForward).AddChild(
			wire.New("delay", NSDelay, wire.Attr{Name: "stamp", Value: stamp(r.Time())}),
			el,
		))
		m.deps.Router.Route(ctx, xmpp.Build(xmpp.KindMessage, "", "", owner, st.From, res))
	}
	fin := wire.New("fin", NS)
	if page.Complete {
		fin.Attrs = append(fin.Attrs, wire.Attr{Name: "complete", Value: "true"})
	}
	set := wire.New("set", NSRSM)
	if len(page.Records) > 0 {
		first := wire.New("first", NSRSM).SetText(formatID(page.Records[0].ID))
		if page.Index >= 0 {
			first.Attrs = append(first.Attrs, wire.Attr{Name: "index", Value: strconv.Itoa(page.Index)})
		}
		set.AddChild(first, wire.New("last", NSRSM).SetText(formatID(page.Records[len(page.Records)-1].ID)))
	}
	if page.Count >= 0 {
		set.AddChild(wire.New("count", NSRSM).SetText(strconv.Itoa(page.Count)))
	}
	fin.AddChild(set)
	return st.Result(fin), nil
}

// metadata answers XEP-0313 §7.1 archive metadata: the first and last
// message of the archive.
func (m *Module) metadata(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !own(st) {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	owner := st.From.Bare().String()
	if err := m.deps.Writer.Flush(ctx); err != nil {
		return nil, fmt.Errorf("mam: flush: %w", err)
	}
	md := wire.New("metadata", NS)
	first, err := m.deps.Archive.Query(ctx, store.ArchiveQuery{Archive: owner, Max: 1})
	if err != nil {
		return nil, fmt.Errorf("mam: metadata: %w", err)
	}
	last, err := m.deps.Archive.Query(ctx, store.ArchiveQuery{Archive: owner, Max: 1, Last: true})
	if err != nil {
		return nil, fmt.Errorf("mam: metadata: %w", err)
	}
	if len(first.Records) > 0 && len(last.Records) > 0 {
		f, l := first.Records[0], last.Records[0]
		md.AddChild(
			wire.New("start", NS, wire.Attr{Name: "id", Value: formatID(f.ID)}, wire.Attr{Name: "timestamp", Value: stamp(f.Time())}),
			wire.New("end", NS, wire.Attr{Name: "id", Value: formatID(l.ID)}, wire.Attr{Name: "timestamp", Value: stamp(l.Time())}),
		)
	}
	return st.Result(md), nil
}

func jidList(e *wire.Element) []string {
	var out []string
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Name == "jid" && c.Space == NS {
			if j, err := jid.Parse(c.Text); err == nil {
				out = append(out, j.String())
			}
		}
	}
	return out
}

func prefsElement(p Prefs) *wire.Element {
	e := wire.New("prefs", NS, wire.Attr{Name: "default", Value: p.Default})
	always, never := wire.New("always", NS), wire.New("never", NS)
	for _, j := range p.Always {
		always.AddChild(wire.New("jid", NS).SetText(j))
	}
	for _, j := range p.Never {
		never.AddChild(wire.New("jid", NS).SetText(j))
	}
	return e.AddChild(always, never)
}

// getPrefs answers XEP-0313 §6.1 preferences.
func (m *Module) getPrefs(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !own(st) {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	return st.Result(prefsElement(m.loadPrefs(ctx, st.From.Bare()))), nil
}

// setPrefs stores preferences and answers with them (§6.1).
func (m *Module) setPrefs(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !own(st) {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	q := st.Payload()
	p := Prefs{Default: q.AttrValue("default"), Always: jidList(q.Child("always", NS)), Never: jidList(q.Child("never", NS))}
	switch p.Default {
	case ModeAlways, ModeNever, ModeRoster:
	default:
		return nil, badRequest("default must be always, never or roster")
	}
	if len(p.Always)+len(p.Never) > 1000 {
		return nil, xmpp.StanzaError(stanza.NotAcceptable, "too many JIDs")
	}
	owner := st.From.Bare().String()
	if err := m.deps.Prefs.Set(ctx, owner, p); err != nil {
		return nil, fmt.Errorf("mam: set prefs: %w", err)
	}
	m.mu.Lock()
	m.prefs[owner] = p
	m.mu.Unlock()
	return st.Result(prefsElement(p)), nil
}

// conversations answers the conversation list: each contact or room the
// user talked with, newest first, with the last message, its time and the
// number of unread messages.
//
//	<iq type='get'><conversations xmlns='urn:switchboard:conversations:0' max='50'/></iq>
//	<iq type='result'><conversations xmlns='urn:switchboard:conversations:0'>
//	  <conversation with='bob@example.org' unread='2' last-id='…' last-time='…'>
//	    <forwarded xmlns='urn:xmpp:forward:0'><delay …/><message …/></forwarded>
//	  </conversation>
//	</conversations></iq>
func (m *Module) conversations(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !own(st) {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	limit := DefaultPage
	if v := st.Payload().AttrValue("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, badRequest("invalid max")
		}
		limit = min(n, MaxPage)
	}
	owner := st.From.Bare().String()
	if err := m.deps.Writer.Flush(ctx); err != nil {
		return nil, fmt.Errorf("mam: flush: %w", err)
	}
	convs, err := m.deps.Archive.Conversations(ctx, owner, limit)
	if err != nil {
		return nil, fmt.Errorf("mam: conversations: %w", err)
	}
	res := wire.New("conversations", NSConv)
	for _, c := range convs {
		e := wire.New("conversation", NSConv,
			wire.Attr{Name: "with", Value: c.With},
			wire.Attr{Name: "unread", Value: strconv.Itoa(c.Unread)},
			wire.Attr{Name: "last-id", Value: formatID(c.LastID)},
			wire.Attr{Name: "last-time", Value: stamp(time.UnixMicro(int64(c.LastID)))},
		)
		if rec, err := m.deps.Archive.Get(ctx, owner, c.LastID); err == nil {
			if el, err := wire.Parse(rec.Stanza, wire.NewScope(wire.NSClient)); err == nil {
				e.AddChild(wire.New("forwarded", NSForward).AddChild(
					wire.New("delay", NSDelay, wire.Attr{Name: "stamp", Value: stamp(rec.Time())}), el))
			}
		}
		res.AddChild(e)
	}
	return st.Result(res), nil
}

// markRead applies a XEP-0333 displayed marker the user sent from any
// device: the conversation with the marker's recipient is read up to its
// newest message.
func (m *Module) markRead(ctx context.Context, st *xmpp.Stanza) {
	owner, with := st.From.Bare().String(), st.To.Bare().String()
	if err := m.deps.Writer.Flush(ctx); err != nil {
		return
	}
	convs, err := m.deps.Archive.Conversations(ctx, owner, MaxPage)
	if err != nil {
		return
	}
	for _, c := range convs {
		if c.With == with {
			if err := m.deps.Archive.MarkRead(ctx, owner, with, c.LastID); err != nil {
				m.log.Error("mam: mark read", xmpp.LogJID, owner, xmpp.LogErr, err)
			}
			return
		}
	}
}
