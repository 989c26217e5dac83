package rotation

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// Outcome sorts how a RotateNow ended.
type Outcome string

// RotateNow outcomes.
const (
	// Promoted: the new key passed its check and is AWSCURRENT.
	Promoted Outcome = "promoted"
	// InProgress: another rotation holds AWSPENDING, or on AWS, Secrets
	// Manager has started the rotation and runs the steps itself.
	InProgress Outcome = "in_progress"
	// Rejected: the new key failed for good and is kept as KEYTURN_REJECTED.
	Rejected Outcome = "rejected"
	// Transient: a check or store call failed in a way that may pass later.
	Transient Outcome = "transient"
	// Failed: nothing to promote, or the configuration is wrong.
	Failed Outcome = "failed"
)

// Result is the outcome of a RotateNow.
type Result struct {
	SecretID string
	// VersionID is the rotation's token: the promoted version, or the one
	// that failed. For InProgress it is the version that holds AWSPENDING.
	VersionID string
	Outcome   Outcome
	// Failure records why the rotation did not promote. It is nil when
	// Promoted.
	Failure *keystore.Failure
	// ResumedFrom is the version of the stale rotation that this rotation
	// took over and resumed, or "" for a rotation started afresh.
	ResumedFrom string
	// StagedVersion is the KEYTURN_STAGED version whose key a Promoted
	// rotation promoted as VersionID. It is "" when the promoted key was
	// minted, and for every other outcome.
	StagedVersion string
}

// RotateNow rotates secretID at once. On the file store it starts the
// rotation (BeginRotation creates the empty AWSPENDING version) and runs the
// four steps in process, within RotationTimeout. On AWS, where Secrets
// Manager invokes the rotation function itself, it only starts the rotation
// and reports InProgress.
//
// Every outcome but Promoted comes with an *Error. Nothing but RotateNow
// continues a file-store rotation, unlike Secrets Manager, so RotateNow never
// leaves its own rotation half done: after a failed step it clears
// AWSPENDING (revoking a minted key that was never promoted). A file-store
// rotation that a stopped rotator left in progress for longer than
// StaleAfter is resumed, under a new token that carries its key. A younger
// one is InProgress.
func (e *Engine) RotateNow(ctx context.Context, secretID string) (Result, error) {
	c := &call{e: e, op: "rotate", secretID: secretID}
	if err := c.checkTimeouts(); err != nil {
		return c.result(err), err
	}
	ctx, cancel := context.WithTimeout(ctx, e.rotationTimeout())
	defer cancel()
	if err := c.checkRotatable(ctx); err != nil {
		return c.result(err), err
	}

	token, err := c.begin(ctx)
	if err != nil {
		return c.result(err), err
	}
	c.token = token
	if c.desc.Rotation.LambdaARN != "" {
		return Result{SecretID: secretID, VersionID: token, Outcome: InProgress}, nil
	}

	var staged string
	for _, step := range Steps {
		consumed, err := e.runStep(ctx, step, secretID, token, true)
		if err != nil {
			if c.abandon(ctx) {
				err = noteAbandoned(err, c.name())
			}
			return c.result(err), err
		}
		if step == FinishSecret {
			staged = consumed
		}
	}
	return Result{SecretID: secretID, VersionID: token, Outcome: Promoted, ResumedFrom: c.resumedFrom, StagedVersion: staged}, nil
}

// begin starts the rotation and returns its token. When a file-store
// rotation is already in progress it resumes that rotation under a new
// token if it is stale, and returns ErrInProgress if it is not.
func (c *call) begin(ctx context.Context) (string, error) {
	token, err := c.e.Store.BeginRotation(ctx, c.secretID, "")
	if err == nil {
		return token, nil
	}
	if !errors.Is(err, keystore.ErrInvalidRequest) || c.desc.Rotation.LambdaARN != "" {
		return "", c.beginError(ctx, err)
	}
	if err := c.describe(ctx); err != nil {
		return "", err
	}
	p, ok, pErr := c.e.pending(ctx, c.desc)
	if pErr != nil {
		return "", pErr
	}
	if !ok {
		return "", c.beginError(ctx, err)
	}
	c.token = p.VersionID
	if p.StaleIn > 0 {
		return "", c.inProgressError(p.PendingRotation)
	}
	return c.resume(ctx, p)
}

// checkRotatable rejects, before a rotation starts, a secret whose rotation
// would fail at its first step.
func (c *call) checkRotatable(ctx context.Context) error {
	if err := c.describe(ctx); err != nil {
		return err
	}
	if err := c.checkEnabled(); err != nil {
		return err
	}
	_, err := c.settings()
	return err
}

// beginError words a failed BeginRotation. A store that refuses because
// AWSPENDING sits on another version means a rotation is in progress. On
// the file store the error gives the time that rotation goes stale.
func (c *call) beginError(ctx context.Context, err error) error {
	if !errors.Is(err, keystore.ErrInvalidRequest) {
		return c.storeError(err, "start the rotation")
	}
	pending, dErr := c.versionHolding(ctx, keystore.StagePending)
	if dErr != nil || pending == "" {
		return c.storeError(err, "start the rotation")
	}
	c.token = pending
	if p, ok, pErr := c.e.pending(ctx, c.desc); pErr == nil && ok && p.VersionID == pending {
		return c.inProgressError(p.PendingRotation)
	}
	if c.desc.Rotation.LambdaARN != "" {
		return c.errorf(ErrInProgress, nil,
			"rotation in progress: Secrets Manager retries it; to abandon it, run "+
				"'aws secretsmanager update-secret-version-stage --secret-id %s --version-stage %s --remove-from-version-id %s'",
			c.name(), keystore.StagePending, pending)
	}
	return c.errorf(ErrInProgress, nil,
		"rotation in progress: wait for the rotator working on it to finish; "+
			"if none is, 'rotator abandon %s' abandons it", c.name())
}

// abandonTimeout bounds the clean-up after a failed step. The clean-up runs
// even when the caller's context has ended, which is when a step that hung
// needs it most.
const abandonTimeout = 10 * time.Second

// abandon clears AWSPENDING from the rotation's version unless it was
// promoted, revoking the pending key if it was minted. It reports whether it
// removed AWSPENDING; it does not when the failed step already had.
func (c *call) abandon(parent context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), abandonTimeout)
	defer cancel()
	if err := c.describe(ctx); err != nil {
		c.warn(ctx, "could not abandon the rotation", err)
		return false
	}
	stages := c.desc.Versions[c.token]
	if slices.Contains(stages, keystore.StageCurrent) || !slices.Contains(stages, keystore.StagePending) {
		return false
	}
	c.revokeUnpromoted(ctx)
	if err := c.removeStage(ctx, keystore.StagePending, c.token); err != nil {
		c.warn(ctx, "could not abandon the rotation", err)
		return false
	}
	c.e.logger().LogAttrs(ctx, slog.LevelInfo, "abandoned the rotation after a failed step: "+
		"removed "+keystore.StagePending+"; the next rotation starts afresh",
		slog.String("secret_id", c.secretID), slog.String("version_id", c.token))
	return true
}

// noteAbandoned adds to a transient step error that RotateNow abandoned
// the rotation, which is what a retry then starts from. name is the
// secret's name, for the command it suggests.
func noteAbandoned(err error, name string) error {
	var re *Error
	if !errors.As(err, &re) || !errors.Is(err, ErrTransient) {
		return err
	}
	re.Msg += ": the rotation was abandoned (" + keystore.StagePending + " removed); " +
		"the next scheduled rotation, or 'rotator rotate-now " + name + "', tries again"
	return re
}

// revokeUnpromoted revokes the pending key of an abandoned rotation if it
// was minted for it.
func (c *call) revokeUnpromoted(ctx context.Context) {
	pending, err := c.e.Store.Get(ctx, c.secretID, keystore.ByVersion(c.token))
	if err != nil {
		return
	}
	c.revokeIfMinted(ctx, pending.Value)
}

// revokeIfMinted revokes the key in value if an issuer minted it for a
// rotation, that is when the secret's issuer mints and no staged version
// holds the key.
func (c *call) revokeIfMinted(ctx context.Context, value keystore.Secret) {
	settings, err := c.settings()
	if err != nil || settings.Issuer == keystore.IssuerStaged {
		return
	}
	v, err := keystore.ParseValue(value)
	if err != nil || v.KeyID == "" {
		return
	}
	if staged, err := c.stagedVersionOf(ctx, v); err != nil || staged != "" {
		return
	}
	c.revoke(ctx, settings, v.KeyID)
}

// result builds the Result of a failed RotateNow.
func (c *call) result(err error) Result {
	r := Result{SecretID: c.secretID, VersionID: c.token, Outcome: OutcomeOf(err), ResumedFrom: c.resumedFrom}
	var re *Error
	if errors.As(err, &re) && re.failure != nil {
		r.Failure = re.failure
		return r
	}
	step := c.op
	if errors.As(err, &re) {
		step = re.Op
	}
	r.Failure = &keystore.Failure{
		Step: step, At: c.e.now(), VersionID: c.token,
		Class: class(err), Reason: reason(err),
	}
	return r
}

// OutcomeOf names the outcome of a RotateNow that returned err. A nil err
// is Promoted. An err matching ErrInProgress, ErrRejected or ErrTransient is
// InProgress, Rejected or Transient. A store that cannot be reached
// (keystore.ErrUnavailable) is Transient, as the engine counts it.
// Anything else is Failed.
func OutcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return Promoted
	case errors.Is(err, ErrInProgress):
		return InProgress
	case errors.Is(err, ErrRejected):
		return Rejected
	case errors.Is(err, ErrTransient), errors.Is(err, keystore.ErrUnavailable):
		return Transient
	}
	return Failed
}
