package fakeprovider_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

type responseObject struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	CreatedAt int64  `json:"created_at"`
	Status    string `json:"status"`
	Model     string `json:"model"`
	Output    []struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Role    string `json:"role"`
		Status  string `json:"status"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"output"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Usage *struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func (o responseObject) text(t *testing.T) string {
	t.Helper()
	if len(o.Output) != 1 || o.Output[0].Type != "message" || len(o.Output[0].Content) != 1 {
		t.Fatalf("output = %+v, want one message with one part", o.Output)
	}
	part := o.Output[0].Content[0]
	if part.Type != "output_text" {
		t.Errorf("part type = %q, want output_text", part.Type)
	}
	return part.Text
}

func decodeResponse(t *testing.T, data []byte) responseObject {
	t.Helper()
	var o responseObject
	if err := json.Unmarshal(data, &o); err != nil {
		t.Fatalf("response object: %v\n%s", err, data)
	}
	return o
}

func responsesBody(model string, stream bool, extra string) string {
	body := `{"model":"` + model + `","input":"hello there","stream":` + map[bool]string{true: "true", false: "false"}[stream]
	if extra != "" {
		body += "," + extra
	}
	return body + "}"
}

func TestOpenAIResponses(t *testing.T) {
	fixed := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p, url := fakeprovider.Start(t, fakeprovider.Options{Clock: func() time.Time { return fixed }})
	p.AddKey(canary)
	r := call(t, "POST", url+fakeprovider.OpenAIPrefix+"/responses", responsesBody(testModel, false, ""),
		"Authorization", "Bearer "+canary)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", r.status, r.body)
	}
	o := decodeResponse(t, r.body)
	if !strings.HasPrefix(o.ID, "resp_") || o.Object != "response" || o.Status != "completed" {
		t.Errorf("id, object, status = %q, %q, %q; want resp_…, response, completed", o.ID, o.Object, o.Status)
	}
	if o.Model != testModel || o.CreatedAt != fixed.Unix() {
		t.Errorf("model, created_at = %q, %d", o.Model, o.CreatedAt)
	}
	if got := o.text(t); got != "echo: hello there" {
		t.Errorf("text = %q, want the echo", got)
	}
	if o.Output[0].Role != "assistant" || o.Output[0].Status != "completed" {
		t.Errorf("message = %+v, want a completed assistant message", o.Output[0])
	}
	if o.Usage == nil || o.Usage.OutputTokens != 3 || o.Usage.TotalTokens != o.Usage.InputTokens+3 {
		t.Errorf("usage = %+v, want 3 output tokens in the total", o.Usage)
	}
}

func TestResponsesInputItems(t *testing.T) {
	_, base := startOpenAI(t)
	body := `{"model":"gpt-4o","instructions":"be brief","input":[` +
		`{"role":"user","content":"first"},` +
		`{"type":"message","role":"user","content":[{"type":"input_text","text":"second"},{"type":"input_text","text":"part"}]}]}`
	r := call(t, "POST", base+"/responses", body, "Authorization", "Bearer "+canary)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	if got := decodeResponse(t, r.body).text(t); got != "echo: second part" {
		t.Errorf("text = %q, want the last user message echoed", got)
	}
}

func TestResponsesErrors(t *testing.T) {
	_, base := startOpenAI(t)
	tests := []struct {
		name   string
		body   string
		status int
		code   any
		param  any
	}{
		{"invalid json", `{"model":`, 400, nil, nil},
		{"no model", `{"input":"hi"}`, 400, "missing_required_parameter", "model"},
		{"small max_output_tokens", responsesBody(testModel, false, `"max_output_tokens":15`), 400, "integer_below_min_value", "max_output_tokens"},
		{"input of the wrong type", `{"model":"gpt-4o","input":42}`, 400, "invalid_type", "input"},
		{"unknown model", responsesBody("gpt-99", false, ""), 400, "model_not_found", "model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, "POST", base+"/responses", tt.body, "Authorization", "Bearer "+canary)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.status, r.body)
			}
			if got := errorField(t, r, "code"); got != tt.code {
				t.Errorf("code = %v, want %v", got, tt.code)
			}
			if got := errorField(t, r, "param"); got != tt.param {
				t.Errorf("param = %v, want %v", got, tt.param)
			}
		})
	}
	r := call(t, "POST", base+"/responses", responsesBody(testModel, false, ""), "Authorization", "Bearer "+otherKey)
	if r.status != http.StatusUnauthorized || errorField(t, r, "code") != "invalid_api_key" {
		t.Errorf("bad key = %d %s, want 401 invalid_api_key", r.status, r.body)
	}
}

func TestResponsesIncomplete(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetReply(fakeprovider.Reply{Content: strings.Repeat("word ", 40), Chunks: 40})
	r := call(t, "POST", base+"/responses", responsesBody(testModel, false, `"max_output_tokens":16`),
		"Authorization", "Bearer "+canary)
	o := decodeResponse(t, r.body)
	if o.Status != "incomplete" || o.IncompleteDetails == nil || o.IncompleteDetails.Reason != "max_output_tokens" {
		t.Errorf("status = %q, incomplete_details = %+v; want incomplete for max_output_tokens", o.Status, o.IncompleteDetails)
	}
	if o.Usage == nil || o.Usage.OutputTokens != 16 {
		t.Errorf("usage = %+v, want 16 output tokens", o.Usage)
	}
}

type namedEvent struct {
	name string
	data map[string]any
}

// namedEvents parses a Responses stream: "event:" and "data:" pairs.
func namedEvents(t *testing.T, body []byte) []namedEvent {
	t.Helper()
	var out []namedEvent
	for block := range strings.SplitSeq(strings.TrimSpace(string(body)), "\n\n") {
		name, data, ok := strings.Cut(block, "\n")
		if !ok || !strings.HasPrefix(name, "event: ") || !strings.HasPrefix(data, "data: ") {
			t.Fatalf("event %q is not an event: line and a data: line", block)
		}
		ev := namedEvent{name: strings.TrimPrefix(name, "event: ")}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(data, "data: ")), &ev.data); err != nil {
			t.Fatalf("event %q: %v", block, err)
		}
		out = append(out, ev)
	}
	return out
}

func checkResponsesStream(t *testing.T, r response) []namedEvent {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content type = %q, want text/event-stream", ct)
	}
	if bytes.Contains(r.body, []byte("[DONE]")) {
		t.Error("the stream carries [DONE], which the Responses API does not send")
	}
	evs := namedEvents(t, r.body)
	for i, ev := range evs {
		if ev.data["type"] != ev.name {
			t.Errorf("event %d: type %v under event name %q", i, ev.data["type"], ev.name)
		}
		if ev.data["sequence_number"] != float64(i) {
			t.Errorf("event %d: sequence_number = %v", i, ev.data["sequence_number"])
		}
	}
	return evs
}

func TestOpenAIResponsesStream(t *testing.T) {
	_, base := startOpenAI(t)
	r := call(t, "POST", base+"/responses", responsesBody(testModel, true, ""), "Authorization", "Bearer "+canary)
	evs := checkResponsesStream(t, r)
	if evs[0].name != "response.created" {
		t.Errorf("first event = %q, want response.created", evs[0].name)
	}
	var text strings.Builder
	for _, ev := range evs {
		if ev.name == "response.output_text.delta" {
			text.WriteString(ev.data["delta"].(string))
		}
	}
	if text.String() != "echo: hello there" {
		t.Errorf("deltas = %q, want the echo", text.String())
	}
	last := evs[len(evs)-1]
	if last.name != "response.completed" {
		t.Fatalf("last event = %q, want response.completed", last.name)
	}
	final, _ := json.Marshal(last.data["response"])
	o := decodeResponse(t, final)
	if o.Status != "completed" || o.text(t) != "echo: hello there" || o.Usage == nil {
		t.Errorf("completed response = %s, want the whole text and usage", final)
	}
}

func TestOpenRouterResponses(t *testing.T) {
	_, _, base := startOpenRouter(t)
	r := call(t, "POST", base+"/responses", responsesBody(testModel, false, ""), "Authorization", "Bearer "+canary)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	if o := decodeResponse(t, r.body); o.Object != "response" || o.text(t) != "echo: hello there" {
		t.Errorf("response = %s", r.body)
	}
	r = call(t, "POST", base+"/responses", responsesBody(testModel, true, ""), "Authorization", "Bearer "+canary)
	evs := checkResponsesStream(t, r)
	if last := evs[len(evs)-1].name; last != "response.completed" {
		t.Errorf("last event = %q, want response.completed", last)
	}
}

func TestOpenRouterResponsesErrors(t *testing.T) {
	p, _, base := startOpenRouter(t)
	body := responsesBody(testModel, false, "")
	checks := []struct {
		name   string
		key    string
		body   string
		status int
	}{
		{"unknown key", otherKey, body, 401},
		{"management key", mgmtKey, body, 403},
		{"unknown model", canary, responsesBody("nope", false, ""), 400},
		{"no model", canary, `{"input":"hi"}`, 400},
	}
	for _, c := range checks {
		r := call(t, "POST", base+"/responses", c.body, "Authorization", "Bearer "+c.key)
		if r.status != c.status || errorField(t, r, "code") != float64(c.status) {
			t.Errorf("%s = %d %s, want %d in OpenRouter's shape", c.name, r.status, r.body, c.status)
		}
	}
	p.SetKeyQuota(canary, true)
	if r := call(t, "POST", base+"/responses", body, "Authorization", "Bearer "+canary); r.status != 402 {
		t.Errorf("exhausted key = %d, want 402", r.status)
	}
}

func TestOpenRouterEmbeddings(t *testing.T) {
	p, _, base := startOpenRouter(t)
	body := `{"model":"text-embedding-3-small","input":"alpha"}`
	r := call(t, "POST", base+"/embeddings", body, "Authorization", "Bearer "+canary)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	var got struct {
		Object string
		Data   []struct{ Embedding []float32 }
	}
	if err := json.Unmarshal(r.body, &got); err != nil || got.Object != "list" || len(got.Data) != 1 {
		t.Fatalf("body = %s, want a list of one embedding", r.body)
	}
	if len(got.Data[0].Embedding) != 1536 {
		t.Errorf("dimensions = %d, want 1536", len(got.Data[0].Embedding))
	}
	for _, c := range []struct {
		name, key, body string
		status          int
	}{
		{"unknown key", otherKey, body, 401},
		{"management key", mgmtKey, body, 403},
		{"unknown model", canary, `{"model":"nope","input":"x"}`, 400},
		{"empty input", canary, `{"model":"text-embedding-3-small","input":[]}`, 400},
	} {
		if r := call(t, "POST", base+"/embeddings", c.body, "Authorization", "Bearer "+c.key); r.status != c.status {
			t.Errorf("%s = %d %s, want %d", c.name, r.status, r.body, c.status)
		}
	}
	p.SetKeyQuota(canary, true)
	if r := call(t, "POST", base+"/embeddings", body, "Authorization", "Bearer "+canary); r.status != 402 {
		t.Errorf("exhausted key = %d, want 402", r.status)
	}
}
