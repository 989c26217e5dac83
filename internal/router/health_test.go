package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// accountDetail is what an AWS error names: an account, a role and an
// instance. None of it may reach /healthz.
const accountDetail = "User: arn:aws:sts::123456789012:assumed-role/keyturn-router/i-0abc is not authorized"

// failingKeys is a key source whose reads fail with err until it is
// cleared. It then serves an empty client list and no provider keys.
type failingKeys struct {
	mu  sync.Mutex
	err error
}

func (f *failingKeys) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *failingKeys) Get(_ context.Context, id string) (keystore.Keys, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil || id != DefaultClientsSecret {
		return keystore.Keys{}, f.err
	}
	v := keystore.Version{SecretID: id, VersionID: "v1", Value: keystore.NewSecret(`{"clients": []}`)}
	return keystore.Keys{Current: v}, nil
}

func (f *failingKeys) Refresh(ctx context.Context, id string) (keystore.Keys, error) {
	return f.Get(ctx, id)
}

func (f *failingKeys) Status(string) (keystore.CacheStatus, bool) {
	return keystore.CacheStatus{}, false
}

func storeError(kind, cause error) error {
	return &keystore.Error{Op: "get", SecretID: openaiID, Kind: kind, Msg: "reading failed", Err: cause}
}

// newHealthServer returns a router over keys, with its log.
func newHealthServer(t *testing.T, keys Keys) (*Server, *syncBuffer) {
	t.Helper()
	cfg, err := ParseConfig("t.yaml", []byte("providers: {openai: {secret: keyturn/openai}}\nmodels: {gpt-4o: {provider: openai}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	s, err := New(Options{Config: cfg, Keys: keys, Policy: provider.NewPolicy(nil, true),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

func probeHealth(s *Server) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	return rec
}

func TestHealthzHidesStoreError(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		phrase string
	}{
		{"unavailable", storeError(keystore.ErrUnavailable, errors.New("api error InternalFailure: "+accountDetail)), "store unavailable"},
		{"access denied", storeError(keystore.ErrUnavailable,
			&smithy.GenericAPIError{Code: "AccessDeniedException", Message: accountDetail}), "access denied"},
		{"not found", storeError(keystore.ErrNotFound, errors.New(accountDetail)), "not found"},
		{"decryption", storeError(keystore.ErrDecryption, errors.New(accountDetail)), "unreadable"},
		{"other", fmt.Errorf("reading /srv/keyturn/store failed: %s", accountDetail), "unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, logs := newHealthServer(t, &failingKeys{err: tt.err})
			rec := probeHealth(s)
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503", rec.Code)
			}
			body := rec.Body.String()
			assertContains(t, "/healthz body", body, `"error":"`+tt.phrase+`"`)
			for _, detail := range []string{"123456789012", "arn:aws", "keyturn-router/", "/srv/keyturn", "reading failed"} {
				if strings.Contains(body, detail) {
					t.Errorf("/healthz body shows the store's error (%q):\n%s", detail, body)
				}
			}
			assertContains(t, "log", logs.String(), "123456789012")
		})
	}
}

func TestHealthzLogsOncePerChange(t *testing.T) {
	keys := &failingKeys{err: storeError(keystore.ErrUnavailable, errors.New(accountDetail))}
	s, logs := newHealthServer(t, keys)
	for range 3 {
		probeHealth(s)
	}
	// Each probe reads the provider secret and the clients secret.
	if n := strings.Count(logs.String(), "secret not readable"); n != 2 {
		t.Errorf("%d log lines about an unreadable secret after 3 probes, want 2 (one per secret):\n%s", n, logs)
	}

	keys.setErr(storeError(keystore.ErrNotFound, errors.New("no such secret")))
	probeHealth(s)
	probeHealth(s)
	if n := strings.Count(logs.String(), "health=\"not found\""); n != 1 {
		t.Errorf("%d log lines about the provider secret not found after 2 probes, want 1:\n%s", n, logs)
	}
	if n := strings.Count(logs.String(), "does not exist yet"); n != 1 {
		t.Errorf("%d log lines about the missing clients secret after 2 probes, want 1:\n%s", n, logs)
	}

	keys.setErr(nil)
	probeHealth(s)
	probeHealth(s)
	if n := strings.Count(logs.String(), "readable again"); n != 2 {
		t.Errorf("%d log lines about secrets readable again after 2 probes, want 2 (one per secret):\n%s", n, logs)
	}
}

// healthOf probes /healthz and returns its status and body.
func (e *testEnv) healthOf() (int, healthBody) {
	e.t.Helper()
	r := e.do("GET", "/healthz", "-", "")
	var body healthBody
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		e.t.Fatalf("/healthz body %s: %v", r.body, err)
	}
	return r.status, body
}

// assertHealth checks /healthz's status, and that the secret id's entry
// shows phrase ("" for none).
func (e *testEnv) assertHealth(status int, id, phrase string) {
	e.t.Helper()
	got, body := e.healthOf()
	if got != status {
		e.t.Errorf("/healthz status %d, want %d; body %+v", got, status, body)
	}
	for _, h := range body.Secrets {
		if h.SecretID == id && h.Error != phrase {
			e.t.Errorf("/healthz error of %s = %q, want %q", id, h.Error, phrase)
		}
	}
}

func TestHealthzInvalidClientList(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	e.assertHealth(http.StatusOK, DefaultClientsSecret, "")
	good := e.writeClientsValue()
	e.putValue(DefaultClientsSecret, keystoreSecret(`{"clients": "nope"}`))
	e.refresh(DefaultClientsSecret)
	e.assertHealth(http.StatusServiceUnavailable, DefaultClientsSecret, phraseInvalidClients)

	e.putValue(DefaultClientsSecret, good)
	e.refresh(DefaultClientsSecret)
	e.assertHealth(http.StatusOK, DefaultClientsSecret, "")
}

// writeClientsValue returns the value of the clients secret now.
func (e *testEnv) writeClientsValue() keystore.Secret {
	e.t.Helper()
	v, err := e.store.Get(context.Background(), DefaultClientsSecret, keystore.Current())
	if err != nil {
		e.t.Fatal(err)
	}
	return v.Value
}

func TestHealthzLoopbackRefused(t *testing.T) {
	e := newTestEnv(t, envOptions{noLoopback: true})
	e.assertHealth(http.StatusServiceUnavailable, openaiID, "base URL refused by the host policy: loopback not allowed")
	assertContains(t, "log", e.logs.String(), "allow_loopback: true")
}

func TestHealthzNoWorkingKey(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	e.fake.RevokeKey(canaryKey)
	assertStatus(t, e.chat("gpt-4o"), http.StatusBadGateway)
	e.assertHealth(http.StatusServiceUnavailable, openaiID, phraseNoWorkingKey)

	e.fake.AddKey(canaryKey)
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	e.assertHealth(http.StatusOK, openaiID, "")
}

// vanishingStore is a store that goes away: once gone is set, every read
// finds nothing, as a file store whose directory was removed.
type vanishingStore struct {
	keystore.Store
	gone atomic.Bool
}

func (s *vanishingStore) Get(ctx context.Context, id string, ref keystore.Ref) (keystore.Version, error) {
	if s.gone.Load() {
		return keystore.Version{}, keystore.Errorf(keystore.ErrNotFound, "GetSecretValue", id, "secret not found")
	}
	return s.Store.Get(ctx, id, ref)
}

func TestStoreGonePastMaxStale(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	var store *vanishingStore
	e := newTestEnv(t, envOptions{
		cacheNow: func() time.Time { return time.Unix(0, now.Load()) },
		wrapStore: func(st keystore.Store) keystore.Store {
			store = &vanishingStore{Store: st}
			return store
		},
	})
	assertStatus(t, e.chat("gpt-4o"), http.StatusOK)
	store.gone.Store(true)
	now.Add(int64(2 * keystore.DefaultMaxStale))

	r := e.chat("gpt-4o")
	assertStatus(t, r, http.StatusServiceUnavailable)
	assertContains(t, "body", r.body, `"code":"clients_unavailable"`)
	e.assertHealth(http.StatusServiceUnavailable, openaiID, phraseUnavailable)
	e.assertHealth(http.StatusServiceUnavailable, DefaultClientsSecret, phraseUnavailable)
}
