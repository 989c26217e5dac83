package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/schedule"
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
progress. On AWS it calls
RotateSecret, which invokes the rotation Lambda, and polls the secret until
the rotation ends or --timeout passes.

The outcome goes to stdout; with --output json it is one object, printed
even when the rotation fails:
  {"secret_id": "...", "version_id": "...", "outcome": "promoted",
   "resumed_from": "...",   (only when a left-over rotation was resumed)
   "failure": {...},        (why it did not promote)
   "error": "..."}          (the error, which also goes to stderr)

Exit codes:
  0  promoted: the new key is AWSCURRENT
  1  error, or the rotation failed without promoting
  2  usage error
  3  rejected: the provider rejected the new key; it was not promoted
  4  transient failure (timeout, rate limit, provider or store outage): retry later
  5  in progress: another rotation of the secret is running, or --no-wait

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
	if f.timeout <= 0 {
		return usageErrorf("rotate-now: --timeout %s must be positive", schedule.FormatDuration(f.timeout))
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
	if s.store.kind == storeFile && f.timeout > rotation.DefaultRotationTimeout {
		return usageErrorf("rotate-now: --timeout %s is longer than %s, the longest a rotation may run on the file store",
			schedule.FormatDuration(f.timeout), schedule.FormatDuration(rotation.DefaultRotationTimeout)).
			withHint("pass --timeout %s or less", schedule.FormatDuration(rotation.DefaultRotationTimeout))
	}
	store, closeStore, err := a.openStore(ctx, s, false)
	if err != nil {
		return err
	}
	defer closeStore()

	d, res, err := precheck(ctx, store, s, secretID)
	if err == nil {
		if s.store.kind == storeAWS {
			res, err = a.rotateOnAWS(ctx, store, d, f)
		} else {
			rctx, cancel := context.WithTimeout(ctx, f.timeout)
			res, err = a.rotateInProcess(rctx, store, s, secretID)
			cancel()
		}
	}
	res.SecretID = secretID
	return a.reportRotation(res, err, f.output)
}

// precheck rejects a rotation that is bound to fail before one starts, so
// that a missing secret or a missing staged key is reported once, in plain
// words, and leaves no rotation behind.
func precheck(ctx context.Context, store keystore.Store, s settings, secretID string) (keystore.Description, rotation.Result, error) {
	failed := rotation.Result{Outcome: rotation.Failed}
	d, err := store.Describe(ctx, secretID)
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return d, failed, notFoundError("rotate-now", secretID, s)
	case errors.Is(err, keystore.ErrUnavailable):
		return d, rotation.Result{Outcome: rotation.Transient}, withCode(exitTransient, fmt.Errorf("rotate-now: %w", err)).
			withHint("the store could not be reached; retry later with 'rotator rotate-now %s'", secretID)
	case err != nil:
		return d, failed, fmt.Errorf("rotate-now: %w", err)
	}
	if !keystore.IsManaged(d.Tags) {
		return d, failed, notManagedError("rotate-now", secretID)
	}
	settings, err := keystore.SettingsFromTags(d.Tags)
	if err != nil {
		return d, failed, fmt.Errorf("rotate-now: secret %s: %w", secretID, err)
	}
	if pendingVersion(d) != "" {
		// A rotation in progress carries its own key: the engine resumes it
		// once it is stale, and reports it in progress until then.
		return d, rotation.Result{}, nil
	}
	if settings.Issuer == keystore.IssuerStaged && d.VersionWithStage(keystore.StageStaged) == "" {
		return d, failed, withCode(exitError, fmt.Errorf("rotate-now %s: %w: no key is staged, and the secret's issuer is %s, which mints none",
			secretID, rotation.ErrNothingToPromote, keystore.IssuerStaged)).
			withHint("stage the next key first: rotator stage %s --file KEYFILE", secretID)
	}
	return d, rotation.Result{}, nil
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
		res.Outcome = outcomeOf(err)
	}
	return res, err
}

// outcomeOf names the outcome an engine or store error stands for. A store
// that cannot be reached is transient, as the engine counts it.
func outcomeOf(err error) rotation.Outcome {
	switch {
	case errors.Is(err, rotation.ErrInProgress):
		return rotation.InProgress
	case errors.Is(err, rotation.ErrRejected):
		return rotation.Rejected
	case errors.Is(err, rotation.ErrTransient), errors.Is(err, keystore.ErrUnavailable):
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
	SecretID    string            `json:"secret_id"`
	VersionID   string            `json:"version_id,omitempty"`
	Outcome     string            `json:"outcome"`
	ResumedFrom string            `json:"resumed_from,omitempty"`
	Failure     *keystore.Failure `json:"failure,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// reportRotation prints the outcome on stdout and returns the error that
// carries its exit code. JSON output is printed whatever the outcome, so
// that a script always finds one object on stdout; the error also goes to
// stderr.
func (a *app) reportRotation(res rotation.Result, err error, out outputFlag) error {
	if res.Outcome == "" {
		res.Outcome = rotation.Failed
	}
	if out == outputJSON {
		j := rotationJSON{
			SecretID: res.SecretID, VersionID: res.VersionID, Outcome: string(res.Outcome),
			ResumedFrom: res.ResumedFrom, Failure: res.Failure,
		}
		if err != nil {
			j.Error = err.Error()
		}
		if werr := a.writeJSON(j); werr != nil {
			return werr
		}
	} else {
		a.printRotation(res, err)
	}
	code := exitCodeOf(res.Outcome)
	if err != nil {
		return rotationError(res, code, err)
	}
	if code != exitOK {
		return errSilent{code}
	}
	return nil
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
	case rotation.InProgress:
		fmt.Fprintf(a.stdout, "rotation in progress: %s version %s\n", res.SecretID, res.VersionID)
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
	if err == nil || !strings.Contains(err.Error(), f.Reason) {
		line += ": " + f.Reason
	}
	fmt.Fprintln(a.stdout, line)
}

// rotationError gives err the outcome's exit code and the next step to
// take, as a complete command.
func rotationError(res rotation.Result, code int, err error) error {
	var hinted *cliError
	if errors.As(err, &hinted) && len(hinted.hints) > 0 {
		hinted.code = code
		return hinted
	}
	ce := withCode(code, err)
	ce.code = code
	id := res.SecretID
	switch {
	case errors.Is(err, rotation.ErrNothingToPromote):
		// The engine's message already gives the stage command.
	case code == exitInProgress && strings.Contains(err.Error(), "rotator abandon"):
		// The engine's message already gives the abandon command.
		ce.withHint("see it with 'rotator status %s'", id)
	case code == exitInProgress:
		ce.withHint("see it with 'rotator status %s'; if no rotator is working on it, 'rotator abandon %s' drops it", id, id)
	case code == exitTransient:
		ce.withHint("the provider or store failed for now; retry later with 'rotator rotate-now %s'", id)
	case code == exitRejected:
		ce.withHint("stage a working key with 'rotator stage %s --file KEYFILE --validate'", id)
	}
	return ce
}
