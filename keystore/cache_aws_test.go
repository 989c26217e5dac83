package keystore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

// TestCacheOnAWSStore reads through the real AWS store and SDK client
// against the Secrets Manager test server.
func TestCacheOnAWSStore(t *testing.T) {
	store, _ := newAWSStoreAndServer(t)
	ctx := context.Background()
	const id = "keyturn/cache/aws"
	v1 := mustCreate(t, store, id, `{"api_key":"`+cacheCanary+`-1"}`)
	v2 := mustPut(t, store, id, `{"api_key":"`+cacheCanary+`-2"}`)

	cache, err := keystore.NewCache(store, keystore.CacheOptions{})
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(cache.Close)
	k, err := cache.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	wantCurrent(t, k, v2, `{"api_key":"`+cacheCanary+`-2"}`)
	if k.Previous.VersionID != v1 || k.Previous.Value.Reveal() != `{"api_key":"`+cacheCanary+`-1"}` {
		t.Errorf("Previous = version %s, want %s with its value", k.Previous.VersionID, v1)
	}

	// A rotation's new AWSCURRENT serves from the next Refresh on.
	v3 := mustPut(t, store, id, `{"api_key":"`+cacheCanary+`-3"}`)
	if k, _ := cache.Get(ctx, id); k.Current.VersionID != v2 {
		t.Errorf("Get before Refresh serves version %s, want the cached %s", k.Current.VersionID, v2)
	}
	k, err = cache.Refresh(ctx, id)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	wantCurrent(t, k, v3, `{"api_key":"`+cacheCanary+`-3"}`)
	if k.Previous.VersionID != v2 {
		t.Errorf("Previous.VersionID after rotation = %s, want %s", k.Previous.VersionID, v2)
	}
	k, err = cache.Get(ctx, id)
	if err != nil || k.Current.VersionID != v3 {
		t.Errorf("Get after Refresh = version %s, %v; want %s", k.Current.VersionID, err, v3)
	}

	_, err = cache.Get(ctx, "keyturn/cache/aws-missing")
	if !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Get of a missing secret: err = %v, want ErrNotFound", err)
	}
	checkNoCanary(t, err)
}
