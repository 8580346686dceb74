package auth

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"switchboard/xmpp/xmpptest"
)

func newFakeClock() *xmpptest.Clock { return xmpptest.NewClock(time.Unix(1_700_000_000, 0)) }

func TestThrottleBackoff(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(time.Second, 8*time.Second, clock.Now)
	const addr = "192.0.2.1"
	want := []time.Duration{0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := th.Delay(addr); got != w {
			t.Fatalf("after %d failures: Delay = %v, want %v", i, got, w)
		}
		th.Failed(addr)
		clock.Advance(time.Second)
	}
	if got := th.Delay("192.0.2.2"); got != 0 {
		t.Errorf("other address: Delay = %v, want 0", got)
	}
	th.Succeeded(addr)
	if got := th.Delay(addr); got != 0 {
		t.Errorf("after success: Delay = %v, want 0", got)
	}
	th.Failed(addr)
	if got := th.Delay(addr); got != time.Second {
		t.Errorf("failure after success: Delay = %v, want 1s", got)
	}
}

func TestThrottleExpiry(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(time.Second, 10*time.Second, clock.Now)
	th.Failed("a")
	th.Failed("a")
	clock.Advance(20 * time.Second)
	th.Failed("b")
	clock.Advance(20*time.Second - 1) // a: 40s-1ns since its last failure
	if got := th.Delay("a"); got != 2*time.Second {
		t.Fatalf("before expiry: Delay = %v, want 2s", got)
	}
	clock.Advance(1)
	if got := th.Delay("a"); got != 0 {
		t.Fatalf("after 4·max: Delay = %v, want 0", got)
	}
	if got := th.Delay("b"); got != time.Second {
		t.Fatalf("b: Delay = %v, want 1s", got)
	}
	if n := len(th.entries); n != 1 {
		t.Errorf("%d entries remembered, want 1", n)
	}
	clock.Advance(time.Hour)
	th.Delay("c")
	if n := len(th.entries); n != 0 || th.order.Len() != 0 {
		t.Errorf("%d entries remembered after an hour, want 0", n)
	}
}

func TestThrottleCapacity(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(time.Second, time.Minute, clock.Now)
	for i := range maxThrottleEntries + 10 {
		th.Failed(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
		if i == 0 {
			th.Failed("10.0.0.0") // refresh does not add an entry
		}
	}
	if n := len(th.entries); n != maxThrottleEntries || th.order.Len() != n {
		t.Fatalf("%d entries (list %d), want %d", n, th.order.Len(), maxThrottleEntries)
	}
	if got := th.Delay("10.0.0.0"); got != 0 {
		t.Errorf("oldest entry not evicted: Delay = %v", got)
	}
	last := maxThrottleEntries + 9
	if got := th.Delay(fmt.Sprintf("10.0.%d.%d", last/256, last%256)); got != time.Second {
		t.Errorf("newest entry: Delay = %v, want 1s", got)
	}
}

func TestThrottleEvictsLeastRecentlyFailed(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(time.Second, time.Minute, clock.Now)
	th.limit = 2
	th.Failed("a")
	th.Failed("b")
	th.Failed("a") // a is now the most recent
	th.Failed("c") // evicts b
	if th.Delay("b") != 0 || th.Delay("a") != 2*time.Second || th.Delay("c") != time.Second {
		t.Errorf("Delay a=%v b=%v c=%v", th.Delay("a"), th.Delay("b"), th.Delay("c"))
	}
}

func TestThrottleEdgeCases(t *testing.T) {
	clock := newFakeClock()
	t.Run("disabled", func(t *testing.T) {
		th := NewThrottle(0, time.Minute, clock.Now)
		th.Failed("a")
		if got := th.Delay("a"); got != 0 {
			t.Errorf("Delay = %v, want 0", got)
		}
	})
	t.Run("max below base", func(t *testing.T) {
		th := NewThrottle(time.Minute, time.Second, clock.Now)
		th.Failed("a")
		th.Failed("a")
		if got := th.Delay("a"); got != time.Minute {
			t.Errorf("Delay = %v, want 1m", got)
		}
	})
	t.Run("huge max", func(t *testing.T) {
		th := NewThrottle(time.Nanosecond, math.MaxInt64, clock.Now)
		for range 200 {
			th.Failed("a")
		}
		if got := th.Delay("a"); got != math.MaxInt64 {
			t.Errorf("Delay = %v, want max", got)
		}
	})
	t.Run("nil clock", func(t *testing.T) {
		th := NewThrottle(time.Second, time.Minute, nil)
		th.Failed("a")
		if got := th.Delay("a"); got != time.Second {
			t.Errorf("Delay = %v, want 1s", got)
		}
	})
	t.Run("succeeded unknown", func(t *testing.T) {
		th := NewThrottle(time.Second, time.Minute, clock.Now)
		th.Succeeded("nobody")
	})
}

func TestThrottleConcurrent(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(time.Millisecond, time.Second, clock.Now)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				addr := fmt.Sprintf("198.51.100.%d", (g*500+i)%50)
				th.Failed(addr)
				th.Delay(addr)
				if i%7 == 0 {
					th.Succeeded(addr)
				}
				clock.Advance(time.Millisecond)
			}
		})
	}
	wg.Wait()
	if n := len(th.entries); n > 50 || th.order.Len() != n {
		t.Errorf("%d entries, list %d", n, th.order.Len())
	}
}
