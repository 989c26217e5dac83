package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// unavailableStore is a store that cannot be reached, as when the Secrets
// Manager endpoint is down.
type unavailableStore struct{ keystore.Store }

func (unavailableStore) Describe(_ context.Context, id string) (keystore.Description, error) {
	return keystore.Description{}, keystore.Errorf(keystore.ErrUnavailable, "DescribeSecret", id, "connection refused")
}

func TestRotateNowUnreachableStoreIsTransient(t *testing.T) {
	e := newEnv(t)
	e.configure = func(a *app) {
		a.openAWS = func(context.Context, string) (keystore.Store, error) { return unavailableStore{}, nil }
	}
	r := e.run("rotate-now", "app/openai", "--store", "aws://us-east-1", "--output", "json")
	if r.code != exitTransient {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitTransient, r.stderr)
	}
	assertContains(t, "stdout", r.stdout, `"outcome": "transient"`)
	assertContains(t, "stderr", r.stderr, "connection refused")
}

func TestRotateNowMissingSecret(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.run("rotate-now", "nope/x")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "rotator: error: rotate-now: secret nope/x not found in store "+e.storeURL)
	assertContains(t, "stderr", r.stderr, "rotator: hint: list the managed secrets with 'rotator status'")
	if r.stdout != "" {
		t.Errorf("stdout for a missing secret = %q, want nothing", r.stdout)
	}

	r = e.run("rotate-now", "nope/x", "--output", "json")
	var out rotationJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("rotate-now JSON: %v\n%s", err, r.stdout)
	}
	if out.Outcome != "failed" || !strings.Contains(out.Error, "not found") {
		t.Errorf("JSON = %+v, want outcome failed and the error", out)
	}
}

func TestRotateNowNothingStagedAdvisesOnce(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.run("rotate-now", "app/openai")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	all := r.stdout + r.stderr
	if n := strings.Count(all, "rotator stage"); n != 1 {
		t.Errorf("the advice to stage appears %d times, want once:\n%s", n, all)
	}
	assertContains(t, "stderr", r.stderr, "rotator: hint: stage the next key first: rotator stage app/openai --file KEYFILE")
	if d, err := e.openStore().Describe(context.Background(), "app/openai"); err != nil || len(d.Versions) != 0 {
		t.Errorf("versions after a doomed rotate-now = %v (%v), want none", d.Versions, err)
	}
}

// TestRotateNowResumedNothingStagedAdvisesOnce resumes a stale rotation
// with no key staged, so the engine, not the pre-check, finds nothing to
// promote.
func TestRotateNowResumedNothingStagedAdvisesOnce(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	if _, err := e.openStore().BeginRotation(context.Background(), "app/openai", ""); err != nil {
		t.Fatal(err)
	}
	e.configure = func(a *app) { a.clock = fixedClock{time.Now().Add(time.Hour)} }

	r := e.run("rotate-now", "app/openai")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	all := r.stdout + r.stderr
	if n := strings.Count(all, "rotator stage"); n != 1 {
		t.Errorf("the advice to stage appears %d times, want once:\n%s", n, all)
	}
	assertContains(t, "stderr", r.stderr, "stage a key with 'rotator stage app/openai --file KEYFILE'")
	assertContains(t, "stdout", r.stdout, "failed step: createSecret")
}

func TestRotateNowRejectedHintIsCommand(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", "sk-revoked-key"))
	r := e.run("rotate-now", "app/openai")
	assertContains(t, "stderr", r.stderr, "stage another key with 'rotator stage app/openai --file KEYFILE'.")
	assertContains(t, "stderr", r.stderr, "rotator: hint: pass --validate when you stage the next key")
	if n := strings.Count(r.stderr, "rotator stage"); n != 1 {
		t.Errorf("the advice to stage appears %d times, want once:\n%s", n, r.stderr)
	}
}

func TestRotateNowResumesStaleRotation(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	token, err := e.openStore().BeginRotation(context.Background(), "app/openai", "")
	if err != nil {
		t.Fatal(err)
	}
	e.configure = func(a *app) { a.clock = fixedClock{time.Now().Add(time.Hour)} }

	r := e.mustRun(exitOK, "rotate-now", "app/openai", "--output", "json")
	var out rotationJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("rotate-now JSON: %v\n%s", err, r.stdout)
	}
	if out.ResumedFrom != token || out.Outcome != "promoted" {
		t.Errorf("JSON = %+v, want promoted, resumed_from %s", out, token)
	}

	const next = "sk-resume-next-key-0b7e"
	e.provider.AddKey(next)
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", next))
	token, err = e.openStore().BeginRotation(context.Background(), "app/openai", "")
	if err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(exitOK, "rotate-now", "app/openai")
	assertContains(t, "stdout", r.stdout, "resumed the rotation left in progress by version "+token)
}

func TestRotateNowTimeoutCapOnFileStore(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.run("rotate-now", "app/openai", "--timeout", "10m")
	if r.code != exitUsage {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "--timeout 10m is longer than 5m")
	assertContains(t, "stderr", r.stderr, "rotator: hint: pass --timeout 5m or less")
}

func TestRotateNowInProgressHintNamesAbandon(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	if _, err := e.openStore().BeginRotation(context.Background(), "app/openai", ""); err != nil {
		t.Fatal(err)
	}
	r := e.run("rotate-now", "app/openai")
	if r.code != exitInProgress {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitInProgress, r.stderr)
	}
	if n := strings.Count(r.stderr, "rotator abandon app/openai"); n != 1 {
		t.Errorf("the abandon command appears %d times, want once:\n%s", n, r.stderr)
	}
}

func TestAbandonFileStore(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.mustRun(exitOK, "abandon", "app/openai")
	assertContains(t, "stdout", r.stdout, "nothing to abandon: app/openai has no rotation in progress")
	r = e.mustRun(exitOK, "abandon", "app/openai", "--output", "json")
	assertContains(t, "stdout", r.stdout, `"version_id": ""`)

	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	token, err := e.openStore().BeginRotation(context.Background(), "app/openai", "")
	if err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(exitOK, "abandon", "app/openai")
	assertContains(t, "stdout", r.stdout, "removed AWSPENDING from version "+token)
	assertContains(t, "stdout", r.stdout, "nothing was revoked")
	st := e.status("app/openai")
	if st.InProgress != nil {
		t.Errorf("rotation still in progress after abandon: %+v", st.InProgress)
	}
	if st.Staged == nil {
		t.Errorf("abandon dropped the staged key")
	}
	e.mustRun(exitOK, "rotate-now", "app/openai")

	r = e.run("abandon", "nope/x")
	assertContains(t, "stderr", r.stderr, "secret nope/x not found")
}

func TestAbandonAWS(t *testing.T) {
	e := newAWSEnv(t)
	e.createSecret("app/openai")
	e.stage("app/openai", canary)
	release := make(chan struct{})
	e.setBlocker(release)
	defer close(release)
	r := e.run("rotate-now", "app/openai", "--store", "aws://us-east-1", "--no-wait")
	if r.code != exitInProgress {
		t.Fatalf("rotate-now --no-wait: exit %d, want %d\n%s", r.code, exitInProgress, r.stderr)
	}
	text := e.mustRun(exitOK, "status", "app/openai", "--store", "aws://us-east-1").stdout
	assertContains(t, "status", text, "not finished; Secrets Manager retries a failed rotation")

	r = e.mustRun(exitOK, "abandon", "app/openai", "--store", "aws://us-east-1", "--output", "json")
	var out abandonedJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("abandon JSON: %v\n%s", err, r.stdout)
	}
	if out.VersionID == "" || out.Revoked {
		t.Errorf("abandon JSON = %+v", out)
	}
	if st := e.statusAWS("app/openai"); st.InProgress != nil {
		t.Errorf("rotation still in progress after abandon: %+v", st.InProgress)
	}
	e.setBlocker(nil)
}
