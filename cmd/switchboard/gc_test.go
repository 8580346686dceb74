package main

import "testing"

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name string
		live uint64
		base int
		want int
	}{
		{"no live heap yet", 0, 100, maxGCPercent},
		{"tiny heap: capped", 1 * mib, 100, maxGCPercent},
		{"small heap: the headroom", 8 * mib, 100, 400},
		{"at the headroom: the default", 32 * mib, 100, 100},
		{"large heap: the default", 512 * mib, 100, 100},
		{"a higher base stays", 512 * mib, 300, 300},
		{"a base above the cap stays", 1 * mib, 2000, 2000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := gcPercentFor(tc.live, gcHeadroom, tc.base); got != tc.want {
				t.Fatalf("gcPercentFor(%d MiB, base %d) = %d, want %d", tc.live/mib, tc.base, got, tc.want)
			}
		})
	}
}
