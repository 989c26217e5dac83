package keystore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

func TestCacheGetCurrentAndPrevious(t *testing.T) {
	f := newCacheFixture(t, nil)
	k := f.get(t)
	wantCurrent(t, k, f.v2, f.value2)
	if k.Previous.VersionID != f.v1 {
		t.Errorf("Previous.VersionID = %s, want %s", k.Previous.VersionID, f.v1)
	}
	if k.Previous.Value.Reveal() != f.value1 {
		t.Errorf("Previous.Value is not the value of version %s", f.v1)
	}
	if !k.Fetched.Equal(f.clock.Now()) {
		t.Errorf("Fetched = %v, want the fake clock's %v", k.Fetched, f.clock.Now())
	}
	if got := f.store.gets.Load(); got != 2 {
		t.Errorf("store reads = %d, want 2 (AWSCURRENT and AWSPREVIOUS)", got)
	}

	f.get(t)
	if got := f.store.gets.Load(); got != 2 {
		t.Errorf("store reads after a hit = %d, want still 2", got)
	}
	st := f.status(t)
	if st.CurrentVersion != f.v2 || st.PreviousVersion != f.v1 || st.Refreshes != 1 || st.Stale {
		t.Errorf("status = %+v, want current %s, previous %s, 1 refresh, not stale", st, f.v2, f.v1)
	}
}

func TestCacheGetWithoutPrevious(t *testing.T) {
	f := newCacheFixture(t, nil)
	const id = "keyturn/cache/single"
	v := mustCreate(t, f.fileStore, id, "only-value")
	k, err := f.cache.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	wantCurrent(t, k, v, "only-value")
	if k.Previous.VersionID != "" || !k.Previous.Value.IsZero() {
		t.Errorf("Previous = version %q, want the zero Version", k.Previous.VersionID)
	}
}

func TestCacheGetWithoutCurrent(t *testing.T) {
	f := newCacheFixture(t, nil)
	const empty = "keyturn/cache/empty"
	if _, err := f.fileStore.Create(context.Background(), keystore.CreateInput{SecretID: empty}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	for _, id := range []string{empty, "keyturn/cache/missing"} {
		_, err := f.cache.Get(context.Background(), id)
		if !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("Get %s: err = %v, want ErrNotFound", id, err)
		}
		if !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "AWSCURRENT") {
			t.Errorf("Get %s: error %q does not name the secret and AWSCURRENT", id, err)
		}
		if _, ok := f.cache.Status(id); !ok {
			t.Errorf("Status(%s) reports never read after a failed read", id)
		}
	}
}

func TestCacheGetEmptyID(t *testing.T) {
	f := newCacheFixture(t, nil)
	_, err := f.cache.Get(context.Background(), "")
	if !errors.Is(err, keystore.ErrInvalidParameter) || !strings.Contains(err.Error(), "secret id is empty") {
		t.Errorf("Get(\"\"): err = %v, want ErrInvalidParameter about the empty id", err)
	}
	_, err = f.cache.Refresh(context.Background(), "")
	if !errors.Is(err, keystore.ErrInvalidParameter) {
		t.Errorf("Refresh(\"\"): err = %v, want ErrInvalidParameter", err)
	}
	if _, ok := f.cache.Status("never-read"); ok {
		t.Errorf("Status of a secret never read reports true")
	}
}

func TestCacheHitAllocatesNothing(t *testing.T) {
	clocks := map[string]func(*keystore.CacheOptions){
		"fake clock": nil,
		"real clock": func(o *keystore.CacheOptions) { o.Now = nil },
		// With SyncPastExpiry a hit reads the clock, which must not
		// allocate either.
		"sync past expiry": func(o *keystore.CacheOptions) { o.Now, o.SyncPastExpiry = nil, true },
	}
	for name, opts := range clocks {
		t.Run(name, func(t *testing.T) {
			f := newCacheFixture(t, opts)
			f.get(t)
			ctx := context.Background()
			allocs := testing.AllocsPerRun(1000, func() {
				if _, err := f.cache.Get(ctx, cacheSecret); err != nil {
					t.Fatalf("Get: %v", err)
				}
			})
			if allocs != 0 {
				t.Errorf("a hit allocates %v times, want 0", allocs)
			}
		})
	}
}

func TestCacheFirstReadsShareFetch(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.store.block()
	const readers = 8
	var wg sync.WaitGroup
	results := make(chan keystore.Keys, readers)
	for range readers {
		wg.Go(func() {
			k, err := f.cache.Get(context.Background(), cacheSecret)
			if err != nil {
				t.Errorf("Get: %v", err)
			}
			results <- k
		})
	}
	f.store.waitEntered(t, keystore.StageCurrent)
	f.store.release()
	wg.Wait()
	close(results)
	for k := range results {
		wantCurrent(t, k, f.v2, f.value2)
	}
	if got := f.store.gets.Load(); got != 2 {
		t.Errorf("store reads = %d, want 2: one fetch for all first readers", got)
	}
}

func TestCacheFirstReadBoundedByContext(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.store.block()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.cache.Get(ctx, cacheSecret)
		done <- err
	}()
	f.store.waitEntered(t, keystore.StageCurrent)
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("Get with a cancelled context: err = %v, want ErrUnavailable wrapping context.Canceled", err)
	}

	// The fetch goes on for the next reader.
	f.store.release()
	k := f.get(t)
	wantCurrent(t, k, f.v2, f.value2)
	if got := f.store.gets.Load(); got != 2 {
		t.Errorf("store reads = %d, want 2: the cancelled wait did not cancel the fetch", got)
	}
}

func TestCacheRefreshStartsInBackground(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.get(t)
	v3 := f.putVersion(t, "value-3")
	f.store.block()

	// Past the soft expiry the reader gets the cached value at once and
	// starts one fetch; readers meanwhile start none.
	f.clock.Advance(f.cacheOpts.RefreshInterval)
	wantCurrent(t, f.get(t), f.v2, f.value2)
	f.store.waitEntered(t, keystore.StageCurrent)
	for range 5 {
		wantCurrent(t, f.get(t), f.v2, f.value2)
	}
	if got := f.store.gets.Load(); got != 3 {
		t.Errorf("store reads = %d, want 3: readers past the refresh point started more than one fetch", got)
	}

	f.store.release()
	f.waitStatus(t, "the background refresh", func(st keystore.CacheStatus) bool { return st.Refreshes == 2 })
	k := f.get(t)
	wantCurrent(t, k, v3, "value-3")
	if k.Previous.VersionID != f.v2 {
		t.Errorf("Previous.VersionID = %s, want %s", k.Previous.VersionID, f.v2)
	}
}

func TestCacheJitterStartsRefreshEarly(t *testing.T) {
	f := newCacheFixture(t, func(o *keystore.CacheOptions) { o.Jitter = 0.5 })
	f.get(t)

	// Before the earliest jittered refresh point no read starts a fetch.
	// A forced Refresh then reads the store once: had a fetch been started,
	// the Refresh would have queued behind it and read twice.
	f.clock.Advance(f.cacheOpts.RefreshInterval/2 - time.Nanosecond)
	f.get(t)
	if _, err := f.cache.Refresh(context.Background(), cacheSecret); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got := f.store.gets.Load(); got != 4 {
		t.Errorf("store reads = %d, want 4: a read before RefreshInterval*(1-Jitter) started a fetch", got)
	}

	// By the soft expiry a read starts one.
	f.store.block()
	f.clock.Advance(f.cacheOpts.RefreshInterval)
	f.get(t)
	f.store.waitEntered(t, keystore.StageCurrent)
	f.store.release()
}

func TestCacheTimerRefreshesUnreadSecret(t *testing.T) {
	// On the real clock with an interval of a millisecond, the timer
	// fetches again without any further read.
	f := newCacheFixture(t, func(o *keystore.CacheOptions) {
		o.RefreshInterval = time.Millisecond
		o.MaxStale = time.Millisecond
		o.Now = nil
	})
	f.get(t)
	f.waitStatus(t, "a timer refresh", func(st keystore.CacheStatus) bool { return st.Refreshes >= 2 })
}

func TestCacheSyncPastExpiry(t *testing.T) {
	f := newCacheFixture(t, func(o *keystore.CacheOptions) { o.SyncPastExpiry = true })
	f.get(t)
	v3 := f.putVersion(t, "value-3")

	// Before the soft expiry a read is a hit.
	f.clock.Advance(f.cacheOpts.RefreshInterval - time.Nanosecond)
	wantCurrent(t, f.get(t), f.v2, f.value2)

	// The first read past it waits for the fetch and sees the new version.
	f.clock.Advance(time.Nanosecond)
	wantCurrent(t, f.get(t), v3, "value-3")
	if got := f.store.gets.Load(); got != 4 {
		t.Errorf("store reads = %d, want 4", got)
	}
}

func TestCacheSyncPastExpiryServesLastGoodOnFailure(t *testing.T) {
	f := newCacheFixture(t, func(o *keystore.CacheOptions) { o.SyncPastExpiry = true })
	f.get(t)
	f.store.fail()
	f.clock.Advance(f.cacheOpts.RefreshInterval)
	wantCurrent(t, f.get(t), f.v2, f.value2)
	if got := f.store.gets.Load(); got != 3 {
		t.Errorf("store reads = %d, want 3: the read did not refresh synchronously", got)
	}
	if n := f.log.count("level=WARN", "serving the last good value", cacheSecret); n != 1 {
		t.Errorf("%d warnings about serving the last good value, want 1; log:\n%s", n, f.log)
	}
	st := f.status(t)
	if !st.Stale || !errors.Is(st.LastError, errStoreDown) {
		t.Errorf("status = %+v, want stale with the store's error", st)
	}
}

func TestCacheSyncPastExpiryBoundedByContext(t *testing.T) {
	f := newCacheFixture(t, func(o *keystore.CacheOptions) { o.SyncPastExpiry = true })
	f.get(t)
	f.store.block()
	f.clock.Advance(f.cacheOpts.RefreshInterval)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan keystore.Keys, 1)
	go func() {
		k, err := f.cache.Get(ctx, cacheSecret)
		if err != nil {
			t.Errorf("Get: %v", err)
		}
		done <- k
	}()
	f.store.waitEntered(t, keystore.StageCurrent)
	cancel()
	wantCurrent(t, <-done, f.v2, f.value2)
	f.store.release()
}

func TestCacheSyncPastExpiryNoBackgroundFetch(t *testing.T) {
	f := newCacheFixture(t, func(o *keystore.CacheOptions) {
		o.SyncPastExpiry = true
		o.Jitter = 0.5
	})
	f.get(t)

	// Jitter does not move the refresh point before the soft expiry, so a
	// read just before it starts no fetch. A forced Refresh then reads the
	// store once: had a fetch been started, the Refresh would have queued
	// behind it and read twice.
	f.clock.Advance(f.cacheOpts.RefreshInterval - time.Nanosecond)
	f.get(t)
	if _, err := f.cache.Refresh(context.Background(), cacheSecret); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got := f.store.gets.Load(); got != 4 {
		t.Errorf("store reads = %d, want 4: a read before the soft expiry started a fetch", got)
	}
}

func TestCacheServesStaleWhileStoreFails(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.get(t)
	f.store.fail()

	// Each read past a retry time starts one fetch, which fails; every
	// read still gets the last good value and only the first failure warns.
	for i := range 4 {
		f.clock.Advance(f.cacheOpts.RefreshInterval)
		wantCurrent(t, f.get(t), f.v2, f.value2)
		want := uint64(i + 1)
		f.waitStatus(t, "a failed refresh", func(st keystore.CacheStatus) bool { return st.Failures == want })
	}
	st := f.status(t)
	if !st.Stale || !errors.Is(st.LastError, errStoreDown) || st.Refreshes != 1 {
		t.Errorf("status = %+v, want stale, the store's error and 1 refresh", st)
	}
	if st.Age != 4*f.cacheOpts.RefreshInterval {
		t.Errorf("status age = %v, want %v", st.Age, 4*f.cacheOpts.RefreshInterval)
	}
	checkNoCanary(t, st.LastError)
	if n := f.log.count("level=WARN"); n != 1 {
		t.Errorf("%d warnings while failing, want 1; log:\n%s", n, f.log)
	}

	f.store.recover()
	f.clock.Advance(f.cacheOpts.RefreshInterval)
	f.get(t)
	st = f.waitStatus(t, "the recovery", func(st keystore.CacheStatus) bool { return st.Refreshes == 2 })
	if st.Stale || st.LastError != nil || st.Age != 0 {
		t.Errorf("status after recovery = %+v, want fresh without an error", st)
	}
	if n := f.log.count("level=INFO", "recovered", "failures=4"); n != 1 {
		t.Errorf("%d recovery lines at INFO with failures=4, want 1; log:\n%s", n, f.log)
	}
}

func TestCacheFailsPastMaxStale(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.get(t)
	f.store.fail()
	f.clock.Advance(f.cacheOpts.MaxStale + time.Second)

	_, err := f.cache.Get(context.Background(), cacheSecret)
	var kerr *keystore.Error
	if !errors.As(err, &kerr) || !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("Get past MaxStale: err = %v, want an *Error matching ErrUnavailable", err)
	}
	if kerr.SecretID != cacheSecret {
		t.Errorf("error names secret %q, want %s", kerr.SecretID, cacheSecret)
	}
	if !strings.Contains(err.Error(), "last fetched 1h0m1s ago") {
		t.Errorf("error %q does not say how long ago the value was fetched", err)
	}
	if !errors.Is(err, errStoreDown) {
		t.Errorf("error %q does not wrap the store's failure", err)
	}
	checkNoCanary(t, err)

	// Until the retry time, reads fail at once without reading the store.
	reads := f.store.gets.Load()
	if _, err := f.cache.Get(context.Background(), cacheSecret); !errors.Is(err, errStoreDown) {
		t.Errorf("second Get: err = %v, want the store's failure", err)
	}
	if got := f.store.gets.Load(); got != reads {
		t.Errorf("store reads = %d, want %d: a read within the retry delay fetched", got, reads)
	}

	// Once the store recovers, the next fetch serves again.
	f.store.recover()
	f.clock.Advance(f.cacheOpts.RefreshInterval)
	wantCurrent(t, f.get(t), f.v2, f.value2)
}

func TestCacheFirstFetchFailureRetries(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.store.fail()
	_, err := f.cache.Get(context.Background(), cacheSecret)
	if !errors.Is(err, errStoreDown) {
		t.Fatalf("Get: err = %v, want the store's failure", err)
	}
	if n := f.log.count("level=WARN", "no value to serve", cacheSecret); n != 1 {
		t.Errorf("%d warnings about the failed first fetch, want 1; log:\n%s", n, f.log)
	}
	f.store.recover()
	if _, err := f.cache.Get(context.Background(), cacheSecret); !errors.Is(err, errStoreDown) {
		t.Errorf("Get within the retry delay: err = %v, want the last failure", err)
	}
	f.clock.Advance(time.Second)
	wantCurrent(t, f.get(t), f.v2, f.value2)
}

func TestCacheRealClockFailsPastMaxStale(t *testing.T) {
	// On the real clock a hit reads no clock, so the timer must end the
	// hits when MaxStale runs out.
	f := newCacheFixture(t, func(o *keystore.CacheOptions) {
		o.RefreshInterval = 20 * time.Millisecond
		o.MaxStale = 20 * time.Millisecond
		o.Now = nil
	})
	f.get(t)
	f.store.fail()
	deadline := time.Now().Add(hangDeadline)
	for {
		_, err := f.cache.Get(context.Background(), cacheSecret)
		if err != nil {
			if !errors.Is(err, keystore.ErrUnavailable) || !errors.Is(err, errStoreDown) {
				t.Fatalf("Get past MaxStale: err = %v, want ErrUnavailable wrapping the store's failure", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get still serves long after MaxStale")
		}
		time.Sleep(time.Millisecond)
	}
	f.store.recover()
	f.waitStatus(t, "the recovery", func(st keystore.CacheStatus) bool { return st.LastError == nil })
	wantCurrent(t, f.get(t), f.v2, f.value2)
}

func TestCacheRealClockServesDuringRefresh(t *testing.T) {
	f := newCacheFixture(t, func(o *keystore.CacheOptions) {
		o.RefreshInterval = 20 * time.Millisecond
		o.Now = nil
	})
	f.get(t)
	// The store holds the next fetch once it has read both versions. A
	// fetch that lands before that read them before the rotation.
	f.store.blockStage(keystore.StagePrevious)
	v3 := f.putVersion(t, "value-3")
	f.store.waitEntered(t, keystore.StagePrevious)

	got := make(chan keystore.Keys, 1)
	go func() {
		k, err := f.cache.Get(context.Background(), cacheSecret)
		if err != nil {
			t.Errorf("Get: %v", err)
		}
		got <- k
	}()
	select {
	case k := <-got:
		wantCurrent(t, k, f.v2, f.value2)
	case <-time.After(hangDeadline):
		t.Fatalf("Get waits for the refresh in flight")
	}
	f.store.release()
	f.waitStatus(t, "the refresh", func(st keystore.CacheStatus) bool { return st.CurrentVersion == v3 })
	wantCurrent(t, f.get(t), v3, "value-3")
}

func TestCacheTooStaleErrorWordsShortAges(t *testing.T) {
	f := newCacheFixture(t, func(o *keystore.CacheOptions) {
		o.RefreshInterval = 50 * time.Millisecond
		o.MaxStale = 100 * time.Millisecond
	})
	f.get(t)
	f.store.fail()
	f.clock.Advance(250 * time.Millisecond)
	_, err := f.cache.Get(context.Background(), cacheSecret)
	if !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("Get past MaxStale: err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "last fetched 250ms ago, longer than the maximum staleness of 100ms") {
		t.Errorf("error %q does not give the age below a second in milliseconds", err)
	}
}

func TestCacheLogsVersionChange(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.get(t)
	if n := f.log.count("level=INFO", "version changed"); n != 0 {
		t.Errorf("the first read logged a version change; log:\n%s", f.log)
	}
	if n := f.log.count("secret loaded", "version="+f.v2); n != 1 {
		t.Errorf("%d lines for the first read of version %s, want 1; log:\n%s", n, f.v2, f.log)
	}
	v3 := f.putVersion(t, "value-3")
	if _, err := f.cache.Refresh(context.Background(), cacheSecret); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if _, err := f.cache.Refresh(context.Background(), cacheSecret); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	want := []string{"level=INFO", "secret version changed", "secret=" + cacheSecret, "old_version=" + f.v2, "new_version=" + v3}
	if n := f.log.count(want...); n != 1 {
		t.Errorf("%d lines %q, want 1: one per change; log:\n%s", n, want, f.log)
	}
}

func TestCachedSecret(t *testing.T) {
	f := newCacheFixture(t, nil)
	h := f.cache.Secret(cacheSecret)
	if h.ID() != cacheSecret {
		t.Errorf("ID() = %q, want %s", h.ID(), cacheSecret)
	}
	if _, ok := f.cache.Status(cacheSecret); !ok {
		t.Errorf("Status does not report a secret with a handle")
	}
	ctx := context.Background()
	k, err := h.Get(ctx)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	wantCurrent(t, *k, f.v2, f.value2)
	hit1, _ := h.Get(ctx)
	if hit2, _ := h.Get(ctx); hit1 != hit2 {
		t.Errorf("two hits returned other Keys than the cached ones")
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := h.Get(ctx); err != nil {
			t.Fatalf("Get: %v", err)
		}
	})
	if allocs != 0 {
		t.Errorf("a hit through the handle allocates %v times, want 0", allocs)
	}

	v3 := f.putVersion(t, "value-3")
	if k, err := h.Refresh(ctx); err != nil || k.Current.VersionID != v3 {
		t.Fatalf("Refresh = version %s, %v; want %s", k.Current.VersionID, err, v3)
	}
	k, err = h.Get(ctx)
	if err != nil {
		t.Fatalf("Get after Refresh: %v", err)
	}
	wantCurrent(t, *k, v3, "value-3")

	if k, err := f.cache.Secret("").Get(ctx); k != nil || !errors.Is(err, keystore.ErrInvalidParameter) {
		t.Errorf("Get of an empty id = %v, %v; want nil and ErrInvalidParameter", k, err)
	}
}
