package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram counts durations in log-linear buckets: exact below 64 ns,
// then 64 buckets per power of two, so a reported percentile is at most
// 1/64 (1.6 %) above the true value. Record is lock-free and safe for
// concurrent use; the zero value is ready.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // nanoseconds
	max    atomic.Uint64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	// histMaxShift covers values up to 2^(histMaxShift+histSubBits+1) ns
	// (about 39 hours); larger ones fall into the last bucket.
	histMaxShift = 40
	histBuckets  = (histMaxShift + 2) * histSub
)

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1 // v>>shift is in [64,128)
	if shift > histMaxShift {
		return histBuckets - 1
	}
	return (shift+1)*histSub + int(v>>shift) - histSub
}

// histUpper is the largest value of bucket i.
func histUpper(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	m := uint64(i%histSub + histSub)
	return (m+1)<<shift - 1
}

// Record adds one observation; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[histIndex(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max is the largest observation.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean is the average observation, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Percentile returns the smallest bucket bound at or below which at least
// p percent of the observations lie (nearest-rank), never above Max; 0
// when empty.
func (h *Histogram) Percentile(p float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(histUpper(i), h.max.Load()))
		}
	}
	return h.Max()
}

// Metric is one named result value. Names carry their unit
// ("latency_p99_ms", "logins_per_s").
type Metric struct {
	Name  string
	Value float64
}

// Metrics is an ordered list of results.
type Metrics []Metric

// Add appends a metric.
func (m *Metrics) Add(name string, v float64) { *m = append(*m, Metric{name, v}) }

// AddLatency appends the p50, p99 and max of h in milliseconds, prefixed.
func (m *Metrics) AddLatency(prefix string, h *Histogram) {
	m.Add(prefix+"_p50_ms", ms(h.Percentile(50)))
	m.Add(prefix+"_p99_ms", ms(h.Percentile(99)))
	m.Add(prefix+"_max_ms", ms(h.Max()))
}

// Get returns the named metric's value.
func (m Metrics) Get(name string) (float64, bool) {
	for _, x := range m {
		if x.Name == name {
			return x.Value, true
		}
	}
	return 0, false
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// perSecond is n divided by d in seconds, 0 for an empty interval.
func perSecond(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}
