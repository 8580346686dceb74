package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom is the least the heap may grow between two collections. With
// Go's default (GOGC=100: grow by the live heap) a server whose live heap
// is a few MiB — a few hundred sessions — collects dozens of times a second
// under load: at 5,000 msgs/s with the archive on, 33 collections a second,
// each taking a processor for its marking while messages wait. Past
// gcHeadroom of live heap the default applies unchanged, so large servers
// (and their RSS) are not affected.
const gcHeadroom = 32 << 20

// gcCycleRate is about the most collections a second that keepGCHeadroom
// lets a high allocation rate cause: the headroom grows to a tenth of a
// second's allocations (up to maxGCHeadroom). Each collection costs about
// the same whatever the headroom: it marks the live heap and walks every
// goroutine the process ever had (the runtime keeps exited ones for
// reuse: after 10,000 sessions came and went, a collection takes 1–2 ms
// longer). Chat at saturation with the archive on allocates about
// 600 MB/s, much of it in the store's B-tree updates: with 32 MiB of
// headroom that was 20 collections a second; at this rate, 10. Below
// gcCycleRate × gcHeadroom bytes a second (a quiet server, logins, chat
// with the archive off) the headroom is gcHeadroom.
const gcCycleRate = 10

// maxGCHeadroom bounds the headroom an allocation rate can raise.
const maxGCHeadroom = 256 << 20

// headroomStep rounds a raised headroom up, so that small changes of the
// rate do not change the GC percentage every tick.
const headroomStep = 8 << 20

// maxGCPercent bounds the percentage keepGCHeadroom sets.
const maxGCPercent = 1000

// gcPercentFor is the GOGC percentage that lets a heap of live bytes grow
// by at least headroom before the next collection: never below base (the
// configured percentage) nor above maxGCPercent.
func gcPercentFor(live uint64, headroom uint64, base int) int {
	if live == 0 {
		return maxGCPercent
	}
	pct := int(headroom * 100 / live)
	return min(max(pct, base), max(base, maxGCPercent))
}

// headroomFor is the headroom for an allocation rate in bytes a second:
// gcHeadroom, or enough for at most about gcCycleRate collections a
// second, rounded up to headroomStep and at most maxGCHeadroom.
func headroomFor(rate uint64) uint64 {
	h := rate / gcCycleRate
	if h <= gcHeadroom {
		return gcHeadroom
	}
	h = (h + headroomStep - 1) / headroomStep * headroomStep
	return min(h, maxGCHeadroom)
}

// allocWindow is the number of ticks over which allocRate measures.
const allocWindow = 10

// allocRate measures the allocation rate over the last allocWindow
// samples of the cumulative bytes allocated.
type allocRate struct {
	at    [allocWindow]time.Time
	bytes [allocWindow]uint64
	n     int // samples taken
}

// add records a sample and returns the rate in bytes a second since the
// oldest sample kept (0 until there are two).
func (r *allocRate) add(now time.Time, total uint64) uint64 {
	i := r.n % allocWindow
	oldest := 0
	if r.n >= allocWindow {
		oldest = i // the slot about to be overwritten
	}
	var rate uint64
	if r.n > 0 {
		if d := now.Sub(r.at[oldest]); d > 0 && total >= r.bytes[oldest] {
			rate = uint64(float64(total-r.bytes[oldest]) / d.Seconds())
		}
	}
	r.at[i], r.bytes[i] = now, total
	r.n++
	return rate
}

// keepGCHeadroom sets the GC percentage every tick from the live heap
// after the last collection and the allocation rate (headroomFor), until
// ctx ends. An explicit GOGC in the environment is the operator's choice
// and is left alone.
func keepGCHeadroom(ctx context.Context) {
	if os.Getenv("GOGC") != "" {
		return
	}
	const base = 100
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	var rate allocRate
	current := base
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	defer debug.SetGCPercent(base)
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-t.C:
		}
		metrics.Read(samples)
		if samples[0].Value.Kind() != metrics.KindUint64 || samples[1].Value.Kind() != metrics.KindUint64 {
			return // metrics unsupported: keep the default
		}
		headroom := headroomFor(rate.add(now, samples[1].Value.Uint64()))
		// When the rate falls the percentage falls with it, and a heap
		// already past the lower goal is collected at once: a burst's
		// garbage does not stay for want of further allocations.
		if pct := gcPercentFor(samples[0].Value.Uint64(), headroom, base); pct != current {
			debug.SetGCPercent(pct)
			current = pct
		}
	}
}
