package router

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/keystore"
)

func TestChatCompletion(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	r := e.chat("gpt-4o")
	assertStatus(t, r, http.StatusOK)
	var body struct {
		Object string `json:"object"`
		Model  string `json:"model"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	if body.Object != "chat.completion" {
		t.Errorf("object = %q, want chat.completion", body.Object)
	}
	logs := e.serverLogs()
	assertContains(t, "log", logs, "client_id=kc_test0001")
	assertContains(t, "log", logs, "secret=keyturn/openai")
}

func TestRouteRewritesModel(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	r := e.chat("fast")
	assertStatus(t, r, http.StatusOK)
	assertContains(t, "body", r.body, `"gpt-4o-mini`)
}

func TestChatStream(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	req, _ := http.NewRequest("POST", e.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+e.clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type = %q", ct)
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "data: ") {
			events = append(events, line)
			_, _ = e.seen.Write([]byte(line))
		}
	}
	if len(events) < 2 || events[len(events)-1] != "data: [DONE]" {
		t.Errorf("events = %v, want chunks ending in [DONE]", events)
	}
}

func TestEmbeddings(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	r := e.do("POST", "/v1/embeddings", e.clientKey, `{"model":"embed","input":"hello"}`)
	assertStatus(t, r, http.StatusOK)
	assertContains(t, "body", r.body, `"embedding"`)
}

func TestUnknownModel(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	r := e.chat("gpt-9")
	assertStatus(t, r, http.StatusNotFound)
	assertContains(t, "body", r.body, `"code":"model_not_found"`)
	assertContains(t, "body", r.body, "GET /v1/models")
	assertContains(t, "body", r.body, `gpt-9`)
}

func TestMissingModelField(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	for _, body := range []string{`{"messages":[]}`, `{"model":3}`, `not json`, ``} {
		r := e.do("POST", "/v1/chat/completions", e.clientKey, body)
		if r.status != http.StatusBadRequest {
			t.Errorf("body %q: status %d, want 400", body, r.status)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	r := e.do("GET", "/v1/chat/completions", e.clientKey, "")
	assertStatus(t, r, http.StatusMethodNotAllowed)
	assertContains(t, "body", r.body, `"code":"method_not_allowed"`)
	if got := r.header.Get("Allow"); got != "POST" {
		t.Errorf("Allow = %q", got)
	}
	r = e.do("POST", "/v1/models", e.clientKey, "{}")
	assertStatus(t, r, http.StatusMethodNotAllowed)
}

func TestUnknownPath(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	r := e.do("GET", "/v1/files", e.clientKey, "")
	assertStatus(t, r, http.StatusNotFound)
	assertContains(t, "body", r.body, `"error"`)
}

func TestBodyTooLarge(t *testing.T) {
	e := newTestEnv(t, envOptions{config: func(c *Config) { c.MaxRequestBytes = 100 }})
	r := e.do("POST", "/v1/chat/completions", e.clientKey, `{"model":"gpt-4o","input":"`+strings.Repeat("x", 200)+`"}`)
	assertStatus(t, r, http.StatusRequestEntityTooLarge)
	assertContains(t, "body", r.body, "100 bytes")
}

func TestModelsList(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	r := e.do("GET", "/v1/models", e.clientKey, "")
	assertStatus(t, r, http.StatusOK)
	var list struct {
		Object string
		Data   []struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Created int64  `json:"created"`
			OwnedBy string `json:"owned_by"`
		}
	}
	if err := json.Unmarshal([]byte(r.body), &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.OwnedBy != "openai" || m.Created == 0 {
			t.Errorf("model %+v", m)
		}
	}
	if list.Object != "list" || strings.Join(ids, ",") != "embed,fast,gpt-4o" {
		t.Errorf("list %s %v", list.Object, ids)
	}
	assertStatus(t, e.do("GET", "/v1/models", "-", ""), http.StatusUnauthorized)
}

func TestAuthMissingKey(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	r := e.do("POST", "/v1/chat/completions", "-", `{"model":"gpt-4o"}`)
	assertStatus(t, r, http.StatusUnauthorized)
	if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	assertContains(t, "body", r.body, `"code":"invalid_api_key"`)
	assertContains(t, "body", r.body, "missing client key")
}

func TestAuthWrongKey(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	wrong, _, _ := clientkeys.NewKey()
	for _, key := range []string{wrong.Reveal(), canaryKey} {
		r := e.do("POST", "/v1/chat/completions", key, `{"model":"gpt-4o"}`)
		assertStatus(t, r, http.StatusUnauthorized)
		assertContains(t, "body", r.body, "invalid client key")
	}
	req, _ := http.NewRequest("GET", e.url+"/v1/models", nil)
	req.Header.Set("Authorization", "Basic "+e.clientKey)
	r := e.send(req)
	assertStatus(t, r, http.StatusUnauthorized)
	assertContains(t, "body", r.body, "invalid Authorization header")
}

func TestAuthXAPIKey(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	req, _ := http.NewRequest("POST", e.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("X-Api-Key", e.clientKey)
	assertStatus(t, e.send(req), http.StatusOK)

	// The client's key reaches no provider: the provider saw only its own
	// key, in Authorization.
	reqs := e.fake.Requests()
	last := reqs[len(reqs)-1]
	if strings.Join(last.Auth, ",") != "Authorization" {
		t.Errorf("provider saw credentials in %v, want Authorization alone", last.Auth)
	}
}

func TestAuthDisabled(t *testing.T) {
	e := newTestEnv(t, envOptions{client: clientkeys.Client{Name: "old", Disabled: true}})
	r := e.chat("gpt-4o")
	assertStatus(t, r, http.StatusUnauthorized)
	assertContains(t, "body", r.body, "is disabled")
	assertContains(t, "body", r.body, "old")
}

func TestAuthNoClientsSecret(t *testing.T) {
	e := newTestEnv(t, envOptions{noClients: true})
	r := e.do("POST", "/v1/chat/completions", "kt-whatever", `{"model":"gpt-4o"}`)
	assertStatus(t, r, http.StatusUnauthorized)
	assertContains(t, "body", r.body, "rotator client add NAME")
}

func TestAuthFollowsClientsSecret(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	old := e.clientKey
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)

	e.addClient(clientkeys.Client{ID: "kc_new", Name: "new"})
	e.refresh(DefaultClientsSecret)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	r := e.do("POST", "/v1/chat/completions", old, `{"model":"gpt-4o"}`)
	assertStatus(t, r, http.StatusUnauthorized)
}

func TestInvalidClientsSecret(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	e.putValue(DefaultClientsSecret, keystoreSecret(`{"clients": "nope"}`))
	e.refresh(DefaultClientsSecret)
	r := e.chat("gpt-4o")
	assertStatus(t, r, http.StatusServiceUnavailable)
	assertContains(t, "log", e.logs.String(), "invalid clients secret")
}

func TestRateLimit(t *testing.T) {
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	e := newTestEnv(t, envOptions{client: clientkeys.Client{RPS: 0.5, Burst: 1}, now: func() time.Time { return now }})
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	r := e.chat("gpt-4o")
	assertStatus(t, r, http.StatusTooManyRequests)
	assertContains(t, "body", r.body, `"code":"rate_limit_exceeded"`)
	if got := r.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2", got)
	}
	now = now.Add(2 * time.Second)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
}

func TestMonthlyQuota(t *testing.T) {
	now := time.Date(2026, 5, 31, 23, 0, 0, 0, time.UTC)
	e := newTestEnv(t, envOptions{client: clientkeys.Client{MonthlyQuota: 2}, now: func() time.Time { return now }})
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	r := e.chat("gpt-4o")
	assertStatus(t, r, http.StatusTooManyRequests)
	assertContains(t, "body", r.body, `"code":"insufficient_quota"`)
	assertContains(t, "body", r.body, "2026-06-01")
	// Listing models uses no quota.
	assertStatus(t, e.do("GET", "/v1/models", e.clientKey, ""), http.StatusOK)

	now = now.Add(2 * time.Hour)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
}

func TestRotationBetweenRequests(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	e.fake.AddKey(canaryKey2)
	e.putKey(openaiID, canaryKey2)
	e.refresh(openaiID)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	e.fake.RevokeKey(canaryKey)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
}

func TestRevokedCurrentKeyRecovers(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	// The store has a new key the cache has not read yet, and the cached
	// key is revoked: the 401 forces a refresh that finds the new one.
	e.fake.AddKey(canaryKey2)
	e.putKey(openaiID, canaryKey2)
	e.fake.RevokeKey(canaryKey)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	assertContains(t, "metrics", e.scrape(), `keyturn_router_upstream_key_rejections_total{secret="keyturn/openai"} 1`)
}

func TestPreviousKeyWhileNewKeyPropagates(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	// The new key is current in the store but the provider does not take
	// it yet: the router falls back to AWSPREVIOUS.
	e.putKey(openaiID, canaryKey2)
	e.refresh(openaiID)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	assertContains(t, "metrics", e.scrape(), `keyturn_router_upstream_previous_key_total{secret="keyturn/openai"} 1`)
	assertContains(t, "access log", e.serverLogs(), "stage=AWSPREVIOUS retried=true")
}

func TestProviderSecretMissing(t *testing.T) {
	e := newTestEnv(t, envOptions{config: func(c *Config) {
		c.Providers["other"] = ProviderConfig{Secret: "keyturn/missing"}
		c.Models["other-model"] = ModelRoute{Provider: "other", Model: "gpt-4o"}
	}})
	r := e.chat("other-model")
	assertStatus(t, r, http.StatusBadGateway)
	assertContains(t, "body", r.body, "providers.other.secret in the router config")
	if strings.Contains(r.body, "rotator stage") {
		t.Errorf("the 502 tells the client to stage a key in a secret that does not exist: %s", r.body)
	}
}

func TestGzipBodyRejected(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	req, err := http.NewRequest("POST", e.url+"/v1/chat/completions", strings.NewReader("\x1f\x8b compressed"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.clientKey)
	req.Header.Set("Content-Encoding", "gzip")
	r := e.send(req)
	assertStatus(t, r, http.StatusUnsupportedMediaType)
	assertContains(t, "body", r.body, `Content-Encoding \"gzip\"`)
	if got := r.header.Get("Accept-Encoding"); got != "identity" {
		t.Errorf("Accept-Encoding = %q, want identity", got)
	}
}

func TestHealthz(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	r := e.do("GET", "/healthz", "-", "")
	assertStatus(t, r, http.StatusOK)
	var body healthBody
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	if body.Status != "ok" || len(body.Secrets) != 2 {
		t.Fatalf("body %+v", body)
	}
	if s := body.Secrets[0]; s.SecretID != openaiID || s.VersionID == "" || !s.OK || s.Stale {
		t.Errorf("provider health %+v", s)
	}
}

func TestHealthzUnavailable(t *testing.T) {
	e := newTestEnv(t, envOptions{config: func(c *Config) {
		c.Providers["other"] = ProviderConfig{Secret: "keyturn/missing"}
	}})
	r := e.do("GET", "/healthz", "-", "")
	assertStatus(t, r, http.StatusServiceUnavailable)
	assertContains(t, "body", r.body, `"status":"unavailable"`)
	assertContains(t, "body", r.body, "keyturn/missing")
}

func TestMetricsVersionFollowsRotation(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	keys, err := e.cache.Get(t.Context(), openaiID)
	if err != nil {
		t.Fatal(err)
	}
	first := keys.Current.VersionID
	m := e.scrape()
	assertContains(t, "metrics", m, `keyturn_router_secret_version_info{secret="keyturn/openai",version_id="`+first+`"} 1`)
	assertContains(t, "metrics", m, `keyturn_router_requests_total{endpoint="/v1/chat/completions",provider="openai",status="200"} 1`)
	assertContains(t, "metrics", m, `keyturn_router_cache_stale{secret="keyturn/openai"} 0`)

	e.fake.AddKey(canaryKey2)
	second := e.putKey(openaiID, canaryKey2)
	e.refresh(openaiID)
	m = e.scrape()
	assertContains(t, "metrics", m, `keyturn_router_secret_version_info{secret="keyturn/openai",version_id="`+second+`"} 1`)
	if strings.Contains(m, first) {
		t.Errorf("metrics still name the old version %s", first)
	}
}

// TestMetricsLocalAnswerNotUpstream checks that a 502 the router gives
// itself, for a secret that has no version, is not counted as a request
// sent to the provider.
func TestMetricsLocalAnswerNotUpstream(t *testing.T) {
	e := newTestEnv(t, envOptions{config: func(c *Config) {
		c.Providers["other"] = ProviderConfig{Secret: "keyturn/empty"}
		c.Models["other-model"] = ModelRoute{Provider: "other", Model: "gpt-4o"}
	}})
	if _, err := e.store.Create(t.Context(), keystore.CreateInput{SecretID: "keyturn/empty"}); err != nil {
		t.Fatal(err)
	}
	assertStatus(t, e.chat("other-model"), http.StatusBadGateway)
	m := e.scrape()
	if strings.Contains(m, `keyturn_router_upstream_requests_total{secret="keyturn/empty"`) {
		t.Errorf("a local answer is counted as an upstream request:\n%s", m)
	}
	assertContains(t, "metrics", m, `keyturn_router_local_responses_total{secret="keyturn/empty",status="502"} 1`)

	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	assertContains(t, "metrics", e.scrape(), `keyturn_router_upstream_requests_total{secret="keyturn/openai",stage="AWSCURRENT",status="200"} 1`)
}

func TestClientKeyNotForwarded(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	for _, rec := range e.fake.Requests() {
		if rec.Path == fakeprovider.OpenAIPrefix+"/chat/completions" && strings.Join(rec.Auth, ",") != "Authorization" {
			t.Errorf("provider saw credentials in %v", rec.Auth)
		}
	}
}

func TestRejectedKeyWithoutFallbackCounted(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	// The secret has one version, and the provider rejects its key: there
	// is nothing to retry with, and every rejection still counts.
	e.fake.RevokeKey(canaryKey)
	for range 2 {
		assertStatus(t, e.chat("gpt-4o"), http.StatusBadGateway)
	}
	assertContains(t, "metrics", e.scrape(), `keyturn_router_upstream_key_rejections_total{secret="keyturn/openai"} 2`)
	assertContains(t, "access log", e.serverLogs(), "retried=false rejected=1")
}

func TestUpstreamTimeout(t *testing.T) {
	// A short bound, so that the test does not wait the default 10 minutes.
	e := newTestEnv(t, envOptions{config: func(c *Config) { c.UpstreamTimeout = 50 * time.Millisecond }})
	e.fake.SetFault(fakeprovider.OpenAIPrefix+"/chat/completions", fakeprovider.Fault{Hang: true})
	// The deadline only fails a router that waits forever.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", e.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.clientKey)
	r := e.send(req)
	assertStatus(t, r, http.StatusGatewayTimeout)
	assertContains(t, "body", r.body, `"code":"upstream_timeout"`)
}

func TestModelParsedExactly(t *testing.T) {
	// A quota of one request shows that no rejected body used it.
	e := newTestEnv(t, envOptions{client: clientkeys.Client{MonthlyQuota: 1}})
	tests := []struct {
		body, code, message string
	}{
		// A relay that decodes JSON without regard to case would read
		// these as the model.
		{`{"MODEL":"gpt-4o","messages":[]}`, "invalid_request_body", `\"MODEL\"`},
		{`{"Model":"gpt-4o","messages":[]}`, "invalid_request_body", `\"Model\"`},
		{`{"model":"gpt-4o","MODEL":"gpt-9","messages":[]}`, "invalid_request_body", `\"MODEL\"`},
		{`{"model":"gpt-4o","model":"gpt-9","messages":[]}`, "invalid_request_body", `more than one \"model\" member`},
		{`{"model":"gpt-9","model":"gpt-4o","messages":[]}`, "invalid_request_body", `more than one \"model\" member`},
	}
	for _, tt := range tests {
		r := e.do("POST", "/v1/chat/completions", e.clientKey, tt.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("body %s: status %d, want 400; response %s", tt.body, r.status, r.body)
		}
		assertContains(t, "response to "+tt.body, r.body, `"code":"`+tt.code+`"`)
		assertContains(t, "response to "+tt.body, r.body, tt.message)
	}
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
}

func TestMetricsListenMovesMetrics(t *testing.T) {
	e := newTestEnv(t, envOptions{config: func(c *Config) { c.MetricsListen = "127.0.0.1:0" }})
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	assertStatus(t, e.do("GET", "/metrics", "-", ""), http.StatusNotFound)
	srv := httptest.NewServer(e.server.MetricsHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	_, _ = e.seen.Write(data)
	assertContains(t, "metrics", string(data), `keyturn_router_secret_version_info{secret="keyturn/openai"`)
}

func TestProviderSecretWithoutKey(t *testing.T) {
	e := newTestEnv(t, envOptions{config: func(c *Config) {
		c.Providers["other"] = ProviderConfig{Secret: "keyturn/empty"}
		c.Models["other-model"] = ModelRoute{Provider: "other", Model: "gpt-4o"}
	}})
	// The secret exists, as 'rotator add' leaves it before the first
	// rotation, but has no version yet.
	if _, err := e.store.Create(context.Background(), keystore.CreateInput{SecretID: "keyturn/empty"}); err != nil {
		t.Fatal(err)
	}
	r := e.chat("other-model")
	assertStatus(t, r, http.StatusBadGateway)
	assertContains(t, "body", r.body, "rotator stage keyturn/empty")
	if strings.Contains(r.body, "providers.other.secret") {
		t.Errorf("the 502 blames the config for a secret that exists: %s", r.body)
	}
}
