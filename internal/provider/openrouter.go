package provider

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/keyturn/keyturn/keystore"
)

// openRouter speaks OpenRouter's API. Its models list needs no key, so it
// proves nothing about one: the key is proved by GET {base}/key, which
// describes the key itself. The list is read only to find required
// models, and the inference probe is an OpenAI-shaped chat completion.
type openRouter struct{}

func (openRouter) authorize(h http.Header, key keystore.Secret) {
	h.Set("Authorization", "Bearer "+key.Reveal())
}

func (o openRouter) check(ctx context.Context, x *exchange, s keystore.Settings) (outcome, []string) {
	out := o.keyInfo(ctx, x, s.BaseURL)
	if out.class != Valid {
		return out, nil
	}
	var models []string
	if len(s.RequiredModels) > 0 {
		out, models = listOpenAIModels(ctx, x, s)
		if out.class != Valid {
			return out, models
		}
	}
	if s.Probe == keystore.ProbeInference {
		out = chatProbe(ctx, x, s.BaseURL, s.RequiredModels[0], classifyOpenRouter)
	}
	return out, models
}

// keyInfo reads {"data":{"label","usage","limit","limit_remaining",…}}.
// A key whose limit is used up is no use, though the request succeeds.
func (openRouter) keyInfo(ctx context.Context, x *exchange, base string) outcome {
	c := call{method: http.MethodGet, url: endpoint(base, "/key")}
	c.handle = func(r *response) outcome {
		if !r.ok() {
			return classifyOpenRouter(r)
		}
		var body struct {
			Data *struct {
				LimitRemaining *float64 `json:"limit_remaining"`
			} `json:"data"`
		}
		if out, ok := r.decode(&body); !ok {
			return out
		}
		if body.Data == nil {
			return r.unexpected(`"data"`)
		}
		if rem := body.Data.LimitRemaining; rem != nil && *rem <= 0 {
			return r.rejected(errorInfo{}, "key limit used up: limit_remaining "+strconv.FormatFloat(*rem, 'f', -1, 64))
		}
		return valid(r.status)
	}
	return x.do(ctx, c)
}

// parseOpenRouterError reads {"error":{"code","message","metadata"}},
// where code is the HTTP status as a number.
func parseOpenRouterError(body []byte) errorInfo {
	var e struct {
		Error *struct {
			Code    json.RawMessage `json:"code"`
			Message string          `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == nil {
		return errorInfo{}
	}
	return errorInfo{message: e.Error.Message}
}

// classifyOpenRouter sorts OpenRouter's errors: 401 rejects the key, and
// so does 402 (no credits, or the key's limit reached); 408, 429 and 5xx
// are retried.
func classifyOpenRouter(r *response) outcome {
	info := parseOpenRouterError(r.body)
	if r.status == http.StatusPaymentRequired {
		return r.rejected(info, "no credits or key limit reached")
	}
	return r.byStatus(info)
}
