package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/keystore"
)

const canaryKey = "sk-canary-cmd-0123456789abcdefCANARY"

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// setupStore writes a file store with one provider secret and one client,
// and returns its directory and the client's key.
func setupStore(t *testing.T, baseURL string) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	st, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v := keystore.Value{APIKey: keystore.NewSecret(canaryKey), Settings: keystore.Settings{Provider: "openai", BaseURL: baseURL}}
	enc, err := v.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.Create(ctx, keystore.CreateInput{SecretID: "keyturn/openai", Value: enc}); err != nil {
		t.Fatal(err)
	}
	key, hash, err := clientkeys.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	list, err := clientkeys.List{Clients: []clientkeys.Client{{ID: "kc_cmd", Name: "cmd", Hash: hash}}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, keystore.CreateInput{SecretID: clientkeys.DefaultSecretID, Value: keystore.NewSecret(string(list))}); err != nil {
		t.Fatal(err)
	}
	return dir, key.Reveal()
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "router.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clearEnv unsets the variables run reads, so that the environment the
// tests run in cannot change them.
func clearEnv(t *testing.T) {
	for _, name := range []string{"KEYTURN_ROUTER_CONFIG", "KEYTURN_STORE", "KEYTURN_IDENTITY", "KEYTURN_RELAY_HOSTS", "KEYTURN_ALLOW_LOOPBACK"} {
		t.Setenv(name, "")
	}
}

func TestRunServesAndStops(t *testing.T) {
	clearEnv(t)
	t.Setenv("KEYTURN_ALLOW_LOOPBACK", "true")
	fake, fakeURL := fakeprovider.Start(t, fakeprovider.Options{})
	fake.AddKey(canaryKey)
	dir, clientKey := setupStore(t, fakeURL+fakeprovider.OpenAIPrefix)
	cfg := writeConfig(t, fmt.Sprintf(`
store: file://%s
providers:
  openai: {secret: keyturn/openai}
models:
  gpt-4o: {provider: openai}
`, dir))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdoutR, stdoutW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--config", cfg, "--listen", "127.0.0.1:0"}, nil, stdoutW, stderr)
		stdoutW.Close()
	}()

	url := readListenURL(t, stdoutR, done)
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d: %s", resp.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop after the context was cancelled")
	}
	logs := stderr.String()
	if !strings.Contains(logs, `"msg":"request"`) || !strings.Contains(logs, `"client_id":"kc_cmd"`) {
		t.Errorf("no JSON access log line in:\n%s", logs)
	}
	if !strings.Contains(logs, `"duration":"`) {
		t.Errorf("the access log line's duration is not a Go duration string:\n%s", logs)
	}
	for _, key := range []string{canaryKey, clientKey} {
		if strings.Contains(logs+string(body), key) {
			t.Error("a key appears in the logs or the response")
		}
	}
}

// readListenURL reads the URL that run prints once it listens.
func readListenURL(t *testing.T, r io.Reader, done <-chan error) string {
	t.Helper()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		lines <- line
	}()
	select {
	case line := <-lines:
		url, ok := strings.CutPrefix(strings.TrimSpace(line), "router: listening on ")
		if !ok {
			t.Fatalf("first output line %q does not give the URL", line)
		}
		return url
	case err := <-done:
		t.Fatalf("run ended before it listened: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run printed no URL")
	}
	return ""
}

func TestRunStartsWithUnreadableProviderSecret(t *testing.T) {
	clearEnv(t)
	fake, fakeURL := fakeprovider.Start(t, fakeprovider.Options{})
	fake.AddKey(canaryKey)
	dir, clientKey := setupStore(t, fakeURL+fakeprovider.OpenAIPrefix)
	cfg := writeConfig(t, fmt.Sprintf(`
store: file://%s
allow_loopback: true
providers:
  missing: {secret: keyturn/not-yet}
models:
  m: {provider: missing}
`, dir))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdoutR, stdoutW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--config", cfg, "--listen", "127.0.0.1:0"}, nil, stdoutW, stderr) }()
	url := readListenURL(t, stdoutR, done)

	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 {
		t.Errorf("status %d, want 5xx", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if !strings.Contains(stderr.String(), "provider secret not readable yet") {
		t.Errorf("no warning about the secret in:\n%s", stderr.String())
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeConfig(t, "store: file://"+dir+"/none\nproviders: {p: {secret: s}}\nmodels: {m: {provider: p}}\n")
	noStore := writeConfig(t, "providers: {p: {secret: s}}\nmodels: {m: {provider: p}}\n")
	bad := writeConfig(t, "providers: {p: {secret: s}}\nmodels: {m: {provider: q}}\n")
	metrics := writeConfig(t, "store: file://"+dir+"/none\nmetrics_listen: 127.0.0.1:9090\nproviders: {p: {secret: s}}\nmodels: {m: {provider: p}}\n")
	loopbackRelay := writeConfig(t, "store: file://"+dir+"/none\nallow_loopback: true\nrelay_hosts: [127.0.0.1]\nproviders: {p: {secret: s}}\nmodels: {m: {provider: p}}\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want []string
	}{
		{"unknown flag", []string{"--bogus"}, nil, cli.ExitUsage, []string{"router: error:", "bogus", "router: hint: run 'router --help'"}},
		{"argument", []string{"serve"}, nil, cli.ExitUsage, []string{`unexpected argument "serve"`}},
		{"bad listen", []string{"--listen", "8080"}, nil, cli.ExitUsage, []string{`invalid listen address "8080"`}},
		{"missing config", []string{"--config", dir + "/nope.yaml"}, nil, cli.ExitError, []string{"does not exist", "docs/router.example.yaml"}},
		{"config error", []string{"--config", bad}, nil, cli.ExitError, []string{"line 2:", `provider "q"`}},
		{"no store", []string{"--config", noStore}, nil, cli.ExitError, []string{"no store", "router: hint: add 'store:"}},
		{"bad env store", []string{"--config", good}, map[string]string{"KEYTURN_STORE": "ftp://x"}, cli.ExitError, []string{"KEYTURN_STORE: invalid store URL"}},
		{"bad env bool", []string{"--config", good}, map[string]string{"KEYTURN_ALLOW_LOOPBACK": "maybe"}, cli.ExitError, []string{`invalid KEYTURN_ALLOW_LOOPBACK="maybe"`}},
		{"bad env relay", []string{"--config", good}, map[string]string{"KEYTURN_RELAY_HOSTS": "https://x.example.com"}, cli.ExitError, []string{"KEYTURN_RELAY_HOSTS", "invalid relay host"}},
		{"no store dir", []string{"--config", good, "--listen", "127.0.0.1:0"}, nil, cli.ExitError, []string{"open store file://" + dir + "/none: no keyturn file store at"}},
		{"env config", nil, map[string]string{"KEYTURN_ROUTER_CONFIG": bad}, cli.ExitError, []string{bad, "line 2:"}},
		{"listen on metrics", []string{"--config", metrics, "--listen", "127.0.0.1:9090"}, nil, cli.ExitUsage,
			[]string{`--listen 127.0.0.1:9090: metrics_listen "127.0.0.1:9090" is the listen address too`}},
		{"shutdown timeout unit", []string{"--shutdown-timeout", "5"}, nil, cli.ExitUsage,
			[]string{`invalid value "5" for flag -shutdown-timeout`, "such as 30s"}},
		{"shutdown timeout zero", []string{"--shutdown-timeout", "0s"}, nil, cli.ExitUsage, []string{"not a positive duration"}},
		{"config directory", []string{"--config", dir}, nil, cli.ExitError,
			[]string{"config file " + dir + " is a directory", "router: hint: pass the YAML file itself, such as " + dir + "/router.yaml"}},
		{"no store dir names source", []string{"--config", good, "--listen", "127.0.0.1:0"}, nil, cli.ExitError,
			[]string{"router: hint: the store URL comes from 'store:' in " + good, "the router never creates a store"}},
		{"env store names source", []string{"--config", good, "--listen", "127.0.0.1:0"}, map[string]string{"KEYTURN_STORE": "file://" + dir + "/other"}, cli.ExitError,
			[]string{"router: hint: the store URL comes from KEYTURN_STORE"}},
		{"loopback env refuses relay host", []string{"--config", loopbackRelay}, map[string]string{"KEYTURN_ALLOW_LOOPBACK": "false"}, cli.ExitError,
			[]string{`invalid relay host "127.0.0.1" in relay_hosts in ` + loopbackRelay, "KEYTURN_ALLOW_LOOPBACK=false overrides"}},
		{"env relay metadata", []string{"--config", good}, map[string]string{"KEYTURN_RELAY_HOSTS": "169.254.169.254"}, cli.ExitError,
			[]string{`invalid relay host "169.254.169.254" in KEYTURN_RELAY_HOSTS`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, nil, &stdout, &stderr)
			code := exitCode(context.Background(), err, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tt.code, stderr.String())
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"--help"}, nil, &stdout, io.Discard)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	if code := exitCode(context.Background(), err, io.Discard); code != cli.ExitOK {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"Usage: router", "KEYTURN_ROUTER_CONFIG", "-listen", "-config", "metrics_listen", "Exit codes"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help does not contain %q", want)
		}
	}
}

func TestInterruptedCode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if code := exitCode(ctx, errInterrupted, io.Discard); code != cli.ExitInterrupted {
		t.Errorf("exit %d, want %d", code, cli.ExitInterrupted)
	}
}
