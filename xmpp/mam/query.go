package mam

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
)

// form answers a form request (XEP-0313 §5.3 and §7 extended fields).
func (m *Module) form(_ context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !st.ToOwnAccount() {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	x := wire.New("x", NSData, wire.Attr{Name: "type", Value: "form"}).AddChild(
		xmpp.FormField("FORM_TYPE", "hidden", NS),
		xmpp.FormField("with", "jid-single"),
		xmpp.FormField("start", "text-single"),
		xmpp.FormField("end", "text-single"),
		xmpp.FormField("before-id", "text-single"),
		xmpp.FormField("after-id", "text-single"),
		// §4.1.5: the list of ids is open (XEP-0122).
		xmpp.FormField("ids", "list-multi").AddChild(
			wire.New("validate", NSDataValidate, wire.Attr{Name: "datatype", Value: "xs:string"}).AddChild(wire.New("open", NSDataValidate))),
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

// parsedQuery is a XEP-0313 query: the store query, whether the page is
// flipped, and the ids the query names, which must be in the archive
// (§4.1.3, §4.3.1).
type parsedQuery struct {
	store.ArchiveQuery
	flip  bool
	known []uint64
}

// parseQuery turns a XEP-0313 query into a store query. The RSM <after/>
// and <before/> ids are paging cursors; the form fields after-id and
// before-id filter the result set (as 'start' and 'end' do: ids are
// microsecond times, see store.ArchiveQuery) and do not make the query
// page backwards (§9).
func parseQuery(owner string, q *wire.Element, ids IDCodec) (parsedQuery, error) {
	pq := parsedQuery{ArchiveQuery: store.ArchiveQuery{Archive: owner, Max: DefaultPage}}
	aq := &pq.ArchiveQuery
	var afterID, beforeID uint64
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
					return pq, badRequest("unknown FORM_TYPE")
				}
			case "with":
				j, perr := jid.Parse(one)
				if perr != nil {
					return pq, xmpp.StanzaError(stanza.JIDMalformed, "invalid 'with'")
				}
				aq.With = j.Bare().String()
			case "start":
				aq.Start, err = parseTime(one)
			case "end":
				aq.End, err = parseTime(one)
			case "after-id":
				id, ok := ids.Parse(one)
				if !ok {
					return pq, xmpp.StanzaError(stanza.ItemNotFound, "unknown after-id")
				}
				pq.known = append(pq.known, id)
				afterID = max(afterID, id)
			case "before-id":
				id, ok := ids.Parse(one)
				if !ok {
					return pq, xmpp.StanzaError(stanza.ItemNotFound, "unknown before-id")
				}
				pq.known = append(pq.known, id)
				if beforeID == 0 || id < beforeID {
					beforeID = id
				}
			case "ids":
				for _, v := range values {
					id, ok := ids.Parse(v)
					if !ok {
						return pq, xmpp.StanzaError(stanza.ItemNotFound, "unknown id")
					}
					pq.known = append(pq.known, id)
					aq.IDs = append(aq.IDs, id)
				}
			default:
				// XEP-0313 §4.1.5: an unknown field is
				// feature-not-implemented.
				return pq, xmpp.StanzaError(stanza.FeatureNotImplemented, "unsupported field "+strconv.Quote(f.AttrValue("var")))
			}
			if err != nil {
				return pq, err
			}
		}
	}
	// An id past the int64 range names no record (ids are times): the
	// existence check answers item-not-found.
	if afterID != 0 && afterID < math.MaxInt64 {
		if s := time.UnixMicro(int64(afterID) + 1); s.After(aq.Start) {
			aq.Start = s
		}
	}
	if beforeID != 0 && beforeID <= math.MaxInt64 {
		if e := time.UnixMicro(int64(beforeID) - 1); aq.End.IsZero() || e.Before(aq.End) {
			aq.End = e
		}
	}
	pq.flip = q.Child("flip-page", NS) != nil
	if set := q.Child("set", NSRSM); set != nil {
		if s := set.Child("max", NSRSM); s != nil {
			n, err := strconv.Atoi(s.Text)
			if err != nil || n < 0 {
				return pq, badRequest("invalid <max/>")
			}
			aq.Max = min(n, MaxPage)
		}
		if a := set.Child("after", NSRSM); a != nil {
			id, ok := ids.Parse(a.Text)
			if !ok {
				return pq, xmpp.StanzaError(stanza.ItemNotFound, "unknown <after/> id")
			}
			aq.AfterID = id
		}
		if b := set.Child("before", NSRSM); b != nil {
			if b.Text == "" {
				aq.Last = true
			} else {
				id, ok := ids.Parse(b.Text)
				if !ok {
					return pq, xmpp.StanzaError(stanza.ItemNotFound, "unknown <before/> id")
				}
				aq.BeforeID = id
				aq.Last = true
			}
		}
		if ix := set.Child("index", NSRSM); ix != nil {
			// XEP-0059 §2.5: the page that starts at a position of the
			// result set, instead of a cursor.
			n, err := strconv.Atoi(ix.Text)
			if err != nil || n < 0 {
				return pq, badRequest("invalid <index/>")
			}
			if aq.Last || aq.AfterID != 0 {
				return pq, badRequest("<index/> excludes <after/> and <before/>")
			}
			aq.Index = n
		}
	}
	// XEP-0059 §2.2: the count (and the first item's index) on every
	// page; the store reads them from counters (see doc.go).
	aq.WantCount = true
	return pq, nil
}

// query answers an archive query (XEP-0313 §4): the results as messages,
// then the IQ result with <fin/>.
func (m *Module) query(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !st.ToOwnAccount() {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	return m.queryArchive(ctx, st.From.Bare(), st, time.Time{}, nil)
}

// FormatID returns the opaque id clients see for an archive id.
func (m *Module) FormatID(id uint64) string { return m.ids.Format(id) }

// RoomView is how a room's archive shows to one requester.
type RoomView struct {
	// NotBefore hides older records (a room shows only what was said
	// since it was created).
	NotBefore time.Time
	// RealJIDs gives each message's sender's real (bare) JID: the room
	// is non-anonymous, or the requester may see real JIDs in it (a
	// moderator of a semi-anonymous room). The room decides.
	RealJIDs bool
}

// QueryRoomArchive answers a XEP-0313 query st on a room's archive
// (queryArchive, records before view.NotBefore hidden; the caller checks
// that the requester may read it), shaping each forwarded message as XEP-0313 (1.1)
// §6.1.2 "MUC Archives" has it: no 'to' attribute; no muc#user <x/> but
// the room's own, which, when view.RealJIDs, names the sender's real JID
// (<x xmlns='…muc#user'><item jid='…'/></x>). The archive knows senders by
// bare JID (the record's With), so that is the JID given.
func (m *Module) QueryRoomArchive(ctx context.Context, room jid.JID, st *xmpp.Stanza, view RoomView) (*xmpp.Stanza, error) {
	return m.queryArchive(ctx, room, st, view.NotBefore, func(r store.ArchiveRecord, msg *wire.Element) *wire.Element {
		return roomResult(r, msg, view.RealJIDs)
	})
}

// roomResult shapes one message of a room's archive for a requester (see
// QueryRoomArchive).
func roomResult(r store.ArchiveRecord, msg *wire.Element, realJIDs bool) *wire.Element {
	msg = msg.WithoutAttr("to")
	// Never the sender's own muc#user <x/> (a claim of a real JID): the
	// room strips it before archiving, this is for records that have one
	// all the same (XEP-0313 §8.4).
	if slices.ContainsFunc(msg.Children, isMUCUserX) {
		msg = msg.WithChildren(msg.Text, slices.DeleteFunc(slices.Clone(msg.Children), isMUCUserX)...)
	}
	if realJIDs && r.With != "" {
		msg = msg.Append(wire.New("x", NSMUCUser).AddChild(
			wire.New("item", NSMUCUser, wire.Attr{Name: "jid", Value: r.With})))
	}
	return msg
}

func isMUCUserX(c *wire.Element) bool { return c.Name == "x" && c.Space == NSMUCUser }

// queryArchive answers a XEP-0313 query st on the archive of owner (the
// requester's own, or a room's): the results are sent to the requester
// from owner, and the returned IQ result carries <fin/>. The caller checks
// that the requester may read the archive. Records before notBefore are
// not shown; shape, if not nil, rewrites each result's message for the
// requester.
func (m *Module) queryArchive(ctx context.Context, owner jid.JID, st *xmpp.Stanza, notBefore time.Time, shape func(store.ArchiveRecord, *wire.Element) *wire.Element) (*xmpp.Stanza, error) {
	q := st.Payload()
	pq, err := parseQuery(owner.String(), q, m.ids)
	if err != nil {
		return nil, err
	}
	aq, flip := pq.ArchiveQuery, pq.flip
	if !notBefore.IsZero() && aq.Start.Before(notBefore) {
		aq.Start = notBefore
	}
	// Everything appended before the query is visible to it, the
	// messages whose stanza-ids the client has just seen included: flush
	// before the ids are looked up.
	if err := m.deps.Writer.Flush(ctx); err != nil {
		return nil, fmt.Errorf("mam: flush: %w", err)
	}
	for _, id := range append(pq.known, aq.AfterID, aq.BeforeID) {
		if id == 0 {
			continue
		}
		if _, err := m.deps.Archive.Get(ctx, owner.String(), id); errors.Is(err, store.ErrNotFound) {
			return nil, xmpp.StanzaError(stanza.ItemNotFound, "unknown id "+m.ids.Format(id))
		} else if err != nil {
			return nil, fmt.Errorf("mam: look up id: %w", err)
		}
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
			m.log.Error("mam: stored message unreadable", xmpp.LogJID, owner.String(), xmpp.LogID, m.ids.Format(r.ID), xmpp.LogErr, err)
			continue
		}
		if shape != nil {
			el = shape(r, el)
		}
		res := wire.New("result", NS, wire.Attr{Name: "id", Value: m.ids.Format(r.ID)})
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
		first := wire.New("first", NSRSM).SetText(m.ids.Format(page.Records[0].ID))
		if page.Index >= 0 {
			first.Attrs = append(first.Attrs, wire.Attr{Name: "index", Value: strconv.Itoa(page.Index)})
		}
		set.AddChild(first, wire.New("last", NSRSM).SetText(m.ids.Format(page.Records[len(page.Records)-1].ID)))
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
	if !st.ToOwnAccount() {
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
			wire.New("start", NS, wire.Attr{Name: "id", Value: m.ids.Format(f.ID)}, wire.Attr{Name: "timestamp", Value: stamp(f.Time())}),
			wire.New("end", NS, wire.Attr{Name: "id", Value: m.ids.Format(l.ID)}, wire.Attr{Name: "timestamp", Value: stamp(l.Time())}),
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
	if !st.ToOwnAccount() {
		return nil, xmpp.StanzaError(stanza.Forbidden, "")
	}
	return st.Result(prefsElement(m.loadPrefs(ctx, st.From.Bare()))), nil
}

// setPrefs stores preferences and answers with them (§6.1).
func (m *Module) setPrefs(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !st.ToOwnAccount() {
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
	m.setCachedPrefs(owner, p)
	return st.Result(prefsElement(p)), nil
}

// conversations answers the conversation list: each contact or room the
// user talks with, newest first, with the last message, its time and the
// number of unread messages.
//
//	<iq type='get'><conversations xmlns='urn:switchboard:conversations:0' max='50'/></iq>
//	<iq type='result'><conversations xmlns='urn:switchboard:conversations:0'>
//	  <conversation with='bob@example.org' unread='2' last-id='…' last-time='…'>
//	    <forwarded xmlns='urn:xmpp:forward:0'><delay …/><message …/></forwarded>
//	  </conversation>
//	  <conversation with='team@conference.example.org' type='groupchat' unread='99' unread-more='true'
//	      last-id='…' last-by='team@conference.example.org' last-time='…'>…</conversation>
//	</conversations></iq>
//
// A room (type='groupchat', from Deps.Rooms) carries the room's stanza-id
// of its last message and names the room in last-by; private messages from
// its occupants, archived with the room's JID, are the same entry (their
// unread counts add up, and last-by is the user's own archive when one of
// them is the newest). A room's unread count stops at RoomUnreadCap, with
// unread-more='true' beyond it. A room with no message yet is ordered by
// when the user entered it and has no last-id.
func (m *Module) conversations(ctx context.Context, st *xmpp.Stanza) (*xmpp.Stanza, error) {
	if !st.ToOwnAccount() {
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
	owner := st.From.Bare()
	if err := m.deps.Writer.Flush(ctx); err != nil {
		return nil, fmt.Errorf("mam: flush: %w", err)
	}
	var rooms []RoomConversation
	if m.deps.Rooms != nil {
		var err error
		if rooms, err = m.deps.Rooms.RoomConversations(ctx, owner); err != nil {
			return nil, fmt.Errorf("mam: room conversations: %w", err)
		}
	}
	fetch := limit
	if len(rooms) > 0 {
		fetch = 0 // all: private messages from a room join the room's entry
	}
	convs, err := m.deps.Archive.Conversations(ctx, owner.String(), fetch)
	if err != nil {
		return nil, fmt.Errorf("mam: conversations: %w", err)
	}
	entries := mergeConversations(owner.String(), convs, rooms)
	if len(entries) > limit {
		entries = entries[:limit]
	}
	res := wire.New("conversations", NSConv)
	for _, c := range entries {
		res.AddChild(m.conversationElement(ctx, owner.String(), c))
	}
	return st.Result(res), nil
}

// listEntry is an entry of the conversation list: a one-to-one
// conversation, a room, or both (private messages from a room's
// occupants are archived with the room's JID).
type listEntry struct {
	with   string
	room   bool
	unread int
	more   bool
	// The newest message: the archive holding it (the user's or the
	// room's), its id there (0: none), and the record when at hand.
	lastBy string
	lastID uint64
	last   *store.ArchiveRecord
	order  uint64 // lastID, or when a room was entered if later
}

// mergeConversations merges owner's one-to-one conversations and rooms
// into one list, newest first.
func mergeConversations(owner string, convs []store.Conversation, rooms []RoomConversation) []listEntry {
	entries := make([]listEntry, 0, len(convs)+len(rooms))
	at := make(map[string]int, len(convs))
	for _, c := range convs {
		at[c.With] = len(entries)
		entries = append(entries, listEntry{with: c.With, unread: c.Unread, lastBy: owner, lastID: c.LastID, order: c.LastID})
	}
	for _, r := range rooms {
		with := r.Room.String()
		i, merged := at[with]
		e := listEntry{with: with}
		if merged {
			e = entries[i]
		}
		e.room, e.unread, e.more = true, e.unread+r.Unread, r.More
		if r.Last.ID > e.lastID {
			last := r.Last
			e.lastBy, e.lastID, e.last = with, last.ID, &last
		}
		e.order = max(e.order, e.lastID, uint64(max(r.Since.UnixMicro(), 0)))
		if merged {
			entries[i] = e
		} else {
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, func(x, y listEntry) int {
		return cmp.Or(cmp.Compare(y.order, x.order), cmp.Compare(x.with, y.with))
	})
	return entries
}

// conversationElement renders an entry with its last message.
func (m *Module) conversationElement(ctx context.Context, owner string, e listEntry) *wire.Element {
	el := wire.New("conversation", NSConv, wire.Attr{Name: "with", Value: e.with})
	if e.room {
		el.Attrs = append(el.Attrs, wire.Attr{Name: "type", Value: xmpp.TypeGroupchat})
	}
	el.Attrs = append(el.Attrs, wire.Attr{Name: "unread", Value: strconv.Itoa(e.unread)})
	if e.more {
		el.Attrs = append(el.Attrs, wire.Attr{Name: "unread-more", Value: "true"})
	}
	if e.lastID == 0 {
		return el
	}
	el.Attrs = append(el.Attrs, wire.Attr{Name: "last-id", Value: m.ids.Format(e.lastID)})
	if e.room {
		el.Attrs = append(el.Attrs, wire.Attr{Name: "last-by", Value: e.lastBy})
	}
	el.Attrs = append(el.Attrs, wire.Attr{Name: "last-time", Value: stamp(time.UnixMicro(int64(min(e.lastID, math.MaxInt64))))})
	rec := e.last
	if rec == nil {
		if r, err := m.deps.Archive.Get(ctx, e.lastBy, e.lastID); err == nil {
			rec = &r
		}
	}
	if rec != nil {
		if msg, err := wire.Parse(rec.Stanza, wire.NewScope(wire.NSClient)); err == nil {
			el.AddChild(wire.New("forwarded", NSForward).AddChild(
				wire.New("delay", NSDelay, wire.Attr{Name: "stamp", Value: stamp(rec.Time())}), msg))
		}
	}
	return el
}

// markRead applies a XEP-0333 displayed marker the user sent from any
// device: the conversation with the marker's recipient is read up to the
// message the marker names and so everything before it (XEP-0333 §4),
// while newer messages stay unread. A marker naming no message found
// among the conversation's newest markerScan incoming messages reads the
// whole conversation.
func (m *Module) markRead(ctx context.Context, st *xmpp.Stanza) {
	owner, with := st.From.Bare().String(), st.To.Bare().String()
	marker := st.El.Child("displayed", NSMarkers).AttrValue("id")
	upTo, ok := m.markedByArchiveID(ctx, owner, with, marker)
	if !ok && marker != "" {
		// The marked message may still be on its way into the archive;
		// only this path waits for the writer.
		if err := m.deps.Writer.Flush(ctx); err != nil {
			return
		}
		upTo, ok = m.markedID(ctx, owner, with, marker)
	}
	if !ok {
		convs, err := m.deps.Archive.Conversations(ctx, owner, 0)
		if err != nil {
			return
		}
		for _, c := range convs {
			if c.With == with {
				upTo, ok = c.LastID, true
			}
		}
	}
	if !ok {
		return // no such conversation
	}
	if err := m.deps.Archive.MarkRead(ctx, owner, with, upTo); err != nil {
		m.log.Error("mam: mark read", xmpp.LogJID, owner, xmpp.LogErr, err)
	}
}

// markedByArchiveID resolves a marker that names an archived incoming
// message by its stanza-id, with one lookup.
func (m *Module) markedByArchiveID(ctx context.Context, owner, with, marker string) (uint64, bool) {
	id, ok := m.ids.Parse(marker)
	if !ok {
		return 0, false
	}
	r, err := m.deps.Archive.Get(ctx, owner, id)
	if err != nil || r.With != with || r.Direction != store.DirIn {
		return 0, false
	}
	return id, true
}

// markerScan bounds the messages markedID looks at.
const markerScan = MaxPage

// markedID finds the incoming message of owner's conversation with with
// that a displayed marker names, newest first: by its 'id' attribute (as
// XEP-0333 has it for one-to-one chats) or by its archive id (the
// stanza-id, as for groupchat).
func (m *Module) markedID(ctx context.Context, owner, with, marker string) (uint64, bool) {
	if marker == "" {
		return 0, false
	}
	archiveID, byArchiveID := m.ids.Parse(marker)
	q := store.ArchiveQuery{Archive: owner, With: with, Max: 25, Last: true}
	for scanned := 0; scanned < markerScan; {
		page, err := m.deps.Archive.Query(ctx, q)
		if err != nil {
			m.log.Error("mam: find marked message", xmpp.LogJID, owner, xmpp.LogErr, err)
			return 0, false
		}
		for i := len(page.Records) - 1; i >= 0; i-- {
			r := page.Records[i]
			if r.Direction != store.DirIn {
				continue
			}
			if byArchiveID && r.ID == archiveID {
				return r.ID, true
			}
			if el, err := wire.Parse(r.Stanza, wire.NewScope(wire.NSClient)); err == nil && el.AttrValue("id") == marker {
				return r.ID, true
			}
		}
		scanned += len(page.Records)
		if page.Complete || len(page.Records) == 0 {
			break
		}
		q.BeforeID = page.Records[0].ID
	}
	return 0, false
}
