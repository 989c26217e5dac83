package reread

import (
	"context"
	"sync"
	"testing"
	"time"
)

// deadline bounds every wait, only to fail a hang.
const deadline = 30 * time.Second

// fakeClock is a clock that moves only when the test advances it. Its
// timers fire in goroutines of their own, as time.AfterFunc's do.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
	// armed receives one value each time a timer is set.
	armed chan struct{}
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), armed: make(chan struct{}, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) {
	c.mu.Lock()
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), f: f})
	c.mu.Unlock()
	c.armed <- struct{}{}
}

// advance moves the clock by d and fires the timers that are then due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		due = append(due, t.f)
	}
	c.timers = kept
	c.mu.Unlock()
	for _, f := range due {
		go f()
	}
}

// counter is a read that returns how many reads have started, so a
// result names the read it came from.
type counter struct {
	mu    sync.Mutex
	reads int
	// block, if set, is received from before a read returns.
	block chan struct{}
}

func (c *counter) read(ctx context.Context) int {
	c.mu.Lock()
	c.reads++
	n := c.reads
	c.mu.Unlock()
	if c.block != nil {
		select {
		case <-c.block:
		case <-ctx.Done():
		}
	}
	return n
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

func newTestGate(interval time.Duration, reads *counter) (*Gate[int], *fakeClock) {
	clock := newFakeClock()
	g := New(interval, deadline, reads.read)
	g.now, g.afterFunc = clock.Now, clock.AfterFunc
	return g, clock
}

// waitAsync calls Wait in a goroutine and returns its result's channel.
func waitAsync(g *Gate[int], maxWait time.Duration) chan int {
	got := make(chan int, 1)
	go func() {
		n, ok := g.Wait(context.Background(), maxWait)
		if !ok {
			n = -1
		}
		got <- n
	}()
	return got
}

func receive(t *testing.T, ch chan int) int {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(deadline):
		t.Fatal("Wait did not return")
	}
	return 0
}

func waitArmed(t *testing.T, clock *fakeClock) {
	t.Helper()
	select {
	case <-clock.armed:
	case <-time.After(deadline):
		t.Fatal("no read was scheduled")
	}
}

func TestFirstReadStartsAtOnce(t *testing.T) {
	reads := &counter{}
	g, _ := newTestGate(time.Second, reads)
	if n, ok := g.Wait(context.Background(), 0); !ok || n != 1 {
		t.Errorf("Wait = %d, %v; want read 1", n, ok)
	}
}

func TestWaitGetsReadStartedAfterIt(t *testing.T) {
	reads := &counter{}
	g, clock := newTestGate(time.Second, reads)
	if n, _ := g.Wait(context.Background(), time.Minute); n != 1 {
		t.Fatalf("first Wait got read %d, want 1", n)
	}

	// Read 1 started before these calls, so they wait for read 2, which
	// starts when the interval ends, and share it.
	first := waitAsync(g, time.Minute)
	waitArmed(t, clock)
	second := g.join(time.Minute)
	clock.advance(999 * time.Millisecond)
	if n := reads.count(); n != 1 {
		t.Errorf("%d reads before the interval ended, want 1", n)
	}
	clock.advance(time.Millisecond)
	if n := receive(t, first); n != 2 {
		t.Errorf("first waiter got read %d, want 2", n)
	}
	<-second.done
	if second.result != 2 {
		t.Errorf("second waiter got read %d, want 2", second.result)
	}
	if n := reads.count(); n != 2 {
		t.Errorf("%d reads, want 2", n)
	}
}

func TestWaitDuringReadJoinsNext(t *testing.T) {
	reads := &counter{block: make(chan struct{})}
	g, clock := newTestGate(time.Second, reads)
	first := waitAsync(g, time.Minute)
	for reads.count() == 0 {
		time.Sleep(time.Millisecond)
	}

	// Read 1 is in flight: a call now may see a change it missed.
	late := waitAsync(g, time.Minute)
	waitArmed(t, clock)
	reads.block <- struct{}{}
	if n := receive(t, first); n != 1 {
		t.Errorf("first waiter got read %d, want 1", n)
	}
	clock.advance(time.Second)
	reads.block <- struct{}{}
	if n := receive(t, late); n != 2 {
		t.Errorf("waiter that came during read 1 got read %d, want 2", n)
	}
}

func TestWaitPastMaxWaitReturnsAtOnce(t *testing.T) {
	reads := &counter{}
	g, clock := newTestGate(time.Minute, reads)
	g.Wait(context.Background(), 0)
	clock.advance(30 * time.Second)
	if _, ok := g.Wait(context.Background(), 29*time.Second); ok {
		t.Error("Wait succeeded with the next read 30s away and a maximum wait of 29s")
	}
	if n := reads.count(); n != 1 {
		t.Errorf("%d reads, want 1", n)
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	reads := &counter{}
	g, clock := newTestGate(time.Second, reads)
	g.Wait(context.Background(), 0)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan bool, 1)
	go func() {
		_, ok := g.Wait(ctx, time.Minute)
		got <- ok
	}()
	waitArmed(t, clock)
	cancel()
	select {
	case ok := <-got:
		if ok {
			t.Error("Wait succeeded after its context ended")
		}
	case <-time.After(deadline):
		t.Fatal("Wait did not return after its context ended")
	}

	// The read still runs for the requests that wait on.
	next := g.join(time.Minute)
	clock.advance(time.Second)
	<-next.done
	if next.result != 2 {
		t.Errorf("a request waiting on got read %d, want 2", next.result)
	}
}
