package fakeprovider_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

func startOpenAI(t *testing.T) (*fakeprovider.Provider, string) {
	t.Helper()
	p, url := fakeprovider.Start(t, fakeprovider.Options{})
	p.AddKey(canary)
	return p, url + fakeprovider.OpenAIPrefix
}

func TestOpenAIListModels(t *testing.T) {
	_, base := startOpenAI(t)
	r := call(t, "GET", base+"/models", "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", r.status, r.body)
	}
	body := r.json(t)
	if body["object"] != "list" {
		t.Errorf("object = %v, want list", body["object"])
	}
	got := ids(t, body["data"].([]any), "id")
	if !slices.Equal(got, fakeprovider.DefaultModels()) {
		t.Errorf("model ids = %v, want the default models", got)
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Error("no x-request-id header")
	}
}

func TestOpenAIGetModel(t *testing.T) {
	_, base := startOpenAI(t)
	r := call(t, "GET", base+"/models/"+testModel, "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusOK || r.json(t)["id"] != testModel {
		t.Errorf("GET model = %d %s, want 200 with id %s", r.status, r.body, testModel)
	}
	r = call(t, "GET", base+"/models/no-such-model", "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusNotFound || errorField(t, r, "code") != "model_not_found" {
		t.Errorf("GET unknown model = %d %s, want 404 model_not_found", r.status, r.body)
	}
}

func TestOpenAIAuthErrors(t *testing.T) {
	p, base := startOpenAI(t)
	p.AddManagementKey(mgmtKey)
	tests := []struct {
		name    string
		headers []string
		code    any
	}{
		{"no key", nil, nil},
		{"x-api-key is not read", []string{"X-Api-Key", canary}, nil},
		{"unknown key", []string{"Authorization", "Bearer " + otherKey}, "invalid_api_key"},
		{"management key", []string{"Authorization", "Bearer " + mgmtKey}, "invalid_api_key"},
		{"basic scheme", []string{"Authorization", "Basic " + canary}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, "GET", base+"/models", "", tt.headers...)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401: %s", r.status, r.body)
			}
			if got := errorField(t, r, "code"); got != tt.code {
				t.Errorf("code = %v, want %v", got, tt.code)
			}
			if got := errorField(t, r, "type"); got != "invalid_request_error" {
				t.Errorf("type = %v, want invalid_request_error", got)
			}
			if _, ok := r.json(t)["error"].(map[string]any)["param"]; !ok {
				t.Error("error has no param field")
			}
		})
	}
}

func TestOpenAIIncorrectKeyMessage(t *testing.T) {
	_, base := startOpenAI(t)
	r := call(t, "GET", base+"/models", "", "Authorization", "Bearer "+otherKey)
	msg, _ := errorField(t, r, "message").(string)
	if !strings.HasPrefix(msg, "Incorrect API key provided.") {
		t.Errorf("message = %q, want it to start with %q", msg, "Incorrect API key provided.")
	}
	if strings.Contains(string(r.body), otherKey[len(otherKey)-4:]) {
		t.Errorf("401 body echoes part of the key: %s", r.body)
	}
}

func TestOpenAIQuotaVersusRateLimit(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetKeyQuota(canary, true)
	r := call(t, "GET", base+"/models", "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusTooManyRequests || errorField(t, r, "code") != "insufficient_quota" {
		t.Errorf("exhausted key = %d %s, want 429 insufficient_quota", r.status, r.body)
	}

	p.SetKeyQuota(canary, false)
	p.SetFault("/openai/v1/models", fakeprovider.Fault{Status: http.StatusTooManyRequests})
	r = call(t, "GET", base+"/models", "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusTooManyRequests || errorField(t, r, "code") != "rate_limit_exceeded" {
		t.Errorf("rate limited = %d %s, want 429 rate_limit_exceeded", r.status, r.body)
	}
	if r.header.Get("X-Ratelimit-Remaining-Requests") != "0" {
		t.Errorf("x-ratelimit-remaining-requests = %q, want 0", r.header.Get("X-Ratelimit-Remaining-Requests"))
	}
}

func TestOpenAIRevokedKey(t *testing.T) {
	p, base := startOpenAI(t)
	p.RevokeKey(canary)
	r := call(t, "GET", base+"/models", "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusUnauthorized {
		t.Errorf("revoked key status = %d, want 401", r.status)
	}
}

func TestOpenAIKeyModels(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetKeyModels(canary, "gpt-4o")
	r := call(t, "GET", base+"/models", "", "Authorization", "Bearer "+canary)
	if got := ids(t, r.json(t)["data"].([]any), "id"); !slices.Equal(got, []string{"gpt-4o"}) {
		t.Errorf("restricted key lists %v, want [gpt-4o]", got)
	}
	r = call(t, "POST", base+"/chat/completions", chatBody(testModel, false, ""), "Authorization", "Bearer "+canary)
	if r.status != http.StatusNotFound {
		t.Errorf("chat with a model outside the key's list = %d, want 404", r.status)
	}

	p.SetKeyModels(canary)
	r = call(t, "GET", base+"/models", "", "Authorization", "Bearer "+canary)
	if n := len(r.json(t)["data"].([]any)); n != len(fakeprovider.DefaultModels()) {
		t.Errorf("after clearing the restriction the key lists %d models, want all", n)
	}
}

func TestSetModels(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetModels("model-a", "model-b")
	r := call(t, "GET", base+"/models", "", "Authorization", "Bearer "+canary)
	if got := ids(t, r.json(t)["data"].([]any), "id"); !slices.Equal(got, []string{"model-a", "model-b"}) {
		t.Errorf("models = %v, want [model-a model-b]", got)
	}
}

func chatBody(model string, stream bool, extra string) string {
	body := `{"model":"` + model + `","messages":[{"role":"system","content":"be brief"},` +
		`{"role":"user","content":"hello there"}],"stream":` + map[bool]string{true: "true", false: "false"}[stream]
	if extra != "" {
		body += "," + extra
	}
	return body + "}"
}

func TestOpenAIChat(t *testing.T) {
	fixed := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p, url := fakeprovider.Start(t, fakeprovider.Options{Clock: func() time.Time { return fixed }})
	p.AddKey(canary)
	r := call(t, "POST", url+"/openai/v1/chat/completions", chatBody(testModel, false, ""),
		"Authorization", "Bearer "+canary, "Content-Type", "application/json")
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", r.status, r.body)
	}
	var c struct {
		Object  string `json:"object"`
		Model   string `json:"model"`
		Created int64  `json:"created"`
		Choices []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		}
	}
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatal(err)
	}
	if c.Object != "chat.completion" || c.Model != testModel || c.Created != fixed.Unix() {
		t.Errorf("object, model, created = %q, %q, %d", c.Object, c.Model, c.Created)
	}
	if len(c.Choices) != 1 || c.Choices[0].Message.Content != "echo: hello there" {
		t.Fatalf("choices = %+v, want one echoing the user message", c.Choices)
	}
	if c.Choices[0].FinishReason != "stop" || c.Choices[0].Message.Role != "assistant" {
		t.Errorf("choice = %+v, want an assistant message that stopped", c.Choices[0])
	}
	if c.Usage.CompletionTokens != 3 || c.Usage.TotalTokens <= 3 {
		t.Errorf("usage = %+v, want 3 completion tokens", c.Usage)
	}
}

func TestOpenAIChatMaxTokens(t *testing.T) {
	_, base := startOpenAI(t)
	r := call(t, "POST", base+"/chat/completions", chatBody(testModel, false, `"max_tokens":1`),
		"Authorization", "Bearer "+canary)
	choice := r.json(t)["choices"].([]any)[0].(map[string]any)
	if choice["finish_reason"] != "length" {
		t.Errorf("finish_reason = %v, want length", choice["finish_reason"])
	}
	if got := choice["message"].(map[string]any)["content"]; got != "echo:" {
		t.Errorf("content = %v, want one token", got)
	}
}

func TestOpenAIChatErrors(t *testing.T) {
	_, base := startOpenAI(t)
	tests := []struct {
		name   string
		body   string
		status int
		param  any
	}{
		{"invalid json", `{"model":`, 400, nil},
		{"no model", `{"messages":[{"role":"user","content":"hi"}]}`, 400, nil},
		{"no messages", `{"model":"gpt-4o","messages":[]}`, 400, "messages"},
		{"stream options without stream", chatBody(testModel, false, `"stream_options":{"include_usage":true}`), 400, "stream_options"},
		{"max tokens zero", chatBody(testModel, false, `"max_tokens":0`), 400, "max_tokens"},
		{"unknown model", chatBody("gpt-99", false, ""), 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, "POST", base+"/chat/completions", tt.body, "Authorization", "Bearer "+canary)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.status, r.body)
			}
			if got := errorField(t, r, "param"); got != tt.param {
				t.Errorf("param = %v, want %v", got, tt.param)
			}
		})
	}
}

func TestOpenAIChatUnknownModel(t *testing.T) {
	_, base := startOpenAI(t)
	r := call(t, "POST", base+"/chat/completions", chatBody("gpt-99", false, ""), "Authorization", "Bearer "+canary)
	if errorField(t, r, "code") != "model_not_found" {
		t.Errorf("code = %v, want model_not_found", errorField(t, r, "code"))
	}
	if msg := errorField(t, r, "message").(string); !strings.Contains(msg, "`gpt-99`") {
		t.Errorf("message = %q, want it to name the model", msg)
	}
}

// streamChunks posts a streamed chat and returns its events.
func streamChunks(t *testing.T, url, key, body string) []string {
	t.Helper()
	r := call(t, "POST", url, body, "Authorization", "Bearer "+key)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content type = %q, want text/event-stream", ct)
	}
	evs, err := events(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("events = %q, want them to end with [DONE]", evs)
	}
	return evs
}

type chunk struct {
	Object  string `json:"object"`
	Choices []struct {
		Delta        struct{ Content string }
		FinishReason *string `json:"finish_reason"`
	}
	Usage json.RawMessage `json:"usage"`
}

func parseChunks(t *testing.T, evs []string) []chunk {
	t.Helper()
	var out []chunk
	for _, ev := range evs[:len(evs)-1] {
		var c chunk
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		out = append(out, c)
	}
	return out
}

func TestOpenAIChatStream(t *testing.T) {
	_, base := startOpenAI(t)
	chunks := parseChunks(t, streamChunks(t, base+"/chat/completions", canary, chatBody(testModel, true, "")))
	var text strings.Builder
	for _, c := range chunks {
		if c.Object != "chat.completion.chunk" {
			t.Errorf("object = %q, want chat.completion.chunk", c.Object)
		}
		if c.Usage != nil {
			t.Errorf("chunk has usage %s though the client did not ask", c.Usage)
		}
		text.WriteString(c.Choices[0].Delta.Content)
	}
	if text.String() != "echo: hello there" {
		t.Errorf("streamed text = %q, want %q", text.String(), "echo: hello there")
	}
	last := chunks[len(chunks)-1].Choices[0].FinishReason
	if last == nil || *last != "stop" {
		t.Errorf("last finish_reason = %v, want stop", last)
	}
}

func TestOpenAIChatStreamUsage(t *testing.T) {
	_, base := startOpenAI(t)
	body := chatBody(testModel, true, `"stream_options":{"include_usage":true}`)
	chunks := parseChunks(t, streamChunks(t, base+"/chat/completions", canary, body))
	for _, c := range chunks[:len(chunks)-1] {
		if string(c.Usage) != "null" {
			t.Errorf("chunk usage = %s, want null", c.Usage)
		}
	}
	final := chunks[len(chunks)-1]
	if len(final.Choices) != 0 {
		t.Errorf("usage chunk has %d choices, want none", len(final.Choices))
	}
	var usage struct {
		CompletionTokens int `json:"completion_tokens"`
	}
	if err := json.Unmarshal(final.Usage, &usage); err != nil || usage.CompletionTokens != 3 {
		t.Errorf("final usage = %s, want 3 completion tokens", final.Usage)
	}
}

func TestOpenAIEmbeddings(t *testing.T) {
	_, base := startOpenAI(t)
	post := func(body string) response {
		return call(t, "POST", base+"/embeddings", body, "Authorization", "Bearer "+canary)
	}
	r := post(`{"model":"text-embedding-3-small","input":["alpha","beta"]}`)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	var got struct {
		Data []struct {
			Index     int
			Embedding []float32
		}
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Data) != 2 || len(got.Data[0].Embedding) != 1536 {
		t.Fatalf("got %d embeddings, want 2 of 1536 dimensions", len(got.Data))
	}
	var norm float64
	for _, v := range got.Data[0].Embedding {
		norm += float64(v) * float64(v)
	}
	if math.Abs(norm-1) > 1e-3 {
		t.Errorf("squared norm = %v, want 1", norm)
	}

	again := post(`{"model":"text-embedding-3-small","input":"alpha","encoding_format":"base64","dimensions":1536}`)
	var b64 struct{ Data []struct{ Embedding string } }
	if err := json.Unmarshal(again.body, &b64); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(b64.Data[0].Embedding)
	if err != nil {
		t.Fatal(err)
	}
	if first := math.Float32frombits(binary.LittleEndian.Uint32(raw)); first != got.Data[0].Embedding[0] {
		t.Errorf("base64 embedding starts %v, want %v (the same input)", first, got.Data[0].Embedding[0])
	}

	if r := post(`{"model":"text-embedding-3-small","input":[]}`); r.status != http.StatusBadRequest {
		t.Errorf("empty input status = %d, want 400", r.status)
	}
	if r := post(`{"model":"nope","input":"x"}`); r.status != http.StatusNotFound {
		t.Errorf("unknown model status = %d, want 404", r.status)
	}
}

func TestOpenAIUnknownPath(t *testing.T) {
	_, base := startOpenAI(t)
	r := call(t, "POST", base+"/models", "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", r.status)
	}
	if msg := errorField(t, r, "message"); msg != "Invalid URL (POST /v1/models)" {
		t.Errorf("message = %v", msg)
	}
}

func TestOpenAIChatContentParts(t *testing.T) {
	_, base := startOpenAI(t)
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"hello"},` +
		`{"type":"image_url","image_url":{"url":"data:,"}},{"type":"text","text":"parts"}]}]}`
	r := call(t, "POST", base+"/chat/completions", body, "Authorization", "Bearer "+canary)
	msg := r.json(t)["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	if msg["content"] != "echo: hello parts" {
		t.Errorf("content = %v, want the text parts echoed", msg["content"])
	}
}

func TestAddEmptyKeyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("AddKey(\"\") did not panic")
		}
	}()
	fakeprovider.New(fakeprovider.Options{}).AddKey("")
}
