package router

import (
	"bytes"
	"context"
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

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// Canary keys: neither may appear in any log line, response or metric.
const (
	canaryKey  = "sk-canary-0123456789abcdefCANARY"
	canaryKey2 = "sk-canary-second-0123456789CANARY"
	openaiID   = "keyturn/openai"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv is a router over a real file store, the real keystore cache and
// the stand-in provider, served on 127.0.0.1.
type testEnv struct {
	t       *testing.T
	store   *keystore.FileStore
	cache   *keystore.Cache
	fake    *fakeprovider.Provider
	fakeURL string
	logs    *syncBuffer
	server  *Server
	// httpServer serves server at url.
	httpServer *httptest.Server
	url        string
	clientKey  string
	// seen collects every response body, to check for canaries.
	seen *syncBuffer
}

type envOptions struct {
	// client is the client of clientKey; its Hash is filled in.
	client clientkeys.Client
	// noClients leaves the clients secret out of the store.
	noClients bool
	config    func(*Config)
	now       func() time.Time
	// wrapStore, if set, wraps the store that the cache reads.
	wrapStore func(keystore.Store) keystore.Store
	// rereadInterval is Options.RereadInterval.
	rereadInterval time.Duration
	// noLoopback makes the host policy refuse the stand-in provider's
	// loopback address.
	noLoopback bool
	// cacheNow is the cache's clock; nil is time.Now.
	cacheNow func() time.Time
	// bodyReadTimeout is Options.BodyReadTimeout.
	bodyReadTimeout time.Duration
	// baseContext, if set, is the HTTP server's BaseContext.
	baseContext context.Context
}

func newTestEnv(t *testing.T, opts envOptions) *testEnv {
	t.Helper()
	e := &testEnv{t: t, logs: &syncBuffer{}, seen: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := keystore.OpenFile(keystore.FileOptions{Dir: t.TempDir(), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e.store = st
	e.fake, e.fakeURL = fakeprovider.Start(t, fakeprovider.Options{})
	e.fake.AddKey(canaryKey)
	e.putKey(openaiID, canaryKey)
	if !opts.noClients {
		e.addClient(opts.client)
	}

	var source keystore.Store = st
	if opts.wrapStore != nil {
		source = opts.wrapStore(st)
	}
	cache, err := keystore.NewCache(source, keystore.CacheOptions{RefreshInterval: time.Hour, Logger: logger, Now: opts.cacheNow})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	e.cache = cache

	cfg, err := ParseConfig("test.yaml", []byte(`
providers:
  openai: {secret: keyturn/openai}
models:
  gpt-4o: {provider: openai}
  fast: {provider: openai, model: gpt-4o-mini}
  embed: {provider: openai, model: text-embedding-3-small}
`))
	if err != nil {
		t.Fatal(err)
	}
	if opts.config != nil {
		opts.config(&cfg)
	}
	e.server, err = New(Options{Config: cfg, Keys: cache, Policy: provider.NewPolicy(nil, !opts.noLoopback), Logger: logger, Now: opts.now,
		RereadInterval: opts.rereadInterval, Store: st, BodyReadTimeout: opts.bodyReadTimeout})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the canary check runs after the server has
	// closed, so it reads the log lines of every request.
	t.Cleanup(e.checkCanaries)
	e.httpServer = httptest.NewUnstartedServer(e.server)
	if opts.baseContext != nil {
		e.httpServer.Config.BaseContext = func(net.Listener) context.Context { return opts.baseContext }
	}
	e.httpServer.Start()
	t.Cleanup(e.httpServer.Close)
	e.url = e.httpServer.URL
	return e
}

// serverLogs closes the server, which waits for every request in flight to
// finish, and returns the log. The access log line of a request is written
// after its response, so a client may read the response before the line
// exists: tests that check access log lines read them here.
func (e *testEnv) serverLogs() string {
	e.httpServer.Close()
	return e.logs.String()
}

// putKey stores key as the new AWSCURRENT version of secret, creating the
// secret on first use, and returns the version id.
func (e *testEnv) putKey(secret, key string) string {
	e.t.Helper()
	return e.putProviderKey(secret, "openai", fakeprovider.OpenAIPrefix, key)
}

// putProviderKey is putKey for the stand-in provider's adapter name and
// its path prefix, such as "anthropic" and fakeprovider.AnthropicPrefix.
func (e *testEnv) putProviderKey(secret, adapter, prefix, key string) string {
	e.t.Helper()
	v := keystore.Value{
		APIKey:    keystore.NewSecret(key),
		CreatedAt: time.Now().UTC(),
		Settings:  keystore.Settings{Provider: adapter, BaseURL: e.fakeURL + prefix},
	}
	enc, err := v.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	return e.putValue(secret, enc)
}

func (e *testEnv) putValue(secret string, value keystore.Secret) string {
	e.t.Helper()
	ctx := context.Background()
	token := uuid.NewString()
	_, err := e.store.Create(ctx, keystore.CreateInput{SecretID: secret, Value: value, Token: token})
	if err == nil {
		return token
	}
	if err := e.store.Put(ctx, keystore.PutInput{SecretID: secret, Token: token, Value: value}); err != nil {
		e.t.Fatal(err)
	}
	return token
}

// addClient writes a clients secret with c alone and sets e.clientKey.
func (e *testEnv) addClient(c clientkeys.Client) {
	e.t.Helper()
	key, hash, err := clientkeys.NewKey()
	if err != nil {
		e.t.Fatal(err)
	}
	if c.ID == "" {
		c.ID = "kc_test0001"
	}
	if c.Name == "" {
		c.Name = "ci"
	}
	c.Hash = hash
	e.clientKey = key.Reveal()
	e.writeClients(c)
}

func (e *testEnv) writeClients(clients ...clientkeys.Client) string {
	e.t.Helper()
	data, err := clientkeys.List{Clients: clients}.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	return e.putValue(DefaultClientsSecret, keystore.NewSecret(string(data)))
}

func (e *testEnv) refresh(secret string) {
	e.t.Helper()
	if _, err := e.cache.Refresh(context.Background(), secret); err != nil {
		e.t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request with the client key in Authorization, unless key is
// "-" (no key) or another value.
func (e *testEnv) do(method, path, key, body string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "-" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.send(req)
}

func (e *testEnv) send(req *http.Request) response {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = e.seen.Write(data)
	return response{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

func (e *testEnv) chat(model string) response {
	e.t.Helper()
	return e.do("POST", "/v1/chat/completions", e.clientKey,
		`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`)
}

func (e *testEnv) scrape() string {
	e.t.Helper()
	return e.do("GET", "/metrics", "-", "").body
}

// checkCanaries fails the test if a provider key or the client key reached
// a log line or a response.
func (e *testEnv) checkCanaries() {
	for name, text := range map[string]string{"logs": e.logs.String(), "responses": e.seen.String()} {
		for _, key := range []string{canaryKey, canaryKey2, e.clientKey} {
			if key != "" && strings.Contains(text, key) {
				e.t.Errorf("a key appears in the %s", name)
			}
		}
		for _, part := range []string{"CANARY", strings.TrimPrefix(e.clientKey, clientkeys.Prefix)} {
			if len(part) > 8 && strings.Contains(text, part) {
				e.t.Errorf("part of a key appears in the %s", name)
			}
		}
	}
}

func assertStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
}

func assertContains(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("%s does not contain %q:\n%s", what, want, got)
	}
}

func keystoreSecret(s string) keystore.Secret { return keystore.NewSecret(s) }
