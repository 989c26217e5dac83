package keystore_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// waitWaiters waits until n goroutines wait in the cache for a fetch.
func waitWaiters(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(hangDeadline)
	for {
		buf := make([]byte, 1<<20)
		got := strings.Count(string(buf[:runtime.Stack(buf, true)]), "keystore.(*Cache).await(")
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines wait for a fetch, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCacheRefreshReadsStore(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.get(t)
	v3 := f.putVersion(t, "value-3")
	wantCurrent(t, f.get(t), f.v2, f.value2)

	k, err := f.cache.Refresh(context.Background(), cacheSecret)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	wantCurrent(t, k, v3, "value-3")
	if k.Previous.VersionID != f.v2 {
		t.Errorf("Previous.VersionID = %s, want %s", k.Previous.VersionID, f.v2)
	}
	wantCurrent(t, f.get(t), v3, "value-3")
}

func TestCacheRefreshUnreadSecret(t *testing.T) {
	f := newCacheFixture(t, nil)
	k, err := f.cache.Refresh(context.Background(), cacheSecret)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	wantCurrent(t, k, f.v2, f.value2)
	wantCurrent(t, f.get(t), f.v2, f.value2)
	if got := f.store.gets.Load(); got != 2 {
		t.Errorf("store reads = %d, want 2", got)
	}
}

func TestCacheRefreshSharesOneFetch(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.get(t)
	// Holding the fetch after it read AWSPREVIOUS makes it return the
	// versions it read before the rotation below.
	f.store.blockStage(keystore.StagePrevious)
	ctx := context.Background()

	first := make(chan keystore.Keys, 1)
	go func() {
		k, err := f.cache.Refresh(ctx, cacheSecret)
		if err != nil {
			t.Errorf("first Refresh: %v", err)
		}
		first <- k
	}()
	f.store.waitEntered(t, keystore.StagePrevious)
	v3 := f.putVersion(t, "value-3")

	// Calls made while the first fetch runs share the next one; one of
	// them gives up, which cancels nobody else's fetch.
	const later = 3
	var wg sync.WaitGroup
	results := make(chan keystore.Keys, later)
	for range later {
		wg.Go(func() {
			k, err := f.cache.Refresh(ctx, cacheSecret)
			if err != nil {
				t.Errorf("later Refresh: %v", err)
			}
			results <- k
		})
	}
	impatient, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error, 1)
	go func() {
		_, err := f.cache.Refresh(impatient, cacheSecret)
		gaveUp <- err
	}()
	waitWaiters(t, 1+later+1)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) || !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("cancelled Refresh: err = %v, want ErrUnavailable wrapping context.Canceled", err)
	}

	f.store.release()
	wantCurrent(t, <-first, f.v2, f.value2)
	wg.Wait()
	close(results)
	for k := range results {
		wantCurrent(t, k, v3, "value-3")
	}
	if got := f.store.gets.Load(); got != 6 {
		t.Errorf("store reads = %d, want 6: the first fetch, the running one and one shared by the later calls", got)
	}
}

func TestCacheRefreshWaitsForFetchStartedAfterCall(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.get(t)

	// A background fetch reads both versions and is held before it
	// returns them; then a rotation lands and the caller, say after a 401,
	// forces a refresh.
	f.store.blockStage(keystore.StagePrevious)
	f.clock.Advance(f.cacheOpts.RefreshInterval)
	f.get(t)
	f.store.waitEntered(t, keystore.StagePrevious)
	v3 := f.putVersion(t, "value-3")
	done := make(chan keystore.Keys, 1)
	go func() {
		k, err := f.cache.Refresh(context.Background(), cacheSecret)
		if err != nil {
			t.Errorf("Refresh: %v", err)
		}
		done <- k
	}()
	waitWaiters(t, 1)
	f.store.release()

	k := <-done
	wantCurrent(t, k, v3, "value-3")
	if k.Previous.VersionID != f.v2 {
		t.Errorf("Previous.VersionID = %s, want %s", k.Previous.VersionID, f.v2)
	}
}

func TestCacheRefreshFailureKeepsValue(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.get(t)
	f.store.fail()
	_, err := f.cache.Refresh(context.Background(), cacheSecret)
	if !errors.Is(err, keystore.ErrUnavailable) || !errors.Is(err, errStoreDown) {
		t.Fatalf("Refresh: err = %v, want the store's ErrUnavailable", err)
	}
	checkNoCanary(t, err)
	wantCurrent(t, f.get(t), f.v2, f.value2)
	st := f.status(t)
	if st.Stale || st.Failures != 1 || !errors.Is(st.LastError, errStoreDown) {
		t.Errorf("status = %+v, want fresh, 1 failure and the store's error", st)
	}
}

func TestCacheCloseStopsBackgroundWork(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.get(t)
	f.store.block()
	f.clock.Advance(f.cacheOpts.RefreshInterval)
	f.get(t)
	f.store.waitEntered(t, keystore.StageCurrent)

	f.cache.Close()
	waitNoCacheGoroutines(t)
	if n := f.log.count("level=WARN"); n != 0 {
		t.Errorf("Close logged %d warnings, want none; log:\n%s", n, f.log)
	}

	// After Close, reads past the soft expiry fetch in the caller, once the
	// retry delay of the fetch that Close cancelled has passed.
	f.store.release()
	f.clock.Advance(time.Second)
	v3 := f.putVersion(t, "value-3")
	wantCurrent(t, f.get(t), v3, "value-3")
	v4 := f.putVersion(t, "value-4")
	k, err := f.cache.Refresh(context.Background(), cacheSecret)
	if err != nil {
		t.Fatalf("Refresh after Close: %v", err)
	}
	wantCurrent(t, k, v4, "value-4")
	if left := cacheGoroutines(); len(left) != 0 {
		t.Errorf("reads after Close left %d cache goroutines", len(left))
	}
	f.cache.Close()
}

func TestCacheRejectsOptions(t *testing.T) {
	store := newTestStore(nil)
	tests := []struct {
		name string
		opts keystore.CacheOptions
		want string
	}{
		{"negative RefreshInterval", keystore.CacheOptions{RefreshInterval: -time.Second},
			"RefreshInterval is -1s: set a positive duration, or 0 for the default 5m0s"},
		{"negative MaxStale", keystore.CacheOptions{MaxStale: -time.Minute},
			"MaxStale is -1m0s"},
		{"negative FetchTimeout", keystore.CacheOptions{FetchTimeout: -1},
			"FetchTimeout is -1ns"},
		{"Jitter of 1", keystore.CacheOptions{Jitter: 1},
			"Jitter is 1: set a fraction of RefreshInterval below 1"},
		{"MaxStale below RefreshInterval", keystore.CacheOptions{RefreshInterval: time.Hour, MaxStale: time.Minute},
			"MaxStale 1m0s is shorter than RefreshInterval 1h0m0s: set MaxStale to at least 1h0m0s"},
		{"default MaxStale below RefreshInterval", keystore.CacheOptions{RefreshInterval: 2 * time.Hour},
			"MaxStale 1h0m0s (the default) is shorter than RefreshInterval 2h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keystore.NewCache(store, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewCache: err = %v, want one containing %q", err, tt.want)
			}
		})
	}

	if _, err := keystore.NewCache(nil, keystore.CacheOptions{}); err == nil || !strings.Contains(err.Error(), "store is nil") {
		t.Errorf("NewCache(nil): err = %v, want one about the nil store", err)
	}
	c, err := keystore.NewCache(store, keystore.CacheOptions{Jitter: -0.5})
	if err != nil {
		t.Fatalf("NewCache with defaults and no jitter: %v", err)
	}
	c.Close()
}

func TestCacheFetchRereadsAfterRotation(t *testing.T) {
	f := newCacheFixture(t, nil)
	// The fetch reads AWSCURRENT, then a rotation moves it before the
	// fetch reads AWSPREVIOUS, which is then the version it just read.
	f.store.blockStage(keystore.StageCurrent)
	done := make(chan keystore.Keys, 1)
	go func() {
		k, err := f.cache.Get(context.Background(), cacheSecret)
		if err != nil {
			t.Errorf("Get: %v", err)
		}
		done <- k
	}()
	f.store.waitEntered(t, keystore.StageCurrent)
	v3 := f.putVersion(t, "value-3")
	f.store.release()

	k := <-done
	wantCurrent(t, k, v3, "value-3")
	if k.Previous.VersionID != f.v2 {
		t.Errorf("Previous.VersionID = %s, want %s", k.Previous.VersionID, f.v2)
	}
}
