package rotation

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/keyturn/keyturn/internal/issuer"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// mintName returns the provider-side name of the key minted for a rotation:
// it carries the secret id and the rotation token, so that the key can be
// traced back to the rotation that made it.
func mintName(secretID, token string) string {
	return "keyturn/" + secretID + "/" + token
}

func (c *call) mint(ctx context.Context, settings keystore.Settings) (candidate, error) {
	iss, err := c.issuer(settings)
	if err != nil {
		return candidate{}, err
	}
	admin, err := c.adminKey(ctx, settings)
	if err != nil {
		return candidate{}, err
	}

	m, err := iss.Mint(ctx, issuer.MintRequest{
		SecretID: c.secretID, Token: c.token, Name: mintName(c.secretID, c.token),
		Settings: settings, Admin: admin,
	})
	if errors.Is(err, issuer.ErrMisconfigured) {
		return candidate{}, c.errorf(ErrConfig, err,
			"issuer %s cannot mint a key: fix its configuration or the admin key in %s", settings.Issuer, settings.IssuerSecret)
	}
	if err != nil {
		return candidate{}, c.errorf(ErrTransient, err, "issuer %s failed to mint a key", settings.Issuer)
	}
	if m.Key.IsZero() {
		c.revoke(ctx, settings, m.KeyID)
		return candidate{}, c.errorf(ErrTransient, nil, "issuer %s minted an empty key", settings.Issuer)
	}
	v := keystore.Value{APIKey: m.Key, KeyID: m.KeyID, CreatedAt: c.e.now()}
	return candidate{value: v, minted: true}, nil
}

// issuer returns the minting issuer the settings name.
func (c *call) issuer(settings keystore.Settings) (issuer.Issuer, error) {
	if iss, ok := c.e.Issuers[settings.Issuer]; ok && iss != nil {
		return iss, nil
	}
	names := make([]string, 0, len(c.e.Issuers)+1)
	names = append(names, keystore.IssuerStaged)
	for name := range c.e.Issuers {
		names = append(names, name)
	}
	slices.Sort(names)
	return nil, c.errorf(ErrConfig, nil,
		"tag %s: issuer %q is not configured in this rotator: use one of %s",
		keystore.TagIssuer, settings.Issuer, strings.Join(names, ", "))
}

// adminKey reads the issuer's admin key: the api_key of the AWSCURRENT
// value of the secret that keyturn:issuer-secret names.
func (c *call) adminKey(ctx context.Context, settings keystore.Settings) (keystore.Secret, error) {
	v, err := c.e.Store.Get(ctx, settings.IssuerSecret, keystore.Current())
	if errors.Is(err, keystore.ErrNotFound) {
		return keystore.Secret{}, c.errorf(ErrConfig, err,
			"tag %s: issuer secret %s has no %s value: store the issuer's admin key in it",
			keystore.TagIssuerSecret, settings.IssuerSecret, keystore.StageCurrent)
	}
	if err != nil {
		return keystore.Secret{}, c.storeError(err, "read issuer secret "+settings.IssuerSecret)
	}
	admin, err := keystore.ParseValue(v.Value)
	if err != nil {
		return keystore.Secret{}, c.errorf(ErrConfig, err,
			"issuer secret %s version %s is malformed", settings.IssuerSecret, v.VersionID)
	}
	if err := provider.ValidateKey(admin.APIKey); err != nil {
		return keystore.Secret{}, c.errorf(ErrConfig, err,
			"issuer secret %s version %s: its admin key cannot be sent", settings.IssuerSecret, v.VersionID)
	}
	return admin.APIKey, nil
}

// revoke revokes a minted key at its issuer. It is best effort: a key that
// stays alive is logged for an operator, and the rotation goes on. It runs
// under a context of its own, bounded by abandonTimeout, because it is
// often called after a failure that ended the caller's context.
func (c *call) revoke(parent context.Context, settings keystore.Settings, keyID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), abandonTimeout)
	defer cancel()
	if keyID == "" {
		c.warn(ctx, "cannot revoke a minted key without a key id", errors.New("issuer returned no key id"))
		return
	}
	err := c.tryRevoke(ctx, settings, keyID)
	if err != nil {
		c.warn(ctx, "failed to revoke minted key "+keyID+"; revoke it at the provider", err)
		return
	}
	c.e.logger().LogAttrs(ctx, slog.LevelInfo, "revoked minted key",
		slog.String("secret_id", c.secretID), slog.String("version_id", c.token),
		slog.String("key_id", keyID), slog.String("issuer", settings.Issuer))
}

func (c *call) tryRevoke(ctx context.Context, settings keystore.Settings, keyID string) error {
	iss, err := c.issuer(settings)
	if err != nil {
		return err
	}
	admin, err := c.adminKey(ctx, settings)
	if err != nil {
		return err
	}
	return iss.Revoke(ctx, issuer.RevokeRequest{KeyID: keyID, Settings: settings, Admin: admin})
}
