package router

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// Describer describes a secret. keystore.Store satisfies it.
type Describer interface {
	Describe(ctx context.Context, secretID string) (keystore.Description, error)
}

// missingCheckInterval is how long the result of one Describe call is
// reused for a secret, so that requests for a missing secret cannot make
// the router read its store on each of them.
const missingCheckInterval = 10 * time.Second

// missingSecrets distinguishes a secret that the store lacks from one that
// exists without a current version. The cache reports both as
// ErrNotFound, and so does Secrets Manager.
type missingSecrets struct {
	store Describer // nil: every secret counts as existing
	now   func() time.Time

	mu      sync.Mutex
	results map[string]missingResult
}

type missingResult struct {
	missing bool
	at      time.Time
}

// missing reports whether the store has no secret id, as the last
// Describe within missingCheckInterval found. A failed Describe counts as
// an existing secret, which leaves the wording to the proxy.
func (m *missingSecrets) missing(ctx context.Context, id string) bool {
	if m.store == nil {
		return false
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.results[id]; ok && now.Sub(a.at) < missingCheckInterval {
		return a.missing
	}
	_, err := m.store.Describe(ctx, id)
	a := missingResult{missing: errors.Is(err, keystore.ErrNotFound) && !errors.Is(err, keystore.ErrUnavailable), at: now}
	m.results[id] = a
	return a.missing
}
