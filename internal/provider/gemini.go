package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// geminiPageSize is the models list's largest page.
const geminiPageSize = 1000

// gemini speaks the Gemini API: GET {base}/models paged with
// nextPageToken and pageToken, and POST {base}/models/{model}:generateContent
// for the inference probe, with the key in x-goog-api-key. Model names are
// "models/x"; a required model matches as "x" or "models/x".
type gemini struct{}

func (gemini) authorize(h http.Header, key keystore.Secret) {
	h.Set("x-goog-api-key", key.Reveal())
}

func (g gemini) check(ctx context.Context, x *exchange, s keystore.Settings) (outcome, []string) {
	out, models := g.listModels(ctx, x, s)
	if out.class != Valid || s.Probe != keystore.ProbeInference {
		return out, models
	}
	return g.generateProbe(ctx, x, s.BaseURL, geminiModel(s.RequiredModels[0])), models
}

// geminiModel returns a model name without its "models/" prefix.
func geminiModel(m string) string { return strings.TrimPrefix(m, "models/") }

type geminiPage struct {
	Models *[]struct {
		Name string `json:"name"`
	} `json:"models"`
	NextPageToken string `json:"nextPageToken"`
}

func (g gemini) listModels(ctx context.Context, x *exchange, s keystore.Settings) (outcome, []string) {
	var models []string
	where := http.MethodGet + " " + endpoint(s.BaseURL, "/models")
	token := ""
	seen := map[string]bool{}
	for page := 1; ; page++ {
		if page > maxPages {
			return outcome{class: Transient, status: http.StatusOK, reason: fmt.Sprintf("%s: more than %d pages of models", where, maxPages)}, models
		}
		p, out := g.page(ctx, x, s.BaseURL, token)
		if out.class != Valid {
			return out, models
		}
		for _, m := range *p.Models {
			models = append(models, m.Name)
		}
		if p.NextPageToken == "" {
			if missing := missingModels(s.RequiredModels, models, geminiModel); len(missing) > 0 {
				return missingOutcome(where, missing, page), models
			}
			return out, models
		}
		if seen[p.NextPageToken] {
			return outcome{class: Transient, status: out.status, reason: where + ": nextPageToken repeats an earlier page"}, models
		}
		seen[p.NextPageToken] = true
		token = p.NextPageToken
	}
}

func (gemini) page(ctx context.Context, x *exchange, base, token string) (geminiPage, outcome) {
	q := url.Values{"pageSize": {fmt.Sprint(geminiPageSize)}}
	if token != "" {
		q.Set("pageToken", token)
	}
	var p geminiPage
	c := call{method: http.MethodGet, url: endpoint(base, "/models") + "?" + q.Encode()}
	c.handle = func(r *response) outcome {
		if !r.ok() {
			return classifyGemini(r)
		}
		p = geminiPage{}
		if out, ok := r.decode(&p); !ok {
			return out
		}
		if p.Models == nil {
			return r.unexpected(`"models"`)
		}
		return valid(r.status)
	}
	return p, x.do(ctx, c)
}

// generateProbe requests one token from model.
func (gemini) generateProbe(ctx context.Context, x *exchange, base, model string) outcome {
	body, _ := json.Marshal(map[string]any{
		"contents":         []any{map[string]any{"role": "user", "parts": []any{map[string]string{"text": "ping"}}}},
		"generationConfig": map[string]int{"maxOutputTokens": 1},
	})
	c := call{method: http.MethodPost, url: endpoint(base, "/models/"+url.PathEscape(model)+":generateContent"), body: body}
	c.handle = func(r *response) outcome {
		if r.ok() {
			var m map[string]json.RawMessage
			if out, ok := r.decode(&m); !ok {
				return out
			}
			return valid(r.status)
		}
		if r.status == http.StatusNotFound && isJSONObject(r.body) {
			info, _ := parseGeminiError(r.body)
			return r.rejected(info, "model "+safeModel(model)+" not available to this key")
		}
		return classifyGemini(r)
	}
	return x.do(ctx, c)
}

// geminiError is Google's error body: {"error":{"code","message","status",
// "details":[{"@type","reason","retryDelay"}]}}.
type geminiError struct {
	Error *struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Details []struct {
			Reason     string `json:"reason"`
			RetryDelay string `json:"retryDelay"`
		} `json:"details"`
	} `json:"error"`
}

// parseGeminiError returns the status and the details' reasons, and the
// RetryInfo delay if there is one.
func parseGeminiError(body []byte) (errorInfo, time.Duration) {
	var e geminiError
	if json.Unmarshal(body, &e) != nil || e.Error == nil {
		return errorInfo{}, 0
	}
	info := errorInfo{codes: []string{e.Error.Status}, message: e.Error.Message}
	var delay time.Duration
	for _, d := range e.Error.Details {
		info.codes = append(info.codes, d.Reason)
		if v, err := time.ParseDuration(d.RetryDelay); err == nil && v > 0 {
			delay = v
		}
	}
	return info, delay
}

// classifyGemini sorts Gemini's errors. A bad or expired key is a 400
// INVALID_ARGUMENT whose details carry reason API_KEY_INVALID, and a 403
// PERMISSION_DENIED makes the key unusable too. A 400 FAILED_PRECONDITION
// (billing, or a region the API does not serve) is about the account or
// where keyturn runs, not the key, so it is a configuration error. Any
// other 400 is about the request. 429 RESOURCE_EXHAUSTED is retried after
// the RetryInfo delay or retry-after.
func classifyGemini(r *response) outcome {
	info, delay := parseGeminiError(r.body)
	if r.status == http.StatusBadRequest && hasCode(info, "API_KEY_INVALID") {
		return r.rejected(info)
	}
	if r.status == http.StatusBadRequest && hasCode(info, "FAILED_PRECONDITION") {
		return r.misconfigured(info, "billing is not enabled for the project, or the API does not serve the region this rotator runs in; this says nothing about the key")
	}
	out := r.byStatus(info)
	if out.retry && delay > 0 && out.retryAfter == 0 {
		out.retryAfter = delay
	}
	return out
}
