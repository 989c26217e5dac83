package scheduler_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/scheduler"
	"github.com/keyturn/keyturn/keystore"
)

// hangGuard fails a test that waits this long for an event; no test relies
// on it as a timing.
const hangGuard = 20 * time.Second

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock moves only when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// rotateCall is one RotateNow the scheduler made, waiting for the test to
// reply.
type rotateCall struct {
	secretID string
	at       time.Time
	reply    chan error
}

// fakeRotator sends every RotateNow to the test and returns its reply: nil
// for promoted, an error for a failure.
type fakeRotator struct {
	clock *fakeClock
	calls chan rotateCall
}

func (r *fakeRotator) RotateNow(ctx context.Context, secretID string) (rotation.Result, error) {
	c := rotateCall{secretID: secretID, at: r.clock.Now(), reply: make(chan error, 1)}
	r.calls <- c
	select {
	case err := <-c.reply:
		if err != nil {
			return rotation.Result{SecretID: secretID, Outcome: rotation.Transient}, err
		}
		return rotation.Result{SecretID: secretID, Outcome: rotation.Promoted}, nil
	case <-ctx.Done():
		return rotation.Result{SecretID: secretID, Outcome: rotation.Transient}, ctx.Err()
	}
}

func (r *fakeRotator) next(t *testing.T) rotateCall {
	t.Helper()
	select {
	case c := <-r.calls:
		return c
	case <-time.After(hangGuard):
		t.Fatal("no rotation started")
		return rotateCall{}
	}
}

// advanceUntilCall moves the clock by step until the scheduler starts a
// rotation. The scheduler may be between passes when the clock moves, so
// the clock keeps moving until it acts.
func (r *fakeRotator) advanceUntilCall(t *testing.T, step time.Duration) rotateCall {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for time.Now().Before(deadline) {
		r.clock.Advance(step)
		select {
		case c := <-r.calls:
			return c
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("no rotation started")
	return rotateCall{}
}

func newStore(t *testing.T) keystore.Store {
	t.Helper()
	dir := t.TempDir()
	st, err := keystore.OpenFile(keystore.FileOptions{Dir: filepath.Join(dir, "store"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// addSecret creates a managed secret whose issuer mints keys, so that the
// scheduler needs no staged key to rotate it.
func addSecret(t *testing.T, st keystore.Store, id string, rules keystore.RotationRules) {
	t.Helper()
	ctx := context.Background()
	tags := keystore.Settings{
		Provider: "openai", BaseURL: "https://api.openai.com/v1",
		Issuer: "dev", IssuerSecret: "dev/issuer",
	}.Tags()
	if _, err := st.Create(ctx, keystore.CreateInput{SecretID: id, Tags: tags}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetRotation(ctx, id, keystore.Rotation{Enabled: true, Rules: rules}); err != nil {
		t.Fatal(err)
	}
}

var daily = keystore.RotationRules{ScheduleExpression: "rate(1 days)"}

type harness struct {
	clock   *fakeClock
	rotator *fakeRotator
	sched   *scheduler.Scheduler
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, st keystore.Store) *harness {
	t.Helper()
	clock := &fakeClock{now: t0}
	h := &harness{clock: clock, rotator: &fakeRotator{clock: clock, calls: make(chan rotateCall)}, done: make(chan error, 1)}
	h.sched = &scheduler.Scheduler{
		Store: st, Rotator: h.rotator, Clock: clock,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.sched.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		h.done <- nil // later stops return at once
	case <-time.After(hangGuard):
		t.Fatal("Run did not return after cancel")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func TestSchedulerRotatesDueSecret(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/a", daily)
	h := start(t, st)

	c := h.rotator.next(t)
	if c.secretID != "app/a" {
		t.Fatalf("rotated %s, want app/a", c.secretID)
	}
	if !c.at.Equal(t0) {
		t.Errorf("first rotation at %s, want at once (%s)", c.at, t0)
	}
	c.reply <- nil

	// rate(1 days) is due again at the next midnight UTC, 12 hours on.
	c = h.rotator.advanceUntilCall(t, time.Hour)
	if c.secretID != "app/a" {
		t.Fatalf("rotated %s, want app/a", c.secretID)
	}
	if c.at.Before(t0.Add(12 * time.Hour)) {
		t.Errorf("second rotation at %s, before the next midnight", c.at)
	}
	c.reply <- nil
}

func TestSchedulerBacksOffFailingSecret(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/bad", daily)
	addSecret(t, st, "app/good", daily)
	h := start(t, st)

	started := map[string]rotateCall{}
	for range 2 {
		c := h.rotator.next(t)
		started[c.secretID] = c
	}
	started["app/bad"].reply <- errors.New("provider unavailable")
	started["app/good"].reply <- nil

	// The failed secret is retried after 1m, then 2m later, then 4m later;
	// the good one is left alone.
	var retries []time.Time
	for range 3 {
		c := h.rotator.advanceUntilCall(t, time.Minute)
		if c.secretID != "app/bad" {
			t.Fatalf("rotated %s during backoff, want only app/bad", c.secretID)
		}
		retries = append(retries, c.at)
		c.reply <- errors.New("provider unavailable")
	}
	want := []time.Duration{time.Minute, 3 * time.Minute, 7 * time.Minute}
	for i, at := range retries {
		if got := at.Sub(t0); got < want[i] {
			t.Errorf("retry %d at t0+%s, want no earlier than t0+%s", i+1, got, want[i])
		}
	}
}

func TestSchedulerPicksUpNewSecret(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/first", daily)
	h := start(t, st)
	c := h.rotator.next(t)
	c.reply <- nil

	addSecret(t, st, "app/second", daily)
	c = h.rotator.advanceUntilCall(t, scheduler.DefaultRescan)
	if c.secretID != "app/second" {
		t.Fatalf("rotated %s, want the new secret app/second", c.secretID)
	}
	c.reply <- nil
}

func TestSchedulerSkipsSecretWithoutStagedKey(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	tags := keystore.Settings{Provider: "openai", BaseURL: "https://api.openai.com/v1"}.Tags()
	if _, err := st.Create(ctx, keystore.CreateInput{SecretID: "app/staged", Tags: tags}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetRotation(ctx, "app/staged", keystore.Rotation{Enabled: true, Rules: daily}); err != nil {
		t.Fatal(err)
	}
	addSecret(t, st, "app/minted", daily)
	h := start(t, st)

	c := h.rotator.next(t)
	if c.secretID != "app/minted" {
		t.Fatalf("rotated %s, want only app/minted", c.secretID)
	}
	c.reply <- nil
	h.clock.Advance(time.Hour)
	select {
	case c := <-h.rotator.calls:
		t.Fatalf("rotated %s, which has no staged key", c.secretID)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestSchedulerStopWaitsThenCancels(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/slow", daily)
	h := start(t, st)
	h.rotator.next(t) // never answered

	h.cancel()
	select {
	case <-h.done:
		t.Fatal("Run returned while a rotation was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	// Past the stop timeout, the rotation's context is cancelled and the
	// fake rotator returns.
	deadline := time.Now().Add(hangGuard)
	for time.Now().Before(deadline) {
		h.clock.Advance(scheduler.DefaultStopTimeout)
		select {
		case err := <-h.done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			h.done <- nil
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("Run did not return after the stop timeout")
}

func TestRunOnceRotatesDueAndCountsFailures(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/a", daily)
	addSecret(t, st, "app/b", daily)
	if err := st.SetRotation(context.Background(), "app/b", keystore.Rotation{Enabled: false, Rules: daily}); err != nil {
		t.Fatal(err)
	}
	addSecret(t, st, "app/c", daily)
	clock := &fakeClock{now: t0}
	r := &fakeRotator{clock: clock, calls: make(chan rotateCall)}
	s := &scheduler.Scheduler{Store: st, Rotator: r, Clock: clock}

	type result struct {
		failed int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.RunOnce(context.Background())
		done <- result{n, err}
	}()
	seen := map[string]bool{}
	for range 2 {
		c := r.next(t)
		seen[c.secretID] = true
		if c.secretID == "app/c" {
			c.reply <- errors.New("rejected")
		} else {
			c.reply <- nil
		}
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.failed != 1 {
		t.Errorf("failed = %d, want 1", res.failed)
	}
	if !seen["app/a"] || !seen["app/c"] || seen["app/b"] {
		t.Errorf("rotated %v, want app/a and app/c (app/b is disabled)", seen)
	}
}

// promptRotator promotes every rotation at once.
type promptRotator struct{}

func (promptRotator) RotateNow(_ context.Context, secretID string) (rotation.Result, error) {
	return rotation.Result{SecretID: secretID, Outcome: rotation.Promoted}, nil
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestNoStagedKeyWarnsOnlyWhenDue(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	tags := keystore.Settings{Provider: "openai", BaseURL: "https://api.openai.com/v1"}.Tags()
	if _, err := st.Create(ctx, keystore.CreateInput{SecretID: "app/staged", Tags: tags}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetRotation(ctx, "app/staged", keystore.Rotation{Enabled: true, Rules: daily}); err != nil {
		t.Fatal(err)
	}
	value, err := keystore.Value{APIKey: keystore.NewSecret("sk-staged")}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	err = st.Put(ctx, keystore.PutInput{SecretID: "app/staged", Token: "00000000-0000-4000-8000-000000000001",
		Value: value, Stages: []string{keystore.StageStaged}})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: t0}
	logs := &logBuffer{}
	s := &scheduler.Scheduler{Store: st, Rotator: promptRotator{}, Clock: clock,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}

	// The first rotation takes the staged key.
	if n, err := s.RunOnce(ctx); n != 0 || err != nil {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	err = st.UpdateStage(ctx, keystore.StageInput{SecretID: "app/staged", Stage: keystore.StageStaged,
		RemoveFromVersion: "00000000-0000-4000-8000-000000000001"})
	if err != nil {
		t.Fatal(err)
	}

	// Not due yet: nothing to warn about.
	clock.Advance(time.Hour)
	if _, err := s.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "no key is staged") {
		t.Errorf("warned about a missing staged key before the rotation was due:\n%s", logs)
	}

	// rate(1 days) is due at the next midnight UTC.
	clock.Advance(24 * time.Hour)
	if _, err := s.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "rotation due but no key is staged") || !strings.Contains(out, "due_since=2026-03-02T00:00:00Z") {
		t.Errorf("no warning with the due time once due:\n%s", out)
	}
}

// partialStore is a store whose List also fails to read one secret.
type partialStore struct{ keystore.Store }

func (s partialStore) List(ctx context.Context) ([]keystore.Description, error) {
	descs, err := s.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	return descs, errors.Join(keystore.Errorf(keystore.ErrDecryption, "ListSecrets", "app/broken", "cannot decrypt"))
}

func TestRunOnceReportsUnreadableSecrets(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/a", daily)
	clock := &fakeClock{now: t0}
	logs := &logBuffer{}
	r := &fakeRotator{clock: clock, calls: make(chan rotateCall)}
	s := &scheduler.Scheduler{Store: partialStore{st}, Rotator: r, Clock: clock,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}

	type result struct {
		failed int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.RunOnce(context.Background())
		done <- result{n, err}
	}()
	c := r.next(t)
	if c.secretID != "app/a" {
		t.Errorf("rotated %s, want the readable app/a", c.secretID)
	}
	c.reply <- nil
	res := <-done
	var listErr *scheduler.ListError
	if !errors.As(res.err, &listErr) {
		t.Fatalf("RunOnce error = %v, want a *ListError", res.err)
	}
	if listErr.Readable != 1 || !strings.Contains(listErr.Error(), "app/broken") {
		t.Errorf("ListError = %+v (%v), want 1 readable and app/broken named", listErr, listErr)
	}
	if n := strings.Count(logs.String(), "cannot read every secret"); n != 1 {
		t.Errorf("the listing error was logged %d times, want once:\n%s", n, logs)
	}
}
