// Package reread runs the forced reads of a secret that requests ask for
// when the cached value may be out of date: a provider rejected its key,
// or a client sent a key that the cached client list lacks. A Gate starts
// at most one read per interval and shares it among every request that
// asked before it started, so that requests cannot turn into back-to-back
// store reads. A request never gets a read that started before it asked,
// because that read may predate the change the request needs to see.
package reread

import (
	"context"
	"sync"
	"time"
)

// Gate runs the forced reads of one secret. The zero Gate is not usable:
// call New. A Gate is safe for concurrent use.
type Gate[T any] struct {
	// read reads the secret, bounded by ctx, and returns what the waiting
	// requests get.
	read     func(ctx context.Context) T
	interval time.Duration
	timeout  time.Duration
	// now and afterFunc are time.Now and time.AfterFunc outside tests.
	now       func() time.Time
	afterFunc func(time.Duration, func())

	mu sync.Mutex
	// pending is the next read, which requests join, or nil when none is
	// scheduled.
	pending *flight[T]
	// started is when the last read started, the zero time before the
	// first.
	started time.Time
}

// flight is one scheduled read. done is closed when it has ended; result
// is set before.
type flight[T any] struct {
	done   chan struct{}
	result T
}

// New returns a Gate whose reads start at least interval apart and are
// each bounded by timeout. read runs in a goroutine of its own, apart from
// the requests that wait for it, so that one of them going away does not
// cancel it for the others.
func New[T any](interval, timeout time.Duration, read func(ctx context.Context) T) *Gate[T] {
	return &Gate[T]{
		read: read, interval: interval, timeout: timeout,
		now:       time.Now,
		afterFunc: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
	}
}

// Wait waits for a read that starts after the call and returns its result.
// The read starts at once unless the last one started less than interval
// ago; it then starts when the interval ends. Wait returns false at once
// when that is more than maxWait from now, and when ctx ends before the
// read does.
func (g *Gate[T]) Wait(ctx context.Context, maxWait time.Duration) (T, bool) {
	var zero T
	f := g.join(maxWait)
	if f == nil {
		return zero, false
	}
	select {
	case <-f.done:
		return f.result, true
	case <-ctx.Done():
		return zero, false
	}
}

// join returns the pending read, scheduling one if there is none, or nil
// if the next read cannot start within maxWait.
func (g *Gate[T]) join(maxWait time.Duration) *flight[T] {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending != nil {
		return g.pending
	}
	now := g.now()
	delay := time.Duration(0)
	if !g.started.IsZero() {
		delay = max(0, g.started.Add(g.interval).Sub(now))
	}
	if delay > maxWait {
		return nil
	}
	f := &flight[T]{done: make(chan struct{})}
	g.pending = f
	if delay == 0 {
		g.startLocked(f)
		return f
	}
	g.afterFunc(delay, func() {
		g.mu.Lock()
		g.startLocked(f)
		g.mu.Unlock()
	})
	return f
}

// startLocked starts f's read. Requests that ask from now on join the next
// read, since this one may start before the change they need to see.
func (g *Gate[T]) startLocked(f *flight[T]) {
	g.pending = nil
	g.started = g.now()
	go g.run(f)
}

func (g *Gate[T]) run(f *flight[T]) {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	f.result = g.read(ctx)
	close(f.done)
}
