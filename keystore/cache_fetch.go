package keystore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// How the cache refreshes.
//
// Two things start a background fetch, and whichever comes first wins:
//
//   - A timer per secret, set when a fetch lands to fire at the next refresh
//     point. It keeps a secret fresh when reads are rare, so the first read
//     after a quiet hour does not get an hour-old value. It also sets the
//     entry's read mode, which decides whether readers on the real clock
//     may serve the snapshot without reading the clock.
//   - A read on the slow path past the refresh point. It catches a late
//     timer (a thawed Lambda, a test's fake clock), and while the fetch runs
//     it costs each reader one atomic load more than a hit.
//
// Both go through join, which allows one fetch per secret at a time, so
// the two never fetch twice. A fetch that lands already past its refresh
// point, because it took longer than the refresh interval, leaves no
// timer to set, so it queues the next fetch itself.
//
// With SyncPastExpiry neither runs: a process that AWS Lambda froze runs
// no timer, and a fetch in flight when it froze resumes after the thaw
// with what it read before. Only reads past the soft expiry, first reads
// and Refresh fetch, and their callers wait for the result.
//
// A caller that waits does not take just any fetch in flight. A read of a
// value past its soft expiry needs one that started at or after it. Any
// read needs one that started less than FetchTimeout ago, because an older
// fetch has outlived its own deadline: the process stopped while it ran,
// as it does in a Lambda freeze. Otherwise the caller waits for the fetch
// queued behind the running one, as Refresh does.

// maxFetchAttempts bounds how often fetch reads the AWSCURRENT and
// AWSPREVIOUS pair again when a rotation moved the labels between the two
// reads.
const maxFetchAttempts = 3

// firstRetryDelay is the wait after the first failed fetch; it doubles
// with each further failure, up to the refresh interval.
const firstRetryDelay = time.Second

// Read modes of an entry. On the real clock a reader trusts them without
// reading the clock; a caller's Now or SyncPastExpiry makes it check.
const (
	// readCheck sends reads to the slow path, which reads the clock. It is
	// the mode before the first fetch, past MaxStale and after Close.
	readCheck uint32 = iota
	// readHit serves the snapshot: from a publish to its slowAt.
	readHit
	// readRefreshing serves the snapshot while a fetch runs: from the
	// refresh point to the publish, or to MaxStale.
	readRefreshing
)

// cacheEntry is the state of one secret.
type cacheEntry struct {
	id   string
	snap atomic.Pointer[cacheSnapshot]
	// mode is one of the read modes, set by publish, the timer and Close.
	mode atomic.Uint32
	// fetching is set while a fetch of this secret runs, so readers past
	// the refresh point can see that one runs without taking mu.
	fetching atomic.Bool

	// mu guards running, queued and timer, and serializes publishing.
	mu sync.Mutex
	// running is the fetch in flight, nil when none is.
	running *flight
	// queued is the fetch that starts when running ends, for Refresh calls
	// made while running was in flight.
	queued *flight
	timer  *time.Timer
}

// cacheSnapshot is the state of a secret that readers see, never modified
// after it is published.
type cacheSnapshot struct {
	// keys is the last good value; its Fetched is zero before the first
	// successful fetch.
	keys Keys
	// next is the time from which a read starts a fetch: the jittered
	// refresh point after a success, the retry time after a failure.
	next time.Time
	// expiry is the soft expiry and deadline the end of MaxStale, both
	// counted from keys.Fetched. A zero deadline means no usable value.
	expiry, deadline time.Time
	// slowAt is the earlier of next and deadline: from then on, reads
	// take the slow path.
	slowAt time.Time

	// err is the error of the last failed fetch since the last success,
	// and failing the number of such failures and the time of the first.
	err          error
	failing      int
	failingSince time.Time
	// refreshes and failures count all fetches that landed.
	refreshes, failures uint64
}

// flight is one fetch; done is closed once keys and err are set.
type flight struct {
	done chan struct{}
	// started is when the fetch began, zero while it is queued.
	started time.Time
	keys    Keys
	err     error
}

// fetchNeed is the condition that a fetch in flight must meet to serve a
// caller. The zero value accepts any.
type fetchNeed struct {
	// since rules out a fetch that started before it.
	since time.Time
	// next rules out the fetch in flight however recent: Refresh needs one
	// that starts after its call.
	next bool
}

// servedBy reports whether the running fetch f can serve the caller.
func (n fetchNeed) servedBy(f *flight) bool {
	return !n.next && !f.started.Before(n.since)
}

// readNeed returns what a read of s at now needs from a fetch in flight:
// one that started less than FetchTimeout ago and, once s has a value, at
// or after its soft expiry. s may be nil.
func (c *Cache) readNeed(s *cacheSnapshot, now time.Time) fetchNeed {
	since := now.Add(-c.opts.FetchTimeout)
	if s != nil && since.Before(s.expiry) {
		since = s.expiry
	}
	return fetchNeed{since: since}
}

// await fetches e through its single flight and waits for the result,
// bounded by ctx. A fetch in flight serves the caller only if it meets
// need. After Close, await fetches in the caller's goroutine.
func (c *Cache) await(ctx context.Context, e *cacheEntry, need fetchNeed) (Keys, error) {
	f := c.join(e, need)
	if f == nil {
		return c.fetchInline(ctx, e)
	}
	select {
	case <-f.done:
		return f.keys, f.err
	case <-ctx.Done():
		return Keys{}, &Error{Op: cacheOp, SecretID: e.id, Kind: ErrUnavailable, Err: ctx.Err(),
			Msg: "gave up waiting for the store; the fetch goes on in the background, so retry"}
	}
}

// join returns the fetch of e that a caller should wait for, starting it
// if none runs. If the running fetch does not meet need, it returns the
// queued fetch instead, which starts when the running one ends. It returns
// nil after Close.
func (c *Cache) join(e *cacheEntry, need fetchNeed) *flight {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running == nil {
		if !c.track() {
			return nil
		}
		e.running = &flight{done: make(chan struct{}), started: c.now()}
		e.fetching.Store(true)
		go c.fly(e, e.running)
		return e.running
	}
	if need.servedBy(e.running) {
		return e.running
	}
	if e.queued == nil {
		e.queued = &flight{done: make(chan struct{})}
	}
	return e.queued
}

// track counts a new fetch goroutine, unless the cache is closed.
func (c *Cache) track() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.wg.Add(1)
	return true
}

// refreshIfDue starts a background fetch of e if none runs and the
// snapshot is still past its refresh point. With SyncPastExpiry reads
// start no background fetch.
func (c *Cache) refreshIfDue(e *cacheEntry) {
	if c.opts.SyncPastExpiry || e.fetching.Load() {
		return
	}
	if s := e.snap.Load(); s != nil && before(c.now(), s.next) {
		return
	}
	c.join(e, fetchNeed{})
}

// fly runs f and then each fetch queued behind it.
func (c *Cache) fly(e *cacheEntry, f *flight) {
	defer c.wg.Done()
	for f != nil {
		ctx, cancel := context.WithTimeout(c.base, c.opts.FetchTimeout)
		f.keys, f.err = c.fetch(ctx, e.id, f.started)
		cancel()
		c.publish(e, f.started, f.keys, f.err)
		f = c.land(e, f)
	}
}

// land ends f, wakes its waiters and returns the queued fetch, which is
// now running, or nil.
func (c *Cache) land(e *cacheEntry, f *flight) *flight {
	e.mu.Lock()
	next := e.queued
	e.queued = nil
	e.running = next
	if next == nil {
		e.fetching.Store(false)
	} else {
		next.started = c.now()
	}
	e.mu.Unlock()
	close(f.done)
	return next
}

// fetchInline fetches e in the caller's goroutine, for reads after Close.
func (c *Cache) fetchInline(ctx context.Context, e *cacheEntry) (Keys, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.FetchTimeout)
	defer cancel()
	started := c.now()
	keys, err := c.fetch(ctx, e.id, started)
	c.publish(e, started, keys, err)
	return keys, err
}

// fetch reads AWSCURRENT and AWSPREVIOUS from the store, for a fetch that
// started at started. A rotation that completes between the two reads
// shows as AWSPREVIOUS on the version just read as AWSCURRENT; fetch then
// reads the pair again.
func (c *Cache) fetch(ctx context.Context, secretID string, started time.Time) (Keys, error) {
	for attempt := 1; ; attempt++ {
		current, err := c.store.Get(ctx, secretID, Current())
		if err != nil {
			return Keys{}, errCurrent(secretID, err)
		}
		previous, err := c.store.Get(ctx, secretID, ByStage(StagePrevious))
		if errors.Is(err, ErrNotFound) {
			previous, err = Version{}, nil
		}
		if err != nil {
			return Keys{}, err
		}
		keys := Keys{Current: current, Previous: previous, Fetched: started}
		if previous.VersionID != current.VersionID {
			return keys, nil
		}
		if attempt == maxFetchAttempts {
			// NOTE: labels that keep moving this fast are not a rotation
			// anyone can follow; serve the current version alone.
			keys.Previous = Version{}
			return keys, nil
		}
	}
}

// publish stores the outcome of a fetch that began at started as e's new
// snapshot, logs the first failure and the recovery, and sets the timer or
// queues the next fetch. A failed fetch keeps the last good value.
//
// The retry time after a failure counts from the fetch's start, as the
// refresh point does. So a fetch that a freeze held up and that failed
// after the thaw delays no read, because its failure is no evidence that
// the store fails now.
func (c *Cache) publish(e *cacheEntry, started time.Time, keys Keys, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := cacheSnapshot{}
	if old := e.snap.Load(); old != nil {
		s = *old
	}

	now := c.now()
	if err == nil {
		c.logRecovery(e.id, &s, keys, now)
		c.logVersion(e.id, &s, keys)
		s.keys = keys
		s.next = keys.Fetched.Add(c.jittered(c.opts.RefreshInterval))
		s.expiry = keys.Fetched.Add(c.opts.RefreshInterval)
		s.deadline = keys.Fetched.Add(c.opts.MaxStale)
		s.err, s.failing, s.failingSince = nil, 0, time.Time{}
		s.refreshes++
	} else {
		if s.failing == 0 {
			s.failingSince = now
		}
		s.err = err
		s.failing++
		s.failures++
		s.next = started.Add(c.jittered(c.retryDelay(s.failing)))
		c.logFailure(e.id, &s, now)
	}

	s.slowAt = s.next
	if s.deadline.Before(s.slowAt) {
		s.slowAt = s.deadline
	}
	e.snap.Store(&s)
	mode := readCheck
	if !c.closed.Load() && before(now, s.slowAt) {
		mode = readHit
	}
	e.mode.Store(mode)
	c.wake(e, &s, now)
	c.queueIfDue(e, &s, now)
}

// queueIfDue queues the next background fetch of e if s is already past
// its refresh point when it lands. That happens when the fetch took longer
// than the time to that point, which counts from the fetch's start, and
// then no timer is left to start the next one. Call it with e.mu held.
func (c *Cache) queueIfDue(e *cacheEntry, s *cacheSnapshot, now time.Time) {
	if c.opts.SyncPastExpiry || c.closed.Load() || before(now, s.next) {
		return
	}
	if e.running != nil && e.queued == nil {
		e.queued = &flight{done: make(chan struct{})}
	}
}

// wake sets e's timer for the next of s's refresh point and deadline that
// is still to come. Call it with e.mu held.
func (c *Cache) wake(e *cacheEntry, s *cacheSnapshot, now time.Time) {
	wait := time.Duration(-1)
	for _, t := range [2]time.Time{s.next, s.deadline} {
		if d := until(now, t); d > 0 && (wait < 0 || d < wait) {
			wait = d
		}
	}
	if wait > 0 {
		c.schedule(e, wait)
	}
}

// schedule sets e's timer to start a background fetch after d, unless
// SyncPastExpiry turns background fetches off. Call it with e.mu held.
func (c *Cache) schedule(e *cacheEntry, d time.Duration) {
	if c.closed.Load() || c.opts.SyncPastExpiry {
		return
	}
	if e.timer != nil {
		e.timer.Reset(d)
		return
	}
	e.timer = time.AfterFunc(d, func() { c.onTimer(e) })
}

// onTimer sets e's read mode for the time: refreshing from the refresh
// point, check from MaxStale. At the refresh point it also starts a
// background fetch. The timer may fire early by the cache's clock, which
// is not the timer's when a test sets Now; it is then set again for the
// time left.
func (c *Cache) onTimer(e *cacheEntry) {
	e.mu.Lock()
	s := e.snap.Load()
	now := c.now()
	due := !before(now, s.next)
	switch {
	case c.closed.Load() || !before(now, s.deadline):
		e.mode.Store(readCheck)
	case due:
		e.mode.Store(readRefreshing)
	}
	c.wake(e, s, now)
	e.mu.Unlock()

	if due && !e.fetching.Load() {
		c.join(e, fetchNeed{})
	}
}

// jittered shortens d by a random fraction of up to Jitter, so caches
// started together do not fetch together.
func (c *Cache) jittered(d time.Duration) time.Duration {
	if c.opts.Jitter <= 0 {
		return d
	}
	return d - time.Duration(rand.Float64()*c.opts.Jitter*float64(d))
}

// retryDelay is the wait after the nth consecutive failed fetch.
func (c *Cache) retryDelay(n int) time.Duration {
	d := firstRetryDelay << min(n-1, 20)
	return min(d, c.opts.RefreshInterval)
}

func (c *Cache) logFailure(secretID string, s *cacheSnapshot, now time.Time) {
	if c.closed.Load() && errors.Is(s.err, context.Canceled) {
		return // Close cancelled the fetch.
	}
	if s.failing > 1 {
		c.log.Debug("secret refresh failed again", "secret", secretID,
			"failures", s.failing, "retry_in", max(until(now, s.next), 0), "error", s.err)
		return
	}
	if s.keys.Fetched.IsZero() {
		c.log.Warn("secret fetch failed; there is no value to serve", "secret", secretID,
			"retry_in", max(until(now, s.next), 0), "error", s.err)
		return
	}
	c.log.Warn("secret refresh failed; serving the last good value", "secret", secretID,
		"version", s.keys.Current.VersionID, "age", since(now, s.keys.Fetched),
		"max_stale", c.opts.MaxStale, "retry_in", max(until(now, s.next), 0), "error", s.err)
}

func (c *Cache) logRecovery(secretID string, s *cacheSnapshot, keys Keys, now time.Time) {
	if s.failing == 0 {
		return
	}
	c.log.Info("secret refresh recovered", "secret", secretID,
		"version", keys.Current.VersionID, "failures", s.failing,
		"failing_for", since(now, s.failingSince))
}

// logVersion logs a change of the secret's AWSCURRENT version, so that an
// operator sees a rotation reach the cache, and the first read at debug
// level. s is the snapshot before keys.
func (c *Cache) logVersion(secretID string, s *cacheSnapshot, keys Keys) {
	old := s.keys.Current.VersionID
	switch {
	case s.keys.Fetched.IsZero():
		c.log.Debug("secret loaded", "secret", secretID, "version", keys.Current.VersionID)
	case old != keys.Current.VersionID:
		c.log.Info("secret version changed", "secret", secretID,
			"old_version", old, "new_version", keys.Current.VersionID)
	}
}

// cacheOp is the Op of the errors that the cache itself returns.
const cacheOp = "cache read"

func errEmptySecretID() *Error {
	return Errorf(ErrInvalidParameter, cacheOp, "", "the secret id is empty: name the secret to read")
}

// errCurrent words a failed read of AWSCURRENT. Not found means the secret
// is missing or has no value yet, which the router cannot serve.
func errCurrent(secretID string, err error) error {
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	return &Error{Op: cacheOp, SecretID: secretID, Stage: StageCurrent, Kind: ErrNotFound, Err: err,
		Msg: "no AWSCURRENT value to serve: check the secret id, and give the secret a value"}
}

// errTooStale reports that the last good value of s is past MaxStale.
func (c *Cache) errTooStale(secretID string, s *cacheSnapshot, now time.Time, cause error) *Error {
	age := roundAge(since(now, s.keys.Fetched))
	return &Error{Op: cacheOp, SecretID: secretID, Kind: ErrUnavailable, Err: cause,
		Msg: fmt.Sprintf("no usable value: last fetched %s ago, longer than the maximum staleness of %s; fix the store's availability or access",
			age, c.opts.MaxStale)}
}

// roundAge rounds an age for a message: to whole seconds from a minute on,
// to milliseconds below it, so that an age below a second does not show
// as 0s.
func roundAge(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// before reports whether now is before t by both the monotonic and the
// wall clock. The monotonic clock stops while the host is suspended, and
// the wall clock can be set back, so a time counts as passed as soon as
// either clock has reached it.
func before(now, t time.Time) bool {
	return now.Before(t) && now.Round(0).Before(t.Round(0))
}

// until returns the time from now to t by whichever of the monotonic and
// the wall clock has less of it left.
func until(now, t time.Time) time.Duration {
	return min(t.Sub(now), t.Round(0).Sub(now.Round(0)))
}

// since returns the time from t to now by whichever clock counts more.
func since(now, t time.Time) time.Duration {
	return -until(now, t)
}
