package router

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

// startStream sends a streamed chat completion with ctx and returns the
// response once its headers arrived.
func (e *testEnv) startStream(ctx context.Context) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", e.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("stream status %d, want 200", resp.StatusCode)
	}
	return resp
}

// metricsNow returns the metrics text without a request to the server,
// so that it also works after serverLogs closed the server.
func (e *testEnv) metricsNow() string {
	rec := httptest.NewRecorder()
	e.server.metrics.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

const streamRequestsMetric = `keyturn_router_requests_total{endpoint="/v1/chat/completions",provider="openai",status="200"} 1`

func TestBrokenStreamLogged(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	e.fake.SetFault(fakeprovider.OpenAIPrefix+"/chat/completions", fakeprovider.Fault{CutStreamAfter: 2})
	resp := e.startStream(context.Background())
	data, _ := io.ReadAll(resp.Body) // the body ends early, with an error
	_ = resp.Body.Close()
	_, _ = e.seen.Write(data)

	logs := e.serverLogs()
	assertContains(t, "access log", logs, "msg=request method=POST path=/v1/chat/completions status=200")
	assertContains(t, "access log", logs, "aborted=upstream_broke")
	assertContains(t, "metrics", e.metricsNow(), streamRequestsMetric)
}

func TestClientCancelMidStreamLogged(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	gate := make(chan struct{})
	// Cleanups run last first: the gate opens before the provider closes.
	t.Cleanup(func() { close(gate) })
	e.fake.SetReply(fakeprovider.Reply{Content: "one two three", Chunks: 3, Gate: gate})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := e.startStream(ctx)
	gate <- struct{}{}
	buf := make([]byte, 10)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatalf("reading the first event: %v", err)
	}
	_, _ = e.seen.Write(buf)
	cancel()
	_ = resp.Body.Close()

	logs := e.serverLogs()
	assertContains(t, "access log", logs, "msg=request method=POST path=/v1/chat/completions status=200")
	assertContains(t, "access log", logs, "aborted=client_closed")
	assertContains(t, "metrics", e.metricsNow(), streamRequestsMetric)
}
