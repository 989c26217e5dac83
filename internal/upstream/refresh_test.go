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

// countingKeys is a KeySource whose Refresh returns the versions last set
// and counts its calls.
type countingKeys struct {
	mu        sync.Mutex
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
	return keystore.Keys{Current: testVersion(k.current), Fetched: time.Now()}, nil
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

// newRefreshTest returns a Proxy over keys with the given interval, and a
// call and the keys it holds for secret "s".
func newRefreshTest(t *testing.T, keys *countingKeys, interval time.Duration) (*Proxy, *call, keystore.Keys) {
	t.Helper()
	p, err := New(Options{Keys: keys, Policy: provider.DefaultPolicy(), MinRefreshInterval: interval})
	if err != nil {
		t.Fatal(err)
	}
	c := &call{req: Request{SecretID: "s"}, client: httptest.NewRequest("POST", "/v1/chat/completions", nil)}
	held := keystore.Keys{Current: testVersion("v1"), Fetched: time.Now().Add(-time.Minute)}
	return p, c, held
}

func TestForcedRefreshStartsAfterRejection(t *testing.T) {
	keys := &countingKeys{current: "v1"}
	p, c, held := newRefreshTest(t, keys, 20*time.Millisecond)
	s := p.versionsOf("s")
	if got := p.refresh(c, s, held); got.Current.VersionID != "v1" || keys.count() != 1 {
		t.Fatalf("first refresh: AWSCURRENT %s after %d reads, want v1 after 1", got.Current.VersionID, keys.count())
	}

	// A rotation right after the last refresh started is seen by the
	// next rejection, which waits for the interval to end.
	keys.set("v2")
	if got := p.refresh(c, s, held); got.Current.VersionID != "v2" {
		t.Errorf("refresh after a rotation: AWSCURRENT = %s, want v2", got.Current.VersionID)
	}
	if n := keys.count(); n != 2 {
		t.Errorf("%d store reads, want 2", n)
	}
}

func TestForcedRefreshOncePerInterval(t *testing.T) {
	// An interval longer than RefreshTimeout: a rejection inside it does
	// not wait and keeps the keys it has.
	keys := &countingKeys{current: "v1"}
	p, c, held := newRefreshTest(t, keys, time.Hour)
	s := p.versionsOf("s")
	p.refresh(c, s, held)
	keys.set("v2")
	for range 5 {
		if got := p.refresh(c, s, held); got.Current.VersionID != "v1" {
			t.Errorf("refresh inside the interval: AWSCURRENT = %s, want the held v1", got.Current.VersionID)
		}
	}
	if n := keys.count(); n != 1 {
		t.Errorf("%d store reads inside one interval, want 1", n)
	}
}
