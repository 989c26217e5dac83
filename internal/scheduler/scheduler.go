// Package scheduler runs the rotation schedules of every managed secret in a
// store, as Secrets Manager does on AWS. It lists the secrets on every pass,
// so new ones are picked up, and computes each one's next rotation from the
// persisted last rotation. A secret whose rotation fails is retried with
// backoff without holding up the others, and a secret that cannot be read
// is logged while the others rotate. A secret whose rotation a stopped
// rotator left in progress is due once that rotation is stale, when the
// Rotator resumes it.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/schedule"
	"github.com/keyturn/keyturn/keystore"
)

// Defaults for the zero values of Scheduler's fields.
const (
	DefaultRescan      = time.Minute
	DefaultMinBackoff  = time.Minute
	DefaultMaxBackoff  = time.Hour
	DefaultStopTimeout = 30 * time.Second
	DefaultMaxAtOnce   = 4
)

// Rotator rotates one secret now; *rotation.Engine implements it.
type Rotator interface {
	RotateNow(ctx context.Context, secretID string) (rotation.Result, error)
}

// PendingChecker is implemented by a Rotator whose RotateNow resumes a
// rotation that a stopped rotator left in progress, once it is stale, as
// *rotation.Engine does. The scheduler then waits for a secret's
// rotation in progress to finish or go stale, rather than start one that
// can only report it in progress, and a stale one is due at once.
type PendingChecker interface {
	PendingRotation(ctx context.Context, d keystore.Description) (rotation.PendingRotation, bool, error)
}

// Clock is the scheduler's view of time, injectable for tests.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Scheduler rotates the managed secrets of Store when they are due.
// Set Store and Rotator; every other field has a default.
type Scheduler struct {
	Store   keystore.Store
	Rotator Rotator
	// ScheduleFor returns a secret's schedule; nil parses the secret's
	// stored rotation rules with schedule.Parse. `rotator dev` replaces it
	// with a short fixed interval.
	ScheduleFor func(d keystore.Description) (*schedule.Schedule, error)
	// Only limits the scheduler to the managed secrets for which it
	// returns true; the others are neither rotated nor logged about. Nil
	// schedules every managed secret in Store. `rotator dev` sets it to
	// its own secret when it runs on a store that holds others.
	Only   func(d keystore.Description) bool
	Clock  Clock        // nil is SystemClock
	Logger *slog.Logger // nil discards logs
	// Rescan is the longest wait between two passes, so that new secrets
	// and changed schedules are seen; default 1 minute.
	Rescan time.Duration
	// MinBackoff and MaxBackoff bound the wait before a failed secret is
	// tried again; it doubles with each failure in a row. Defaults 1 minute
	// and 1 hour.
	MinBackoff, MaxBackoff time.Duration
	// StopTimeout bounds how long Run waits for in-flight rotations after
	// its context is cancelled before it cancels them too; default 30s.
	StopTimeout time.Duration
	// MaxAtOnce limits concurrent rotations; default 4.
	MaxAtOnce int

	mu       sync.Mutex
	state    map[string]*secretState
	inFlight map[string]bool
	done     chan outcome
	wg       sync.WaitGroup
	// listProblem is the last listing error logged, to log each once
	// until it changes. Only the loop goroutine uses it.
	listProblem string
}

// ListError reports that a pass could not read every secret in the store.
// The secrets it could read were still rotated.
type ListError struct {
	// Readable is how many secrets the pass read.
	Readable int
	// Err is the store's error, which names each secret it could not read.
	Err error
}

func (e *ListError) Error() string {
	// A store joins one error per unreadable secret, one per line.
	return "cannot read every secret in the store: " + strings.ReplaceAll(e.Err.Error(), "\n", "; ")
}

func (e *ListError) Unwrap() error { return e.Err }

// secretState is the scheduler's memory of one secret between passes. It
// is not persisted, so a restart clears every backoff.
type secretState struct {
	failures    int
	retryAt     time.Time // zero unless backing off
	lastSuccess time.Time // guards against a store that lags on LastRotated
	lastNotice  string    // last "not rotating" notice logged, to log it once
}

// outcome is the end of one rotation, sent back to the loop.
type outcome struct {
	secretID string
	result   rotation.Result
	err      error
	// stopped is set when the rotation's context was done as RotateNow
	// returned: the scheduler is shutting down, so the rotation will not be
	// retried and a failure is the shutdown's doing.
	stopped bool
}

// Run rotates due secrets until ctx is cancelled, then waits for in-flight
// rotations up to StopTimeout and returns nil. It returns an error only if
// the scheduler is misconfigured.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.init(); err != nil {
		return err
	}
	s.logger().Info("scheduler started", "rescan", s.rescan())
	rotateCtx, cancelRotations := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRotations()
	for {
		wait, _ := s.pass(ctx, rotateCtx, "retrying at the next pass")
		select {
		case <-ctx.Done():
			s.stop(cancelRotations)
			return nil
		case o := <-s.done:
			s.finish(o)
		case <-s.clock().After(wait):
		}
	}
}

// RunOnce rotates every secret that is due now, waits for those rotations,
// and returns how many of them failed. If a pass could not read every
// secret, it rotates the ones it read and returns a *ListError as well.
func (s *Scheduler) RunOnce(ctx context.Context) (failed int, err error) {
	if err := s.init(); err != nil {
		return 0, err
	}
	// Passes repeat after each finished rotation, so that secrets left out
	// by MaxAtOnce get their turn; a finished secret is not due again.
	// The first listing error is the one reported.
	_, listErr := s.pass(ctx, ctx, "")
	for s.running() > 0 {
		o := <-s.done
		s.finish(o)
		if o.err != nil || o.result.Outcome != rotation.Promoted {
			failed++
		}
		if ctx.Err() != nil {
			// A rotation that shutdown stopped has no backoff to keep it
			// from being due again, and shutdown starts nothing anyway.
			continue
		}
		if _, err := s.pass(ctx, ctx, ""); listErr == nil {
			listErr = err
		}
	}
	s.wg.Wait()
	if listErr != nil {
		return failed, listErr
	}
	return failed, nil
}

func (s *Scheduler) init() error {
	if s.Store == nil || s.Rotator == nil {
		return errors.New("scheduler: Store and Rotator must be set")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == nil {
		s.state = map[string]*secretState{}
		s.inFlight = map[string]bool{}
		s.done = make(chan outcome)
	}
	return nil
}

// stop waits for in-flight rotations up to StopTimeout, then cancels them
// and waits for them to return.
func (s *Scheduler) stop(cancelRotations context.CancelFunc) {
	n := s.running()
	if n == 0 {
		s.logger().Info("scheduler stopped")
		return
	}
	s.logger().Info("stopping: waiting for in-flight rotations", "count", n, "timeout", s.stopTimeout())
	deadline := s.clock().After(s.stopTimeout())
	for s.running() > 0 {
		select {
		case o := <-s.done:
			s.finish(o)
		case <-deadline:
			s.logger().Warn("stop timeout passed: cancelling in-flight rotations", "count", s.running())
			cancelRotations()
			deadline = nil
		}
	}
	// Every rotation has sent its outcome, so this returns at once; it
	// makes sure that no rotation goroutine outlives Run.
	s.wg.Wait()
	s.logger().Info("scheduler stopped")
}

func (s *Scheduler) running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inFlight)
}

// pass lists the secrets, starts the due rotations, and returns how long to
// wait before the next pass. When the store cannot read every secret it
// rotates the ones it read, logs the error with retryNote, and returns it.
func (s *Scheduler) pass(ctx, rotateCtx context.Context, retryNote string) (time.Duration, *ListError) {
	wait := s.rescan()
	secrets, err := s.Store.List(ctx)
	var listErr *ListError
	if err != nil {
		if ctx.Err() != nil {
			return wait, nil
		}
		listErr = &ListError{Readable: len(secrets), Err: err}
	}
	s.logListProblem(listErr, retryNote)
	now := s.clock().Now()
	for _, d := range secrets {
		if !keystore.IsManaged(d.Tags) || (s.Only != nil && !s.Only(d)) {
			continue
		}
		next, ok := s.nextRun(ctx, d, now)
		if !ok {
			continue
		}
		if !next.After(now) {
			s.start(rotateCtx, d.SecretID)
			continue
		}
		wait = min(wait, next.Sub(now))
	}
	return wait, listErr
}

// logListProblem logs a listing error once until it changes, and logs when
// the store can be read again.
func (s *Scheduler) logListProblem(listErr *ListError, retryNote string) {
	switch {
	case listErr == nil && s.listProblem != "":
		s.listProblem = ""
		s.logger().Info("every secret in the store can be read again")
	case listErr == nil:
	case listErr.Error() != s.listProblem:
		s.listProblem = listErr.Error()
		msg := "cannot read every secret in the store; rotating the ones that can be read"
		if retryNote != "" {
			msg += ", " + retryNote
		}
		s.logger().Error(msg, "readable", listErr.Readable, "error", listErr.Err)
	}
}

// nextRun returns when the secret should rotate next, or false if it does
// not rotate (disabled, misconfigured, in flight, due with nothing to
// promote).
func (s *Scheduler) nextRun(ctx context.Context, d keystore.Description, now time.Time) (time.Time, bool) {
	st := s.stateOf(d.SecretID)
	if s.isInFlight(d.SecretID) {
		return time.Time{}, false
	}
	if !d.Rotation.Enabled {
		s.notice(ctx, d.SecretID, st, "rotation is disabled; skipping")
		return time.Time{}, false
	}
	sched, err := s.scheduleFor(d)
	if errors.Is(err, schedule.ErrNoSchedule) {
		// A secret without a schedule is valid: it rotates when asked to.
		s.noticeAt(ctx, slog.LevelInfo, d.SecretID, st, "no rotation schedule: rotate it with rotator rotate-now "+
			d.SecretID+", or give it one with rotator update "+d.SecretID+" --schedule 'rate(30 days)'")
		return time.Time{}, false
	}
	if err != nil {
		s.notice(ctx, d.SecretID, st, "invalid schedule; skipping", "error", err)
		return time.Time{}, false
	}

	settings, err := keystore.SettingsFromTags(d.Tags)
	if err != nil {
		s.notice(ctx, d.SecretID, st, "invalid settings; skipping", "error", err)
		return time.Time{}, false
	}
	next, pending := s.pendingRun(ctx, d, st, now)
	if pending {
		return later(next, st.retryAt), true
	}

	last := lastRotation(d, st)
	next = later(sched.Next(last, now), st.retryAt)
	// A rotation resumed above carries its key; a new one needs a staged
	// key unless the issuer mints. Skipping a doomed rotation keeps the
	// store free of abandoned ones, and warning only once it is due keeps
	// quiet about a secret that was just rotated.
	if !next.After(now) && nothingStaged(d, settings) {
		s.notice(ctx, d.SecretID, st, "rotation due but no key is staged; skipping until one is staged",
			"due_since", dueSince(sched, last), "stage_with", "rotator stage "+d.SecretID+" --file KEYFILE")
		return time.Time{}, false
	}
	st.lastNotice = ""
	return next, true
}

// later returns the later of a due time and a backoff's retry time.
func later(next, retryAt time.Time) time.Time {
	if retryAt.After(next) {
		return retryAt
	}
	return next
}

// lastRotation is the secret's last rotation: the store's, or the last one
// this scheduler promoted if the store lags behind.
func lastRotation(d keystore.Description, st *secretState) time.Time {
	if st.lastSuccess.After(d.LastRotated) {
		return st.lastSuccess
	}
	return d.LastRotated
}

// dueSince words when a due secret became due: the first window of its
// schedule after the last rotation. A secret never rotated is due from the
// start.
func dueSince(sched *schedule.Schedule, last time.Time) string {
	if last.IsZero() {
		return "never rotated"
	}
	return sched.Cron().Next(last).UTC().Format(time.RFC3339)
}

// nothingStaged reports whether a rotation would have no key: the issuer is
// staged and no key is staged.
func nothingStaged(d keystore.Description, settings keystore.Settings) bool {
	return settings.Issuer == keystore.IssuerStaged && d.VersionWithStage(keystore.StageStaged) == ""
}

// pendingRun returns when a secret with a rotation in progress is due: when
// that rotation goes stale, so that RotateNow resumes it. pending is false
// when the secret has no rotation in progress that the Rotator resumes.
func (s *Scheduler) pendingRun(ctx context.Context, d keystore.Description, st *secretState,
	now time.Time) (next time.Time, pending bool) {
	checker, ok := s.Rotator.(PendingChecker)
	if !ok {
		return time.Time{}, false
	}
	p, ok, err := checker.PendingRotation(ctx, d)
	if err != nil {
		s.notice(ctx, d.SecretID, st, "cannot read the rotation in progress; following the schedule", "error", err)
		return time.Time{}, false
	}
	if !ok {
		return time.Time{}, false
	}
	if p.StaleIn > 0 {
		s.notice(ctx, d.SecretID, st, "rotation in progress; resuming it when it goes stale unless it finishes",
			"version_id", p.VersionID, "since", p.Since, "stale_at", p.StaleAt)
	}
	return now.Add(max(p.StaleIn, 0)), true
}

func (s *Scheduler) scheduleFor(d keystore.Description) (*schedule.Schedule, error) {
	if s.ScheduleFor != nil {
		return s.ScheduleFor(d)
	}
	return schedule.Parse(d.Rotation.Rules)
}

// notice logs as a warning why a secret is not rotating, once until the
// reason changes.
func (s *Scheduler) notice(ctx context.Context, secretID string, st *secretState, msg string, args ...any) {
	s.noticeAt(ctx, slog.LevelWarn, secretID, st, msg, args...)
}

// noticeAt is notice at the given level.
func (s *Scheduler) noticeAt(ctx context.Context, level slog.Level, secretID string, st *secretState, msg string, args ...any) {
	key := msg + fmt.Sprint(args...)
	if st.lastNotice == key {
		return
	}
	st.lastNotice = key
	s.logger().Log(ctx, level, msg, append([]any{"secret_id", secretID}, args...)...)
}

// start runs one rotation in its own goroutine, unless MaxAtOnce are
// already running; a secret left out is picked up by a later pass.
func (s *Scheduler) start(ctx context.Context, secretID string) {
	s.mu.Lock()
	if len(s.inFlight) >= s.maxAtOnce() {
		s.mu.Unlock()
		return
	}
	s.inFlight[secretID] = true
	s.mu.Unlock()

	s.logger().Info("rotation due", "secret_id", secretID)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		res, err := s.Rotator.RotateNow(ctx, secretID)
		s.done <- outcome{secretID: secretID, result: res, err: err, stopped: ctx.Err() != nil}
	}()
}

// finish records a rotation's outcome, logs it, and schedules a retry with
// backoff after a failure. A rotation that shutdown stopped is logged as
// such and schedules nothing.
func (s *Scheduler) finish(o outcome) {
	s.mu.Lock()
	delete(s.inFlight, o.secretID)
	s.mu.Unlock()
	st := s.stateOf(o.secretID)
	now := s.clock().Now()
	if o.err == nil && o.result.Outcome == rotation.Promoted {
		st.failures, st.retryAt, st.lastSuccess = 0, time.Time{}, now
		s.logger().Info("rotation promoted", "secret_id", o.secretID, "version_id", o.result.VersionID)
		return
	}
	if o.stopped {
		s.logger().Info("rotation stopped by shutdown", outcomeArgs(o)...)
		return
	}
	st.failures++
	delay := s.backoff(st.failures)
	st.retryAt = now.Add(delay)
	s.logFailure(o, delay)
}

func (s *Scheduler) logFailure(o outcome, retryIn time.Duration) {
	s.logger().Error("rotation failed", append(outcomeArgs(o), "retry_in", retryIn)...)
}

// outcomeArgs returns the log attributes of a rotation that did not
// promote: its outcome, version, failure record and error.
func outcomeArgs(o outcome) []any {
	args := []any{"secret_id", o.secretID, "outcome", outcomeName(o)}
	if o.result.VersionID != "" {
		args = append(args, "version_id", o.result.VersionID)
	}
	if f := o.result.Failure; f != nil {
		args = append(args, "step", f.Step, "class", f.Class, "reason", f.Reason)
	}
	if o.err != nil {
		args = append(args, "error", o.err)
	}
	return args
}

func outcomeName(o outcome) string {
	if o.result.Outcome != "" {
		return string(o.result.Outcome)
	}
	return "error"
}

// backoff doubles from MinBackoff with each failure in a row, up to
// MaxBackoff.
func (s *Scheduler) backoff(failures int) time.Duration {
	d := s.minBackoff()
	for i := 1; i < failures && d < s.maxBackoff(); i++ {
		d *= 2
	}
	return min(d, s.maxBackoff())
}

func (s *Scheduler) stateOf(secretID string) *secretState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state[secretID]
	if st == nil {
		st = &secretState{}
		s.state[secretID] = st
	}
	return st
}

func (s *Scheduler) isInFlight(secretID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight[secretID]
}

func (s *Scheduler) clock() Clock {
	if s.Clock == nil {
		return SystemClock{}
	}
	return s.Clock
}

func (s *Scheduler) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Scheduler) rescan() time.Duration      { return orDefault(s.Rescan, DefaultRescan) }
func (s *Scheduler) minBackoff() time.Duration  { return orDefault(s.MinBackoff, DefaultMinBackoff) }
func (s *Scheduler) maxBackoff() time.Duration  { return orDefault(s.MaxBackoff, DefaultMaxBackoff) }
func (s *Scheduler) stopTimeout() time.Duration { return orDefault(s.StopTimeout, DefaultStopTimeout) }

func (s *Scheduler) maxAtOnce() int {
	if s.MaxAtOnce <= 0 {
		return DefaultMaxAtOnce
	}
	return s.MaxAtOnce
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
