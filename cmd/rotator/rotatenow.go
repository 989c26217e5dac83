package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

const rotateNowUsage = `
Usage: rotator rotate-now SECRET [--timeout 2m] [--no-wait]

Rotates SECRET now: takes the staged key (or has the issuer mint one),
proves it against the provider and promotes it to AWSCURRENT.

On the file store the rotation runs in this process, within --timeout
(retries of a failing provider check stop in time to report). On AWS it
calls RotateSecret, which invokes the rotation Lambda, and polls the secret
until the rotation ends or --timeout passes.

Exit codes:
  0  promoted: the new key is AWSCURRENT
  1  error, or the rotation failed without promoting
  2  usage error
  3  rejected: the provider rejected the new key; it was not promoted
  4  transient failure (timeout, rate limit, provider outage): retry later
  5  in progress: another rotation of the secret is running, or --no-wait

Example:
  rotator rotate-now prod/openai --timeout 5m
`

const defaultPollInterval = 2 * time.Second

type rotateFlags struct {
	storeFlags
	output  outputFlag
	timeout time.Duration
	noWait  bool
}

func (a *app) rotateNow(ctx context.Context, args []string) error {
	f := rotateFlags{output: outputText}
	fs := a.newFlagSet("rotate-now", rotateNowUsage)
	f.register(fs)
	f.output.register(fs)
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long the rotation may take (on AWS: how long to wait for it), as a Go `DURATION` such as 90s or 5m")
	fs.BoolVar(&f.noWait, "no-wait", false, "on AWS, return as soon as the rotation has started (exit code 5)")
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	secretID, err := oneSecretArg("rotate-now", positional)
	if err != nil {
		return err
	}
	if f.timeout <= 0 {
		return usageErrorf("rotate-now: --timeout %s must be positive", f.timeout)
	}
	return a.runRotateNow(ctx, secretID, &f)
}

func (a *app) runRotateNow(ctx context.Context, secretID string, f *rotateFlags) error {
	s, err := a.resolve(&f.storeFlags)
	if err != nil {
		return err
	}
	store, closeStore, err := a.openStore(ctx, s)
	if err != nil {
		return err
	}
	defer closeStore()
	var res rotation.Result
	if s.store.kind == storeAWS {
		res, err = a.rotateOnAWS(ctx, store, secretID, f)
	} else {
		rctx, cancel := context.WithTimeout(ctx, f.timeout)
		res, err = a.rotateInProcess(rctx, store, s, secretID)
		cancel()
	}
	res.SecretID = secretID
	return a.reportRotation(res, err, f.output)
}

func (a *app) rotateInProcess(ctx context.Context, store keystore.Store, s settings, secretID string) (rotation.Result, error) {
	engine, err := newEngine(store, s, a.getenv, a.stderrLogger(slog.LevelWarn))
	if err != nil {
		return rotation.Result{}, err
	}
	res, err := engine.RotateNow(ctx, secretID)
	if err != nil && res.Outcome == "" {
		res.Outcome = outcomeOf(err)
	}
	return res, err
}

// outcomeOf names the outcome an engine error stands for.
func outcomeOf(err error) rotation.Outcome {
	switch {
	case errors.Is(err, rotation.ErrInProgress):
		return rotation.InProgress
	case errors.Is(err, rotation.ErrRejected):
		return rotation.Rejected
	case errors.Is(err, rotation.ErrTransient):
		return rotation.Transient
	}
	return rotation.Failed
}

func exitCodeOf(o rotation.Outcome) int {
	switch o {
	case rotation.Promoted:
		return exitOK
	case rotation.InProgress:
		return exitInProgress
	case rotation.Rejected:
		return exitRejected
	case rotation.Transient:
		return exitTransient
	}
	return exitError
}

type rotationJSON struct {
	SecretID  string            `json:"secret_id"`
	VersionID string            `json:"version_id,omitempty"`
	Outcome   string            `json:"outcome"`
	Failure   *keystore.Failure `json:"failure,omitempty"`
	Error     string            `json:"error,omitempty"`
}

// reportRotation prints the outcome on stdout and returns the error that
// carries its exit code.
func (a *app) reportRotation(res rotation.Result, err error, out outputFlag) error {
	if res.Outcome == "" {
		res.Outcome = rotation.Failed
	}
	if out == outputJSON {
		j := rotationJSON{SecretID: res.SecretID, VersionID: res.VersionID, Outcome: string(res.Outcome), Failure: res.Failure}
		if err != nil {
			j.Error = err.Error()
		}
		if werr := a.writeJSON(j); werr != nil {
			return werr
		}
	} else {
		a.printRotation(res)
	}
	code := exitCodeOf(res.Outcome)
	if err != nil {
		return rotationError(res.SecretID, code, err)
	}
	if code != exitOK {
		return errSilent{code}
	}
	return nil
}

func (a *app) printRotation(res rotation.Result) {
	version := ""
	if res.VersionID != "" {
		version = " version " + res.VersionID
	}
	switch res.Outcome {
	case rotation.Promoted:
		fmt.Fprintf(a.stdout, "promoted %s%s to AWSCURRENT\n", res.SecretID, version)
	case rotation.InProgress:
		fmt.Fprintf(a.stdout, "rotation in progress: %s%s\n", res.SecretID, version)
	default:
		fmt.Fprintf(a.stdout, "%s: %s%s was not promoted\n", res.Outcome, res.SecretID, version)
	}
	if f := res.Failure; f != nil {
		fmt.Fprintf(a.stdout, "last failure: %s at %s (%s): %s\n", f.Step, formatTime(f.At), f.Class, f.Reason)
	}
}

func rotationError(secretID string, code int, err error) error {
	ce := withCode(code, err)
	ce.code = code
	switch {
	case errors.Is(err, rotation.ErrNothingToPromote):
		ce.withHint("stage the next key first: rotator stage %s --file KEYFILE", secretID)
	case code == exitInProgress:
		ce.withHint("wait for it to end, then see 'rotator status %s'", secretID)
	case code == exitTransient:
		ce.withHint("the provider or store failed for now; retry later")
	case code == exitRejected:
		ce.withHint("stage a working key with 'rotator stage %s --validate'", secretID)
	}
	return ce
}

// rotateOnAWS starts a rotation with RotateSecret and polls the secret
// until it ends. The rotation Lambda runs the steps.
func (a *app) rotateOnAWS(ctx context.Context, store keystore.Store, secretID string, f *rotateFlags) (rotation.Result, error) {
	if res, err := precheckAWS(ctx, store, secretID); err != nil {
		return res, err
	}
	token, err := store.BeginRotation(ctx, secretID, "")
	if errors.Is(err, keystore.ErrInvalidRequest) {
		return rotation.Result{Outcome: rotation.InProgress}, fmt.Errorf("rotate-now %s: %w", secretID, err)
	}
	if err != nil {
		return rotation.Result{Outcome: rotation.Failed}, fmt.Errorf("rotate-now %s: %w", secretID, err)
	}
	if f.noWait {
		return rotation.Result{VersionID: token, Outcome: rotation.InProgress}, nil
	}
	return a.pollRotation(ctx, store, secretID, token, f.timeout)
}

// precheckAWS rejects a rotation that is bound to fail, before RotateSecret
// creates a pending version for it.
func precheckAWS(ctx context.Context, store keystore.Store, secretID string) (rotation.Result, error) {
	failed := rotation.Result{Outcome: rotation.Failed}
	d, err := store.Describe(ctx, secretID)
	if err != nil {
		return failed, fmt.Errorf("rotate-now: %w", err)
	}
	if !keystore.IsManaged(d.Tags) {
		return failed, fmt.Errorf("rotate-now: secret %s is not managed by keyturn: it has no %s tag", secretID, keystore.TagProvider)
	}
	settings, err := keystore.SettingsFromTags(d.Tags)
	if err != nil {
		return failed, fmt.Errorf("rotate-now: secret %s: %w", secretID, err)
	}
	if pending := stuckPending(d); pending != "" {
		return rotation.Result{VersionID: pending, Outcome: rotation.InProgress},
			fmt.Errorf("rotate-now %s: %w: AWSPENDING is on version %s", secretID, rotation.ErrInProgress, pending)
	}
	if settings.Issuer == keystore.IssuerStaged && d.VersionWithStage(keystore.StageStaged) == "" {
		return failed, fmt.Errorf("rotate-now %s: %w: issuer is staged and no key is staged", secretID, rotation.ErrNothingToPromote)
	}
	return rotation.Result{}, nil
}

// stuckPending returns the version holding AWSPENDING if it is not also
// AWSCURRENT's, which means a rotation has not finished.
func stuckPending(d keystore.Description) string {
	pending := d.VersionWithStage(keystore.StagePending)
	if pending == "" || pending == d.VersionWithStage(keystore.StageCurrent) {
		return ""
	}
	return pending
}

// pollRotation describes the secret until the rotation of token ends or
// timeout passes, and reads the outcome from the labels.
func (a *app) pollRotation(ctx context.Context, store keystore.Store, secretID, token string, timeout time.Duration) (rotation.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := a.pollInterval
	if interval <= 0 {
		interval = defaultPollInterval
	}
	for {
		res, done, err := rotationState(ctx, store, secretID, token)
		if done || err != nil && ctx.Err() == nil {
			return res, err
		}
		select {
		case <-ctx.Done():
			return a.timedOut(store, secretID, token, timeout)
		case <-time.After(interval):
		}
	}
}

// rotationState reads the outcome of the rotation of token: done is false
// while AWSPENDING is still on token.
func rotationState(ctx context.Context, store keystore.Store, secretID, token string) (rotation.Result, bool, error) {
	res := rotation.Result{VersionID: token}
	d, err := store.Describe(ctx, secretID)
	if err != nil {
		// The rotation has started and goes on without us.
		res.Outcome = rotation.InProgress
		return res, false, fmt.Errorf("rotate-now %s version %s: %w: the rotation started but its state cannot be read: %w",
			secretID, token, rotation.ErrInProgress, err)
	}
	current := d.VersionWithStage(keystore.StageCurrent) == token
	pending := d.VersionWithStage(keystore.StagePending) == token
	if current {
		// finishSecret removes AWSPENDING after moving AWSCURRENT; waiting
		// for that lets it finish its work before we report.
		res.Outcome = rotation.Promoted
		return res, !pending, nil
	}
	if pending {
		return res, false, nil
	}
	res.Failure = failureFor(ctx, store, secretID, token)
	if res.Failure != nil && res.Failure.Class == "rejected" {
		res.Outcome = rotation.Rejected
		return res, true, fmt.Errorf("rotate-now %s version %s: %w: %s", secretID, token, rotation.ErrRejected, res.Failure.Reason)
	}
	res.Outcome = rotation.Failed
	return res, true, fmt.Errorf("rotate-now %s version %s: the rotation ended without promoting the version; the rotation function's logs say why", secretID, token)
}

// timedOut reports a rotation still pending at the timeout: in progress, or
// transient if a failure of this rotation is recorded.
func (a *app) timedOut(store keystore.Store, secretID, token string, timeout time.Duration) (rotation.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := rotation.Result{VersionID: token, Outcome: rotation.InProgress}
	if d, err := store.Describe(ctx, secretID); err == nil && d.VersionWithStage(keystore.StageCurrent) == token {
		res.Outcome = rotation.Promoted
		return res, nil
	}
	if res.Failure = failureFor(ctx, store, secretID, token); res.Failure != nil {
		res.Outcome = rotation.Transient
		return res, fmt.Errorf("rotate-now %s version %s: %w: still pending after %s: %s",
			secretID, token, rotation.ErrTransient, timeout, res.Failure.Reason)
	}
	return res, fmt.Errorf("rotate-now %s version %s: %w: still pending after %s; Secrets Manager retries failed steps",
		secretID, token, rotation.ErrInProgress, timeout)
}

// failureFor returns the last_failure recorded for the rotation of token
// in the KEYTURN_REJECTED version, or nil.
func failureFor(ctx context.Context, store keystore.Store, secretID, token string) *keystore.Failure {
	f := lastFailure(ctx, store, secretID)
	if f == nil || f.VersionID != token {
		return nil
	}
	return f
}

// lastFailure reads last_failure from the KEYTURN_REJECTED version, or nil.
func lastFailure(ctx context.Context, store keystore.Store, secretID string) *keystore.Failure {
	v, err := store.Get(ctx, secretID, keystore.ByStage(keystore.StageRejected))
	if err != nil {
		return nil
	}
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		return nil
	}
	return value.LastFailure
}
