package scheduler_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/scheduler"
	"github.com/keyturn/keyturn/keystore"
)

// listRotator promotes every rotation at once and records the
// secrets it rotated.
type listRotator struct {
	mu      sync.Mutex
	rotated []string
}

func (r *listRotator) RotateNow(_ context.Context, secretID string) (rotation.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rotated = append(r.rotated, secretID)
	return rotation.Result{SecretID: secretID, Outcome: rotation.Promoted}, nil
}

func (r *listRotator) secrets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(slices.Values(r.rotated))
}

func TestOnlyLimitsScheduledSecrets(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/a", daily)
	addSecret(t, st, "app/b", daily)
	addSecret(t, st, "dev/openai", daily)
	r := &listRotator{}
	s := &scheduler.Scheduler{Store: st, Rotator: r, Clock: newClock(t0, nil),
		Only: func(d keystore.Description) bool { return d.SecretID == "dev/openai" }}

	if n, err := s.RunOnce(context.Background()); n != 0 || err != nil {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	if got := r.secrets(); !slices.Equal(got, []string{"dev/openai"}) {
		t.Errorf("rotated %v, want only dev/openai", got)
	}

	s.Only = nil
	if n, err := s.RunOnce(context.Background()); n != 0 || err != nil {
		t.Fatalf("RunOnce without Only = %d, %v", n, err)
	}
	if got := r.secrets(); !slices.Equal(got, []string{"app/a", "app/b", "dev/openai"}) {
		t.Errorf("rotated %v, want every due secret once Only is nil", got)
	}
}

// A secret with rotation enabled but no rules is valid: it rotates only
// when asked to. The scheduler logs that once, at INFO.
func TestNoScheduleLoggedOnceAtInfo(t *testing.T) {
	st := newStore(t)
	addSecret(t, st, "app/manual", keystore.RotationRules{})
	logs := &logBuffer{}
	r := &listRotator{}
	s := &scheduler.Scheduler{Store: st, Rotator: r, Clock: newClock(t0, nil),
		Logger: slog.New(slog.NewTextHandler(logs, nil))}

	for range 3 {
		if n, err := s.RunOnce(context.Background()); n != 0 || err != nil {
			t.Fatalf("RunOnce = %d, %v", n, err)
		}
	}
	if got := r.secrets(); len(got) != 0 {
		t.Errorf("rotated %v, want nothing for a secret without a schedule", got)
	}
	out := logs.String()
	want := "no rotation schedule: rotate it with rotator rotate-now app/manual, " +
		"or give it one with rotator update app/manual --schedule 'rate(30 days)'"
	if n := strings.Count(out, want); n != 1 {
		t.Errorf("logged %q %d times, want once:\n%s", want, n, out)
	}
	if !strings.Contains(out, "level=INFO") || strings.Contains(out, "level=WARN") {
		t.Errorf("want the notice at INFO and no warning:\n%s", out)
	}
	if strings.Contains(out, "AutomaticallyAfterDays") {
		t.Errorf("the notice speaks of AWS fields:\n%s", out)
	}
}
