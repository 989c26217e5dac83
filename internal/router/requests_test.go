package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/fakeprovider"
)

// hangDeadline bounds every raw connection's wait, only to fail a router
// that never responds.
const hangDeadline = 30 * time.Second

// rawRequest opens a TCP connection to the router, sends head as the
// request's start line and headers, then body, and returns the response.
// The connection stays open, so that the caller can check whether the
// router closes it.
func (e *testEnv) rawRequest(head, body string) (*http.Response, net.Conn) {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(hangDeadline)); err != nil {
		e.t.Fatal(err)
	}
	if _, err := io.WriteString(conn, head+"\r\n"+body); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("no response within %v: %v", hangDeadline, err)
	}
	data, _ := io.ReadAll(resp.Body)
	_, _ = e.seen.Write(data)
	return resp, conn
}

// assertClosed fails unless the router closes conn.
func assertClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read after the response: %v, want EOF: the router kept the connection open", err)
	}
}

func TestUnsentBodyAnsweredAtOnce(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	for _, auth := range []string{"", "Authorization: Bearer kt-bogus\r\n"} {
		resp, conn := e.rawRequest("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"+auth, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%q: status %d, want 401", auth, resp.StatusCode)
		}
		if !resp.Close {
			t.Errorf("%q: the 401 lacks Connection: close", auth)
		}
		assertClosed(t, conn)
	}
}

func TestStalledBodyCut(t *testing.T) {
	e := newTestEnv(t, envOptions{bodyReadTimeout: 100 * time.Millisecond})
	resp, conn := e.rawRequest("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"+
		"Authorization: Bearer "+e.clientKey+"\r\n", `{"model":`)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	assertClosed(t, conn)
	assertContains(t, "access log", e.serverLogs(), "status=408")
}

// TestStreamOutlivesBodyTimeout checks that the body's read deadline is
// cleared once the body is read: a stream that lasts longer goes on.
func TestStreamOutlivesBodyTimeout(t *testing.T) {
	e := newTestEnv(t, envOptions{bodyReadTimeout: 50 * time.Millisecond})
	gate := make(chan struct{})
	e.fake.SetReply(fakeprovider.Reply{Content: "one two three", Chunks: 3, Gate: gate})
	resp := e.startStream(t.Context())
	defer resp.Body.Close()
	gate <- struct{}{}
	// Not a timed assertion: the wait only makes sure the deadline that
	// was set for the body has passed.
	time.Sleep(200 * time.Millisecond)
	close(gate)
	data, err := io.ReadAll(resp.Body)
	_, _ = e.seen.Write(data)
	if err != nil {
		t.Fatalf("the stream broke: %v", err)
	}
	assertContains(t, "stream", string(data), "[DONE]")
}

var requestIDPattern = regexp.MustCompile(`^req_[0-9a-f]{24}$`)

func TestRequestIDs(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	first := e.do("POST", "/v1/chat/completions", "-", `{"model":"gpt-4o"}`)
	second := e.do("GET", "/v1/models", "-", "")
	logs := e.serverLogs()
	for _, r := range []response{first, second} {
		id := r.header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			t.Errorf("status %d: X-Request-Id %q, want req_ and 24 hex digits", r.status, id)
		}
		assertContains(t, "access log", logs, "request_id="+id)
	}
	if first.header.Get("X-Request-Id") == second.header.Get("X-Request-Id") {
		t.Error("two requests got the same id")
	}
	assertContains(t, "access log", logs, "remote_addr=127.0.0.1:")
}

func TestProviderXRequestIDKept(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	r := e.chat("gpt-4o")
	assertStatus(t, r, http.StatusOK)
	id := r.header.Values("X-Request-Id")
	if len(id) != 1 || requestIDPattern.MatchString(id[0]) {
		t.Fatalf("X-Request-Id %q, want the provider's alone", id)
	}
	logs := e.serverLogs()
	assertContains(t, "access log", logs, "upstream_request_id="+id[0])
	assertContains(t, "access log", logs, "request_id=req_")
}

func TestProviderRequestIDKept(t *testing.T) {
	e := newTestEnv(t, envOptions{config: func(c *Config) {
		c.Providers["anthropic"] = ProviderConfig{Secret: "keyturn/anthropic"}
		c.Models["claude"] = ModelRoute{Provider: "anthropic", Model: "claude-sonnet-4-5-20250929"}
	}})
	e.putProviderKey("keyturn/anthropic", "anthropic", fakeprovider.AnthropicPrefix, canaryKey)
	r := e.chat("claude")
	assertStatus(t, r, http.StatusOK)
	upstreamID := r.header.Get("Request-Id")
	if upstreamID == "" {
		t.Fatal("the provider's request-id header did not reach the client")
	}
	if !requestIDPattern.MatchString(r.header.Get("X-Request-Id")) {
		t.Errorf("X-Request-Id %q, want the router's own beside the provider's request-id", r.header.Get("X-Request-Id"))
	}
	assertContains(t, "access log", e.serverLogs(), "upstream_request_id="+upstreamID)
}

func TestAuthFailureReasonsLogged(t *testing.T) {
	e := newTestEnv(t, envOptions{client: clientkeys.Client{ID: "kc_off00001", Name: "old", Disabled: true}})
	assertStatus(t, e.chat("gpt-4o"), http.StatusUnauthorized)
	assertStatus(t, e.do("POST", "/v1/chat/completions", "-", `{"model":"gpt-4o"}`), http.StatusUnauthorized)
	assertStatus(t, e.do("POST", "/v1/chat/completions", "kt-bogus", `{"model":"gpt-4o"}`), http.StatusUnauthorized)
	logs := e.serverLogs()
	assertContains(t, "access log", logs, `status=401`)
	assertContains(t, "access log", logs, `client_id=kc_off00001 client=old reason=disabled`)
	assertContains(t, "access log", logs, `reason="no key"`)
	assertContains(t, "access log", logs, `reason="unknown key"`)
}

func TestQuotaCountsOnlyRequestsSent(t *testing.T) {
	now := time.Date(2026, 5, 31, 23, 59, 0, 0, time.UTC)
	e := newTestEnv(t, envOptions{client: clientkeys.Client{MonthlyQuota: 1}, now: func() time.Time { return now },
		config: func(c *Config) {
			c.Providers["anthropic"] = ProviderConfig{Secret: "keyturn/anthropic"}
			c.Models["claude"] = ModelRoute{Provider: "anthropic", Model: "claude-sonnet-4-5-20250929"}
		}})
	e.putProviderKey("keyturn/anthropic", "anthropic", fakeprovider.AnthropicPrefix, canaryKey)
	// The router answers these itself: the provider has no embeddings.
	for range 2 {
		r := e.do("POST", "/v1/embeddings", e.clientKey, `{"model":"claude","input":"hi"}`)
		assertStatus(t, r, http.StatusBadRequest)
		assertContains(t, "body", r.body, "unsupported_endpoint")
	}
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	r := e.chat("gpt-4o")
	assertStatus(t, r, http.StatusTooManyRequests)
	if got := r.header.Get("Retry-After"); got != "60" {
		t.Errorf("quota Retry-After = %q, want 60 (the seconds to June)", got)
	}
}

func TestRetriedRequestCountsTwoAttempts(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	// The provider does not take the new current key yet: the router
	// sends the request twice, the second time with AWSPREVIOUS.
	e.putKey(openaiID, canaryKey2)
	e.refresh(openaiID)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	assertContains(t, "metrics", e.scrape(),
		`keyturn_router_upstream_requests_total{secret="keyturn/openai",stage="AWSPREVIOUS",status="200"} 2`)
}

func TestHealthzServingPrevious(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	e.putKey(openaiID, canaryKey2)
	e.refresh(openaiID)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	e.assertHealth(http.StatusOK, openaiID, phraseServingPrevious)

	e.fake.AddKey(canaryKey2)
	// The cooldown of the refused key keeps requests on AWSPREVIOUS; a
	// new AWSCURRENT version ends it.
	e.putKey(openaiID, canaryKey2)
	e.refresh(openaiID)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	e.assertHealth(http.StatusOK, openaiID, "")
}

// TestShutdownDuringBodyIsServiceUnavailable cuts a request whose body is
// still arriving: the client must get the shutdown's 503, not a 400 for a
// body that failed to read, and the access log must say aborted=shutdown.
func TestShutdownDuringBodyIsServiceUnavailable(t *testing.T) {
	base, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	e := newTestEnv(t, envOptions{baseContext: base})
	// Loads the client keys, so that the cut request below waits on its
	// body alone once it is in flight.
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: router\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":", e.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); e.server.InFlight() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the request did not reach the handler")
		}
		time.Sleep(5 * time.Millisecond)
	}

	stop(ErrShutdown)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the response: %v, want a 503", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting_down") {
		t.Errorf("response %d %s, want 503 shutting_down", resp.StatusCode, body)
	}
	assertContains(t, "access log", e.serverLogs(), "aborted=shutdown")
}

func TestShutdownCutLogged(t *testing.T) {
	base, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	e := newTestEnv(t, envOptions{baseContext: base})
	gate := make(chan struct{})
	t.Cleanup(func() { close(gate) })
	e.fake.SetReply(fakeprovider.Reply{Content: "one two three", Chunks: 3, Gate: gate})
	resp := e.startStream(t.Context())
	defer resp.Body.Close()
	if n := e.server.InFlight(); n != 1 {
		t.Errorf("InFlight = %d during a stream, want 1", n)
	}
	stop(ErrShutdown)
	_, _ = io.Copy(io.Discard, resp.Body)
	assertContains(t, "access log", e.serverLogs(), "aborted=shutdown")
}
