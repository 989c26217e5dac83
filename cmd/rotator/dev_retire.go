package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/scheduler"
	"github.com/keyturn/keyturn/keystore"
)

// devRetirer revokes dev/openai's retired keys at the stand-in once their
// grace has passed. A pass runs after each rotation and when the earliest
// not_before still to come arrives, and a failed revocation is tried again
// at the next pass.
type devRetirer struct {
	engine *rotation.Engine
	logger *slog.Logger
	// mu guards done, which the engine reads through revoked while it
	// rotates.
	mu sync.Mutex
	// done holds the entries revoked in this run, and those of earlier runs,
	// so that each is revoked and logged once. No pass writes the store, so
	// the entries stay in the retire list until the next rotation drops
	// them through revoked.
	done map[retiredKey]bool
	// rotated wakes the retirer after a rotation. It buffers one wake-up,
	// because one pass covers every rotation before it.
	rotated chan struct{}
}

// retiredKey identifies a retire entry.
type retiredKey struct{ keyID, versionID string }

func keyOf(r keystore.Retired) retiredKey { return retiredKey{r.KeyID, r.VersionID} }

func newDevRetirer(engine *rotation.Engine, logger *slog.Logger) *devRetirer {
	return &devRetirer{engine: engine, logger: logger, done: map[retiredKey]bool{}, rotated: make(chan struct{}, 1)}
}

// skipEarlierRuns marks the entries already in dev/openai's retire list as
// done. Right after the first rotation they are all keys of earlier runs,
// whose stand-in is gone with every key it minted, so revoking them at
// this stand-in would only log revocations of keys it never knew.
func (r *devRetirer) skipEarlierRuns(ctx context.Context, store keystore.Store) {
	v, err := store.Get(ctx, devSecretID, keystore.Current())
	if err != nil {
		r.logger.Warn("could not read the retire list of earlier runs: their keys may be logged as revoked",
			"secret_id", devSecretID, "error", err)
		return
	}
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		r.logger.Warn("could not parse the current value: the keys of earlier runs may be logged as revoked",
			"secret_id", devSecretID, "version_id", v.VersionID, "error", err)
		return
	}
	r.markDone(value.Retire)
	if n := len(value.Retire); n > 0 {
		r.logger.Debug("not revoking the retired keys of earlier runs: their stand-in is gone",
			"secret_id", devSecretID, "count", n)
	}
}

// revoked reports whether the entry r of secretID is done, for
// rotation.Engine.Revoked.
func (r *devRetirer) revoked(secretID string, e keystore.Retired) bool {
	return secretID == devSecretID && r.isDone(e)
}

func (r *devRetirer) isDone(e keystore.Retired) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done[keyOf(e)]
}

func (r *devRetirer) markDone(entries []keystore.Retired) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range entries {
		r.done[keyOf(e)] = true
	}
}

// notify wakes the retirer after a rotation.
func (r *devRetirer) notify() {
	select {
	case r.rotated <- struct{}{}:
	default:
	}
}

// run makes a pass after each rotation and at the earliest not_before the
// last pass reported, by clock, the engine's clock, until ctx ends.
func (r *devRetirer) run(ctx context.Context, clock scheduler.Clock) {
	var due <-chan time.Time // nil while no entry waits
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.rotated:
		case <-due:
		}
		due = nil
		if next := r.pass(ctx); !next.IsZero() {
			due = clock.After(next.Sub(clock.Now()))
		}
	}
}

// pass revokes the entries that are due and not done yet, and returns the
// earliest not_before still to come. The engine logs each revocation and
// each failed one; a pass that could not start is logged here.
func (r *devRetirer) pass(ctx context.Context) time.Time {
	res, err := r.engine.RevokeRetired(ctx, devSecretID, r.isDone)
	r.markDone(res.Revoked)
	if err != nil && ctx.Err() == nil {
		r.logger.Warn("revoking retired keys failed: trying again after the next rotation at the latest",
			"secret_id", devSecretID, "version_id", res.VersionID, "error", err)
	}
	return res.Next
}

// retiringRotator is the engine, as the scheduler uses it, with a call to
// rotated after each rotation. Embedding keeps the engine's other methods,
// such as the PendingRotation the scheduler looks for.
type retiringRotator struct {
	*rotation.Engine
	rotated func()
}

func (r retiringRotator) RotateNow(ctx context.Context, secretID string) (rotation.Result, error) {
	res, err := r.Engine.RotateNow(ctx, secretID)
	r.rotated()
	return res, err
}
