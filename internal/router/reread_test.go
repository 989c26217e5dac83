package router

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/keystore"
)

// countingStore counts the reads of the clients secret's AWSCURRENT
// version, one per fetch of the cache.
type countingStore struct {
	keystore.Store
	reads atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, id string, ref keystore.Ref) (keystore.Version, error) {
	if id == DefaultClientsSecret && ref == keystore.Current() {
		s.reads.Add(1)
	}
	return s.Store.Get(ctx, id, ref)
}

// newCountingEnv returns a test env whose cache reads through a
// countingStore, with a refresh interval of an hour, and the router's
// forced reads at least interval apart.
func newCountingEnv(t *testing.T, interval time.Duration) (*testEnv, *countingStore) {
	t.Helper()
	var counting *countingStore
	e := newTestEnv(t, envOptions{
		rereadInterval: interval,
		wrapStore: func(st keystore.Store) keystore.Store {
			counting = &countingStore{Store: st}
			return counting
		},
	})
	return e, counting
}

func TestNewClientWorksAtOnce(t *testing.T) {
	e, counting := newCountingEnv(t, 0)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	oldKey := e.clientKey

	key, hash, err := clientkeys.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	e.writeClients(
		clientkeys.Client{ID: "kc_test0001", Name: "ci", Hash: hashOf(t, e, oldKey)},
		clientkeys.Client{ID: "kc_test0002", Name: "newbie", Hash: hash},
	)
	e.clientKey = key.Reveal()
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	if n := counting.reads.Load(); n != 2 {
		t.Errorf("the clients secret was read %d times, want 2: once at the first request, once for the new key", n)
	}
	e.clientKey = oldKey
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
}

// hashOf returns the hash that the clients secret records for key.
func hashOf(t *testing.T, e *testEnv, key string) string {
	t.Helper()
	set := e.server.auth.set.Load()
	c, ok := set.index.Lookup(key)
	if !ok {
		t.Fatal("the key is not in the cached client list")
	}
	return c.Hash
}

func TestUnknownKeysBoundStoreReads(t *testing.T) {
	// An interval longer than the test allows one forced read in all.
	e, counting := newCountingEnv(t, time.Hour)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)

	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("GET", "/v1/models", fmt.Sprintf("%sunknown-%040d", clientkeys.Prefix, i), "")
			if r.status != http.StatusUnauthorized {
				t.Errorf("status %d, want 401; body %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	if n := counting.reads.Load(); n != 2 {
		t.Errorf("the clients secret was read %d times, want 2: once at the first request, once for the unknown keys", n)
	}
}

func TestNonClientKeyForcesNoRead(t *testing.T) {
	e, counting := newCountingEnv(t, 0)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	r := e.do("GET", "/v1/models", "sk-not-a-client-key", "")
	assertStatus(t, r, http.StatusUnauthorized)
	if n := counting.reads.Load(); n != 1 {
		t.Errorf("the clients secret was read %d times, want 1", n)
	}
}

func TestFirstClientWorksAtOnce(t *testing.T) {
	e := newTestEnv(t, envOptions{noClients: true})
	e.clientKey = clientkeys.Prefix + "not-issued-yet-0123456789abcdef0123456789"
	r := e.chat("gpt-4o")
	assertStatus(t, r, http.StatusUnauthorized)
	assertContains(t, "body", r.body, `"code":"no_client_keys"`)

	e.addClient(clientkeys.Client{})
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
}
