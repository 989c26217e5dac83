package provider

import (
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

const (
	openRouterKey          = `{"data":{"label":"sk-or-v1-abc...def","usage":1.25,"limit":null,"is_free_tier":false,"limit_remaining":null,"rate_limit":{"requests":10,"interval":"10s"}}}`
	openRouterSpent        = `{"data":{"label":"sk-or-v1-abc...def","usage":10,"limit":10,"is_free_tier":false,"limit_remaining":0}}`
	openRouterNoAuth       = `{"error":{"code":401,"message":"No auth credentials found"}}`
	openRouterNoCredit     = `{"error":{"code":402,"message":"Insufficient credits. Add more using https://openrouter.ai/credits"}}`
	openRouterRateLimit    = `{"error":{"code":429,"message":"Rate limit exceeded"}}`
	openRouterModels       = `{"data":[{"id":"openai/gpt-4o","name":"OpenAI: GPT-4o"},{"id":"anthropic/claude-sonnet-4.5","name":"Anthropic: Claude Sonnet 4.5"}]}`
	openRouterLateError    = `{"id":"gen-1","choices":[],"error":{"code":402,"message":"Insufficient credits"}}`
	openRouterLateNotFound = `{"id":"gen-1","choices":[],"error":{"code":404,"message":"No endpoints found"}}`
)

func TestOpenRouterAdapter(t *testing.T) {
	key := "GET /api/v1/key"
	models := "GET /api/v1/models"
	chat := "POST /api/v1/chat/completions"
	ok := reply{status: 200, body: openRouterKey}
	cases := []adapterCase{
		{name: "valid", routes: routes{key: {ok}}, want: Valid, status: 200, attempts: 1},
		{name: "no auth", routes: routes{key: {{status: 401, body: openRouterNoAuth}}}, want: Rejected, status: 401, attempts: 1},
		{name: "no credits", routes: routes{key: {{status: 402, body: openRouterNoCredit}}},
			want: Rejected, status: 402, reason: "no credits"},
		{name: "limit used up", routes: routes{key: {{status: 200, body: openRouterSpent}}},
			want: Rejected, reason: "limit_remaining 0"},
		{name: "rate limit then valid", routes: routes{key: {{status: 429, body: openRouterRateLimit}, ok}},
			want: Valid, attempts: 2},
		{name: "rate limit persists", routes: routes{key: {{status: 429, body: openRouterRateLimit}}},
			want: Transient, status: 429, attempts: 3},
		{name: "bad gateway", routes: routes{key: {{status: 502, body: `{"error":{"code":502,"message":"upstream"}}`}}},
			want: Transient, status: 502},
		{name: "html 200", routes: routes{key: {{status: 200, body: htmlPage, header: map[string]string{"Content-Type": "text/html"}}}},
			want: Transient},
		{name: "json without data", routes: routes{key: {{status: 200, body: `{}`}}}, want: Transient},
		{name: "key endpoint not found", routes: routes{key: {{status: 404, body: htmlPage}}},
			want: Misconfigured, status: 404, attempts: 1},
		{name: "inference not found in a 200", routes: routes{key: {ok}, models: {{status: 200, body: openRouterModels}}, chat: {{status: 200, body: openRouterLateNotFound}}},
			required: []string{"openai/gpt-4o"}, probe: keystore.ProbeInference, want: Transient, status: 200, attempts: 5},
		{name: "required model listed", routes: routes{key: {ok}, models: {{status: 200, body: openRouterModels}}},
			required: []string{"openai/gpt-4o"}, want: Valid, attempts: 2,
			models: []string{"openai/gpt-4o", "anthropic/claude-sonnet-4.5"}},
		{name: "required model missing", routes: routes{key: {ok}, models: {{status: 200, body: openRouterModels}}},
			required: []string{"openai/o3"}, want: Rejected, reason: "required model openai/o3 not listed"},
		{name: "inference valid", routes: routes{key: {ok}, models: {{status: 200, body: openRouterModels}}, chat: {{status: 200, body: openAIChat}}},
			required: []string{"openai/gpt-4o"}, probe: keystore.ProbeInference, want: Valid, attempts: 3},
		{name: "inference no credits", routes: routes{key: {ok}, models: {{status: 200, body: openRouterModels}}, chat: {{status: 402, body: openRouterNoCredit}}},
			required: []string{"openai/gpt-4o"}, probe: keystore.ProbeInference, want: Rejected, status: 402},
		{name: "inference error in a 200", routes: routes{key: {ok}, models: {{status: 200, body: openRouterModels}}, chat: {{status: 200, body: openRouterLateError}}},
			required: []string{"openai/gpt-4o"}, probe: keystore.ProbeInference, want: Rejected, status: 200},
	}
	runAdapterCases(t, "openrouter", "/api/v1", bearer, cases)
}
