package upstream_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/upstream"
	"github.com/keyturn/keyturn/keystore"
)

// serveUpstream starts a provider of the test's own on 127.0.0.1 and
// returns its URL.
func serveUpstream(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPolicyRejectsBaseURL(t *testing.T) {
	cases := []struct {
		name    string
		policy  *provider.Policy
		baseURL func(e *env) string
		// host is the base URL's host, which only the log may name; want
		// are parts of the log line's reason.
		host func(e *env) string
		want []string
	}{
		{"loopback not allowed", provider.NewPolicy(nil, false),
			func(e *env) string { return e.openaiURL() }, fakeHost, []string{"loopback"}},
		{"user info", nil,
			func(e *env) string { return strings.Replace(e.openaiURL(), "http://", "http://admin:hunter2@", 1) },
			fakeHost, []string{"REDACTED", "user info"}},
		{"private address", nil,
			func(*env) string { return "https://10.1.2.3/v1" }, func(*env) string { return "10.1.2.3" }, []string{"private"}},
		{"query", nil,
			func(e *env) string { return e.openaiURL() + "?key=hunter2" }, fakeHost, []string{"query"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnvWith(t, envOptions{policy: c.policy})
			version := e.addSecret(secretID, canary, "openai", c.baseURL(e))
			host := c.host(e)

			res := e.chat("")
			if res.status != http.StatusBadGateway {
				t.Fatalf("status = %d, want 502: %s", res.status, res.body)
			}
			msg, _, code := apiError(t, res.body)
			if code != "upstream_misconfigured" {
				t.Errorf("code = %q, want upstream_misconfigured", code)
			}
			for _, want := range []string{secretID, version, keystore.TagBaseURL, "rotator rotate-now"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not name %q", msg, want)
				}
			}
			if strings.Contains(msg, host) {
				t.Errorf("message %q names the base URL's host %s", msg, host)
			}
			logs := e.logs.String()
			for _, want := range append([]string{"host=" + host}, c.want...) {
				if !strings.Contains(logs, want) {
					t.Errorf("the log does not contain %q:\n%s", want, logs)
				}
			}
			if strings.Contains(res.body+logs, "hunter2") {
				t.Error("the response or the log quotes the URL's credential")
			}
			if n := len(e.fake.Requests()); n != 0 {
				t.Errorf("the stand-in got %d requests, want none", n)
			}
		})
	}
}

// fakeHost returns the stand-in's host and port.
func fakeHost(e *env) string { return strings.TrimPrefix(e.fakeURL, "http://") }

func TestUnusableVersion(t *testing.T) {
	cases := []struct {
		name, value string
		want        []string
	}{
		{"no settings", `{"api_key": "` + canary + `"}`, []string{"settings.provider", "rotator rotate-now"}},
		{"no base URL", `{"api_key": "` + canary + `", "settings": {"provider": "openai", "base_url": ""}}`,
			[]string{"settings.base_url"}},
		{"no api_key", `{"settings": {"provider": "openai", "base_url": "https://api.openai.com/v1"}}`,
			[]string{"api_key", "rotator stage"}},
		{"not JSON", canary, []string{"not a JSON object"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			version := e.createSecret(secretID, keystore.NewSecret(c.value))

			res := e.chat("")
			if res.status != http.StatusBadGateway {
				t.Fatalf("status = %d, want 502: %s", res.status, res.body)
			}
			msg, _, code := apiError(t, res.body)
			if code != "upstream_misconfigured" {
				t.Errorf("code = %q, want upstream_misconfigured", code)
			}
			for _, want := range append([]string{secretID, version}, c.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not name %q", msg, want)
				}
			}
		})
	}
}

func TestSecretNotFound(t *testing.T) {
	e := newEnv(t)
	res := e.chat("")
	if res.status != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502: %s", res.status, res.body)
	}
	msg, _, code := apiError(t, res.body)
	if code != "upstream_key_unavailable" || !strings.Contains(msg, secretID) {
		t.Errorf("code %q, message %q: want upstream_key_unavailable naming %s", code, msg, secretID)
	}
	if o := e.outcome(); o.Status != http.StatusBadGateway || o.VersionID != "" {
		t.Errorf("outcome = %+v, want 502 without a version", o)
	}
}

func TestClientCancelReachesProvider(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	e.fake.SetFault("POST "+fakeprovider.OpenAIPrefix+"/chat/completions", fakeprovider.Fault{Hang: true})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.router+"/v1/chat/completions",
			strings.NewReader(chatBody("")))
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	waitFor(t, "the upstream request to hang", func() bool { return e.fake.InFlight() == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Error("the cancelled client request succeeded")
	}

	waitCtx, stop := context.WithTimeout(context.Background(), deadline)
	defer stop()
	recs, err := e.fake.WaitRequests(waitCtx, 1)
	if err != nil {
		t.Fatalf("the upstream request did not end: %v", err)
	}
	if !recs[0].Canceled {
		t.Error("the stand-in did not see the cancellation")
	}
	if o := e.outcome(); o.Status != upstream.StatusClientClosed {
		t.Errorf("outcome status = %d, want %d", o.Status, upstream.StatusClientClosed)
	}
}

// waitFor polls cond until it holds, and fails the test after deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestProviderErrorsPassThrough(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	chatPath := "POST " + fakeprovider.OpenAIPrefix + "/chat/completions"
	cases := []struct {
		status int
		want   string
	}{
		{http.StatusTooManyRequests, "rate_limit_exceeded"},
		{http.StatusInternalServerError, "server_error"},
		{http.StatusServiceUnavailable, "overloaded"},
		{http.StatusForbidden, "unsupported_country_region_territory"},
	}
	for _, c := range cases {
		e.fake.SetFault(chatPath, fakeprovider.Fault{Status: c.status, Count: 1})
		res := e.chat("")
		if res.status != c.status || !strings.Contains(res.body, c.want) {
			t.Errorf("status %d: got %d with %s, want the provider's body with %q", c.status, res.status, res.body, c.want)
		}
		if o := e.outcome(); o.Retried || o.Status != c.status {
			t.Errorf("status %d: outcome = %+v", c.status, o)
		}
	}
	res := e.chat(`"max_tokens": 0`)
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "integer_below_min_value") {
		t.Errorf("a bad request: got %d with %s, want the provider's 400", res.status, res.body)
	}
	if got := e.lastRequest().Header.Get("X-Ratelimit-Limit-Requests"); got != "" {
		t.Errorf("request header X-Ratelimit-Limit-Requests = %q", got)
	}
}

func TestRateLimitHeadersReachClient(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	e.fake.SetFault("POST "+fakeprovider.OpenAIPrefix+"/chat/completions", fakeprovider.Fault{Status: 429})
	res := e.chat("")
	for _, name := range []string{"X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests"} {
		if res.header.Get(name) == "" {
			t.Errorf("%s did not reach the client", name)
		}
	}
}

func TestResponseHeadersFiltered(t *testing.T) {
	e := newEnv(t)
	url := serveUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Set-Cookie", "session=provider")
		h.Set("Openai-Organization", "org-provider")
		h.Set("X-Echo-Authorization", r.Header.Get("Authorization"))
		h.Set("Retry-After", "3")
		h.Set("X-Ratelimit-Remaining-Tokens", "99")
		h.Set("Anthropic-Ratelimit-Requests-Remaining", "7")
		h.Set("Request-Id", "req_1")
		h.Set("Openai-Processing-Ms", "12")
		h.Set("Location", "https://elsewhere.example/")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"object": "chat.completion"}`)
	})
	e.createSecret(secretID, value(t, canary, "openai", url+"/v1"))

	res := e.chat("")
	if res.status != http.StatusOK {
		t.Fatalf("status = %d: %s", res.status, res.body)
	}
	for _, name := range []string{"Set-Cookie", "Openai-Organization", "X-Echo-Authorization", "Location"} {
		if got := res.header.Get(name); got != "" {
			t.Errorf("the provider's %s reached the client", name)
		}
	}
	for name, want := range map[string]string{"Retry-After": "3", "X-Ratelimit-Remaining-Tokens": "99",
		"Anthropic-Ratelimit-Requests-Remaining": "7", "Request-Id": "req_1", "Openai-Processing-Ms": "12"} {
		if got := res.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestGeminiErrorObjectTriggersRetry(t *testing.T) {
	// Every rejection refreshes, so that the rotation right after the
	// first rejected request is seen.
	e := newEnvWith(t, envOptions{minRefreshInterval: time.Nanosecond})
	const gemini = "keyturn/test/gemini"
	const next = canary + "-next"
	url := serveUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+next {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
				"status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
				"reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}`)
			return
		}
		_, _ = io.WriteString(w, `{"object": "chat.completion"}`)
	})
	e.secretOf = func(*http.Request) string { return gemini }
	e.createSecret(gemini, value(t, canary, "gemini", url+"/v1beta"))
	if res := e.chat(""); res.status != http.StatusBadGateway || strings.Contains(res.body, "API key not valid") {
		t.Fatalf("with no working key: status %d, body %s; want keyturn's 502", res.status, res.body)
	}
	e.outcome()

	e.putCurrent(gemini, next, "gemini", url+"/v1beta")
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("after the rotation: status = %d, want 200 through the refresh: %s", res.status, res.body)
	}
	if o := e.outcome(); !o.Retried {
		t.Error("the request was not retried")
	}
}

func TestOtherBadRequestPassesWhole(t *testing.T) {
	e := newEnv(t)
	// Longer than the part read to classify it.
	body := `{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "` + strings.Repeat("x", 40<<10) + `"}}`
	url := serveUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, body)
	})
	e.createSecret(secretID, value(t, canary, "gemini", url+"/v1beta"))
	res := e.chat("")
	if res.status != http.StatusBadRequest || res.body != body {
		t.Errorf("status %d with %d bytes, want the provider's 400 with its %d bytes", res.status, len(res.body), len(body))
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	e := newEnv(t)
	url := serveUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/v1/chat/completions", http.StatusTemporaryRedirect)
	})
	e.createSecret(secretID, value(t, canary, "openai", url+"/v1"))
	res := e.chat("")
	if res.status != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502: %s", res.status, res.body)
	}
	if _, _, code := apiError(t, res.body); code != "upstream_redirect" {
		t.Errorf("code = %q, want upstream_redirect", code)
	}
	if res.header.Get("Location") != "" {
		t.Error("the redirect's Location reached the client")
	}
}

func TestProviderUnreachable(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	e.createSecret(secretID, value(t, canary, "openai", "http://"+addr+"/v1"))

	res := e.chat("")
	if res.status != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502: %s", res.status, res.body)
	}
	msg, _, code := apiError(t, res.body)
	if code != "upstream_unreachable" {
		t.Errorf("code = %q, want upstream_unreachable", code)
	}
	if !strings.Contains(msg, secretID) {
		t.Errorf("message %q does not name secret %s", msg, secretID)
	}
	// The address is the operator's business: the log has it.
	if strings.Contains(msg, addr) || strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "dial") {
		t.Errorf("message %q names the provider's address or the transport's error", msg)
	}
	if logs := e.logs.String(); !strings.Contains(logs, addr) {
		t.Errorf("the log does not name the address %s:\n%s", addr, logs)
	}
	// keyturn cannot tell whether a failed connection sent anything, so
	// it counts the attempt.
	if o := e.outcome(); !o.Upstream || o.Attempts != 1 {
		t.Errorf("outcome = %+v, want one upstream attempt", o)
	}
}

func TestProviderTimeout(t *testing.T) {
	e := newEnvWith(t, envOptions{responseHeaderTimeout: 50 * time.Millisecond})
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	e.fake.SetFault("POST "+fakeprovider.OpenAIPrefix+"/chat/completions", fakeprovider.Fault{Hang: true})

	res := e.chat("")
	if res.status != http.StatusGatewayTimeout {
		t.Fatalf("status = %d, want 504: %s", res.status, res.body)
	}
	msg, _, code := apiError(t, res.body)
	if code != "upstream_timeout" {
		t.Errorf("code = %q, want upstream_timeout", code)
	}
	for _, want := range []string{secretID, "50ms"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, fakeHost(e)) {
		t.Errorf("message %q names the provider's host", msg)
	}
	if o := e.outcome(); o.Status != http.StatusGatewayTimeout {
		t.Errorf("outcome status = %d, want 504", o.Status)
	}
}

func TestProviderTimeoutSparesStream(t *testing.T) {
	const timeout = 50 * time.Millisecond
	e := newEnvWith(t, envOptions{responseHeaderTimeout: timeout})
	url := serveUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"n\": 1}\n\n")
		_ = http.NewResponseController(w).Flush()
		// The stream outlasts the header timeout.
		time.Sleep(3 * timeout)
		_, _ = io.WriteString(w, "data: {\"n\": 2}\n\ndata: [DONE]\n\n")
	})
	e.createSecret(secretID, value(t, canary, "openai", url+"/v1"))

	res := e.chat(`"stream": true`)
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", res.status, res.body)
	}
	if got := events(res.body); len(got) != 3 || got[2] != "[DONE]" {
		t.Errorf("events = %q, want the whole stream", got)
	}
}

func TestNegativeDurationOption(t *testing.T) {
	e := newEnv(t)
	_, err := upstream.New(upstream.Options{Keys: e.cache, Policy: provider.DefaultPolicy(), ResponseHeaderTimeout: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "ResponseHeaderTimeout is -1s") {
		t.Errorf("err = %v, want one naming ResponseHeaderTimeout and its value", err)
	}
}

func TestWriteError(t *testing.T) {
	cases := []struct {
		status   int
		code     string
		wantType string
	}{
		{http.StatusBadRequest, "invalid_request_body", "invalid_request_error"},
		{http.StatusUnauthorized, "invalid_api_key", "invalid_request_error"},
		{http.StatusNotFound, "model_not_found", "invalid_request_error"},
		{http.StatusTooManyRequests, "rate_limit_exceeded", "requests"},
		{http.StatusBadGateway, "", "server_error"},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		upstream.WriteError(w, c.status, c.code, "what failed: what to do")
		if w.Code != c.status {
			t.Errorf("%d: status = %d", c.status, w.Code)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%d: Content-Type = %q", c.status, ct)
		}
		msg, typ, code := apiError(t, w.Body.String())
		if msg != "what failed: what to do" || typ != c.wantType || code != c.code {
			t.Errorf("%d: message, type, code = %q, %q, %q; want type %q, code %q", c.status, msg, typ, code, c.wantType, c.code)
		}
	}
	w := httptest.NewRecorder()
	upstream.WriteError(w, http.StatusBadGateway, "", "m")
	if !strings.Contains(w.Body.String(), `"code":null`) || !strings.Contains(w.Body.String(), `"param":null`) {
		t.Errorf("an empty code is not sent as null: %s", w.Body.String())
	}
}

func TestNewRequiresKeysAndPolicy(t *testing.T) {
	if _, err := upstream.New(upstream.Options{Policy: provider.DefaultPolicy()}); err == nil || !strings.Contains(err.Error(), "Keys") {
		t.Errorf("New without Keys: err = %v, want one naming Options.Keys", err)
	}
	e := newEnv(t)
	if _, err := upstream.New(upstream.Options{Keys: e.cache}); err == nil || !strings.Contains(err.Error(), "Policy") {
		t.Errorf("New without Policy: err = %v, want one naming Options.Policy", err)
	}
}
