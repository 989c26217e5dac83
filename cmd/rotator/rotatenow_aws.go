package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// rotateOnAWS starts a rotation with RotateSecret and polls the secret
// until it ends. The rotation Lambda runs the steps.
func (a *app) rotateOnAWS(ctx context.Context, store keystore.Store, d keystore.Description, f *rotateFlags) (rotation.Result, error) {
	secretID := d.SecretID
	if pending := pendingVersion(d); pending != "" {
		return rotation.Result{VersionID: pending, Outcome: rotation.InProgress},
			fmt.Errorf("rotate-now %s: %w: AWSPENDING is on version %s, and Secrets Manager retries its steps", secretID, rotation.ErrInProgress, pending)
	}
	token, err := store.BeginRotation(ctx, secretID, "")
	if errors.Is(err, keystore.ErrInvalidRequest) {
		return rotation.Result{Outcome: rotation.InProgress}, fmt.Errorf("rotate-now %s: %w: %w", secretID, rotation.ErrInProgress, err)
	}
	if err != nil {
		return rotation.Result{Outcome: outcomeOf(err)}, fmt.Errorf("rotate-now %s: %w", secretID, err)
	}
	if f.noWait {
		return rotation.Result{VersionID: token, Outcome: rotation.InProgress}, nil
	}
	return a.pollRotation(ctx, store, secretID, token, f.timeout)
}

// pendingVersion returns the version holding AWSPENDING if it is not also
// AWSCURRENT's, which means a rotation has not finished.
func pendingVersion(d keystore.Description) string {
	pending := d.VersionWithStage(keystore.StagePending)
	if pending == "" || pending == d.VersionWithStage(keystore.StageCurrent) {
		return ""
	}
	return pending
}

// pollRotation describes the secret until the rotation of token ends or
// timeout passes, and reads the outcome from the labels.
func (a *app) pollRotation(ctx context.Context, store keystore.Store, secretID, token string, timeout time.Duration) (rotation.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := a.pollInterval
	if interval <= 0 {
		interval = defaultPollInterval
	}
	for {
		res, done, err := rotationState(ctx, store, secretID, token)
		if done || err != nil && ctx.Err() == nil {
			return res, err
		}
		select {
		case <-ctx.Done():
			return a.timedOut(store, secretID, token, timeout)
		case <-time.After(interval):
		}
	}
}

// rotationState reads the outcome of the rotation of token: done is false
// while AWSPENDING is still on token.
func rotationState(ctx context.Context, store keystore.Store, secretID, token string) (rotation.Result, bool, error) {
	res := rotation.Result{VersionID: token}
	d, err := store.Describe(ctx, secretID)
	if err != nil {
		// The rotation has started and goes on without us.
		res.Outcome = rotation.InProgress
		return res, false, fmt.Errorf("rotate-now %s version %s: %w: the rotation started but its state cannot be read: %w",
			secretID, token, rotation.ErrInProgress, err)
	}
	current := d.VersionWithStage(keystore.StageCurrent) == token
	pending := d.VersionWithStage(keystore.StagePending) == token
	if current {
		// finishSecret removes AWSPENDING after moving AWSCURRENT; waiting
		// for that lets it finish its work before we report.
		res.Outcome = rotation.Promoted
		return res, !pending, nil
	}
	if pending {
		return res, false, nil
	}
	res.Failure = failureFor(ctx, store, secretID, token)
	if res.Failure != nil && res.Failure.Class == "rejected" {
		res.Outcome = rotation.Rejected
		return res, true, fmt.Errorf("rotate-now %s version %s: %w: %s", secretID, token, rotation.ErrRejected, res.Failure.Reason)
	}
	res.Outcome = rotation.Failed
	return res, true, fmt.Errorf("rotate-now %s version %s: the rotation ended without promoting the version; the rotation function's logs say why", secretID, token)
}

// timedOut reports a rotation still pending at the timeout: in progress, or
// transient if a failure of this rotation is recorded.
func (a *app) timedOut(store keystore.Store, secretID, token string, timeout time.Duration) (rotation.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := rotation.Result{VersionID: token, Outcome: rotation.InProgress}
	if d, err := store.Describe(ctx, secretID); err == nil && d.VersionWithStage(keystore.StageCurrent) == token {
		res.Outcome = rotation.Promoted
		return res, nil
	}
	if res.Failure = failureFor(ctx, store, secretID, token); res.Failure != nil {
		res.Outcome = rotation.Transient
		return res, fmt.Errorf("rotate-now %s version %s: %w: still pending after %s: %s",
			secretID, token, rotation.ErrTransient, timeout, res.Failure.Reason)
	}
	return res, fmt.Errorf("rotate-now %s version %s: %w: still pending after %s; Secrets Manager retries failed steps",
		secretID, token, rotation.ErrInProgress, timeout)
}

// failureFor returns the last_failure recorded for the rotation of token
// in the KEYTURN_REJECTED version, or nil.
func failureFor(ctx context.Context, store keystore.Store, secretID, token string) *keystore.Failure {
	f := lastFailure(ctx, store, secretID)
	if f == nil || f.VersionID != token {
		return nil
	}
	return f
}

// lastFailure reads last_failure from the KEYTURN_REJECTED version, or nil.
func lastFailure(ctx context.Context, store keystore.Store, secretID string) *keystore.Failure {
	_, f := readRejected(ctx, store, secretID)
	return f
}

// readRejected returns the KEYTURN_REJECTED version and its last_failure,
// or "" and nil.
func readRejected(ctx context.Context, store keystore.Store, secretID string) (string, *keystore.Failure) {
	v, err := store.Get(ctx, secretID, keystore.ByStage(keystore.StageRejected))
	if err != nil {
		return "", nil
	}
	value, err := keystore.ParseValue(v.Value)
	if err != nil || value.LastFailure == nil {
		return "", nil
	}
	return v.VersionID, value.LastFailure
}
