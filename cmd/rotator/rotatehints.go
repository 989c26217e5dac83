package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// outcomeInterrupted is the outcome of a rotate-now that Ctrl-C or SIGTERM
// stopped before the rotation ended.
const outcomeInterrupted rotation.Outcome = "interrupted"

// rotationError gives err the outcome's exit code and the next step to
// take, as a complete command.
func rotationError(t rotateTarget, res rotation.Result, code int, err error) error {
	var hinted *cli.Error
	if errors.As(err, &hinted) && len(hinted.Hints) > 0 {
		hinted.Code = code
		return hinted
	}
	ce := cli.WithCode(code, err)
	ce.Code = code
	id := res.SecretID
	switch {
	case errors.Is(err, rotation.ErrNothingToPromote):
		// The engine's message already gives the stage command.
	case code == exitInProgress && strings.Contains(err.Error(), "rotator abandon"):
		// The engine's message already gives the abandon command.
		ce.WithHint("see it with 'rotator status %s'", id)
	case code == exitInProgress:
		ce.WithHint("see it with 'rotator status %s'; if no rotator is working on it, 'rotator abandon %s' drops it", id, id)
	case code == exitTransient:
		ce.WithHint("the provider or store failed for now; retry later with 'rotator rotate-now %s'", id)
	case code == exitRejected:
		ce.WithHint("%s", rejectedHint(t, res, err))
	case errors.Is(err, rotation.ErrConfig):
		if hint := configHint(t, err); hint != "" {
			ce.WithHint("%s", hint)
		}
	}
	return ce
}

var missingModelsPattern = regexp.MustCompile(`required models? (.+?) not listed`)

// rejectedHint advises on a rejected key: a key without a required model
// needs the model list or the key's access fixed, a minted key needs the
// issuer's account checked, and a staged key needs replacing.
func rejectedHint(t rotateTarget, res rotation.Result, err error) string {
	id := t.secretID
	text := err.Error()
	if res.Failure != nil {
		text += " " + res.Failure.Reason
	}
	if m := missingModelsPattern.FindStringSubmatch(text); m != nil {
		return fmt.Sprintf("the new key does not list %s, which %s requires: give the key access to it at the provider, or correct the list (%s)",
			m[1], keystore.TagRequiredModels, settingsChange(t, "--required-models \"MODEL ...\""))
	}
	if t.settings.Issuer != keystore.IssuerStaged {
		return fmt.Sprintf("issuer %s minted a key that the provider rejected: check the issuer's account and the admin key in %s, then run 'rotator rotate-now %s' again",
			t.settings.Issuer, t.settings.IssuerSecret, id)
	}
	if strings.Contains(err.Error(), fmt.Sprintf("'rotator stage %s --file KEYFILE'", id)) {
		// The engine's message already gives the stage command.
		return "pass --validate when you stage the next key, so that the provider checks it first"
	}
	return fmt.Sprintf("stage a working key with 'rotator stage %s --file KEYFILE --validate'", id)
}

// configHint advises on a configuration error, or returns "".
func configHint(t rotateTarget, err error) string {
	if strings.Contains(err.Error(), keystore.TagBaseURL) {
		return fmt.Sprintf("the secret's %s is not the provider's API root: %s, then run 'rotator rotate-now %s' again",
			keystore.TagBaseURL, settingsChange(t, "--base-url URL"), t.secretID)
	}
	return ""
}

// settingsChange words how to change a secret's setting: with rotator
// update on the file store, in Terraform on AWS.
func settingsChange(t rotateTarget, flag string) string {
	if t.onAWS {
		return "on AWS, change the secret's tag in Terraform"
	}
	return fmt.Sprintf("fix it with 'rotator update %s %s'", t.secretID, flag)
}

// noRotationFunctionError reports an AWS secret that Secrets Manager
// cannot rotate, because no rotation function is configured.
func noRotationFunctionError(secretID string) error {
	return cli.WithCode(exitError, fmt.Errorf("rotate-now %s: %w: the secret has no rotation function, so Secrets Manager cannot rotate it",
		secretID, rotation.ErrConfig)).
		WithHint("set one with Terraform (rotation_lambda_arn of aws_secretsmanager_secret_rotation), then run 'rotator rotate-now %s' again", secretID)
}

// interruptedInProcess reports a file-store rotation that Ctrl-C stopped
// by what the store shows of it now: promoted if it finished first, else
// abandoned by the engine's clean-up, or left in progress if that failed.
func interruptedInProcess(ctx context.Context, store keystore.Store, res rotation.Result) (rotation.Result, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	id, version := res.SecretID, res.VersionID
	d, err := store.Describe(cctx, id)
	if err != nil {
		res.Outcome, res.Failure = outcomeInterrupted, nil
		return res, fmt.Errorf("interrupted: the state of the rotation of %s cannot be read: %w", id, err)
	}
	if version != "" && d.VersionWithStage(keystore.StageCurrent) == version {
		res.Outcome, res.Failure = rotation.Promoted, nil
		return res, nil
	}
	res.Outcome, res.Failure = outcomeInterrupted, nil
	if version == "" {
		return res, fmt.Errorf("interrupted: no rotation of %s was started", id)
	}
	if pendingVersion(d) == version {
		return res, cli.WithCode(exitError, fmt.Errorf("interrupted: the rotation of %s is left in progress: %s stays on version %s",
			id, keystore.StagePending, version)).
			WithHint("the next rotation resumes it once it is stale, or 'rotator abandon %s' drops it now", id)
	}
	msg := fmt.Sprintf("interrupted: the rotation of %s was abandoned (%s removed); AWSCURRENT is unchanged", id, keystore.StagePending)
	if d.VersionWithStage(keystore.StageStaged) != "" {
		msg += ", and the staged key stays staged"
	}
	return res, cli.WithCode(exitError, errors.New(msg)).
		WithHint("run 'rotator rotate-now %s' again to rotate", id)
}
