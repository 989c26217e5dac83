package fakeprovider_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

// Test keys. The canary must never show up in a response or a log line.
const (
	canary    = "sk-canary-5f0e9d8c7b6a-QZXWV"
	mgmtKey   = "sk-or-v1-mgmt-canary-JKQXZ"
	otherKey  = "sk-other-key-not-added"
	testModel = "gpt-4o-mini"
)

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("response body is not a JSON object: %v\n%s", err, r.body)
	}
	return v
}

// call sends one request. Headers are given as name, value pairs.
func call(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	return callContext(t, context.Background(), method, url, body, headers...)
}

func callContext(t *testing.T, ctx context.Context, method, url, body string, headers ...string) response {
	t.Helper()
	resp, err := send(ctx, method, url, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// send is call without the checks, for tests that expect an error.
func send(ctx context.Context, method, url, body string, headers ...string) (*http.Response, error) {
	// The deadline only stops a hung test; no assertion depends on it.
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, reader)
	if err != nil {
		cancel()
		return nil, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// errorField returns body["error"][field].
func errorField(t *testing.T, r response, field string) any {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("response has no error object: %s", r.body)
	}
	return e[field]
}

// events returns the data of each server-sent event in body.
func events(body io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, data)
		}
	}
	return out, sc.Err()
}

// waitForRequests waits until p has recorded n requests, since a handler
// that the client gave up on may finish after the client returns.
func waitForRequests(t *testing.T, p *fakeprovider.Provider, n int) []fakeprovider.RequestRecord {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs := p.Requests()
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("provider recorded %d requests, want %d", len(recs), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ids(t *testing.T, items []any, field string) []string {
	t.Helper()
	var out []string
	for _, item := range items {
		m, ok := item.(map[string]any)
		if !ok {
			t.Fatalf("list item is not an object: %v", item)
		}
		out = append(out, m[field].(string))
	}
	return out
}
