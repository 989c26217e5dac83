package provider

import (
	"strings"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

const (
	openAIModels = `{"object":"list","data":[
		{"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"system"},
		{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"}]}`
	openAIChat = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",
		"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"length"}],
		"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}}`
	// OpenAI echoes part of a bad key in its message, here the whole canary.
	openAIInvalidKey = `{"error":{"message":"Incorrect API key provided: ` + canary + `. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`
	openAIQuota      = `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
	openAIRateLimit  = `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	openAIRegion     = `{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`
	openAIScopes     = `{"error":{"message":"You have insufficient permissions for this operation. Missing scopes: model.request.","type":"invalid_request_error","param":null,"code":null}}`
	openAINoModel    = "{\"error\":{\"message\":\"The model `gpt-4o` does not exist or you do not have access to it.\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"model_not_found\"}}"
	openAIMaxTokens  = `{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}`
	htmlPage         = `<!doctype html><html><body>Sign in to the network</body></html>`
)

func TestOpenAIAdapter(t *testing.T) {
	models := "GET /v1/models"
	chat := "POST /v1/chat/completions"
	ok := reply{status: 200, body: openAIModels}
	cases := []adapterCase{
		{name: "valid", routes: routes{models: {ok}}, want: Valid, status: 200, attempts: 1,
			models: []string{"gpt-4o", "gpt-4o-mini"}},
		{name: "required models present", routes: routes{models: {ok}}, required: []string{"gpt-4o-mini", "gpt-4o"}, want: Valid},
		{name: "required model missing", routes: routes{models: {ok}}, required: []string{"gpt-4o", "o3"},
			want: Rejected, reason: "required model o3 not listed"},
		{name: "invalid key", routes: routes{models: {{status: 401, body: openAIInvalidKey}}},
			want: Rejected, status: 401, reason: "401 invalid_request_error invalid_api_key", attempts: 1},
		{name: "insufficient quota", routes: routes{models: {{status: 429, body: openAIQuota}}},
			want: Rejected, status: 429, reason: "insufficient_quota", attempts: 1},
		{name: "rate limit then valid", routes: routes{models: {{status: 429, body: openAIRateLimit}, ok}},
			want: Valid, attempts: 2},
		{name: "rate limit persists", routes: routes{models: {{status: 429, body: openAIRateLimit}}},
			want: Transient, status: 429, reason: "rate_limit_exceeded", attempts: 3},
		{name: "unsupported region", routes: routes{models: {{status: 403, body: openAIRegion}}},
			want: Misconfigured, status: 403, reason: "unsupported_country_region_territory", attempts: 1},
		{name: "server error", routes: routes{models: {{status: 500, body: `{"error":{"message":"oops","type":"server_error"}}`}}},
			want: Transient, status: 500, attempts: 3},
		{name: "html 200", routes: routes{models: {{status: 200, body: htmlPage, header: map[string]string{"Content-Type": "text/html; charset=utf-8"}}}},
			want: Transient, reason: "body is not JSON, content-type text/html"},
		{name: "json without data", routes: routes{models: {{status: 200, body: `{"ok":true}`}}},
			want: Transient, reason: `without "data"`},
		{name: "wrong base path", routes: routes{}, want: Misconfigured, status: 404, reason: "check keyturn:base-url", attempts: 1},
		{name: "method not allowed", routes: routes{models: {{status: 405, body: htmlPage}}},
			want: Misconfigured, status: 405, reason: "check keyturn:base-url", attempts: 1},
		{name: "gone", routes: routes{models: {{status: 410, body: htmlPage}}},
			want: Misconfigured, status: 410, reason: "check keyturn:base-url", attempts: 1},
		{name: "inference html not found", routes: routes{models: {ok}, chat: {{status: 404, body: htmlPage}}},
			required: []string{"gpt-4o"}, probe: keystore.ProbeInference, want: Misconfigured, status: 404, reason: "check keyturn:base-url", attempts: 2},
		{name: "bad request", routes: routes{models: {{status: 400, body: `{"error":{"type":"invalid_request_error"}}`}}},
			want: Transient, status: 400, attempts: 1},
		{name: "inference valid", routes: routes{models: {ok}, chat: {{status: 200, body: openAIChat}}},
			required: []string{"gpt-4o"}, probe: keystore.ProbeInference, want: Valid, attempts: 2},
		{name: "inference missing scopes", routes: routes{models: {ok}, chat: {{status: 401, body: openAIScopes}}},
			required: []string{"gpt-4o"}, probe: keystore.ProbeInference, want: Rejected, status: 401, reason: "POST"},
		{name: "inference model not available", routes: routes{models: {ok}, chat: {{status: 404, body: openAINoModel}}},
			required: []string{"gpt-4o"}, probe: keystore.ProbeInference, want: Rejected, reason: "model gpt-4o not available"},
		{name: "inference max_completion_tokens", routes: routes{models: {ok}, chat: {{status: 400, body: openAIMaxTokens}, {status: 200, body: openAIChat}}},
			required: []string{"gpt-4o"}, probe: keystore.ProbeInference, want: Valid, attempts: 3},
	}
	runAdapterCases(t, "openai", "/v1", bearer, cases)
}

func TestOpenAIInferenceBody(t *testing.T) {
	a := startAPI(t, bearer, routes{
		"GET /v1/models":            {{status: 200, body: openAIModels}},
		"POST /v1/chat/completions": {{status: 400, body: openAIMaxTokens}, {status: 200, body: openAIChat}},
	})
	c, logs := testChecker(Options{})
	res := check(t, c, logs, keystore.Settings{Provider: "openai", BaseURL: a.url + "/v1",
		RequiredModels: []string{"gpt-4o"}, Probe: keystore.ProbeInference})
	if res.Class != Valid {
		t.Fatalf("class = %s (%s), want valid", res.Class, res.Reason)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if got := a.bodies[1]; !strings.Contains(got, `"max_tokens":1`) || !strings.Contains(got, `"model":"gpt-4o"`) {
		t.Errorf("first chat body = %s, want model gpt-4o and max_tokens 1", got)
	}
	if got := a.bodies[2]; !strings.Contains(got, `"max_completion_tokens":1`) || strings.Contains(got, "max_tokens") {
		t.Errorf("second chat body = %s, want max_completion_tokens 1 alone", got)
	}
	for _, b := range a.bodies {
		if strings.Contains(b, canary) {
			t.Error("key in a request body")
		}
	}
}

func TestOpenAIEchoedKeyScrubbed(t *testing.T) {
	body := `{"error":{"message":"bad","type":"invalid_request_error","code":"` + canary + `"}}`
	a := startAPI(t, bearer, routes{"GET /v1/models": {{status: 503, body: body}, {status: 401, body: body}}})
	c, logs := testChecker(Options{})
	res := check(t, c, logs, keystore.Settings{Provider: "openai", BaseURL: a.url + "/v1"})
	if res.Class != Rejected {
		t.Errorf("class = %s, want rejected", res.Class)
	}
	if !strings.Contains(res.Reason, keystore.Redacted) {
		t.Errorf("reason = %q, want the echoed key redacted", res.Reason)
	}
	if !strings.Contains(logs.String(), keystore.Redacted) {
		t.Errorf("logs = %s, want the retry line with the echoed key redacted", logs)
	}
}
