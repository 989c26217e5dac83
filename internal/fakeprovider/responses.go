package fakeprovider

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// responsesRequest is the part of a Responses API request that the
// stand-in reads.
type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    *string         `json:"instructions"`
	Stream          bool            `json:"stream"`
	MaxOutputTokens *int            `json:"max_output_tokens"`
}

// minOutputTokens is the smallest max_output_tokens that OpenAI accepts.
const minOutputTokens = 16

// problem returns what is wrong with q as OpenAI reports it, or nil.
func (q *responsesRequest) problem() *chatProblem {
	switch {
	case q.Model == "":
		return &chatProblem{"missing_required_parameter", "model", "Missing required parameter: 'model'."}
	case q.MaxOutputTokens != nil && *q.MaxOutputTokens < minOutputTokens:
		return &chatProblem{"integer_below_min_value", "max_output_tokens", fmt.Sprintf(
			"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= %d, but got %d instead.",
			minOutputTokens, *q.MaxOutputTokens)}
	}
	if _, err := q.prompt(); err != nil {
		return &chatProblem{"invalid_type", "input", err.Error()}
	}
	return nil
}

// inputItem is a message of a Responses input list. Its content is a
// string or a list of parts such as {"type":"input_text","text":...}.
type inputItem struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// prompt returns the instructions and the input as prompt messages.
func (q *responsesRequest) prompt() ([]promptMessage, error) {
	var out []promptMessage
	if q.Instructions != nil {
		out = append(out, promptMessage{"developer", *q.Instructions})
	}
	if len(q.Input) == 0 || string(q.Input) == "null" {
		return out, nil
	}
	var text string
	if json.Unmarshal(q.Input, &text) == nil {
		return append(out, promptMessage{"user", text}), nil
	}
	var items []inputItem
	if err := json.Unmarshal(q.Input, &items); err != nil {
		return nil, errors.New("invalid type for 'input': expected a string or an array of input items")
	}
	for _, item := range items {
		out = append(out, promptMessage{item.Role, inputText(item.Content)})
	}
	return out, nil
}

// inputText returns the text of a string content or the input_text parts
// of a list.
func inputText(content json.RawMessage) string {
	var s string
	if json.Unmarshal(content, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	_ = json.Unmarshal(content, &parts)
	var texts []string
	for _, part := range parts {
		if part.Type == "input_text" || part.Type == "output_text" {
			texts = append(texts, part.Text)
		}
	}
	return strings.Join(texts, " ")
}

// modelResponse is a completion as a Responses API response object.
type modelResponse struct {
	completion
	itemID          string
	instructions    *string
	maxOutputTokens *int
}

func (p *Provider) respond(q *responsesRequest) modelResponse {
	prompt, _ := q.prompt() // problem has checked it
	limit := 0
	if q.MaxOutputTokens != nil {
		limit = *q.MaxOutputTokens
	}
	return modelResponse{
		completion:      p.complete(q.Model, "resp_fake", prompt, limit),
		itemID:          p.nextID("msg_fake"),
		instructions:    q.Instructions,
		maxOutputTokens: q.MaxOutputTokens,
	}
}

// status returns "completed", or "incomplete" when max_output_tokens cut
// the output.
func (m modelResponse) status() string {
	if m.finish == "length" {
		return "incomplete"
	}
	return "completed"
}

// object returns the response object. A response in progress has no
// output and no usage yet.
func (m modelResponse) object(done bool) map[string]any {
	obj := map[string]any{
		"id": m.id, "object": "response", "created_at": m.created,
		"status": "in_progress", "error": nil, "incomplete_details": nil,
		"instructions": m.instructions, "max_output_tokens": m.maxOutputTokens,
		"model": m.model, "output": []any{}, "parallel_tool_calls": true,
		"previous_response_id": nil, "reasoning": map[string]any{"effort": nil, "summary": nil},
		"store": false, "temperature": 1.0, "text": map[string]any{"format": map[string]any{"type": "text"}},
		"tool_choice": "auto", "tools": []any{}, "top_p": 1.0, "truncation": "disabled",
		"usage": nil, "metadata": map[string]any{},
	}
	if !done {
		return obj
	}
	obj["status"], obj["output"], obj["usage"] = m.status(), []any{m.item(m.status())}, m.usage()
	if m.status() == "incomplete" {
		obj["incomplete_details"] = map[string]any{"reason": "max_output_tokens"}
	}
	return obj
}

// item returns the output message. A message in progress has no content
// yet.
func (m modelResponse) item(status string) map[string]any {
	content := []any{}
	if status != "in_progress" {
		content = append(content, m.part(m.text()))
	}
	return map[string]any{
		"id": m.itemID, "type": "message", "status": status, "role": "assistant", "content": content,
	}
}

func (m modelResponse) part(text string) map[string]any {
	return map[string]any{"type": "output_text", "text": text, "annotations": []any{}}
}

// usage is the Responses API's usage object, which names tokens as input
// and output rather than prompt and completion.
func (m modelResponse) usage() map[string]any {
	return map[string]any{
		"input_tokens":          m.promptTokens,
		"input_tokens_details":  map[string]int{"cached_tokens": 0},
		"output_tokens":         m.completionTokens(),
		"output_tokens_details": map[string]int{"reasoning_tokens": 0},
		"total_tokens":          m.promptTokens + m.completionTokens(),
	}
}

// stream sends m as the Responses API's named events, each with its
// sequence_number: the response created and in progress, the message and
// its text part added, one delta a piece, the text, part and message done,
// then response.completed (response.incomplete when cut short). Unlike a
// chat stream it ends with no [DONE].
func (m modelResponse) stream(es *eventStream) {
	seq := 0
	send := func(typ string, fields map[string]any) {
		fields["type"], fields["sequence_number"] = typ, seq
		seq++
		es.sendNamedJSON(typ, fields)
	}
	at := func(extra map[string]any) map[string]any {
		fields := map[string]any{"item_id": m.itemID, "output_index": 0, "content_index": 0}
		for k, v := range extra {
			fields[k] = v
		}
		return fields
	}

	send("response.created", map[string]any{"response": m.object(false)})
	send("response.in_progress", map[string]any{"response": m.object(false)})
	send("response.output_item.added", map[string]any{"output_index": 0, "item": m.item("in_progress")})
	send("response.content_part.added", at(map[string]any{"part": m.part("")}))
	for _, piece := range m.pieces {
		send("response.output_text.delta", at(map[string]any{"delta": piece, "logprobs": []any{}}))
	}
	send("response.output_text.done", at(map[string]any{"text": m.text(), "logprobs": []any{}}))
	send("response.content_part.done", at(map[string]any{"part": m.part(m.text())}))
	send("response.output_item.done", map[string]any{"output_index": 0, "item": m.item(m.status())})
	send("response."+m.status(), map[string]any{"response": m.object(true)})
}

// sendResponse sends the reply to a valid Responses request: the response
// object or its event stream.
func (p *Provider) sendResponse(w http.ResponseWriter, r *http.Request, q *responsesRequest) {
	m := p.respond(q)
	if !q.Stream {
		writeJSON(w, http.StatusOK, m.object(true))
		return
	}
	m.stream(p.startEventStream(w, r))
}

// openaiResponses serves POST /responses with OpenAI's errors.
//
// NOTE: an unknown model gets 400 model_not_found with param "model" here,
// unlike the 404 of chat completions. That follows reports of OpenAI's
// Responses API, not its reference, so the status is uncertain.
func (p *Provider) openaiResponses(w http.ResponseWriter, r *http.Request, k keyState) {
	var q responsesRequest
	if err := decodeBody(w, r, &q); err != nil {
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", nil,
			"We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.", nil)
		return
	}
	if bad := q.problem(); bad != nil {
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", bad.code, bad.msg, bad.param)
		return
	}
	if !slices.Contains(p.modelsFor(k), q.Model) {
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", "model_not_found",
			fmt.Sprintf("The requested model '%s' does not exist.", q.Model), "model")
		return
	}
	p.sendResponse(w, r, &q)
}
