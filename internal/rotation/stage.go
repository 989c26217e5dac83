package rotation

import (
	"context"
	"log/slog"

	"github.com/google/uuid"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// Stage writes v as the next key of secretID, under a new version labelled
// KEYTURN_STAGED (the label leaves the version that held it). It fills in
// created_at and the settings from the secret's tags when v lacks them. A
// key that can never be sent in an HTTP header (see provider.ValidateKey)
// is ErrRejected. With validate set it first checks the key against the
// provider, and writes nothing if the check fails. The error is then
// ErrRejected for a key the provider rejects, ErrConfig when the settings
// or the host policy stop the check, and ErrTransient when the check may
// pass later. It returns the new version's id.
func (e *Engine) Stage(ctx context.Context, secretID string, v keystore.Value, validate bool) (string, error) {
	c := &call{e: e, op: "stage", secretID: secretID}
	if v.APIKey.IsZero() {
		return "", c.errorf(ErrConfig, nil, "the value has no api_key: put the key in the file to stage")
	}
	if err := provider.ValidateKey(v.APIKey); err != nil {
		return "", c.errorf(ErrRejected, err, "nothing was staged")
	}
	if err := c.describe(ctx); err != nil {
		return "", err
	}
	settings, err := c.settings()
	if err != nil {
		return "", err
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = e.now()
	}
	if v.Settings.Provider == "" {
		v.Settings = settings
	}
	if validate {
		if err := c.validate(ctx, v); err != nil {
			return "", err
		}
	}
	return c.putStaged(ctx, v)
}

func (c *call) validate(ctx context.Context, v keystore.Value) error {
	res, err := c.check(ctx, v.APIKey, v.Settings)
	if err != nil {
		return err
	}
	switch res.Class {
	case provider.Valid:
		return nil
	case provider.Rejected:
		return c.errorf(ErrRejected, nil, "%s: nothing was staged", rejectedReason(res))
	case provider.Misconfigured:
		return c.errorf(ErrConfig, nil, "cannot check the key: %s: nothing was staged", res.Reason)
	}
	return c.errorf(ErrTransient, nil, "provider check failed: %s: nothing was staged", res.Reason)
}

func (c *call) putStaged(ctx context.Context, v keystore.Value) (string, error) {
	enc, err := v.Encode()
	if err != nil {
		return "", c.errorf(ErrConfig, err, "cannot encode the value")
	}
	c.token = uuid.NewString()
	err = c.e.Store.Put(ctx, keystore.PutInput{
		SecretID: c.secretID, Token: c.token, Value: enc,
		Stages: []string{keystore.StageStaged},
	})
	if err != nil {
		return "", c.storeError(err, "write the staged version")
	}
	c.e.logger().LogAttrs(ctx, slog.LevelInfo, "staged key",
		slog.String("secret_id", c.secretID), slog.String("version_id", c.token),
		slog.Any("key", v.APIKey))
	return c.token, nil
}
