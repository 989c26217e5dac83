package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/keystore"
)

// TestRouterServes runs the router as a process on a file store that the
// rotator set up, and calls each of its endpoints with a client key from
// `rotator client add --key-file`.
func TestRouterServes(t *testing.T) {
	t.Parallel()
	rw := newRouterWorld(t)
	providerKey := rw.plant("provider", true)
	rw.addProviderSecret(providerKey)
	key := rw.addClient("app")
	rp := rw.startRouter()

	t.Run("chat", func(t *testing.T) {
		res := rw.mustCall(rp, http.StatusOK, http.MethodPost, "/v1/chat/completions", key, chatBody("chat", "hello router", false))
		if got := chatContent(t, res.body); got != "echo: hello router" {
			t.Errorf("chat content = %q, want the stand-in's echo", got)
		}
		rec := lastRequest(t, rw.world, "/openai/v1/chat/completions")
		if rec.Model != "gpt-4o-mini" {
			t.Errorf("upstream model = %q, want gpt-4o-mini, the route's upstream name", rec.Model)
		}
		if !rec.Key.Equal(keystore.NewSecret(providerKey)) {
			t.Errorf("upstream request carried %s, want the provider key", rw.nameOf(rec.Key))
		}
	})

	t.Run("stream", func(t *testing.T) {
		s := rw.openStream(rp, key, chatBody("chat", "hello stream", true))
		text, chunks := s.content()
		if text != "echo: hello stream" {
			t.Errorf("streamed content = %q, want the stand-in's echo", text)
		}
		if chunks < 3 {
			t.Errorf("%d chunk events, want one for the role and one a word at least", chunks)
		}
		if rest := s.rest(); rest != "" {
			t.Errorf("the stream goes on after [DONE]: %.200q", rest)
		}
	})

	t.Run("embeddings", func(t *testing.T) {
		res := rw.mustCall(rp, http.StatusOK, http.MethodPost, "/v1/embeddings", key, `{"model": "embed", "input": "hello"}`)
		var body struct {
			Object string `json:"object"`
			Model  string `json:"model"`
			Data   []struct {
				Embedding []float64 `json:"embedding"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(res.body), &body); err != nil {
			t.Fatalf("embeddings body is not JSON: %v", err)
		}
		if body.Object != "list" || len(body.Data) != 1 || len(body.Data[0].Embedding) == 0 {
			t.Errorf("embeddings body = %.300s, want a list of one vector", res.body)
		}
		if body.Model != "text-embedding-3-small" {
			t.Errorf("embeddings model = %q, want text-embedding-3-small", body.Model)
		}
	})

	t.Run("models", func(t *testing.T) {
		res := rw.mustCall(rp, http.StatusOK, http.MethodGet, "/v1/models", key, "")
		var body struct {
			Object string `json:"object"`
			Data   []struct {
				ID      string `json:"id"`
				OwnedBy string `json:"owned_by"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(res.body), &body); err != nil {
			t.Fatalf("models body is not JSON: %v", err)
		}
		var ids []string
		for _, m := range body.Data {
			ids = append(ids, m.ID)
		}
		if body.Object != "list" || !slices.Equal(ids, []string{"chat", "embed"}) {
			t.Errorf("models = %s, want the list of chat and embed", res.body)
		}
	})

	t.Run("healthz", func(t *testing.T) {
		res := rw.mustCall(rp, http.StatusOK, http.MethodGet, "/healthz", "", "")
		var body struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal([]byte(res.body), &body); err != nil || body.Status != "ok" {
			t.Errorf("healthz body = %s, want status ok", res.body)
		}
	})

	t.Run("no key", func(t *testing.T) {
		res := rw.mustCall(rp, http.StatusUnauthorized, http.MethodPost, "/v1/chat/completions", "", chatBody("chat", "hi", false))
		assertOpenAIError(t, res, "invalid_api_key")
	})

	t.Run("wrong key", func(t *testing.T) {
		before := len(settledRequests(t, rw.world))
		res := rw.mustCall(rp, http.StatusUnauthorized, http.MethodPost, "/v1/chat/completions", rw.unknownClientKey(), chatBody("chat", "hi", false))
		assertOpenAIError(t, res, "invalid_api_key")
		res = rw.mustCall(rp, http.StatusUnauthorized, http.MethodGet, "/v1/models", rw.unknownClientKey(), "")
		assertOpenAIError(t, res, "invalid_api_key")
		if after := len(settledRequests(t, rw.world)); after != before {
			t.Errorf("requests with a wrong client key reached the provider: %d requests, want %d", after, before)
		}
	})
}

// assertOpenAIError checks that a response has OpenAI's error body with
// code, and a message to read.
func assertOpenAIError(t *testing.T, res response, code string) {
	t.Helper()
	var body struct {
		Error *struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(res.body), &body); err != nil || body.Error == nil {
		t.Fatalf("status %d body is not an OpenAI error body (%v): %.300s", res.status, err, res.body)
	}
	e := body.Error
	if e.Message == "" || e.Type == "" || e.Code == nil || *e.Code != code {
		t.Errorf("status %d error body = %s, want a message, a type and code %q", res.status, res.body, code)
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("status %d error Content-Type = %q, want application/json", res.status, ct)
	}
}

// settledRequests waits until the stand-in serves no request and returns
// the requests it served. The stand-in records a request when its handler
// returns, which may be after the router has passed the response on.
func settledRequests(t *testing.T, w *world) []fakeprovider.RequestRecord {
	t.Helper()
	poll(t, "the stand-in finishing its requests", func() bool { return w.provider.InFlight() == 0 })
	return w.provider.Requests()
}

// lastRequest returns the stand-in's last recorded request to path.
func lastRequest(t *testing.T, w *world, path string) fakeprovider.RequestRecord {
	t.Helper()
	recs := settledRequests(t, w)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Path == path {
			return recs[i]
		}
	}
	t.Fatalf("the stand-in has no request to %s", path)
	return fakeprovider.RequestRecord{}
}

// TestRouterFollowsRotation rotates the provider secret with the real
// `rotator stage` and `rotator rotate-now` while two routers run on the
// store: one whose cache refreshes every second, and one whose cache would
// not refresh during the test. Both serve across the rotation and keep
// serving once the stand-in revokes the old key: the first through its
// refresh or the stand-in's 401, the second through the 401 alone, which
// makes it re-read the secret and retry. The metrics of both show the new
// version.
func TestRouterFollowsRotation(t *testing.T) {
	t.Parallel()
	rw := newRouterWorld(t)
	oldKey := rw.plant("old provider", true)
	oldVersion := rw.addProviderSecret(oldKey)
	key := rw.addClient("app")
	fresh := rw.startRouter()
	held := rw.startRouterWith("1h")
	routers := []struct {
		name string
		rp   *routerProcess
	}{{"router refreshing every " + shortRefresh, fresh}, {"router refreshing every 1h", held}}

	for _, r := range routers {
		rw.mustCall(r.rp, http.StatusOK, http.MethodPost, "/v1/chat/completions", key, chatBody("chat", "before", false))
		if !rw.metricsShowVersion(r.rp, oldVersion) {
			t.Errorf("%s: /metrics does not show version %s of %s before the rotation", r.name, oldVersion, routerSecret)
		}
	}

	newKey := rw.plant("new provider", true)
	newVersion := rw.rotateTo(newKey)
	for _, r := range routers {
		rw.mustCall(r.rp, http.StatusOK, http.MethodPost, "/v1/chat/completions", key, chatBody("chat", "after rotation", false))
	}

	rw.provider.RevokeKey(oldKey)
	for _, r := range routers {
		res := rw.mustCall(r.rp, http.StatusOK, http.MethodPost, "/v1/chat/completions", key, chatBody("chat", "after revoke", false))
		if got := chatContent(t, res.body); got != "echo: after revoke" {
			t.Errorf("%s: chat content after the revoke = %q, want the echo", r.name, got)
		}
		if rec := lastRequest(t, rw.world, "/openai/v1/chat/completions"); !rec.Key.Equal(keystore.NewSecret(newKey)) {
			t.Errorf("%s: the last upstream request carried %s, want the new provider key", r.name, rw.nameOf(rec.Key))
		}
	}

	// The 401 made the second router re-read the secret before it retried,
	// so its metrics show the new version at once.
	if !rw.metricsShowVersion(held, newVersion) {
		t.Errorf("router refreshing every 1h: /metrics does not show version %s after the retry", newVersion)
	}
	if got := rw.metricValue(held, "keyturn_router_upstream_key_rejections_total"); got != "1" {
		t.Errorf("router refreshing every 1h: key rejections = %q, want 1", got)
	}
	poll(t, "the version gauge showing "+newVersion, func() bool { return rw.metricsShowVersion(fresh, newVersion) })
	for _, r := range routers {
		if rw.metricsShowVersion(r.rp, oldVersion) {
			t.Errorf("%s: /metrics still shows old version %s beside the new one", r.name, oldVersion)
		}
	}
}

// metricsShowVersion reports whether /metrics has the version gauge of
// the provider secret at version.
func (rw *routerWorld) metricsShowVersion(rp *routerProcess, version string) bool {
	rw.t.Helper()
	res := rw.mustCall(rp, http.StatusOK, http.MethodGet, "/metrics", "", "")
	for line := range strings.Lines(res.body) {
		if strings.HasPrefix(line, "keyturn_router_secret_version_info{") &&
			strings.Contains(line, fmt.Sprintf(`secret=%q`, routerSecret)) &&
			strings.Contains(line, fmt.Sprintf(`version_id=%q`, version)) {
			return true
		}
	}
	return false
}

// metricValue returns the value of the provider secret's sample of a
// metric with a secret label alone, or "" when /metrics has none.
func (rw *routerWorld) metricValue(rp *routerProcess, name string) string {
	rw.t.Helper()
	res := rw.mustCall(rp, http.StatusOK, http.MethodGet, "/metrics", "", "")
	prefix := fmt.Sprintf("%s{secret=%q} ", name, routerSecret)
	for line := range strings.Lines(res.body) {
		if value, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// TestRouterClientRevoke revokes a client with `rotator client revoke`
// while the router runs: once the router's cache has re-read the clients
// secret, the revoked key gets 401 and the other client's key still works.
func TestRouterClientRevoke(t *testing.T) {
	t.Parallel()
	rw := newRouterWorld(t)
	rw.addProviderSecret(rw.plant("provider", true))
	revoked := rw.addClient("leaving")
	staying := rw.addClient("staying")
	rp := rw.startRouter()
	rw.mustCall(rp, http.StatusOK, http.MethodGet, "/v1/models", revoked, "")
	rw.mustCall(rp, http.StatusOK, http.MethodGet, "/v1/models", staying, "")

	rw.mustRotator("client", "revoke", "leaving")
	var last response
	poll(t, "a 401 for the revoked client's key", func() bool {
		last = rw.call(rp, http.MethodGet, "/v1/models", revoked, "")
		if last.status != http.StatusOK && last.status != http.StatusUnauthorized {
			t.Fatalf("revoked client: status %d, want 200 before the refresh and 401 after; body:\n%s", last.status, rw.scrubbed(last.body))
		}
		return last.status == http.StatusUnauthorized
	})
	assertOpenAIError(t, last, "invalid_api_key")

	before := len(settledRequests(t, rw.world))
	res := rw.mustCall(rp, http.StatusUnauthorized, http.MethodPost, "/v1/chat/completions", revoked, chatBody("chat", "hi", false))
	assertOpenAIError(t, res, "invalid_api_key")
	if after := len(settledRequests(t, rw.world)); after != before {
		t.Errorf("a request with the revoked key reached the provider")
	}
	rw.mustCall(rp, http.StatusOK, http.MethodPost, "/v1/chat/completions", staying, chatBody("chat", "still here", false))
}

// TestRouterLargeEvent streams a completion whose content is one 5 MiB
// event through the router process, and checks that it arrives intact.
func TestRouterLargeEvent(t *testing.T) {
	t.Parallel()
	rw := newRouterWorld(t)
	rw.addProviderSecret(rw.plant("provider", true))
	key := rw.addClient("app")
	rp := rw.startRouter()

	content := numberedText(5 << 20)
	rw.provider.SetReply(fakeprovider.Reply{Content: content, Chunks: 1})
	s := rw.openStream(rp, key, chatBody("chat", "a large reply", true))
	got, _ := s.content()
	if got != content {
		t.Errorf("streamed content is %d bytes and differs from byte %d, want the %d bytes sent",
			len(got), firstDifference(got, content), len(content))
	}
}

// numberedText returns n bytes of consecutive 8-digit numbers, so that a
// lost, repeated or moved piece shows where it happened.
func numberedText(n int) string {
	var b strings.Builder
	b.Grow(n + 8)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%08d", i)
	}
	return b.String()[:n]
}

func firstDifference(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestRouterStopsAfterStream sends SIGTERM to the router while a stream is
// held open by the stand-in: the router stops accepting connections, the
// stream completes, and the router exits 0.
func TestRouterStopsAfterStream(t *testing.T) {
	t.Parallel()
	rw := newRouterWorld(t)
	rw.addProviderSecret(rw.plant("provider", true))
	key := rw.addClient("app")
	rp := rw.startRouter()

	// The gate holds each event until it receives a value; the one value
	// buffered lets the role chunk through.
	gate := make(chan struct{}, 1)
	gate <- struct{}{}
	rw.provider.SetReply(fakeprovider.Reply{Content: "one two three four", Chunks: 4, Gate: gate})
	// Releasing the gate when the test ends keeps a failed test from
	// holding the stand-in's handler.
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	t.Cleanup(release)

	s := rw.openStream(rp, key, chatBody("chat", "slow", true))
	if text := deltaText(t, s.next()); text != "" {
		t.Fatalf("first event has content %q, want the role chunk", text)
	}

	rp.abandoned = true // it is meant to exit before the test ends
	if err := syscall.Kill(rp.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM to the router: %v", err)
	}
	poll(t, "the router logging that it is stopping", func() bool {
		return strings.Contains(rp.output.String(), "stopping: waiting for requests in flight")
	})
	poll(t, "the router refusing new connections", func() bool { return !accepts(strings.TrimPrefix(rp.URL, "http://")) })
	if rp.exited() {
		t.Fatalf("the router exited with a stream in flight: %v", rp.err)
	}

	release()
	text, _ := s.content()
	if text != "one two three four" {
		t.Errorf("content after SIGTERM = %q, want the rest of the stream", text)
	}
	select {
	case <-rp.done:
	case <-time.After(stopDeadline):
		t.Fatalf("the router did not exit within %v of its last stream ending", stopDeadline)
	}
	if rp.err != nil {
		t.Errorf("router exit after SIGTERM with the stream finished: %v, want exit code 0; output:\n%s", rp.err, rw.scrubbed(rp.output.String()))
	}
}

// TestRouterShutdownTimeoutCutsStream sends SIGTERM to the router while a
// stream is held open past --shutdown-timeout: the router cuts the stream
// and exits 143, 128 plus SIGTERM's number.
func TestRouterShutdownTimeoutCutsStream(t *testing.T) {
	t.Parallel()
	rw := newRouterWorld(t)
	rw.addProviderSecret(rw.plant("provider", true))
	key := rw.addClient("app")
	rp := rw.startRouterWith(shortRefresh, "--shutdown-timeout", "100ms")

	gate := make(chan struct{}, 1)
	gate <- struct{}{}
	t.Cleanup(func() { close(gate) })
	rw.provider.SetReply(fakeprovider.Reply{Content: "never sent", Gate: gate})
	s := rw.openStream(rp, key, chatBody("chat", "held", true))
	s.next()

	rp.abandoned = true // it is meant to exit before the test ends
	if err := syscall.Kill(rp.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM to the router: %v", err)
	}
	select {
	case <-rp.done:
	case <-time.After(stopDeadline):
		t.Fatalf("the router did not exit within %v of SIGTERM with --shutdown-timeout 100ms", stopDeadline)
	}
	if code := rp.cmd.ProcessState.ExitCode(); code != 143 {
		t.Errorf("router exit code after the shutdown timeout = %d, want 143; output:\n%s", code, rw.scrubbed(rp.output.String()))
	}
	if _, err := io.ReadAll(s.r); err == nil {
		t.Errorf("the held stream ended cleanly, want it cut")
	}
}

// TestRouterStartsBeforeKeys starts the router on a store whose provider
// secret has no key yet and which has no client list. The router starts
// anyway, rejects clients and reports itself unhealthy with errors that say
// what to do, and serves once the rotator has added a client and promoted
// a key, without a restart.
func TestRouterStartsBeforeKeys(t *testing.T) {
	t.Parallel()
	rw := newRouterWorld(t)
	rw.mustRotator("add", routerSecret, "--provider", "openai", "--base-url", rw.baseURL, "--allow-loopback")
	rp := rw.startRouter()

	res := rw.mustCall(rp, http.StatusServiceUnavailable, http.MethodGet, "/healthz", "", "")
	assertUnhealthy(t, res, routerSecret)
	res = rw.mustCall(rp, http.StatusUnauthorized, http.MethodGet, "/v1/models", rw.unknownClientKey(), "")
	assertOpenAIError(t, res, "no_client_keys")

	key := rw.addClient("app")
	var last response
	poll(t, "the router accepting the new client", func() bool {
		last = rw.call(rp, http.MethodPost, "/v1/chat/completions", key, chatBody("chat", "hi", false))
		return last.status != http.StatusUnauthorized
	})
	if last.status != http.StatusBadGateway {
		t.Fatalf("chat with no provider key: status %d, want 502; body:\n%s", last.status, rw.scrubbed(last.body))
	}
	assertOpenAIError(t, last, "upstream_key_unavailable")
	assertErrorNames(t, last, "rotator stage "+routerSecret)

	rw.rotateTo(rw.plant("provider", true))
	poll(t, "the router serving the promoted key", func() bool {
		last = rw.call(rp, http.MethodPost, "/v1/chat/completions", key, chatBody("chat", "hi", false))
		return last.status == http.StatusOK
	})
	rw.mustCall(rp, http.StatusOK, http.MethodGet, "/healthz", "", "")
}

// assertUnhealthy checks that a /healthz body reports the router
// unavailable because the secret is not usable, and says why.
func assertUnhealthy(t *testing.T, res response, secretID string) {
	t.Helper()
	var body struct {
		Status  string `json:"status"`
		Secrets []struct {
			SecretID string `json:"secret_id"`
			OK       bool   `json:"ok"`
			Error    string `json:"error"`
		} `json:"secrets"`
	}
	if err := json.Unmarshal([]byte(res.body), &body); err != nil {
		t.Fatalf("healthz body is not JSON (%v): %.300s", err, res.body)
	}
	if body.Status != "unavailable" {
		t.Errorf("healthz status = %q, want unavailable", body.Status)
	}
	for _, s := range body.Secrets {
		if s.SecretID == secretID && !s.OK && s.Error != "" {
			return
		}
	}
	t.Errorf("healthz body = %s, want secret %s not ok, with an error", res.body, secretID)
}
