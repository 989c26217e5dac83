package upstream

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// countingKeys is a KeySource whose Refresh returns the versions last set,
// fetched at the fake clock's time, and counts its calls.
type countingKeys struct {
	mu        sync.Mutex
	now       *time.Time
	current   string
	refreshes int
}

func (k *countingKeys) Get(context.Context, string) (keystore.Keys, error) {
	return keystore.Keys{}, nil
}

func (k *countingKeys) Refresh(context.Context, string) (keystore.Keys, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refreshes++
	return keystore.Keys{Current: testVersion(k.current), Fetched: *k.now}, nil
}

func (k *countingKeys) set(current string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.current = current
}

func (k *countingKeys) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.refreshes
}

func TestForcedRefreshOncePerInterval(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	keys := &countingKeys{now: &now, current: "v1"}
	p, err := New(Options{Keys: keys, Policy: provider.DefaultPolicy(), MinRefreshInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return now }
	s := p.versionsOf("s")
	c := &call{req: Request{SecretID: "s"}, client: httptest.NewRequest("POST", "/v1/chat/completions", nil)}
	held := keystore.Keys{Current: testVersion("v1"), Fetched: now.Add(-time.Minute)}

	step := func(advance time.Duration, wantRefreshes int, wantCurrent string) {
		t.Helper()
		now = now.Add(advance)
		got := p.refresh(c, s, held)
		if n := keys.count(); n != wantRefreshes {
			t.Errorf("after %v: %d store reads, want %d", advance, n, wantRefreshes)
		}
		if got.Current.VersionID != wantCurrent {
			t.Errorf("after %v: AWSCURRENT = %s, want %s", advance, got.Current.VersionID, wantCurrent)
		}
	}
	step(0, 1, "v1")
	step(500*time.Millisecond, 1, "v1")
	// A rotation inside the interval is seen only once the interval ends.
	keys.set("v2")
	step(400*time.Millisecond, 1, "v1")
	step(100*time.Millisecond, 2, "v2")
	step(0, 2, "v2")
}
