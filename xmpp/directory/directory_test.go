package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
	"switchboard/xmpp"
	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

func condition(err error) stanza.Condition {
	var se stanza.Error
	if errors.As(err, &se) {
		return se.Condition
	}
	return ""
}

func TestCriteria(t *testing.T) {
	const q = "<query xmlns='jabber:iq:search'>"
	form := func(fields string) string {
		return q + "<x xmlns='jabber:x:data' type='submit'>" + fields + "</x></query>"
	}
	tests := []struct {
		name     string
		query    string
		want     []string // field=folded query
		wantForm bool
		cond     stanza.Condition
	}{
		{"legacy", q + "<first> Alice* </first><email/></query>", []string{"first=alice"}, false, ""},
		{"legacy with rsm", q + "<nick>x</nick><set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set></query>", []string{"nick=x"}, false, ""},
		{"legacy unknown", q + "<gender>m</gender></query>", nil, false, stanza.BadRequest},
		{"legacy ours are form-only", q + "<extension>1</extension></query>", nil, false, stanza.BadRequest},
		{"form", form("<field var='FORM_TYPE'><value>jabber:iq:search</value></field><field var='{urn:switchboard:directory:0}extension'><value>+1 23</value></field>"),
			[]string{"{urn:switchboard:directory:0}extension=+1 23"}, true, ""},
		{"form without FORM_TYPE", form("<field var='last'><value>L</value></field>"), []string{"last=l"}, true, ""},
		{"form jid ignored", form("<field var='jid'><value>a@b</value></field>"), nil, true, ""},
		{"form type", form("<field var='FORM_TYPE'><value>urn:other</value></field>"), nil, true, stanza.BadRequest},
		{"form two types", form("<field var='FORM_TYPE'><value>jabber:iq:search</value><value>x</value></field>"), nil, true, stanza.BadRequest},
		{"form unknown", form("<field var='x-gender'><value>m</value></field>"), nil, true, stanza.BadRequest},
		{"form not submitted", q + "<x xmlns='jabber:x:data' type='cancel'/></query>", nil, true, stanza.BadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			crit, isForm, err := criteria(xmpptest.Element(t, tc.query))
			if condition(err) != tc.cond || (err == nil) != (tc.cond == "") {
				t.Fatalf("error %v, want %q", err, tc.cond)
			}
			if isForm != tc.wantForm {
				t.Fatalf("form = %v, want %v", isForm, tc.wantForm)
			}
			if err != nil {
				return
			}
			var got []string
			for _, c := range crit {
				got = append(got, c.f.v+"="+c.q)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("criteria %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParsePage(t *testing.T) {
	const set = "<set xmlns='http://jabber.org/protocol/rsm'>"
	tests := []struct {
		name string
		set  string // "" : none
		want page
		cond stanza.Condition
	}{
		{"none", "", page{max: -1}, ""},
		{"empty", set + "</set>", page{max: -1, set: true}, ""},
		{"max", set + "<max> 5 </max></set>", page{max: 5, set: true}, ""},
		{"after", set + "<after>bob@example.com</after></set>", page{max: -1, after: "bob", set: true}, ""},
		{"after elsewhere", set + "<after>bob@example.org</after></set>", page{}, stanza.ItemNotFound},
		{"after a domain", set + "<after>example.com</after></set>", page{}, stanza.ItemNotFound},
		{"after a full JID", set + "<after>bob@example.com/r</after></set>", page{}, stanza.ItemNotFound},
		{"after garbage", set + "<after>@@</after></set>", page{}, stanza.ItemNotFound},
		{"max negative", set + "<max>-1</max></set>", page{}, stanza.BadRequest},
		{"max text", set + "<max>ten</max></set>", page{}, stanza.BadRequest},
		{"before", set + "<before/></set>", page{}, stanza.FeatureNotImplemented},
		{"index", set + "<index>3</index></set>", page{}, stanza.FeatureNotImplemented},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var el *wire.Element
			if tc.set != "" {
				el = xmpptest.Element(t, tc.set)
			}
			got, err := parsePage(el, "example.com")
			if condition(err) != tc.cond || (err == nil) != (tc.cond == "") {
				t.Fatalf("error %v, want %q", err, tc.cond)
			}
			if err == nil && got != tc.want {
				t.Fatalf("page %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	alice := store.Profile{FullName: "Alice Liddell", Given: "Alice", Family: "Liddell", Nick: "al",
		OrgUnit: "Sales", Emails: []string{"alice@example.com"}, Phones: []string{"+1 (212) 555-1234", "4321"}}
	tests := []struct {
		field, query string
		p            store.Profile
		want         bool
	}{
		{FieldName, "liddell", alice, true},
		{FieldName, "alice l", alice, true},
		{FieldName, "ÀLICE", store.Profile{FullName: "àlice"}, true},
		{FieldName, "ali", store.Profile{}, true}, // the user name
		{FieldName, "bob", alice, false},
		{FieldUser, "ali", alice, true},
		{FieldUser, "liddell", alice, false},
		{FieldFirst, "lid", alice, false},
		{FieldEmail, "EXAMPLE", alice, true},
		{FieldDepartment, "sal", alice, true},
		{FieldExtension, "212-555", alice, true},
		{FieldExtension, "43", alice, true},
		{FieldExtension, "9", alice, false},
		{FieldExtension, "ext", store.Profile{Phones: []string{"Ext. 12"}}, true}, // no digits: as text
		{FieldExtension, "1", store.Profile{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.field+"="+tc.query, func(t *testing.T) {
			crit, _, err := criteria(xmpptest.Element(t, "<query xmlns='jabber:iq:search'><x xmlns='jabber:x:data' type='submit'><field var='"+tc.field+"'><value>"+tc.query+"</value></field></x></query>"))
			if err != nil {
				t.Fatal(err)
			}
			if got := matches(crit, "alice", tc.p); got != tc.want {
				t.Fatalf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzSearchRequest: whatever a client sends as a search, reading it never
// panics, and every refusal is a stanza error.
func FuzzSearchRequest(f *testing.F) {
	f.Add("<query xmlns='jabber:iq:search'><first>a</first><set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>a@h</after></set></query>")
	f.Add("<query xmlns='jabber:iq:search'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>jabber:iq:search</value></field><field var='{urn:switchboard:directory:0}extension'><value>1*2</value></field></x></query>")
	f.Add("<query xmlns='jabber:iq:search'><set xmlns='http://jabber.org/protocol/rsm'><before/></set></query>")
	f.Fuzz(func(t *testing.T, s string) {
		q, err := wire.Parse([]byte(s), wire.NewScope(""))
		if err != nil {
			return
		}
		crit, _, err := criteria(q)
		if err != nil && condition(err) == "" {
			t.Fatalf("criteria: %v is not a stanza error", err)
		}
		if _, err := parsePage(q.Child("set", NSRSM), "h"); err != nil && condition(err) == "" {
			t.Fatalf("parsePage: %v is not a stanza error", err)
		}
		matches(crit, "a", store.Profile{FullName: "A", Phones: []string{"12"}, Emails: []string{"e"}})
	})
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		from, to string
		ok       bool
	}{
		{"alice@example.com/pc", "example.com", true},
		{"alice@other.example/pc", "example.com", false}, // another host of the server
		{"example.com", "example.com", false},            // the server itself
	}
	for _, tc := range tests {
		t.Run(tc.from, func(t *testing.T) {
			st := xmpp.Build(xmpp.KindIQ, xmpp.TypeSet, "1", jid.MustParse(tc.from), jid.MustParse(tc.to))
			err := allowed(st)
			if (err == nil) != tc.ok || err != nil && condition(err) != stanza.Forbidden {
				t.Fatalf("allowed = %v, want ok=%v or forbidden", err, tc.ok)
			}
		})
	}
}

// memDirectory is a host's directory in memory, in localpart order.
type memDirectory struct {
	locals   []string
	profiles []store.Profile
}

func (d *memDirectory) Directory(_ context.Context, _ string, fn func(string, store.Profile) bool) error {
	for i, l := range d.locals {
		if !fn(l, d.profiles[i]) {
			return nil
		}
	}
	return nil
}

// BenchmarkSearch: one search of a directory of 10,000 users, by name and
// by extension (the whole directory is walked for the count each time).
func BenchmarkSearch(b *testing.B) {
	d := &memDirectory{}
	for i := range 10000 {
		d.locals = append(d.locals, fmt.Sprintf("user%05d", i))
		d.profiles = append(d.profiles, store.Profile{
			FullName: fmt.Sprintf("Given%d Family%d", i, i), Given: fmt.Sprintf("Given%d", i), Family: fmt.Sprintf("Family%d", i),
			OrgUnit: "Sales", Emails: []string{fmt.Sprintf("user%d@example.com", i)}, Phones: []string{fmt.Sprintf("+1 555 %04d", i)},
		})
	}
	m, err := New(Options{MaxResults: 100}, Deps{Directory: d})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, field, value string }{
		{"name", FieldName, "family12"},
		{"extension", FieldExtension, "555 12"},
		{"everyone", FieldName, ""},
	} {
		b.Run(tc.name, func(b *testing.B) {
			st := xmpptest.Stanza(b, "<iq type='set' id='s' from='a@example.com/r' to='example.com'><query xmlns='jabber:iq:search'><x xmlns='jabber:x:data' type='submit'><field var='"+tc.field+"'><value>"+tc.value+"</value></field></x></query></iq>")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.search(b.Context(), st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
