package fakeprovider_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

func TestFaultStatusAndBody(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetFault("GET /openai/v1/models", fakeprovider.Fault{
		Status: http.StatusOK, Body: "<html>captive portal</html>", ContentType: "text/html",
		Header: http.Header{"X-Portal": {"yes"}},
	})
	r := call(t, "GET", base+"/models", "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusOK || string(r.body) != "<html>captive portal</html>" {
		t.Errorf("got %d %q, want the fault's body", r.status, r.body)
	}
	if r.header.Get("Content-Type") != "text/html" || r.header.Get("X-Portal") != "yes" {
		t.Errorf("headers = %v, want the fault's content type and header", r.header)
	}
	recs := p.Requests()
	if !recs[len(recs)-1].Fault {
		t.Error("request record does not mark the fault")
	}
}

func TestFaultDefaultBodyPerShape(t *testing.T) {
	p, url := fakeprovider.Start(t, fakeprovider.Options{})
	p.SetFault("/*/v1/models", fakeprovider.Fault{Status: 500})
	p.SetFault("/gemini/", fakeprovider.Fault{Status: 500})
	p.SetFault("/openrouter/api/v1/*", fakeprovider.Fault{Status: 500})
	for path, want := range map[string]string{
		"/openai/v1/models":      `"type":"server_error"`,
		"/anthropic/v1/models":   `"type":"api_error"`,
		"/gemini/v1beta/models":  `"status":"INTERNAL"`,
		"/openrouter/api/v1/key": `"code":500`,
	} {
		r := call(t, "GET", url+path, "")
		if r.status != 500 || !strings.Contains(string(r.body), want) {
			t.Errorf("%s: %d %s, want 500 with %s", path, r.status, r.body, want)
		}
	}
}

func TestFaultCount(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetFault("/openai/v1/models", fakeprovider.Fault{Status: 503, Count: 2})
	var got []int
	for range 3 {
		got = append(got, call(t, "GET", base+"/models", "", "Authorization", "Bearer "+canary).status)
	}
	if want := []int{503, 503, 200}; !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

func TestFaultMethodAndClear(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetFault("POST /openai/", fakeprovider.Fault{Status: 502})
	if s := call(t, "GET", base+"/models", "", "Authorization", "Bearer "+canary).status; s != 200 {
		t.Errorf("GET under a POST fault = %d, want 200", s)
	}
	if s := call(t, "POST", base+"/chat/completions", chatBody(testModel, false, ""), "Authorization", "Bearer "+canary).status; s != 502 {
		t.Errorf("POST under a POST fault = %d, want 502", s)
	}
	p.SetFault("POST /openai/", fakeprovider.Fault{Status: 504})
	if s := call(t, "POST", base+"/chat/completions", "", "Authorization", "Bearer "+canary).status; s != 504 {
		t.Errorf("after replacing the fault = %d, want 504", s)
	}
	p.ClearFaults()
	if s := call(t, "POST", base+"/chat/completions", chatBody(testModel, false, ""), "Authorization", "Bearer "+canary).status; s != 200 {
		t.Errorf("after ClearFaults = %d, want 200", s)
	}
}

func TestFaultBadPattern(t *testing.T) {
	p := fakeprovider.New(fakeprovider.Options{})
	for _, pattern := range []string{"openai/v1/models", "/openai/[", "GET openai"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetFault(%q) did not panic", pattern)
				}
			}()
			p.SetFault(pattern, fakeprovider.Fault{})
		}()
	}
}

func TestFaultDelay(t *testing.T) {
	p, base := startOpenAI(t)
	const delay = 50 * time.Millisecond
	p.SetFault("/openai/v1/models", fakeprovider.Fault{Delay: delay})
	start := time.Now()
	r := call(t, "GET", base+"/models", "", "Authorization", "Bearer "+canary)
	if r.status != http.StatusOK {
		t.Errorf("delayed request = %d, want the normal 200", r.status)
	}
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("answered after %v, before the %v delay", elapsed, delay)
	}
}

// TestFaultDelayEndsWithClient checks that a long delay ends when the
// client gives up, so the server does not hold the handler.
func TestFaultDelayEndsWithClient(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetFault("/openai/v1/models", fakeprovider.Fault{Delay: time.Hour, Status: 500})
	expectClientTimeout(t, base+"/models")
	recs := waitForRequests(t, p, 1)
	if !recs[0].Fault || recs[0].Status != 0 {
		t.Errorf("record = %+v, want a fault with no status sent", recs[0])
	}
}

func expectClientTimeout(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	resp, err := send(ctx, "GET", url, "", "Authorization", "Bearer "+canary)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got status %d, want the client to time out", resp.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want the client's deadline", err)
	}
}

func TestFaultHangEndsWithClient(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetFault("/openai/v1/models", fakeprovider.Fault{Hang: true})
	expectClientTimeout(t, base+"/models")
	recs := waitForRequests(t, p, 1)
	if !recs[0].Fault || recs[0].Status != 0 {
		t.Errorf("record = %+v, want a fault with no status sent", recs[0])
	}
}

func TestFaultHangEndsOnClose(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetFault("/openai/v1/models", fakeprovider.Fault{Hang: true})
	type outcome struct {
		status int
		err    error
	}
	done := make(chan outcome, 1)
	go func() {
		// send gives up after 20 seconds, so a hang that Close does not end
		// shows up here as the client's deadline.
		resp, err := send(context.Background(), "GET", base+"/models", "", "Authorization", "Bearer "+canary)
		if err != nil {
			done <- outcome{err: err}
			return
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		done <- outcome{status: resp.StatusCode, err: err}
	}()
	waitForHandler(t, p)
	p.Close()

	var got outcome
	select {
	case got = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the hanging request did not end within 30s of Close")
	}
	if errors.Is(got.err, context.DeadlineExceeded) {
		t.Fatalf("the request ended only at the client's deadline (%v), so Close did not end the hang", got.err)
	}
	// The handler returns without writing, so net/http sends an empty 200.
	if got.err != nil || got.status != http.StatusOK {
		t.Errorf("after Close: status %d, error %v; want the empty 200 that net/http sends for a handler that wrote nothing", got.status, got.err)
	}
	recs := waitForRequests(t, p, 1)
	if !recs[0].Fault {
		t.Errorf("record = %+v, want it marked as a fault", recs[0])
	}
}

// waitForHandler waits until a request is in the provider's handler.
func waitForHandler(t *testing.T, p *fakeprovider.Provider) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for p.InFlight() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the provider")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFaultCutStream(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetFault("/openai/v1/chat/completions", fakeprovider.Fault{CutStreamAfter: 2})
	resp, err := send(context.Background(), "POST", base+"/chat/completions", chatBody(testModel, true, ""),
		"Authorization", "Bearer "+canary)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	evs, err := events(resp.Body)
	if len(evs) != 2 {
		t.Errorf("received %d events, want the 2 sent before the cut", len(evs))
	}
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read error = %v, want an unexpected EOF from the cut", err)
	}
}

func TestFaultCutLongerThanStream(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetFault("/openai/v1/chat/completions", fakeprovider.Fault{CutStreamAfter: 1000})
	evs := streamChunks(t, base+"/chat/completions", canary, chatBody(testModel, true, ""))
	if evs[len(evs)-1] != "[DONE]" {
		t.Errorf("stream did not end normally: %q", evs)
	}
}
