package rotation

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/keyturn/keyturn/internal/issuer"
	"github.com/keyturn/keyturn/keystore"
)

// RevokeResult is the outcome of one RevokeRetired pass.
type RevokeResult struct {
	// VersionID is the AWSCURRENT version whose retire list was read, or
	// "" when the secret has no current version.
	VersionID string
	// Revoked lists the entries that the issuer revoked in this pass.
	Revoked []keystore.Retired
	// Failed lists the due entries whose revocation failed. The next pass
	// tries them again.
	Failed []RevokeFailure
	// Next is the earliest not_before still to come among the entries
	// that have a key id and were not skipped. It is the zero time when no
	// such entry waits.
	Next time.Time
}

// RevokeFailure is a retire entry that could not be revoked.
type RevokeFailure struct {
	Retired keystore.Retired
	// Err is an *Error that matches ErrConfig when the issuer rejected the
	// request for good, and ErrTransient otherwise.
	Err error
}

// RevokeRetired revokes, at the issuer that the secret's tags name and
// with the admin key from its issuer secret, each entry of the AWSCURRENT
// value's retire list that has a key id and whose not_before has passed.
// It skips the entries for which skip returns true, due or not (nil skips
// none). It never revokes the key at AWSCURRENT, AWSPENDING or
// KEYTURN_STAGED, since a rotation may be about to promote an old key
// again, as when a restored backup brings one back.
//
// NOTE: a key staged after the pass has read the labels can still be
// revoked by it; the next rotation then rejects it at testSecret.
//
// It writes nothing to the store, because a version's value is written
// once. The entries stay in the list and the next rotation carries them
// forward, so a later pass revokes them again unless skip excludes them.
// The dev issuer counts a key that is already gone as revoked.
//
// Each revocation and each failure is logged with the secret, the key id
// and the retired version. A failed entry is reported in Failed, not as
// the error. The error reports a pass that could revoke nothing: the
// secret, its settings, its current value, its issuer or the admin key
// could not be read, or ctx ended.
func (e *Engine) RevokeRetired(ctx context.Context, secretID string, skip func(keystore.Retired) bool) (RevokeResult, error) {
	c := &call{e: e, op: "retire", secretID: secretID}
	current, err := c.currentForRevoke(ctx)
	if err != nil || c.token == "" {
		return RevokeResult{}, err
	}
	res := RevokeResult{VersionID: c.token}
	protected, err := c.protectedKeys(ctx, current)
	if err != nil {
		return res, err
	}
	due := c.dueRetired(ctx, current, protected, skip, &res)
	if len(due) == 0 {
		return res, nil
	}

	settings, err := c.settings()
	if err != nil {
		return res, err
	}
	iss, admin, err := c.revoker(ctx, settings)
	if err != nil {
		return res, err
	}
	for _, r := range due {
		if err := ctx.Err(); err != nil {
			return res, c.errorf(ErrTransient, err, "stopped before every due retired key was revoked")
		}
		c.revokeRetired(ctx, iss, admin, settings, r, &res)
	}
	return res, nil
}

// currentForRevoke reads the secret's AWSCURRENT value and sets c.token
// to its version. A secret without a current version leaves c.token "".
func (c *call) currentForRevoke(ctx context.Context) (keystore.Value, error) {
	if err := c.describe(ctx); err != nil {
		return keystore.Value{}, err
	}
	c.token = c.desc.VersionWithStage(keystore.StageCurrent)
	if c.token == "" {
		return keystore.Value{}, nil
	}
	v, err := c.e.Store.Get(ctx, c.secretID, keystore.ByVersion(c.token))
	if err != nil {
		return keystore.Value{}, c.storeError(err, "read the current version")
	}
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		return keystore.Value{}, c.errorf(ErrConfig, err,
			"the current value is malformed, so its retire list cannot be read: "+
				"stage a well-formed value and rotate, then revoke the old keys at the provider by hand")
	}
	return value, nil
}

// protectedKeys returns the version ids and key ids of the values that no
// pass may revoke: current's, and those at AWSPENDING and KEYTURN_STAGED.
// Ids are prefixed "version:" and "key:".
func (c *call) protectedKeys(ctx context.Context, current keystore.Value) (map[string]bool, error) {
	protected := map[string]bool{"version:" + c.token: true}
	if current.KeyID != "" {
		protected["key:"+current.KeyID] = true
	}
	for _, stage := range []string{keystore.StagePending, keystore.StageStaged} {
		id := c.desc.VersionWithStage(stage)
		if id == "" {
			continue
		}
		protected["version:"+id] = true
		v, err := c.e.Store.Get(ctx, c.secretID, keystore.ByVersion(id))
		if errors.Is(err, keystore.ErrNotFound) {
			// An empty AWSPENDING, as RotateSecret creates, has no value.
			continue
		}
		if err != nil {
			return nil, c.storeError(err, "read the "+stage+" version")
		}
		if value, err := keystore.ParseValue(v.Value); err == nil && value.KeyID != "" {
			protected["key:"+value.KeyID] = true
		}
	}
	return protected, nil
}

// dueRetired returns the entries of current's retire list to revoke now,
// and sets res.Next to the earliest not_before still to come.
func (c *call) dueRetired(ctx context.Context, current keystore.Value, protected map[string]bool,
	skip func(keystore.Retired) bool, res *RevokeResult) []keystore.Retired {
	now := c.e.now()
	var due []keystore.Retired
	for _, r := range current.Retire {
		switch {
		case r.KeyID == "":
			// Nothing can revoke a key by an id it lacks.
		case skip != nil && skip(r):
		case now.Before(r.NotBefore):
			if res.Next.IsZero() || r.NotBefore.Before(res.Next) {
				res.Next = r.NotBefore
			}
		case r.KeyID == current.KeyID || r.VersionID == c.token:
			c.logRetired(ctx, slog.LevelWarn,
				"not revoking a retired key that is the current key: remove it from the retire list by hand", r)
		case protected["key:"+r.KeyID] || protected["version:"+r.VersionID]:
			c.logRetired(ctx, slog.LevelInfo,
				"not revoking a retired key that is pending or staged: the rotation that promotes it drops it from the retire list", r)
		default:
			due = append(due, r)
		}
	}
	return due
}

// revoker returns the issuer that revokes the secret's keys and its admin
// key, as minting reads them.
func (c *call) revoker(ctx context.Context, settings keystore.Settings) (issuer.Issuer, keystore.Secret, error) {
	if settings.Issuer == keystore.IssuerStaged {
		return nil, keystore.Secret{}, c.errorf(ErrConfig, nil,
			"issuer %s cannot revoke keys: revoke the retired keys at the provider by hand", keystore.IssuerStaged)
	}
	iss, err := c.issuer(settings)
	if err != nil {
		return nil, keystore.Secret{}, err
	}
	admin, err := c.adminKey(ctx, settings)
	if err != nil {
		return nil, keystore.Secret{}, err
	}
	return iss, admin, nil
}

// revokeRetired revokes one due entry and records the outcome in res.
func (c *call) revokeRetired(ctx context.Context, iss issuer.Issuer, admin keystore.Secret,
	settings keystore.Settings, r keystore.Retired, res *RevokeResult) {
	err := iss.Revoke(ctx, issuer.RevokeRequest{KeyID: r.KeyID, Settings: settings, Admin: admin})
	if err == nil {
		res.Revoked = append(res.Revoked, r)
		c.logRetired(ctx, slog.LevelInfo, "revoked retired key", r)
		return
	}
	kind := ErrTransient
	if errors.Is(err, issuer.ErrMisconfigured) {
		kind = ErrConfig
	}
	rerr := c.errorf(kind, err, "failed to revoke retired key %s of version %s at issuer %s: "+
		"the next pass tries again; if it keeps failing, revoke key %s at the provider by hand",
		r.KeyID, r.VersionID, settings.Issuer, r.KeyID)
	res.Failed = append(res.Failed, RevokeFailure{Retired: r, Err: rerr})
	if ctx.Err() != nil {
		// A pass cut short by shutdown is not worth a warning: the next
		// run's pass tries the entry again.
		return
	}
	c.e.logger().LogAttrs(ctx, slog.LevelWarn, "failed to revoke retired key",
		slog.String("secret_id", c.secretID), slog.String("version_id", c.token),
		slog.String("retired_version_id", r.VersionID), slog.String("key_id", r.KeyID),
		slog.String("issuer", settings.Issuer), slog.String("class", class(rerr)),
		slog.String("error", err.Error()))
}
