package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/smtest"
)

// routerSecret is the provider secret that every router test routes its
// models to.
const routerSecret = "keyturn/e2e/router-openai"

// routerWorld is a world for the router: the stand-in provider, a store
// that the real rotator binary sets up, and router processes reading it.
// The store of newRouterWorld is a file store in a temporary directory,
// and its Secrets Manager test server runs only so that the AWS endpoint
// of every process is on 127.0.0.1. The store of newLambdaRouterWorld is
// the AWS store on that test server. Client keys are planted like provider
// keys, so checkNoLeaks looks for both in every output collected.
type routerWorld struct {
	*world
	storeDir string // the file store's directory, "" on another store
	store    string // the store URL of the rotator CLI and the router
	client   *http.Client
}

// newRouterWorld starts a router world with an empty store.
func newRouterWorld(t *testing.T) *routerWorld {
	t.Helper()
	w := &world{t: t, planted: map[string]string{}, invocations: &invocationLog{}}
	// Registered first, so it runs after every process has stopped.
	t.Cleanup(w.checkNoLeaks)
	var providerURL string
	w.provider, providerURL = fakeprovider.Start(t, fakeprovider.Options{})
	w.baseURL = providerURL + fakeprovider.OpenAIPrefix
	_, w.smURL = smtest.Start(t, smtest.Options{})
	w.env = rotatorEnv(t, w.smURL)
	dir := t.TempDir()
	return &routerWorld{world: w, storeDir: dir, store: "file://" + dir, client: loopbackClient(t)}
}

// loopbackClient is an HTTP client that takes no proxy from the
// environment, so every request goes to 127.0.0.1.
func loopbackClient(t *testing.T) *http.Client {
	transport := &http.Transport{Proxy: nil}
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport}
}

func (rw *routerWorld) storeURL() string { return rw.store }

// rotator runs the rotator CLI on the world's store: the file store, or
// the AWS store of a Lambda world.
func (rw *routerWorld) rotator(args ...string) runResult {
	rw.t.Helper()
	return rw.rotatorCLI(append(args, "--store", rw.storeURL())...)
}

// mustRotator runs the rotator CLI on the world's store and fails the test
// unless it exits 0.
func (rw *routerWorld) mustRotator(args ...string) runResult {
	rw.t.Helper()
	res := rw.rotator(args...)
	if res.code != 0 {
		rw.t.Fatalf("rotator %s: exit code %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code,
			rw.scrubbed(res.stdout), rw.scrubbed(res.stderr))
	}
	return res
}

// addProviderSecret creates the provider secret for the stand-in's OpenAI
// shape and promotes key as its first key. It returns the version id.
func (rw *routerWorld) addProviderSecret(key string) string {
	rw.t.Helper()
	rw.mustRotator("add", routerSecret, "--provider", "openai", "--base-url", rw.baseURL, "--allow-loopback")
	return rw.rotateTo(key)
}

// rotateTo stages key with `rotator stage`, promotes it with `rotator
// rotate-now` and returns the id of the version now AWSCURRENT.
func (rw *routerWorld) rotateTo(key string) string {
	rw.t.Helper()
	rw.mustRotator("stage", routerSecret, "--file", rw.writeFile("staged.key", key+"\n"))
	res := rw.mustRotator("rotate-now", routerSecret, "--allow-loopback", "--output", "json")
	var out struct {
		VersionID string `json:"version_id"`
		Outcome   string `json:"outcome"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || out.VersionID == "" || out.Outcome != "promoted" {
		rw.t.Fatalf("rotate-now --output json: want a promoted version, got (%v):\n%s", err, rw.scrubbed(res.stdout))
	}
	return out.VersionID
}

// writeFile writes data to a new file of mode 0600 in a directory of its
// own, and returns its path.
func (rw *routerWorld) writeFile(name, data string) string {
	rw.t.Helper()
	path := filepath.Join(rw.t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		rw.t.Fatalf("write %s: %v", name, err)
	}
	return path
}

// addClient creates a router client with `rotator client add --key-file`
// and returns its key, planted so that checkNoLeaks looks for it.
func (rw *routerWorld) addClient(name string) string {
	rw.t.Helper()
	path := filepath.Join(rw.t.TempDir(), "client.key")
	rw.mustRotator("client", "add", name, "--key-file", path)
	data, err := os.ReadFile(path)
	if err != nil {
		rw.t.Fatalf("read the key file of client %s: %v", name, err)
	}
	key := strings.TrimSpace(string(data))
	if !strings.HasPrefix(key, "kt-") || len(key) < 20 {
		rw.t.Fatalf("the key file of client %s does not contain a kt- key (%d bytes)", name, len(data))
	}
	rw.plantText(key, "client "+name)
	return key
}

// unknownClientKey returns a planted key of the client key's form that no
// client has.
func (rw *routerWorld) unknownClientKey() string {
	rw.t.Helper()
	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		rw.t.Fatalf("make a client key: %v", err)
	}
	key := "kt-" + hex.EncodeToString(random)
	rw.plantText(key, "unknown client")
	return key
}

// plantText makes checkNoLeaks look for key, which is not a provider
// canary, whole.
func (rw *routerWorld) plantText(key, name string) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.planted[key] = name
}

// routerConfig is the router's config file: the world's store, loopback
// allowed, a cache refresh interval, and one provider with two models.
const routerConfig = `store: %s
allow_loopback: true
cache:
  refresh: %s
providers:
  stand-in:
    secret: %s
models:
  chat:
    provider: stand-in
    model: gpt-4o-mini
  embed:
    provider: stand-in
    model: text-embedding-3-small
`

// routerProcess is a running router.
type routerProcess struct {
	*process
	// URL is the router's root URL, http://ADDR.
	URL string
}

var listeningLine = regexp.MustCompile(`(?m)^router: listening on (http://\S+)$`)

// shortRefresh is the cache refresh interval of most router tests, short
// so that a test sees a change in the store quickly.
const shortRefresh = "1s"

// startRouter runs the router on 127.0.0.1:0 with the world's config and
// waits until it prints the address it listens on.
func (rw *routerWorld) startRouter() *routerProcess {
	rw.t.Helper()
	return rw.startRouterWith(shortRefresh)
}

// startRouterWith is startRouter with the cache refresh interval refresh
// and extra command-line arguments.
func (rw *routerWorld) startRouterWith(refresh string, args ...string) *routerProcess {
	rw.t.Helper()
	config := rw.writeFile("router.yaml", fmt.Sprintf(routerConfig, rw.storeURL(), refresh, routerSecret))
	args = append([]string{"--config", config, "--listen", "127.0.0.1:0"}, args...)
	cmd := exec.Command(routerBinary, args...)
	cmd.Env = routerEnv(rw.env)
	cmd.Dir = rw.t.TempDir()

	// Registered before the process's own cleanup, so it runs after the
	// process has stopped and its output is complete.
	var p *process
	rw.t.Cleanup(func() {
		if p != nil {
			rw.collect("router output", p.output.String())
		}
	})
	p = startProcess(rw.t, "router", cmd)
	rp := &routerProcess{process: p}
	err := p.waitReady("print the address it listens on", func() bool {
		m := listeningLine.FindStringSubmatch(p.output.String())
		if m != nil {
			rp.URL = m[1]
		}
		return m != nil
	})
	if err != nil {
		p.abandon()
		rw.t.Fatalf("%v; output:\n%s", err, rw.scrubbed(p.output.String()))
	}
	return rp
}

// routerEnv is the rotator's environment without KEYTURN_ALLOW_LOOPBACK,
// so that the config file's allow_loopback is what lets the router reach
// the stand-in.
func routerEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(v string) bool {
		return strings.HasPrefix(v, "KEYTURN_ALLOW_LOOPBACK=")
	})
}

// response is a router response read whole.
type response struct {
	status int
	header http.Header
	body   string
}

// call sends one request to the router and reads the whole response, which
// it collects for checkNoLeaks. key is the client key, or "" for none.
func (rw *routerWorld) call(rp *routerProcess, method, path, key, body string) response {
	rw.t.Helper()
	return rw.callHeader(rp, method, path, bearer(key), body)
}

// bearer is the header that carries key, or no header for "".
func bearer(key string) http.Header {
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return h
}

// callHeader is call with the request headers given whole.
func (rw *routerWorld) callHeader(rp *routerProcess, method, path string, header http.Header, body string) response {
	rw.t.Helper()
	resp := rw.send(rp, method, path, header, body)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		rw.t.Fatalf("%s %s: read the response: %v", method, path, err)
	}
	rw.collect(fmt.Sprintf("router response to %s %s", method, path), string(data))
	return response{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// send sends one request to the router and returns the response unread.
// A request still unanswered after runDeadline fails.
func (rw *routerWorld) send(rp *routerProcess, method, path string, header http.Header, body string) *http.Response {
	rw.t.Helper()
	ctx, cancel := context.WithTimeout(rw.t.Context(), runDeadline)
	rw.t.Cleanup(cancel)
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rp.URL+path, reader)
	if err != nil {
		rw.t.Fatalf("%s %s: %v", method, path, err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := rw.client.Do(req)
	if err != nil {
		rw.t.Fatalf("%s %s: %s", method, path, rw.scrubbed(err.Error()))
	}
	return resp
}

// mustCall is call that fails the test unless the status is want.
func (rw *routerWorld) mustCall(rp *routerProcess, want int, method, path, key, body string) response {
	rw.t.Helper()
	res := rw.call(rp, method, path, key, body)
	if res.status != want {
		rw.t.Fatalf("%s %s: status %d, want %d; body:\n%s", method, path, res.status, want, rw.scrubbed(res.body))
	}
	return res
}

// chatBody is a chat completion request for model with one user message.
func chatBody(model, message string, stream bool) string {
	data, err := json.Marshal(map[string]any{
		"model":    model,
		"messages": []any{map[string]string{"role": "user", "content": message}},
		"stream":   stream,
	})
	if err != nil {
		panic(err)
	}
	return string(data)
}

// chatContent returns the assistant's text of a chat completion body.
func chatContent(t *testing.T, body string) string {
	t.Helper()
	var c struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(body), &c); err != nil || len(c.Choices) != 1 {
		t.Fatalf("not a chat completion with one choice (%v): %.500s", err, body)
	}
	return c.Choices[0].Message.Content
}

// eventStream reads the server-sent events of a streamed response.
type eventStream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

// openStream sends a streamed chat completion and checks that the
// response is an event stream.
func (rw *routerWorld) openStream(rp *routerProcess, key, body string) *eventStream {
	rw.t.Helper()
	resp := rw.send(rp, http.MethodPost, "/v1/chat/completions", bearer(key), body)
	rw.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		rw.t.Fatalf("streamed chat: status %d, want 200; body:\n%s", resp.StatusCode, rw.scrubbed(string(data)))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		rw.t.Fatalf("streamed chat: Content-Type %q, want text/event-stream", ct)
	}
	return &eventStream{t: rw.t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the data of the next event, skipping comments and other
// fields. It fails the test if the stream ends first.
func (s *eventStream) next() string {
	s.t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("the event stream ended before the next event: %v (partial line of %d bytes)", err, len(line))
		}
		line = strings.TrimRight(line, "\r\n")
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			return data
		}
	}
}

// content reads events up to [DONE] and returns the text of their deltas
// and how many chunk events there were.
func (s *eventStream) content() (string, int) {
	s.t.Helper()
	var text strings.Builder
	chunks := 0
	for {
		data := s.next()
		if data == "[DONE]" {
			return text.String(), chunks
		}
		text.WriteString(deltaText(s.t, data))
		chunks++
	}
}

// rest returns whatever the stream sends after [DONE], which must be
// nothing.
func (s *eventStream) rest() string {
	s.t.Helper()
	data, err := io.ReadAll(s.r)
	if err != nil {
		s.t.Fatalf("read the end of the event stream: %v", err)
	}
	return string(bytes.TrimSpace(data))
}

// deltaText returns the delta content of one chat.completion.chunk.
func deltaText(t *testing.T, data string) string {
	t.Helper()
	var chunk struct {
		Object  string `json:"object"`
		Choices []struct {
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(data), &chunk); err != nil || chunk.Object != "chat.completion.chunk" {
		t.Fatalf("event is not a chat.completion.chunk (%v): %.300s", err, data)
	}
	var text string
	for _, c := range chunk.Choices {
		text += c.Delta.Content
	}
	return text
}

// pollDeadline bounds a wait for the router's cache to see a change in
// the store. Only a hang reaches it.
const pollDeadline = runDeadline

// poll calls done until it returns true, and fails the test with what if
// that does not happen within pollDeadline.
func poll(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollDeadline)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, pollDeadline)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
