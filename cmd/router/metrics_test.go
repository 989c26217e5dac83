package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

// readLines reads n lines of run's output, failing if run ends or prints
// nothing for long.
func readLines(t *testing.T, r *bufio.Reader, done <-chan error, n int) []string {
	t.Helper()
	lines := make(chan string, n)
	go func() {
		for range n {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimSpace(line)
		}
	}()
	var out []string
	for len(out) < n {
		select {
		case line := <-lines:
			out = append(out, line)
		case err := <-done:
			t.Fatalf("run ended after printing %q: %v", out, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("run printed %q, want %d lines", out, n)
		}
	}
	return out
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestRunMetricsListen(t *testing.T) {
	clearEnv(t)
	t.Setenv("KEYTURN_ALLOW_LOOPBACK", "true")
	fake, fakeURL := fakeprovider.Start(t, fakeprovider.Options{})
	fake.AddKey(canaryKey)
	dir, _ := setupStore(t, fakeURL+fakeprovider.OpenAIPrefix)
	cfg := writeConfig(t, fmt.Sprintf(`
store: file://%s
metrics_listen: 127.0.0.1:0
providers:
  openai: {secret: keyturn/openai}
models:
  gpt-4o: {provider: openai}
`, dir))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--config", cfg, "--listen", "127.0.0.1:0"}, nil, stdoutW, &syncBuffer{})
		stdoutW.Close()
	}()
	lines := readLines(t, bufio.NewReader(stdoutR), done, 2)
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()
	url, ok := strings.CutPrefix(lines[0], "router: listening on ")
	if !ok {
		t.Fatalf("first output line %q does not give the URL", lines[0])
	}
	metricsURL, ok := strings.CutPrefix(lines[1], "router: serving metrics on ")
	if !ok {
		t.Fatalf("second output line %q does not give the metrics URL", lines[1])
	}

	status, body := get(t, metricsURL)
	if status != http.StatusOK || !strings.Contains(body, "keyturn_router_secret_version_info") {
		t.Errorf("GET %s: status %d, want 200 with the router's metrics; body %.300s", metricsURL, status, body)
	}
	if strings.Contains(body, canaryKey) {
		t.Error("the provider key appears in the metrics")
	}
	if status, _ := get(t, url+"/metrics"); status != http.StatusNotFound {
		t.Errorf("GET /metrics on the listen address: status %d, want 404", status)
	}
	if status, _ := get(t, strings.TrimSuffix(metricsURL, "/metrics")+"/healthz"); status != http.StatusNotFound {
		t.Errorf("GET /healthz on the metrics address: status %d, want 404", status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
