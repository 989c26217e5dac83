package provider

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

func openAISettings(base string) keystore.Settings {
	return keystore.Settings{Provider: "openai", BaseURL: base + "/v1", Probe: keystore.ProbeModels}
}

// unlimited returns a test checker that retries until its time is up, as
// the real one does.
func unlimited(opts Options) (*checker, *logBuffer) {
	c, logs := testChecker(opts)
	c.maxTries = 0
	return c, logs
}

func TestCheckHangingProviderEndsBeforeDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })

	// Default CallTimeout and Margin: the 3s deadline leaves room for one
	// request cut to about 2.25s, keeping a quarter of the budget free.
	logs := &logBuffer{}
	c := New(Options{Policy: NewPolicy(nil, true)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	res := c.Check(ctx, Request{Key: keystore.NewSecret(canary), Settings: openAISettings(srv)})
	returned := time.Now()

	assertNoCanary(t, res, logs)
	if res.Class != Transient {
		t.Errorf("class = %s, want transient", res.Class)
	}
	if !returned.Before(deadline) {
		t.Errorf("check returned %s after the deadline", returned.Sub(deadline))
	}
	if !strings.Contains(res.Reason, "timed out") {
		t.Errorf("reason = %q, want a timeout", res.Reason)
	}
	if !strings.Contains(res.Reason, "the check stopped early to keep") ||
		!strings.Contains(res.Reason, "for clean-up before the deadline") {
		t.Errorf("reason = %q, want it to say why the request was cut short", res.Reason)
	}
	if res.Attempts < 1 {
		t.Errorf("attempts = %d, want at least 1", res.Attempts)
	}
}

func TestCheckRetriesUntilValid(t *testing.T) {
	a := startAPI(t, bearer, routes{"GET /v1/models": {
		{status: 503, body: `{"error":{"type":"server_error"}}`},
		{status: 502, body: `<html>bad gateway</html>`, header: map[string]string{"Content-Type": "text/html"}},
		{status: 200, body: openAIModels},
	}})
	c, logs := unlimited(Options{})
	res := check(t, c, logs, openAISettings(a.url))
	if res.Class != Valid {
		t.Fatalf("class = %s (%s), want valid", res.Class, res.Reason)
	}
	if res.Attempts != 3 {
		t.Errorf("attempts = %d, want 3", res.Attempts)
	}
	if n := strings.Count(logs.String(), "retrying"); n != 2 {
		t.Errorf("logged %d retries, want 2:\n%s", n, logs)
	}
}

func TestCheckHonoursRetryAfter(t *testing.T) {
	a := startAPI(t, bearer, routes{"GET /v1/models": {
		{status: 429, body: openAIRateLimit, header: map[string]string{"Retry-After": "1"}},
		{status: 200, body: openAIModels},
	}})
	c, logs := unlimited(Options{})
	res := check(t, c, logs, openAISettings(a.url))
	if res.Class != Valid {
		t.Fatalf("class = %s (%s), want valid", res.Class, res.Reason)
	}
	if !strings.Contains(logs.String(), "wait=1s") {
		t.Errorf("logs = %s, want a 1s wait from retry-after", logs)
	}
}

func TestCheckRetryAfterPastDeadline(t *testing.T) {
	a := startAPI(t, bearer, routes{"GET /v1/models": {
		{status: 429, body: openAIRateLimit, header: map[string]string{"Retry-After": "3600"}},
	}})
	c, logs := unlimited(Options{})
	res := check(t, c, logs, openAISettings(a.url))
	if res.Class != Transient {
		t.Errorf("class = %s, want transient", res.Class)
	}
	if res.Attempts != 1 {
		t.Errorf("attempts = %d, want 1: a wait past the deadline ends the check", res.Attempts)
	}
}

func TestCheckWithoutDeadlineUsesMaxElapsed(t *testing.T) {
	a := startAPI(t, bearer, routes{"GET /v1/models": {{status: 503, body: `{}`}}})
	c, logs := unlimited(Options{MaxElapsed: 1500 * time.Millisecond, CallTimeout: 200 * time.Millisecond})
	done := make(chan Result, 1)
	go func() {
		done <- c.Check(context.Background(), Request{Key: keystore.NewSecret(canary), Settings: openAISettings(a.url)})
	}()
	select {
	case res := <-done:
		assertNoCanary(t, res, logs)
		if res.Class != Transient {
			t.Errorf("class = %s, want transient", res.Class)
		}
		if res.Attempts < 1 || res.Attempts != a.count() {
			t.Errorf("attempts = %d, server saw %d", res.Attempts, a.count())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("check without a deadline did not end")
	}
}

func TestCheckRedirectNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		reply{status: 200, body: openAIModels}.write(w)
	})
	a := startAPI(t, bearer, routes{"GET /v1/models": {{status: 302, header: map[string]string{"Location": other + "/v1/models"}}}})
	c, logs := unlimited(Options{})
	res := check(t, c, logs, openAISettings(a.url))
	if res.Class != Misconfigured {
		t.Errorf("class = %s, want misconfigured", res.Class)
	}
	if res.Status != 302 {
		t.Errorf("status = %d, want 302", res.Status)
	}
	if res.Attempts != 1 {
		t.Errorf("attempts = %d, want 1: a redirect is not retried", res.Attempts)
	}
	if !strings.Contains(res.Reason, "never follows redirects") {
		t.Errorf("reason = %q, want the redirect refusal explained", res.Reason)
	}
	if !strings.Contains(res.Reason, "set keyturn:base-url to the final location") {
		t.Errorf("reason = %q, want it to say which setting to fix", res.Reason)
	}
	if res.Err != nil {
		t.Errorf("err = %v, want nil: the request was sent", res.Err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want 0", n)
	}
}

func TestCheckHostNotAllowed(t *testing.T) {
	c, logs := testChecker(Options{Policy: DefaultPolicy()})
	res := check(t, c, logs, keystore.Settings{Provider: "openai", BaseURL: "https://relay.example.com/v1"})
	if !errors.Is(res.Err, ErrNotAllowed) {
		t.Errorf("err = %v, want ErrNotAllowed", res.Err)
	}
	if res.Class != Misconfigured || res.Attempts != 0 {
		t.Errorf("class = %s, attempts = %d, want misconfigured with no request", res.Class, res.Attempts)
	}
	if !strings.Contains(res.Reason, "KEYTURN_RELAY_HOSTS") {
		t.Errorf("reason = %q, want it to say how to allow the host", res.Reason)
	}
}

func TestCheckSettingsErrors(t *testing.T) {
	c, logs := testChecker(Options{})
	cases := []struct {
		name     string
		settings keystore.Settings
		want     string
	}{
		{"unknown provider", keystore.Settings{Provider: "mistral", BaseURL: "http://127.0.0.1:1/v1"}, `unknown provider "mistral"`},
		{"inference without model", keystore.Settings{Provider: "openai", BaseURL: "http://127.0.0.1:1/v1", Probe: keystore.ProbeInference}, "probe inference needs a model"},
		{"unknown probe", keystore.Settings{Provider: "openai", BaseURL: "http://127.0.0.1:1/v1", Probe: "chat"}, `unknown probe "chat"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := check(t, c, logs, tc.settings)
			if res.Err == nil || !strings.Contains(res.Err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", res.Err, tc.want)
			}
			if res.Attempts != 0 {
				t.Errorf("attempts = %d, want 0", res.Attempts)
			}
			if res.Class != Misconfigured {
				t.Errorf("class = %s, want misconfigured", res.Class)
			}
		})
	}
}

func TestCheckEmptyKeyRejected(t *testing.T) {
	c, _ := testChecker(Options{})
	res := c.Check(context.Background(), Request{Settings: openAISettings("http://127.0.0.1:1")})
	if res.Class != Rejected || res.Attempts != 0 {
		t.Errorf("class = %s, attempts = %d, want rejected with no request", res.Class, res.Attempts)
	}
}

func TestCheckCanceledContext(t *testing.T) {
	a := startAPI(t, bearer, routes{"GET /v1/models": {{status: 200, body: openAIModels}}})
	c, logs := testChecker(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := c.Check(ctx, Request{Key: keystore.NewSecret(canary), Settings: openAISettings(a.url)})
	assertNoCanary(t, res, logs)
	if res.Class != Transient {
		t.Errorf("class = %s, want transient", res.Class)
	}
	if res.Attempts != 0 || a.count() != 0 {
		t.Errorf("attempts = %d, server saw %d, want none", res.Attempts, a.count())
	}
}

func TestFullJitterStaysUnderCap(t *testing.T) {
	j := newFullJitter(100 * time.Millisecond)
	j.Reset()
	limit := 100 * time.Millisecond
	for i := range 12 {
		if d := j.NextBackOff(); d < 0 || d > limit {
			t.Errorf("wait %d = %s, want within [0, %s]", i, d, limit)
		}
		limit = min(limit*2, 8*time.Second)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.CallTimeout != DefaultCallTimeout || o.Margin != DefaultMargin || o.MaxElapsed != DefaultMaxElapsed {
		t.Errorf("defaults = %s %s %s", o.CallTimeout, o.Margin, o.MaxElapsed)
	}
	if o.Policy == nil || o.Policy.AllowsLoopback() || len(o.Policy.RelayHosts()) != 0 {
		t.Error("default policy should allow only the built-in hosts")
	}
	if o.Logger == nil {
		t.Error("default logger is nil")
	}
}

func TestMarginScalesWithBudget(t *testing.T) {
	cases := []struct{ budget, want time.Duration }{
		{time.Minute, DefaultMargin},
		{8 * time.Second, DefaultMargin},
		{3 * time.Second, 750 * time.Millisecond},
		{time.Second, 250 * time.Millisecond},
		{0, 0},
		{-time.Second, 0},
	}
	for _, tc := range cases {
		if got := marginFor(DefaultMargin, tc.budget); got != tc.want {
			t.Errorf("marginFor(%s, %s) = %s, want %s", DefaultMargin, tc.budget, got, tc.want)
		}
	}
}

// A 3s budget, as `rotate-now --timeout 3s` gives, still gets a request
// of more than two seconds under the default options.
func TestShortBudgetGetsRealAttempt(t *testing.T) {
	opts := Options{}.withDefaults()
	deadline := time.Now().Add(3 * time.Second)
	x := &exchange{deadline: deadline, margin: marginFor(opts.Margin, time.Until(deadline)), opts: opts}
	if got := x.callTimeout(); got < 2*time.Second || got > 2250*time.Millisecond {
		t.Errorf("call timeout = %s, want about 2.25s", got)
	}
	reason := x.timeoutReason(x.callTimeout())
	if !strings.Contains(reason, "the check stopped early to keep") {
		t.Errorf("reason = %q, want it to say the check stopped early", reason)
	}

	long := &exchange{deadline: time.Now().Add(time.Minute), margin: opts.Margin, opts: opts}
	if got := long.timeoutReason(long.callTimeout()); got != "timed out after 5s" {
		t.Errorf("reason = %q, want a plain timeout for an uncut request", got)
	}
}
