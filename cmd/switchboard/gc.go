package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom is the least the heap may grow between two collections. With
// Go's default (GOGC=100: grow by the live heap) a server whose live heap
// is a few MiB — a few hundred sessions — collects dozens of times a second
// under load: at 5,000 msgs/s with the archive on, 33 collections a second,
// each taking a processor for its marking while messages wait. Once what
// a collection scans (live heap, stacks, globals) exceeds the headroom in
// force (this floor, or what the allocation rate asks for: rateHeadroom),
// the default applies unchanged.
const gcHeadroom = 32 << 20

// gcCycleRate is about the most collections a second that keepGCHeadroom
// lets a high allocation rate cause: the headroom grows to a tenth of a
// second's allocations (up to maxGCHeadroom), and past gcScanHeap scanned
// by more (gcScanRate). Chat at saturation with the
// archive on allocates about 600 MB/s, much of it in the store's B-tree
// updates: with 32 MiB of headroom that was 20 collections a second; at
// this rate, 10. Below gcCycleRate × gcHeadroom bytes a second (a quiet
// server, logins, chat with the archive off) the headroom is gcHeadroom. A
// raised headroom costs RSS only while the rate lasts: it falls with the
// rate.
const gcCycleRate = 10

// gcScanRate is about the most bytes a second that the collections a high
// allocation rate causes may scan: gcCycleRate collections of a heap that
// scans up to 16 MiB (a server of a few hundred sessions), fewer of a
// larger one. A collection's cost grows with what it scans: the live heap,
// including the record of every goroutine the process ever had (the
// runtime keeps exited ones for reuse: after 10,000 sessions came and
// went, some 5 MiB of them; the largest maps that follow sessions shrink
// again, xmpp.CompactMap). At a fixed number of collections a second that made
// the collector's share of the CPU grow with the heap: chat at saturation
// with the archive on, after 10,000 sessions logged in and out, scanned
// about 10 MiB more per collection, spent 110–270 ms more CPU collecting
// in a 4 s run, and ran at 0.86–1.00 of a fresh process's rate (median
// 0.91, four local pairs). With the collections spaced by what they scan,
// as GOGC spaces them, the two spent the same on collecting and the
// churned ran at 0.99–1.10 (median 1.04, five pairs). So past 16 MiB the
// headroom grows with the heap as well as with the rate, and the
// collector's work per allocated byte stays the same (above 16 MiB the
// percentage is the rate over gcScanRate, whatever the heap). A fresh
// server under that load had 14–22 MiB live; the heap when a collection
// started went from 45–73 MiB to 78–96.
const gcScanRate = gcCycleRate * gcScanHeap

// gcScanHeap is the scanned heap past which the headroom a rate asks for
// grows with the heap too (rateHeadroom).
const gcScanHeap = 16 << 20

// maxGCHeadroom bounds the headroom an allocation rate can raise.
const maxGCHeadroom = 256 << 20

// maxGCPercent bounds the percentage that gcHeadroom alone may set: a
// server with a tiny heap does not keep 32 MiB of garbage for it.
const maxGCPercent = 1000

// gcPercentFor is the GOGC percentage that lets the heap grow, before the
// next collection, by gcHeadroom or by byRate (rateHeadroom), whichever is
// more, given scanned, the bytes the last collection scanned (the runtime
// grows the heap by GOGC percent of the live heap, stacks and globals):
// never below base (the configured percentage). The floor's share is
// capped at maxGCPercent (a tiny heap does not keep 32 MiB of garbage for
// it); the rate's is bounded in bytes (maxGCHeadroom) instead, so a tiny
// heap under a high allocation rate still collects about gcCycleRate
// times a second.
func gcPercentFor(scanned, byRate uint64, base int) int {
	if scanned == 0 {
		return max(base, maxGCPercent)
	}
	floor := min(int(gcHeadroom*100/scanned), maxGCPercent)
	return max(floor, int(byRate*100/scanned), base)
}

// rateHeadroom is the headroom an allocation rate in bytes a second asks
// for, given scanned, what the last collection scanned: enough for at most
// about gcCycleRate collections a second, and for at most gcScanRate bytes
// scanned a second by them, up to maxGCHeadroom.
func rateHeadroom(rate, scanned uint64) uint64 {
	h := float64(rate) / gcCycleRate
	if scanned > gcScanHeap {
		h = float64(rate) * float64(scanned) / gcScanRate
	}
	return uint64(min(h, maxGCHeadroom))
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

// gcTick is how often keepGCHeadroom looks at the runtime's metrics.
const gcTick = 100 * time.Millisecond

// keepGCHeadroom sets the GC percentage every gcTick from what the last
// collection scanned and the allocation rate (rateHeadroom), until ctx
// ends, and then puts back the default. An explicit GOGC in the
// environment is the operator's choice and is left alone.
func keepGCHeadroom(ctx context.Context, log *slog.Logger) {
	keepGCHeadroomEvery(ctx, log, gcTick)
}

// keepGCHeadroomEvery is keepGCHeadroom with a tick of every.
func keepGCHeadroomEvery(ctx context.Context, log *slog.Logger, every time.Duration) {
	if os.Getenv("GOGC") != "" {
		return
	}
	samples := gcSamples()
	if name := readMetrics(samples); name != "" {
		log.Warn("GC headroom not kept: the runtime lacks a metric", "metric", name)
		return
	}
	const base = 100
	var rate allocRate
	current := base
	t := time.NewTicker(every)
	defer t.Stop()
	defer debug.SetGCPercent(base)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		// The time of the read, not the tick's: under load the two
		// differ, and the rate is measured over ten of them.
		now := time.Now()
		scanned := samples[0].Value.Uint64() + samples[1].Value.Uint64() + samples[2].Value.Uint64()
		byRate := rateHeadroom(rate.add(now, samples[3].Value.Uint64()), scanned)
		// When the rate falls the percentage falls with it: a heap
		// already past the lower goal is collected at the next
		// allocation that checks the trigger, not when it reaches the
		// higher one.
		if pct := gcPercentFor(scanned, byRate, base); pct != current {
			debug.SetGCPercent(pct)
			current = pct
		}
	}
}

// gcSamples are the metrics keepGCHeadroom reads: what the last collection
// scanned (live heap, stacks, globals), and the bytes allocated so far.
func gcSamples() []metrics.Sample {
	return []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"}, {Name: "/gc/heap/allocs:bytes"},
	}
}

// readMetrics reads samples (metrics.Read) and returns the name of the
// first that the runtime does not supply as a uint64 ("" when it supplies
// them all).
func readMetrics(samples []metrics.Sample) string {
	metrics.Read(samples)
	for _, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return s.Name
		}
	}
	return ""
}
