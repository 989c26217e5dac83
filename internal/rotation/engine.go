// Package rotation runs keyturn's key rotations: the four steps Secrets
// Manager invokes a rotation function with (createSecret, setSecret,
// testSecret, finishSecret), the same steps in process for the file store,
// and the staging of the next key.
//
// A rotation takes the next key from KEYTURN_STAGED or has an issuer mint
// one, proves it works against the provider, and only then moves AWSCURRENT
// to it. A key the provider rejects is never promoted: it is kept under
// KEYTURN_REJECTED with a last_failure record and AWSPENDING is cleared, so
// the next rotation can start. Every step can be replayed: a step that
// already happened changes nothing.
package rotation

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/issuer"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// Engine runs rotations of the secrets in Store. It is safe for concurrent
// use, because the store's label rules keep two rotations of one secret
// apart.
type Engine struct {
	// Store holds the secrets being rotated and the issuers' admin keys.
	Store keystore.Store
	// Checker proves keys work against their provider. It also applies the
	// host policy that decides where keys may be sent.
	Checker provider.Checker
	// Issuers maps a keyturn:issuer tag value to the issuer that mints keys
	// for it. Secrets whose issuer is "staged" need none, and nil means no
	// minting issuer is configured.
	Issuers map[string]issuer.Issuer
	// Logger receives one line per step and outcome. Nil discards them.
	Logger *slog.Logger
	// Now returns the current time for timestamps in values and for the
	// age of a rotation in progress. Nil is time.Now.
	Now func() time.Time
	// RotationTimeout bounds one RotateNow: its steps run under a context
	// with this deadline, and the clean-up after a failed step takes at
	// most 10 seconds more. Zero is DefaultRotationTimeout.
	RotationTimeout time.Duration
	// StaleAfter is the age at which RotateNow considers a file-store
	// rotation in progress abandoned by a rotator that stopped
	// mid-rotation, and resumes it. It must exceed the RotationTimeout of
	// every rotator sharing the store plus the 10-second clean-up, and
	// RotateNow rejects a value at or below its own bound. Zero is twice
	// that bound: 2 × (RotationTimeout + 10s), 10m20s by default.
	StaleAfter time.Duration
	// Revoked reports whether a retire entry of secretID is known to be
	// revoked at the provider. A rotation drops such entries from the retire
	// list it carries forward, so that the list holds only keys still to
	// revoke. Nil reports none, and every entry is carried forward.
	Revoked func(secretID string, r keystore.Retired) bool
}

// DefaultRotationTimeout is the RotationTimeout of an Engine that sets none.
const DefaultRotationTimeout = 5 * time.Minute

// call is one engine operation on one secret: a step, a RotateNow or a
// Stage. It carries what every helper needs to word errors and logs.
type call struct {
	e        *Engine
	op       string
	secretID string
	token    string
	desc     keystore.Description
	// resumedFrom is the stale rotation's version that a RotateNow took
	// over, if any.
	resumedFrom string
	// inRotateNow is set for a step that RotateNow runs in process. It
	// abandons the rotation after a failed step, so the step's error must
	// not promise that the pending version is kept.
	inRotateNow bool
	// consumedStaged is the KEYTURN_STAGED version that finishSecret took
	// the label off because the promoted key came from it.
	consumedStaged string
}

// Run performs one rotation step for the version token of secretID, as
// Secrets Manager's rotation event requests. Before any step it checks that
// rotation is enabled and that token is a version of the secret at
// AWSPENDING. A token already at AWSCURRENT means the step has nothing to do.
func (e *Engine) Run(ctx context.Context, step Step, secretID, token string) error {
	_, err := e.runStep(ctx, step, secretID, token, false)
	return err
}

// runStep runs and logs one step. For a finishSecret that promoted a
// staged key, it returns the KEYTURN_STAGED version the key came from.
func (e *Engine) runStep(ctx context.Context, step Step, secretID, token string, inRotateNow bool) (consumedStaged string, err error) {
	start := time.Now()
	c := &call{e: e, op: string(step), secretID: secretID, token: token, inRotateNow: inRotateNow}
	note, err := c.run(ctx, step)
	c.logStep(ctx, start, note, err)
	return c.consumedStaged, err
}

func (c *call) run(ctx context.Context, step Step) (string, error) {
	if !slices.Contains(Steps, step) {
		_, err := ParseStep(string(step))
		return "", c.errorf(ErrConfig, err, "invalid rotation event")
	}
	current, err := c.checkToken(ctx)
	if err != nil {
		return "", err
	}
	if current {
		if step == FinishSecret {
			return c.tidyAfterFinish(ctx)
		}
		return "version is already AWSCURRENT", nil
	}

	switch step {
	case CreateSecret:
		return c.createSecret(ctx)
	case SetSecret:
		return "nothing to set", nil
	case TestSecret:
		return c.testSecret(ctx)
	default:
		return c.finishSecret(ctx)
	}
}

// checkToken makes the checks AWS's rotation templates make before every
// step. It reports whether the token's version is already AWSCURRENT.
func (c *call) checkToken(ctx context.Context) (bool, error) {
	if err := c.describe(ctx); err != nil {
		return false, err
	}
	if err := c.checkEnabled(); err != nil {
		return false, err
	}
	stages, ok := c.desc.Versions[c.token]
	if !ok {
		return false, c.errorf(ErrNotPending, nil,
			"the token is not a version of this secret: start a new rotation for a new token")
	}
	if slices.Contains(stages, keystore.StageCurrent) {
		return true, nil
	}
	if !slices.Contains(stages, keystore.StagePending) {
		return false, c.errorf(ErrNotPending, nil,
			"the version is not %s (it has %s): start a new rotation",
			keystore.StagePending, describeStages(stages))
	}
	return false, nil
}

func (c *call) describe(ctx context.Context) error {
	d, err := c.e.Store.Describe(ctx, c.secretID)
	if err != nil {
		return c.storeError(err, "describe secret")
	}
	c.desc = d
	return nil
}

func (c *call) checkEnabled() error {
	if c.desc.Rotation.Enabled {
		return nil
	}
	return c.errorf(ErrConfig, nil,
		"rotation is not enabled: on the file store 'rotator add' sets a schedule, "+
			"on AWS Terraform's aws_secretsmanager_secret_rotation enables it")
}

// name returns the secret's name, for the commands that errors suggest.
// The id the caller gave may be an ARN, as in Secrets Manager's rotation
// events, and the name is what an operator types.
func (c *call) name() string {
	if c.desc.SecretID != "" {
		return c.desc.SecretID
	}
	return c.secretID
}

// settings reads the secret's settings from its tags.
func (c *call) settings() (keystore.Settings, error) {
	s, err := keystore.SettingsFromTags(c.desc.Tags)
	if err != nil {
		return keystore.Settings{}, c.errorf(ErrConfig, err, "invalid settings tags")
	}
	return s, nil
}

// versionHolding returns the version that holds stage, re-reading the
// description so that labels moved by an earlier helper are seen.
func (c *call) versionHolding(ctx context.Context, stage string) (string, error) {
	if err := c.describe(ctx); err != nil {
		return "", err
	}
	return c.desc.VersionWithStage(stage), nil
}

// removeStage takes stage off version, if version still holds it.
func (c *call) removeStage(ctx context.Context, stage, version string) error {
	if err := c.describe(ctx); err != nil {
		return err
	}
	if !slices.Contains(c.desc.Versions[version], stage) {
		return nil
	}
	err := c.e.Store.UpdateStage(ctx, keystore.StageInput{
		SecretID: c.secretID, Stage: stage, RemoveFromVersion: version,
	})
	if err != nil {
		return c.storeError(err, "remove "+stage+" from version "+version)
	}
	return nil
}

func describeStages(stages []string) string {
	if len(stages) == 0 {
		return "no stages"
	}
	return "stages " + strings.Join(stages, ", ")
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e *Engine) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// StepLogMessage is the message of the record each step logs.
const StepLogMessage = "rotation step"

// logStep writes the one line each step leaves: what it did or why it
// failed. No attribute carries a key; Reason strings are public.
func (c *call) logStep(ctx context.Context, start time.Time, note string, err error) {
	attrs := []slog.Attr{
		slog.String("secret_id", c.secretID),
		slog.String("step", c.op),
		slog.String("version_id", c.token),
	}
	level := slog.LevelInfo
	if err == nil {
		attrs = append(attrs, slog.String("outcome", "ok"), slog.String("reason", note))
	} else {
		level = slog.LevelWarn
		if !errors.Is(err, ErrTransient) && !errors.Is(err, ErrInProgress) {
			level = slog.LevelError
		}
		attrs = append(attrs, slog.String("outcome", "failed"),
			slog.String("class", class(err)), slog.String("reason", reason(err)))
	}
	attrs = append(attrs, slog.Duration("duration", time.Since(start)))
	c.e.logger().LogAttrs(ctx, level, StepLogMessage, attrs...)
}
