package fakeprovider_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

func startGemini(t *testing.T) (*fakeprovider.Provider, string) {
	t.Helper()
	p, url := fakeprovider.Start(t, fakeprovider.Options{})
	p.AddKey(canary)
	return p, url + fakeprovider.GeminiPrefix
}

func geminiNames(t *testing.T, body map[string]any) []string {
	t.Helper()
	var out []string
	for _, name := range ids(t, body["models"].([]any), "name") {
		id, ok := strings.CutPrefix(name, "models/")
		if !ok {
			t.Errorf("model name %q does not start with models/", name)
		}
		out = append(out, id)
	}
	return out
}

func TestGeminiListModels(t *testing.T) {
	_, base := startGemini(t)
	r := call(t, "GET", base+"/models", "", "X-Goog-Api-Key", canary)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	body := r.json(t)
	if n := len(body["models"].([]any)); n != 50 {
		t.Errorf("first page has %d models, want the default 50", n)
	}
	if body["nextPageToken"] == nil {
		t.Error("no nextPageToken though more models remain")
	}
	m := body["models"].([]any)[0].(map[string]any)
	for _, field := range []string{"name", "version", "displayName", "inputTokenLimit", "outputTokenLimit", "supportedGenerationMethods"} {
		if _, ok := m[field]; !ok {
			t.Errorf("model has no %s field: %v", field, m)
		}
	}
}

func TestGeminiPaging(t *testing.T) {
	_, base := startGemini(t)
	var all []string
	url := base + "/models?pageSize=7"
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		body := call(t, "GET", url, "", "X-Goog-Api-Key", canary).json(t)
		all = append(all, geminiNames(t, body)...)
		token, _ := body["nextPageToken"].(string)
		if token == "" {
			break
		}
		url = base + "/models?pageSize=7&pageToken=" + token
	}
	if !slices.Equal(all, fakeprovider.DefaultModels()) {
		t.Errorf("paging collected %d models, want all %d in order", len(all), len(fakeprovider.DefaultModels()))
	}
}

func TestGeminiKeyQueryParameter(t *testing.T) {
	_, base := startGemini(t)
	r := call(t, "GET", base+"/models?key="+canary, "")
	if r.status != http.StatusOK {
		t.Errorf("key in the query: status = %d, want 200: %s", r.status, r.body)
	}
}

func TestGeminiInvalidKey(t *testing.T) {
	_, base := startGemini(t)
	r := call(t, "GET", base+"/models", "", "X-Goog-Api-Key", otherKey)
	if r.status != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400", r.status)
	}
	want := `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",` +
		`"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com",` +
		`"metadata":{"service":"generativelanguage.googleapis.com"}}]}}`
	var got, wantV any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &wantV); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantV) {
		t.Errorf("body = %s\nwant %s", r.body, want)
	}
}

func TestGeminiAuthErrors(t *testing.T) {
	p, base := startGemini(t)
	p.AddManagementKey(mgmtKey)
	tests := []struct {
		name    string
		headers []string
		code    int
		status  string
	}{
		{"no credential", nil, 403, "PERMISSION_DENIED"},
		{"bearer is oauth", []string{"Authorization", "Bearer " + canary}, 401, "UNAUTHENTICATED"},
		{"management key", []string{"X-Goog-Api-Key", mgmtKey}, 400, "INVALID_ARGUMENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, "GET", base+"/models", "", tt.headers...)
			if r.status != tt.code || errorField(t, r, "status") != tt.status {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tt.code, tt.status)
			}
			if got := errorField(t, r, "code"); got != float64(tt.code) {
				t.Errorf("error code = %v, want %d", got, tt.code)
			}
		})
	}
}

func TestGeminiBilling(t *testing.T) {
	p, base := startGemini(t)
	p.SetKeyQuota(canary, true)
	r := call(t, "GET", base+"/models", "", "X-Goog-Api-Key", canary)
	if r.status != http.StatusBadRequest || errorField(t, r, "status") != "FAILED_PRECONDITION" {
		t.Errorf("exhausted key = %d %s, want 400 FAILED_PRECONDITION", r.status, r.body)
	}
}

func TestGeminiPagingErrors(t *testing.T) {
	_, base := startGemini(t)
	for _, query := range []string{"pageSize=-1", "pageSize=x", "pageToken=bogus"} {
		r := call(t, "GET", base+"/models?"+query, "", "X-Goog-Api-Key", canary)
		if r.status != http.StatusBadRequest || errorField(t, r, "status") != "INVALID_ARGUMENT" {
			t.Errorf("%s: %d %s, want 400 INVALID_ARGUMENT", query, r.status, r.body)
		}
	}
}

func TestGeminiFaultBodies(t *testing.T) {
	p, base := startGemini(t)
	for status, want := range map[int]string{403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"} {
		p.SetFault("/gemini/v1beta/models", fakeprovider.Fault{Status: status})
		r := call(t, "GET", base+"/models", "", "X-Goog-Api-Key", canary)
		if r.status != status || errorField(t, r, "status") != want {
			t.Errorf("fault %d = %d %s, want %s", status, r.status, r.body, want)
		}
	}
}

func TestGeminiGetModel(t *testing.T) {
	_, base := startGemini(t)
	r := call(t, "GET", base+"/models/gemini-2.5-flash", "", "X-Goog-Api-Key", canary)
	if r.status != http.StatusOK || r.json(t)["name"] != "models/gemini-2.5-flash" {
		t.Errorf("GET model = %d %s", r.status, r.body)
	}
	r = call(t, "GET", base+"/models/gemini-0", "", "X-Goog-Api-Key", canary)
	if r.status != http.StatusNotFound || errorField(t, r, "status") != "NOT_FOUND" {
		t.Errorf("GET unknown model = %d %s, want 404 NOT_FOUND", r.status, r.body)
	}
}
