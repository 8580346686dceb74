package main

import (
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name     string
		scanned  uint64 // live heap, stacks and globals
		headroom uint64
		base     int
		want     int
	}{
		{"nothing scanned yet", 0, gcHeadroom, 100, maxGCPercent},
		{"tiny heap: capped", 1 * mib, gcHeadroom, 100, maxGCPercent},
		{"small heap: the headroom", 8 * mib, gcHeadroom, 100, 400},
		{"at the headroom: the default", 32 * mib, gcHeadroom, 100, 100},
		{"large heap: the default", 512 * mib, gcHeadroom, 100, 100},
		{"a higher base stays", 512 * mib, gcHeadroom, 300, 300},
		{"a base above the cap stays", 1 * mib, gcHeadroom, 2000, 2000},
		{"a raised headroom is not capped by percent", 4 * mib, 64 * mib, 100, 1600},
		{"a raised headroom on a large heap", 128 * mib, 256 * mib, 100, 200},
		{"a raised headroom below the heap: the default", 512 * mib, 256 * mib, 100, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := gcPercentFor(tc.scanned, tc.headroom, tc.base); got != tc.want {
				t.Fatalf("gcPercentFor(%d MiB, headroom %d MiB, base %d) = %d, want %d", tc.scanned/mib, tc.headroom/mib, tc.base, got, tc.want)
			}
		})
	}
}

func TestHeadroomFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name string
		rate uint64 // bytes a second
		want uint64
	}{
		{"quiet", 0, gcHeadroom},
		{"below the floor", 200 * mib, gcHeadroom},
		{"at the floor", gcCycleRate * gcHeadroom, gcHeadroom},
		{"archive-on saturation", 600 * mib, 60 * mib},
		{"capped", 100_000 * mib, maxGCHeadroom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := headroomFor(tc.rate); got != tc.want {
				t.Fatalf("headroomFor(%d MiB/s) = %d MiB, want %d MiB", tc.rate/mib, got/mib, tc.want/mib)
			}
		})
	}
}

func TestAllocRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tick := 100 * time.Millisecond
	var r allocRate
	if got := r.add(t0, 5000); got != 0 {
		t.Fatalf("first sample: rate %d, want 0", got)
	}
	// 1 MB per tick: 10 MB/s, measured from the oldest sample kept.
	for i := 1; i <= 3*allocWindow; i++ {
		got := r.add(t0.Add(time.Duration(i)*tick), 5000+uint64(i)*1_000_000)
		if got != 10_000_000 {
			t.Fatalf("sample %d: rate %d, want 10,000,000", i, got)
		}
	}
	// The rate falls to nothing once the window holds no allocations:
	// the window's oldest sample moves on tick by tick.
	last := 5000 + uint64(3*allocWindow)*1_000_000
	var got uint64
	for i := 1; i <= allocWindow; i++ {
		got = r.add(t0.Add(time.Duration(3*allocWindow+i)*tick), last)
		if want := uint64(allocWindow-i) * 1_000_000 * 10 / uint64(allocWindow); got != want {
			t.Fatalf("quiet tick %d: rate %d, want %d", i, got, want)
		}
	}
	if got != 0 {
		t.Fatalf("after a quiet window: rate %d, want 0", got)
	}
}
