package fakeprovider_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/keystore"
)

func TestRecordHeadersBodyAndKey(t *testing.T) {
	p, base := startOpenAI(t)
	body := chatBody(testModel, false, "")
	call(t, "POST", base+"/chat/completions", body,
		"Authorization", "Bearer "+canary, "Cookie", "session="+canary, "X-Api-Key", "kt-client-key",
		"Accept-Encoding", "gzip, br", "X-Custom", "kept")
	rec := p.Requests()[0]

	if !rec.Key.Equal(keystore.NewSecret(canary)) || !rec.KeyKnown {
		t.Errorf("key known = %v, want the canary, known", rec.KeyKnown)
	}
	for _, name := range []string{"Authorization", "Cookie", "X-Api-Key"} {
		if got := rec.Header.Values(name); len(got) != 1 || got[0] != keystore.Redacted {
			t.Errorf("header %s = %q, want it present and redacted", name, got)
		}
	}
	if got := rec.Header.Get("Accept-Encoding"); got != "gzip, br" {
		t.Errorf("accept-encoding = %q, want gzip, br", got)
	}
	if got := rec.Header.Get("X-Custom"); got != "kept" {
		t.Errorf("x-custom = %q, want kept", got)
	}
	if string(rec.Body) != body || rec.Model != testModel {
		t.Errorf("body, model = %q, %q; want the request's", rec.Body, rec.Model)
	}
	if rec.Events != 0 || rec.Canceled {
		t.Errorf("events, canceled = %d, %v; want 0, false", rec.Events, rec.Canceled)
	}
	for _, s := range []string{fmt.Sprintf("%+v", rec), fmt.Sprintf("%#v", rec)} {
		if strings.Contains(s, canary) || strings.Contains(s, "kt-client-key") {
			t.Errorf("a printed record carries a credential: %s", s)
		}
	}
}

func TestRecordKeyPerShape(t *testing.T) {
	p, url := fakeprovider.Start(t, fakeprovider.Options{})
	p.AddKey(canary)
	call(t, "GET", url+"/gemini/v1beta/models?key="+canary, "")
	call(t, "GET", url+"/anthropic/v1/models", "", "X-Api-Key", otherKey, "Anthropic-Version", "2023-06-01")
	call(t, "POST", url+fakeprovider.GeminiOpenAIPrefix+"/chat/completions", chatBody("gemini-2.5-flash", false, ""),
		"Authorization", "Bearer "+canary)
	call(t, "GET", url+"/openai/v1/models", "")

	recs := p.Requests()
	want := []struct {
		key   string
		known bool
	}{{canary, true}, {otherKey, false}, {canary, true}, {"", false}}
	for i, w := range want {
		if !recs[i].Key.Equal(keystore.NewSecret(w.key)) || recs[i].KeyKnown != w.known {
			t.Errorf("record %d (%s): key is not the one sent, or known = %v, want %v",
				i, recs[i].Path, recs[i].KeyKnown, w.known)
		}
	}
	if recs[0].Path != "/gemini/v1beta/models" {
		t.Errorf("path = %q, want it without the key query", recs[0].Path)
	}
}

func TestRecordHangCanceled(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetFault("/openai/v1/models", fakeprovider.Fault{Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for p.InFlight() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := send(ctx, "GET", base+"/models", "", "Authorization", "Bearer "+canary); err == nil {
		t.Fatal("request succeeded, want it canceled")
	}
	recs := waitForRequests(t, p, 1)
	if !recs[0].Canceled || !recs[0].Fault {
		t.Errorf("record = %+v, want a canceled request with a fault", recs[0])
	}
}

func TestWaitRequestsEndsWithContext(t *testing.T) {
	p, _ := startOpenAI(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.WaitRequests(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitRequests = %v, want context.Canceled", err)
	}
}

func TestRecordOversizedBody(t *testing.T) {
	p, base := startOpenAI(t)
	body := `{"model":"gpt-4o","padding":"` + strings.Repeat("x", 1<<20) + `"}`
	r := call(t, "POST", base+"/chat/completions", body, "Authorization", "Bearer "+canary)
	if r.status != http.StatusBadRequest {
		t.Errorf("oversized body = %d, want 400", r.status)
	}
	if n := len(p.Requests()[0].Body); n != 1<<20 {
		t.Errorf("recorded %d body bytes, want the 1 MiB limit", n)
	}
}
