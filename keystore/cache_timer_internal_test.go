package keystore

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// failingStore fails every Get once fail is set.
type failingStore struct {
	Store
	fail atomic.Bool
}

var errTimerTestDown = errors.New("the store is down")

func (s *failingStore) Get(ctx context.Context, id string, ref Ref) (Version, error) {
	if s.fail.Load() {
		return Version{}, &Error{Op: "GetSecretValue", SecretID: id, Kind: ErrUnavailable, Err: errTimerTestDown}
	}
	return s.Store.Get(ctx, id, ref)
}

// TestCacheLateTimerBoundsStaleness checks how far past MaxStale a value
// serves on the real clock, where a hit reads no clock: until the secret's
// timer runs, however late, and not after it.
func TestCacheLateTimerBoundsStaleness(t *testing.T) {
	fs, err := OpenFile(FileOptions{Dir: t.TempDir(), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	if _, err := fs.Create(context.Background(), CreateInput{SecretID: "s", Value: NewSecret("v"),
		Token: "11111111-1111-4111-8111-111111111111"}); err != nil {
		t.Fatal(err)
	}
	st := &failingStore{Store: fs}
	const maxStale = 20 * time.Millisecond
	c, err := NewCache(st, CacheOptions{RefreshInterval: 10 * time.Millisecond, MaxStale: maxStale, Jitter: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()
	first, err := c.Get(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	st.fail.Store(true)

	// Holding the entry's lock makes the timer run late, because its
	// callback waits for the lock.
	e := (*c.entries.Load())["s"]
	e.mu.Lock()
	for time.Since(first.Fetched) <= 2*maxStale {
		time.Sleep(maxStale)
	}
	k, err := c.Get(ctx, "s")
	e.mu.Unlock()
	if err != nil || k.Current.VersionID != first.Current.VersionID {
		t.Fatalf("Get before the late timer ran = version %s, %v; want the cached %s, as a hit reads no clock",
			k.Current.VersionID, err, first.Current.VersionID)
	}

	waitUntil(t, "the late timer", func() bool { return e.mode.Load() != readHit })
	_, err = c.Get(ctx, "s")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errTimerTestDown) {
		t.Fatalf("Get after the late timer ran: err = %v, want ErrUnavailable wrapping the store's failure", err)
	}
}

// TestCacheClockHelpers checks the comparisons of the cache's times. A time
// without a monotonic reading, which a caller's Now gives, compares by the
// wall clock alone.
func TestCacheClockHelpers(t *testing.T) {
	now := time.Now()
	later := now.Add(time.Second)
	for name, n := range map[string]time.Time{"monotonic": now, "wall only": now.Round(0)} {
		if !before(n, later) {
			t.Errorf("%s: before(now, now+1s) = false, want true", name)
		}
		if before(later, n) {
			t.Errorf("%s: before(now+1s, now) = true, want false", name)
		}
		if before(n, n) {
			t.Errorf("%s: before(now, now) = true, want false", name)
		}
		if d := until(n, later); d != time.Second {
			t.Errorf("%s: until = %v, want 1s", name, d)
		}
		if d := since(later, n); d != time.Second {
			t.Errorf("%s: since = %v, want 1s", name, d)
		}
	}
	for d, want := range map[time.Duration]string{
		250 * time.Millisecond:                       "250ms",
		1500*time.Millisecond + 300*time.Microsecond: "1.5s",
		time.Hour + 1200*time.Millisecond:            "1h0m1s",
	} {
		if got := roundAge(d).String(); got != want {
			t.Errorf("roundAge(%v) = %s, want %s", d, got, want)
		}
	}
}

func waitUntil(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
