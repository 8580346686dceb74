package auth

import (
	"container/list"
	"math"
	"sync"
	"time"
)

// maxThrottleEntries bounds the number of addresses a Throttle remembers.
const maxThrottleEntries = 10_000

// Throttle slows down repeated failed logins from one address with an
// exponential back-off. It is safe for concurrent use and its memory is
// bounded: an address is forgotten after 4·max without a failure, and when
// more than 10,000 addresses are remembered the one that failed least
// recently is forgotten.
//
// Addresses are opaque keys; pass the IP address without the port (and
// consider keying IPv6 clients by their /64).
type Throttle struct {
	base, max time.Duration
	ttl       time.Duration // 4·max: how long an entry outlives its last failure
	now       func() time.Time
	limit     int

	mu      sync.Mutex
	entries map[string]*list.Element // of *throttleEntry
	order   *list.List               // least recently failed first
}

type throttleEntry struct {
	addr     string
	failures int
	last     time.Time
}

// NewThrottle returns a Throttle whose delay starts at base and doubles with
// each consecutive failure up to max. now is the clock (nil means
// time.Now). base <= 0 disables throttling; max < base is raised to base.
func NewThrottle(base, max time.Duration, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	if max < base {
		max = base
	}
	ttl := time.Duration(math.MaxInt64)
	if max <= math.MaxInt64/4 {
		ttl = 4 * max
	}
	return &Throttle{
		base:    base,
		max:     max,
		ttl:     ttl,
		now:     now,
		limit:   maxThrottleEntries,
		entries: make(map[string]*list.Element),
		order:   list.New(),
	}
}

// Delay returns how long to wait before processing an authentication attempt
// from addr: 0 without recent failures, otherwise base·2^(failures-1) capped
// at max.
func (t *Throttle) Delay(addr string) time.Duration {
	if t.base <= 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(t.now())
	el, ok := t.entries[addr]
	if !ok {
		return 0
	}
	return t.backoff(el.Value.(*throttleEntry).failures)
}

// Failed records a failed authentication attempt from addr.
func (t *Throttle) Failed(addr string) {
	if t.base <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.expire(now)
	if el, ok := t.entries[addr]; ok {
		e := el.Value.(*throttleEntry)
		if e.failures < 64 {
			e.failures++
		}
		e.last = now
		t.order.MoveToBack(el)
		return
	}
	for t.order.Len() >= t.limit {
		t.remove(t.order.Front())
	}
	t.entries[addr] = t.order.PushBack(&throttleEntry{addr: addr, failures: 1, last: now})
}

// Succeeded forgets the failures of addr.
func (t *Throttle) Succeeded(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.entries[addr]; ok {
		t.remove(el)
	}
}

func (t *Throttle) backoff(failures int) time.Duration {
	d := t.base
	for i := 1; i < failures && d < t.max; i++ {
		if d > t.max/2 {
			return t.max
		}
		d *= 2
	}
	return min(d, t.max)
}

// expire forgets the entries without a failure for 4·max. Entries are
// ordered by their last failure, so it stops at the first live one.
func (t *Throttle) expire(now time.Time) {
	for el := t.order.Front(); el != nil; el = t.order.Front() {
		if now.Sub(el.Value.(*throttleEntry).last) < t.ttl {
			return
		}
		t.remove(el)
	}
}

func (t *Throttle) remove(el *list.Element) {
	t.order.Remove(el)
	delete(t.entries, el.Value.(*throttleEntry).addr)
}
