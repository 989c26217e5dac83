package router

import (
	"context"
	"sync"
	"time"
)

// Bounds of the re-read of the clients secret that an unknown client key
// forces.
const (
	// DefaultRereadInterval is the least time between two forced reads of
	// the clients secret. Keys that no client has cannot make the router
	// read its store more often than this, however many arrive.
	DefaultRereadInterval = time.Second
	// rereadTimeout bounds one forced read, for every request waiting on
	// it.
	rereadTimeout = 5 * time.Second
	// rereadMaxWait is the longest a request waits for the next forced
	// read to start.
	rereadMaxWait = 2 * time.Second
)

// rereader forces reads of one secret on behalf of many requests: at most
// one read per interval, shared by every request that arrived before it
// started. A request that finds the next read due later than maxWait from
// now does not wait for it.
type rereader struct {
	// read re-reads the secret, bounded by ctx.
	read     func(ctx context.Context)
	interval time.Duration
	maxWait  time.Duration

	mu sync.Mutex
	// pending is the next read, which requests join, or nil when none is
	// scheduled.
	pending *rereadFlight
	// started is when the last read started, the zero time before the
	// first.
	started time.Time
}

// rereadFlight is one scheduled read. done is closed when it has ended.
type rereadFlight struct{ done chan struct{} }

// reread waits for a read of the secret that starts after the call, and
// reports whether one ended before ctx did. It returns false at once when
// the next read is more than maxWait away.
func (r *rereader) reread(ctx context.Context) bool {
	f := r.join(time.Now())
	if f == nil {
		return false
	}
	select {
	case <-f.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// join returns the pending read, scheduling one if there is none.
func (r *rereader) join(now time.Time) *rereadFlight {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending != nil {
		return r.pending
	}
	at := now
	if !r.started.IsZero() {
		at = later(now, r.started.Add(r.interval))
	}
	if at.Sub(now) > r.maxWait {
		return nil
	}
	f := &rereadFlight{done: make(chan struct{})}
	r.pending = f
	time.AfterFunc(at.Sub(now), func() { r.run(f) })
	return f
}

// run starts f's read. Requests that arrive from now on join the next one,
// since this read may have begun before their key was added.
func (r *rereader) run(f *rereadFlight) {
	r.mu.Lock()
	r.pending = nil
	r.started = time.Now()
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), rereadTimeout)
	defer cancel()
	r.read(ctx)
	close(f.done)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
