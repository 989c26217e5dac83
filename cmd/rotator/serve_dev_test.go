package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

func TestServeOnce(t *testing.T) {
	e := newEnv(t)
	e.add("app/due")
	e.add("app/waiting")
	e.mustRun(exitOK, "stage", "app/due", "--file", e.writeFile("key", canary))
	r := e.mustRun(exitOK, "serve", "--once")
	assertContains(t, "stderr", r.stderr, "rotation promoted")
	assertContains(t, "stderr", r.stderr, "secret_id=app/due")
	assertContains(t, "stderr", r.stderr, "rotation due but no key is staged")
	assertContains(t, "stderr", r.stderr, `due_since="never rotated"`)
	if st := e.status("app/due"); st.LastRotated == nil {
		t.Errorf("app/due was not rotated")
	}
	if st := e.status("app/waiting"); st.LastRotated != nil {
		t.Errorf("app/waiting was rotated without a staged key")
	}

	e.mustRun(exitOK, "stage", "app/waiting", "--file", e.writeFile("key", "sk-bad-key"))
	r = e.run("serve", "--once")
	if r.code != exitError {
		t.Errorf("serve --once with a rejected key: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "rotation failed")
}

func TestServeRunsUntilCancelled(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- e.runContext(ctx, "", "serve") }()

	deadline := time.Now().Add(hangGuard)
	for e.status("app/openai").LastRotated == nil {
		if time.Now().After(deadline) {
			t.Fatal("serve did not rotate the due secret")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case r := <-done:
		if r.code != exitOK {
			t.Errorf("serve: exit %d, want %d\n%s", r.code, exitOK, r.stderr)
		}
		assertContains(t, "stderr", r.stderr, "scheduler stopped")
	case <-time.After(hangGuard):
		t.Fatal("serve did not stop after cancel")
	}
}

func TestServeRejectsAWSStore(t *testing.T) {
	e := newEnv(t)
	r := e.run("serve", "--store", "aws://us-east-1")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "Secrets Manager runs the rotation schedules")
}

// runDev starts rotator dev on dir with an interval of 1h and the extra
// flags, and stops it after its first rotation.
func runDev(t *testing.T, e *testEnv, dir string, extra ...string) result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	prev := e.configure
	e.configure = func(a *app) {
		a.devReady = func(string) { close(ready) }
	}
	defer func() { e.configure = prev }()
	done := make(chan result, 1)
	args := append([]string{"dev", "--dir", dir, "--interval", "1h"}, extra...)
	go func() { done <- e.runContext(ctx, "", args...) }()

	select {
	case <-ready:
	case r := <-done:
		t.Fatalf("dev exited early with %d\n%s\n%s", r.code, r.stdout, r.stderr)
	case <-time.After(hangGuard):
		t.Fatal("dev did not finish its first rotation")
	}
	cancel()
	select {
	case r := <-done:
		if r.code != exitOK {
			t.Fatalf("dev: exit %d, want %d\n%s", r.code, exitOK, r.stderr)
		}
		return r
	case <-time.After(hangGuard):
		t.Fatal("dev did not stop after cancel")
	}
	return result{}
}

func TestDevStartsRotatesAndStops(t *testing.T) {
	e := newEnv(t)
	delete(e.vars, "KEYTURN_ALLOW_LOOPBACK")
	dir := t.TempDir()
	r := runDev(t, e, dir)
	for _, want := range []string{dir, "dev/openai", "every 1h", "Press Ctrl-C to stop"} {
		assertContains(t, "stdout", r.stdout, want)
	}
	for _, step := range rotation.Steps {
		assertContains(t, "stderr", r.stderr, "step="+string(step))
	}
	assertContains(t, "stderr", r.stderr, "rotation promoted")
	assertContains(t, "stderr", r.stderr, "scheduler stopped")
	for _, noise := range []string{"fakeprovider request", "fakeprovider minted a key"} {
		if strings.Contains(r.stderr, noise) {
			t.Errorf("stderr without --verbose contains %q:\n%s", noise, r.stderr)
		}
	}

	e.vars["KEYTURN_STORE"] = "file://" + dir
	first := e.status("dev/openai")
	if first.LastRotated == nil || len(first.Versions) == 0 {
		t.Fatalf("dev/openai after dev: %+v", first)
	}
	if first.SettingsError != "" {
		t.Errorf("status without --allow-loopback calls dev's own secret invalid: %s", first.SettingsError)
	}
	if first.Rotation.DevInterval != "1h" {
		t.Errorf("status dev_interval = %q, want 1h", first.Rotation.DevInterval)
	}
	if first.NextRotation == nil || !first.NextRotation.Equal(first.LastRotated.Add(time.Hour)) {
		t.Errorf("next rotation = %v, want an hour after the last rotation %v", first.NextRotation, first.LastRotated)
	}
	text := e.mustRun(exitOK, "status", "dev/openai").stdout
	assertContains(t, "status", text, "every 1h while 'rotator dev' runs")

	// A second run reuses the directory and points the secret at the new
	// stand-in.
	runDev(t, e, dir)
	second := e.status("dev/openai")
	if current(second) == current(first) {
		t.Errorf("the second run did not rotate: current is still %s", current(first))
	}
	if second.Settings.BaseURL == first.Settings.BaseURL {
		t.Logf("base URL unchanged (%s): the port was reused", second.Settings.BaseURL)
	}
	if !strings.HasPrefix(second.Settings.BaseURL, "http://127.0.0.1:") {
		t.Errorf("base URL = %s", second.Settings.BaseURL)
	}
	st, err := keystore.OpenFile(keystore.FileOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := st.Get(context.Background(), "dev/openai", keystore.Current())
	if err != nil {
		t.Fatal(err)
	}
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		t.Fatal(err)
	}
	if value.Settings.BaseURL != second.Settings.BaseURL {
		t.Errorf("current version was validated against %s, want %s", value.Settings.BaseURL, second.Settings.BaseURL)
	}
}

func TestDevVerboseLogsRequests(t *testing.T) {
	e := newEnv(t)
	for _, flag := range []string{"--verbose", "-v"} {
		r := runDev(t, e, t.TempDir(), flag)
		assertContains(t, "stderr", r.stderr, "fakeprovider request")
		assertContains(t, "stderr", r.stderr, "component=stand-in")
		assertContains(t, "stderr", r.stderr, "rotation promoted")
	}
}

func TestStatusInvalidDevInterval(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	store := e.openStore()
	ctx := context.Background()
	// Like dev's secret: rotation enabled without a stored schedule.
	if err := store.SetRotation(ctx, "app/openai", keystore.Rotation{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := store.Tag(ctx, "app/openai", map[string]string{devIntervalTag: "soon"}); err != nil {
		t.Fatal(err)
	}
	st := e.status("app/openai")
	assertContains(t, "schedule_error", st.Rotation.ScheduleError, `invalid keyturn-dev:interval tag "soon"`)
	if st.NextRotation != nil {
		t.Errorf("next rotation = %v with an invalid interval, want none", st.NextRotation)
	}
	text := e.mustRun(exitOK, "status", "app/openai").stdout
	assertContains(t, "status", text, "schedule       INVALID: invalid keyturn-dev:interval tag")
}

func TestDevRejectsNonLoopbackListen(t *testing.T) {
	e := newEnv(t)
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:80", "example.com:80", "nonsense"} {
		r := e.run("dev", "--dir", t.TempDir(), "--listen", addr)
		if r.code != exitUsage {
			t.Errorf("--listen %s: exit %d, want %d", addr, r.code, exitUsage)
		}
		assertContains(t, "stderr", r.stderr, addr)
	}
	r := e.run("dev", "--interval", "10ms")
	if r.code != exitUsage {
		t.Errorf("--interval 10ms: exit %d, want %d", r.code, exitUsage)
	}
}

func current(s secretStatus) string {
	for _, v := range s.Versions {
		for _, stage := range v.Stages {
			if stage == keystore.StageCurrent {
				return v.VersionID
			}
		}
	}
	return ""
}
