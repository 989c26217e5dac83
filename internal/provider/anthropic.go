package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/keyturn/keyturn/keystore"
)

// anthropicVersion is the API version keyturn speaks.
const anthropicVersion = "2023-06-01"

// anthropicPageSize is the models list's largest page.
const anthropicPageSize = 1000

// anthropic speaks Anthropic's API: GET {base}/models paged with has_more
// and after_id, and POST {base}/messages for the inference probe, with the
// key in x-api-key.
type anthropic struct{}

func (anthropic) authorize(h http.Header, key keystore.Secret) {
	h.Set("x-api-key", key.Reveal())
	h.Set("anthropic-version", anthropicVersion)
}

func (a anthropic) check(ctx context.Context, x *exchange, s keystore.Settings) (outcome, []string) {
	out, models := a.listModels(ctx, x, s)
	if out.class != Valid || s.Probe != keystore.ProbeInference {
		return out, models
	}
	return a.messageProbe(ctx, x, s.BaseURL, s.RequiredModels[0]), models
}

type anthropicPage struct {
	Data *[]struct {
		ID string `json:"id"`
	} `json:"data"`
	HasMore bool   `json:"has_more"`
	LastID  string `json:"last_id"`
}

// listModels follows every page, then checks the required models.
func (a anthropic) listModels(ctx context.Context, x *exchange, s keystore.Settings) (outcome, []string) {
	var models []string
	where := http.MethodGet + " " + endpoint(s.BaseURL, "/models")
	after := ""
	for page := 1; ; page++ {
		if page > maxPages {
			return outcome{class: Transient, status: http.StatusOK, reason: fmt.Sprintf("%s: more than %d pages of models", where, maxPages)}, models
		}
		p, out := a.page(ctx, x, s.BaseURL, after)
		if out.class != Valid {
			return out, models
		}
		for _, m := range *p.Data {
			models = append(models, m.ID)
		}
		if !p.HasMore {
			if missing := missingModels(s.RequiredModels, models, sameModel); len(missing) > 0 {
				return missingOutcome(where, missing, page), models
			}
			return out, models
		}
		if p.LastID == "" || p.LastID == after {
			return outcome{class: Transient, status: out.status, reason: where + `: has_more without a new last_id`}, models
		}
		after = p.LastID
	}
}

func (anthropic) page(ctx context.Context, x *exchange, base, after string) (anthropicPage, outcome) {
	q := url.Values{"limit": {fmt.Sprint(anthropicPageSize)}}
	if after != "" {
		q.Set("after_id", after)
	}
	var p anthropicPage
	c := call{method: http.MethodGet, url: endpoint(base, "/models") + "?" + q.Encode()}
	c.handle = func(r *response) outcome {
		if !r.ok() {
			return classifyAnthropic(r)
		}
		p = anthropicPage{}
		if out, ok := r.decode(&p); !ok {
			return out
		}
		if p.Data == nil {
			return r.unexpected(`"data"`)
		}
		return valid(r.status)
	}
	return p, x.do(ctx, c)
}

// messageProbe requests one token from model.
func (anthropic) messageProbe(ctx context.Context, x *exchange, base, model string) outcome {
	body, _ := json.Marshal(map[string]any{
		"model":      model,
		"max_tokens": 1,
		"messages":   []chatMessage{{Role: "user", Content: "ping"}},
	})
	c := call{method: http.MethodPost, url: endpoint(base, "/messages"), body: body}
	c.handle = func(r *response) outcome {
		if r.ok() {
			var m map[string]json.RawMessage
			if out, ok := r.decode(&m); !ok {
				return out
			}
			return valid(r.status)
		}
		if r.status == http.StatusNotFound && isJSONObject(r.body) {
			return r.rejected(parseAnthropicError(r.body), "model "+safeModel(model)+" not available to this key")
		}
		return classifyAnthropic(r)
	}
	return x.do(ctx, c)
}

// parseAnthropicError reads {"type":"error","error":{"type","message"}}.
func parseAnthropicError(body []byte) errorInfo {
	var e struct {
		Error *struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == nil {
		return errorInfo{}
	}
	return errorInfo{codes: []string{e.Error.Type}, message: e.Error.Message}
}

// classifyAnthropic sorts Anthropic's errors: 401 authentication_error and
// 403 permission_error reject the key, and so do 402 billing_error and a
// 400 invalid_request_error about the credit balance, which Anthropic
// sends when an account has run out of credit. 429 rate_limit_error and
// 529 overloaded_error are retried, honouring retry-after.
func classifyAnthropic(r *response) outcome {
	info := parseAnthropicError(r.body)
	switch {
	case r.status == http.StatusPaymentRequired:
		return r.rejected(info, "billing")
	case r.status == http.StatusBadRequest && strings.Contains(strings.ToLower(info.message), "credit balance"):
		return r.rejected(info, "credit balance too low")
	}
	return r.byStatus(info)
}
