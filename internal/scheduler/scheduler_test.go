package scheduler_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/scheduler"
	"github.com/keyturn/keyturn/keystore"
)

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
	return receive(t, r.calls, "rotation started")
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

// harness runs a Scheduler on a fake clock and a fake rotator.
type harness struct {
	clock   *fakeClock
	starts  *startLog
	rotator *fakeRotator
	sched   *scheduler.Scheduler
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, st keystore.Store) *harness {
	t.Helper()
	starts := newStartLog(slog.NewTextHandler(testWriter{t}, nil))
	clock := newClock(t0, starts)
	h := &harness{
		clock:   clock,
		starts:  starts,
		rotator: &fakeRotator{clock: clock, calls: make(chan rotateCall)},
		done:    make(chan error, 1),
	}
	h.sched = &scheduler.Scheduler{Store: st, Rotator: h.rotator, Clock: clock, Logger: slog.New(starts)}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.sched.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

// stop cancels Run and waits for it to return. So that a test that failed
// with a rotation unanswered still ends, it fails every rotation still
// waiting for a reply and fires every timer Run waits on, the stop timeout
// included.
func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	guard := time.After(hangGuard)
	for {
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
			h.done <- nil // later stops return at once
			return
		case c := <-h.rotator.calls:
			c.reply <- errors.New("test over")
		case tm := <-h.clock.timers:
			h.clock.Advance(tm.d)
		case <-guard:
			t.Fatal("Run did not return after cancel")
		}
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

	h.clock.blocked(t)
	c := h.rotator.next(t)
	if c.secretID != "app/a" {
		t.Fatalf("rotated %s, want app/a", c.secretID)
	}
	if !c.at.Equal(t0) {
		t.Errorf("first rotation at %s, want at once (%s)", c.at, t0)
	}
	c.reply <- nil
	tm := h.clock.blocked(t)

	// rate(1 days) is due again at the next midnight UTC, 12 hours on.
	_, started := h.clock.advanceUntilStarted(t, tm, time.Hour)
	if !slices.Equal(started, []string{"app/a"}) {
		t.Errorf("started %v, want app/a", started)
	}
	c = h.rotator.next(t)
	if c.secretID != "app/a" {
		t.Fatalf("rotated %s, want app/a", c.secretID)
	}
	if midnight := t0.Add(12 * time.Hour); !c.at.Equal(midnight) {
		t.Errorf("second rotation at %s, want at the next midnight %s", c.at, midnight)
	}
	c.reply <- nil
}

func TestSchedulerBacksOffFailingSecret(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/bad", daily)
	addSecret(t, st, "app/good", daily)
	h := start(t, st)

	tm := h.clock.blocked(t)
	if got := h.starts.between(0, tm.started); !slices.Equal(got, []string{"app/bad", "app/good"}) {
		t.Fatalf("first pass started %v, want app/bad and app/good", got)
	}
	calls := map[string]rotateCall{}
	for range 2 {
		c := h.rotator.next(t)
		calls[c.secretID] = c
	}
	calls["app/bad"].reply <- errors.New("provider unavailable")
	h.clock.blocked(t)
	calls["app/good"].reply <- nil
	tm = h.clock.blocked(t)

	// The failed secret is retried after 1m, then 2m later, then 4m later;
	// the good one is left alone.
	var retries []time.Time
	for i := range 3 {
		var started []string
		_, started = h.clock.advanceUntilStarted(t, tm, time.Minute)
		if !slices.Equal(started, []string{"app/bad"}) {
			t.Fatalf("retry %d started %v, want only app/bad", i+1, started)
		}
		c := h.rotator.next(t)
		if c.secretID != "app/bad" {
			t.Fatalf("rotated %s during backoff, want only app/bad", c.secretID)
		}
		retries = append(retries, c.at)
		c.reply <- errors.New("provider unavailable")
		tm = h.clock.blocked(t)
	}
	want := []time.Duration{time.Minute, 3 * time.Minute, 7 * time.Minute}
	for i, at := range retries {
		if got := at.Sub(t0); got != want[i] {
			t.Errorf("retry %d at t0+%s, want t0+%s", i+1, got, want[i])
		}
	}
}

func TestSchedulerPicksUpNewSecret(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/first", daily)
	h := start(t, st)
	h.clock.blocked(t)
	c := h.rotator.next(t)
	c.reply <- nil
	tm := h.clock.blocked(t)

	addSecret(t, st, "app/second", daily)
	_, started := h.clock.advanceUntilStarted(t, tm, scheduler.DefaultRescan)
	if !slices.Equal(started, []string{"app/second"}) {
		t.Errorf("started %v, want only the new secret app/second", started)
	}
	c = h.rotator.next(t)
	if c.secretID != "app/second" {
		t.Fatalf("rotated %s, want the new secret app/second", c.secretID)
	}
	if got := c.at.Sub(t0); got != scheduler.DefaultRescan {
		t.Errorf("new secret rotated at t0+%s, want at the first rescan, t0+%s", got, scheduler.DefaultRescan)
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

	tm := h.clock.blocked(t)
	if got := h.starts.between(0, tm.started); !slices.Equal(got, []string{"app/minted"}) {
		t.Errorf("first pass started %v, want only app/minted", got)
	}
	c := h.rotator.next(t)
	if c.secretID != "app/minted" {
		t.Fatalf("rotated %s, want only app/minted", c.secretID)
	}
	c.reply <- nil
	tm = h.clock.blocked(t)

	// The pass that the advance runs is over once the scheduler waits on
	// its next timer, and by then it has started every rotation it will.
	h.clock.Advance(time.Hour)
	next := h.clock.blocked(t)
	if got := h.starts.between(tm.started, next.started); len(got) > 0 {
		t.Fatalf("rotated %v, which has no staged key", got)
	}
}

func TestSchedulerStopWaitsThenCancels(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/slow", daily)
	h := start(t, st)
	h.clock.blocked(t)
	h.rotator.next(t) // never answered

	h.cancel()
	var stopTimer *fakeTimer
	select {
	case err := <-h.done:
		h.done <- err
		t.Fatal("Run returned while a rotation was in flight")
	case stopTimer = <-h.clock.timers:
	case <-time.After(hangGuard):
		t.Fatal("Run neither returned nor waited after cancel")
	}
	if stopTimer.d != scheduler.DefaultStopTimeout {
		t.Fatalf("after cancel Run waits %s, want the stop timeout %s", stopTimer.d, scheduler.DefaultStopTimeout)
	}
	select {
	case err := <-h.done:
		h.done <- err
		t.Fatal("Run returned while a rotation was in flight")
	default:
	}

	// Past the stop timeout, the rotation's context is cancelled and the
	// fake rotator returns.
	h.clock.Advance(scheduler.DefaultStopTimeout)
	if err := receive(t, h.done, "return from Run after the stop timeout"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	h.done <- nil
}

func TestRunOnceRotatesDueAndCountsFailures(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/a", daily)
	addSecret(t, st, "app/b", daily)
	if err := st.SetRotation(context.Background(), "app/b", keystore.Rotation{Enabled: false, Rules: daily}); err != nil {
		t.Fatal(err)
	}
	addSecret(t, st, "app/c", daily)
	clock := newClock(t0, nil)
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
	res := receive(t, done, "return from RunOnce")
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
	clock := newClock(t0, nil)
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
	clock := newClock(t0, nil)
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
	res := receive(t, done, "return from RunOnce")
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
