package fakeprovider_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

func startCompat(t *testing.T) (*fakeprovider.Provider, string) {
	t.Helper()
	p, url := fakeprovider.Start(t, fakeprovider.Options{})
	p.AddKey(canary)
	return p, url
}

// geminiArrayError decodes Gemini's compatible error body, a JSON array
// around one google.rpc.Status error, and returns that error object.
func geminiArrayError(t *testing.T, r response) map[string]any {
	t.Helper()
	var body []struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body is not a JSON array of errors: %v\n%s", err, r.body)
	}
	if len(body) != 1 || body[0].Error == nil {
		t.Fatalf("body = %s, want one error in an array", r.body)
	}
	return body[0].Error
}

func firstReason(t *testing.T, e map[string]any) any {
	t.Helper()
	details, _ := e["details"].([]any)
	if len(details) == 0 {
		t.Fatalf("error has no details: %v", e)
	}
	return details[0].(map[string]any)["reason"]
}

func TestGeminiCompatChat(t *testing.T) {
	_, url := startCompat(t)
	base := url + fakeprovider.GeminiOpenAIPrefix
	for _, model := range []string{"gemini-2.5-flash", "models/gemini-2.5-flash"} {
		r := call(t, "POST", base+"/chat/completions", chatBody(model, false, ""), "Authorization", "Bearer "+canary)
		if r.status != http.StatusOK {
			t.Fatalf("model %s: status = %d, want 200: %s", model, r.status, r.body)
		}
		body := r.json(t)
		if body["object"] != "chat.completion" {
			t.Errorf("object = %v, want chat.completion", body["object"])
		}
		msg := body["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
		if msg["content"] != "echo: hello there" {
			t.Errorf("content = %v, want the echo", msg["content"])
		}
	}
}

func TestGeminiCompatChatStreamUsage(t *testing.T) {
	_, url := startCompat(t)
	body := chatBody("gemini-2.5-flash", true, `"stream_options":{"include_usage":true}`)
	chunks := parseChunks(t, streamChunks(t, url+fakeprovider.GeminiOpenAIPrefix+"/chat/completions", canary, body))
	final := chunks[len(chunks)-1]
	if len(final.Choices) != 0 || len(final.Usage) == 0 || string(final.Usage) == "null" {
		t.Errorf("last chunk = %+v, want a usage-only chunk", final)
	}
	if chunks[0].Object != "chat.completion.chunk" {
		t.Errorf("object = %q, want chat.completion.chunk", chunks[0].Object)
	}
}

func TestGeminiCompatBadKeyIsArray(t *testing.T) {
	p, url := startCompat(t)
	p.AddManagementKey(mgmtKey)
	base := url + fakeprovider.GeminiOpenAIPrefix
	for _, key := range []string{otherKey, mgmtKey} {
		for _, path := range []string{"/chat/completions", "/embeddings"} {
			r := call(t, "POST", base+path, chatBody("gemini-2.5-flash", false, ""), "Authorization", "Bearer "+key)
			if r.status != http.StatusBadRequest {
				t.Fatalf("%s: status = %d, want 400: %s", path, r.status, r.body)
			}
			e := geminiArrayError(t, r)
			if e["status"] != "INVALID_ARGUMENT" || e["code"] != float64(400) {
				t.Errorf("%s: error = %v, want 400 INVALID_ARGUMENT", path, e)
			}
			if got := firstReason(t, e); got != "API_KEY_INVALID" {
				t.Errorf("%s: reason = %v, want API_KEY_INVALID", path, got)
			}
		}
	}
}

func TestGeminiCompatAuthErrors(t *testing.T) {
	p, url := startCompat(t)
	chat := url + fakeprovider.GeminiOpenAIPrefix + "/chat/completions"
	body := chatBody("gemini-2.5-flash", false, "")

	r := call(t, "POST", chat, body)
	if r.status != http.StatusForbidden || geminiArrayError(t, r)["status"] != "PERMISSION_DENIED" {
		t.Errorf("no key = %d %s, want 403 PERMISSION_DENIED", r.status, r.body)
	}
	r = call(t, "POST", chat, body, "X-Goog-Api-Key", canary)
	if r.status != http.StatusForbidden {
		t.Errorf("x-goog-api-key alone = %d %s, want 403: the endpoint reads the bearer token", r.status, r.body)
	}
	p.SetKeyQuota(canary, true)
	r = call(t, "POST", chat, body, "Authorization", "Bearer "+canary)
	if r.status != http.StatusBadRequest || geminiArrayError(t, r)["status"] != "FAILED_PRECONDITION" {
		t.Errorf("exhausted key = %d %s, want 400 FAILED_PRECONDITION", r.status, r.body)
	}
}

func TestGeminiCompatUnknownModel(t *testing.T) {
	_, url := startCompat(t)
	r := call(t, "POST", url+fakeprovider.GeminiOpenAIPrefix+"/chat/completions", chatBody("gpt-99", false, ""),
		"Authorization", "Bearer "+canary)
	if r.status != http.StatusNotFound || geminiArrayError(t, r)["status"] != "NOT_FOUND" {
		t.Errorf("unknown model = %d %s, want 404 NOT_FOUND", r.status, r.body)
	}
}

func TestGeminiCompatEmbeddings(t *testing.T) {
	_, url := startCompat(t)
	r := call(t, "POST", url+fakeprovider.GeminiOpenAIPrefix+"/embeddings",
		`{"model":"text-embedding-004","input":["alpha","beta"]}`, "Authorization", "Bearer "+canary)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	var got struct {
		Object string
		Data   []struct {
			Object    string
			Embedding []float32
		}
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		}
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Object != "list" || len(got.Data) != 2 || got.Data[0].Object != "embedding" {
		t.Fatalf("body = %s, want a list of 2 embeddings", r.body)
	}
	if n := len(got.Data[0].Embedding); n != 768 {
		t.Errorf("dimensions = %d, want 768 for text-embedding-004", n)
	}
	if got.Usage.PromptTokens != 2 {
		t.Errorf("prompt_tokens = %d, want 2", got.Usage.PromptTokens)
	}
}

func TestGeminiCompatFaultBodyIsArray(t *testing.T) {
	p, url := startCompat(t)
	p.SetFault("/gemini/", fakeprovider.Fault{Status: http.StatusTooManyRequests})
	r := call(t, "POST", url+fakeprovider.GeminiOpenAIPrefix+"/chat/completions", chatBody("gemini-2.5-flash", false, ""),
		"Authorization", "Bearer "+canary)
	if r.status != http.StatusTooManyRequests || geminiArrayError(t, r)["status"] != "RESOURCE_EXHAUSTED" {
		t.Errorf("fault = %d %s, want 429 RESOURCE_EXHAUSTED in an array", r.status, r.body)
	}
	r = call(t, "GET", url+fakeprovider.GeminiPrefix+"/models", "", "X-Goog-Api-Key", canary)
	if !strings.HasPrefix(string(r.body), "{") {
		t.Errorf("native fault body = %s, want an object", r.body)
	}
}

func TestAnthropicCompatChat(t *testing.T) {
	_, url := startCompat(t)
	chat := url + fakeprovider.AnthropicPrefix + "/chat/completions"
	model := "claude-sonnet-4-5-20250929"
	for _, headers := range [][]string{
		{"Authorization", "Bearer " + canary},
		{"X-Api-Key", canary},
	} {
		r := call(t, "POST", chat, chatBody(model, false, ""), headers...)
		if r.status != http.StatusOK {
			t.Fatalf("%s: status = %d, want 200: %s", headers[0], r.status, r.body)
		}
		body := r.json(t)
		if body["object"] != "chat.completion" || body["model"] != model {
			t.Errorf("%s: object, model = %v, %v", headers[0], body["object"], body["model"])
		}
		if id, _ := body["id"].(string); !strings.HasPrefix(id, "msg_") {
			t.Errorf("%s: id = %q, want msg_ first", headers[0], id)
		}
		if r.header.Get("Request-Id") == "" {
			t.Errorf("%s: no request-id header", headers[0])
		}
	}
}

func TestAnthropicCompatStreamUsage(t *testing.T) {
	_, url := startCompat(t)
	body := chatBody("claude-2.1", true, `"stream_options":{"include_usage":true}`)
	chunks := parseChunks(t, streamChunks(t, url+fakeprovider.AnthropicPrefix+"/chat/completions", canary, body))
	if final := chunks[len(chunks)-1]; len(final.Choices) != 0 || string(final.Usage) == "null" {
		t.Errorf("last chunk = %+v, want a usage-only chunk", final)
	}
}

func TestAnthropicCompatAuthErrors(t *testing.T) {
	p, url := startCompat(t)
	p.AddManagementKey(mgmtKey)
	chat := url + fakeprovider.AnthropicPrefix + "/chat/completions"
	body := chatBody("claude-2.1", false, "")
	tests := []struct {
		name    string
		headers []string
		status  int
		typ     string
		message string
	}{
		{"bad bearer", []string{"Authorization", "Bearer " + otherKey}, 401, "authentication_error", "Invalid bearer token"},
		{"management key", []string{"Authorization", "Bearer " + mgmtKey}, 401, "authentication_error", "Invalid bearer token"},
		{"bad x-api-key", []string{"X-Api-Key", otherKey}, 401, "authentication_error", "invalid x-api-key"},
		{"no key", nil, 401, "authentication_error", "x-api-key header is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, "POST", chat, body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.status, r.body)
			}
			if r.json(t)["type"] != "error" {
				t.Errorf("body = %s, want Anthropic's error shape", r.body)
			}
			if got := errorField(t, r, "type"); got != tt.typ {
				t.Errorf("type = %v, want %s", got, tt.typ)
			}
			if got := errorField(t, r, "message"); got != tt.message {
				t.Errorf("message = %v, want %q", got, tt.message)
			}
		})
	}
}

func TestAnthropicCompatErrors(t *testing.T) {
	p, url := startCompat(t)
	chat := url + fakeprovider.AnthropicPrefix + "/chat/completions"
	bearer := []string{"Authorization", "Bearer " + canary}
	r := call(t, "POST", chat, chatBody("gpt-99", false, ""), bearer...)
	if r.status != http.StatusNotFound || errorField(t, r, "type") != "not_found_error" {
		t.Errorf("unknown model = %d %s, want 404 not_found_error", r.status, r.body)
	}
	r = call(t, "POST", chat, `{"model":"claude-2.1","messages":[]}`, bearer...)
	if r.status != http.StatusBadRequest || errorField(t, r, "type") != "invalid_request_error" {
		t.Errorf("no messages = %d %s, want 400 invalid_request_error", r.status, r.body)
	}
	p.SetKeyQuota(canary, true)
	r = call(t, "POST", chat, chatBody("claude-2.1", false, ""), bearer...)
	if r.status != http.StatusPaymentRequired || errorField(t, r, "type") != "billing_error" {
		t.Errorf("exhausted key = %d %s, want 402 billing_error", r.status, r.body)
	}
}

func TestAnthropicHasNoOpenAIEmbeddingsOrResponses(t *testing.T) {
	_, url := startCompat(t)
	for _, path := range []string{"/embeddings", "/responses"} {
		r := call(t, "POST", url+fakeprovider.AnthropicPrefix+path, `{"model":"claude-2.1","input":"x"}`,
			"Authorization", "Bearer "+canary)
		if r.status != http.StatusNotFound || errorField(t, r, "type") != "not_found_error" {
			t.Errorf("%s = %d %s, want Anthropic's 404", path, r.status, r.body)
		}
	}
}
