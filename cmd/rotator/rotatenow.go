package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/issuer"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/schedule"
	"github.com/keyturn/keyturn/internal/storeurl"
	"github.com/keyturn/keyturn/keystore"
)

var rotateNowUsage = fmt.Sprintf(`
Usage: rotator rotate-now SECRET [--timeout 2m] [--no-wait] [--output text|json]

Rotates SECRET now: takes the staged key (or has the issuer mint one),
proves it against the provider and promotes it to AWSCURRENT.

On the file store the rotation runs in this process, within --timeout, at
most %s (retries of a failing provider check stop in time to report).
A rotation that a stopped rotator left in progress is resumed once it is
stale ('rotator status SECRET' shows when); until then it is reported in
progress. Ctrl-C abandons the rotation (AWSPENDING is removed, a staged key
stays staged) and exits 130.

On AWS it calls RotateSecret, which invokes the secret's rotation function,
and polls the secret until the rotation ends or --timeout passes. A
rotation still unfinished then goes on: Secrets Manager retries it, and the
rotation function's logs show why a step failed. Ctrl-C stops the wait, not
the rotation, and exits 130. A secret without a rotation function cannot
be rotated: Terraform sets one.

The outcome goes to stdout; with --output json it is one object, printed
even when the rotation fails:
  {"secret_id": "...", "version_id": "...", "outcome": "promoted",
   "resumed_from": "...",   (only when a left-over rotation was resumed)
   "staged_version_id": "...", (the staged version whose key was promoted,
                               on the file store; not for a minted key)
   "failure": {...},        (the step that failed, and why)
   "error": "..."}          (only when no failed step explains it)
The error and its hints go to stderr, once.

Exit codes:
  0    promoted: the new key is AWSCURRENT
  1    error, or the rotation failed without promoting (such as a setting
       to fix)
  2    usage error
  3    rejected: the provider rejected the new key; it was not promoted
  4    transient failure (timeout, rate limit, provider or store outage): retry later
  5    in progress: another rotation of the secret is running, the AWS
       rotation has not finished within --timeout, or --no-wait
  130  interrupted by Ctrl-C (143 for SIGTERM)

Example:
  rotator rotate-now prod/openai --timeout 5m
`, schedule.FormatDuration(rotation.DefaultRotationTimeout))

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
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long the rotation may take (on AWS: how long to wait for it), as a Go `DURATION` such as 90s or 5m; at most "+schedule.FormatDuration(rotation.DefaultRotationTimeout)+" on the file store")
	fs.BoolVar(&f.noWait, "no-wait", false, "on AWS, return as soon as the rotation has started (exit code 5)")
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	secretID, err := oneSecretArg("rotate-now", positional)
	if err != nil {
		return err
	}
	if err := positiveDurations("rotate-now", namedDuration{"timeout", f.timeout, "2m"}); err != nil {
		return err
	}
	return a.runRotateNow(ctx, secretID, &f)
}

func (a *app) runRotateNow(ctx context.Context, secretID string, f *rotateFlags) error {
	s, err := a.resolve(&f.storeFlags)
	if err != nil {
		return err
	}
	// The engine ends every file-store rotation at DefaultRotationTimeout,
	// the bound that other rotators sharing the store judge staleness by,
	// so a longer --timeout could not be kept.
	if s.store.Kind == storeurl.File && f.timeout > rotation.DefaultRotationTimeout {
		return cli.Usagef("rotate-now: --timeout %s is longer than %s, the longest a rotation may run on the file store",
			schedule.FormatDuration(f.timeout), schedule.FormatDuration(rotation.DefaultRotationTimeout)).
			WithHint("pass --timeout %s or less", schedule.FormatDuration(rotation.DefaultRotationTimeout))
	}
	store, closeStore, err := a.openStore(ctx, s, false)
	if err != nil {
		return err
	}
	defer closeStore()

	t := rotateTarget{secretID: secretID, onAWS: s.store.Kind == storeurl.AWS}
	res, err := a.precheck(ctx, store, s, &t)
	if err == nil {
		if t.onAWS {
			res, err = a.rotateOnAWS(ctx, store, t.desc, f)
		} else {
			rctx, cancel := context.WithTimeout(ctx, f.timeout)
			res, err = a.rotateInProcess(rctx, store, s, secretID)
			cancel()
			if interrupted(ctx) {
				res, err = interruptedInProcess(ctx, store, res)
			}
		}
	}
	res.SecretID = secretID
	return a.reportRotation(ctx, t, res, err, f.output)
}

// rotateTarget is the secret rotate-now rotates, as precheck read it.
type rotateTarget struct {
	secretID string
	onAWS    bool
	desc     keystore.Description
	settings keystore.Settings // valid once precheck passes
}

// precheck rejects a rotation that is bound to fail before one starts, so
// that a missing secret, a missing staged key or a missing rotation
// function is reported once, in plain words, and leaves no rotation behind.
func (a *app) precheck(ctx context.Context, store keystore.Store, s settings, t *rotateTarget) (rotation.Result, error) {
	failed := rotation.Result{Outcome: rotation.Failed}
	secretID := t.secretID
	d, err := store.Describe(ctx, secretID)
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return failed, notFoundError("rotate-now", secretID, s)
	case errors.Is(err, keystore.ErrUnavailable):
		return rotation.Result{Outcome: rotation.Transient}, cli.WithCode(exitTransient, fmt.Errorf("rotate-now: %w", err)).
			WithHint("the store could not be reached; retry later with 'rotator rotate-now %s'", secretID)
	case err != nil:
		return failed, fmt.Errorf("rotate-now: %w", err)
	}
	t.desc = d
	if !keystore.IsManaged(d.Tags) {
		return failed, notManagedError(ctx, store, "rotate-now", secretID)
	}
	if t.settings, err = keystore.SettingsFromTags(d.Tags); err != nil {
		return failed, fmt.Errorf("rotate-now: secret %s: %w", secretID, err)
	}
	if t.onAWS && d.Rotation.LambdaARN == "" {
		return failed, noRotationFunctionError(secretID)
	}
	if pendingVersion(d) != "" {
		// A rotation in progress carries its own key: the engine resumes it
		// once it is stale, and reports it in progress until then.
		return rotation.Result{}, nil
	}
	if err := a.checkKeySource(t); err != nil {
		return failed, err
	}
	return rotation.Result{}, nil
}

// checkKeySource rejects a rotation that would find no key: nothing is
// staged, and the issuer is staged or, on the file store, is the dev issuer
// while this rotator has no KEYTURN_DEV_ISSUER_URL.
func (a *app) checkKeySource(t *rotateTarget) error {
	if t.desc.VersionWithStage(keystore.StageStaged) != "" {
		return nil
	}
	id := t.secretID
	switch {
	case t.settings.Issuer == keystore.IssuerStaged:
		return cli.WithCode(exitError, fmt.Errorf("rotate-now %s: %w: no key is staged, and the secret's issuer is %s, which mints none",
			id, rotation.ErrNothingToPromote, keystore.IssuerStaged)).
			WithHint("stage the next key first: rotator stage %s --file KEYFILE", id)
	case !t.onAWS && t.settings.Issuer == issuer.DevName && a.getenv(devIssuerEnv) == "":
		return cli.WithCode(exitError, fmt.Errorf("rotate-now %s: %w: its issuer is dev, which mints keys at the stand-in provider of 'rotator dev', and %s is not set",
			id, rotation.ErrConfig, devIssuerEnv)).
			WithHint("let 'rotator dev' rotate it, or set %s to the stand-in's http://127.0.0.1:PORT/openrouter/api/v1 with --allow-loopback; or stage a key with 'rotator stage %s --file KEYFILE'",
				devIssuerEnv, id)
	}
	return nil
}

func (a *app) rotateInProcess(ctx context.Context, store keystore.Store, s settings, secretID string) (rotation.Result, error) {
	logger := slog.New(withoutStepRecords{a.stderrLogger(slog.LevelWarn).Handler()})
	engine, err := newEngine(store, s, a.getenv, logger)
	if err != nil {
		return rotation.Result{}, err
	}
	if a.clock != nil {
		engine.Now = a.clock.Now
	}
	res, err := engine.RotateNow(ctx, secretID)
	if err != nil && res.Outcome == "" {
		res.Outcome = rotation.OutcomeOf(err)
	}
	return res, err
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
	SecretID    string `json:"secret_id"`
	VersionID   string `json:"version_id,omitempty"`
	Outcome     string `json:"outcome"`
	ResumedFrom string `json:"resumed_from,omitempty"`
	// StagedVersionID is the KEYTURN_STAGED version whose key was
	// promoted as VersionID; omitted for a minted key.
	StagedVersionID string            `json:"staged_version_id,omitempty"`
	Failure         *keystore.Failure `json:"failure,omitempty"`
	Error           string            `json:"error,omitempty"`
}

// reportRotation prints the outcome on stdout and returns the error that
// carries its exit code and hints, which exit prints on stderr. JSON output
// is printed whatever the outcome, so that a script always finds one
// object on stdout.
func (a *app) reportRotation(ctx context.Context, t rotateTarget, res rotation.Result, err error, out outputFlag) error {
	if res.Outcome == "" {
		res.Outcome = rotation.Failed
	}
	if out == outputJSON {
		j := rotationJSON{
			SecretID: res.SecretID, VersionID: res.VersionID, Outcome: string(res.Outcome),
			ResumedFrom: res.ResumedFrom, StagedVersionID: res.StagedVersion, Failure: res.Failure,
		}
		if err != nil && !failureExplains(res.Failure, err) {
			j.Error = err.Error()
		}
		if werr := a.writeJSON(j); werr != nil {
			return werr
		}
	} else {
		a.printRotation(res, err)
	}
	code := exitCodeOf(res.Outcome)
	if res.Outcome == outcomeInterrupted {
		code = cli.InterruptedCode(ctx)
	}
	if err != nil {
		return rotationError(t, res, code, err)
	}
	if code != exitOK {
		return errSilent{code}
	}
	return nil
}

// failureExplains reports whether f, a failed step's record, already gives
// the reason err states, so that the reason is printed once.
func failureExplains(f *keystore.Failure, err error) bool {
	return f != nil && f.Reason != "" && slices.Contains(rotation.Steps, rotation.Step(f.Step)) &&
		strings.Contains(err.Error(), f.Reason)
}

// printRotation prints the outcome of a rotation that started. A rotation
// that never started, such as one of a missing secret, has only its error
// err, on stderr.
func (a *app) printRotation(res rotation.Result, err error) {
	if res.VersionID == "" {
		return
	}
	if res.ResumedFrom != "" {
		fmt.Fprintf(a.stdout, "resumed the rotation left in progress by version %s\n", res.ResumedFrom)
	}
	switch res.Outcome {
	case rotation.Promoted:
		fmt.Fprintf(a.stdout, "promoted %s version %s to AWSCURRENT\n", res.SecretID, res.VersionID)
		if res.StagedVersion != "" {
			fmt.Fprintf(a.stdout, "version %s contains the key that was staged as version %s\n", res.VersionID, res.StagedVersion)
		}
	case rotation.InProgress:
		fmt.Fprintf(a.stdout, "rotation in progress: %s version %s\n", res.SecretID, res.VersionID)
	case outcomeInterrupted:
		if errors.Is(err, errStoppedWaiting) {
			fmt.Fprintf(a.stdout, "interrupted: stopped waiting for %s version %s; the rotation may still complete in Secrets Manager\n",
				res.SecretID, res.VersionID)
			return
		}
		fmt.Fprintf(a.stdout, "%s: %s version %s was not promoted\n", res.Outcome, res.SecretID, res.VersionID)
	default:
		fmt.Fprintf(a.stdout, "%s: %s version %s was not promoted\n", res.Outcome, res.SecretID, res.VersionID)
	}
	// A failure outside the four steps is the error itself, which stderr
	// shows; only a step's failure adds to it. Its reason is left out when
	// the error already gives it, so that advice in it is printed once.
	f := res.Failure
	if f == nil || !slices.Contains(rotation.Steps, rotation.Step(f.Step)) {
		return
	}
	line := fmt.Sprintf("failed step: %s at %s (%s)", f.Step, formatTime(f.At), f.Class)
	if !failureExplains(f, err) {
		line += ": " + f.Reason
	}
	fmt.Fprintln(a.stdout, line)
}
