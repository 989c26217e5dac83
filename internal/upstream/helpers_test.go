package upstream_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/upstream"
	"github.com/keyturn/keyturn/keystore"
)

// canary is the provider key of the main test secret. No log line, error
// body or response may contain it.
const canary = "sk-canary-upstream-5f0e3b7c9a1d4e26"

const (
	secretID      = "keyturn/test/openai"
	publicModel   = "team-chat"
	upstreamModel = "gpt-4o-mini"
)

// deadline bounds every test's waits, only to fail a hang.
const deadline = 30 * time.Second

// lockedBuffer collects log output from concurrent requests.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a router stand-in in front of a Proxy, a file store, the real
// keystore cache and the stand-in provider, all on 127.0.0.1.
type env struct {
	t        *testing.T
	fake     *fakeprovider.Provider
	fakeURL  string
	store    *keystore.FileStore
	cache    *keystore.Cache
	proxy    *upstream.Proxy
	router   string // the router stand-in's URL
	logs     *lockedBuffer
	bodies   *lockedBuffer // every response body the router stand-in sent
	outcomes chan upstream.Outcome
	// secretOf and modelOf pick the Request for a client request; the
	// defaults are secretID and upstreamModel.
	secretOf func(r *http.Request) string
	modelOf  func(r *http.Request) string
}

type envOptions struct {
	policy    *provider.Policy
	transport http.RoundTripper
	// minRefreshInterval, responseHeaderTimeout and cooldown set the
	// Options of the same names; zero keeps the defaults.
	minRefreshInterval    time.Duration
	responseHeaderTimeout time.Duration
	cooldown              time.Duration
}

func newEnv(t *testing.T) *env { return newEnvWith(t, envOptions{}) }

func newEnvWith(t *testing.T, opts envOptions) *env {
	t.Helper()
	e := &env{t: t, logs: &lockedBuffer{}, bodies: &lockedBuffer{}, outcomes: make(chan upstream.Outcome, 100)}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.fake, e.fakeURL = fakeprovider.Start(t, fakeprovider.Options{Logger: logger})

	store, err := keystore.OpenFile(keystore.FileOptions{Dir: t.TempDir(), Create: true, Logger: logger})
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e.store = store
	e.cache, err = keystore.NewCache(store, keystore.CacheOptions{Logger: logger})
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(e.cache.Close)

	if opts.policy == nil {
		opts.policy = provider.NewPolicy(nil, true)
	}
	e.proxy, err = upstream.New(upstream.Options{
		Keys: e.cache, Policy: opts.policy, Transport: opts.transport, Logger: logger,
		MinRefreshInterval: opts.minRefreshInterval, ResponseHeaderTimeout: opts.responseHeaderTimeout,
		Cooldown: opts.cooldown, Observe: e.observe,
	})
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	e.router = e.serveRouter()
	t.Cleanup(e.checkCanary)
	return e
}

func (e *env) observe(_ *http.Request, o upstream.Outcome) { e.outcomes <- o }

// outcome returns the outcome of the next request, in the order Observe
// reported them. Observe may run after the client has read the whole
// response, so it waits.
func (e *env) outcome() upstream.Outcome {
	e.t.Helper()
	select {
	case o := <-e.outcomes:
		return o
	case <-time.After(deadline):
		e.t.Fatal("Observe was not called")
	}
	return upstream.Outcome{}
}

// checkNoMoreOutcomes fails the test if Observe reported more outcomes than
// the test consumed. It sees only the reports made before it runs, so a
// duplicate report that comes later goes unnoticed.
func (e *env) checkNoMoreOutcomes() {
	e.t.Helper()
	if n := len(e.outcomes); n > 0 {
		e.t.Errorf("Observe reported %d more outcomes than requests", n)
	}
}

// serveRouter starts the router stand-in: it reads and parses the body and
// calls Serve with the endpoint of the request's path, as the router does.
func (e *env) serveRouter() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatalf("listen: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(e.route))
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	e.t.Cleanup(srv.Close)
	return srv.URL
}

var endpoints = map[string]upstream.Endpoint{
	"/v1/chat/completions": upstream.ChatCompletions,
	"/v1/responses":        upstream.Responses,
	"/v1/embeddings":       upstream.Embeddings,
}

func (e *env) route(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	parsed, err := upstream.ParseBody(body)
	if err != nil {
		upstream.WriteBodyError(w, err)
		return
	}
	req := upstream.Request{Endpoint: endpoints[r.URL.Path], SecretID: secretID, Model: upstreamModel, Body: parsed}
	if e.secretOf != nil {
		req.SecretID = e.secretOf(r)
	}
	if e.modelOf != nil {
		req.Model = e.modelOf(r)
	}
	e.proxy.Serve(&teeWriter{ResponseWriter: w, copy: e.bodies}, r, req)
}

// teeWriter copies every response body to the env, for the canary check.
type teeWriter struct {
	http.ResponseWriter
	copy io.Writer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	_, _ = w.copy.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// checkCanary fails the test if the canary key reached a log line or a
// response body.
func (e *env) checkCanary() {
	if strings.Contains(e.logs.String(), canary) {
		e.t.Error("the canary key appears in the logs")
	}
	if strings.Contains(e.bodies.String(), canary) {
		e.t.Error("the canary key appears in a response body")
	}
}

// value returns a version's value JSON for key, recording adapter and
// baseURL as a validated rotation does.
func value(t *testing.T, key, adapter, baseURL string) keystore.Secret {
	t.Helper()
	v := keystore.Value{
		APIKey:    keystore.NewSecret(key),
		CreatedAt: time.Now().UTC(),
		Settings:  keystore.Settings{Provider: adapter, BaseURL: baseURL},
	}
	s, err := v.Encode()
	if err != nil {
		t.Fatalf("encode value: %v", err)
	}
	return s
}

// openaiURL is the stand-in's OpenAI base URL.
func (e *env) openaiURL() string { return e.fakeURL + fakeprovider.OpenAIPrefix }

// createSecret creates id with raw as its AWSCURRENT value and returns the
// version id.
func (e *env) createSecret(id string, raw keystore.Secret) string {
	e.t.Helper()
	token := newToken(e.t)
	_, err := e.store.Create(context.Background(), keystore.CreateInput{SecretID: id, Value: raw, Token: token})
	if err != nil {
		e.t.Fatalf("Create %s: %v", id, err)
	}
	return token
}

// addSecret creates id with key as its AWSCURRENT key for adapter at
// baseURL, known to the stand-in, and returns the version id.
func (e *env) addSecret(id, key, adapter, baseURL string) string {
	e.t.Helper()
	e.fake.AddKey(key)
	return e.createSecret(id, value(e.t, key, adapter, baseURL))
}

// putCurrent writes key as id's new AWSCURRENT, as a finished rotation
// leaves it: the old current becomes AWSPREVIOUS. It returns the version
// id.
func (e *env) putCurrent(id, key, adapter, baseURL string) string {
	e.t.Helper()
	token := newToken(e.t)
	err := e.store.Put(context.Background(), keystore.PutInput{SecretID: id, Token: token, Value: value(e.t, key, adapter, baseURL)})
	if err != nil {
		e.t.Fatalf("Put %s: %v", id, err)
	}
	return token
}

// newToken returns a version id, as a client request token.
func newToken(t *testing.T) string {
	t.Helper()
	return uuid.NewString()
}

// response is a client's view of one response.
type response struct {
	status int
	header http.Header
	body   string
}

// post sends body to the router stand-in's path with header.
func (e *env) post(path, body string, header http.Header) response {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.router+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read the response of POST %s: %v", path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(data)}
}

// chat sends a chat completion for publicModel.
func (e *env) chat(extra string) response {
	e.t.Helper()
	return e.post("/v1/chat/completions", chatBody(extra), nil)
}

// chatBody is a chat completion request for publicModel, with extra
// members (such as `"stream": true`) appended.
func chatBody(extra string) string {
	body := `{"model": "` + publicModel + `", "messages": [{"role": "user", "content": "hello there"}]`
	if extra != "" {
		body += ", " + extra
	}
	return body + "}"
}

// apiError decodes an OpenAI-style error body.
func apiError(t *testing.T, body string) (message, typ, code string) {
	t.Helper()
	var e struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("the body is not an OpenAI error: %v: %s", err, body)
	}
	if e.Error.Code != nil {
		code = *e.Error.Code
	}
	return e.Error.Message, e.Error.Type, code
}

// readEvent reads one server-sent event, up to and including its blank
// line. bufio.Reader has no line limit, so large events read whole.
func readEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var event strings.Builder
	for {
		line, err := r.ReadString('\n')
		event.WriteString(line)
		if err != nil {
			t.Fatalf("read an event: %v (read so far: %.200q)", err, event.String())
		}
		if line == "\n" || line == "\r\n" {
			return event.String()
		}
	}
}

// events splits a stream into its events' data, without comments.
func events(stream string) []string {
	var out []string
	for _, event := range strings.Split(stream, "\n\n") {
		for _, line := range strings.Split(event, "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				out = append(out, data)
			}
		}
	}
	return out
}

// lastRequest returns the stand-in's last recorded request.
func (e *env) lastRequest() fakeprovider.RequestRecord {
	e.t.Helper()
	recs := e.fake.Requests()
	if len(recs) == 0 {
		e.t.Fatal("the stand-in provider got no request")
	}
	return recs[len(recs)-1]
}
