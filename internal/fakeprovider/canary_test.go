package fakeprovider_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

// syncBuffer is a bytes.Buffer that a logger may write from many handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// secretParts are pieces of a key that must not appear either: OpenAI, for
// one, echoes the end of a key.
func secretParts(key string) []string {
	return []string{key, key[len(key)-10:], key[:12]}
}

// TestNoKeyInResponsesOrLogs sends the canary, a management key and a
// minted key through every endpoint, right and wrong, and checks that no
// response and no log line carries any of them, except the one response
// that mints a key.
func TestNoKeyInResponsesOrLogs(t *testing.T) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, url := fakeprovider.Start(t, fakeprovider.Options{Logger: logger})
	p.AddKey(canary)
	p.AddManagementKey(mgmtKey)

	mintResp := call(t, "POST", url+"/openrouter/api/v1/keys", `{"name":"canary test"}`, "Authorization", "Bearer "+mgmtKey)
	minted := mintResp.json(t)["key"].(string)
	hash := mintResp.json(t)["data"].(map[string]any)["hash"].(string)

	var responses []response
	for _, key := range []string{canary, mgmtKey, minted, "wrong-" + canary} {
		responses = append(responses, callEverything(t, url, key, hash)...)
	}
	p.SetKeyQuota(canary, true)
	responses = append(responses, callEverything(t, url, canary, hash)...)
	p.SetFault("/", fakeprovider.Fault{Status: 429})
	responses = append(responses, callEverything(t, url, canary, hash)...)

	for _, key := range []string{canary, mgmtKey, minted} {
		for _, part := range secretParts(key) {
			for i, r := range responses {
				if strings.Contains(string(r.body), part) || strings.Contains(fmt.Sprint(r.header), part) {
					t.Errorf("response %d carries part of a key: %s", i, r.body)
				}
			}
			if strings.Contains(logs.String(), part) {
				t.Errorf("the log carries part of a key:\n%s", logs.String())
			}
		}
	}
	if !strings.Contains(logs.String(), "fakeprovider request") {
		t.Error("the provider logged no requests")
	}
}

// callEverything calls every endpoint of every shape with key in each
// shape's credential header, and in the wrong ones.
func callEverything(t *testing.T, url, key, hash string) []response {
	t.Helper()
	bearer := []string{"Authorization", "Bearer " + key}
	anthropic := []string{"X-Api-Key", key, "Anthropic-Version", "2023-06-01"}
	gemini := []string{"X-Goog-Api-Key", key}
	chat := chatBody(testModel, true, `"stream_options":{"include_usage":true}`)
	requests := []struct {
		method, path, body string
		headers            []string
	}{
		{"GET", "/openai/v1/models", "", bearer},
		{"GET", "/openai/v1/models", "", anthropic},
		{"GET", "/openai/v1/models/" + testModel, "", bearer},
		{"POST", "/openai/v1/chat/completions", chat, bearer},
		{"POST", "/openai/v1/chat/completions", chatBody(testModel, false, ""), bearer},
		{"POST", "/openai/v1/chat/completions", chatBody("gpt-99", false, ""), bearer},
		{"POST", "/openai/v1/embeddings", `{"model":"text-embedding-3-small","input":"x"}`, bearer},
		{"GET", "/anthropic/v1/models", "", anthropic},
		{"GET", "/anthropic/v1/models", "", bearer},
		{"GET", "/anthropic/v1/models/claude-2.1", "", anthropic},
		{"GET", "/gemini/v1beta/models", "", gemini},
		{"GET", "/gemini/v1beta/models?key=" + key, "", nil},
		{"GET", "/gemini/v1beta/models", "", bearer},
		{"GET", "/openrouter/api/v1/key", "", bearer},
		{"GET", "/openrouter/api/v1/keys", "", bearer},
		{"GET", "/openrouter/api/v1/keys/" + hash, "", bearer},
		{"PATCH", "/openrouter/api/v1/keys/" + hash, `{"name":"renamed"}`, bearer},
		{"POST", "/openrouter/api/v1/chat/completions", chat, bearer},
		{"GET", "/openrouter/api/v1/nowhere", "", bearer},
		{"POST", "/openai/v1/responses", `{"model":"gpt-4o","input":"x","stream":true}`, bearer},
		{"POST", "/openai/v1/responses", `{"model":"gpt-99","input":"x"}`, bearer},
		{"POST", "/openrouter/api/v1/responses", `{"model":"gpt-4o","input":"x"}`, bearer},
		{"POST", "/openrouter/api/v1/embeddings", `{"model":"text-embedding-3-small","input":"x"}`, bearer},
		{"POST", "/gemini/v1beta/openai/chat/completions", chat, bearer},
		{"POST", "/gemini/v1beta/openai/embeddings", `{"model":"text-embedding-004","input":"x"}`, bearer},
		{"POST", "/anthropic/v1/chat/completions", chat, bearer},
		{"POST", "/anthropic/v1/chat/completions", chat, anthropic},
	}
	var out []response
	for _, req := range requests {
		r := call(t, req.method, url+req.path, req.body, req.headers...)
		if r.status == 0 || r.status == http.StatusInternalServerError {
			t.Errorf("%s %s: status %d", req.method, req.path, r.status)
		}
		out = append(out, r)
	}
	return out
}
