package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

// TestRouterCanaryNeverInOutput drives the router and the rotator through
// the paths that touch keys, failing ones above all, with canary provider
// keys and client keys. checkNoLeaks then searches the router's and the
// rotator's output and every response body for each key. The stand-in
// must never see a client key either.
func TestRouterCanaryNeverInOutput(t *testing.T) {
	t.Parallel()
	rw := newRouterWorld(t)
	current := rw.plant("current canary", true)
	rw.addProviderSecret(current)
	key := rw.addClient("canary-app")
	rp := rw.startRouter()

	rw.mustCall(rp, http.StatusOK, http.MethodPost, "/v1/chat/completions", key, chatBody("chat", "hello", false))
	s := rw.openStream(rp, key, chatBody("chat", "hello stream", true))
	if text, _ := s.content(); text != "echo: hello stream" {
		t.Errorf("streamed content = %q, want the echo", text)
	}
	rw.mustCall(rp, http.StatusOK, http.MethodPost, "/v1/embeddings", key, `{"model": "embed", "input": ["a", "b"]}`)

	// Keys a client may send by mistake: a provider key, a key of no
	// client, and a client key in an Authorization header without Bearer.
	wrong := []http.Header{
		bearer(current),
		bearer(rw.unknownClientKey()),
		{"X-Api-Key": {rw.unknownClientKey()}},
		{"Authorization": {"Basic " + key}},
		{"Authorization": {key}},
	}
	for i, h := range wrong {
		res := rw.callHeader(rp, http.MethodPost, "/v1/chat/completions", h, chatBody("chat", "hi", false))
		if res.status != http.StatusUnauthorized {
			t.Errorf("wrong credential %d: status %d, want 401", i, res.status)
		}
	}

	// A staged key the provider rejects is not promoted, and the router
	// goes on serving the current one.
	rw.mustRotator("stage", routerSecret, "--file", rw.writeFile("rejected.key", rw.plant("rejected canary", false)+"\n"))
	if res := rw.rotator("rotate-now", routerSecret, "--allow-loopback"); res.code != exitRejected {
		t.Errorf("rotate-now with a rejected canary: exit code %d, want %d", res.code, exitRejected)
	}
	rw.mustCall(rp, http.StatusOK, http.MethodPost, "/v1/chat/completions", key, chatBody("chat", "still served", false))

	// With its only key revoked at the provider, the router responds with
	// 502, naming the secret, and logs why.
	rw.provider.RevokeKey(current)
	res := rw.mustCall(rp, http.StatusBadGateway, http.MethodPost, "/v1/chat/completions", key, chatBody("chat", "revoked", false))
	assertErrorNames(t, res, routerSecret)
	res = rw.call(rp, http.MethodPost, "/v1/chat/completions", key, chatBody("chat", "revoked", true))
	if res.status != http.StatusBadGateway {
		t.Errorf("streamed chat with the key revoked: status %d, want 502", res.status)
	}

	rw.call(rp, http.MethodGet, "/healthz", "", "")
	rw.call(rp, http.MethodGet, "/metrics", "", "")
	rw.mustRotator("client", "list")
	rw.mustRotator("client", "list", "--output", "json")
	rw.rotator("status", routerSecret)
	rw.assertNoClientKeyUpstream(key)
}

// assertErrorNames checks that an error response has OpenAI's error body
// and that its message names the secret.
func assertErrorNames(t *testing.T, res response, secretID string) {
	t.Helper()
	if !strings.Contains(res.body, `"error"`) || !strings.Contains(res.body, secretID) {
		t.Errorf("status %d body = %s, want an OpenAI error body naming %s", res.status, res.body, secretID)
	}
}

// assertNoClientKeyUpstream checks that no request the stand-in received
// carried the client key, as its credential or anywhere in its body.
func (rw *routerWorld) assertNoClientKeyUpstream(key string) {
	rw.t.Helper()
	recs := settledRequests(rw.t, rw.world)
	if len(recs) == 0 {
		rw.t.Fatal("the stand-in received no request")
	}
	for _, rec := range recs {
		if rec.Key.Equal(keystore.NewSecret(key)) {
			rw.t.Errorf("%s %s reached the stand-in with the client key as its credential", rec.Method, rec.Path)
		}
		if strings.Contains(string(rec.Body), key) {
			rw.t.Errorf("%s %s reached the stand-in with the client key in its body", rec.Method, rec.Path)
		}
	}
}
