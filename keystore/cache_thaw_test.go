package keystore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// A Lambda that freezes while a fetch is in flight resumes the fetch when
// it thaws. The fetch then returns what it read before the freeze, or
// fails because its deadline passed while the process was frozen. These
// tests leave such a fetch held in the test store, rotate the secret while
// "frozen", move the clock past the soft expiry and check that the first
// read after the thaw serves the rotated version.

// errFrozenFetch is how a fetch fails when its deadline passed during a
// freeze.
var errFrozenFetch = &keystore.Error{Op: "GetSecretValue", SecretID: cacheSecret,
	Kind: keystore.ErrUnavailable, Msg: "test store read timed out", Err: context.DeadlineExceeded}

// frozenFetches are the ways a fetch stays in flight through a freeze: its
// caller gave up waiting for it just before the Lambda froze.
var frozenFetches = []struct {
	name  string
	leave func(t *testing.T, f *cacheFixture)
}{
	{"first read", func(t *testing.T, f *cacheFixture) {
		leaveFetch(t, f, func(ctx context.Context) { f.cache.Get(ctx, cacheSecret) })
	}},
	{"refresh before soft expiry", func(t *testing.T, f *cacheFixture) {
		f.get(t)
		f.clock.Advance(f.cacheOpts.RefreshInterval - time.Minute)
		leaveFetch(t, f, func(ctx context.Context) { f.cache.Refresh(ctx, cacheSecret) })
	}},
	{"read past soft expiry", func(t *testing.T, f *cacheFixture) {
		f.get(t)
		f.clock.Advance(f.cacheOpts.RefreshInterval)
		leaveFetch(t, f, func(ctx context.Context) { f.cache.Get(ctx, cacheSecret) })
	}},
}

// frozenFetchEnds are the ways a fetch held up by a freeze ends after the
// thaw.
var frozenFetchEnds = []struct {
	name   string
	finish func(*testStore)
}{
	{"returns old versions", (*testStore).release},
	{"times out", func(s *testStore) { s.releaseFailing(errFrozenFetch) }},
}

// leaveFetch runs call until the fetch it waits for has read both versions
// and is held in the store, and then cancels call's context, so the fetch
// stays in flight with the versions it read.
func leaveFetch(t *testing.T, f *cacheFixture, call func(context.Context)) {
	t.Helper()
	f.store.blockStage(keystore.StagePrevious)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		call(ctx)
	}()
	f.store.waitEntered(t, keystore.StagePrevious)
	cancel()
	<-done
}

func TestCacheSyncPastExpiryAfterThaw(t *testing.T) {
	for _, frozen := range frozenFetches {
		for _, thaw := range []time.Duration{30 * time.Minute, 2 * time.Hour} {
			for _, end := range frozenFetchEnds {
				for _, landFirst := range []bool{false, true} {
					order := "while first read waits"
					if landFirst {
						order = "before first read"
					}
					name := fmt.Sprintf("%s/thaw after %v/frozen fetch %s %s", frozen.name, thaw, end.name, order)
					t.Run(name, func(t *testing.T) {
						testThaw(t, thawCase{leave: frozen.leave, thaw: thaw, finish: end.finish, landFirst: landFirst})
					})
				}
			}
		}
	}
}

func TestCacheSyncPastExpiryAfterShortFreeze(t *testing.T) {
	// The fetch left in flight a second before the soft expiry is younger
	// than FetchTimeout when the first read past the expiry comes, but it
	// read the versions that were current before the expiry.
	leave := func(t *testing.T, f *cacheFixture) {
		f.get(t)
		f.clock.Advance(f.cacheOpts.RefreshInterval - time.Second)
		leaveFetch(t, f, func(ctx context.Context) { f.cache.Refresh(ctx, cacheSecret) })
	}
	for _, end := range frozenFetchEnds {
		t.Run("frozen fetch "+end.name, func(t *testing.T) {
			testThaw(t, thawCase{leave: leave, thaw: 2 * time.Second, finish: end.finish})
		})
	}
}

func TestCacheFetchedIsFetchStart(t *testing.T) {
	f := newCacheFixture(t, nil)
	f.get(t)

	// A fetch held up for a minute, as a freeze would hold it, returns
	// versions as old as its start, and the cache dates them so.
	f.store.blockStage(keystore.StagePrevious)
	f.clock.Advance(f.cacheOpts.RefreshInterval)
	started := f.clock.Now()
	f.get(t)
	f.store.waitEntered(t, keystore.StagePrevious)
	f.clock.Advance(time.Minute)
	f.store.release()
	st := f.waitStatus(t, "the held refresh", func(st keystore.CacheStatus) bool { return st.Refreshes == 2 })
	if !st.Fetched.Equal(started) {
		t.Errorf("status Fetched = %v, want the fetch's start %v", st.Fetched, started)
	}
	if k := f.get(t); !k.Fetched.Equal(started) {
		t.Errorf("Keys.Fetched = %v, want the fetch's start %v", k.Fetched, started)
	}
}

// thawCase is a fetch that a freeze leaves in flight, and how it ends
// after the thaw.
type thawCase struct {
	leave  func(*testing.T, *cacheFixture)
	thaw   time.Duration
	finish func(*testStore)
	// landFirst makes the frozen fetch land before the first read after
	// the thaw, not while that read waits for the store.
	landFirst bool
}

// testThaw leaves a fetch in flight, rotates the secret, thaws and ends the
// frozen fetch. It checks that the first read after the thaw serves the
// rotated version.
func testThaw(t *testing.T, tc thawCase) {
	f := newCacheFixture(t, func(o *keystore.CacheOptions) { o.SyncPastExpiry = true })
	tc.leave(t, f)
	v3 := f.putVersion(t, "value-3")
	f.clock.Advance(tc.thaw)

	var k keystore.Keys
	var err error
	if tc.landFirst {
		landed := fetchesLanded(f.status(t)) + 1
		tc.finish(f.store)
		f.waitStatus(t, "the frozen fetch", func(st keystore.CacheStatus) bool { return fetchesLanded(st) == landed })
		k, err = f.cache.Get(context.Background(), cacheSecret)
	} else {
		k, err = getWhileFinishing(t, f, tc.finish)
	}
	if err != nil {
		checkNoCanary(t, err)
		t.Fatalf("first read after the thaw: %v", err)
	}
	wantCurrent(t, k, v3, "value-3")
}

// fetchesLanded counts the fetches that have landed, failed or not.
func fetchesLanded(st keystore.CacheStatus) uint64 { return st.Refreshes + st.Failures }

// getWhileFinishing reads the secret and calls finish once the read waits
// for the store.
func getWhileFinishing(t *testing.T, f *cacheFixture, finish func(*testStore)) (keystore.Keys, error) {
	t.Helper()
	type result struct {
		keys keystore.Keys
		err  error
	}
	got := make(chan result, 1)
	go func() {
		k, err := f.cache.Get(context.Background(), cacheSecret)
		got <- result{k, err}
	}()
	waitWaiters(t, 1)
	finish(f.store)
	r := <-got
	return r.keys, r.err
}
