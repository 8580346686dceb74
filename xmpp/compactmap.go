package xmpp

// MapPeak is the most entries a map held since it was last compacted
// (CompactMap). Go's maps never give back the memory of deleted entries: a
// map that held the sessions of 10,000 users keeps that size after they
// left, and every garbage collection scans it.
type MapPeak struct{ n int }

// Grew records the map's length after an insertion.
func (p *MapPeak) Grew(n int) {
	if n > p.n {
		p.n = n
	}
}

// minCompactPeak is the least peak a map is compacted after: below it the
// memory kept is a few tens of KiB.
const minCompactPeak = 1024

// CompactMap returns m, or, once m holds less than a quarter of its peak
// (of at least minCompactPeak entries), a copy sized for what it holds,
// which becomes the new peak. Between two copies at least three entries
// were deleted per entry copied, so the copying costs O(1) per deletion.
// Call it after a deletion, holding whatever guards m, and keep the result.
func CompactMap[K comparable, V any](m map[K]V, p *MapPeak) map[K]V {
	if p.n < minCompactPeak || len(m) >= p.n/4 {
		return m
	}
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	p.n = len(c)
	return c
}
