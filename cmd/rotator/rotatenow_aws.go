package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/schedule"
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
		return beginRejected(ctx, store, secretID, err)
	}
	if err != nil {
		return rotation.Result{Outcome: rotation.OutcomeOf(err)}, fmt.Errorf("rotate-now %s: %w", secretID, err)
	}
	if f.noWait {
		return rotation.Result{VersionID: token, Outcome: rotation.InProgress}, nil
	}
	return a.pollRotation(ctx, store, d, token, f.timeout)
}

// beginRejected reports a RotateSecret that Secrets Manager rejected for the
// secret's state. Only a rotation that started meanwhile is in progress,
// and the secret's AWSPENDING label shows it. Any other rejection, such as a
// rotation function that was removed, needs the configuration fixed.
func beginRejected(ctx context.Context, store keystore.Store, secretID string, err error) (rotation.Result, error) {
	if d, dErr := store.Describe(ctx, secretID); dErr == nil {
		if pending := pendingVersion(d); pending != "" {
			return rotation.Result{VersionID: pending, Outcome: rotation.InProgress},
				fmt.Errorf("rotate-now %s: %w: %w", secretID, rotation.ErrInProgress, err)
		}
		if d.Rotation.LambdaARN == "" {
			return rotation.Result{Outcome: rotation.Failed}, noRotationFunctionError(secretID)
		}
	}
	return rotation.Result{Outcome: rotation.Failed}, cli.WithCode(exitError, fmt.Errorf("rotate-now %s: %w", secretID, err)).
		WithHint("check the secret's rotation configuration with 'rotator status %s' and in Terraform", secretID)
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
// timeout passes, and reads the outcome from the labels. Ctrl-C ends the
// wait, not the rotation.
func (a *app) pollRotation(ctx context.Context, store keystore.Store, d keystore.Description, token string, timeout time.Duration) (rotation.Result, error) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := a.pollInterval
	if interval <= 0 {
		interval = defaultPollInterval
	}
	for {
		res, done, err := rotationState(pctx, store, d.SecretID, token)
		if done || err != nil && pctx.Err() == nil {
			return res, err
		}
		select {
		case <-pctx.Done():
			if interrupted(ctx) {
				return stoppedWaiting(d.SecretID, token)
			}
			return timedOut(store, d, token, timeout)
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
	return res, true, endedUnpromoted(secretID, token, res.Failure, d.Rotation.LambdaARN)
}

// endedUnpromoted reports a rotation that ended without a promotion or a
// rejection: with the failure recorded for it if there is one, and
// otherwise with where the rotation function logged the reason.
func endedUnpromoted(secretID, token string, f *keystore.Failure, lambdaARN string) error {
	err := fmt.Errorf("rotate-now %s version %s: the rotation ended without promoting the version", secretID, token)
	if f != nil {
		err = fmt.Errorf("%w. Step %s failed (%s): %s", err, f.Step, f.Class, f.Reason)
	}
	ce := cli.WithCode(exitError, err)
	if f == nil || f.Class == "config" || strings.Contains(f.Reason, keystore.TagBaseURL) {
		ce.WithHint("%s", functionLogs(lambdaARN))
		ce.WithHint("a step that failed with class config, such as a 404, means a setting is wrong, most often the secret's %s, which must be the provider's API root: "+
			"on AWS, change the secret's tag in Terraform, then run 'rotator rotate-now %s' again", keystore.TagBaseURL, secretID)
	}
	return ce
}

// errStoppedWaiting marks a wait for a rotation on AWS that a signal ended:
// the rotation itself may still complete in Secrets Manager.
var errStoppedWaiting = errors.New("stopped waiting")

// stoppedWaiting reports a wait that Ctrl-C ended, while the rotation
// itself goes on in Secrets Manager.
func stoppedWaiting(secretID, token string) (rotation.Result, error) {
	res := rotation.Result{VersionID: token, Outcome: outcomeInterrupted}
	return res, cli.WithCode(exitError, fmt.Errorf("interrupted: %w for the rotation of %s version %s; it may still complete in Secrets Manager",
		errStoppedWaiting, secretID, token)).
		WithHint("check it with 'rotator status %s'", secretID)
}

// timedOut reports a rotation that had not ended at the timeout: promoted
// if it just did, transient if a failure of this rotation is recorded, and
// otherwise still in progress, with what the pending version shows of it.
func timedOut(store keystore.Store, d keystore.Description, token string, timeout time.Duration) (rotation.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	secretID := d.SecretID
	res := rotation.Result{VersionID: token, Outcome: rotation.InProgress}
	if now, err := store.Describe(ctx, secretID); err == nil && now.VersionWithStage(keystore.StageCurrent) == token {
		res.Outcome = rotation.Promoted
		return res, nil
	}
	if res.Failure = failureFor(ctx, store, secretID, token); res.Failure != nil {
		res.Outcome = rotation.Transient
		return res, fmt.Errorf("rotate-now %s version %s: still pending after %s (%w). The last failure: %s",
			secretID, token, schedule.FormatDuration(timeout), rotation.ErrTransient, res.Failure.Reason)
	}
	return res, cli.WithCode(exitInProgress, fmt.Errorf("rotate-now %s version %s: the rotation has not finished after %s (%w). %s %s",
		secretID, token, schedule.FormatDuration(timeout), rotation.ErrInProgress, keystore.StagePending,
		pendingProgress(ctx, store, secretID, token))).
		WithHint("Secrets Manager retries a failed rotation on its own, and %s", functionLogs(d.Rotation.LambdaARN)).
		WithHint("see it with 'rotator status %s'; if no rotator is working on it, 'rotator abandon %s' drops it", secretID, secretID)
}

// pendingProgress words how far the rotation of token got, as far as its
// version shows: whether createSecret has stored the new key.
func pendingProgress(ctx context.Context, store keystore.Store, secretID, token string) string {
	_, err := store.Get(ctx, secretID, keystore.ByVersion(token))
	switch {
	case err == nil:
		return "is still on the version, which contains the new key, so a later step (setSecret, testSecret or finishSecret) has not succeeded yet"
	case errors.Is(err, keystore.ErrNotFound):
		return "is still on the version, which has no key yet, so createSecret has not succeeded yet"
	}
	return "is still on the version"
}

// functionLogs returns where the rotation function's logs are: CloudWatch
// Logs, in the log group Lambda names after the function.
func functionLogs(lambdaARN string) string {
	// arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
	parts := strings.Split(lambdaARN, ":")
	if len(parts) >= 7 && parts[5] == "function" && parts[6] != "" {
		return fmt.Sprintf("the rotation function's logs show why (CloudWatch log group /aws/lambda/%s)", parts[6])
	}
	return "the rotation function's logs in CloudWatch show why"
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
