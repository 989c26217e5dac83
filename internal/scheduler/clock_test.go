package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// hangGuard fails a test that waits this long for an event. No test uses
// it to time the scheduler: it only turns a hang into a failure.
const hangGuard = 20 * time.Second

// maxUnreadTimers bounds the After calls a fakeClock keeps for the test.
// Tests read each one, so reaching it means a test lost track of them.
const maxUnreadTimers = 1000

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a Clock that moves only when the test advances it. It sends
// every After call to the test, so that a test advances the clock only once
// the scheduler waits on a timer, rather than guessing when it does.
type fakeClock struct {
	starts *startLog // may be nil

	mu      sync.Mutex
	now     time.Time
	pending []*fakeTimer // timers not yet fired, in any order

	// timers receives each After call with a positive duration, in the
	// order of the calls.
	timers chan *fakeTimer
}

// fakeTimer is one After call.
type fakeTimer struct {
	d  time.Duration
	at time.Time // when it fires
	// started is how many rotations the scheduler had started when it
	// called After; see startLog.
	started int
	ch      chan time.Time
}

// newClock returns a fakeClock set to now. starts, if not nil, is the
// scheduler's log handler, counted at each After call.
func newClock(now time.Time, starts *startLog) *fakeClock {
	return &fakeClock{starts: starts, now: now, timers: make(chan *fakeTimer, maxUnreadTimers)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives once the test advances the clock by
// d. A duration of zero or less fires at once and is not sent to the test,
// because the scheduler does not wait on it.
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	tm := &fakeTimer{d: d, at: c.now.Add(d), started: c.starts.count(), ch: ch}
	c.pending = append(c.pending, tm)
	select {
	case c.timers <- tm:
	default:
		panic(fmt.Sprintf("fakeClock: the test has not read the last %d After calls", maxUnreadTimers))
	}
	return ch
}

// Advance moves the clock by d and fires every timer due by then. The
// channels are buffered, so a timer fires even if the scheduler called
// After but has not reached its select yet. A timer of a select statement
// that the scheduler has already left fires into a channel it never reads.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.pending[:0]
	for _, tm := range c.pending {
		if tm.at.After(c.now) {
			kept = append(kept, tm)
			continue
		}
		tm.ch <- c.now
	}
	c.pending = kept
}

// blocked returns the next After call, in the order the scheduler made
// them. The scheduler calls After as it selects on the timer, so from then
// on it is blocked until the timer fires or something else wakes it: a
// finished rotation or a cancelled context.
func (c *fakeClock) blocked(t *testing.T) *fakeTimer {
	t.Helper()
	select {
	case tm := <-c.timers:
		return tm
	case <-time.After(hangGuard):
		t.Fatal("the scheduler never waited on a timer")
		return nil
	}
}

// advanceUntilStarted advances the clock by step each time the scheduler
// waits on a timer, starting from from, until a pass starts a rotation. It
// returns the timer the scheduler waits on after that pass and the secrets
// the pass started. Call it only while no rotation is in flight, so that
// only the clock can wake the scheduler and each advance runs one pass.
func (c *fakeClock) advanceUntilStarted(t *testing.T, from *fakeTimer, step time.Duration) (*fakeTimer, []string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for tm := from; time.Now().Before(deadline); {
		c.Advance(step)
		next := c.blocked(t)
		if next.started > tm.started {
			return next, c.starts.between(tm.started, next.started)
		}
		tm = next
	}
	t.Fatal("no rotation started")
	return nil, nil
}

// startLog is a slog.Handler that passes every record on and records the
// secrets whose rotation the scheduler starts. The scheduler logs
// "rotation due" on its own goroutine right before it starts the
// rotation's goroutine. So when the scheduler next calls After, the record
// holds every rotation that its pass started, even one whose RotateNow has
// not run yet. That makes "no rotation started" something a test can check
// at an event rather than after a wait.
type startLog struct {
	next slog.Handler
	rec  *startRecord // shared with the handlers WithAttrs and WithGroup return
}

type startRecord struct {
	mu  sync.Mutex
	ids []string
}

// newStartLog returns a startLog that passes records on to next.
func newStartLog(next slog.Handler) *startLog {
	return &startLog{next: next, rec: &startRecord{}}
}

func (h *startLog) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo || h.next.Enabled(ctx, level)
}

func (h *startLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "rotation due" {
		h.rec.add(r)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *startLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &startLog{next: h.next.WithAttrs(attrs), rec: h.rec}
}

func (h *startLog) WithGroup(name string) slog.Handler {
	return &startLog{next: h.next.WithGroup(name), rec: h.rec}
}

func (r *startRecord) add(rec slog.Record) {
	id := "?"
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "secret_id" {
			id = a.Value.String()
			return false
		}
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
}

// count returns how many rotations the scheduler has started, or zero for
// a nil startLog.
func (h *startLog) count() int {
	if h == nil {
		return 0
	}
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	return len(h.rec.ids)
}

// between returns the secrets of the rotations started from the from-th
// to before the to-th, sorted.
func (h *startLog) between(from, to int) []string {
	if h == nil {
		return nil
	}
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	return slices.Sorted(slices.Values(h.rec.ids[from:to]))
}

// receive returns the next value from ch, failing the test if none comes
// within hangGuard.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("no %s", what)
		var zero T
		return zero
	}
}
