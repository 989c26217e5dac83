package upstream

import (
	"context"

	"github.com/keyturn/keyturn/internal/reread"
	"github.com/keyturn/keyturn/keystore"
)

// refreshResult is the outcome of one forced refresh of a secret: the keys
// read, and ok false when the read failed or found no AWSCURRENT version.
type refreshResult struct {
	keys keystore.Keys
	ok   bool
}

// newRefreshGate returns the gate of the refreshes that rejected keys
// force for secretID. A rejected key waits for a refresh that starts after
// the rejection, because one that started before it may predate the
// rotation that replaced the key. Refreshes start at least
// MinRefreshInterval apart, so that client traffic against a key the
// provider keeps rejecting costs at most one store read per interval.
func (p *Proxy) newRefreshGate(secretID string) *reread.Gate[refreshResult] {
	return reread.New(p.minRefreshInterval, p.refreshTimeout, func(ctx context.Context) refreshResult {
		fresh, err := p.keys.Refresh(ctx, secretID)
		ok := err == nil && fresh.Current.VersionID != ""
		if !ok {
			p.log.Warn("refreshing a provider secret after a rejected key failed", "secret", secretID, "error", err)
		}
		return refreshResult{keys: fresh, ok: ok}
	})
}

// refresh returns the secret's keys as read by a forced refresh that
// started after the call, waiting at most RefreshTimeout for it. It returns
// keys when the next refresh is due later than that, when the client goes
// away, when the refresh fails, and when it read older versions than keys.
func (p *Proxy) refresh(c *call, s *secretVersions, keys keystore.Keys) keystore.Keys {
	ctx, cancel := context.WithTimeout(c.client.Context(), p.refreshTimeout)
	defer cancel()
	res, ok := s.refresh.Wait(ctx, p.refreshTimeout)
	if !ok || !res.ok || res.keys.Fetched.Before(keys.Fetched) {
		return keys
	}
	return res.keys
}
