package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/keystore"
)

// gateProvider puts a server in front of the env's stand-in that holds the
// first request until the test releases it, and points e at it. entered is
// closed when that request arrives.
func gateProvider(t *testing.T, e *testEnv) (entered, release chan struct{}) {
	t.Helper()
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			close(entered)
			select {
			case <-release:
			case <-r.Context().Done():
			}
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
	return entered, release
}

func waitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hangGuard):
		t.Fatalf("%s did not happen", what)
	}
}

func TestRotateNowInterruptedFileStore(t *testing.T) {
	e := newEnv(t)
	entered, _ := gateProvider(t, e)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))

	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan result, 1)
	go func() { done <- e.runContext(ctx, "", "rotate-now", "app/openai") }()
	waitClosed(t, entered, "the provider check")
	cancel(cli.SignalCause{Signal: syscall.SIGINT})
	r := <-done

	if r.code != exitInterrupted {
		t.Errorf("exit %d, want %d\n%s\n%s", r.code, exitInterrupted, r.stdout, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "rotator: error: interrupted: the rotation of app/openai was abandoned (AWSPENDING removed); AWSCURRENT is unchanged, and the staged key stays staged")
	for _, wrong := range []string{"provider check failed", "canceled", "transient"} {
		if strings.Contains(r.stdout+r.stderr, wrong) {
			t.Errorf("output of an interrupted rotation contains %q:\n%s%s", wrong, r.stdout, r.stderr)
		}
	}
	st := e.status("app/openai")
	if st.InProgress != nil || st.Staged == nil {
		t.Errorf("after the interrupt: in progress %+v, staged %+v; want none and the staged key", st.InProgress, st.Staged)
	}
}

func TestRotateNowInterruptedAWS(t *testing.T) {
	for _, output := range []string{"json", "text"} {
		t.Run(output, func(t *testing.T) { testRotateNowInterruptedAWS(t, output) })
	}
}

// testRotateNowInterruptedAWS stops a rotate-now that waits for the
// rotation Lambda: the wait ends, not the rotation, so no output may claim
// that the version was not promoted.
func testRotateNowInterruptedAWS(t *testing.T, output string) {
	e := newAWSEnv(t)
	e.createSecret("app/openai")
	e.stage("app/openai", canary)
	release := make(chan struct{})
	e.setBlocker(release)
	defer close(release)

	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan result, 1)
	go func() {
		done <- e.runContext(ctx, "", "rotate-now", "app/openai", "--store", "aws://us-east-1", "--output", output)
	}()
	deadline := time.Now().Add(hangGuard)
	for {
		d, err := e.store.Describe(context.Background(), "app/openai")
		if err == nil && pendingVersion(d) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotation did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel(cli.SignalCause{Signal: syscall.SIGINT})
	r := <-done

	if r.code != exitInterrupted {
		t.Errorf("exit %d, want %d\n%s\n%s", r.code, exitInterrupted, r.stdout, r.stderr)
	}
	if output == "json" {
		assertContains(t, "stdout", r.stdout, `"outcome": "interrupted"`)
	} else {
		assertContains(t, "stdout", r.stdout, "stopped waiting for app/openai version ")
		assertContains(t, "stdout", r.stdout, "the rotation may still complete in Secrets Manager")
	}
	assertContains(t, "stderr", r.stderr, "stopped waiting for the rotation of app/openai")
	assertContains(t, "stderr", r.stderr, "it may still complete in Secrets Manager")
	assertContains(t, "stderr", r.stderr, "rotator: hint: check it with 'rotator status app/openai'")
	for _, claim := range []string{"still pending after", "not promoted"} {
		if strings.Contains(r.stdout+r.stderr, claim) {
			t.Errorf("an interrupted wait claims %q:\n%s\n%s", claim, r.stdout, r.stderr)
		}
	}
}

func TestStatusStagedKeyBeingRotated(t *testing.T) {
	e := newEnv(t)
	entered, release := gateProvider(t, e)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))

	done := make(chan result, 1)
	go func() { done <- e.run("rotate-now", "app/openai") }()
	waitClosed(t, entered, "the provider check")
	st := e.status("app/openai")
	if st.InProgress == nil || st.Staged == nil || st.Staged.InRotation != st.InProgress.VersionID {
		t.Errorf("staged %+v, in progress %+v: want the staged key in the rotation in progress", st.Staged, st.InProgress)
	}
	text := e.mustRun(exitOK, "status", "app/openai").stdout
	if st.InProgress != nil {
		assertContains(t, "status", text, "(being rotated in version "+st.InProgress.VersionID+")")
	}
	close(release)
	if r := <-done; r.code != exitOK {
		t.Errorf("rotate-now: exit %d\n%s", r.code, r.stderr)
	}
}

func TestStatusNeverRotatedIsDueNow(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	text := e.mustRun(exitOK, "status", "app/openai").stdout
	assertContains(t, "status", text, "next rotation  due now")
	if st := e.status("app/openai"); !st.DueNow {
		t.Errorf("due_now = false for a secret never rotated")
	}
}

// unreachableStore is a store whose every read fails as an unreachable
// Secrets Manager endpoint does.
type unreachableStore struct{ keystore.Store }

func (unreachableStore) Describe(_ context.Context, id string) (keystore.Description, error) {
	return keystore.Description{}, keystore.Errorf(keystore.ErrUnavailable, "DescribeSecret", id, "connection refused")
}

func (unreachableStore) List(context.Context) ([]keystore.Description, error) {
	return nil, keystore.Errorf(keystore.ErrUnavailable, "ListSecrets", "", "connection refused")
}

func TestStatusUnreachableStoreIsTransient(t *testing.T) {
	e := newEnv(t)
	e.configure = func(a *app) {
		a.openAWS = func(context.Context, string) (keystore.Store, error) { return unreachableStore{}, nil }
	}
	for _, args := range [][]string{
		{"status", "--store", "aws://us-east-1"},
		{"status", "app/openai", "--store", "aws://us-east-1", "--output", "json"},
		{"status", "app/openai", "app/other", "--store", "aws://us-east-1"},
	} {
		r := e.run(args...)
		if r.code != exitTransient {
			t.Errorf("%v: exit %d, want %d\n%s", args, r.code, exitTransient, r.stderr)
		}
		assertContains(t, "stderr", r.stderr, "connection refused")
	}
}

func TestStatusJSONListsMissingSecrets(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.run("status", "app/openai", "nope/x", "--output", "json")
	if r.code != exitError {
		t.Errorf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, r.stdout)
	}
	if len(rep.Secrets) != 1 || len(rep.Errors) != 1 || rep.Errors[0].SecretID != "nope/x" {
		t.Fatalf("status JSON = %+v, want app/openai and an error for nope/x", rep)
	}
	assertContains(t, "errors[0].message", rep.Errors[0].Message, "not found")
	if n := strings.Count(r.stderr, "rotator: error:"); n != 1 {
		t.Errorf("stderr has %d errors, want 1:\n%s", n, r.stderr)
	}
}

// TestSecondSignalExits sends two signals: the first cancels the command,
// the second exits at once with the signal's code.
func TestSecondSignalExits(t *testing.T) {
	ch := make(chan os.Signal, 2)
	stopped := make(chan struct{})
	ctx, cancel := context.WithCancelCause(context.Background())
	var stderr bytes.Buffer
	exited := make(chan int, 1)
	w := signals
	w.Stderr = &stderr
	w.Exit = func(code int) { exited <- code }
	go w.Watch(ch, stopped, cancel)

	ch <- syscall.SIGTERM
	<-ctx.Done()
	if got := cli.InterruptedCode(ctx); got != 143 {
		t.Errorf("after the first SIGTERM: code %d, want 143", got)
	}
	ch <- os.Interrupt
	if code := <-exited; code != exitInterrupted {
		t.Errorf("second signal: exit %d, want %d", code, exitInterrupted)
	}
	assertContains(t, "stderr", stderr.String(), "received again: exiting now")
	close(stopped)
}

// TestStageValidateInterrupted stops stage --validate during the provider
// check: it reports the interrupt, not a transient failure to retry.
func TestStageValidateInterrupted(t *testing.T) {
	e := newEnv(t)
	entered, release := gateProvider(t, e)
	defer close(release)
	e.add("app/openai")
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan result, 1)
	go func() {
		done <- e.runContext(ctx, "", "stage", "app/openai", "--file", e.writeFile("key", canary), "--validate")
	}()
	waitClosed(t, entered, "the provider check")
	cancel(cli.SignalCause{Signal: syscall.SIGINT})
	r := <-done
	if r.code != exitInterrupted {
		t.Errorf("exit %d, want %d\n%s", r.code, exitInterrupted, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "interrupted: stage app/openai")
	assertContains(t, "stderr", r.stderr, "nothing was staged")
	if strings.Contains(r.stderr, "try again later") {
		t.Errorf("an interrupted stage advises a retry:\n%s", r.stderr)
	}
	if st := e.status("app/openai"); st.Staged != nil {
		t.Errorf("an interrupted stage staged version %s", st.Staged.VersionID)
	}
}
