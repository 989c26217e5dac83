package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/keystore"
)

func TestRotateNowPromotes(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	r := e.mustRun(exitOK, "rotate-now", "app/openai", "--output", "json")
	var out rotationJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("rotate-now JSON: %v\n%s", err, r.stdout)
	}
	if out.Outcome != "promoted" || out.VersionID == "" {
		t.Errorf("rotate-now output = %+v", out)
	}
	st := e.status("app/openai")
	if st.Staged != nil {
		t.Errorf("staged key still present after promotion")
	}
	if st.LastRotated == nil {
		t.Errorf("last_rotated is null after a rotation")
	}
	if len(st.Versions) == 0 || st.Versions[0].VersionID != out.VersionID || st.Versions[0].Stages[0] != keystore.StageCurrent {
		t.Errorf("versions = %+v, want %s first with AWSCURRENT", st.Versions, out.VersionID)
	}
}

func TestRotateNowRejected(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", "sk-revoked-key"))
	r := e.run("rotate-now", "app/openai")
	if r.code != exitRejected {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitRejected, r.stdout, r.stderr)
	}
	assertContains(t, "stdout", r.stdout, "rejected: app/openai")
	assertContains(t, "stdout", r.stdout, "failed step: testSecret")
	st := e.status("app/openai")
	if st.LastFailure == nil || st.LastFailure.Class != "rejected" {
		t.Fatalf("last_failure = %+v, want class rejected", st.LastFailure)
	}
	if st.LastFailure.VersionID != rejectedVersion(t, e, "app/openai") {
		t.Errorf("last_failure.rejected_version_id = %s, want the KEYTURN_REJECTED version", st.LastFailure.VersionID)
	}
	if st.LastFailure.RotationToken == "" || st.LastFailure.RotationToken == st.LastFailure.VersionID {
		t.Errorf("last_failure.rotation_token = %q, want the rotation's token", st.LastFailure.RotationToken)
	}
	text := e.mustRun(exitOK, "status", "app/openai").stdout
	assertContains(t, "status", text, "last rejected key  version "+rejectedVersion(t, e, "app/openai")+" (KEYTURN_REJECTED), from rotation "+st.LastFailure.RotationToken)
}

func TestRotateNowNothingStaged(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.run("rotate-now", "app/openai")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "rotator: hint: stage the next key first: rotator stage app/openai")
}

func TestRotateNowTransient(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	e.provider.SetFault("GET /openai/v1/models", fakeprovider.Fault{Status: http.StatusServiceUnavailable})
	r := e.run("rotate-now", "app/openai", "--timeout", "3s")
	if r.code != exitTransient {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitTransient, r.stdout, r.stderr)
	}
}

// TestRotateNowConcurrent holds the first rotation inside its provider
// check, so the second rotate-now finds the rotation in progress.
func TestRotateNowConcurrent(t *testing.T) {
	e := newEnv(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			close(entered)
			<-release
		})
		e.provider.ServeHTTP(w, r)
	}))
	t.Cleanup(gate.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	e.baseURL = gate.URL + "/openai/v1"
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))

	first := make(chan result, 1)
	go func() { first <- e.run("rotate-now", "app/openai") }()
	select {
	case <-entered:
	case <-time.After(hangGuard):
		t.Fatal("the first rotation never reached the provider")
	}
	second := e.run("rotate-now", "app/openai")
	if second.code != exitInProgress {
		t.Errorf("second rotate-now: exit %d, want %d\n%s\n%s", second.code, exitInProgress, second.stdout, second.stderr)
	}
	assertContains(t, "second stdout", second.stdout, "rotation in progress")
	close(release)
	select {
	case r := <-first:
		if r.code != exitOK {
			t.Errorf("first rotate-now: exit %d, want %d\n%s", r.code, exitOK, r.stderr)
		}
	case <-time.After(hangGuard):
		t.Fatal("the first rotation did not finish")
	}
}

// rejectedVersion returns the version that holds KEYTURN_REJECTED.
func rejectedVersion(t *testing.T, e *testEnv, secretID string) string {
	t.Helper()
	d, err := e.openStore().Describe(context.Background(), secretID)
	if err != nil {
		t.Fatal(err)
	}
	return d.VersionWithStage(keystore.StageRejected)
}

func TestStatusShowsRotationInProgress(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	e.mustRun(exitOK, "rotate-now", "app/openai")
	token, err := e.openStore().BeginRotation(context.Background(), "app/openai", "")
	if err != nil {
		t.Fatal(err)
	}
	st := e.status("app/openai")
	if st.InProgress == nil || st.InProgress.VersionID != token {
		t.Fatalf("stuck = %+v, want version %s", st.InProgress, token)
	}
	if st.NextRotation == nil || st.Rotation.Schedule != "rate(30 days)" {
		t.Errorf("next rotation %v, schedule %q", st.NextRotation, st.Rotation.Schedule)
	}
	text := e.mustRun(exitOK, "status").stdout
	assertContains(t, "status", text, "in progress    version "+token+" (AWSPENDING) since ")
	assertContains(t, "status", text, "(resumed after ")
	if st.InProgress.Stale || st.InProgress.StaleAt == nil || st.InProgress.Since == nil {
		t.Errorf("rotation_in_progress = %+v, want since and stale_at, not stale", st.InProgress)
	}
	assertContains(t, "status", text, "VERSION")

	r := e.run("rotate-now", "app/openai")
	if r.code != exitInProgress {
		t.Errorf("rotate-now on a stuck rotation: exit %d, want %d", r.code, exitInProgress)
	}
}

func TestStatusEmptyAndUnmanaged(t *testing.T) {
	e := newEnv(t)
	e.openStore()
	r := e.mustRun(exitOK, "status")
	assertContains(t, "status", r.stdout, "no managed secrets")
	r = e.mustRun(exitOK, "status", "--output", "json")
	if strings.TrimSpace(r.stdout) != `{
  "secrets": [],
  "errors": []
}` {
		t.Errorf("empty status JSON = %s", r.stdout)
	}
	if _, err := e.openStore().Create(context.Background(), keystore.CreateInput{SecretID: "other"}); err != nil {
		t.Fatal(err)
	}
	r = e.run("status", "other")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "secret other is not managed by keyturn")
	r = e.run("status", "missing")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "missing")
}
