package c2s

import (
	"strconv"
	"testing"
)

// TestEndedCounts: the counts of the last max sessions that ended are
// kept, the oldest forgotten first; none with max 0.
func TestEndedCounts(t *testing.T) {
	cases := []struct {
		max, added int
		kept       []int // the sessions still known, by order of ending
	}{
		{0, 3, nil},
		{1, 3, []int{2}},
		{3, 2, []int{0, 1}},
		{3, 3, []int{0, 1, 2}},
		{3, 7, []int{4, 5, 6}},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.max)+"/"+strconv.Itoa(tc.added), func(t *testing.T) {
			e := endedCounts{max: tc.max}
			for i := range tc.added {
				e.add("id"+strconv.Itoa(i), endedCount{host: "localhost", authed: "a", h: uint32(i)})
			}
			if len(e.byID) != len(tc.kept) {
				t.Fatalf("%d kept, want %d", len(e.byID), len(tc.kept))
			}
			for _, i := range tc.kept {
				if c, ok := e.byID["id"+strconv.Itoa(i)]; !ok || c.h != uint32(i) {
					t.Fatalf("session %d: %+v, %v", i, c, ok)
				}
			}
		})
	}
}

// TestFailedResume: the 'h' of an ended session goes only to its own
// account's resumption.
func TestFailedResume(t *testing.T) {
	s := &Server{ended: endedCounts{max: 2}}
	s.ended.add("sm1", endedCount{host: "localhost", authed: "alice", h: 7})
	cases := []struct {
		name, previd, host, authed, want string
	}{
		{"own", "sm1", "localhost", "alice", "<failed xmlns='urn:xmpp:sm:3' h='7'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"},
		{"other account", "sm1", "localhost", "mallory", string(smFailed("item-not-found"))},
		{"other host", "sm1", "example.org", "alice", string(smFailed("item-not-found"))},
		{"unknown", "sm2", "localhost", "alice", string(smFailed("item-not-found"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(s.failedResume(tc.previd, &conn{host: tc.host, authed: tc.authed})); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}
