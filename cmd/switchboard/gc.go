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

// keepGCHeadroom sets the GC percentage from the live heap after each
// collection (gcHeadroom), until ctx ends. An explicit GOGC in the
// environment is the operator's choice and is left alone.
func keepGCHeadroom(ctx context.Context) {
	if os.Getenv("GOGC") != "" {
		return
	}
	const base = 100
	samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}}
	var cycles uint64
	current := base
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	defer debug.SetGCPercent(base)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		if samples[0].Value.Kind() != metrics.KindUint64 || samples[1].Value.Kind() != metrics.KindUint64 {
			return // metrics unsupported: keep the default
		}
		if c := samples[0].Value.Uint64(); c == cycles {
			continue
		} else {
			cycles = c
		}
		if pct := gcPercentFor(samples[1].Value.Uint64(), gcHeadroom, base); pct != current {
			debug.SetGCPercent(pct)
			current = pct
		}
	}
}
