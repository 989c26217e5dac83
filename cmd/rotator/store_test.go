package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// fixedClock is a scheduler.Clock whose time does not move.
type fixedClock struct{ now time.Time }

func (c fixedClock) Now() time.Time                       { return c.now }
func (c fixedClock) After(time.Duration) <-chan time.Time { return nil }

// breakSecret overwrites the file of one secret with bytes no store can
// read, and returns its path.
func breakSecret(t *testing.T, e *testEnv, secretID string) string {
	t.Helper()
	before := secretFiles(t, e)
	e.add(secretID)
	for f := range secretFiles(t, e) {
		if !before[f] {
			if err := os.WriteFile(f, []byte("not an age file"), 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no file appeared for %s", secretID)
	return ""
}

func secretFiles(t *testing.T, e *testEnv) map[string]bool {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(e.dir, "secrets", "*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range paths {
		out[p] = true
	}
	return out
}

func TestServeOnceReportsUnreadableSecret(t *testing.T) {
	e := newEnv(t)
	e.add("app/good")
	e.mustRun(exitOK, "stage", "app/good", "--file", e.writeFile("key", canary))
	breakSecret(t, e, "app/broken")

	r := e.run("serve", "--once")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "cannot read every secret in the store")
	assertContains(t, "stderr", r.stderr, "app/broken")
	assertContains(t, "stderr", r.stderr, "rotator: error: serve: cannot read every secret")
	if st := e.status("app/good"); st.LastRotated == nil {
		t.Errorf("the readable secret app/good was not rotated")
	}
}

func TestStatusShowsReadableReportsUnreadable(t *testing.T) {
	e := newEnv(t)
	e.add("app/good")
	breakSecret(t, e, "app/broken")

	r := e.run("status", "--output", "json")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, r.stdout)
	}
	if len(rep.Secrets) != 1 || rep.Secrets[0].SecretID != "app/good" {
		t.Errorf("status lists %+v, want app/good alone", rep.Secrets)
	}
	assertContains(t, "stderr", r.stderr, "rotator: error: status:")
	assertContains(t, "stderr", r.stderr, "app/broken")

	text := e.run("status")
	assertContains(t, "stdout", text.stdout, "app/good")
	if text.code != exitError {
		t.Errorf("text status: exit %d, want %d", text.code, exitError)
	}
}

func TestStatusNamedSecretMissing(t *testing.T) {
	e := newEnv(t)
	e.add("app/a")
	r := e.run("status", "app/a", "app/b")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stdout", r.stdout, "app/a")
	assertContains(t, "stderr", r.stderr, "secret app/b not found in store "+e.storeURL)
	if strings.Contains(r.stdout, "app/b") {
		t.Errorf("stdout shows the missing secret:\n%s", r.stdout)
	}
}

func TestReadOnlyCommandsDoNotCreateStore(t *testing.T) {
	e := newEnv(t)
	keyFile := e.writeFile("key", canary)
	for _, args := range [][]string{
		{"status"},
		{"status", "app/openai"},
		{"stage", "app/openai", "--file", keyFile},
		{"rotate-now", "app/openai"},
		{"abandon", "app/openai"},
		{"serve", "--once"},
	} {
		r := e.run(args...)
		if r.code != exitError {
			t.Errorf("%v: exit %d, want %d\n%s", args, r.code, exitError, r.stderr)
		}
		assertContains(t, "stderr", r.stderr, "no file store at "+e.dir+": the directory does not exist (store URL from KEYTURN_STORE)")
		if _, err := os.Stat(e.dir); !os.IsNotExist(err) {
			t.Fatalf("%v created the store directory (stat: %v)", args, err)
		}
	}

	other := filepath.Join(t.TempDir(), "other")
	r := e.run("status", "--store", "file://"+other)
	assertContains(t, "stderr", r.stderr, "(store URL from --store)")
	delete(e.vars, "KEYTURN_STORE")
	r = e.run("status")
	assertContains(t, "stderr", r.stderr, "(the default store: no --store, KEYTURN_STORE or config file names one)")
}

func TestAddAndDevCreateStore(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	if _, err := os.Stat(filepath.Join(e.dir, "identity.age")); err != nil {
		t.Errorf("add did not create the store: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "new", "dev")
	runDev(t, e, dir)
	if _, err := os.Stat(filepath.Join(dir, "identity.age")); err != nil {
		t.Errorf("dev did not create its store: %v", err)
	}
}

func TestServeAndDevTakeInstanceLock(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	unlock, err := lockInstance(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	want := "rotator: error: another rotator serve (or dev) is running on store " + e.dir
	r := e.run("serve", "--once")
	if r.code != exitError {
		t.Errorf("serve: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "serve stderr", r.stderr, want)
	assertContains(t, "serve stderr", r.stderr, "rotator: hint: stop it first")

	r = e.run("dev", "--dir", e.dir, "--interval", "1h")
	if r.code != exitError {
		t.Errorf("dev: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "dev stderr", r.stderr, want)

	// Operator commands do not take the lock.
	e.mustRun(exitOK, "status")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	e.mustRun(exitOK, "rotate-now", "app/openai")
}

func TestStatusStaleRotationAndSettingsError(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai", "--grace", "24h")
	store := e.openStore()
	ctx := context.Background()
	token, err := store.BeginRotation(ctx, "app/openai", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Tag(ctx, "app/openai", map[string]string{keystore.TagBaseURL: "http://169.254.169.254/v1"}); err != nil {
		t.Fatal(err)
	}
	e.configure = func(a *app) { a.clock = fixedClock{time.Now().Add(time.Hour)} }

	st := e.status("app/openai")
	if st.InProgress == nil || st.InProgress.VersionID != token || !st.InProgress.Stale {
		t.Errorf("rotation_in_progress = %+v, want stale version %s", st.InProgress, token)
	}
	assertContains(t, "settings_error", st.SettingsError, "169.254.169.254")
	if st.Settings.Grace != "24h" {
		t.Errorf("settings.grace = %q, want 24h", st.Settings.Grace)
	}
	text := e.mustRun(exitOK, "status", "app/openai").stdout
	assertContains(t, "status", text, "stale since ")
	assertContains(t, "status", text, "'rotator abandon app/openai' drops it")
	assertContains(t, "status", text, "settings       INVALID: ")
}

func TestStatusHelpSaysTransientFailuresAreNotKept(t *testing.T) {
	e := newEnv(t)
	r := e.mustRun(exitOK, "status", "-h")
	assertContains(t, "status -h", r.stdout, "Transient\nfailures (timeouts, rate limits, outages) are not recorded in the store")
}

func TestStatusShowsWhatCurrentWasValidatedWith(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	e.mustRun(exitOK, "rotate-now", "app/openai")
	st := e.status("app/openai")
	if c := st.CurrentValidated; c == nil || c.Provider != "openai" || c.BaseURL != e.baseURL || c.Differs {
		t.Fatalf("current_validated_with = %+v, want openai at %s, same as the tags", c, e.baseURL)
	}

	newURL := e.baseURL + "/"
	e.mustRun(exitOK, "update", "app/openai", "--base-url", newURL)
	st = e.status("app/openai")
	if c := st.CurrentValidated; c == nil || c.BaseURL != e.baseURL || !c.Differs {
		t.Errorf("after update: current_validated_with = %+v, want %s, differing from the tags", c, e.baseURL)
	}
	text := e.mustRun(exitOK, "status", "app/openai").stdout
	assertContains(t, "status", text, "validated with openai  "+e.baseURL)
	assertContains(t, "status", text, "take effect at the next validated rotation")
}

func TestStatusLoopbackSettingsHint(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.vars["KEYTURN_ALLOW_LOOPBACK"] = ""
	st := e.status("app/openai")
	assertContains(t, "settings_error", st.SettingsError, "loopback")
	assertContains(t, "settings_hint", st.SettingsHint, "pass --allow-loopback (tests and rotator dev only)")
	text := e.mustRun(exitOK, "status", "app/openai").stdout
	assertContains(t, "status", text, "hint: pass --allow-loopback")
}
