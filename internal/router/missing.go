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

	// mu guards results and checks; it is never held across a Describe
	// call, so a slow check of one secret holds up no other secret.
	mu      sync.Mutex
	results map[string]missingResult
	// checks are the Describe calls in flight, one per secret id, which
	// every request for that secret meanwhile waits for.
	checks map[string]*missingCheck
}

type missingResult struct {
	missing bool
	at      time.Time
}

// missingCheck is one Describe call; done is closed once missing is set.
type missingCheck struct {
	done    chan struct{}
	missing bool
}

// missing reports whether the store has no secret id, as the last
// Describe within missingCheckInterval found. A failed Describe counts as
// an existing secret, which leaves the wording to the proxy.
func (m *missingSecrets) missing(ctx context.Context, id string) bool {
	if m.store == nil {
		return false
	}
	recent, check, lead := m.join(id)
	if check == nil {
		return recent
	}
	if lead {
		m.describe(ctx, id, check)
	}
	select {
	case <-check.done:
		return check.missing
	case <-ctx.Done():
		return false
	}
}

// join returns a recent result for id if there is one. Otherwise it
// returns the check of id to wait for, starting one if none runs, and
// whether the caller is to run it.
func (m *missingSecrets) join(id string) (recent bool, check *missingCheck, lead bool) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.results[id]; ok && now.Sub(a.at) < missingCheckInterval {
		return a.missing, nil, false
	}
	if c := m.checks[id]; c != nil {
		return false, c, false
	}
	if m.checks == nil {
		m.checks = map[string]*missingCheck{}
	}
	c := &missingCheck{done: make(chan struct{})}
	m.checks[id] = c
	return false, c, true
}

// describe runs check, records its result and wakes its waiters. A call
// that the caller gave up on is not recorded, so it decides nothing for
// the next request.
func (m *missingSecrets) describe(ctx context.Context, id string, check *missingCheck) {
	at := m.now()
	_, err := m.store.Describe(ctx, id)
	check.missing = errors.Is(err, keystore.ErrNotFound) && !errors.Is(err, keystore.ErrUnavailable)
	m.mu.Lock()
	delete(m.checks, id)
	if ctx.Err() == nil {
		m.results[id] = missingResult{missing: check.missing, at: at}
	}
	m.mu.Unlock()
	close(check.done)
}
