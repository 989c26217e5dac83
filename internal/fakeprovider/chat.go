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

// promptMessage is one message of a prompt, reduced to its role and text.
type promptMessage struct {
	role, text string
}

// prompt returns the request's messages as prompt messages.
func (c *chatRequest) prompt() []promptMessage {
	var out []promptMessage
	for _, m := range c.Messages {
		out = append(out, promptMessage{m.Role, m.text()})
	}
	return out
}

// completion is a deterministic reply: the Reply set with SetReply, or the
// last user message echoed, one piece a word.
type completion struct {
	id           string
	created      int64
	model        string
	pieces       []string // the streamed deltas; joined, they are the text
	finish       string   // "stop", or "length" when the limit cut the pieces
	promptTokens int
}

// complete builds the completion of prompt for model. A limit above 0 keeps
// at most that many pieces.
func (p *Provider) complete(model, idPrefix string, prompt []promptMessage, limit int) completion {
	c := completion{
		id:      p.nextID(idPrefix),
		created: p.now().Unix(),
		model:   model,
		finish:  "stop",
	}
	last := ""
	for _, m := range prompt {
		c.promptTokens += len(strings.Fields(m.text)) + 1
		if m.role == "user" {
			last = m.text
		}
	}
	c.pieces = p.currentReply().pieces(last)
	if limit > 0 && limit < len(c.pieces) {
		c.pieces, c.finish = c.pieces[:limit], "length"
	}
	return c
}

func (c completion) text() string { return strings.Join(c.pieces, "") }

// completionTokens counts one token a word of the text, and at least one
// when there is any piece, such as a Content without spaces.
func (c completion) completionTokens() int {
	return max(len(strings.Fields(c.text())), min(len(c.pieces), 1))
}

func (c completion) usage() map[string]int {
	return map[string]int{
		"prompt_tokens":     c.promptTokens,
		"completion_tokens": c.completionTokens(),
		"total_tokens":      c.promptTokens + c.completionTokens(),
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
				"content": c.text(),
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

// stream sends c as server-sent events: a role chunk, one chunk a piece, a
// finish chunk, a usage-only chunk with "choices": [] when withUsage, then
// [DONE].
func (c completion) stream(es *eventStream, withUsage bool) {
	es.sendJSON(c.chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil, withUsage))
	for _, piece := range c.pieces {
		es.sendJSON(c.chunk(map[string]any{"content": piece}, nil, withUsage))
	}
	es.sendJSON(c.chunk(map[string]any{}, c.finish, withUsage))
	if withUsage {
		final := c.chunk(nil, nil, false)
		final["choices"] = []any{}
		final["usage"] = c.usage()
		es.sendJSON(final)
	}
	es.send("", "[DONE]")
}

// sendChat sends the reply to a valid chat request in OpenAI's manner: the
// completion, or a stream that ends with a usage-only chunk when
// stream_options.include_usage asks for one.
func (p *Provider) sendChat(w http.ResponseWriter, r *http.Request, req *chatRequest, idPrefix string) {
	c := p.complete(req.Model, idPrefix, req.prompt(), req.maxTokens())
	if !req.Stream {
		writeJSON(w, http.StatusOK, c.body())
		return
	}
	withUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	c.stream(p.startEventStream(w, r), withUsage)
}
