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

// sseReader reads one server-sent event at a time, of any size, unlike
// bufio.Scanner with its 64 KiB line limit.
type sseReader struct {
	r *bufio.Reader
}

// next returns the event name ("" when the event has none) and data of the
// next event.
func (s sseReader) next(t *testing.T) (name, data string) {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (after %q)", err, line)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && data != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// openStream posts body and returns the response once its headers arrive.
func openStream(t *testing.T, ctx context.Context, url, body string) (*http.Response, sseReader) {
	t.Helper()
	resp, err := send(ctx, "POST", url, body, "Authorization", "Bearer "+canary)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		t.Fatalf("status = %d, want 200: %s", resp.StatusCode, data)
	}
	return resp, sseReader{bufio.NewReader(resp.Body)}
}

func chunkContent(t *testing.T, data string) string {
	t.Helper()
	var c chunk
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		t.Fatalf("event %.80q: %v", data, err)
	}
	if len(c.Choices) == 0 {
		return ""
	}
	return c.Choices[0].Delta.Content
}

func TestReplyLargeEvent(t *testing.T) {
	p, base := startOpenAI(t)
	large := strings.Repeat("0123456789abcdef", 5<<20/16)
	p.SetReply(fakeprovider.Reply{Content: large})

	_, events := openStream(t, context.Background(), base+"/chat/completions", chatBody(testModel, true, ""))
	_, role := events.next(t)
	if got := chunkContent(t, role); got != "" {
		t.Errorf("first chunk content = %q, want the empty role chunk", got)
	}
	_, data := events.next(t)
	if len(data) < 5<<20 {
		t.Fatalf("second event is %d bytes, want one event over 5 MiB", len(data))
	}
	if got := chunkContent(t, data); got != large {
		t.Errorf("large event content is %d bytes, want the %d-byte Content", len(got), len(large))
	}
	_, finish := events.next(t)
	if got := chunkContent(t, finish); got != "" {
		t.Errorf("finish chunk content = %.20q, want none", got)
	}
	if _, done := events.next(t); done != "[DONE]" {
		t.Errorf("last event = %.40q, want [DONE]", done)
	}
}

func TestReplyContentNotStreamed(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetReply(fakeprovider.Reply{Content: "fixed reply text", Chunks: 4})
	r := call(t, "POST", base+"/chat/completions", chatBody(testModel, false, ""), "Authorization", "Bearer "+canary)
	choice := r.json(t)["choices"].([]any)[0].(map[string]any)
	if got := choice["message"].(map[string]any)["content"]; got != "fixed reply text" {
		t.Errorf("content = %v, want the Reply's Content", got)
	}
	usage := r.json(t)["usage"].(map[string]any)
	if usage["completion_tokens"] != float64(3) {
		t.Errorf("completion_tokens = %v, want 3, one a word", usage["completion_tokens"])
	}

	p.SetReply(fakeprovider.Reply{})
	r = call(t, "POST", base+"/chat/completions", chatBody(testModel, false, ""), "Authorization", "Bearer "+canary)
	choice = r.json(t)["choices"].([]any)[0].(map[string]any)
	if got := choice["message"].(map[string]any)["content"]; got != "echo: hello there" {
		t.Errorf("after SetReply(Reply{}) content = %v, want the echo", got)
	}
}

func TestReplyChunks(t *testing.T) {
	p, base := startOpenAI(t)
	content := "héllo wörld, in chunks"
	p.SetReply(fakeprovider.Reply{Content: content, Chunks: 5})
	chunks := parseChunks(t, streamChunks(t, base+"/chat/completions", canary, chatBody(testModel, true, "")))
	var pieces []string
	for _, c := range chunks[1 : len(chunks)-1] {
		pieces = append(pieces, c.Choices[0].Delta.Content)
	}
	if len(pieces) != 5 {
		t.Errorf("got %d content chunks %q, want 5", len(pieces), pieces)
	}
	if got := strings.Join(pieces, ""); got != content {
		t.Errorf("joined chunks = %q, want %q", got, content)
	}
}

// TestReplyGateOneEventAtATime proves that each event reaches the client
// before the next is sent. The stand-in sends an event only after the test
// sends on the unbuffered gate, and that send completes only when the
// stand-in is ready to send the event.
func TestReplyGateOneEventAtATime(t *testing.T) {
	p, base := startOpenAI(t)
	gate := make(chan struct{})
	p.SetReply(fakeprovider.Reply{Gate: gate})

	_, events := openStream(t, context.Background(), base+"/chat/completions", chatBody(testModel, true, ""))
	var text strings.Builder
	for range 4 { // the role chunk and the three words
		gate <- struct{}{}
		_, data := events.next(t)
		text.WriteString(chunkContent(t, data))
	}
	if text.String() != "echo: hello there" {
		t.Errorf("text so far = %q, want the whole echo", text.String())
	}
	if recs := p.Requests(); len(recs) != 0 {
		t.Errorf("the request was recorded as done while its stream was held: %+v", recs)
	}
	close(gate)
	if _, data := events.next(t); chunkContent(t, data) != "" {
		t.Errorf("event after the words = %q, want the finish chunk", data)
	}
	if _, done := events.next(t); done != "[DONE]" {
		t.Errorf("last event = %q, want [DONE]", done)
	}
}

func TestReplyGateSeesClientGo(t *testing.T) {
	p, base := startOpenAI(t)
	gate := make(chan struct{})
	p.SetReply(fakeprovider.Reply{Gate: gate})

	ctx, cancel := context.WithCancel(context.Background())
	_, events := openStream(t, ctx, base+"/chat/completions", chatBody(testModel, true, ""))
	gate <- struct{}{}
	events.next(t)
	cancel()

	waitCtx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	recs, err := p.WaitRequests(waitCtx, 1)
	if err != nil {
		t.Fatalf("the stream did not end after the client went away: %v", err)
	}
	if !recs[0].Canceled {
		t.Error("record does not mark the request canceled")
	}
	if recs[0].Events != 1 {
		t.Errorf("record counts %d events, want 1", recs[0].Events)
	}
}

func TestReplyEventDelay(t *testing.T) {
	p, base := startOpenAI(t)
	p.SetReply(fakeprovider.Reply{EventDelay: time.Millisecond})
	chunks := parseChunks(t, streamChunks(t, base+"/chat/completions", canary, chatBody(testModel, true, "")))
	if len(chunks) != 5 {
		t.Errorf("got %d chunks, want 5", len(chunks))
	}
	recs := p.Requests()
	if got := recs[len(recs)-1]; got.Events != 6 || got.Canceled {
		t.Errorf("record events, canceled = %d, %v; want 6, false", got.Events, got.Canceled)
	}
}

func TestReplyAppliesToEveryShape(t *testing.T) {
	p, url := fakeprovider.Start(t, fakeprovider.Options{})
	p.AddKey(canary)
	p.SetReply(fakeprovider.Reply{Content: "same everywhere"})
	for _, c := range []struct{ path, model string }{
		{"/openrouter/api/v1/chat/completions", testModel},
		{fakeprovider.GeminiOpenAIPrefix + "/chat/completions", "gemini-2.5-flash"},
		{"/anthropic/v1/chat/completions", "claude-2.1"},
	} {
		r := call(t, "POST", url+c.path, chatBody(c.model, false, ""), "Authorization", "Bearer "+canary)
		msg := r.json(t)["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
		if msg["content"] != "same everywhere" {
			t.Errorf("%s: content = %v, want the Reply's Content", c.path, msg["content"])
		}
	}
}
