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
	r := startShutdownRouter(t, fakeURL)
	url, clientKey := r.url, r.clientKey

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

	r.cancel(cli.SignalCause{Signal: syscall.SIGTERM})
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	logs := r.stderr.String()
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
	router := startShutdownRouter(t, fakeURL)

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", router.url+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+router.clientKey)
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

	router.cancel(cli.SignalCause{Signal: syscall.SIGTERM})
	var res result
	select {
	case res = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the request did not end")
	}
	// An empty 200 would pass for an answer, and a closed connection
	// would not say why.
	if res.err != nil {
		t.Fatalf("request failed: %v, want a 503", res.err)
	}
	if res.status != http.StatusServiceUnavailable {
		t.Errorf("status %d, body %q: want 503", res.status, res.body)
	}
	if !strings.Contains(res.body, "shutting_down") {
		t.Errorf("body %q lacks the shutting_down code", res.body)
	}
	select {
	case <-router.done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
}

// shutdownRouter is a router started by startShutdownRouter.
type shutdownRouter struct {
	url, clientKey string
	cancel         context.CancelCauseFunc
	stderr         *syncBuffer
	done           chan error
}

// startShutdownRouter runs the router on 127.0.0.1 in front of the stand-in
// at fakeURL, with a 100 ms shutdown timeout, and returns once it listens.
func startShutdownRouter(t *testing.T, fakeURL string) shutdownRouter {
	t.Helper()
	dir, clientKey := setupStore(t, fakeURL+fakeprovider.OpenAIPrefix)
	cfg := writeConfig(t, fmt.Sprintf("store: file://%s\nproviders: {openai: {secret: keyturn/openai}}\nmodels: {gpt-4o: {provider: openai}}\n", dir))

	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(nil) })
	stdoutR, stdoutW := io.Pipe()
	r := shutdownRouter{clientKey: clientKey, cancel: cancel, stderr: &syncBuffer{}, done: make(chan error, 1)}
	go func() {
		r.done <- run(ctx, []string{"--config", cfg, "--listen", "127.0.0.1:0", "--shutdown-timeout", "100ms"}, nil, stdoutW, r.stderr)
	}()
	r.url = readListenURL(t, stdoutR, r.done)
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()
	return r
}
