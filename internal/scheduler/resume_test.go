package scheduler_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/scheduler"
	"github.com/keyturn/keyturn/keystore"
)

// resumeCall is one RotateNow of the real engine, as the scheduler made it.
type resumeCall struct {
	at  time.Time
	res rotation.Result
	err error
}

// recordingRotator runs the real engine and reports each RotateNow to the
// test.
type recordingRotator struct {
	engine *rotation.Engine
	clock  *fakeClock
	calls  chan resumeCall
}

func (r *recordingRotator) RotateNow(ctx context.Context, secretID string) (rotation.Result, error) {
	at := r.clock.Now()
	res, err := r.engine.RotateNow(ctx, secretID)
	r.calls <- resumeCall{at: at, res: res, err: err}
	return res, err
}

func (r *recordingRotator) PendingRotation(ctx context.Context, d keystore.Description) (rotation.PendingRotation, bool, error) {
	return r.engine.PendingRotation(ctx, d)
}

var _ scheduler.PendingChecker = (*recordingRotator)(nil)

// stoppedRotation leaves a staged-key secret as a rotator that stopped
// after createSecret would: rotated once, so not due by its schedule, and
// with AWSPENDING on a filled version. It returns the pending token.
func stoppedRotation(t *testing.T, engine *rotation.Engine, st keystore.Store, baseURL string) string {
	t.Helper()
	ctx := context.Background()
	tags := keystore.Settings{Provider: "openai", BaseURL: baseURL}.Tags()
	if _, err := st.Create(ctx, keystore.CreateInput{SecretID: "app/openai", Tags: tags}); err != nil {
		t.Fatal(err)
	}
	monthly := keystore.RotationRules{ScheduleExpression: "rate(30 days)"}
	if err := st.SetRotation(ctx, "app/openai", keystore.Rotation{Enabled: true, Rules: monthly}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{firstKey, secondKey} {
		if _, err := engine.Stage(ctx, "app/openai", keystore.Value{APIKey: keystore.NewSecret(key)}, false); err != nil {
			t.Fatalf("Stage: %v", err)
		}
		if key == secondKey {
			break
		}
		if _, err := engine.RotateNow(ctx, "app/openai"); err != nil {
			t.Fatalf("first RotateNow: %v", err)
		}
	}
	token, err := st.BeginRotation(ctx, "app/openai", "")
	if err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}
	if err := engine.Run(ctx, rotation.CreateSecret, "app/openai", token); err != nil {
		t.Fatalf("createSecret: %v", err)
	}
	return token
}

const (
	firstKey  = "sk-test-first-0001"
	secondKey = "sk-test-second-0002"
)

func TestSchedulerResumesStaleRotation(t *testing.T) {
	st := newStore(t)
	prov, url := fakeprovider.Start(t, fakeprovider.Options{})
	prov.AddKey(firstKey)
	prov.AddKey(secondKey)
	starts := newStartLog(slog.NewTextHandler(testWriter{t}, nil))
	clock := newClock(time.Now().UTC(), starts)
	engine := &rotation.Engine{
		Store:   st,
		Checker: provider.New(provider.Options{Policy: provider.NewPolicy(nil, true)}),
		Now:     clock.Now,
	}
	stale := stoppedRotation(t, engine, st, url+"/openai/v1")
	d, err := st.Describe(context.Background(), "app/openai")
	if err != nil {
		t.Fatal(err)
	}
	p, ok, err := engine.PendingRotation(context.Background(), d)
	if err != nil || !ok {
		t.Fatalf("PendingRotation: ok %v, err %v", ok, err)
	}

	r := &recordingRotator{engine: engine, clock: clock, calls: make(chan resumeCall, 4)}
	s := &scheduler.Scheduler{Store: st, Rotator: r, Clock: clock, Logger: slog.New(starts)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := receive(t, done, "return from Run after cancel"); err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	// Each pass before StaleAt leaves the secret alone, and the first pass
	// at or after it resumes the rotation.
	tm := clock.blocked(t)
	if tm.started != 0 {
		t.Fatalf("first pass started %v, want nothing before the rotation goes stale", starts.between(0, tm.started))
	}
	_, started := clock.advanceUntilStarted(t, tm, time.Minute)
	if !slices.Equal(started, []string{"app/openai"}) {
		t.Errorf("started %v, want app/openai", started)
	}
	c := receive(t, r.calls, "rotation started")
	if c.at.Before(p.StaleAt) {
		t.Errorf("rotation started at %s, before the pending one went stale at %s", c.at, p.StaleAt)
	}
	if late := p.StaleAt.Add(time.Minute); !c.at.Before(late) {
		t.Errorf("rotation started at %s, not at the first pass after the pending one went stale at %s", c.at, p.StaleAt)
	}
	if c.err != nil || c.res.Outcome != rotation.Promoted {
		t.Fatalf("RotateNow: outcome %s, err %v", c.res.Outcome, c.err)
	}
	if c.res.ResumedFrom != stale {
		t.Errorf("ResumedFrom = %q, want the stale token %s", c.res.ResumedFrom, stale)
	}
	cur, err := st.Get(context.Background(), "app/openai", keystore.Current())
	if err != nil {
		t.Fatal(err)
	}
	v, err := keystore.ParseValue(cur.Value)
	if err != nil {
		t.Fatal(err)
	}
	if !v.APIKey.Equal(keystore.NewSecret(secondKey)) {
		t.Errorf("AWSCURRENT does not hold the key of the stale rotation")
	}
}
