package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/keyturn/keyturn/internal/provider"
)

// attempt is one upstream request of a client request, with one version's
// key. The reverse proxy's hooks find it in the request's context.
type attempt struct {
	call    *call
	version *version
	stage   string
	target  *url.URL
	// rejected is set when the provider rejected the key; the hooks then
	// write nothing, so that the call can retry or write the error itself.
	rejected bool
	// refused is set when the host policy refused the connection, so that
	// nothing reached the provider.
	refused bool
	status  int // the provider's status, 0 until a response arrives
}

type attemptKey struct{}

func attemptOf(ctx context.Context) *attempt {
	return ctx.Value(attemptKey{}).(*attempt)
}

// errKeyRejected ends an attempt whose key the provider rejected, before
// any of the response reaches the client.
var errKeyRejected = errors.New("the provider rejected the key")

// redirectError ends an attempt that the provider responded to with a
// redirect, which keyturn never follows with a key.
type redirectError struct{ status int }

func (e *redirectError) Error() string { return fmt.Sprintf("redirect (%d)", e.status) }

// rewrite builds the upstream request: the endpoint's URL under the
// version's base URL, the client's headers without its credentials and
// identity, the provider's credential and the rewritten body.
func rewrite(pr *httputil.ProxyRequest) {
	a := attemptOf(pr.In.Context())
	out := pr.Out
	out.Method = http.MethodPost
	out.URL = a.target
	out.Host = ""

	removeClientHeaders(out.Header)
	out.Header.Set("Authorization", "Bearer "+a.version.key.Reveal())
	out.Header.Set("Content-Type", "application/json")
	// Identity, so that the body reaches the client as it is sent and the
	// usage filter reads plain text.
	out.Header.Set("Accept-Encoding", "identity")

	body := a.call.body
	out.ContentLength = int64(body.len())
	out.Body = body.reader()
	out.GetBody = func() (io.ReadCloser, error) { return body.reader(), nil }
}

// removedRequestHeaders are client headers that never reach the provider:
// credentials for keyturn or for a provider, cookies, and headers that
// identify the client or the router's own clients.
var removedRequestHeaders = []string{
	"Authorization", "Proxy-Authorization", "Cookie", "Cookie2",
	"X-Api-Key", "X-Goog-Api-Key", "Api-Key",
	"Openai-Organization", "Openai-Project",
	"Anthropic-Api-Key", "Anthropic-Admin-Key",
	"X-Real-Ip", "True-Client-Ip", "Cf-Connecting-Ip", "X-Client-Ip", "X-Cluster-Client-Ip",
	"Via", "Origin", "Referer", "Expect", "Connection", "Upgrade",
	"Content-Length", "Content-Encoding", "Accept-Encoding",
}

// credentialWords mark a header name that may carry a credential: a client
// may send keyturn's key in a header of its own choosing.
var credentialWords = []string{"auth", "key", "token", "secret", "password", "credential", "cookie", "session"}

func removeClientHeaders(h http.Header) {
	for _, name := range removedRequestHeaders {
		h.Del(name)
	}
	for name := range h {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-forwarded-") || strings.HasPrefix(lower, "forwarded") {
			delete(h, name)
			continue
		}
		if lower == "idempotency-key" {
			continue
		}
		for _, w := range credentialWords {
			if strings.Contains(lower, w) {
				delete(h, name)
				break
			}
		}
	}
}

// keptResponseHeaders are the provider's headers that reach the client;
// any other, Set-Cookie among them, is dropped.
var keptResponseHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Content-Encoding": true, "Cache-Control": true,
	"Retry-After": true, "Retry-After-Ms": true, "X-Should-Retry": true,
	"X-Request-Id": true, "Request-Id": true, "Openai-Processing-Ms": true,
}

var keptResponsePrefixes = []string{"X-Ratelimit-", "Anthropic-Ratelimit-"}

func keepResponseHeaders(h http.Header) {
	for name := range h {
		canonical := http.CanonicalHeaderKey(name)
		if keptResponseHeaders[canonical] {
			continue
		}
		kept := false
		for _, prefix := range keptResponsePrefixes {
			kept = kept || strings.HasPrefix(canonical, prefix)
		}
		if !kept {
			delete(h, name)
		}
	}
}

// modifyResponse ends an attempt whose key was rejected or that was
// redirected, before anything reaches the client, and otherwise filters
// the response's headers and, where the client did not ask for usage, its
// stream.
func (p *Proxy) modifyResponse(res *http.Response) error {
	a := attemptOf(res.Request.Context())
	a.status = res.StatusCode
	if keyRejected(res) {
		return errKeyRejected
	}
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		return &redirectError{status: res.StatusCode}
	}
	keepResponseHeaders(res.Header)
	res.Trailer = nil
	if a.call.stripUsage() && res.StatusCode == http.StatusOK && isPlainEventStream(res) {
		res.Body = newUsageFilter(res.Body, func() { p.logUnfiltered(a) })
		res.Header.Del("Content-Length")
		res.ContentLength = -1
	}
	return nil
}

// logUnfiltered logs that the usage filter of a's stream met an event
// longer than it holds, and let the rest of the stream pass unfiltered.
func (p *Proxy) logUnfiltered(a *attempt) {
	p.log.Warn("a streamed event exceeds the usage filter's limit: the rest of the stream passes unfiltered, "+
		"with any usage the client did not request", "secret", a.version.secretID, "version", a.version.id,
		"stage", a.stage, "host", a.target.Host, "limit_bytes", maxHeldEvent)
}

func isPlainEventStream(res *http.Response) bool {
	mediaType, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	encoding := res.Header.Get("Content-Encoding")
	return mediaType == "text/event-stream" && (encoding == "" || strings.EqualFold(encoding, "identity"))
}

// handleError is the reverse proxy's error handler. It writes the error
// of a failed attempt to the client, unless the key was rejected (the call
// then retries or writes the error) or the client went away.
func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	a := attemptOf(r.Context())
	if errors.Is(err, errKeyRejected) {
		a.rejected = true
		return
	}
	if errors.Is(a.call.client.Context().Err(), context.Canceled) {
		p.log.Debug("client went away before the provider responded",
			"secret", a.version.secretID, "version", a.version.id, "host", a.target.Host)
		return
	}
	a.refused = errors.Is(err, provider.ErrNotAllowed)
	status, code, msg := describeFailure(a, err)
	p.log.Warn("upstream request failed", "secret", a.version.secretID, "version", a.version.id,
		"stage", a.stage, "host", a.target.Host, "status", status, "error", err)
	WriteError(w, status, code, msg)
}

// describeFailure words a failed attempt for the client. The message names
// the secret, never the provider's host, URL or address, which the
// transport's errors carry: those stay in the log line that handleError
// writes.
func describeFailure(a *attempt, err error) (status int, code, msg string) {
	secret := a.version.secretID
	var redirect *redirectError
	var timeout *headerTimeoutError
	var netErr net.Error
	switch {
	case errors.As(err, &redirect):
		return http.StatusBadGateway, codeRedirect, fmt.Sprintf(
			"the provider of secret %q responded with a redirect (%d), and keyturn never follows redirects with a key: "+
				"set the secret's base URL to the final location", secret, redirect.status)
	case errors.Is(err, provider.ErrNotAllowed):
		reason := reasonRefused
		if errors.Is(err, provider.ErrLoopbackNotAllowed) {
			reason = reasonLoopback
		}
		return http.StatusBadGateway, codeMisconfigured, notAllowedMessage(secret, a.version.id, reason)
	case errors.As(err, &timeout):
		return http.StatusGatewayTimeout, codeTimeout, fmt.Sprintf(
			"the provider of secret %q sent no response headers within %v: retry later", secret, timeout.timeout)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return http.StatusGatewayTimeout, codeTimeout, fmt.Sprintf(
			"the request to the provider of secret %q timed out: retry later", secret)
	}
	return http.StatusBadGateway, codeUnreachable, fmt.Sprintf(
		"the provider of secret %q could not be reached: retry later, and if it persists "+
			"check the secret's base URL against the cause in the router's log", secret)
}
