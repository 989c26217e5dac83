package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/keystore"
)

// canary is the provider key tests plant; it must never reach any output.
const canary = "sk-canary-9f3c1e7a5b"

// hangGuard fails a test that waits this long; no test relies on it as a
// timing.
const hangGuard = 30 * time.Second

// syncBuffer is a bytes.Buffer safe for the loggers and goroutines that
// share an output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testEnv is a file store in a temporary directory, a stand-in provider and
// the environment variables the CLI reads.
type testEnv struct {
	t        *testing.T
	dir      string // the store directory
	storeURL string
	vars     map[string]string
	provider *fakeprovider.Provider
	baseURL  string // the stand-in's OpenAI-shaped API root
	// configure, if set, adjusts each app before it runs.
	configure func(*app)
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	tmp := t.TempDir()
	p, url := fakeprovider.Start(t, fakeprovider.Options{})
	p.AddKey(canary)
	dir := filepath.Join(tmp, "store")
	e := &testEnv{
		t: t, dir: dir, storeURL: "file://" + dir, provider: p, baseURL: url + "/openai/v1",
		vars: map[string]string{
			"HOME":                   filepath.Join(tmp, "home"),
			"KEYTURN_STORE":          "file://" + dir,
			"KEYTURN_ALLOW_LOOPBACK": "true",
		},
	}
	return e
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *testEnv) run(args ...string) result {
	e.t.Helper()
	return e.runInput("", args...)
}

// runInput runs the CLI with stdin and checks that the canary key reached
// neither stdout nor stderr (which carries the logs).
func (e *testEnv) runInput(stdin string, args ...string) result {
	e.t.Helper()
	return e.runContext(context.Background(), stdin, args...)
}

func (e *testEnv) runContext(ctx context.Context, stdin string, args ...string) result {
	e.t.Helper()
	var stdout, stderr syncBuffer
	a := &app{
		stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
		getenv:       func(k string) string { return e.vars[k] },
		pollInterval: 5 * time.Millisecond,
	}
	if e.configure != nil {
		e.configure(a)
	}
	code := a.run(ctx, args)
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: code}
	assertNoCanary(e.t, "stdout", r.stdout)
	assertNoCanary(e.t, "stderr", r.stderr)
	return r
}

func assertNoCanary(t *testing.T, where, text string) {
	t.Helper()
	if strings.Contains(text, canary) || strings.Contains(text, canary[3:]) {
		t.Errorf("the canary key appeared in %s:\n%s", where, text)
	}
}

// mustRun runs the CLI and fails the test unless it exits with want.
func (e *testEnv) mustRun(want int, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != want {
		e.t.Fatalf("rotator %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// add creates a managed secret on the stand-in's OpenAI shape.
func (e *testEnv) add(secretID string, extra ...string) {
	e.t.Helper()
	args := append([]string{"add", secretID, "--provider", "openai", "--base-url", e.baseURL}, extra...)
	e.mustRun(exitOK, args...)
}

// writeFile writes content to a new file in a temporary directory.
func (e *testEnv) writeFile(name, content string) string {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// openStore opens the env's file store directly, for checks and setups the
// CLI does not offer.
func (e *testEnv) openStore() *keystore.FileStore {
	e.t.Helper()
	st, err := keystore.OpenFile(keystore.FileOptions{Dir: e.dir, Create: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = st.Close() })
	return st
}

func (e *testEnv) status(secretID string) secretStatus {
	e.t.Helper()
	r := e.mustRun(exitOK, "status", secretID, "--output", "json")
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		e.t.Fatalf("status JSON: %v\n%s", err, r.stdout)
	}
	if len(rep.Secrets) != 1 {
		e.t.Fatalf("status lists %d secrets, want 1", len(rep.Secrets))
	}
	return rep.Secrets[0]
}

func assertContains(t *testing.T, what, text, want string) {
	t.Helper()
	if !strings.Contains(text, want) {
		t.Errorf("%s does not contain %q:\n%s", what, want, text)
	}
}
