package router

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// heldDescriber returns from Describe of "slow" only once release is
// closed, and reports every other secret missing.
type heldDescriber struct {
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int32
}

func (d *heldDescriber) Describe(ctx context.Context, id string) (keystore.Description, error) {
	d.calls.Add(1)
	if id != "slow" {
		return keystore.Description{}, keystore.Errorf(keystore.ErrNotFound, "describe", id, "no such secret")
	}
	d.entered <- struct{}{}
	<-d.release
	return keystore.Description{}, nil
}

// TestMissingSlowCheckHoldsUpNoOtherSecret checks that a Describe call in
// flight for one secret does not block the check of another, and that
// further requests for the secret, during the call or within the interval
// after it, make no call of their own.
func TestMissingSlowCheckHoldsUpNoOtherSecret(t *testing.T) {
	d := &heldDescriber{entered: make(chan struct{}, 1), release: make(chan struct{})}
	m := &missingSecrets{store: d, now: time.Now, results: map[string]missingResult{}}
	ctx := t.Context()

	var wg sync.WaitGroup
	results := make([]bool, 3)
	wg.Go(func() { results[0] = m.missing(ctx, "slow") })
	<-d.entered
	for i := 1; i < len(results); i++ {
		wg.Go(func() { results[i] = m.missing(ctx, "slow") })
	}
	if !m.missing(ctx, "gone") {
		t.Error(`missing("gone") = false while "slow" is checked, want true`)
	}
	close(d.release)
	wg.Wait()
	for i, r := range results {
		if r {
			t.Errorf(`request %d: missing("slow") = true, want false`, i)
		}
	}
	if n := d.calls.Load(); n != 2 {
		t.Errorf("Describe called %d times, want 2: one per secret", n)
	}
	if m.missing(ctx, "slow") || d.calls.Load() != 2 {
		t.Error("a check within the interval called Describe again")
	}
}

// TestMissingGivenUpCheckNotRecorded checks that a request that gives up
// on a check leaves nothing recorded for the next one.
func TestMissingGivenUpCheckNotRecorded(t *testing.T) {
	d := &heldDescriber{entered: make(chan struct{}, 1), release: make(chan struct{})}
	m := &missingSecrets{store: d, now: time.Now, results: map[string]missingResult{}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan bool)
	go func() { done <- m.missing(ctx, "slow") }()
	<-d.entered
	cancel()
	close(d.release)
	if <-done {
		t.Error("a check given up on reported the secret missing")
	}
	if _, ok := m.results["slow"]; ok {
		t.Error("a check given up on was recorded")
	}
}
