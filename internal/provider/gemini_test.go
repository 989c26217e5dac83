package provider

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

func geminiPageBody(next string, names ...string) string {
	var models []string
	for _, n := range names {
		models = append(models, fmt.Sprintf(`{"name":%q,"version":"001","displayName":%q,"supportedGenerationMethods":["generateContent"]}`, n, n))
	}
	body := `{"models":[` + strings.Join(models, ",") + `]`
	if next != "" {
		body += fmt.Sprintf(`,"nextPageToken":%q`, next)
	}
	return body + "}"
}

const (
	geminiKeyInvalid = `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`
	geminiKeyExpired = `{"error":{"code":400,"message":"API key expired. Please renew the API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"},{"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"API key expired. Please renew the API key."}]}}`
	geminiBadArgs    = `{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}`
	geminiDenied     = `{"error":{"code":403,"message":"Method doesn't allow unregistered callers.","status":"PERMISSION_DENIED"}}`
	geminiLocation   = `{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}`
	geminiExhausted  = `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.001s"}]}}`
	geminiInternal   = `{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}`
	geminiNotFound   = `{"error":{"code":404,"message":"models/gemini-x is not found for API version v1beta","status":"NOT_FOUND"}}`
	geminiGenerated  = `{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1}}`
)

func TestGeminiAdapter(t *testing.T) {
	models := "GET /v1beta/models"
	generate := "POST /v1beta/models/gemini-2.0-flash:generateContent"
	ok := reply{status: 200, body: geminiPageBody("", "models/gemini-2.0-flash", "models/gemini-1.5-pro")}
	cases := []adapterCase{
		{name: "valid", routes: routes{models: {ok}}, want: Valid, attempts: 1,
			models: []string{"models/gemini-2.0-flash", "models/gemini-1.5-pro"}},
		{name: "required bare name", routes: routes{models: {ok}}, required: []string{"gemini-2.0-flash"}, want: Valid},
		{name: "required prefixed name", routes: routes{models: {ok}}, required: []string{"models/gemini-1.5-pro"}, want: Valid},
		{name: "required model missing", routes: routes{models: {ok}}, required: []string{"gemini-2.5-pro"},
			want: Rejected, reason: "required model gemini-2.5-pro not listed"},
		{name: "key invalid", routes: routes{models: {{status: 400, body: geminiKeyInvalid}}},
			want: Rejected, status: 400, reason: "400 INVALID_ARGUMENT API_KEY_INVALID", attempts: 1},
		{name: "key expired", routes: routes{models: {{status: 400, body: geminiKeyExpired}}},
			want: Rejected, status: 400, reason: "API_KEY_INVALID"},
		{name: "other invalid argument", routes: routes{models: {{status: 400, body: geminiBadArgs}}},
			want: Transient, status: 400, attempts: 1},
		{name: "permission denied", routes: routes{models: {{status: 403, body: geminiDenied}}},
			want: Rejected, status: 403, reason: "PERMISSION_DENIED"},
		{name: "failed precondition", routes: routes{models: {{status: 400, body: geminiLocation}}},
			want: Misconfigured, status: 400, reason: "FAILED_PRECONDITION", attempts: 1},
		{name: "resource exhausted then valid", routes: routes{models: {{status: 429, body: geminiExhausted}, ok}},
			want: Valid, attempts: 2},
		{name: "resource exhausted persists", routes: routes{models: {{status: 429, body: geminiExhausted}}},
			want: Transient, status: 429, reason: "RESOURCE_EXHAUSTED", attempts: 3},
		{name: "internal error", routes: routes{models: {{status: 500, body: geminiInternal}}},
			want: Transient, status: 500, attempts: 3},
		{name: "unavailable", routes: routes{models: {{status: 503, body: `{"error":{"code":503,"status":"UNAVAILABLE"}}`}}},
			want: Transient, status: 503},
		{name: "html 200", routes: routes{models: {{status: 200, body: htmlPage, header: map[string]string{"Content-Type": "text/html"}}}},
			want: Transient},
		{name: "inference valid", routes: routes{models: {ok}, generate: {{status: 200, body: geminiGenerated}}},
			required: []string{"models/gemini-2.0-flash"}, probe: keystore.ProbeInference, want: Valid, attempts: 2},
		{name: "inference not found", routes: routes{models: {ok}, generate: {{status: 404, body: geminiNotFound}}},
			required: []string{"gemini-2.0-flash"}, probe: keystore.ProbeInference, want: Rejected,
			reason: "model gemini-2.0-flash not available"},
	}
	runAdapterCases(t, "gemini", "/v1beta", geminiAuth, cases)
}

func TestGeminiPaging(t *testing.T) {
	var queries recorder
	srv := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		queries.add(r.URL.RawQuery)
		if !geminiAuth(r) {
			reply{status: 400, body: geminiKeyInvalid}.write(w)
			return
		}
		switch r.URL.Query().Get("pageToken") {
		case "":
			reply{status: 200, body: geminiPageBody("t1", "models/a")}.write(w)
		case "t1":
			reply{status: 200, body: geminiPageBody("t2", "models/b")}.write(w)
		default:
			reply{status: 200, body: geminiPageBody("", "models/c")}.write(w)
		}
	})
	c, logs := testChecker(Options{})
	res := check(t, c, logs, keystore.Settings{Provider: "gemini", BaseURL: srv + "/v1beta", RequiredModels: []string{"c", "models/a"}})
	if res.Class != Valid {
		t.Fatalf("class = %s (%s), want valid", res.Class, res.Reason)
	}
	want := []string{"pageSize=1000", "pageSize=1000&pageToken=t1", "pageSize=1000&pageToken=t2"}
	if got := queries.all(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("queries = %v, want %v", got, want)
	}
	if got := strings.Join(res.Models, " "); got != "models/a models/b models/c" {
		t.Errorf("models = %s, want all three pages", got)
	}
}

func TestGeminiPagingLoop(t *testing.T) {
	srv := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		reply{status: 200, body: geminiPageBody("same", "models/a")}.write(w)
	})
	c, logs := testChecker(Options{})
	res := check(t, c, logs, keystore.Settings{Provider: "gemini", BaseURL: srv + "/v1beta"})
	if res.Class != Transient {
		t.Errorf("class = %s, want transient", res.Class)
	}
	if !strings.Contains(res.Reason, "nextPageToken repeats") {
		t.Errorf("reason = %q, want the paging loop named", res.Reason)
	}
}
