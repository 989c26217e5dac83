package keystore

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// Default read-cache settings.
const (
	// DefaultRefreshInterval is how long a fetched value counts as fresh.
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultRefreshJitter is the largest fraction of the refresh interval
	// by which a background refresh starts early, so that many routers
	// started together do not read the store together.
	DefaultRefreshJitter = 0.1
	// DefaultMaxStale is how long after the last successful fetch a value
	// keeps serving while every refresh fails.
	DefaultMaxStale = time.Hour
	// DefaultFetchTimeout bounds one background fetch.
	DefaultFetchTimeout = 10 * time.Second
)

// CacheOptions configures a Cache. The zero value uses the defaults.
type CacheOptions struct {
	// RefreshInterval is the soft expiry: how long a fetched value is
	// fresh. Zero means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// Jitter is the largest fraction of RefreshInterval by which the
	// background refresh starts before the soft expiry, in [0, 1). Zero
	// means DefaultRefreshJitter; a negative value means none. With
	// SyncPastExpiry it has no effect, because no background refresh runs.
	Jitter float64
	// MaxStale is how long after the last successful fetch the last good
	// value serves while the store fails; past it, reads fail. Zero means
	// DefaultMaxStale. It must not be shorter than RefreshInterval.
	//
	// On the real clock a hit reads no clock. Instead the secret's timer,
	// which fires at the refresh point, at each retry and at MaxStale,
	// switches reads to the checked path. So a value serves past MaxStale
	// only for as long as that timer fires late. Every timer and every
	// checked read compares both the monotonic and the wall clock, so time
	// that the monotonic clock does not count, such as a host's suspend,
	// still ages the value. After a suspend, the pending timer fires once
	// the rest of its wait has passed in awake time, at most
	// RefreshInterval.
	MaxStale time.Duration
	// FetchTimeout bounds a fetch that no caller's context bounds, such as
	// a background refresh. Zero means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// SyncPastExpiry makes the first read after the soft expiry refresh
	// synchronously, bounded by its context, and turns off background
	// refreshes. Set it in AWS Lambda, where a frozen process runs nothing
	// in the background, so the first request after a thaw waits for a
	// value read after the thaw. A fetch left in flight by the freeze does
	// not serve that request.
	SyncPastExpiry bool
	// Logger receives refresh failures, recoveries and changes of the
	// AWSCURRENT version; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// Keys is the cached state of one secret: its AWSCURRENT version and,
// if it has one, its AWSPREVIOUS version, read in one fetch. Keys values are
// shared between readers and must not be modified.
type Keys struct {
	Current Version
	// Previous is the zero Version when the secret has no AWSPREVIOUS.
	Previous Version
	// Fetched is when the fetch that read these versions started, so a
	// fetch that a freeze held up does not make old versions look new.
	Fetched time.Time
}

// CacheStatus describes one cached secret, for logs and metrics.
type CacheStatus struct {
	SecretID        string
	CurrentVersion  string
	PreviousVersion string
	// Fetched is the time of the last successful fetch.
	Fetched time.Time
	// Age is how long ago Fetched was.
	Age time.Duration
	// Stale reports whether the value is past its soft expiry because
	// refreshes failed.
	Stale bool
	// LastError is the error of the last failed fetch since the last
	// successful one, or nil.
	LastError error
	// Refreshes and Failures count fetches that succeeded and failed.
	Refreshes, Failures uint64
}

// Cache reads secrets through a Store and keeps their current and previous
// versions in memory. It is what the router calls on every upstream
// request, so a hit takes no lock and allocates nothing, and no reader waits
// on the store while a usable value exists. Use NewCache; a Cache is safe
// for concurrent use.
//
// Each secret's state is an immutable snapshot behind an atomic pointer, in
// a map that is copied on write. A hit loads the map, the entry's read mode
// and the snapshot, and returns the snapshot's Keys. On the real clock it
// reads no clock, which costs more than the rest of a hit: a timer changes
// the read mode when the snapshot reaches its refresh point or MaxStale
// (see MaxStale for what that means for staleness).
//
// Every fetch runs in a goroutine of the cache under FetchTimeout, one at
// a time per secret, and publishes a new snapshot. Callers that need its
// result wait for it bounded by their own context, so a caller that gives
// up cancels nobody else's fetch.
type Cache struct {
	store Store
	opts  CacheOptions
	log   *slog.Logger
	now   func() time.Time
	// timerClock lets a read trust the entry's read mode without reading
	// the clock. It is off with a caller's Now, which timers do not follow, and
	// with SyncPastExpiry, because a frozen process runs no timer.
	timerClock bool

	// entries maps secret ids to their state. Writers copy the map under
	// mu, so readers load it without a lock.
	entries atomic.Pointer[map[string]*cacheEntry]

	// mu guards writes to entries and orders wg.Add against Close.
	mu     sync.Mutex
	closed atomic.Bool
	// base is the parent context of every fetch; Close cancels it.
	base   context.Context
	cancel context.CancelFunc
	// wg counts the fetch goroutines, so Close can wait for them.
	wg sync.WaitGroup
}

// NewCache returns a cache over store. Close it to stop its background
// refreshes.
func NewCache(store Store, opts CacheOptions) (*Cache, error) {
	if store == nil {
		return nil, errors.New("keystore cache: the store is nil: pass the Store to read secrets from")
	}
	customClock := opts.Now != nil
	opts, err := normalizeCacheOptions(opts)
	if err != nil {
		return nil, err
	}
	c := &Cache{store: store, opts: opts, log: opts.Logger, now: opts.Now,
		timerClock: !customClock && !opts.SyncPastExpiry}
	c.base, c.cancel = context.WithCancel(context.Background())
	c.entries.Store(&map[string]*cacheEntry{})
	return c, nil
}

// Get returns the cached keys of secretID. The first read of a secret
// fetches it, bounded by ctx, and concurrent first reads share one fetch.
// Past MaxStale without a successful fetch, Get fails with an *Error that
// matches ErrUnavailable and wraps the last fetch error.
//
// A read past the refresh point returns the cached keys and starts a
// background fetch. With SyncPastExpiry, a read past the soft expiry
// instead waits for a fetch that started at or after it, and serves the
// cached keys if that fetch fails.
func (c *Cache) Get(ctx context.Context, secretID string) (Keys, error) {
	if e := (*c.entries.Load())[secretID]; e != nil {
		if c.timerClock && e.mode.Load() == readHit {
			return e.snap.Load().keys, nil
		}
		if s := c.hitChecked(e); s != nil {
			return s.keys, nil
		}
	}
	return c.getSlow(ctx, secretID)
}

// hitChecked returns the snapshot of e that a read may serve without the
// slow path, or nil. Get tests for a hit on the real clock itself, so that
// the common case makes no call.
func (c *Cache) hitChecked(e *cacheEntry) *cacheSnapshot {
	switch e.mode.Load() {
	case readHit:
		s := e.snap.Load()
		if c.timerClock || before(c.now(), s.slowAt) {
			return s
		}
	case readRefreshing:
		if c.timerClock && e.fetching.Load() {
			return e.snap.Load()
		}
	}
	return nil
}

// CachedSecret is one secret of a Cache, looked up once, for a caller that
// reads the same secret on every request, as the router does. Its Get
// skips looking the secret up by id and copies nothing on a hit.
type CachedSecret struct {
	cache *Cache
	// entry is nil for an empty id, whose reads fail.
	entry *cacheEntry
	id    string
}

// Secret returns the handle of secretID. It reads nothing from the store;
// from then on, Status reports the secret, with no versions until the
// first read.
func (c *Cache) Secret(secretID string) *CachedSecret {
	h := &CachedSecret{cache: c, id: secretID}
	if secretID != "" {
		h.entry = c.entry(secretID)
	}
	return h
}

// ID returns the secret's id.
func (h *CachedSecret) ID() string { return h.id }

// Get is Cache.Get of the secret, except that it returns the cached Keys
// themselves rather than a copy, and nil with an error. A Keys is over 200
// bytes, and copying it is most of the cost of a hit through Cache.Get.
// The Keys are shared with every other reader and must not be modified.
func (h *CachedSecret) Get(ctx context.Context) (*Keys, error) {
	c := h.cache
	if e := h.entry; e != nil {
		if c.timerClock && e.mode.Load() == readHit {
			return &e.snap.Load().keys, nil
		}
		if s := c.hitChecked(e); s != nil {
			return &s.keys, nil
		}
	}
	keys, err := c.getSlow(ctx, h.id)
	if err != nil {
		return nil, err
	}
	return &keys, nil
}

// Refresh is Cache.Refresh of the secret.
func (h *CachedSecret) Refresh(ctx context.Context) (Keys, error) {
	return h.cache.Refresh(ctx, h.id)
}

// getSlow serves every read that is not a plain hit: the first read, a
// read past the refresh point, and a read without a usable value.
func (c *Cache) getSlow(ctx context.Context, secretID string) (Keys, error) {
	if secretID == "" {
		return Keys{}, errEmptySecretID()
	}
	e := c.entry(secretID)
	s := e.snap.Load()
	now := c.now()

	switch {
	case s == nil || s.keys.Fetched.IsZero():
		return c.getFirst(ctx, e, s, now)
	case !before(now, s.deadline):
		return c.getPastMaxStale(ctx, e, s, now)
	case (c.opts.SyncPastExpiry || c.closed.Load()) && !before(now, s.expiry):
		return c.getSync(ctx, e, s, now)
	default:
		c.refreshIfDue(e)
		return s.keys, nil
	}
}

// getFirst serves a secret that has never been fetched. After a failed
// fetch it returns that error at once until the retry time, so callers of
// a missing secret do not each wait on the store.
func (c *Cache) getFirst(ctx context.Context, e *cacheEntry, s *cacheSnapshot, now time.Time) (Keys, error) {
	if s != nil && s.err != nil && before(now, s.next) {
		return Keys{}, s.err
	}
	return c.await(ctx, e, c.readNeed(s, now))
}

// getPastMaxStale serves a secret whose last good value is too old to use:
// it fetches once the retry time has come and fails otherwise.
func (c *Cache) getPastMaxStale(ctx context.Context, e *cacheEntry, s *cacheSnapshot, now time.Time) (Keys, error) {
	if before(now, s.next) {
		return Keys{}, c.errTooStale(e.id, s, now, s.err)
	}
	keys, err := c.await(ctx, e, c.readNeed(s, now))
	if err != nil {
		return Keys{}, c.errTooStale(e.id, s, c.now(), err)
	}
	return keys, nil
}

// getSync refreshes synchronously, for SyncPastExpiry: a thawed Lambda has
// run no background refresh while it was frozen. A failed fetch is logged
// when it lands, and the last good value, still within MaxStale, serves.
func (c *Cache) getSync(ctx context.Context, e *cacheEntry, s *cacheSnapshot, now time.Time) (Keys, error) {
	keys, err := c.await(ctx, e, c.readNeed(s, now))
	if err == nil {
		return keys, nil
	}
	if end := c.now(); !before(end, s.deadline) {
		return Keys{}, c.errTooStale(e.id, s, end, err)
	}
	return s.keys, nil
}

// Refresh fetches secretID from the store now, bypassing every cache layer,
// and returns the result; it also replaces the cached value. Concurrent
// calls for one secret share one fetch. ctx bounds the caller's wait. A
// failed Refresh leaves the cached value in place.
//
// The fetch that Refresh returns always started after Refresh was called:
// if a fetch is already in flight, Refresh waits for the next one, which
// starts when the current one ends and which every Refresh call arriving
// meanwhile shares. So after an upstream 401 the router gets versions read
// after the 401, not the result of a fetch that may have read the store
// just before a rotation.
func (c *Cache) Refresh(ctx context.Context, secretID string) (Keys, error) {
	if secretID == "" {
		return Keys{}, errEmptySecretID()
	}
	return c.await(ctx, c.entry(secretID), fetchNeed{next: true})
}

// Status returns the state of secretID, and false if the cache has neither
// read it nor made a handle for it.
func (c *Cache) Status(secretID string) (CacheStatus, bool) {
	e := (*c.entries.Load())[secretID]
	if e == nil {
		return CacheStatus{}, false
	}
	st := CacheStatus{SecretID: secretID}
	s := e.snap.Load()
	if s == nil {
		return st, true
	}
	st.LastError = s.err
	st.Refreshes, st.Failures = s.refreshes, s.failures
	if s.keys.Fetched.IsZero() {
		return st, true
	}
	now := c.now()
	st.CurrentVersion = s.keys.Current.VersionID
	st.PreviousVersion = s.keys.Previous.VersionID
	st.Fetched = s.keys.Fetched
	st.Age = since(now, s.keys.Fetched)
	st.Stale = s.err != nil && !before(now, s.expiry)
	return st, true
}

// Close stops background refreshes. Reads after Close still serve cached
// values and fetch synchronously. Close cancels the fetches in flight and
// waits for their goroutines to end; callers waiting on them get an error.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed.Store(true)
	c.cancel()
	c.mu.Unlock()

	for _, e := range *c.entries.Load() {
		e.mu.Lock()
		if e.timer != nil {
			e.timer.Stop()
		}
		// With no timer left to change it, every read checks the time.
		e.mode.Store(readCheck)
		e.mu.Unlock()
	}
	c.wg.Wait()
}

// entry returns the state of secretID, adding it if it is new.
func (c *Cache) entry(secretID string) *cacheEntry {
	if e := (*c.entries.Load())[secretID]; e != nil {
		return e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.entries.Load()
	if e := old[secretID]; e != nil {
		return e
	}
	m := make(map[string]*cacheEntry, len(old)+1)
	maps.Copy(m, old)
	e := &cacheEntry{id: secretID}
	m[secretID] = e
	c.entries.Store(&m)
	return e
}
