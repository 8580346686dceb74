package xmpp

import (
	"context"
	"sync"
)

// DeferredSession is a Session whose writer a delivering goroutine may
// start itself once it has routed its stanza (see Deferred), instead of
// the session starting one at each Deliver.
type DeferredSession interface {
	Session
	// DeliverDeferred queues st like Deliver. If it leaves starting its
	// writer to d, it adds itself to d, which then calls Flush once.
	DeliverDeferred(st *Stanza, d *Deferred) bool
	// Flush starts writing what was queued. With now, it writes on the
	// calling goroutine as much as the transport takes without waiting
	// and leaves only the rest to a writer goroutine.
	Flush(now bool)
}

// Deferred collects, while one stanza is routed, the sessions that left
// starting their writers to the goroutine routing it. A connection's ingress
// opens it around each stanza it routes and closes it after: when its read
// buffer holds nothing more behind that stanza, it writes to the recipients
// itself (at a steady rate, a writer goroutine's start and wakeup per
// stanza are saved); otherwise it starts their writers, which then take
// together what the stanzas behind it add.
//
// Open and Close are the owner's; Add is safe from any goroutine: a
// context that carries d and reaches another goroutine finds it closed (and
// delivers as Deliver does), or open, and then the owner's Close flushes
// what that goroutine added.
type Deferred struct {
	mu      sync.Mutex
	open    bool
	pending []DeferredSession
	spare   []DeferredSession // the owner's: the list last flushed, reused
}

// directMax is the most recipients a Close writes to itself; beyond it,
// their writers run in parallel.
const directMax = 4

// maxSpare bounds the list a Deferred keeps for reuse: one large fan-out
// does not pin its array for the connection's life.
const maxSpare = 64

// Open starts collecting.
func (d *Deferred) Open() {
	d.mu.Lock()
	d.open = true
	d.mu.Unlock()
}

// Add defers s's writer to d's Close; false when d is not open (s then
// starts its writer itself).
func (d *Deferred) Add(s DeferredSession) bool {
	d.mu.Lock()
	ok := d.open
	if ok {
		d.pending = append(d.pending, s)
	}
	d.mu.Unlock()
	return ok
}

// Close stops collecting and flushes every session added since Open:
// writing now (on this goroutine) when idle says nothing more waits to be
// routed and there are at most directMax of them.
func (d *Deferred) Close(idle bool) {
	d.mu.Lock()
	d.open = false
	list := d.pending
	d.pending = d.spare[:0]
	d.mu.Unlock()
	now := idle && len(list) <= directMax
	i := 0
	defer func() {
		if i < len(list) {
			// A Flush panicked: the sessions after it go back to
			// pending, for the owner's next Close; spare is
			// pending's array now, so it is not reused. The one that
			// panicked keeps what it queued until its next delivery
			// or close starts its writer, unless it panicked while
			// standing in for the writer (marked writing, so no
			// writer starts and its close waits for good): only
			// system calls run there.
			d.mu.Lock()
			d.pending = append(d.pending, list[i+1:]...)
			d.mu.Unlock()
			d.spare = nil
		}
	}()
	for ; i < len(list); i++ {
		list[i].Flush(now)
		list[i] = nil
	}
	if cap(list) <= maxSpare {
		d.spare = list[:0]
	} else {
		d.spare = nil
	}
}

type deferredKey struct{}

// WithDeferred returns a context whose deliveries (DeliverIn) may be
// deferred to d.
func WithDeferred(ctx context.Context, d *Deferred) context.Context {
	return context.WithValue(ctx, deferredKey{}, d)
}

// DeliverIn delivers st to s, deferring the start of s's writer to the
// Deferred that ctx carries, if any and if s supports it. It is for a
// stanza whose route does nothing after its delivery that may wait (a
// commit, say): the session is written only once the route returns.
func DeliverIn(ctx context.Context, s Session, st *Stanza) bool {
	if ds, ok := s.(DeferredSession); ok {
		if d, _ := ctx.Value(deferredKey{}).(*Deferred); d != nil {
			return ds.DeliverDeferred(st, d)
		}
	}
	return s.Deliver(st)
}
