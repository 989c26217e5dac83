package loadgen_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/loadgen"
	"github.com/keyturn/keyturn/keystore"
)

// The stand-in provider's OpenAI shape serves POST
// /openai/v1/chat/completions, which is what loadgen sends to URL
// "PROVIDER/openai", so these tests need no router.
const testKey = "sk-loadgen-test-key"

func startProvider(t *testing.T) (*fakeprovider.Provider, string) {
	t.Helper()
	p, url := fakeprovider.Start(t, fakeprovider.Options{})
	p.AddKey(testKey)
	return p, url + "/openai"
}

func run(t *testing.T, opts loadgen.Options, requests int) *loadgen.Report {
	t.Helper()
	g, err := loadgen.Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for g.Sent() < requests && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return g.Stop()
}

func options(url string) loadgen.Options {
	return loadgen.Options{URL: url, Key: keystore.NewSecret(testKey), Model: "gpt-4o-mini", Rate: 200, StreamEvery: 2}
}

func TestGeneratorChecksEcho(t *testing.T) {
	p, url := startProvider(t)
	rep := run(t, options(url), 20)

	if len(rep.Failed()) != 0 {
		t.Fatalf("%s\n%s", rep, rep.FailureList(5))
	}
	if rep.Sent() < 20 {
		t.Errorf("sent %d requests, want 20 at least", rep.Sent())
	}
	if rep.Streamed() == 0 || rep.Streamed() == rep.Sent() {
		t.Errorf("%d of %d requests streamed, want about half", rep.Streamed(), rep.Sent())
	}
	for i, res := range rep.Results {
		if res.Seq != i {
			t.Fatalf("result %d has sequence number %d: results are not ordered and complete", i, res.Seq)
		}
	}
	seen := map[int]bool{}
	for _, rec := range p.Requests() {
		if seq, ok := loadgen.MessageSeq(rec.Body); ok {
			seen[seq] = true
		}
	}
	if len(seen) != rep.Sent() {
		t.Errorf("MessageSeq found %d distinct requests upstream, want %d", len(seen), rep.Sent())
	}
}

func TestGeneratorCountsRejectedKey(t *testing.T) {
	p, url := startProvider(t)
	p.RevokeKey(testKey)
	rep := run(t, options(url), 10)

	failed := rep.Failed()
	if len(failed) != rep.Sent() {
		t.Fatalf("%d of %d requests failed, want all: the key is revoked", len(failed), rep.Sent())
	}
	if failed[0].Status != http.StatusUnauthorized || !strings.Contains(failed[0].Err.Error(), "status 401") {
		t.Errorf("failure = %d %v, want status 401 quoted", failed[0].Status, failed[0].Err)
	}
	if strings.Contains(rep.FailureList(100), testKey) {
		t.Error("the failure list contains the key")
	}
}

func TestGeneratorCountsCutStream(t *testing.T) {
	p, url := startProvider(t)
	p.SetFault("POST /openai/v1/chat/completions", fakeprovider.Fault{CutStreamAfter: 1})
	opts := options(url)
	opts.StreamEvery = 1
	rep := run(t, opts, 10)

	if len(rep.Failed()) != rep.Sent() {
		t.Fatalf("%d of %d cut streams failed, want all:\n%s", len(rep.Failed()), rep.Sent(), rep.FailureList(3))
	}
	if err := rep.Failed()[0].Err.Error(); !strings.Contains(err, "without [DONE]") {
		t.Errorf("failure = %s, want a stream that ended without [DONE]", err)
	}
}

// TestGeneratorChecksContent serves replies that look right but echo the
// wrong message, which only a check of the content catches.
func TestGeneratorChecksContent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"choices":[{"message":{"content":"echo: load 0"}}]}`))
	}))
	t.Cleanup(srv.Close)
	opts := options(srv.URL)
	opts.StreamEvery = 0
	rep := run(t, opts, 5)

	if got := len(rep.Failed()); got != rep.Sent()-1 {
		t.Fatalf("%d of %d requests failed, want all but request 0:\n%s", got, rep.Sent(), rep.FailureList(3))
	}
	if rep.Results[0].Err != nil {
		t.Errorf("request 0 failed: %v", rep.Results[0].Err)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	cases := map[string]struct {
		opts loadgen.Options
		want string
	}{
		"no URL":   {loadgen.Options{Key: keystore.NewSecret("k"), Model: "m"}, "Options.URL"},
		"no key":   {loadgen.Options{URL: "http://127.0.0.1:1", Model: "m"}, "Options.Key"},
		"no model": {loadgen.Options{URL: "http://127.0.0.1:1", Key: keystore.NewSecret("k")}, "Options.Model"},
		"negative rate": {loadgen.Options{URL: "http://127.0.0.1:1", Key: keystore.NewSecret("k"), Model: "m", Rate: -1},
			"rate -1"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := loadgen.Start(c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Start: %v, want an error naming %s", err, c.want)
			}
		})
	}
}

func TestMessageSeq(t *testing.T) {
	cases := map[string]struct {
		body string
		seq  int
		ok   bool
	}{
		"loadgen body":  {`{"messages":[{"role":"user","content":"load 42"}]}`, 42, true},
		"other message": {`{"messages":[{"role":"user","content":"hello"}]}`, 0, false},
		"negative":      {`{"messages":[{"role":"user","content":"load -1"}]}`, 0, false},
		"signed":        {`{"messages":[{"role":"user","content":"load +5"}]}`, 0, false},
		"no number":     {`{"messages":[{"role":"user","content":"load "}]}`, 0, false},
		"not JSON":      {`load 1`, 0, false},
		"no messages":   {`{"input":"load 1"}`, 0, false},
	}
	for name, c := range cases {
		seq, ok := loadgen.MessageSeq([]byte(c.body))
		if seq != c.seq || ok != c.ok {
			t.Errorf("%s: MessageSeq = %d, %v, want %d, %v", name, seq, ok, c.seq, c.ok)
		}
	}
}
