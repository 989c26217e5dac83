package main

import (
	"context"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// TestDevRotatesOnlyItsSecret runs dev on a store that holds another
// secret, due and with a key staged, and lets dev's scheduler rotate
// dev/openai once more before it stops.
func TestDevRotatesOnlyItsSecret(t *testing.T) {
	e := newEnv(t)
	dir := e.dir
	e.add("other/openai")
	e.mustRun(exitOK, "stage", "other/openai", "--file", e.writeFile("key", canary))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	e.configure = func(a *app) { a.devReady = func(string) { close(ready) } }
	done := make(chan result, 1)
	go func() { done <- e.runContext(ctx, "", "dev", "--dir", dir, "--interval", "1s") }()
	waitClosed(t, ready, "dev's first rotation")

	first := current(e.status("dev/openai"))
	deadline := time.Now().Add(hangGuard)
	for current(e.status("dev/openai")) == first {
		if time.Now().After(deadline) {
			t.Fatal("dev's scheduler did not rotate dev/openai again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if r := <-done; r.code != exitOK {
		t.Fatalf("dev: exit %d\n%s", r.code, r.stderr)
	}

	other := e.status("other/openai")
	if other.LastRotated != nil || other.Staged == nil {
		t.Errorf("dev rotated other/openai: last rotated %v, staged %+v", other.LastRotated, other.Staged)
	}
	d := e.describe("other/openai")
	if d.VersionWithStage(keystore.StageCurrent) != "" {
		t.Errorf("other/openai has an AWSCURRENT version after dev ran")
	}
}
