package upstream_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/upstream"
	"github.com/keyturn/keyturn/keystore"
)

// checkLocal fails the test unless o is the outcome of a request that
// failed with status before any of it reached the provider.
func checkLocal(t *testing.T, o upstream.Outcome, status int) {
	t.Helper()
	if o.Upstream {
		t.Error("outcome marks a request that never reached the provider as upstream")
	}
	if o.Attempts != 0 {
		t.Errorf("outcome counts %d attempts of a request that sent nothing, want 0", o.Attempts)
	}
	if o.VersionID != "" || o.Stage != "" || o.Provider != "" {
		t.Errorf("outcome names version %q, stage %q, provider %q; want none", o.VersionID, o.Stage, o.Provider)
	}
	if o.Status != status {
		t.Errorf("outcome status = %d, want %d", o.Status, status)
	}
}

func TestLocalAnswersNotUpstream(t *testing.T) {
	e := newEnv(t)
	e.addSecret("keyturn/test/anthropic", canary, "anthropic", e.fakeURL+fakeprovider.AnthropicPrefix)
	e.createSecret("keyturn/test/broken", keystore.NewSecret(`{"api_key": "`+canary+`"}`))
	e.secretOf = func(r *http.Request) string { return r.Header.Get("X-Test-Secret") }

	cases := []struct {
		name, secret, path, body string
		header                   string
		status                   int
	}{
		{"unsupported endpoint", "keyturn/test/anthropic", "/v1/embeddings", `{"model": "m", "input": "hi"}`, "", http.StatusBadRequest},
		{"compressed body", "keyturn/test/anthropic", "/v1/chat/completions", chatBody(""), "gzip", http.StatusUnsupportedMediaType},
		{"unusable version", "keyturn/test/broken", "/v1/chat/completions", chatBody(""), "", http.StatusBadGateway},
		{"secret not found", "keyturn/test/missing", "/v1/chat/completions", chatBody(""), "", http.StatusBadGateway},
	}
	for _, c := range cases {
		header := http.Header{"X-Test-Secret": {c.secret}}
		if c.header != "" {
			header.Set("Content-Encoding", c.header)
		}
		res := e.post(c.path, c.body, header)
		if res.status != c.status {
			t.Errorf("%s: status = %d, want %d: %s", c.name, res.status, c.status, res.body)
		}
		t.Run(c.name, func(t *testing.T) { checkLocal(t, e.outcome(), c.status) })
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("the stand-in got %d requests, want none", n)
	}
	e.checkNoMoreOutcomes()
}

func TestDialRefusedNotUpstream(t *testing.T) {
	// The version's base URL passes the policy's check, but the transport
	// refuses to dial loopback, as for a public name that resolves to it.
	e := newEnvWith(t, envOptions{transport: provider.NewPolicy(nil, false).Transport()})
	e.addSecret(secretID, canary, "openai", e.openaiURL())

	res := e.chat("")
	if res.status != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502: %s", res.status, res.body)
	}
	msg, _, code := apiError(t, res.body)
	if code != "upstream_misconfigured" {
		t.Errorf("code = %q, want upstream_misconfigured", code)
	}
	for _, want := range []string{"allow_loopback: true", "KEYTURN_ALLOW_LOOPBACK=true"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not name %q", msg, want)
		}
	}
	checkLocal(t, e.outcome(), http.StatusBadGateway)
	if h := e.proxy.Health(secretID); h.LastStatus != 0 {
		t.Errorf("health records status %d of a request that sent nothing", h.LastStatus)
	}
}

func TestPolicyRefusalNamesFix(t *testing.T) {
	cases := []struct {
		name, adapter, baseURL string
		allowLoopback          bool
		reason                 string
		want                   []string
	}{
		{"loopback", "openai", "", false, "base URL refused by the host policy: loopback not allowed",
			[]string{"allow_loopback: true in the router config", "KEYTURN_ALLOW_LOOPBACK=true", "for tests and development only"}},
		{"host not listed", "openai", "https://relay.example.com/v1", true, "base URL refused by the host policy: host not on the allow-list",
			[]string{"relay_hosts in the router config", keystore.TagBaseURL}},
		{"another provider's host", "anthropic", "https://relay.example.com/v1", true, "base URL refused by the host policy: not the provider's host",
			[]string{keystore.TagBaseURL, "rotator rotate-now"}},
		{"private address", "openai", "https://10.1.2.3/v1", true, "base URL refused by the host policy",
			[]string{keystore.TagBaseURL}},
		{"query", "openai", "https://api.openai.com/v1?key=hunter2", true, "base URL has a query or fragment",
			[]string{keystore.TagBaseURL}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnvWith(t, envOptions{policy: provider.NewPolicy(nil, c.allowLoopback)})
			baseURL := c.baseURL
			if baseURL == "" {
				baseURL = e.openaiURL()
			}
			version := e.addSecret(secretID, canary, c.adapter, baseURL)
			host := urlHost(t, baseURL)

			res := e.chat("")
			if res.status != http.StatusBadGateway {
				t.Fatalf("status = %d, want 502: %s", res.status, res.body)
			}
			msg, _, _ := apiError(t, res.body)
			for _, want := range append([]string{secretID, version}, c.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not name %q", msg, want)
				}
			}
			if strings.Contains(msg, host) {
				t.Errorf("message %q names the base URL's host %s", msg, host)
			}
			if h := e.proxy.Health(secretID); h.Misconfigured != c.reason || h.VersionID != version || h.OK() {
				t.Errorf("health = %+v, want version %s misconfigured: %q", h, version, c.reason)
			}
			if n := len(e.fake.Requests()); n != 0 {
				t.Errorf("the stand-in got %d requests, want none", n)
			}
		})
	}
}

// urlHost returns the host and port of rawURL.
func urlHost(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse %q: %v", rawURL, err)
	}
	return u.Host
}

func TestCheckFindsUnusableVersion(t *testing.T) {
	e := newEnvWith(t, envOptions{policy: provider.NewPolicy(nil, false)})
	version := e.addSecret(secretID, canary, "openai", e.openaiURL())

	err := e.proxy.Check(context.Background(), secretID)
	var unusable *upstream.UnusableError
	if !errors.As(err, &unusable) {
		t.Fatalf("Check = %v, want an *UnusableError", err)
	}
	if unusable.SecretID != secretID || unusable.VersionID != version {
		t.Errorf("error names secret %q version %q, want %q %q", unusable.SecretID, unusable.VersionID, secretID, version)
	}
	if unusable.Reason != "base URL refused by the host policy: loopback not allowed" {
		t.Errorf("reason = %q", unusable.Reason)
	}
	if want := fakeHost(e); unusable.Host != want {
		t.Errorf("host = %q, want %q", unusable.Host, want)
	}
	if !strings.Contains(unusable.Detail, "loopback") {
		t.Errorf("detail %q does not give the policy's reason", unusable.Detail)
	}
	if !strings.Contains(err.Error(), "allow_loopback") {
		t.Errorf("error %q does not name the fix", err)
	}
	if h := e.proxy.Health(secretID); h.Misconfigured == "" || h.VersionID != version {
		t.Errorf("health after Check = %+v, want version %s misconfigured", h, version)
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("Check sent %d requests to the provider", n)
	}
	e.checkNoMoreOutcomes()
}

func TestCheckUsableAndMissing(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	if err := e.proxy.Check(context.Background(), secretID); err != nil {
		t.Errorf("Check of a usable version = %v", err)
	}
	if h := e.proxy.Health(secretID); !h.OK() || h.VersionID == "" {
		t.Errorf("health after Check = %+v, want OK with a version", h)
	}

	err := e.proxy.Check(context.Background(), "keyturn/test/missing")
	if err == nil || !errors.Is(err, keystore.ErrNotFound) || !strings.Contains(err.Error(), "keyturn/test/missing") {
		t.Errorf("Check of a missing secret = %v, want ErrNotFound naming the secret", err)
	}
	var unusable *upstream.UnusableError
	if errors.As(err, &unusable) {
		t.Error("a store error is reported as an unusable version")
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("Check sent %d requests to the provider", n)
	}
}

func TestHealthNoWorkingKeyClears(t *testing.T) {
	e := newEnv(t)
	if h := e.proxy.Health(secretID); h != (upstream.SecretHealth{}) {
		t.Errorf("health of an unused secret = %+v, want the zero value", h)
	}
	version := e.createSecret(secretID, value(t, canary, "openai", e.openaiURL()))

	if res := e.chat(""); res.status != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502: %s", res.status, res.body)
	}
	e.outcome()
	h := e.proxy.Health(secretID)
	if !h.NoWorkingKey || h.OK() {
		t.Errorf("health = %+v, want no working key", h)
	}
	if h.VersionID != version || h.LastStatus != http.StatusBadGateway || h.At.IsZero() || h.LastRejected.IsZero() {
		t.Errorf("health = %+v, want version %s, status 502 and both times", h, version)
	}

	e.fake.AddKey(canary)
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", res.status, res.body)
	}
	e.outcome()
	if h := e.proxy.Health(secretID); h.NoWorkingKey || !h.OK() || h.LastStatus != http.StatusOK {
		t.Errorf("health after a success = %+v, want OK with status 200", h)
	}
}

func TestHealthNewVersionStartsWorking(t *testing.T) {
	e := newEnv(t)
	e.createSecret(secretID, value(t, canary+"-old", "openai", e.openaiURL()))
	if res := e.chat(""); res.status != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502: %s", res.status, res.body)
	}
	e.outcome()
	if h := e.proxy.Health(secretID); !h.NoWorkingKey {
		t.Fatalf("health = %+v, want no working key", h)
	}

	current := e.putCurrent(secretID, canary, "openai", e.openaiURL())
	if _, err := e.cache.Refresh(context.Background(), secretID); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if err := e.proxy.Check(context.Background(), secretID); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if h := e.proxy.Health(secretID); h.NoWorkingKey || h.VersionID != current {
		t.Errorf("health after a rotation = %+v, want version %s without the old version's state", h, current)
	}
}

func TestCheckContentEncoding(t *testing.T) {
	for _, ok := range []string{"", "identity", "Identity", " identity , identity"} {
		h := http.Header{}
		if ok != "" {
			h.Set("Content-Encoding", ok)
		}
		if err := upstream.CheckContentEncoding(h); err != nil {
			t.Errorf("Content-Encoding %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"gzip", "identity, br", "zstd"} {
		err := upstream.CheckContentEncoding(http.Header{"Content-Encoding": {bad}})
		if !errors.Is(err, upstream.ErrContentEncoding) {
			t.Errorf("Content-Encoding %q: error %v does not wrap ErrContentEncoding", bad, err)
			continue
		}
		name := strings.TrimSpace(bad[strings.LastIndex(bad, ",")+1:])
		for _, want := range []string{`"` + name + `"`, "uncompressed"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Content-Encoding %q: message %q does not name %s", bad, err, want)
			}
		}
	}
}

func TestCompressedBodyRejected(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	res := e.post("/v1/chat/completions", chatBody(""), http.Header{"Content-Encoding": {"gzip"}})
	if res.status != http.StatusUnsupportedMediaType {
		t.Fatalf("status = %d, want 415: %s", res.status, res.body)
	}
	msg, typ, code := apiError(t, res.body)
	if typ != "invalid_request_error" || code != "unsupported_content_encoding" {
		t.Errorf("type, code = %q, %q", typ, code)
	}
	if !strings.Contains(msg, `"gzip"`) {
		t.Errorf("message %q does not name the encoding", msg)
	}
	if got := res.header.Get("Accept-Encoding"); got != "identity" {
		t.Errorf("Accept-Encoding = %q, want identity", got)
	}
	checkLocal(t, e.outcome(), http.StatusUnsupportedMediaType)
}
