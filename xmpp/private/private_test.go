package private

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"mellium.im/xmpp/stanza"

	"switchboard/store"
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
			st := xmpptest.Stanza(t, tc.iq)
			h := m.get
			if st.Type == "set" {
				h = m.set
			}
			res, err := h(t.Context(), st)
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
