package provider

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/keyturn/keyturn/keystore"
)

// openAI speaks the OpenAI API, and so OpenAI-compatible relays: one
// unpaged GET {base}/models, and POST {base}/chat/completions for the
// inference probe, with the key as a bearer token.
type openAI struct{}

func (openAI) authorize(h http.Header, key keystore.Secret) {
	h.Set("Authorization", "Bearer "+key.Reveal())
}

func (a openAI) check(ctx context.Context, x *exchange, s keystore.Settings) (outcome, []string) {
	out, models := listOpenAIModels(ctx, x, s)
	if out.class != Valid || s.Probe != keystore.ProbeInference {
		return out, models
	}
	return chatProbe(ctx, x, s.BaseURL, s.RequiredModels[0], classifyOpenAI), models
}

// openAIList is the list shape OpenAI and OpenRouter share.
type openAIList struct {
	Data *[]struct {
		ID string `json:"id"`
	} `json:"data"`
}

// listOpenAIModels lists {base}/models and checks the required models.
func listOpenAIModels(ctx context.Context, x *exchange, s keystore.Settings) (outcome, []string) {
	var models []string
	c := call{method: http.MethodGet, url: endpoint(s.BaseURL, "/models")}
	c.handle = func(r *response) outcome {
		if !r.ok() {
			return classifyOpenAI(r)
		}
		var list openAIList
		if out, ok := r.decode(&list); !ok {
			return out
		}
		if list.Data == nil {
			return r.unexpected(`"data"`)
		}
		models = models[:0]
		for _, m := range *list.Data {
			models = append(models, m.ID)
		}
		return valid(r.status)
	}
	out := x.do(ctx, c)
	if out.class != Valid {
		return out, nil
	}
	if missing := missingModels(s.RequiredModels, models, sameModel); len(missing) > 0 {
		return missingOutcome(c.method+" "+c.url, missing, 1), models
	}
	return out, models
}

// openAIError is OpenAI's error body, {"error":{"message","type","code",
// "param"}}; code is a string, or a number on some relays.
type openAIError struct {
	Error *struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Param   string          `json:"param"`
	} `json:"error"`
}

func parseOpenAIError(body []byte) (errorInfo, string) {
	var e openAIError
	if json.Unmarshal(body, &e) != nil || e.Error == nil {
		return errorInfo{}, ""
	}
	code := rawToken(e.Error.Code)
	return errorInfo{codes: []string{e.Error.Type, code}, message: e.Error.Message}, e.Error.Param
}

// rawToken returns a JSON string or number as text.
func rawToken(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// classifyOpenAI sorts OpenAI's errors: 429 insufficient_quota means no
// credit, so the key is no use; other 429s are rate limits. 401 covers a
// bad key, an IP not allowed and a restricted key's missing scopes. A 403
// unsupported_country_region_territory rejects the region keyturn runs in,
// not the key, so it is a configuration error.
func classifyOpenAI(r *response) outcome {
	info, _ := parseOpenAIError(r.body)
	if r.status == http.StatusTooManyRequests && hasCode(info, "insufficient_quota") {
		return r.rejected(info, "no credit left")
	}
	if r.status == http.StatusForbidden && hasCode(info, "unsupported_country_region_territory") {
		return r.misconfigured(info, "the provider does not serve the region this rotator runs in; this says nothing about the key")
	}
	return r.byStatus(info)
}

func hasCode(info errorInfo, code string) bool {
	return containsString(info.codes, code)
}

// chatRequest is the smallest chat completion: one token. Newer OpenAI
// models refuse max_tokens and take max_completion_tokens instead.
type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	MaxTokens           int           `json:"max_tokens,omitempty"`
	MaxCompletionTokens int           `json:"max_completion_tokens,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// chatProbe calls POST {base}/chat/completions for one token of model. If
// the model rejects max_tokens, it sends the request once more with
// max_completion_tokens.
func chatProbe(ctx context.Context, x *exchange, base, model string, classify func(*response) outcome) outcome {
	out, unsupported := chatOnce(ctx, x, base, model, false, classify)
	if unsupported {
		out, _ = chatOnce(ctx, x, base, model, true, classify)
	}
	return out
}

func chatOnce(ctx context.Context, x *exchange, base, model string, completionTokens bool, classify func(*response) outcome) (outcome, bool) {
	req := chatRequest{Model: model, Messages: []chatMessage{{Role: "user", Content: "ping"}}}
	if completionTokens {
		req.MaxCompletionTokens = 1
	} else {
		req.MaxTokens = 1
	}
	body, _ := json.Marshal(req)

	unsupported := false
	c := call{method: http.MethodPost, url: endpoint(base, "/chat/completions"), body: body}
	c.handle = func(r *response) outcome {
		unsupported = false
		if r.ok() {
			return chatAnswer(r, classify)
		}
		info, param := parseOpenAIError(r.body)
		switch {
		case r.status == http.StatusBadRequest && param == "max_tokens" && !completionTokens:
			unsupported = true
		case r.status == http.StatusNotFound && isJSONObject(r.body):
			return r.rejected(info, "model "+safeModel(model)+" not available to this key")
		}
		return classify(r)
	}
	return x.do(ctx, c), unsupported
}

// chatAnswer accepts a 200 chat completion. OpenRouter may return 200 with
// an error object when a request fails after it started, so such a body is
// classified by the error's code as if it were the status. A code that
// would blame the base URL is classified as a 502 instead, because the 200
// shows that the request reached the provider.
func chatAnswer(r *response, classify func(*response) outcome) outcome {
	var body struct {
		Choices json.RawMessage `json:"choices"`
		Error   *struct {
			Code json.RawMessage `json:"code"`
		} `json:"error"`
	}
	if out, ok := r.decode(&body); !ok {
		return out
	}
	if body.Error != nil {
		inner := *r
		if n, ok := statusCode(rawToken(body.Error.Code)); ok && !notAPIRoot(n) && (n < 300 || n >= 400) {
			inner.status = n
		} else {
			inner.status = http.StatusBadGateway
		}
		out := classify(&inner)
		out.status = r.status
		return out
	}
	if body.Choices == nil {
		return r.unexpected(`"choices"`)
	}
	return valid(r.status)
}
