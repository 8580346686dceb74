package mam

import (
	"errors"
	"strconv"
	"testing"

	"mellium.im/xmpp/stanza"

	"switchboard/xmpp/wire"
)

// parseTestQuery parses a <query/> of urn:xmpp:mam:2 with inner as its
// content.
func parseTestQuery(t testing.TB, ids IDCodec, inner string) (parsedQuery, error) {
	t.Helper()
	el, err := wire.Parse([]byte("<query xmlns='"+NS+"'>"+inner+"</query>"), wire.NewScope(wire.NSClient))
	if err != nil {
		t.Fatalf("parse %q: %v", inner, err)
	}
	return parseQuery("juliet@example.org", el, ids)
}

// condition returns the stanza error condition of err, or "".
func condition(err error) string {
	var se stanza.Error
	if errors.As(err, &se) {
		return string(se.Condition)
	}
	return ""
}

func rsm(inner string) string { return "<set xmlns='" + NSRSM + "'>" + inner + "</set>" }

func TestParseQueryRSM(t *testing.T) {
	ids := NewIDCodec([]byte("test"))
	id := ids.Format(1_700_000_000_000_000)
	tests := []struct {
		name  string
		inner string
		check func(parsedQuery) bool
		cond  string // expected stanza error condition, "" for success
	}{
		{"count on every page", rsm("<max>10</max>"), func(q parsedQuery) bool { return q.WantCount && q.Max == 10 && q.Index == 0 }, ""},
		{"default page counts too", "", func(q parsedQuery) bool { return q.WantCount && q.Max == DefaultPage }, ""},
		{"count only", rsm("<max>0</max>"), func(q parsedQuery) bool { return q.WantCount && q.Max == 0 }, ""},
		{"index", rsm("<max>10</max><index>371</index>"), func(q parsedQuery) bool { return q.Index == 371 && !q.Last && q.AfterID == 0 }, ""},
		{"index 0 is the first page", rsm("<index>0</index>"), func(q parsedQuery) bool { return q.Index == 0 && !q.Last }, ""},
		{"index before max", rsm("<index>3</index><max>2</max>"), func(q parsedQuery) bool { return q.Index == 3 && q.Max == 2 }, ""},
		{"max capped", rsm("<max>100000</max>"), func(q parsedQuery) bool { return q.Max == MaxPage }, ""},
		{"index with after", rsm("<index>3</index><after>" + id + "</after>"), nil, "bad-request"},
		{"index with before", rsm("<index>3</index><before>" + id + "</before>"), nil, "bad-request"},
		{"index with last page", rsm("<index>3</index><before/>"), nil, "bad-request"},
		{"negative index", rsm("<index>-1</index>"), nil, "bad-request"},
		{"malformed index", rsm("<index>three</index>"), nil, "bad-request"},
		{"index out of range", rsm("<index>99999999999999999999</index>"), nil, "bad-request"},
		{"negative max", rsm("<max>-1</max>"), nil, "bad-request"},
		{"unknown after", rsm("<after>nope</after>"), nil, "item-not-found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := parseTestQuery(t, ids, tc.inner)
			if got := condition(err); got != tc.cond || (err != nil && tc.cond == "") {
				t.Fatalf("parseQuery(%s) = %v, want condition %q", tc.inner, err, tc.cond)
			}
			if err == nil && !tc.check(q) {
				t.Fatalf("parseQuery(%s) = %+v", tc.inner, q.ArchiveQuery)
			}
		})
	}
}

// FuzzParseQuery feeds arbitrary query content (forms, RSM with max,
// after, before and index, flip-page) to the parser: it never panics, and
// what it accepts is a query the store accepts.
func FuzzParseQuery(f *testing.F) {
	ids := NewIDCodec([]byte("fuzz"))
	id := ids.Format(1_700_000_000_000_000)
	form := func(fields string) string {
		return "<x xmlns='" + NSData + "' type='submit'><field var='FORM_TYPE'><value>" + NS + "</value></field>" + fields + "</x>"
	}
	for _, seed := range []string{
		"",
		rsm("<max>10</max>"),
		rsm("<max>0</max>"),
		rsm("<max>10</max><index>371</index>"),
		rsm("<index>0</index><before/>"),
		rsm("<index>2</index><after>" + id + "</after>"),
		rsm("<max>5</max><before>" + id + "</before>"),
		rsm("<max>5</max><after>"+id+"</after>") + "<flip-page/>",
		form("<field var='with'><value>romeo@example.net</value></field><field var='start'><value>2024-01-01T00:00:00Z</value></field>") + rsm("<index>7</index>"),
		form("<field var='after-id'><value>"+id+"</value></field><field var='ids'><value>"+id+"</value></field>") + rsm("<max>1</max><index>1</index>"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, inner string) {
		el, err := wire.Parse([]byte("<query xmlns='"+NS+"'>"+inner+"</query>"), wire.NewScope(wire.NSClient))
		if err != nil {
			return
		}
		q, err := parseQuery("juliet@example.org", el, ids)
		if err != nil {
			if condition(err) == "" {
				t.Fatalf("parseQuery(%q) = %v, not a stanza error", inner, err)
			}
			return
		}
		switch {
		case q.Max < 0 || q.Max > MaxPage:
			t.Fatalf("parseQuery(%q): max %d", inner, q.Max)
		case q.Index < 0:
			t.Fatalf("parseQuery(%q): index %d", inner, q.Index)
		case q.Index > 0 && (q.Last || q.AfterID != 0 || q.BeforeID != 0):
			t.Fatalf("parseQuery(%q): index %d with cursors %+v", inner, q.Index, q.ArchiveQuery)
		case !q.WantCount:
			t.Fatalf("parseQuery(%q): no count", inner)
		}
		// An accepted <index/> is the page's position.
		if set := el.Child("set", NSRSM); set != nil && set.Child("index", NSRSM) != nil {
			if n, _ := strconv.Atoi(set.Child("index", NSRSM).Text); q.Index != n {
				t.Fatalf("parseQuery(%q): index %d, want %d", inner, q.Index, n)
			}
		}
	})
}
