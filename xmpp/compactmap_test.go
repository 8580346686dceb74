package xmpp

import "testing"

func TestCompactMap(t *testing.T) {
	tests := []struct {
		name     string
		peak     int // entries inserted, one by one
		keep     int // entries left after deleting the rest, one by one
		copies   int // compactions while deleting
		wantPeak int // the peak afterwards
	}{
		{"small: never copied", minCompactPeak - 1, 0, 0, minCompactPeak - 1},
		{"at the threshold, a quarter left: kept", minCompactPeak, minCompactPeak / 4, 0, minCompactPeak},
		{"just under a quarter left: copied", minCompactPeak, minCompactPeak/4 - 1, 1, minCompactPeak/4 - 1},
		// At 2,499 (under 10,000/4), then at 623 (under 2,499/4); the
		// peak is then under minCompactPeak.
		{"10,000 sessions, 100 left: copied twice", 10_000, 100, 2, 623},
		{"all gone", 10_000, 0, 2, 623},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p MapPeak
			m := map[int]int{}
			for i := range tc.peak {
				m[i] = i
				p.Grew(len(m))
			}
			copies := 0
			for i := tc.peak - 1; i >= tc.keep; i-- {
				delete(m, i)
				before := m
				m = CompactMap(m, &p)
				if len(before) != len(m) {
					t.Fatalf("after deleting %d: %d entries, want %d", i, len(m), len(before))
				}
				// A copy is a different map: writing to it leaves
				// the old one alone.
				m[-1] = -1
				if _, same := before[-1]; !same {
					copies++
				}
				delete(m, -1)
			}
			if copies != tc.copies {
				t.Errorf("copies = %d, want %d", copies, tc.copies)
			}
			if p.n != tc.wantPeak {
				t.Errorf("peak = %d, want %d", p.n, tc.wantPeak)
			}
			for i := range tc.keep {
				if m[i] != i {
					t.Fatalf("entry %d lost: %d", i, m[i])
				}
			}
		})
	}
}
