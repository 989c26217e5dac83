package rotation

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// maxRetired caps the retire list. Each rotation adds an entry, and an
// unbounded list would in time pass Secrets Manager's 64 KiB limit on a
// value, after which every write of the secret fails.
const maxRetired = 100

// boundRetired applies the retire list's policy to the next key's list:
//   - an entry that Engine.Revoked reports revoked is dropped;
//   - an entry without a key id whose not_before has passed is dropped with
//     an INFO log, because nothing can revoke a key by an id it lacks;
//   - an entry that names the key being promoted is dropped (see
//     dropNewKey);
//   - past maxRetired entries, the entries with the oldest not_before are
//     dropped, each with a WARN log naming its key id.
//
// NOTE: only `rotator dev` revokes retired keys so far (with
// Engine.RevokeRetired), so elsewhere a key dropped over the cap may still
// be valid at the provider until an operator revokes it.
func (c *call) boundRetired(ctx context.Context, retire []keystore.Retired,
	next keystore.Value, now time.Time) ([]keystore.Retired, error) {
	retire = slices.DeleteFunc(retire, func(r keystore.Retired) bool {
		if c.e.Revoked != nil && c.e.Revoked(c.secretID, r) {
			c.logRetired(ctx, slog.LevelDebug, "dropped a revoked key from the retire list", r)
			return true
		}
		drop := r.KeyID == "" && !now.Before(r.NotBefore)
		if drop {
			c.logRetired(ctx, slog.LevelInfo,
				"dropped a retired key without a key id, past its not_before: nothing can revoke it by id", r)
		}
		return drop
	})
	retire, err := c.dropNewKey(ctx, retire, next)
	if err != nil || len(retire) <= maxRetired {
		return retire, err
	}
	slices.SortStableFunc(retire, func(a, b keystore.Retired) int { return a.NotBefore.Compare(b.NotBefore) })
	excess := len(retire) - maxRetired
	for _, r := range retire[:excess] {
		c.logRetired(ctx, slog.LevelWarn, "dropped a retired key over the retire list's cap of 100 entries: "+
			"key "+cmp.Or(r.KeyID, "without a key id")+" may still be valid at the provider; revoke it by hand", r)
	}
	return retire[excess:], nil
}

func (c *call) logRetired(ctx context.Context, level slog.Level, msg string, r keystore.Retired) {
	c.e.logger().LogAttrs(ctx, level, msg,
		slog.String("secret_id", c.secretID), slog.String("step", c.op),
		slog.String("version_id", c.token), slog.String("retired_version_id", r.VersionID),
		slog.String("key_id", r.KeyID), slog.Time("not_before", r.NotBefore))
}

// dropNewKey removes retire entries that name the key being promoted, as
// when a restored backup brings an old key back: revoking it later would
// revoke the current key.
func (c *call) dropNewKey(ctx context.Context, retire []keystore.Retired,
	next keystore.Value) ([]keystore.Retired, error) {
	var kept []keystore.Retired
	for _, r := range retire {
		same, err := c.retiredIsKey(ctx, r, next)
		if err != nil {
			return nil, err
		}
		if !same {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// retiredIsKey reports whether retire entry r names next's key. Two
// different key ids name different keys, since a provider gives a key one
// id, so only an entry whose key id matches next's, or where either lacks
// one, costs a read of the version it names. The keys themselves are then
// compared, and the key ids decide only when that version is gone or
// malformed.
func (c *call) retiredIsKey(ctx context.Context, r keystore.Retired, next keystore.Value) (bool, error) {
	if r.KeyID != "" && next.KeyID != "" && r.KeyID != next.KeyID {
		return false, nil
	}
	old, ok, err := c.retiredValue(ctx, r)
	if err != nil {
		return false, err
	}
	if !ok {
		return r.KeyID != "" && r.KeyID == next.KeyID, nil
	}
	return sameKey(old, next), nil
}

// retiredValue reads the value of the version r names. It reports false
// when r names no version, or the version is gone or malformed.
func (c *call) retiredValue(ctx context.Context, r keystore.Retired) (keystore.Value, bool, error) {
	if r.VersionID == "" {
		return keystore.Value{}, false, nil
	}
	old, err := c.e.Store.Get(ctx, c.secretID, keystore.ByVersion(r.VersionID))
	if errors.Is(err, keystore.ErrNotFound) {
		return keystore.Value{}, false, nil
	}
	if err != nil {
		return keystore.Value{}, false, c.storeError(err, "read retired version "+r.VersionID)
	}
	v, err := keystore.ParseValue(old.Value)
	if err != nil {
		return keystore.Value{}, false, nil
	}
	return v, true, nil
}
