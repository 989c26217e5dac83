package scheduler_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/scheduler"
)

// checkStoppedLog checks that logs report the rotation of secretID as
// stopped by shutdown, with no failure and no retry.
func checkStoppedLog(t *testing.T, logs, secretID string) {
	t.Helper()
	want := `level=INFO msg="rotation stopped by shutdown" secret_id=` + secretID + " outcome=transient"
	if !strings.Contains(logs, want) {
		t.Errorf("logs do not contain %q:\n%s", want, logs)
	}
	for _, bad := range []string{`msg="rotation failed"`, "retry_in="} {
		if strings.Contains(logs, bad) {
			t.Errorf("logs contain %q for a rotation that shutdown stopped:\n%s", bad, logs)
		}
	}
}

func TestRunLogsRotationStoppedByShutdown(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/slow", daily)
	logs := &logBuffer{}
	starts := newStartLog(slog.NewTextHandler(logs, nil))
	clock := newClock(t0, starts)
	r := &fakeRotator{clock: clock, calls: make(chan rotateCall)}
	s := &scheduler.Scheduler{Store: st, Rotator: r, Clock: clock, Logger: slog.New(starts)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	clock.blocked(t)
	r.next(t) // never answered
	cancel()
	stopTimer := clock.blocked(t)
	if stopTimer.d != scheduler.DefaultStopTimeout {
		t.Fatalf("after cancel Run waits %s, want the stop timeout %s", stopTimer.d, scheduler.DefaultStopTimeout)
	}
	clock.Advance(scheduler.DefaultStopTimeout)
	if err := receive(t, done, "return from Run after the stop timeout"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkStoppedLog(t, logs.String(), "app/slow")
}

// A cancelled RunOnce reports the stopped rotation as failed, logs it as
// stopped, and starts no other rotation.
func TestRunOnceLogsRotationStoppedByShutdown(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/slow", daily)
	logs := &logBuffer{}
	clock := newClock(t0, nil)
	r := &fakeRotator{clock: clock, calls: make(chan rotateCall, 1)}
	s := &scheduler.Scheduler{Store: st, Rotator: r, Clock: clock,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		failed int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.RunOnce(ctx)
		done <- result{n, err}
	}()

	r.next(t) // never answered
	cancel()
	res := receive(t, done, "return from RunOnce after cancel")
	if res.err != nil || res.failed != 1 {
		t.Errorf("RunOnce = %d, %v; want 1 failed and no error", res.failed, res.err)
	}
	select {
	case c := <-r.calls:
		t.Errorf("RunOnce started another rotation of %s after cancel", c.secretID)
	default:
	}
	checkStoppedLog(t, logs.String(), "app/slow")
}
