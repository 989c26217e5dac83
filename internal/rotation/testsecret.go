package rotation

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// testSecret proves the pending key works. A key the provider rejects fails
// for good and is taken out of the rotation, and so is a key that the
// configuration stops from being checked. A transient failure leaves the
// pending version for a retry.
func (c *call) testSecret(ctx context.Context) (string, error) {
	settings, err := c.settings()
	if err != nil {
		return "", err
	}
	pending, err := c.e.Store.Get(ctx, c.secretID, keystore.ByVersion(c.token))
	if errors.Is(err, keystore.ErrNotFound) {
		return c.testConfiguration(ctx, settings)
	}
	if err != nil {
		return "", c.storeError(err, "read the pending version")
	}
	v, err := keystore.ParseValue(pending.Value)
	if err != nil {
		return "", c.rejectMalformed(ctx, c.token, keystore.StagePending, err)
	}

	res, err := c.checkPending(ctx, settings, v)
	if err != nil {
		return "", err
	}
	switch res.Class {
	case provider.Valid:
		return "the provider accepted the key after " + countRequests(res.Attempts), nil
	case provider.Rejected:
		return "", c.reject(ctx, settings, v, res)
	case provider.Misconfigured:
		return "", c.dropMisconfigured(ctx, settings, v, res.Reason)
	}
	return "", c.errorf(ErrTransient, nil, "provider check failed: %s%s", res.Reason, c.pendingKeptNote())
}

// pendingKeptNote returns what becomes of the pending version after a
// transient failure. It is empty in RotateNow, which abandons the rotation
// and notes that in the error itself.
func (c *call) pendingKeptNote() string {
	switch {
	case c.inRotateNow:
		return ""
	case c.desc.Rotation.LambdaARN != "":
		return ": the pending version is kept for Secrets Manager's retry"
	}
	return ": the pending version is kept; run the rotation steps again to retry"
}

func (c *call) check(ctx context.Context, key keystore.Secret, settings keystore.Settings) (provider.Result, error) {
	if c.e.Checker == nil {
		return provider.Result{}, c.errorf(ErrConfig, nil, "the rotation engine has no provider checker")
	}
	return c.e.Checker.Check(ctx, provider.Request{Key: key, Settings: settings}), nil
}

// rejectedReason words a Rejected result as the first sentence of an error
// message, without its full stop. A key can be rejected by keyturn's own
// checks before any request is made.
func rejectedReason(res provider.Result) string {
	if res.Attempts == 0 {
		return "the key was rejected before any request (" + res.Reason + ")"
	}
	return "the provider rejected the key (" + res.Reason + ")"
}

// dropMisconfigured ends a rotation whose key the configuration stops from
// being checked. The pending version keeps the settings it recorded, so a
// retry of this rotation would fail the same way. It revokes a minted key
// and clears AWSPENDING, but leaves a staged key staged and records no
// rejection, because nothing is known against the key.
func (c *call) dropMisconfigured(ctx context.Context, settings keystore.Settings, v keystore.Value, cause string) error {
	stagedVersion, minted, err := c.keySource(ctx, settings, v)
	if err != nil {
		return err
	}
	if minted {
		c.revoke(ctx, settings, v.KeyID)
	}
	if err := c.removeStage(ctx, keystore.StagePending, c.token); err != nil {
		return err
	}
	done := keystore.StagePending + " was removed from the version"
	switch {
	case minted:
		done += ", and the minted key was revoked"
	case stagedVersion != "":
		done += ", and the key stays " + keystore.StageStaged
	}
	return c.errorf(ErrConfig, nil, "cannot check the key: %s. %s. Fix the configuration, then rotate again.",
		cause, done)
}

// reject takes a rejected pending key out of the rotation: it revokes a
// minted key, records the value with last_failure under KEYTURN_REJECTED,
// consumes KEYTURN_STAGED if the key came from it and clears AWSPENDING.
func (c *call) reject(ctx context.Context, settings keystore.Settings, v keystore.Value, res provider.Result) error {
	stagedVersion, minted, err := c.keySource(ctx, settings, v)
	if err != nil {
		return err
	}
	if minted {
		c.revoke(ctx, settings, v.KeyID)
	}

	failure := &keystore.Failure{
		Step: c.op, At: c.e.now(), VersionID: c.token,
		Class: provider.Rejected.String(), Reason: res.Reason,
	}
	if err := c.recordRejected(ctx, v, failure); err != nil {
		return err
	}
	if stagedVersion != "" {
		if err := c.removeStage(ctx, keystore.StageStaged, stagedVersion); err != nil {
			return err
		}
	}
	if err := c.removeStage(ctx, keystore.StagePending, c.token); err != nil {
		return err
	}

	next := "; stage another key with 'rotator stage " + c.name() + " --file KEYFILE'."
	if minted {
		next = ". The minted key was revoked, and the next rotation mints another."
	}
	e := c.errorf(ErrRejected, nil, "%s. It is kept as %s%s",
		rejectedReason(res), keystore.StageRejected, next)
	e.failure = failure
	return e
}

// keySource returns the KEYTURN_STAGED version that holds v's key, or "",
// and whether an issuer minted the key for this rotation: no staged version
// holds it, the secret's issuer mints and the value has a key id.
func (c *call) keySource(ctx context.Context, settings keystore.Settings, v keystore.Value) (string, bool, error) {
	stagedVersion, err := c.stagedVersionOf(ctx, v)
	if err != nil {
		return "", false, err
	}
	minted := stagedVersion == "" && settings.Issuer != keystore.IssuerStaged && v.KeyID != ""
	return stagedVersion, minted, nil
}

// stagedVersionOf returns the KEYTURN_STAGED version that holds the same key
// as v, or "". Comparing keys, rather than remembering the staged version
// between steps, works across Lambda invocations and leaves alone a key that
// was staged again while the rotation ran.
// NOTE: a pending key is taken to be minted when it matches no staged key
// and the issuer mints, so a staged key that is replaced by another during
// the rotation of a minting secret would be revoked if rejected.
func (c *call) stagedVersionOf(ctx context.Context, v keystore.Value) (string, error) {
	staged, err := c.e.Store.Get(ctx, c.secretID, keystore.ByStage(keystore.StageStaged))
	if errors.Is(err, keystore.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", c.storeError(err, "read the staged version")
	}
	sv, err := keystore.ParseValue(staged.Value)
	if err != nil || !sv.APIKey.Equal(v.APIKey) {
		return "", nil
	}
	return staged.VersionID, nil
}

// recordRejected writes the rejected value with its last_failure as a new
// version labelled KEYTURN_REJECTED. The version id is derived from the
// rotation token, so a replayed testSecret finds the record already there
// rather than writing a second one.
func (c *call) recordRejected(ctx context.Context, v keystore.Value, failure *keystore.Failure) error {
	v.LastFailure = failure
	enc, err := v.Encode()
	if err != nil {
		return c.errorf(ErrRejected, err, "cannot encode the rejected value")
	}
	err = c.e.Store.Put(ctx, keystore.PutInput{
		SecretID: c.secretID, Token: rejectedVersionID(c.token), Value: enc,
		Stages: []string{keystore.StageRejected},
	})
	if err != nil && !errors.Is(err, keystore.ErrExists) {
		return c.storeError(err, "write the "+keystore.StageRejected+" version")
	}
	return nil
}

// rejectedNamespace scopes the ids of KEYTURN_REJECTED versions.
var rejectedNamespace = uuid.MustParse("6f1c3a52-8a43-4d4c-9d2e-4b0c1f7e9a10")

// rejectedVersionID returns the id of the KEYTURN_REJECTED version recorded
// for the rotation token: a name-based (version 5) UUID.
func rejectedVersionID(token string) string {
	return uuid.NewSHA1(rejectedNamespace, []byte(token)).String()
}

// testConfiguration is testSecret on an empty AWSPENDING version, which is
// how Secrets Manager tests a rotation configured with
// RotateImmediately=false. It changes nothing: it checks that the issuer is
// usable and that the current key (or, before the first key, the staged
// one) works with the secret's settings.
func (c *call) testConfiguration(ctx context.Context, settings keystore.Settings) (string, error) {
	if settings.Issuer != keystore.IssuerStaged {
		if _, err := c.issuer(settings); err != nil {
			return "", err
		}
		if _, err := c.adminKey(ctx, settings); err != nil {
			return "", err
		}
	}
	stage, key, err := c.keyToProbe(ctx)
	if err != nil || stage == "" {
		return "configuration is valid; there is no key yet to check", err
	}

	res, err := c.check(ctx, key, settings)
	if err != nil {
		return "", err
	}
	switch res.Class {
	case provider.Valid:
		return "configuration is valid and the " + stage + " key works", nil
	case provider.Rejected:
		return "", c.errorf(ErrRejected, nil, "%s key: %s", stage, rejectedReason(res))
	case provider.Misconfigured:
		return "", c.errorf(ErrConfig, nil, "cannot check the %s key: %s", stage, res.Reason)
	}
	return "", c.errorf(ErrTransient, nil, "provider check of the %s key failed: %s", stage, res.Reason)
}

// keyToProbe returns the key a configuration test checks: AWSCURRENT's, or
// KEYTURN_STAGED's for a secret with no key yet. stage is "" when neither
// exists.
func (c *call) keyToProbe(ctx context.Context) (stage string, key keystore.Secret, err error) {
	for _, stage := range []string{keystore.StageCurrent, keystore.StageStaged} {
		v, err := c.e.Store.Get(ctx, c.secretID, keystore.ByStage(stage))
		if errors.Is(err, keystore.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", keystore.Secret{}, c.storeError(err, "read the "+stage+" version")
		}
		value, err := keystore.ParseValue(v.Value)
		if err != nil {
			return "", keystore.Secret{}, c.errorf(ErrConfig, err, "%s version %s is malformed", stage, v.VersionID)
		}
		return stage, value.APIKey, nil
	}
	return "", keystore.Secret{}, nil
}

// countRequests words n requests with the noun that agrees with n.
func countRequests(n int) string {
	if n == 1 {
		return "1 request"
	}
	return fmt.Sprintf("%d requests", n)
}
