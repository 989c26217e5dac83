package rotation

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// PendingRotation is a file-store rotation in progress: AWSPENDING on a
// version that is not AWSCURRENT.
type PendingRotation struct {
	SecretID  string
	VersionID string
	// Since is when the rotation started, by the store's clock: the pending
	// version's creation time, or the secret's last change while
	// createSecret has not filled the version. The store does not report
	// when an empty version was created, and its last change is no earlier.
	Since time.Time
	// StaleAt is Since plus StaleAfter. From then on RotateNow considers the
	// rotation abandoned and resumes it.
	StaleAt time.Time
	// StaleIn is StaleAt minus the engine's current time when the
	// PendingRotation was read. It is zero or less once the rotation is
	// stale.
	StaleIn time.Duration
}

// pendingRotation is a PendingRotation with the pending version's value,
// which is zero while createSecret has not filled the version.
type pendingRotation struct {
	PendingRotation
	value keystore.Secret
}

// PendingRotation returns the file-store rotation in progress on the secret
// that d describes, if there is one that RotateNow would resume once it is
// stale. A rotation on AWS, where Secrets Manager retries the steps itself,
// is never reported.
func (e *Engine) PendingRotation(ctx context.Context, d keystore.Description) (PendingRotation, bool, error) {
	c := &call{e: e, op: "rotate", secretID: d.SecretID}
	if err := c.checkTimeouts(); err != nil {
		return PendingRotation{}, false, err
	}
	p, ok, err := e.pending(ctx, d)
	return p.PendingRotation, ok, err
}

func (e *Engine) pending(ctx context.Context, d keystore.Description) (pendingRotation, bool, error) {
	version := d.VersionWithStage(keystore.StagePending)
	if d.Rotation.LambdaARN != "" || version == "" ||
		slices.Contains(d.Versions[version], keystore.StageCurrent) {
		return pendingRotation{}, false, nil
	}
	c := &call{e: e, op: "rotate", secretID: d.SecretID, token: version}
	p := pendingRotation{PendingRotation: PendingRotation{SecretID: d.SecretID, VersionID: version}}
	v, err := e.Store.Get(ctx, d.SecretID, keystore.ByVersion(version))
	switch {
	case err == nil:
		p.Since, p.value = v.Created, v.Value
	case errors.Is(err, keystore.ErrNotFound):
		p.Since = d.LastChanged
	default:
		return pendingRotation{}, false, c.storeError(err, "read the pending version")
	}
	if p.Since.IsZero() {
		// A store that records no times gives no age to judge by.
		return pendingRotation{}, false, nil
	}
	p.StaleAt = p.Since.Add(e.staleAfter())
	p.StaleIn = p.StaleAt.Sub(e.now())
	return p, true, nil
}

// inProgressError reports a rotation in progress that is not stale yet.
func (c *call) inProgressError(p PendingRotation) error {
	return c.errorf(ErrInProgress, nil,
		"rotation in progress since %s: wait for the rotator working on it to finish; "+
			"if none is, a rotation started after %s considers it stale and resumes it, "+
			"or 'rotator abandon %s' abandons it now",
		formatTime(p.Since), formatTime(p.StaleAt), p.SecretID)
}

// resume takes over a stale rotation and returns the token of the rotation
// that continues it.
//
// The takeover removes AWSPENDING from the stale version, naming that
// version in RemoveFromVersion. The store makes that removal succeed for
// one caller only, and the version never gets AWSPENDING back, so of two
// rotators resuming at once the second gets ErrInProgress and neither mints
// or revokes twice. The rotation then goes on under a new token: the stale
// version's value, if createSecret wrote one, is carried to the new
// version, so a minted or staged key is tried again rather than replaced.
// Keeping the stale token instead would need a compare-and-swap that the
// Store interface does not offer.
func (c *call) resume(ctx context.Context, p pendingRotation) (string, error) {
	err := c.e.Store.UpdateStage(ctx, keystore.StageInput{
		SecretID: c.secretID, Stage: keystore.StagePending, RemoveFromVersion: p.VersionID,
	})
	if errors.Is(err, keystore.ErrInvalidParameter) {
		return "", c.errorf(ErrInProgress, nil,
			"rotation in progress: another rotator resumed the rotation left stale since %s first",
			formatTime(p.Since))
	}
	if err != nil {
		return "", c.storeError(err, "take over the stale rotation")
	}

	// NOTE: a rotator that stops between the takeover and the end of
	// continueRotation leaves the stale version's minted key, if any,
	// unrevoked, because no label points to that version any more.
	token, err := c.continueRotation(ctx, p)
	if err != nil {
		return "", err
	}
	c.resumedFrom = p.VersionID
	c.e.logger().LogAttrs(ctx, slog.LevelInfo, "resuming the rotation left in progress",
		slog.String("secret_id", c.secretID), slog.String("since", formatTime(p.Since)),
		slog.String("stale_version_id", p.VersionID),
		slog.String("version_id", token), slog.Bool("key_carried", !p.value.IsZero()))
	return token, nil
}

// continueRotation starts the rotation that continues the stale one p and
// fills it with the stale version's value. If that fails, it revokes the
// stale version's minted key, which nothing else would.
func (c *call) continueRotation(ctx context.Context, p pendingRotation) (string, error) {
	token, err := c.e.Store.BeginRotation(ctx, c.secretID, "")
	if err != nil {
		c.dropStale(ctx, p, err)
		return "", c.beginError(ctx, err)
	}
	if p.value.IsZero() {
		return token, nil
	}

	err = c.e.Store.Put(ctx, keystore.PutInput{
		SecretID: c.secretID, Token: token, Value: p.value,
		Stages: []string{keystore.StagePending},
	})
	if err != nil {
		c.dropStale(ctx, p, err)
		fresh := *c
		fresh.token = token
		fresh.abandon(ctx)
		return "", c.storeError(err, "carry the stale rotation's value to version "+token)
	}
	return token, nil
}

// dropStale logs why a stale rotation could not be resumed and revokes its
// key if an issuer minted it.
func (c *call) dropStale(parent context.Context, p pendingRotation, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), abandonTimeout)
	defer cancel()
	c.e.logger().LogAttrs(ctx, slog.LevelWarn, "failed to resume the stale rotation",
		slog.String("secret_id", c.secretID), slog.String("stale_version_id", p.VersionID),
		slog.String("error", cause.Error()))
	if !p.value.IsZero() {
		c.revokeIfMinted(ctx, p.value)
	}
}

// checkTimeouts rejects RotationTimeout and StaleAfter values under which a
// live rotation could be taken for stale.
func (c *call) checkTimeouts() error {
	e := c.e
	if e.RotationTimeout < 0 || e.StaleAfter < 0 {
		return c.errorf(ErrConfig, nil,
			"RotationTimeout %s and StaleAfter %s must not be negative: use zero for the defaults",
			e.RotationTimeout, e.StaleAfter)
	}
	longest := e.rotationTimeout() + abandonTimeout
	if e.staleAfter() <= longest {
		return c.errorf(ErrConfig, nil,
			"StaleAfter %s must exceed RotationTimeout %s plus the %s clean-up, "+
				"or a live rotation could be taken for stale: raise StaleAfter, or leave it zero for the default",
			e.StaleAfter, e.rotationTimeout(), abandonTimeout)
	}
	return nil
}

func (e *Engine) rotationTimeout() time.Duration {
	if e.RotationTimeout > 0 {
		return e.RotationTimeout
	}
	return DefaultRotationTimeout
}

func (e *Engine) staleAfter() time.Duration {
	if e.StaleAfter > 0 {
		return e.StaleAfter
	}
	return 2 * (e.rotationTimeout() + abandonTimeout)
}

func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}
