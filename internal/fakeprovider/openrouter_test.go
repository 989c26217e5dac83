package fakeprovider_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

func startOpenRouter(t *testing.T) (*fakeprovider.Provider, string, string) {
	t.Helper()
	p, url := fakeprovider.Start(t, fakeprovider.Options{})
	p.AddKey(canary)
	p.AddManagementKey(mgmtKey)
	return p, url, url + fakeprovider.OpenRouterPrefix
}

// mint creates a key through the management API and returns its hash and
// value.
func mint(t *testing.T, base, body string) (hash, key string) {
	t.Helper()
	r := call(t, "POST", base+"/keys", body, "Authorization", "Bearer "+mgmtKey)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /keys = %d, want 201: %s", r.status, r.body)
	}
	v := r.json(t)
	return v["data"].(map[string]any)["hash"].(string), v["key"].(string)
}

func TestOpenRouterCurrentKey(t *testing.T) {
	_, _, base := startOpenRouter(t)
	r := call(t, "GET", base+"/key", "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	data := r.json(t)["data"].(map[string]any)
	for _, field := range []string{"label", "usage", "limit", "is_free_tier", "limit_remaining"} {
		if _, ok := data[field]; !ok {
			t.Errorf("data has no %s field: %v", field, data)
		}
	}
	if data["is_management_key"] != false {
		t.Errorf("is_management_key = %v, want false", data["is_management_key"])
	}

	r = call(t, "GET", base+"/key", "", "Authorization", "Bearer "+mgmtKey)
	if r.json(t)["data"].(map[string]any)["is_management_key"] != true {
		t.Errorf("management key: is_management_key = false, want true")
	}
}

func TestOpenRouterAuthErrors(t *testing.T) {
	_, _, base := startOpenRouter(t)
	r := call(t, "GET", base+"/key", "")
	if r.status != 401 || errorField(t, r, "message") != "No auth credentials found" {
		t.Errorf("no key = %d %s", r.status, r.body)
	}
	r = call(t, "GET", base+"/key", "", "Authorization", "Bearer "+otherKey)
	if r.status != 401 || errorField(t, r, "code") != float64(401) {
		t.Errorf("unknown key = %d %s, want 401 with code 401", r.status, r.body)
	}
	r = call(t, "GET", base+"/keys", "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusForbidden {
		t.Errorf("inference key on /keys = %d, want 403", r.status)
	}
	r = call(t, "POST", base+"/chat/completions", chatBody(testModel, false, ""), "Authorization", "Bearer "+mgmtKey)
	if r.status != http.StatusForbidden {
		t.Errorf("management key on chat = %d, want 403", r.status)
	}
}

func TestOpenRouterExhaustedKey(t *testing.T) {
	p, _, base := startOpenRouter(t)
	p.SetKeyQuota(canary, true)
	r := call(t, "GET", base+"/key", "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusOK || r.json(t)["data"].(map[string]any)["limit_remaining"] != float64(0) {
		t.Errorf("GET /key for an exhausted key = %d %s, want 200 with limit_remaining 0", r.status, r.body)
	}
	r = call(t, "POST", base+"/chat/completions", chatBody(testModel, false, ""), "Authorization", "Bearer "+canary)
	if r.status != http.StatusPaymentRequired {
		t.Errorf("chat with an exhausted key = %d, want 402", r.status)
	}
}

func TestMintedKeyWorksOnEveryShape(t *testing.T) {
	_, url, base := startOpenRouter(t)
	_, key := mint(t, base, `{"name":"rotation secret-a token-1","limit":5}`)
	if !strings.HasPrefix(key, "sk-or-v1-") {
		t.Errorf("minted key does not start with sk-or-v1-")
	}
	checks := []struct {
		name    string
		url     string
		headers []string
	}{
		{"openai", url + "/openai/v1/models", []string{"Authorization", "Bearer " + key}},
		{"anthropic", url + "/anthropic/v1/models", []string{"X-Api-Key", key, "Anthropic-Version", "2023-06-01"}},
		{"gemini", url + "/gemini/v1beta/models", []string{"X-Goog-Api-Key", key}},
		{"openrouter", base + "/key", []string{"Authorization", "Bearer " + key}},
	}
	for _, c := range checks {
		if r := call(t, "GET", c.url, "", c.headers...); r.status != http.StatusOK {
			t.Errorf("%s: status = %d, want 200: %s", c.name, r.status, r.body)
		}
	}
	r := call(t, "GET", base+"/key", "", "Authorization", "Bearer "+key)
	data := r.json(t)["data"].(map[string]any)
	if data["label"] != "rotation secret-a token-1" || data["limit"] != float64(5) {
		t.Errorf("GET /key = %v, want the minted name as label and limit 5", data)
	}
}

func TestManagementNeverReturnsKeys(t *testing.T) {
	_, _, base := startOpenRouter(t)
	hash, key := mint(t, base, `{"name":"secret-b"}`)
	auth := []string{"Authorization", "Bearer " + mgmtKey}
	responses := []response{
		call(t, "GET", base+"/keys", "", auth...),
		call(t, "GET", base+"/keys/"+hash, "", auth...),
		call(t, "PATCH", base+"/keys/"+hash, `{"name":"secret-b renamed"}`, auth...),
		call(t, "GET", base+"/keys?include_disabled=true", "", auth...),
		call(t, "DELETE", base+"/keys/"+hash, "", auth...),
	}
	for i, r := range responses {
		if r.status != http.StatusOK {
			t.Errorf("request %d: status = %d: %s", i, r.status, r.body)
		}
		if bytes.Contains(r.body, []byte(key)) || bytes.Contains(r.body, []byte(`"key"`)) {
			t.Errorf("request %d: the response carries a key: %s", i, r.body)
		}
	}
}

func TestManagementLifecycle(t *testing.T) {
	p, url, base := startOpenRouter(t)
	auth := []string{"Authorization", "Bearer " + mgmtKey}
	hash, key := mint(t, base, `{"name":"secret-c"}`)
	works := func() int {
		return call(t, "GET", url+"/openai/v1/models", "", "Authorization", "Bearer "+key).status
	}

	r := call(t, "GET", base+"/keys", "", auth...)
	if got := ids(t, r.json(t)["data"].([]any), "hash"); len(got) != 1 || got[0] != hash {
		t.Errorf("GET /keys hashes = %v, want [%s]", got, hash)
	}

	r = call(t, "PATCH", base+"/keys/"+hash, `{"disabled":true}`, auth...)
	if r.json(t)["data"].(map[string]any)["disabled"] != true {
		t.Errorf("PATCH disabled: %s", r.body)
	}
	if status := works(); status != http.StatusUnauthorized {
		t.Errorf("disabled key: status = %d, want 401", status)
	}
	if n := len(call(t, "GET", base+"/keys", "", auth...).json(t)["data"].([]any)); n != 0 {
		t.Errorf("GET /keys lists %d disabled keys, want 0 without include_disabled", n)
	}
	if n := len(call(t, "GET", base+"/keys?include_disabled=true", "", auth...).json(t)["data"].([]any)); n != 1 {
		t.Errorf("GET /keys?include_disabled=true lists %d keys, want 1", n)
	}

	call(t, "PATCH", base+"/keys/"+hash, `{"disabled":false}`, auth...)
	if status := works(); status != http.StatusOK {
		t.Errorf("re-enabled key: status = %d, want 200", status)
	}

	r = call(t, "DELETE", base+"/keys/"+hash, "", auth...)
	if r.status != http.StatusOK || r.json(t)["deleted"] != true {
		t.Errorf("DELETE = %d %s, want 200 deleted true", r.status, r.body)
	}
	if status := works(); status != http.StatusUnauthorized {
		t.Errorf("deleted key: status = %d, want 401", status)
	}
	if r := call(t, "GET", base+"/keys/"+hash, "", auth...); r.status != http.StatusNotFound {
		t.Errorf("GET deleted key = %d, want 404", r.status)
	}
	minted := p.MintedKeys()
	if len(minted) != 1 || minted[0].Hash != hash || !minted[0].Deleted || minted[0].Name != "secret-c" {
		t.Errorf("MintedKeys = %+v, want secret-c deleted", minted)
	}
}

func TestRevokeMintedKey(t *testing.T) {
	p, url, base := startOpenRouter(t)
	_, key := mint(t, base, `{"name":"secret-d"}`)
	p.RevokeKey(key)
	if r := call(t, "GET", url+"/openai/v1/models", "", "Authorization", "Bearer "+key); r.status != 401 {
		t.Errorf("revoked minted key: status = %d, want 401", r.status)
	}
	if !p.MintedKeys()[0].Deleted {
		t.Error("MintedKeys does not mark the revoked key deleted")
	}
}

func TestManagementListOffset(t *testing.T) {
	_, _, base := startOpenRouter(t)
	for i := range 105 {
		mint(t, base, fmt.Sprintf(`{"name":"key-%03d"}`, i))
	}
	auth := []string{"Authorization", "Bearer " + mgmtKey}
	first := call(t, "GET", base+"/keys", "", auth...).json(t)["data"].([]any)
	if len(first) != 100 {
		t.Fatalf("first page has %d keys, want 100", len(first))
	}
	if name := first[0].(map[string]any)["name"]; name != "key-104" {
		t.Errorf("first listed key = %v, want the newest, key-104", name)
	}
	rest := call(t, "GET", base+"/keys?offset=100", "", auth...).json(t)["data"].([]any)
	if len(rest) != 5 {
		t.Errorf("offset=100 returned %d keys, want 5", len(rest))
	}
	if r := call(t, "GET", base+"/keys?offset=-1", "", auth...); r.status != http.StatusBadRequest {
		t.Errorf("offset=-1: status = %d, want 400", r.status)
	}
}

func TestManagementCreateErrors(t *testing.T) {
	_, _, base := startOpenRouter(t)
	for _, body := range []string{`{`, `{}`, `{"name":""}`, `{"name":"x","limit":-1}`, `{"name":"x","limit_reset":"hourly"}`, `{"name":"x","disabled":true}`} {
		r := call(t, "POST", base+"/keys", body, "Authorization", "Bearer "+mgmtKey)
		if r.status != http.StatusBadRequest || errorField(t, r, "code") != float64(400) {
			t.Errorf("POST /keys %s = %d %s, want 400", body, r.status, r.body)
		}
	}
	r := call(t, "PATCH", base+"/keys/nope", `{"disabled":true}`, "Authorization", "Bearer "+mgmtKey)
	if r.status != http.StatusNotFound {
		t.Errorf("PATCH unknown hash = %d, want 404", r.status)
	}
}

func TestMintOptions(t *testing.T) {
	fixed := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	p, url := fakeprovider.Start(t, fakeprovider.Options{KeyPrefix: "sk-dev-", Clock: func() time.Time { return fixed }})
	p.AddManagementKey(mgmtKey)
	r := call(t, "POST", url+"/openrouter/api/v1/keys/", `{"name":"n"}`, "Authorization", "Bearer "+mgmtKey)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /keys/ = %d: %s", r.status, r.body)
	}
	body := r.json(t)
	if !strings.HasPrefix(body["key"].(string), "sk-dev-") {
		t.Error("minted key does not use KeyPrefix")
	}
	if got := body["data"].(map[string]any)["created_at"]; got != "2025-05-06T07:08:09Z" {
		t.Errorf("created_at = %v, want the clock's time", got)
	}
	if !p.MintedKeys()[0].CreatedAt.Equal(fixed) {
		t.Errorf("MintedKeys CreatedAt = %v, want %v", p.MintedKeys()[0].CreatedAt, fixed)
	}
}

func TestOpenRouterChatStreamAlwaysHasUsage(t *testing.T) {
	_, _, base := startOpenRouter(t)
	r := call(t, "POST", base+"/chat/completions", chatBody(testModel, true, ""), "Authorization", "Bearer "+canary)
	if !strings.HasPrefix(string(r.body), ": OPENROUTER PROCESSING") {
		t.Errorf("stream does not start with the processing comment: %.40q", r.body)
	}
	evs, err := events(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	chunks := parseChunks(t, evs)
	if final := chunks[len(chunks)-1]; len(final.Choices) != 0 || len(final.Usage) == 0 || string(final.Usage) == "null" {
		t.Errorf("last chunk = %+v, want a usage-only chunk though the client did not ask", final)
	}
}

func TestOpenRouterChatUnknownModel(t *testing.T) {
	_, _, base := startOpenRouter(t)
	r := call(t, "POST", base+"/chat/completions", chatBody("no/model", false, ""), "Authorization", "Bearer "+canary)
	if r.status != http.StatusBadRequest || errorField(t, r, "code") != float64(400) {
		t.Errorf("unknown model = %d %s, want 400", r.status, r.body)
	}
}

func TestOpenRouterModelsNeedNoKey(t *testing.T) {
	_, _, base := startOpenRouter(t)
	r := call(t, "GET", base+"/models", "")
	if r.status != http.StatusOK || len(r.json(t)["data"].([]any)) == 0 {
		t.Errorf("GET /models without a key = %d %s, want 200 with models", r.status, r.body)
	}
}

func TestMintedKeyWarmup(t *testing.T) {
	p, url := fakeprovider.Start(t, fakeprovider.Options{MintedKeyWarmup: 2})
	p.AddManagementKey(mgmtKey)
	p.AddKey(canary)
	base := url + fakeprovider.OpenRouterPrefix
	_, key := mint(t, base, `{"name":"warming"}`)

	for i := range 2 {
		if r := call(t, "GET", base+"/key", "", "Authorization", "Bearer "+key); r.status != http.StatusUnauthorized {
			t.Errorf("request %d while warming up: status = %d, want 401", i+1, r.status)
		}
	}
	if r := call(t, "GET", base+"/key", "", "Authorization", "Bearer "+key); r.status != http.StatusOK {
		t.Errorf("request after the warm-up: status = %d, want 200", r.status)
	}
	if r := call(t, "GET", url+"/openai/v1/models", "", "Authorization", "Bearer "+key); r.status != http.StatusOK {
		t.Errorf("OpenAI shape after the warm-up: status = %d, want 200", r.status)
	}
	if r := call(t, "GET", base+"/key", "", "Authorization", "Bearer "+canary); r.status != http.StatusOK {
		t.Errorf("added key: status = %d, want 200: the warm-up applies to minted keys only", r.status)
	}
}
