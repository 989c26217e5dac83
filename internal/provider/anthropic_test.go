package provider

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

func anthropicModel(id string) string {
	return fmt.Sprintf(`{"type":"model","id":%q,"display_name":%q,"created_at":"2025-02-19T00:00:00Z"}`, id, id)
}

func anthropicPageBody(hasMore bool, ids ...string) string {
	var data []string
	for _, id := range ids {
		data = append(data, anthropicModel(id))
	}
	first, last := "", ""
	if len(ids) > 0 {
		first, last = ids[0], ids[len(ids)-1]
	}
	return fmt.Sprintf(`{"data":[%s],"has_more":%t,"first_id":%q,"last_id":%q}`, strings.Join(data, ","), hasMore, first, last)
}

const (
	anthropicAuthError    = `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_1"}`
	anthropicPermission   = `{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}`
	anthropicBilling      = `{"type":"error","error":{"type":"billing_error","message":"billing issue"}}`
	anthropicCredit       = `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}`
	anthropicRateLimit    = `{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}`
	anthropicOverloaded   = `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
	anthropicNotFound     = `{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}`
	anthropicMessage      = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi"}],"stop_reason":"max_tokens","usage":{"input_tokens":8,"output_tokens":1}}`
	anthropicInvalidInput = `{"type":"error","error":{"type":"invalid_request_error","message":"messages: field required"}}`
)

func TestAnthropicAdapter(t *testing.T) {
	models := "GET /v1/models"
	messages := "POST /v1/messages"
	ok := reply{status: 200, body: anthropicPageBody(false, "claude-sonnet-4-5", "claude-haiku-4-5")}
	cases := []adapterCase{
		{name: "valid", routes: routes{models: {ok}}, want: Valid, attempts: 1,
			models: []string{"claude-sonnet-4-5", "claude-haiku-4-5"}},
		{name: "required model missing", routes: routes{models: {ok}}, required: []string{"claude-opus-4-1"},
			want: Rejected, reason: "required model claude-opus-4-1 not listed (1 page read)"},
		{name: "authentication error", routes: routes{models: {{status: 401, body: anthropicAuthError}}},
			want: Rejected, status: 401, reason: "401 authentication_error"},
		{name: "permission error", routes: routes{models: {{status: 403, body: anthropicPermission}}},
			want: Rejected, status: 403, reason: "permission_error"},
		{name: "billing error", routes: routes{models: {{status: 402, body: anthropicBilling}}},
			want: Rejected, status: 402, reason: "billing_error"},
		{name: "credit balance too low", routes: routes{models: {{status: 400, body: anthropicCredit}}},
			want: Rejected, status: 400, reason: "credit balance too low"},
		{name: "other bad request", routes: routes{models: {{status: 400, body: anthropicInvalidInput}}},
			want: Transient, status: 400, attempts: 1},
		{name: "rate limit then valid", routes: routes{models: {{status: 429, body: anthropicRateLimit, header: map[string]string{"Retry-After": "0"}}, ok}},
			want: Valid, attempts: 2},
		{name: "overloaded", routes: routes{models: {{status: 529, body: anthropicOverloaded}}},
			want: Transient, status: 529, reason: "overloaded_error", attempts: 3},
		{name: "html 200", routes: routes{models: {{status: 200, body: htmlPage, header: map[string]string{"Content-Type": "text/html"}}}},
			want: Transient},
		{name: "inference valid", routes: routes{models: {ok}, messages: {{status: 200, body: anthropicMessage}}},
			required: []string{"claude-sonnet-4-5"}, probe: keystore.ProbeInference, want: Valid, attempts: 2},
		{name: "inference model not found", routes: routes{models: {ok}, messages: {{status: 404, body: anthropicNotFound}}},
			required: []string{"claude-sonnet-4-5"}, probe: keystore.ProbeInference, want: Rejected,
			reason: "model claude-sonnet-4-5 not available"},
		{name: "inference overloaded", routes: routes{models: {ok}, messages: {{status: 529, body: anthropicOverloaded}}},
			required: []string{"claude-sonnet-4-5"}, probe: keystore.ProbeInference, want: Transient, status: 529},
	}
	runAdapterCases(t, "anthropic", "/v1", anthropicAuth, cases)
}

// pagedAnthropic serves three pages of models, keyed by after_id.
func pagedAnthropic(w http.ResponseWriter, r *http.Request) {
	if !anthropicAuth(r) {
		reply{status: 401, body: anthropicAuthError}.write(w)
		return
	}
	var body string
	switch r.URL.Query().Get("after_id") {
	case "":
		body = anthropicPageBody(true, "claude-a", "claude-b")
	case "claude-b":
		body = anthropicPageBody(true, "claude-c")
	case "claude-c":
		body = anthropicPageBody(false, "claude-d")
	default:
		body = anthropicPageBody(false)
	}
	reply{status: 200, body: body}.write(w)
}

func TestAnthropicPaging(t *testing.T) {
	var queries recorder
	srv := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		queries.add(r.URL.RawQuery)
		pagedAnthropic(w, r)
	})
	c, logs := testChecker(Options{})
	res := check(t, c, logs, keystore.Settings{Provider: "anthropic", BaseURL: srv + "/v1", RequiredModels: []string{"claude-d", "claude-a"}})
	if res.Class != Valid {
		t.Fatalf("class = %s (%s), want valid", res.Class, res.Reason)
	}
	if got := strings.Join(res.Models, " "); got != "claude-a claude-b claude-c claude-d" {
		t.Errorf("models = %s, want all four pages", got)
	}
	want := []string{"limit=1000", "after_id=claude-b&limit=1000", "after_id=claude-c&limit=1000"}
	if got := queries.all(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("queries = %v, want %v", got, want)
	}
	if res.Attempts != 3 {
		t.Errorf("attempts = %d, want 3", res.Attempts)
	}
}

func TestAnthropicPagingMissingModel(t *testing.T) {
	srv := startHandler(t, pagedAnthropic)
	c, logs := testChecker(Options{})
	res := check(t, c, logs, keystore.Settings{Provider: "anthropic", BaseURL: srv + "/v1", RequiredModels: []string{"claude-z"}})
	if res.Class != Rejected {
		t.Errorf("class = %s, want rejected", res.Class)
	}
	if !strings.Contains(res.Reason, "claude-z not listed (3 pages read)") {
		t.Errorf("reason = %q, want it to name claude-z after 3 pages", res.Reason)
	}
}

func TestAnthropicPagingStuck(t *testing.T) {
	srv := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		reply{status: 200, body: anthropicPageBody(true, "claude-a")}.write(w)
	})
	c, logs := testChecker(Options{})
	res := check(t, c, logs, keystore.Settings{Provider: "anthropic", BaseURL: srv + "/v1"})
	if res.Class != Transient {
		t.Errorf("class = %s, want transient", res.Class)
	}
	if !strings.Contains(res.Reason, "has_more without a new last_id") {
		t.Errorf("reason = %q, want the stuck paging named", res.Reason)
	}
}
