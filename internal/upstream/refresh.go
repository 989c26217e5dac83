package upstream

import (
	"context"
	"sync"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// refreshGate bounds the refreshes that rejected keys force for one
// secret. A rejection starts a refresh unless one started less than
// Options.MinRefreshInterval ago. A rejection inside the interval waits
// for that refresh, if it still runs, and uses what it read. Client
// traffic against a key that the provider keeps rejecting so costs at most
// one store read per interval, and a rotation is still seen at most one
// interval after it.
type refreshGate struct {
	mu      sync.Mutex
	started time.Time
	// done is closed when the refresh that began at started ends; keys
	// and ok are its result.
	done chan struct{}
	keys keystore.Keys
	ok   bool
}

// refresh returns the secret's keys as read by a forced refresh that
// started at most MinRefreshInterval ago, or keys if that refresh failed
// or read older versions than keys.
func (p *Proxy) refresh(c *call, s *secretVersions, keys keystore.Keys) keystore.Keys {
	done, run := s.refresh.join(p.now(), p.minRefreshInterval)
	if run {
		go p.runRefresh(c.req.SecretID, &s.refresh, done)
	}
	select {
	case <-done:
	case <-c.client.Context().Done():
		return keys
	}

	g := &s.refresh
	g.mu.Lock()
	fresh, ok := g.keys, g.ok
	g.mu.Unlock()
	if !ok || fresh.Fetched.Before(keys.Fetched) {
		return keys
	}
	return fresh
}

// join returns the channel of the refresh to wait for, and whether the
// caller must run it because none started within interval before now.
func (g *refreshGate) join(now time.Time, interval time.Duration) (done chan struct{}, run bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done != nil && now.Sub(g.started) < interval {
		return g.done, false
	}
	g.started, g.done = now, make(chan struct{})
	return g.done, true
}

// runRefresh reads the secret from the store now, bounded by
// RefreshTimeout, records the result in g and closes done. It runs apart
// from the request that started it: the refresh serves every request that
// joins it, so that client going away must not cancel it.
func (p *Proxy) runRefresh(secretID string, g *refreshGate, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), p.refreshTimeout)
	defer cancel()
	fresh, err := p.keys.Refresh(ctx, secretID)
	ok := err == nil && fresh.Current.VersionID != ""
	if !ok {
		p.log.Warn("refreshing a provider secret after a rejected key failed", "secret", secretID, "error", err)
	}

	g.mu.Lock()
	g.keys, g.ok = fresh, ok
	g.mu.Unlock()
	close(done)
}
