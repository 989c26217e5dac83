package upstream_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/upstream"
	"github.com/keyturn/keyturn/keystore"
)

// staticKeys is a KeySource that always returns the same keys.
type staticKeys struct{ keys keystore.Keys }

func (k staticKeys) Get(context.Context, string) (keystore.Keys, error)     { return k.keys, nil }
func (k staticKeys) Refresh(context.Context, string) (keystore.Keys, error) { return k.keys, nil }

// discardTransport reads each request's body to its end, as a provider
// would, and returns a 200 without sending anything.
type discardTransport struct{}

func (discardTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"object":"chat.completion"}`)), Request: r,
	}, nil
}

// BenchmarkLargeBody measures what parsing and sending a 32 MiB body
// allocates (B/op against the body's size), with the network left out.
func BenchmarkLargeBody(b *testing.B) {
	raw, err := keystore.Value{
		APIKey: keystore.NewSecret(canary), CreatedAt: time.Now().UTC(),
		Settings: keystore.Settings{Provider: "openai", BaseURL: "https://api.openai.com/v1"},
	}.Encode()
	if err != nil {
		b.Fatal(err)
	}
	keys := keystore.Keys{Current: keystore.Version{SecretID: secretID, VersionID: "v1", Value: raw}, Fetched: time.Now()}
	p, err := upstream.New(upstream.Options{Keys: staticKeys{keys}, Policy: provider.DefaultPolicy(), Transport: discardTransport{}})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"model":"team-chat","messages":[{"role":"user","content":"` + strings.Repeat("x", 32<<20) + `"}]}`)
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)

	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for range b.N {
		parsed, err := upstream.ParseBody(body)
		if err != nil {
			b.Fatal(err)
		}
		w := httptest.NewRecorder()
		p.Serve(w, r, upstream.Request{Endpoint: upstream.ChatCompletions, SecretID: secretID, Model: upstreamModel, Body: parsed})
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
