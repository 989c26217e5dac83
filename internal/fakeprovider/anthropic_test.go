package fakeprovider_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

func startAnthropic(t *testing.T) (*fakeprovider.Provider, string) {
	t.Helper()
	p, url := fakeprovider.Start(t, fakeprovider.Options{})
	p.AddKey(canary)
	return p, url + fakeprovider.AnthropicPrefix
}

func anthropicGet(t *testing.T, url string, key string) response {
	t.Helper()
	return call(t, "GET", url, "", "X-Api-Key", key, "Anthropic-Version", "2023-06-01")
}

func anthropicErrorType(t *testing.T, r response) any {
	t.Helper()
	if r.json(t)["type"] != "error" {
		t.Errorf("body type = %v, want error", r.json(t)["type"])
	}
	return errorField(t, r, "type")
}

func TestAnthropicFirstPage(t *testing.T) {
	_, base := startAnthropic(t)
	r := anthropicGet(t, base+"/models", canary)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	body := r.json(t)
	data := body["data"].([]any)
	if len(data) != 20 {
		t.Errorf("first page has %d models, want the default 20", len(data))
	}
	if body["has_more"] != true {
		t.Errorf("has_more = %v, want true", body["has_more"])
	}
	got := ids(t, data, "id")
	if body["first_id"] != got[0] || body["last_id"] != got[len(got)-1] {
		t.Errorf("first_id, last_id = %v, %v; want %s, %s", body["first_id"], body["last_id"], got[0], got[len(got)-1])
	}
	m := data[0].(map[string]any)
	if m["type"] != "model" || m["display_name"] == "" || m["created_at"] == "" {
		t.Errorf("model object = %v, want type, display_name and created_at", m)
	}
	if r.header.Get("Request-Id") == "" {
		t.Error("no request-id header")
	}
}

func TestAnthropicPaging(t *testing.T) {
	_, base := startAnthropic(t)
	var all []string
	url := base + "/models?limit=7"
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		body := anthropicGet(t, url, canary).json(t)
		all = append(all, ids(t, body["data"].([]any), "id")...)
		if body["has_more"] != true {
			break
		}
		url = base + "/models?limit=7&after_id=" + body["last_id"].(string)
	}
	if !slices.Equal(all, fakeprovider.DefaultModels()) {
		t.Errorf("paging with after_id collected %d models, want all %d in order", len(all), len(fakeprovider.DefaultModels()))
	}
}

func TestAnthropicBeforeID(t *testing.T) {
	_, base := startAnthropic(t)
	models := fakeprovider.DefaultModels()
	body := anthropicGet(t, base+"/models?limit=3&before_id="+models[5], canary).json(t)
	if got := ids(t, body["data"].([]any), "id"); !slices.Equal(got, models[2:5]) {
		t.Errorf("before_id page = %v, want %v", got, models[2:5])
	}
	if body["has_more"] != true {
		t.Errorf("has_more = %v, want true, since models come before", body["has_more"])
	}
}

func TestAnthropicPagingErrors(t *testing.T) {
	_, base := startAnthropic(t)
	for _, query := range []string{"limit=0", "limit=1001", "limit=x", "after_id=nope", "after_id=a&before_id=b"} {
		r := anthropicGet(t, base+"/models?"+query, canary)
		if r.status != http.StatusBadRequest || anthropicErrorType(t, r) != "invalid_request_error" {
			t.Errorf("%s: %d %s, want 400 invalid_request_error", query, r.status, r.body)
		}
	}
}

func TestAnthropicHeaders(t *testing.T) {
	p, base := startAnthropic(t)
	p.AddManagementKey(mgmtKey)
	tests := []struct {
		name    string
		headers []string
		status  int
		typ     string
		message string
	}{
		{"no version", []string{"X-Api-Key", canary}, 400, "invalid_request_error", "anthropic-version: header is required"},
		{"bad version", []string{"X-Api-Key", canary, "Anthropic-Version", "2020-01-01"}, 400, "invalid_request_error", `anthropic-version: "2020-01-01" is not a valid version`},
		{"bearer", []string{"Authorization", "Bearer " + canary, "Anthropic-Version", "2023-06-01"}, 401, "authentication_error", "x-api-key header is required"},
		{"unknown key", []string{"X-Api-Key", otherKey, "Anthropic-Version", "2023-06-01"}, 401, "authentication_error", "invalid x-api-key"},
		{"management key", []string{"X-Api-Key", mgmtKey, "Anthropic-Version", "2023-06-01"}, 401, "authentication_error", "invalid x-api-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, "GET", base+"/models", "", tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.status, r.body)
			}
			if got := anthropicErrorType(t, r); got != tt.typ {
				t.Errorf("error type = %v, want %s", got, tt.typ)
			}
			if got := errorField(t, r, "message"); got != tt.message {
				t.Errorf("message = %v, want %s", got, tt.message)
			}
		})
	}
}

func TestAnthropicBilling(t *testing.T) {
	p, base := startAnthropic(t)
	p.SetKeyQuota(canary, true)
	r := anthropicGet(t, base+"/models", canary)
	if r.status != http.StatusPaymentRequired || anthropicErrorType(t, r) != "billing_error" {
		t.Errorf("exhausted key = %d %s, want 402 billing_error", r.status, r.body)
	}
}

func TestAnthropicFaultBodies(t *testing.T) {
	p, base := startAnthropic(t)
	tests := []struct {
		status int
		typ    string
	}{
		{403, "permission_error"},
		{429, "rate_limit_error"},
		{500, "api_error"},
		{529, "overloaded_error"},
	}
	for _, tt := range tests {
		p.SetFault("/anthropic/v1/models", fakeprovider.Fault{Status: tt.status})
		r := anthropicGet(t, base+"/models", canary)
		if r.status != tt.status || anthropicErrorType(t, r) != tt.typ {
			t.Errorf("fault %d = %d %s, want %s", tt.status, r.status, r.body, tt.typ)
		}
		if tt.status == 429 && r.header.Get("Retry-After") == "" {
			t.Error("429 has no retry-after header")
		}
	}
}

func TestAnthropicGetModel(t *testing.T) {
	_, base := startAnthropic(t)
	id := "claude-3-5-sonnet-20241022"
	r := anthropicGet(t, base+"/models/"+id, canary)
	if r.status != http.StatusOK || r.json(t)["display_name"] != "Claude 3.5 Sonnet" {
		t.Errorf("GET %s = %d %s, want 200 with display name Claude 3.5 Sonnet", id, r.status, r.body)
	}
	r = anthropicGet(t, base+"/models/claude-0", canary)
	if r.status != http.StatusNotFound || anthropicErrorType(t, r) != "not_found_error" {
		t.Errorf("GET unknown model = %d %s, want 404 not_found_error", r.status, r.body)
	}
}
