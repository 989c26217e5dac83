package upstream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/upstream"
	"github.com/keyturn/keyturn/keystore"
)

func TestChatNotStreamed(t *testing.T) {
	e := newEnv(t)
	version := e.addSecret(secretID, canary, "openai", e.openaiURL())

	res := e.chat("")
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", res.status, res.body)
	}
	var body struct {
		Object string `json:"object"`
		Model  string `json:"model"`
	}
	if err := json.Unmarshal([]byte(res.body), &body); err != nil {
		t.Fatalf("decode the completion: %v", err)
	}
	if body.Object != "chat.completion" {
		t.Errorf("object = %q, want chat.completion", body.Object)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if res.header.Get("X-Request-Id") == "" {
		t.Error("the provider's X-Request-Id did not reach the client")
	}

	rec := e.lastRequest()
	if rec.Path != fakeprovider.OpenAIPrefix+"/chat/completions" {
		t.Errorf("upstream path = %q", rec.Path)
	}
	if !rec.Key.Equal(keystore.NewSecret(canary)) {
		t.Error("the provider did not get the secret's key")
	}
	o := e.outcome()
	want := upstream.Outcome{SecretID: secretID, Upstream: true, Attempts: 1, VersionID: version,
		Stage: keystore.StageCurrent, Provider: "openai", Endpoint: upstream.ChatCompletions, Status: http.StatusOK}
	o.Duration = 0
	if o != want {
		t.Errorf("outcome = %+v, want %+v", o, want)
	}
}

func TestModelRewriteKeepsOtherBytes(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	body := "{ \"temperature\" : 0.5,\n \"model\":\t\"" + publicModel + "\" ,\"x_custom\":{\"a\":[1, 2]},\n" +
		`"messages":[{"role":"user","content":"hi <b>&amp;</b>"}] }`

	res := e.post("/v1/chat/completions", body, nil)
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", res.status, res.body)
	}
	want := strings.Replace(body, `"`+publicModel+`"`, `"`+upstreamModel+`"`, 1)
	if got := string(e.lastRequest().Body); got != want {
		t.Errorf("upstream body =\n%s\nwant\n%s", got, want)
	}
}

func TestClientCredentialsNeverReachProvider(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	header := http.Header{
		"Authorization":       {"Bearer kt-client-key"},
		"Proxy-Authorization": {"Basic Y2xpZW50OnNlY3JldA=="},
		"Cookie":              {"session=abc"},
		"X-Api-Key":           {"kt-client-key"},
		"X-Goog-Api-Key":      {"kt-client-key"},
		"Api-Key":             {"kt-client-key"},
		"Openai-Organization": {"org-client"},
		"Openai-Project":      {"proj-client"},
		"Anthropic-Api-Key":   {"kt-client-key"},
		"X-Forwarded-For":     {"203.0.113.7"},
		"X-Forwarded-Host":    {"router.example"},
		"Forwarded":           {"for=203.0.113.7"},
		"X-Real-Ip":           {"203.0.113.7"},
		"X-Router-Token":      {"kt-client-key"},
		"Accept-Encoding":     {"gzip, br"},
		"Openai-Beta":         {"assistants=v2"},
		"Idempotency-Key":     {"req-1"},
	}

	res := e.post("/v1/chat/completions", chatBody(""), header)
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", res.status, res.body)
	}
	rec := e.lastRequest()
	for _, name := range []string{"Proxy-Authorization", "Cookie", "X-Api-Key", "X-Goog-Api-Key", "Api-Key",
		"Openai-Organization", "Openai-Project", "Anthropic-Api-Key", "X-Forwarded-For", "X-Forwarded-Host",
		"Forwarded", "X-Real-Ip", "X-Router-Token"} {
		if values := rec.Header.Values(name); len(values) > 0 {
			t.Errorf("the client's %s reached the provider", name)
		}
	}
	if !rec.Key.Equal(keystore.NewSecret(canary)) {
		t.Error("the provider's Authorization is not the secret's key")
	}
	if got := rec.Header.Values("Authorization"); len(got) != 1 {
		t.Errorf("the provider got %d Authorization headers, want 1", len(got))
	}
	if got := rec.Header.Get("Accept-Encoding"); got != "identity" {
		t.Errorf("Accept-Encoding = %q, want identity", got)
	}
	for name, want := range map[string]string{"Openai-Beta": "assistants=v2", "Idempotency-Key": "req-1"} {
		if got := rec.Header.Get(name); got != want {
			t.Errorf("%s = %q, want the client's %q", name, got, want)
		}
	}
}

func TestResponsesAndEmbeddings(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	e.modelOf = func(r *http.Request) string {
		if r.URL.Path == "/v1/embeddings" {
			return "text-embedding-3-small"
		}
		return upstreamModel
	}

	res := e.post("/v1/responses", `{"model": "`+publicModel+`", "input": "hello"}`, nil)
	if res.status != http.StatusOK {
		t.Fatalf("responses: status = %d, want 200: %s", res.status, res.body)
	}
	if got := e.lastRequest().Path; got != fakeprovider.OpenAIPrefix+"/responses" {
		t.Errorf("responses: upstream path = %q", got)
	}
	res = e.post("/v1/embeddings", `{"model": "`+publicModel+`", "input": "hello"}`, nil)
	if res.status != http.StatusOK {
		t.Fatalf("embeddings: status = %d, want 200: %s", res.status, res.body)
	}
	if got := e.lastRequest().Path; got != fakeprovider.OpenAIPrefix+"/embeddings" {
		t.Errorf("embeddings: upstream path = %q", got)
	}
}

func TestCompatibleEndpointsOfGeminiAndAnthropic(t *testing.T) {
	e := newEnv(t)
	e.addSecret("keyturn/test/gemini", canary, "gemini", e.fakeURL+fakeprovider.GeminiPrefix)
	e.addSecret("keyturn/test/anthropic", canary+"-anthropic", "anthropic", e.fakeURL+fakeprovider.AnthropicPrefix)
	cases := []struct {
		secret, model, path, upstreamPath string
	}{
		{"keyturn/test/gemini", "gemini-2.5-flash", "/v1/chat/completions", fakeprovider.GeminiOpenAIPrefix + "/chat/completions"},
		{"keyturn/test/gemini", "gemini-embedding-001", "/v1/embeddings", fakeprovider.GeminiOpenAIPrefix + "/embeddings"},
		{"keyturn/test/anthropic", "claude-sonnet-4-5-20250929", "/v1/chat/completions", fakeprovider.AnthropicPrefix + "/chat/completions"},
	}
	for _, c := range cases {
		e.secretOf = func(*http.Request) string { return c.secret }
		e.modelOf = func(*http.Request) string { return c.model }
		body := chatBody("")
		if c.path == "/v1/embeddings" {
			body = `{"model": "` + publicModel + `", "input": "hello"}`
		}
		res := e.post(c.path, body, nil)
		if res.status != http.StatusOK {
			t.Errorf("%s %s: status = %d, want 200: %s", c.secret, c.path, res.status, res.body)
			continue
		}
		if got := e.lastRequest().Path; got != c.upstreamPath {
			t.Errorf("%s %s: upstream path = %q, want %q", c.secret, c.path, got, c.upstreamPath)
		}
	}
}

func TestUnsupportedEndpoint(t *testing.T) {
	e := newEnv(t)
	e.addSecret("keyturn/test/anthropic", canary, "anthropic", e.fakeURL+fakeprovider.AnthropicPrefix)
	e.secretOf = func(*http.Request) string { return "keyturn/test/anthropic" }

	for _, path := range []string{"/v1/embeddings", "/v1/responses"} {
		res := e.post(path, `{"model": "`+publicModel+`", "input": "hello"}`, nil)
		if res.status != http.StatusBadRequest {
			t.Fatalf("%s: status = %d, want 400: %s", path, res.status, res.body)
		}
		msg, typ, code := apiError(t, res.body)
		if typ != "invalid_request_error" || code != "unsupported_endpoint" {
			t.Errorf("%s: type, code = %q, %q", path, typ, code)
		}
		for _, want := range []string{publicModel, "anthropic", path, "/v1/chat/completions"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message %q does not name %q", path, msg, want)
			}
		}
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("the stand-in got %d requests, want none", n)
	}
}

// badBodies are client bodies that ParseBody rejects, with the cause it
// wraps, the error code WriteBodyError sends and a part of the message.
var badBodies = []struct {
	name, body string
	cause      error
	code, want string
}{
	{"not JSON", `model=gpt`, upstream.ErrInvalidBody, "invalid_request_body", "not a JSON object"},
	{"array", `[{"model": "x"}]`, upstream.ErrInvalidBody, "invalid_request_body", "not a JSON object"},
	{"truncated", `{"model": "x"`, upstream.ErrInvalidBody, "invalid_request_body", "ends early"},
	{"trailing text", `{"model": "x"} {}`, upstream.ErrInvalidBody, "invalid_request_body", "text follows"},
	{"two models", `{"model": "a", "model": "b"}`, upstream.ErrInvalidBody, "invalid_request_body", `more than one "model"`},
	{"no model", `{"messages": []}`, upstream.ErrNoModel, "missing_model", `no "model"`},
	{"model in capitals", `{"MODEL": "gpt-4o"}`, upstream.ErrInvalidBody, "invalid_request_body",
		`has a member "MODEL": send the model only as the lower-case "model" member`},
	{"model and a capitalised model", `{"model": "fast", "Model": "other"}`, upstream.ErrInvalidBody,
		"invalid_request_body", `has a member "Model"`},
	{"capitalised model after model", `{"model": "fast", "messages": [], "MODEL": "claude"}`,
		upstream.ErrInvalidBody, "invalid_request_body", `has a member "MODEL"`},
	{"mixed-case model first", `{"mOdEl": "claude", "model": "fast"}`, upstream.ErrInvalidBody,
		"invalid_request_body", `has a member "mOdEl"`},
	{"escaped capital", `{"model": "fast", "\u004dODEL": "claude"}`, upstream.ErrInvalidBody,
		"invalid_request_body", `has a member "MODEL"`},
	{"escaped lower-case capital", `{"model": "fast", "\u004dodel": "claude"}`, upstream.ErrInvalidBody,
		"invalid_request_body", `has a member "Model"`},
	{"escaped variant alone", `{"M\u006fD\u0065L": "claude"}`, upstream.ErrInvalidBody,
		"invalid_request_body", `has a member "MoDeL"`},
	{"model not a string", `{"model": 4}`, upstream.ErrNoModel, "missing_model", `"model" is not a non-empty string`},
	{"empty model", `{"model": ""}`, upstream.ErrNoModel, "missing_model", `"model" is not a non-empty string`},
}

func TestBadBody(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	for _, c := range badBodies {
		res := e.post("/v1/chat/completions", c.body, nil)
		if res.status != http.StatusBadRequest {
			t.Errorf("%s: status = %d, want 400: %s", c.name, res.status, res.body)
			continue
		}
		msg, _, code := apiError(t, res.body)
		if code != c.code {
			t.Errorf("%s: code = %q, want %q", c.name, code, c.code)
		}
		if !strings.Contains(msg, c.want) {
			t.Errorf("%s: message %q does not contain %q", c.name, msg, c.want)
		}
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("the stand-in got %d requests, want none", n)
	}
}

func TestParseBody(t *testing.T) {
	bodies := []string{
		`{"model": "gpt-4o"}`,
		` {"messages": [], "model": "gpt-4o", "models": "other", "mode": "x"} `,
		`{"mod\u0065l": "gpt-4o", "x": {"model": "nested"}, "y": "\"model\""}`,
		// Only top-level members name the model: a nested "MODEL" and a
		// string that spells one are the client's content.
		`{"model": "gpt-4o", "x": {"MODEL": "nested"}, "y": "\"MODEL\": 1"}`,
		// A name that folds to "model" only with an escape it does not
		// have stays another member.
		`{"model": "gpt-4o", "MODEL\u0000": "x", "m\u00f6del": "y"}`,
	}
	for _, body := range bodies {
		got, err := upstream.ParseBody([]byte(body))
		if err != nil || got.Model() != "gpt-4o" {
			t.Errorf("ParseBody(%s) = %q, %v; want gpt-4o", body, got.Model(), err)
		}
	}
	for _, c := range badBodies {
		got, err := upstream.ParseBody([]byte(c.body))
		if err == nil {
			t.Errorf("%s: ParseBody = %q, want an error", c.name, got.Model())
			continue
		}
		if !errors.Is(err, c.cause) {
			t.Errorf("%s: error %q does not wrap %v", c.name, err, c.cause)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not contain %q", c.name, err, c.want)
		}
	}
}

func TestStreamFlushesEachEvent(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	gate := make(chan struct{})
	e.fake.SetReply(fakeprovider.Reply{Content: "one two three", Chunks: 3, Gate: gate})

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.router+"/v1/chat/completions",
		strings.NewReader(chatBody(`"stream": true`)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type = %q, want text/event-stream", ct)
	}

	// The stand-in sends each event only after the gate lets it, so a
	// proxy that held events back would hang here.
	r := bufio.NewReader(res.Body)
	gate <- struct{}{}
	if first := readEvent(t, r); !strings.Contains(first, `"role":"assistant"`) {
		t.Errorf("first event = %q, want the role chunk", first)
	}
	gate <- struct{}{}
	if second := readEvent(t, r); !strings.Contains(second, `"content":"one`) {
		t.Errorf("second event = %q, want the first piece", second)
	}
	close(gate)
	var rest []string
	for {
		event := readEvent(t, r)
		rest = append(rest, event)
		if event == "data: [DONE]\n\n" {
			break
		}
	}
	if len(rest) < 2 {
		t.Errorf("after the first two events came %d, want the pieces, the finish chunk and [DONE]", len(rest))
	}
}

func TestStreamLargeEvent(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	content := strings.Repeat("0123456789abcdef", 5<<20/16)
	e.fake.SetReply(fakeprovider.Reply{Content: content, Chunks: 1})

	for _, extra := range []string{`"stream": true`, `"stream": true, "stream_options": {"include_usage": true}`} {
		res := e.chat(extra)
		if res.status != http.StatusOK {
			t.Fatalf("%s: status = %d: %.300s", extra, res.status, res.body)
		}
		found := false
		for _, data := range events(res.body) {
			var chunk struct {
				Choices []struct {
					Delta struct {
						Content string `json:"content"`
					} `json:"delta"`
				} `json:"choices"`
			}
			if json.Unmarshal([]byte(data), &chunk) == nil && len(chunk.Choices) > 0 && len(chunk.Choices[0].Delta.Content) > 1000 {
				found = true
				if chunk.Choices[0].Delta.Content != content {
					t.Errorf("%s: the 5 MB piece changed: %d bytes arrived", extra, len(chunk.Choices[0].Delta.Content))
				}
			}
		}
		if !found {
			t.Errorf("%s: no event carried the 5 MB piece", extra)
		}
	}
}

func TestStreamUsage(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	e.addSecret("keyturn/test/openrouter", canary+"-or", "openrouter", e.fakeURL+fakeprovider.OpenRouterPrefix)
	cases := []struct {
		name, secret, extra string
		wantUsage           bool
	}{
		{"openai without usage", secretID, `"stream": true`, false},
		{"openai with usage", secretID, `"stream": true, "stream_options": {"include_usage": true}`, true},
		{"openrouter without usage", "keyturn/test/openrouter", `"stream": true`, false},
		{"openrouter usage off", "keyturn/test/openrouter", `"stream": true, "stream_options": {"include_usage": false}`, false},
		{"openrouter with usage", "keyturn/test/openrouter", `"stream": true, "stream_options": {"include_usage": true}`, true},
	}
	for _, c := range cases {
		e.secretOf = func(*http.Request) string { return c.secret }
		res := e.chat(c.extra)
		if res.status != http.StatusOK {
			t.Fatalf("%s: status = %d: %s", c.name, res.status, res.body)
		}
		data := events(res.body)
		if len(data) == 0 || data[len(data)-1] != "[DONE]" {
			t.Errorf("%s: the stream does not end with data: [DONE]: %q", c.name, data)
		}
		usageChunks, usageFields := 0, 0
		for _, d := range data[:max(len(data)-1, 0)] {
			var chunk map[string]json.RawMessage
			if err := json.Unmarshal([]byte(d), &chunk); err != nil {
				t.Fatalf("%s: event %q is not a JSON object: %v", c.name, d, err)
			}
			if _, ok := chunk["usage"]; ok {
				usageFields++
			}
			if string(chunk["choices"]) == "[]" {
				usageChunks++
			}
		}
		if c.wantUsage && usageChunks != 1 {
			t.Errorf("%s: %d usage-only chunks, want 1", c.name, usageChunks)
		}
		if !c.wantUsage && (usageChunks != 0 || usageFields != 0) {
			t.Errorf("%s: %d usage-only chunks and %d usage fields reached a client that did not ask",
				c.name, usageChunks, usageFields)
		}
	}
}

func TestStreamCutReachesClient(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	e.fake.SetFault("POST "+fakeprovider.OpenAIPrefix+"/chat/completions", fakeprovider.Fault{CutStreamAfter: 2})

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.router+"/v1/chat/completions",
		strings.NewReader(chatBody(`"stream": true`)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err == nil {
		t.Errorf("a stream the provider cut ended cleanly for the client: %q", data)
	}
	if strings.Contains(string(data), "[DONE]") {
		t.Error("a cut stream carried [DONE]")
	}
	if o := e.outcome(); o.Status != http.StatusOK {
		t.Errorf("outcome status = %d, want the 200 that was sent", o.Status)
	}
}

func TestServeWithoutParsedBody(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	e.proxy.Serve(w, r, upstream.Request{Endpoint: upstream.ChatCompletions, SecretID: secretID, Model: upstreamModel})
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500: %s", w.Code, w.Body)
	}
	if _, _, code := apiError(t, w.Body.String()); code != "internal_error" {
		t.Errorf("code = %q, want internal_error", code)
	}
	e.outcome()
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("the stand-in got %d requests, want none", n)
	}
}
