package provider

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// canary is the key every test plants; it must never reach a reason, an
// error or a log line.
const canary = "sk-canary-7f3a9c1e5b2d4068"

// reply is one canned response.
type reply struct {
	status int
	body   string
	header map[string]string
}

func (r reply) write(w http.ResponseWriter) {
	if _, ok := r.header["Content-Type"]; !ok {
		w.Header().Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(r.status)
	fmt.Fprint(w, r.body)
}

// routes maps "METHOD /path" to replies served in turn; the last repeats.
type routes map[string][]reply

// api is a test server for one provider's shape. It returns 401 to a
// request without the expected key header, and records each request.
type api struct {
	t      *testing.T
	url    string
	auth   func(*http.Request) bool
	routes routes

	mu       sync.Mutex
	served   map[string]int
	requests []string
	bodies   []string
}

func startAPI(t *testing.T, auth func(*http.Request) bool, rs routes) *api {
	t.Helper()
	a := &api{t: t, auth: auth, routes: rs, served: map[string]int{}}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	a.mu.Lock()
	a.requests = append(a.requests, r.Method+" "+r.URL.RequestURI())
	a.bodies = append(a.bodies, body.String())
	route := r.Method + " " + r.URL.Path
	replies := a.routes[route]
	n := a.served[route]
	a.served[route]++
	a.mu.Unlock()

	if strings.Contains(r.URL.String(), canary) {
		a.t.Errorf("key in URL %s", r.URL.Path)
	}
	switch {
	case !a.auth(r):
		reply{status: 401, body: `{"error":{"message":"no key","type":"test","code":"missing_key"}}`}.write(w)
	case len(replies) == 0:
		reply{status: 404, body: `{"error":{"message":"no route","type":"test"}}`}.write(w)
	default:
		replies[min(n, len(replies)-1)].write(w)
	}
}

func (a *api) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.requests)
}

func (a *api) requestList() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.requests...)
}

func bearer(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+canary }

func anthropicAuth(r *http.Request) bool {
	return r.Header.Get("x-api-key") == canary && r.Header.Get("anthropic-version") == "2023-06-01"
}

func geminiAuth(r *http.Request) bool { return r.Header.Get("x-goog-api-key") == canary }

// logBuffer collects log lines safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testChecker returns a checker that allows loopback, retries quickly and
// logs to the returned buffer.
func testChecker(opts Options) (*checker, *logBuffer) {
	logs := &logBuffer{}
	if opts.Policy == nil {
		opts.Policy = NewPolicy(nil, true)
	}
	if opts.Margin == 0 {
		opts.Margin = 100 * time.Millisecond
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	c := New(opts).(*checker)
	c.initial = time.Millisecond
	c.maxTries = 3
	return c, logs
}

// check runs one check with a generous deadline and fails the test if the
// canary leaks into the result or the logs.
func check(t *testing.T, c *checker, logs *logBuffer, s keystore.Settings) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := c.Check(ctx, Request{Key: keystore.NewSecret(canary), Settings: s})
	assertNoCanary(t, res, logs)
	return res
}

func assertNoCanary(t *testing.T, res Result, logs *logBuffer) {
	t.Helper()
	if strings.Contains(res.Reason, canary) {
		t.Errorf("key in reason %q", strings.ReplaceAll(res.Reason, canary, "CANARY"))
	}
	if res.Err != nil && strings.Contains(res.Err.Error(), canary) {
		t.Error("key in error")
	}
	for _, m := range res.Models {
		if strings.Contains(m, canary) {
			t.Error("key in models")
		}
	}
	if logs != nil && strings.Contains(logs.String(), canary) {
		t.Error("key in logs")
	}
}

// adapterCase is one row of an adapter's table test.
type adapterCase struct {
	name     string
	routes   routes
	required []string
	probe    string
	want     Class
	reason   string // a substring of the reason, "" to skip
	status   int    // 0 to skip
	attempts int    // 0 to skip
	models   []string
}

func runAdapterCases(t *testing.T, providerName, path string, auth func(*http.Request) bool, cases []adapterCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := startAPI(t, auth, tc.routes)
			c, logs := testChecker(Options{})
			res := check(t, c, logs, keystore.Settings{
				Provider: providerName, BaseURL: a.url + path,
				RequiredModels: tc.required, Probe: tc.probe,
			})
			if res.Class != tc.want {
				t.Errorf("class = %s, want %s (reason %q, requests %v)", res.Class, tc.want, res.Reason, a.requestList())
			}
			if tc.reason != "" && !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("reason = %q, want it to contain %q", res.Reason, tc.reason)
			}
			if tc.status != 0 && res.Status != tc.status {
				t.Errorf("status = %d, want %d", res.Status, tc.status)
			}
			if tc.attempts != 0 && res.Attempts != tc.attempts {
				t.Errorf("attempts = %d, want %d (requests %v)", res.Attempts, tc.attempts, a.requestList())
			}
			if res.Attempts != a.count() {
				t.Errorf("attempts = %d, but the server saw %d requests", res.Attempts, a.count())
			}
			if tc.models != nil && strings.Join(res.Models, " ") != strings.Join(tc.models, " ") {
				t.Errorf("models = %v, want %v", res.Models, tc.models)
			}
			if res.Err != nil {
				t.Errorf("err = %v, want nil", res.Err)
			}
		})
	}
}

// startHandler starts a test server with h and returns its URL.
func startHandler(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// recorder collects strings from handler goroutines.
type recorder struct {
	mu   sync.Mutex
	list []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, s)
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.list...)
}
