package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// candidate is the key a rotation tries and where it came from.
type candidate struct {
	value keystore.Value
	// stagedVersion is the KEYTURN_STAGED version the key came from; empty
	// for a minted key.
	stagedVersion string
	minted        bool
}

// currentKey is the AWSCURRENT version when the rotation starts.
type currentKey struct {
	versionID string
	value     keystore.Value
	// parsed is false when the current value is malformed; its retire list
	// and key id are then unknown.
	parsed bool
}

// createSecret fills the empty AWSPENDING version under the token with the
// next key: the staged one, or one the issuer mints.
func (c *call) createSecret(ctx context.Context) (string, error) {
	_, err := c.e.Store.Get(ctx, c.secretID, keystore.ByVersion(c.token))
	if err == nil {
		return "the pending version already has a value", nil
	}
	if !errors.Is(err, keystore.ErrNotFound) {
		return "", c.storeError(err, "read the pending version")
	}

	note, err := c.fillPending(ctx)
	if err != nil && !errors.Is(err, ErrTransient) {
		// Nothing was written under the token and a retry would fail the
		// same way, so clear AWSPENDING rather than block the next rotation.
		if rmErr := c.removeStage(ctx, keystore.StagePending, c.token); rmErr != nil {
			c.warn(ctx, "could not clear AWSPENDING after a failed createSecret", rmErr)
		}
	}
	return note, err
}

func (c *call) fillPending(ctx context.Context) (string, error) {
	settings, err := c.settings()
	if err != nil {
		return "", err
	}
	current, err := c.readCurrent(ctx)
	if err != nil {
		return "", err
	}
	next, err := c.nextKey(ctx, settings)
	if err != nil {
		return "", err
	}
	if err := c.checkStagedNotCurrent(ctx, next, current); err != nil {
		return "", err
	}

	value, err := c.buildValue(ctx, next, current, settings)
	put := putNotWritten
	if err == nil {
		put, err = c.putPending(ctx, value)
	}
	if next.minted {
		c.settleMinted(ctx, settings, next.value.KeyID, put)
	}
	if err != nil {
		return "", err
	}
	if put == putLost {
		return "another createSecret filled the pending version first, and its value is kept", nil
	}
	if next.minted {
		return fmt.Sprintf("minted a key (provider key id %s); it is pending", next.value.KeyID), nil
	}
	return "staged version " + next.stagedVersion + " is pending", nil
}

// readCurrent returns the AWSCURRENT version, or nil for a secret's first
// key. A malformed current value does not stop the rotation, which is how
// such a secret gets a working key again.
func (c *call) readCurrent(ctx context.Context) (*currentKey, error) {
	v, err := c.e.Store.Get(ctx, c.secretID, keystore.Current())
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, c.storeError(err, "read the current version")
	}
	cur := &currentKey{versionID: v.VersionID}
	cur.value, err = keystore.ParseValue(v.Value)
	if err != nil {
		c.warn(ctx, "current version "+v.VersionID+" is malformed; its retire list is lost", err)
		return cur, nil
	}
	cur.parsed = true
	return cur, nil
}

// nextKey takes the staged key or, with no key staged, has the issuer mint
// one. A staged key wins even for a minting issuer, because that is how a
// backup restore or an operator overrides the issuer.
func (c *call) nextKey(ctx context.Context, settings keystore.Settings) (candidate, error) {
	staged, ok, err := c.readStaged(ctx)
	if err != nil || ok {
		return staged, err
	}
	if settings.Issuer == keystore.IssuerStaged {
		return candidate{}, c.errorf(ErrNothingToPromote, nil,
			"no key is staged, and issuer %q cannot mint one: stage a key with 'rotator stage %s --file KEYFILE', then rotate again",
			keystore.IssuerStaged, c.name())
	}
	return c.mint(ctx, settings)
}

// readStaged reads KEYTURN_STAGED. A malformed staged value is moved to
// KEYTURN_REJECTED, so that the rotation is not stuck on it.
func (c *call) readStaged(ctx context.Context) (candidate, bool, error) {
	v, err := c.e.Store.Get(ctx, c.secretID, keystore.ByStage(keystore.StageStaged))
	if errors.Is(err, keystore.ErrNotFound) {
		return candidate{}, false, nil
	}
	if err != nil {
		return candidate{}, false, c.storeError(err, "read the staged version")
	}
	value, err := keystore.ParseValue(v.Value)
	if err == nil && keyIDLeaksKey(value) {
		// Stage rejects such a value, but a value written to the store by
		// other means is checked here, before its key id reaches a log.
		err = errKeyIDLeaksKey
	}
	if err != nil {
		return candidate{}, false, c.rejectMalformed(ctx, v.VersionID, keystore.StageStaged, err)
	}
	return candidate{value: value, stagedVersion: v.VersionID}, true, nil
}

// checkStagedNotCurrent rejects a staged key that AWSCURRENT already
// contains, as a key put in the store without Stage may be. Promoting it
// would change nothing and make AWSPREVIOUS a copy of AWSCURRENT. The label
// is taken off the staged version, which is otherwise kept as it was, and
// nothing is recorded under KEYTURN_REJECTED: the provider did not reject
// the key, and that label's value would then hold the working current key.
func (c *call) checkStagedNotCurrent(ctx context.Context, next candidate, cur *currentKey) error {
	if next.minted || cur == nil || !cur.parsed || !cur.value.APIKey.Equal(next.value.APIKey) {
		return nil
	}
	if err := c.removeStage(ctx, keystore.StageStaged, next.stagedVersion); err != nil {
		return err
	}
	return c.errorf(ErrConfig, nil,
		"%s version %s contains the current key (version %s), so it was not promoted and is no longer %s: "+
			"stage a new key with 'rotator stage %s --file KEYFILE', then rotate again",
		keystore.StageStaged, next.stagedVersion, cur.versionID, keystore.StageStaged, c.name())
}

// rejectMalformed moves KEYTURN_REJECTED to a version whose value does not
// parse and takes label off it. The value itself stays as it was, for
// diagnosis: there is no JSON object to add last_failure to.
func (c *call) rejectMalformed(ctx context.Context, versionID, label string, cause error) error {
	holder, err := c.versionHolding(ctx, keystore.StageRejected)
	if err != nil {
		return err
	}
	if holder != versionID {
		err = c.e.Store.UpdateStage(ctx, keystore.StageInput{
			SecretID: c.secretID, Stage: keystore.StageRejected,
			MoveToVersion: versionID, RemoveFromVersion: holder,
		})
		if err != nil {
			return c.storeError(err, "move "+keystore.StageRejected+" to malformed version "+versionID)
		}
	}
	if err := c.removeStage(ctx, label, versionID); err != nil {
		return err
	}
	return c.errorf(ErrRejected, cause,
		"%s version %s is malformed and is now %s: stage a corrected key with 'rotator stage %s --file KEYFILE'",
		label, versionID, keystore.StageRejected, c.name())
}

// buildValue completes the next key's value: the secret's current settings,
// and the retire list carried forward with the current key added to it.
//
// The current key enters retire here, in createSecret, with not_before =
// now + grace, because finishSecret cannot change the pending value: a
// version's value is written once. So finishSecret promotes with label moves
// alone and needs no PutSecretValue after promotion.
// NOTE: grace counts from createSecret, so a rotation that stalls between
// createSecret and finishSecret shortens the old key's grace by the stall.
func (c *call) buildValue(ctx context.Context, next candidate, cur *currentKey,
	settings keystore.Settings) (keystore.Value, error) {
	now := c.e.now()
	v := next.value
	v.Settings = settings
	v.LastFailure = nil
	if v.CreatedAt.IsZero() {
		v.CreatedAt = now
	}

	var retire []keystore.Retired
	if cur != nil {
		retire = mergeRetired(cur.value.Retire, v.Retire)
		if !cur.parsed || !sameKey(cur.value, v) {
			retire = mergeRetired(retire, []keystore.Retired{{
				KeyID: cur.value.KeyID, VersionID: cur.versionID,
				NotBefore: now.Add(time.Duration(settings.Grace)),
			}})
		}
	} else {
		retire = mergeRetired(nil, v.Retire)
	}
	retire, err := c.boundRetired(ctx, retire, v, now)
	if err != nil {
		return keystore.Value{}, err
	}
	v.Retire = retire

	if cur != nil && cur.parsed {
		v = v.WithUnknownFieldsFrom(cur.value)
	}
	return v, nil
}

// putResult is what putPending learned about the token's version.
type putResult int

const (
	// putNotWritten: the token's version has no value, so the next key is
	// stored nowhere.
	putNotWritten putResult = iota
	// putWritten: the token's version holds the next key.
	putWritten
	// putLost: a concurrent invocation filled the version first, and that
	// value is kept.
	putLost
	// putUnknown: the write failed in a way that may have stored it, and
	// the version could not be read to tell.
	putUnknown
)

// putPending writes the next key under the token. A write that fails with
// ErrUnavailable may still have landed, so the version is read back to
// learn which: the next key stored counts as written.
func (c *call) putPending(ctx context.Context, v keystore.Value) (putResult, error) {
	enc, err := v.Encode()
	if err != nil {
		return putNotWritten, c.errorf(ErrRejected, err, "cannot encode the next key's value")
	}
	err = c.e.Store.Put(ctx, keystore.PutInput{
		SecretID: c.secretID, Token: c.token, Value: enc,
		Stages: []string{keystore.StagePending},
	})
	switch {
	case err == nil:
		return putWritten, nil
	case errors.Is(err, keystore.ErrExists):
		return putLost, nil
	case errors.Is(err, keystore.ErrUnavailable):
		return c.readBackPending(ctx, v, err)
	}
	return putNotWritten, c.storeError(err, "write the pending version")
}

// readBackPending reads the token's version after a write that failed with
// putErr, under a context of its own, since the write may have failed
// because the caller's context ended.
func (c *call) readBackPending(parent context.Context, v keystore.Value, putErr error) (putResult, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), abandonTimeout)
	defer cancel()
	stored, err := c.e.Store.Get(ctx, c.secretID, keystore.ByVersion(c.token))
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return putNotWritten, c.storeError(putErr, "write the pending version")
	case err != nil:
		c.warn(ctx, "could not read the pending version back after a failed write", err)
		return putUnknown, c.storeError(putErr, "write the pending version")
	}
	sv, err := keystore.ParseValue(stored.Value)
	if err == nil && sameKey(sv, v) {
		return putWritten, nil
	}
	return putLost, nil
}

// settleMinted revokes a minted key that put did not store. A key that may
// have been stored is kept, because revoking it could revoke the key the
// rotation promotes. If it was not stored, the retried createSecret mints
// under the same provider-side name, and the issuer deletes the lost key.
func (c *call) settleMinted(ctx context.Context, settings keystore.Settings, keyID string, put putResult) {
	switch put {
	case putNotWritten, putLost:
		c.revoke(ctx, settings, keyID)
	case putUnknown:
		c.warn(ctx, "minted key "+keyID+" may be stored under the token, so it is not revoked",
			errors.New("the write of the pending version had an unknown result"))
	}
}

func (c *call) warn(ctx context.Context, msg string, err error) {
	c.e.logger().LogAttrs(ctx, slog.LevelWarn, msg,
		slog.String("secret_id", c.secretID), slog.String("step", c.op),
		slog.String("version_id", c.token), slog.String("error", err.Error()))
}
