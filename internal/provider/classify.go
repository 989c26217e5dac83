package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyturn/keyturn/keystore"
)

// errorInfo is the part of an error body that adapters classify by. Only
// the short codes reach a reason, and message is matched on, never shown.
type errorInfo struct {
	codes   []string // error type, code, status, details reasons: public tokens
	message string
}

// reason returns "METHOD URL: STATUS code code" plus any notes.
func (r *response) reason(info errorInfo, notes ...string) string {
	parts := []string{fmt.Sprint(r.status)}
	for _, c := range info.codes {
		if t := token(c); t != "" && !containsString(parts, t) {
			parts = append(parts, t)
		}
	}
	s := r.where() + ": " + strings.Join(parts, " ")
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, "; ") + ")"
	}
	return s
}

// token returns s if it looks like an error code (short, letters, digits
// and _ . : -), and "" otherwise, so that free text from a body never
// reaches a reason.
func token(s string) string {
	if s == "" || len(s) > 64 {
		return ""
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.:-", r)
		if !ok {
			return ""
		}
	}
	return s
}

// byStatus classifies an error response by its status alone, the rule
// every adapter falls back on. 401 and 403 reject the key. Timeouts,
// conflicts, rate limits and 5xx are retried. A redirect, and a 404, 405 or
// 410 that the adapter has not matched as a provider's own error, mean that
// the base URL is not the API root: a configuration error. Any other 4xx
// proves nothing about the key and will not change on retry.
func (r *response) byStatus(info errorInfo) outcome {
	out := outcome{status: r.status, class: Transient}
	switch s := r.status; {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		out.class = Rejected
		out.reason = r.reason(info)
	case s == http.StatusRequestTimeout || s == http.StatusConflict || s == http.StatusTooEarly ||
		s == http.StatusTooManyRequests || s >= 500:
		out.retry = true
		out.retryAfter = retryAfter(r.header)
		out.reason = r.reason(info)
	case s >= 300 && s < 400:
		out.class = Misconfigured
		out.reason = r.reason(info, "redirect not followed: set "+keystore.TagBaseURL+" to the final location")
	case notAPIRoot(s):
		out.class = Misconfigured
		out.reason = r.reason(info, "check "+keystore.TagBaseURL)
	default:
		out.reason = r.reason(info, "the provider did not accept keyturn's request; this says nothing about the key")
	}
	return out
}

// notAPIRoot reports whether status, returned at one of an adapter's own
// paths, means that the base URL is not the provider's API root.
func notAPIRoot(status int) bool {
	return status == http.StatusNotFound || status == http.StatusMethodNotAllowed || status == http.StatusGone
}

// misconfigured returns a Misconfigured outcome for r with notes.
func (r *response) misconfigured(info errorInfo, notes ...string) outcome {
	return outcome{class: Misconfigured, status: r.status, reason: r.reason(info, notes...)}
}

// rejected returns a Rejected outcome for r with notes.
func (r *response) rejected(info errorInfo, notes ...string) outcome {
	return outcome{class: Rejected, status: r.status, reason: r.reason(info, notes...)}
}

// decode reads a 2xx JSON body into v. A body that is not JSON (a captive
// portal's or a proxy's HTML page) proves nothing about the key, so it is
// transient and retried, never a rejection.
func (r *response) decode(v any) (outcome, bool) {
	if err := json.Unmarshal(r.body, v); err != nil {
		note := "body is not JSON"
		if ct := mediaType(r.header); ct != "" {
			note += ", content-type " + ct
		}
		return outcome{class: Transient, retry: true, status: r.status, reason: r.reason(errorInfo{}, note)}, false
	}
	return outcome{}, true
}

// unexpected returns a transient outcome for a 2xx JSON body that lacks
// the field an adapter needs.
func (r *response) unexpected(field string) outcome {
	note := fmt.Sprintf("JSON body without %s; is the base URL an API root?", field)
	return outcome{class: Transient, retry: true, status: r.status, reason: r.reason(errorInfo{}, note)}
}

func (r *response) ok() bool { return r.status >= 200 && r.status < 300 }

// isJSONObject reports whether body is a JSON object, to tell an error
// body from an HTML page.
func isJSONObject(body []byte) bool {
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

func mediaType(h http.Header) string {
	t, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return ""
	}
	if token(strings.ReplaceAll(t, "/", ":")) == "" {
		return ""
	}
	return t
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// missingModels returns the required models that listed lacks, comparing
// the names that canon maps them to.
func missingModels(required, listed []string, canon func(string) string) []string {
	have := make(map[string]bool, len(listed))
	for _, m := range listed {
		have[canon(m)] = true
	}
	var missing []string
	for _, m := range required {
		if !have[canon(m)] {
			missing = append(missing, m)
		}
	}
	return missing
}

// statusCode parses an HTTP status carried in a body, as OpenRouter's
// error code is.
func statusCode(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 100 && n <= 599
}

func sameModel(m string) string { return m }

// missingOutcome rejects a key whose model list lacks required models.
func missingOutcome(where string, missing []string, pages int) outcome {
	noun := "model"
	if len(missing) > 1 {
		noun = "models"
	}
	for i, m := range missing {
		missing[i] = safeModel(m)
	}
	read := "1 page read"
	if pages != 1 {
		read = fmt.Sprintf("%d pages read", pages)
	}
	return outcome{class: Rejected, status: http.StatusOK, reason: fmt.Sprintf(
		"%s: required %s %s not listed (%s)", where, noun, strings.Join(missing, ", "), read)}
}

// safeModel returns a model name for a reason. Required models come from
// settings, so they are public; the quoting only keeps odd characters
// visible.
func safeModel(m string) string {
	if token(strings.ReplaceAll(m, "/", ":")) == "" {
		return fmt.Sprintf("%q", m)
	}
	return m
}
