package fakeprovider

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// anthropicVersion is the only anthropic-version the stand-in accepts, the
// one Anthropic documents for the current API.
const anthropicVersion = "2023-06-01"

func (p *Provider) anthropicRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+AnthropicPrefix+"/models", p.anthropicAuthed(p.anthropicListModels))
	mux.HandleFunc("GET "+AnthropicPrefix+"/models/{model}", p.anthropicAuthed(p.anthropicGetModel))
	mux.HandleFunc("/anthropic/", func(w http.ResponseWriter, r *http.Request) {
		writeAnthropicError(w, http.StatusNotFound, "not_found_error", "Not Found")
	})
}

// writeAnthropicError sends {"type":"error","error":{"type","message"}}.
func writeAnthropicError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, anthropicError(typ, msg))
}

func anthropicError(typ, msg string) map[string]any {
	return map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}}
}

// anthropicStatusError returns Anthropic's usual error body for status and
// sets the headers Anthropic sends with it.
func anthropicStatusError(h http.Header, status int) map[string]any {
	switch status {
	case http.StatusBadRequest:
		return anthropicError("invalid_request_error", "Invalid request.")
	case http.StatusUnauthorized:
		return anthropicError("authentication_error", "invalid x-api-key")
	case http.StatusPaymentRequired:
		return anthropicError("billing_error", msgAnthropicCredit)
	case http.StatusForbidden:
		return anthropicError("permission_error",
			"Your API key does not have permission to use the specified resource.")
	case http.StatusNotFound:
		return anthropicError("not_found_error", "Not Found")
	case http.StatusRequestEntityTooLarge:
		return anthropicError("request_too_large", "Request exceeds the maximum allowed number of bytes.")
	case http.StatusTooManyRequests:
		h.Set("Retry-After", "1")
		h.Set("Anthropic-Ratelimit-Requests-Remaining", "0")
		return anthropicError("rate_limit_error",
			"This request would exceed your organization's rate limit. Please try again later.")
	case 529:
		return anthropicError("overloaded_error", "Overloaded")
	}
	if status >= 500 {
		return anthropicError("api_error", "Internal server error")
	}
	return anthropicError("invalid_request_error", statusText(status))
}

const msgAnthropicCredit = "Your credit balance is too low to access the Anthropic API. " +
	"Please go to Plans & Billing to upgrade or purchase credits."

// anthropicAuthed checks the anthropic-version and x-api-key headers as
// Anthropic does before calling h. A key sent as "Authorization: Bearer"
// is not an API key to Anthropic, so it gets the missing-key 401.
func (p *Provider) anthropicAuthed(h keyedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Request-Id", p.nextID("req_fake"))
		version := r.Header.Get("Anthropic-Version")
		switch {
		case version == "":
			writeAnthropicError(w, http.StatusBadRequest, "invalid_request_error",
				"anthropic-version: header is required")
			return
		case version != anthropicVersion:
			writeAnthropicError(w, http.StatusBadRequest, "invalid_request_error",
				fmt.Sprintf("anthropic-version: %q is not a valid version", version))
			return
		}
		key := r.Header.Get("X-Api-Key")
		if key == "" {
			writeAnthropicError(w, http.StatusUnauthorized, "authentication_error", "x-api-key header is required")
			return
		}
		k, ok := p.authenticate(r, key)
		if !ok || k.kind != inferenceKey {
			writeAnthropicError(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
			return
		}
		if k.exhausted {
			writeAnthropicError(w, http.StatusPaymentRequired, "billing_error", msgAnthropicCredit)
			return
		}
		h(w, r, k)
	}
}

func anthropicModel(id string, i int) map[string]any {
	return map[string]any{
		"type":         "model",
		"id":           id,
		"display_name": displayName(id),
		"created_at":   time.Unix(created(i), 0).UTC().Format(time.RFC3339),
	}
}

// anthropicListModels pages as Anthropic does: limit (1 to 1000, default
// 20) models after after_id or before before_id, with has_more, first_id
// and last_id.
func (p *Provider) anthropicListModels(w http.ResponseWriter, r *http.Request, k keyState) {
	q := r.URL.Query()
	limit, err := anthropicLimit(q.Get("limit"))
	if err != nil {
		writeAnthropicError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	ids := p.modelsFor(k)
	start, end, err := anthropicPage(ids, q.Get("after_id"), q.Get("before_id"), limit)
	if err != nil {
		writeAnthropicError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}

	data := []any{}
	for i := start; i < end; i++ {
		data = append(data, anthropicModel(ids[i], i))
	}
	body := map[string]any{"data": data, "has_more": false, "first_id": nil, "last_id": nil}
	if start < end {
		body["first_id"], body["last_id"] = ids[start], ids[end-1]
	}
	if q.Get("before_id") != "" {
		body["has_more"] = start > 0
	} else {
		body["has_more"] = end < len(ids)
	}
	writeJSON(w, http.StatusOK, body)
}

func anthropicLimit(s string) (int, error) {
	if s == "" {
		return 20, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("limit: %q is invalid; use an integer from 1 to 1000", s)
	}
	return n, nil
}

// anthropicPage returns the index range [start, end) of the page.
func anthropicPage(ids []string, afterID, beforeID string, limit int) (start, end int, err error) {
	switch {
	case afterID != "" && beforeID != "":
		return 0, 0, errors.New("after_id and before_id cannot both be set")
	case afterID != "":
		i := indexOf(ids, afterID)
		if i < 0 {
			return 0, 0, fmt.Errorf("after_id: no model has id %q", afterID)
		}
		start = i + 1
		return start, min(start+limit, len(ids)), nil
	case beforeID != "":
		i := indexOf(ids, beforeID)
		if i < 0 {
			return 0, 0, fmt.Errorf("before_id: no model has id %q", beforeID)
		}
		return max(i-limit, 0), i, nil
	}
	return 0, min(limit, len(ids)), nil
}

func indexOf(ids []string, id string) int {
	for i, m := range ids {
		if m == id {
			return i
		}
	}
	return -1
}

func (p *Provider) anthropicGetModel(w http.ResponseWriter, r *http.Request, k keyState) {
	id := r.PathValue("model")
	i := indexOf(p.modelsFor(k), id)
	if i < 0 {
		writeAnthropicError(w, http.StatusNotFound, "not_found_error", "model: "+id)
		return
	}
	writeJSON(w, http.StatusOK, anthropicModel(id, i))
}
