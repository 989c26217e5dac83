package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// chatRequest is the part of an OpenAI-style chat completion request that
// the stand-in reads. OpenAI and OpenRouter share it.
type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int `json:"max_tokens"`
	MaxCompletionTokens *int `json:"max_completion_tokens"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// text returns the message's text: a string content, or the text parts of
// an array content.
func (m chatMessage) text() string {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(m.Content, &parts) != nil {
		return ""
	}
	var texts []string
	for _, part := range parts {
		if part.Type == "text" {
			texts = append(texts, part.Text)
		}
	}
	return strings.Join(texts, " ")
}

// chatProblem is the reason a chat request is invalid, in OpenAI's terms.
type chatProblem struct {
	code  any // nil is sent as null
	param any
	msg   string
}

// problem returns what is wrong with c as OpenAI reports it, or nil.
func (c *chatRequest) problem() *chatProblem {
	below := func(param string, n int) *chatProblem {
		return &chatProblem{"integer_below_min_value", param, fmt.Sprintf(
			"Invalid '%s': integer below minimum value. Expected a value >= 1, but got %d instead.", param, n)}
	}
	switch {
	case c.Model == "":
		return &chatProblem{nil, nil, "you must provide a model parameter"}
	case len(c.Messages) == 0:
		return &chatProblem{"empty_array", "messages",
			"Invalid 'messages': empty array. Expected an array with minimum length 1."}
	case c.StreamOptions != nil && !c.Stream:
		return &chatProblem{"invalid_value", "stream_options",
			"The 'stream_options' parameter is only allowed when 'stream' is enabled."}
	case c.MaxTokens != nil && *c.MaxTokens < 1:
		return below("max_tokens", *c.MaxTokens)
	case c.MaxCompletionTokens != nil && *c.MaxCompletionTokens < 1:
		return below("max_completion_tokens", *c.MaxCompletionTokens)
	}
	return nil
}

// maxTokens returns the completion token limit the request sets, or 0.
func (c *chatRequest) maxTokens() int {
	switch {
	case c.MaxCompletionTokens != nil:
		return *c.MaxCompletionTokens
	case c.MaxTokens != nil:
		return *c.MaxTokens
	}
	return 0
}

// completion is a deterministic reply: the last user message echoed,
// one token a word.
type completion struct {
	id           string
	created      int64
	model        string
	tokens       []string
	finish       string
	promptTokens int
}

func (p *Provider) complete(req *chatRequest) completion {
	c := completion{
		id:      p.nextID("chatcmpl-fake"),
		created: p.now().Unix(),
		model:   req.Model,
		finish:  "stop",
	}
	last := ""
	for _, m := range req.Messages {
		text := m.text()
		c.promptTokens += len(strings.Fields(text)) + 1
		if m.Role == "user" {
			last = text
		}
	}
	reply := "Hello from the keyturn stand-in provider."
	if strings.TrimSpace(last) != "" {
		reply = "echo: " + last
	}
	c.tokens = strings.Fields(reply)
	if limit := req.maxTokens(); limit > 0 && limit < len(c.tokens) {
		c.tokens, c.finish = c.tokens[:limit], "length"
	}
	return c
}

func (c completion) usage() map[string]int {
	return map[string]int{
		"prompt_tokens":     c.promptTokens,
		"completion_tokens": len(c.tokens),
		"total_tokens":      c.promptTokens + len(c.tokens),
	}
}

// body returns the non-streamed chat.completion object.
func (c completion) body() map[string]any {
	return map[string]any{
		"id":      c.id,
		"object":  "chat.completion",
		"created": c.created,
		"model":   c.model,
		"choices": []any{map[string]any{
			"index": 0,
			"message": map[string]any{
				"role":    "assistant",
				"content": strings.Join(c.tokens, " "),
				"refusal": nil,
			},
			"logprobs":      nil,
			"finish_reason": c.finish,
		}},
		"usage":              c.usage(),
		"system_fingerprint": "fp_fakeprovider",
	}
}

// chunk returns one chat.completion.chunk. With withUsage it carries
// "usage": null, as OpenAI's chunks do when the client asked for usage.
func (c completion) chunk(delta map[string]any, finish any, withUsage bool) map[string]any {
	ch := map[string]any{
		"id":                 c.id,
		"object":             "chat.completion.chunk",
		"created":            c.created,
		"model":              c.model,
		"system_fingerprint": "fp_fakeprovider",
		"choices": []any{map[string]any{
			"index":         0,
			"delta":         delta,
			"logprobs":      nil,
			"finish_reason": finish,
		}},
	}
	if withUsage {
		ch["usage"] = nil
	}
	return ch
}

// stream sends c as server-sent events: a role chunk, one chunk a token, a
// finish chunk, a usage-only chunk when withUsage, then [DONE].
func (c completion) stream(es *eventStream, withUsage bool) {
	es.sendJSON(c.chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil, withUsage))
	for i, token := range c.tokens {
		if i > 0 {
			token = " " + token
		}
		es.sendJSON(c.chunk(map[string]any{"content": token}, nil, withUsage))
	}
	es.sendJSON(c.chunk(map[string]any{}, c.finish, withUsage))
	if withUsage {
		final := c.chunk(nil, nil, false)
		final["choices"] = []any{}
		final["usage"] = c.usage()
		es.sendJSON(final)
	}
	es.send("[DONE]")
}

// eventStream writes server-sent events, flushing each one, and cuts the
// connection where the request's fault sets.
type eventStream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	cut  int
	sent int
}

func startEventStream(w http.ResponseWriter, r *http.Request) *eventStream {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return &eventStream{w: w, rc: http.NewResponseController(w), cut: cutAfter(r.Context())}
}

// comment writes an SSE comment line, which clients must skip. It does not
// count as an event.
func (es *eventStream) comment(text string) {
	_, _ = fmt.Fprintf(es.w, ": %s\n\n", text)
	_ = es.rc.Flush()
}

func (es *eventStream) sendJSON(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic("fakeprovider: encoding an event: " + err.Error())
	}
	es.send(string(data))
}

// send writes one "data:" event. Past the fault's limit it aborts the
// handler, which makes net/http drop the connection mid-body.
func (es *eventStream) send(data string) {
	if es.cut > 0 && es.sent >= es.cut {
		panic(http.ErrAbortHandler)
	}
	_, _ = fmt.Fprintf(es.w, "data: %s\n\n", data)
	_ = es.rc.Flush()
	es.sent++
}
