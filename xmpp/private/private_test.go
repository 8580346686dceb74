package private

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

// fakeStore is a Store whose answers the test sets; it records the last
// Set.
type fakeStore struct {
	get    []byte
	getErr error
	setErr error
	items  []store.PrivateItem
}

func (f *fakeStore) Get(context.Context, string, string) ([]byte, error) { return f.get, f.getErr }
func (f *fakeStore) Set(_ context.Context, _ string, items []store.PrivateItem, _ int) error {
	f.items = items
	return f.setErr
}

// answer runs the handler for iq's type.
func answer(t *testing.T, m *Module, iq string) (*xmpp.Stanza, error) {
	st := xmpptest.Stanza(t, iq)
	h := m.get
	if st.Type == "set" {
		h = m.set
	}
	return h(t.Context(), st)
}

// The handlers' store failures: a full quota, an account removed while
// its session ends, stored XML that no longer parses, an I/O error.
func TestHandlerStoreFailures(t *testing.T) {
	ioErr := errors.New("disk on fire")
	const set = "<iq type='set' id='1' from='a@x/r'><query xmlns='jabber:iq:private'><s xmlns='urn:s'>v</s></query></iq>"
	const get = "<iq type='get' id='1' from='a@x/r'><query xmlns='jabber:iq:private'><s xmlns='urn:s'/></query></iq>"
	tests := []struct {
		name  string
		store fakeStore
		iq    string
		cond  stanza.Condition // "": an error that is not a stanza error (internal-server-error)
	}{
		{"set, quota", fakeStore{setErr: fmt.Errorf("x: %w", store.ErrQuota)}, set, stanza.ResourceConstraint},
		{"set, account gone", fakeStore{setErr: fmt.Errorf("x: %w", store.ErrNotFound)}, set, stanza.ItemNotFound},
		{"set, I/O", fakeStore{setErr: ioErr}, set, ""},
		{"get, unparsable", fakeStore{get: []byte("<s xmlns='urn:s'>")}, get, ""},
		{"get, I/O", fakeStore{getErr: ioErr}, get, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(Options{MaxBytes: 1024}, Deps{Store: &tc.store})
			if err != nil {
				t.Fatal(err)
			}
			res, err := answer(t, m, tc.iq)
			xmpptest.HandlerError(t, res, err, tc.cond)
		})
	}
}

// What a set hands the store: one item per namespace, in the order the
// namespaces first appear, with its elements in document order; a
// namespace whose elements are all empty is cleared.
func TestSetItems(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  []store.PrivateItem // XML as written
	}{
		{"one", "<s xmlns='urn:s'><a>1</a></s>", []store.PrivateItem{{NS: "urn:s", XML: []byte("<s xmlns='urn:s'><a>1</a></s>")}}},
		{"grouped", "<a xmlns='urn:a'/><b xmlns='urn:b' k='v'/><c xmlns='urn:a'>x</c>", []store.PrivateItem{
			{NS: "urn:a", XML: []byte("<a xmlns='urn:a'/><c xmlns='urn:a'>x</c>")},
			{NS: "urn:b", XML: []byte("<b xmlns='urn:b' k='v'/>")},
		}},
		{"empty clears", "<s xmlns='urn:s'> </s><t xmlns:p='urn:p' xmlns='urn:s'/>", []store.PrivateItem{{NS: "urn:s"}}},
		{"an attribute is content", "<s xmlns='urn:s' v='1'/>", []store.PrivateItem{{NS: "urn:s", XML: []byte("<s xmlns='urn:s' v='1'/>")}}},
		// A prefixed element keeps the default namespace of its
		// content, which was the query's.
		{"prefixed", "<p:s xmlns:p='urn:p'><p:a/></p:s>", []store.PrivateItem{{NS: "urn:p", XML: []byte("<p:s xmlns:p='urn:p' xmlns='jabber:iq:private'><p:a/></p:s>")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeStore{}
			m, err := New(Options{MaxBytes: 1024}, Deps{Store: f})
			if err != nil {
				t.Fatal(err)
			}
			st := xmpptest.Stanza(t, "<iq type='set' id='1' from='a@x/r'><query xmlns='jabber:iq:private'>"+tc.query+"</query></iq>")
			if _, err := m.set(t.Context(), st); err != nil {
				t.Fatal(err)
			}
			if len(f.items) != len(tc.want) {
				t.Fatalf("items %q, want %q", f.items, tc.want)
			}
			for i, w := range tc.want {
				if f.items[i].NS != w.NS || string(f.items[i].XML) != string(w.XML) {
					t.Errorf("item %d = %s %q, want %s %q", i, f.items[i].NS, f.items[i].XML, w.NS, w.XML)
				}
			}
		})
	}
}

// FuzzStoredRoundTrip: whatever a set accepts is stored in a form that
// reads back as the same elements.
func FuzzStoredRoundTrip(f *testing.F) {
	f.Add("<storage xmlns='storage:bookmarks'><conference jid='r@c' autojoin='true'><nick>A</nick></conference></storage>")
	f.Add("<p:s xmlns:p='urn:p' xmlns:q='urn:q'><q:a p:k='&amp;'/>text &lt;</p:s><b xmlns='urn:p'/>")
	f.Add("<a xmlns='urn:a'><![CDATA[x]]></a>")
	f.Fuzz(func(t *testing.T, children string) {
		q, err := wire.Parse([]byte("<query xmlns='jabber:iq:private'>"+children+"</query>"), wire.NewScope(""))
		if err != nil {
			return
		}
		gs, err := groups(q, stanza.NotAcceptable)
		if err != nil {
			return
		}
		for _, g := range gs {
			var raw []byte
			for _, e := range g.elems {
				raw = e.AppendXML(raw, "")
			}
			back, err := decode(raw)
			if err != nil {
				t.Fatalf("stored %q does not read back: %v", raw, err)
			}
			if len(back) != len(g.elems) {
				t.Fatalf("stored %d elements, read back %d from %q", len(g.elems), len(back), raw)
			}
			for i := range back {
				if a, b := xmpptest.Canonical(back[i]), xmpptest.Canonical(g.elems[i]); a != b {
					t.Fatalf("element %d read back as %s, was %s", i, a, b)
				}
			}
		}
	})
}

// fakeBookmarks is a Bookmarks whose answers the test sets; it records
// what is published ("+id payload") and retracted ("-id"), in order.
type fakeBookmarks struct {
	items      []store.PEPItem
	itemsErr   error
	publishErr error
	ops        []string
	max        int // PrivateMaxItems; 0: 10
}

func (f *fakeBookmarks) PrivateItems(context.Context, jid.JID, string) ([]store.PEPItem, error) {
	return f.items, f.itemsErr
}
func (f *fakeBookmarks) PublishPrivate(_ context.Context, _ jid.JID, node, id string, payload *wire.Element) error {
	f.ops = append(f.ops, "+"+id+" "+xmpptest.Canonical(payload))
	return f.publishErr
}
func (f *fakeBookmarks) RetractPrivate(_ context.Context, _ jid.JID, node, id string) error {
	f.ops = append(f.ops, "-"+id)
	return nil
}
func (f *fakeBookmarks) PrivateMaxItems() int {
	if f.max == 0 {
		return 10
	}
	return f.max
}

// Failures to keep the bookmarks in step: a full personal eventing
// store is resource-constraint, anything else an internal error.
func TestBookmarksFailures(t *testing.T) {
	const set = "<iq type='set' id='1' from='a@x/r'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='r@c'/></storage></query></iq>"
	const get = "<iq type='get' id='1' from='a@x/r'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>"
	ioErr := errors.New("disk on fire")
	tests := []struct {
		name string
		bm   fakeBookmarks
		iq   string
		cond stanza.Condition
	}{
		{"set, quota", fakeBookmarks{publishErr: fmt.Errorf("x: %w", store.ErrQuota)}, set, stanza.ResourceConstraint},
		{"set, I/O", fakeBookmarks{publishErr: ioErr}, set, ""},
		{"set, refused by the node's store", fakeBookmarks{publishErr: fmt.Errorf("x: %w", store.ErrInvalid)}, set, stanza.NotAcceptable},
		{"set, reading the node", fakeBookmarks{itemsErr: ioErr}, set, ""},
		{"get, reading the node", fakeBookmarks{itemsErr: ioErr}, get, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(Options{MaxBytes: 1024}, Deps{Store: &fakeStore{getErr: store.ErrNotFound}, Bookmarks: &tc.bm})
			if err != nil {
				t.Fatal(err)
			}
			res, err := answer(t, m, tc.iq)
			xmpptest.HandlerError(t, res, err, tc.cond)
		})
	}
}

// splitLegacy: which parts of storage:bookmarks become XEP-0402 items
// and which stay in private XML storage.
func TestSplitLegacy(t *testing.T) {
	tests := []struct {
		name  string
		els   string // children of a query
		marks []string
		rest  []string
	}{
		{"rooms and a URL", "<storage xmlns='storage:bookmarks'><conference jid='A@Conf.Example' name='A' autojoin='1'><nick>n</nick></conference><url url='u'/></storage>",
			[]string{"a@conf.example|A|true|n|"}, []string{"<storage xmlns='storage:bookmarks'><url url='u'/></storage>"}},
		{"rooms only", "<storage xmlns='storage:bookmarks'><conference jid='a@c' autojoin='false'><password>p</password></conference></storage>",
			[]string{"a@c||false||p"}, nil},
		{"not a room", "<storage xmlns='storage:bookmarks'><conference jid='c'/><conference jid='a@c/r'/><conference/><conference jid='@@'/></storage>",
			nil, []string{"<storage xmlns='storage:bookmarks'><conference jid='c'/><conference jid='a@c/r'/><conference/><conference jid='@@'/></storage>"}},
		{"a room twice keeps the last", "<storage xmlns='storage:bookmarks'><conference jid='a@c' name='1'/><conference jid='b@c'/><conference jid='a@c' name='2'/></storage>",
			[]string{"a@c|2|false||", "b@c||false||"}, nil},
		{"other elements stay", "<other xmlns='storage:bookmarks'/><storage xmlns='storage:bookmarks'><conference xmlns='urn:x' jid='a@c'/></storage>",
			nil, []string{"<storage xmlns='storage:bookmarks'><conference xmlns='urn:x' jid='a@c'/></storage>", "<other xmlns='storage:bookmarks'/>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := xmpptest.Element(t, "<query xmlns='jabber:iq:private'>"+tc.els+"</query>")
			marks, rest := splitLegacy(q.Children)
			var gotMarks, gotRest, wantRest []string
			for _, b := range marks {
				gotMarks = append(gotMarks, fmt.Sprintf("%s|%s|%t|%s|%s", b.room, b.name, b.autojoin, b.nick, b.password))
			}
			for _, e := range rest {
				gotRest = append(gotRest, xmpptest.Canonical(e))
			}
			for _, r := range tc.rest {
				wantRest = append(wantRest, xmpptest.Canonical(xmpptest.Element(t, r)))
			}
			if fmt.Sprint(gotMarks) != fmt.Sprint(tc.marks) || fmt.Sprint(gotRest) != fmt.Sprint(wantRest) {
				t.Fatalf("marks %q, rest %q; want %q, %q", gotMarks, gotRest, tc.marks, wantRest)
			}
		})
	}
}

// What a storage:bookmarks set does to XEP-0402's node: retractions
// first, then publications of new and changed rooms under the ids they
// have; items the older form cannot show are left alone.
func TestSyncBookmarks(t *testing.T) {
	const ns2 = "urn:xmpp:bookmarks:1"
	item := func(id, payload string) store.PEPItem { return store.PEPItem{ID: id, Payload: []byte(payload)} }
	conf := func(name string) string { return "<conference xmlns='" + ns2 + "' name='" + name + "'/>" }
	pub := func(id, payload string) string {
		return "+" + id + " " + xmpptest.Canonical(xmpptest.Element(t, payload))
	}
	tests := []struct {
		name   string
		items  []store.PEPItem
		legacy string
		max    int // PrivateMaxItems; 0: 10
		cond   stanza.Condition
		want   []string
	}{
		{"new rooms", nil, "<conference jid='a@c' name='A'/><conference jid='b@c' autojoin='true'/>", 0, "",
			[]string{pub("a@c", conf("A")), pub("b@c", "<conference xmlns='"+ns2+"' autojoin='true'/>")}},
		{"unchanged, changed, gone", []store.PEPItem{item("a@c", conf("A")), item("b@c", conf("B")), item("c@c", conf("C"))},
			"<conference jid='a@c' name='A'/><conference jid='b@c' name='B2'/>", 0, "",
			[]string{"-c@c", pub("b@c", conf("B2"))}},
		{"the id as the node has it", []store.PEPItem{item("Room@C", conf("R"))}, "<conference jid='room@c' name='R2'/>", 0, "",
			[]string{pub("Room@C", conf("R2"))}},
		{"a room dropped under every spelling", []store.PEPItem{item("Room@C", conf("R")), item("room@c", conf("R")), item("k@c", conf("K"))},
			"<conference jid='k@c' name='K'/>", 0, "", []string{"-Room@C", "-room@c"}},
		{"items the older form cannot show stay", []store.PEPItem{item("c", conf("domain")), item("x@c", "<other xmlns='urn:x'/>"), item("y@c", "<conference xmlns='urn:x'/>")},
			"", 0, "", nil},
		{"extensions kept", []store.PEPItem{item("a@c", "<conference xmlns='"+ns2+"' name='A'><extensions><e xmlns='urn:e'/></extensions></conference>")},
			"<conference jid='a@c' name='A2'/>", 0, "",
			[]string{pub("a@c", "<conference xmlns='"+ns2+"' name='A2'><extensions><e xmlns='urn:e'/></extensions></conference>")}},
		{"too many rooms changes nothing", []store.PEPItem{item("a@c", conf("A"))}, "<conference jid='b@c'/><conference jid='c@c'/>", 1,
			stanza.ResourceConstraint, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bm := &fakeBookmarks{items: tc.items, max: tc.max}
			st := &fakeStore{}
			m, err := New(Options{MaxBytes: 1024}, Deps{Store: st, Bookmarks: bm})
			if err != nil {
				t.Fatal(err)
			}
			res, err := answer(t, m, "<iq type='set' id='1' from='a@x/r'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>"+tc.legacy+"</storage></query></iq>")
			if tc.cond != "" {
				xmpptest.HandlerError(t, res, err, tc.cond)
				if st.items != nil {
					t.Fatalf("stored %q after the refusal", st.items)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(bm.ops) != fmt.Sprint(tc.want) {
				t.Fatalf("node operations\n got %q\nwant %q", bm.ops, tc.want)
			}
		})
	}
}
