package main

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name    string
		scanned uint64 // live heap, stacks and globals
		byRate  uint64 // the headroom the allocation rate asks for
		base    int
		want    int
	}{
		{"nothing scanned yet", 0, 0, 100, maxGCPercent},
		{"tiny heap: capped", 1 * mib, 0, 100, maxGCPercent},
		{"tiny heap at 200 MB/s: the rate's, not capped", 1 * mib, 20 * mib, 100, 2000},
		{"small heap: the floor", 8 * mib, 0, 100, 400},
		{"small heap, a rate below the floor", 8 * mib, 16 * mib, 100, 400},
		{"at the floor: the default", 32 * mib, 0, 100, 100},
		{"large heap: the default", 512 * mib, 0, 100, 100},
		{"a higher base stays", 512 * mib, 0, 300, 300},
		{"a base above the cap stays", 1 * mib, 0, 2000, 2000},
		{"a raised headroom is not capped by percent", 4 * mib, 64 * mib, 100, 1600},
		{"a raised headroom on a large heap", 128 * mib, 256 * mib, 100, 200},
		{"a raised headroom below the heap: the default", 512 * mib, 256 * mib, 100, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := gcPercentFor(tc.scanned, tc.byRate, tc.base); got != tc.want {
				t.Fatalf("gcPercentFor(%d MiB, by rate %d MiB, base %d) = %d, want %d", tc.scanned/mib, tc.byRate/mib, tc.base, got, tc.want)
			}
		})
	}
}

func TestRateHeadroom(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name    string
		rate    uint64 // bytes a second
		scanned uint64 // what the last collection scanned
		want    uint64
	}{
		{"quiet", 0, 8 * mib, 0},
		{"below the floor", 200 * mib, 8 * mib, 20 * mib},
		{"at the floor", gcCycleRate * gcHeadroom, 8 * mib, gcHeadroom},
		{"archive-on saturation", 600 * mib, 8 * mib, 60 * mib},
		{"archive-on saturation, 16 MiB scanned", 600 * mib, 16 * mib, 60 * mib},
		{"archive-on saturation, twice that scanned: half the collections", 600 * mib, 32 * mib, 120 * mib},
		{"a large heap: capped", 600 * mib, 512 * mib, maxGCHeadroom},
		{"capped", 100_000 * mib, 8 * mib, maxGCHeadroom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rateHeadroom(tc.rate, tc.scanned); got != tc.want {
				t.Fatalf("rateHeadroom(%d MiB/s, %d MiB scanned) = %d MiB, want %d MiB", tc.rate/mib, tc.scanned/mib, got/mib, tc.want/mib)
			}
		})
	}
}

// Below the cap, the collections a rate causes scan at most gcScanRate
// bytes a second and happen at most gcCycleRate times a second, whatever
// the heap.
func TestRateHeadroomBoundsScanning(t *testing.T) {
	const mib = 1 << 20
	for _, rate := range []uint64{100 * mib, 600 * mib, 1500 * mib} {
		for scanned := uint64(1 * mib); scanned <= 128*mib; scanned *= 2 {
			h := rateHeadroom(rate, scanned)
			if h >= maxGCHeadroom {
				continue
			}
			cycles := float64(rate) / float64(h)
			if cycles > gcCycleRate*1.001 {
				t.Errorf("%d MiB/s, %d MiB scanned: %.1f collections a second, more than %d", rate/mib, scanned/mib, cycles, gcCycleRate)
			}
			if scan := cycles * float64(scanned); scan > gcScanRate*1.001 {
				t.Errorf("%d MiB/s, %d MiB scanned: %.0f MiB scanned a second, more than %d", rate/mib, scanned/mib, scan/mib, gcScanRate/mib)
			}
		}
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

// gcPercent is the GC percentage in force, read without changing it.
func gcPercent(t *testing.T) int {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatal("the runtime lacks /gc/gogc:percent")
	}
	return int(s[0].Value.Uint64())
}

// keepGCHeadroom raises the percentage of a process with a small heap (the
// floor headroom is more than what it scans), and puts back the default
// when its context ends; with GOGC set it changes nothing.
func TestKeepGCHeadroom(t *testing.T) {
	t.Cleanup(func() { debug.SetGCPercent(100) })
	log := slog.New(slog.DiscardHandler)
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("GC percentage %d: still not %s", gcPercent(t), what)
			}
			time.Sleep(time.Millisecond)
		}
	}

	t.Run("GOGC unset", func(t *testing.T) {
		t.Setenv("GOGC", "")
		debug.SetGCPercent(100)
		runtime.GC() // so that the last collection scanned this small heap
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			keepGCHeadroomEvery(ctx, log, time.Millisecond)
		}()
		// A test binary scans far less than the 32 MiB floor headroom,
		// which raises the percentage above the default (to the cap
		// when it scans under a tenth of it).
		wait("raised", func() bool { return gcPercent(t) > 100 })
		cancel()
		<-done
		if got := gcPercent(t); got != 100 {
			t.Errorf("GC percentage after the context ended: %d, want 100", got)
		}
	})

	t.Run("GOGC set", func(t *testing.T) {
		t.Setenv("GOGC", "50")
		debug.SetGCPercent(50)
		done := make(chan struct{})
		go func() {
			defer close(done)
			keepGCHeadroomEvery(t.Context(), log, time.Millisecond) // returns at once
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("still running with GOGC set")
		}
		if got := gcPercent(t); got != 50 {
			t.Errorf("GC percentage: %d, want GOGC's 50", got)
		}
	})
}

// The metrics keepGCHeadroom reads are all there in this runtime, and one
// it lacks is named (keepGCHeadroom then warns and leaves GOGC alone).
func TestReadMetrics(t *testing.T) {
	have := gcSamples()
	if name := readMetrics(have); name != "" {
		t.Fatalf("this runtime lacks %s", name)
	}
	lacking := append(have, metrics.Sample{Name: "/no/such/metric:bytes"})
	if name := readMetrics(lacking); name != "/no/such/metric:bytes" {
		t.Fatalf("readMetrics = %q, want the unknown one", name)
	}
	// A float metric is not a byte count either.
	if name := readMetrics([]metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/sched/gomaxprocs:threads"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}); name != "/cpu/classes/gc/total:cpu-seconds" {
		t.Fatalf("readMetrics = %q, want the float one", name)
	}
}
