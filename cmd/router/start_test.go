package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/fakeprovider"
)

func TestPortInUseFailsFirst(t *testing.T) {
	clearEnv(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	// The store does not exist: the port's error shows that the router
	// listened before it opened the store.
	cfg := writeConfig(t, "store: file://"+t.TempDir()+"/none\nproviders: {p: {secret: s}}\nmodels: {m: {provider: p}}\n")
	var stderr bytes.Buffer
	err = run(context.Background(), []string{"--config", cfg, "--listen", addr}, nil, io.Discard, &stderr)
	if code := exitCode(context.Background(), err, &stderr); code != cli.ExitError {
		t.Errorf("exit %d, want %d", code, cli.ExitError)
	}
	out := stderr.String()
	assertOutput(t, out, "router: error: listen on "+addr)
	assertOutput(t, out, "router: hint: another process listens on "+addr+": stop it or pass --listen HOST:PORT")
	if strings.Contains(out, "open store") {
		t.Errorf("the store was opened before the listen failed:\n%s", out)
	}
}

func TestMissingIdentityHint(t *testing.T) {
	clearEnv(t)
	dir, _ := setupStore(t, "https://api.openai.com/v1")
	identity := t.TempDir() + "/nope.age"
	cfg := writeConfig(t, fmt.Sprintf("store: file://%s\nidentity: %s\nproviders: {p: {secret: keyturn/openai}}\nmodels: {m: {provider: p}}\n", dir, identity))
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--config", cfg, "--listen", "127.0.0.1:0"}, nil, io.Discard, &stderr)
	exitCode(context.Background(), err, &stderr)
	out := stderr.String()
	assertOutput(t, out, identity)
	assertOutput(t, out, "router: hint: the identity file comes from 'identity:' in "+cfg)
	if strings.Contains(out, "OpenFile") {
		t.Errorf("the error names a Go function:\n%s", out)
	}

	stderr.Reset()
	t.Setenv("KEYTURN_IDENTITY", identity)
	cfg = writeConfig(t, fmt.Sprintf("store: file://%s\nproviders: {p: {secret: keyturn/openai}}\nmodels: {m: {provider: p}}\n", dir))
	err = run(context.Background(), []string{"--config", cfg, "--listen", "127.0.0.1:0"}, nil, io.Discard, &stderr)
	exitCode(context.Background(), err, &stderr)
	assertOutput(t, stderr.String(), "router: hint: the identity file comes from KEYTURN_IDENTITY")
}

func TestStartupWarnsUnusableSecret(t *testing.T) {
	clearEnv(t)
	fake, fakeURL := fakeprovider.Start(t, fakeprovider.Options{})
	fake.AddKey(canaryKey)
	// The provider is on 127.0.0.1, and the config does not allow
	// loopback.
	dir, _ := setupStore(t, fakeURL+fakeprovider.OpenAIPrefix)
	cfg := writeConfig(t, fmt.Sprintf("store: file://%s\nproviders: {openai: {secret: keyturn/openai}}\nmodels: {m: {provider: openai}}\n", dir))

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stdoutR, stdoutW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--config", cfg, "--listen", "127.0.0.1:0"}, nil, stdoutW, stderr) }()
	readListenURL(t, stdoutR, done)
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()
	cancel(cli.SignalCause{Signal: syscall.SIGTERM})
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}

	logs := stderr.String()
	assertOutput(t, logs, `"level":"WARN","msg":"provider secret cannot serve`)
	assertOutput(t, logs, "allow_loopback: true")
	assertOutput(t, logs, `"cause":"SIGTERM"`)
	if strings.Contains(logs, "provider secret loaded") {
		t.Errorf("the unusable secret is logged as loaded:\n%s", logs)
	}
	if strings.Contains(logs, canaryKey) {
		t.Error("the provider key appears in the logs")
	}
}

func TestEveryInterfaceWarning(t *testing.T) {
	for addr, want := range map[string]bool{
		":8080": true, "0.0.0.0:8080": true, "[::]:8080": true,
		"127.0.0.1:8080": false, "localhost:8080": false, "10.0.0.5:8080": false,
	} {
		if got := everyInterface(addr); got != want {
			t.Errorf("everyInterface(%q) = %t, want %t", addr, got, want)
		}
	}
}

func assertOutput(t *testing.T, out, want string) {
	t.Helper()
	if !strings.Contains(out, want) {
		t.Errorf("output does not contain %q:\n%s", want, out)
	}
}
