package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/fakeprovider"
)

func TestShutdownCutLogged(t *testing.T) {
	clearEnv(t)
	t.Setenv("KEYTURN_ALLOW_LOOPBACK", "true")
	fake, fakeURL := fakeprovider.Start(t, fakeprovider.Options{})
	fake.AddKey(canaryKey)
	gate := make(chan struct{}, 1)
	gate <- struct{}{}
	t.Cleanup(func() { close(gate) })
	fake.SetReply(fakeprovider.Reply{Content: "never sent", Gate: gate})
	dir, clientKey := setupStore(t, fakeURL+fakeprovider.OpenAIPrefix)
	cfg := writeConfig(t, fmt.Sprintf("store: file://%s\nproviders: {openai: {secret: keyturn/openai}}\nmodels: {gpt-4o: {provider: openai}}\n", dir))

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stdoutR, stdoutW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--config", cfg, "--listen", "127.0.0.1:0", "--shutdown-timeout", "100ms"}, nil, stdoutW, stderr)
	}()
	url := readListenURL(t, stdoutR, done)
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()

	req, _ := http.NewRequest("POST", url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 10)); err != nil {
		t.Fatalf("reading the first event: %v", err)
	}

	cancel(cli.SignalCause{Signal: syscall.SIGTERM})
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	logs := stderr.String()
	assertOutput(t, logs, `"aborted":"shutdown"`)
	assertOutput(t, logs, "stopped before every request in flight finished: cut 1 request")
	assertOutput(t, logs, `"cut_requests":1`)
}

func TestShutdownBeforeAnswerIsServiceUnavailable(t *testing.T) {
	clearEnv(t)
	t.Setenv("KEYTURN_ALLOW_LOOPBACK", "true")
	fake, fakeURL := fakeprovider.Start(t, fakeprovider.Options{})
	fake.AddKey(canaryKey)
	fake.SetFault("POST "+fakeprovider.OpenAIPrefix+"/chat/completions", fakeprovider.Fault{Hang: true})
	dir, clientKey := setupStore(t, fakeURL+fakeprovider.OpenAIPrefix)
	cfg := writeConfig(t, fmt.Sprintf("store: file://%s\nproviders: {openai: {secret: keyturn/openai}}\nmodels: {gpt-4o: {provider: openai}}\n", dir))

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stdoutR, stdoutW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--config", cfg, "--listen", "127.0.0.1:0", "--shutdown-timeout", "100ms"}, nil, stdoutW, stderr)
	}()
	url := readListenURL(t, stdoutR, done)
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", url+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+clientKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: string(body)}
	}()
	// The provider holds the request: wait until it has it.
	for deadline := time.Now().Add(30 * time.Second); fake.InFlight() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the request did not reach the provider")
		}
		time.Sleep(5 * time.Millisecond)
	}

	cancel(cli.SignalCause{Signal: syscall.SIGTERM})
	var r result
	select {
	case r = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the request did not end")
	}
	// An empty 200 would pass for an answer, and a closed connection
	// would not say why.
	if r.err != nil {
		t.Fatalf("request failed: %v, want a 503", r.err)
	}
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("status %d, body %q: want 503", r.status, r.body)
	}
	if !strings.Contains(r.body, "shutting_down") {
		t.Errorf("body %q lacks the shutting_down code", r.body)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
}
