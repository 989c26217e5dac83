package rotation

import (
	"context"
	"errors"

	"github.com/keyturn/keyturn/keystore"
)

// finishSecret promotes the pending key: AWSCURRENT moves to the token and
// the store gives AWSPREVIOUS to the version that held it. The old key is
// already in the new value's retire list (see buildValue), so promotion is
// label moves only.
func (c *call) finishSecret(ctx context.Context) (string, error) {
	_, err := c.e.Store.Get(ctx, c.secretID, keystore.ByVersion(c.token))
	if errors.Is(err, keystore.ErrNotFound) {
		return "", c.errorf(ErrNotPending, err,
			"the version has no value because createSecret has not run for it: nothing was promoted")
	}
	if err != nil {
		return "", c.storeError(err, "read the pending version")
	}

	holder := c.desc.VersionWithStage(keystore.StageCurrent)
	err = c.e.Store.UpdateStage(ctx, keystore.StageInput{
		SecretID: c.secretID, Stage: keystore.StageCurrent,
		MoveToVersion: c.token, RemoveFromVersion: holder,
	})
	if err != nil {
		return "", c.storeError(err, "move "+keystore.StageCurrent+" to the version")
	}
	if _, err := c.tidyAfterFinish(ctx); err != nil {
		return "", err
	}
	if holder == "" {
		return "promoted the secret's first key", nil
	}
	return "promoted; version " + holder + " is now " + keystore.StagePrevious, nil
}

// tidyAfterFinish completes a promotion: it consumes KEYTURN_STAGED if it
// holds the promoted key, and then removes AWSPENDING from the token. The
// order matters when the rotator stops between the two. AWSPENDING left on
// the token marks the rotation unfinished, so a replay completes it. A
// KEYTURN_STAGED left on the promoted key would instead have the next
// rotation promote that key again. It runs on every finishSecret whose token is
// already AWSCURRENT, so a replay finishes work an interrupted one left,
// and writes nothing when there is none.
func (c *call) tidyAfterFinish(ctx context.Context) (string, error) {
	note, err := c.consumeStaged(ctx)
	if err != nil {
		return "", err
	}
	if err := c.removeStage(ctx, keystore.StagePending, c.token); err != nil {
		return "", err
	}
	return note, nil
}

// consumeStaged removes KEYTURN_STAGED from the version holding the key
// that the token promoted, if one does.
func (c *call) consumeStaged(ctx context.Context) (string, error) {
	promoted, err := c.e.Store.Get(ctx, c.secretID, keystore.ByVersion(c.token))
	if err != nil {
		return "", c.storeError(err, "read the current version")
	}
	v, err := keystore.ParseValue(promoted.Value)
	if err != nil {
		// A malformed current value cannot match a staged key.
		return "version is already AWSCURRENT", nil
	}
	staged, err := c.stagedVersionOf(ctx, v)
	if err != nil || staged == "" {
		return "version is already AWSCURRENT", err
	}
	if err := c.removeStage(ctx, keystore.StageStaged, staged); err != nil {
		return "", err
	}
	c.consumedStaged = staged
	return "consumed staged version " + staged, nil
}
