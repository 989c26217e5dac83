package smtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
)

// The steps of a rotation function, in the order Secrets Manager invokes
// them.
const (
	StepCreateSecret = "createSecret"
	StepSetSecret    = "setSecret"
	StepTestSecret   = "testSecret"
	StepFinishSecret = "finishSecret"
)

var allSteps = []string{StepCreateSecret, StepSetSecret, StepTestSecret, StepFinishSecret}

// Outcomes of a rotation, named after Secrets Manager's CloudTrail events.
const (
	OutcomeRunning               = ""
	OutcomeRotationSucceeded     = "RotationSucceeded"
	OutcomeRotationFailed        = "RotationFailed"
	OutcomeTestRotationSucceeded = "TestRotationSucceeded"
	OutcomeTestRotationFailed    = "TestRotationFailed"
)

// Rotation records one rotation that RotateSecret started.
type Rotation struct {
	SecretID  string // the secret's name
	VersionID string // the ClientRequestToken passed to each step
	// Test is set for RotateImmediately=false, which runs only testSecret.
	Test bool
	// Steps lists each step invoked, in order, over all attempts.
	Steps    []string
	Attempts int
	Outcome  string // OutcomeRunning until the rotation ends
	// Err is the failure of the last attempt; nil if it succeeded.
	Err error
}

// run is a rotation in progress or done.
type run struct {
	rec    Rotation
	lambda string
	cancel context.CancelFunc
	done   chan struct{}
}

// startRun records a rotation and invokes its steps in the background.
// The caller holds s.mu.
func (s *Server) startRun(sec *secret, token, lambda string, test bool) {
	ctx, cancel := context.WithCancel(s.ctx)
	r := &run{
		rec:    Rotation{SecretID: sec.name, VersionID: token, Test: test},
		lambda: lambda, cancel: cancel, done: make(chan struct{}),
	}
	s.rotations[sec.name] = append(s.rotations[sec.name], r)
	s.log.Info("smtest rotation started", "secret", sec.name, "version", token, "test", test)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(r.done)
		defer cancel()
		if test {
			s.runTest(ctx, r, sec.arn)
		} else {
			s.runRotation(ctx, r, sec.arn)
		}
	}()
}

// runRotation invokes the four steps, and runs them all again after a
// failure while the token's version still holds AWSPENDING.
func (s *Server) runRotation(ctx context.Context, r *run, arn string) {
	attempts := 1 + s.retries()
	var err error
	for i := range attempts {
		if i > 0 && !s.sleep(ctx) {
			break
		}
		err = s.attempt(ctx, r, arn, allSteps)
		if err == nil || !s.stillPending(r) {
			break
		}
		s.log.Info("smtest rotation attempt failed", "secret", r.rec.SecretID,
			"version", r.rec.VersionID, "attempt", i+1, "error", err)
	}
	s.finish(r, err, OutcomeRotationSucceeded, OutcomeRotationFailed)
}

// runTest invokes testSecret on the empty AWSPENDING version, then takes
// AWSPENDING off that version.
func (s *Server) runTest(ctx context.Context, r *run, arn string) {
	err := s.attempt(ctx, r, arn, []string{StepTestSecret})
	s.mu.Lock()
	if sec := s.secrets[r.rec.SecretID]; sec != nil {
		if v := sec.versions[r.rec.VersionID]; v != nil && v.has(stagePending) {
			v.remove(stagePending)
		}
	}
	s.mu.Unlock()
	s.finish(r, err, OutcomeTestRotationSucceeded, OutcomeTestRotationFailed)
}

// attempt invokes steps in order and stops at the first error.
func (s *Server) attempt(ctx context.Context, r *run, arn string, steps []string) error {
	s.mu.Lock()
	r.rec.Attempts++
	s.mu.Unlock()
	event := events.SecretsManagerSecretRotationEvent{
		SecretID: arn, ClientRequestToken: r.rec.VersionID, RotationToken: uuid.NewString(),
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("rotation cancelled before %s: %w", step, err)
		}
		s.mu.Lock()
		r.rec.Steps = append(r.rec.Steps, step)
		s.mu.Unlock()
		event.Step = step
		if err := s.opts.Invoker.Invoke(ctx, r.lambda, event); err != nil {
			return fmt.Errorf("step %s: %w", step, err)
		}
	}
	return nil
}

func (s *Server) finish(r *run, err error, ok, failed string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.rec.Err = err
	r.rec.Outcome = ok
	if err != nil {
		r.rec.Outcome = failed
	}
	s.log.Info("smtest rotation ended", "secret", r.rec.SecretID, "version", r.rec.VersionID,
		"outcome", r.rec.Outcome, "attempts", r.rec.Attempts, "error", err)
}

// stillPending reports whether the rotation's version still holds
// AWSPENDING without AWSCURRENT, so that a retry has something to do.
func (s *Server) stillPending(r *run) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[r.rec.SecretID]
	if sec == nil {
		return false
	}
	v := sec.versions[r.rec.VersionID]
	return v != nil && v.has(stagePending) && !v.has(stageCurrent)
}

func (s *Server) retries() int {
	switch {
	case s.opts.RetryAttempts < 0:
		return 0
	case s.opts.RetryAttempts == 0:
		return 1
	}
	return s.opts.RetryAttempts
}

func (s *Server) sleep(ctx context.Context) bool {
	t := time.NewTimer(s.opts.RetryDelay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// cancelRuns cancels the running rotations of a secret. The caller holds
// s.mu.
func (s *Server) cancelRuns(name string) {
	for _, r := range s.rotations[name] {
		r.cancel()
	}
}

// ErrNoRotation is returned by WaitRotation for a secret that RotateSecret
// never rotated.
var ErrNoRotation = errors.New("smtest: no rotation started")

// WaitRotation waits until the latest rotation of a secret (by name or ARN)
// ends, and returns its error: nil if its last attempt succeeded.
func (s *Server) WaitRotation(ctx context.Context, secretID string) error {
	r, err := s.latest(secretID)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("wait for rotation of %s version %s: %w", r.rec.SecretID, r.rec.VersionID, ctx.Err())
	case <-r.done:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.rec.Err != nil {
		return fmt.Errorf("rotation of %s version %s: %s after %d attempts: %w",
			r.rec.SecretID, r.rec.VersionID, r.rec.Outcome, r.rec.Attempts, r.rec.Err)
	}
	return nil
}

// Rotations returns the rotations of a secret (by name or ARN), oldest
// first.
func (s *Server) Rotations(secretID string) []Rotation {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := s.nameOf(secretID)
	out := make([]Rotation, 0, len(s.rotations[name]))
	for _, r := range s.rotations[name] {
		rec := r.rec
		rec.Steps = slices.Clone(rec.Steps)
		out = append(out, rec)
	}
	return out
}

func (s *Server) latest(secretID string) (*run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	runs := s.rotations[s.nameOf(secretID)]
	if len(runs) == 0 {
		return nil, fmt.Errorf("%w for secret %s: call RotateSecret first", ErrNoRotation, secretID)
	}
	return runs[len(runs)-1], nil
}

// nameOf resolves an ARN to a secret name; anything else is returned as it
// is, so the log of a deleted secret stays reachable. The caller holds s.mu.
func (s *Server) nameOf(secretID string) string {
	if sec, err := s.lookup(secretID); err == nil {
		return sec.name
	}
	return secretID
}
