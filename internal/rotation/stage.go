package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// StageResult is the outcome of a StageValue: the version it wrote and the
// changes it made to the value.
type StageResult struct {
	// VersionID is the new KEYTURN_STAGED version.
	VersionID string
	// Notes lists the changes Stage made to the value before writing it,
	// one sentence each: settings replaced by the secret's tags, a retire
	// list or last_failure dropped. Notes hold no key.
	Notes []string
}

// Stage writes v as the next key of secretID and returns the new version's
// id. It is StageValue with each note logged as a warning.
func (e *Engine) Stage(ctx context.Context, secretID string, v keystore.Value, validate bool) (string, error) {
	res, err := e.StageValue(ctx, secretID, v, validate)
	for _, note := range res.Notes {
		e.logger().LogAttrs(ctx, slog.LevelWarn, "staged value adjusted",
			slog.String("secret_id", secretID), slog.String("version_id", res.VersionID),
			slog.String("note", note))
	}
	return res.VersionID, err
}

// StageValue writes v as the next key of secretID, under a new version
// labelled KEYTURN_STAGED (the label leaves the version that held it).
//
// The staged value records the secret's settings from its tags, which are
// what the rotation validates the key with: settings that v carries and
// that differ from the tags are replaced, with a note. The rotation
// rebuilds retire and last_failure from AWSCURRENT, so StageValue drops
// them from v, with a note. It fills in created_at when v lacks it.
//
// A key that can never be sent in an HTTP header (see provider.ValidateKey)
// is ErrRejected, and a key_id that contains the api_key is ErrConfig,
// because key ids are logged and printed. The key AWSCURRENT already holds
// is ErrConfig, since promoting it would change nothing. AWSPREVIOUS's key
// may be staged, and the rotation then rolls the secret back to it. With validate set it first checks
// the key against the provider with the tags' settings, and writes nothing
// if the check fails. The error is then ErrRejected for a key the provider
// rejects, ErrConfig when the settings or the host policy stop the check,
// and ErrTransient when the check may pass later. The notes are returned
// on failure too.
func (e *Engine) StageValue(ctx context.Context, secretID string, v keystore.Value, validate bool) (StageResult, error) {
	c := &call{e: e, op: "stage", secretID: secretID}
	if err := c.checkStagedKey(v); err != nil {
		return StageResult{}, err
	}
	if err := c.describe(ctx); err != nil {
		return StageResult{}, err
	}
	settings, err := c.settings()
	if err != nil {
		return StageResult{}, err
	}
	if err := c.checkNotCurrent(ctx, v); err != nil {
		return StageResult{}, err
	}

	v, notes := c.prepareStaged(v, settings)
	if validate {
		if err := c.validate(ctx, v); err != nil {
			return StageResult{Notes: notes}, err
		}
	}
	version, err := c.putStaged(ctx, v)
	return StageResult{VersionID: version, Notes: notes}, err
}

// checkStagedKey rejects a value whose key is missing, cannot be sent, or
// would leak through its key_id. The errors name fields, never the key.
func (c *call) checkStagedKey(v keystore.Value) error {
	if v.APIKey.IsZero() {
		return c.errorf(ErrConfig, nil, "the value has no api_key: put the key in the file to stage")
	}
	if err := provider.ValidateKey(v.APIKey); err != nil {
		return c.errorf(ErrRejected, err, "nothing was staged")
	}
	if keyIDLeaksKey(v) {
		return c.errorf(ErrConfig, errKeyIDLeaksKey, "nothing was staged")
	}
	return nil
}

// checkNotCurrent rejects a value whose key AWSCURRENT already contains.
// A current value that does not parse rejects nothing, because staging a
// key is how such a secret is repaired.
func (c *call) checkNotCurrent(ctx context.Context, v keystore.Value) error {
	cur, err := c.e.Store.Get(ctx, c.secretID, keystore.Current())
	if errors.Is(err, keystore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return c.storeError(err, "read the current version")
	}
	cv, err := keystore.ParseValue(cur.Value)
	if err != nil || !cv.APIKey.Equal(v.APIKey) {
		return nil
	}
	return c.errorf(ErrConfig, nil,
		"the key is already the current key (version %s): stage a new key", cur.VersionID)
}

var errKeyIDLeaksKey = errors.New("the value's key_id contains its api_key, and key ids are logged and printed: " +
	"set key_id to the provider's id for the key (such as key_abc), or leave it out")

// keyIDLeaksKey reports whether v's key_id contains its key.
func keyIDLeaksKey(v keystore.Value) bool {
	return v.KeyID != "" && !v.APIKey.IsZero() && strings.Contains(v.KeyID, v.APIKey.Reveal())
}

// prepareStaged completes v for staging and returns notes on what it
// changed.
func (c *call) prepareStaged(v keystore.Value, settings keystore.Settings) (keystore.Value, []string) {
	var notes []string
	if diff := settingsDiff(v.Settings, settings); len(diff) > 0 {
		notes = append(notes, "the value's settings differ from the secret's tags in "+
			strings.Join(diff, ", ")+": the staged value records the tags' settings, "+
			"which the rotation validates the key with")
	}
	v.Settings = settings
	if n := len(v.Retire); n > 0 {
		notes = append(notes, fmt.Sprintf("dropped the value's retire list (%s): "+
			"the rotation rebuilds it from %s", countEntries(n), keystore.StageCurrent))
		v.Retire = nil
	}
	if v.LastFailure != nil {
		notes = append(notes, "dropped the value's last_failure: "+
			"it describes an earlier rotation, and the next rotation records its own")
		v.LastFailure = nil
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = c.e.now()
	}
	return v, notes
}

// settingsDiff lists the settings that staged sets to something other
// than the tags do, each with its tag and the tag's value. Fields staged
// leaves empty are not listed. Only tag values are quoted: the value's own
// settings were never validated, and a base URL there could carry
// credentials.
func settingsDiff(staged, tags keystore.Settings) []string {
	var diff []string
	add := func(field, tag, tagValue string) {
		diff = append(diff, fmt.Sprintf("%s (tag %s is %q)", field, tag, tagValue))
	}
	for _, f := range []struct{ field, tag, staged, tags string }{
		{"provider", keystore.TagProvider, staged.Provider, tags.Provider},
		{"base_url", keystore.TagBaseURL, staged.BaseURL, tags.BaseURL},
		{"issuer", keystore.TagIssuer, staged.Issuer, tags.Issuer},
		{"issuer_secret", keystore.TagIssuerSecret, staged.IssuerSecret, tags.IssuerSecret},
		{"probe", keystore.TagProbe, staged.Probe, tags.Probe},
	} {
		if f.staged != "" && f.staged != f.tags {
			add(f.field, f.tag, f.tags)
		}
	}
	if staged.RequiredModels != nil && !slices.Equal(staged.RequiredModels, tags.RequiredModels) {
		add("required_models", keystore.TagRequiredModels, strings.Join(tags.RequiredModels, " "))
	}
	if staged.Grace != 0 && staged.Grace != tags.Grace {
		add("grace", keystore.TagGrace, tags.Tags()[keystore.TagGrace])
	}
	return diff
}

func countEntries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
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
		return c.errorf(ErrRejected, nil, "%s. Nothing was staged.", rejectedReason(res))
	case provider.Misconfigured:
		return c.errorf(ErrConfig, nil, "cannot check the key: %s. Nothing was staged.", res.Reason)
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
