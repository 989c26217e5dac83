// Package upstream sends one client request of the router to an AI provider
// with the key of a provider secret. It reads the key from a KeySource (the
// keystore read cache) on every request, so a rotated key takes effect
// without a restart. It sends the key to the provider and base URL recorded
// in the served version's value, never the route's, so that a changed base
// URL takes effect only through a validated rotation.
//
// The client's credentials, cookies and forwarding headers never reach the
// provider, and the provider's cookies and credentials never reach the
// client. A key the provider rejects (a 401, or Gemini's 400
// API_KEY_INVALID) puts that version in a cooldown, forces a refresh of
// the secret that starts after the rejection, and retries once with a
// newer AWSCURRENT or with AWSPREVIOUS. Forced refreshes of one secret
// start at most once per Options.MinRefreshInterval, so that clients
// cannot turn a revoked key into back-to-back store reads.
//
// The client never sees the provider's response to a rejected key, which
// may quote part of the key, and gets keyturn's own 502 instead. Every
// other provider error passes through with its status and body as sent,
// because OpenAI's client libraries act on the provider's status, error
// code and message (rate limits, context length, content policy). Such a
// body may name the provider account's organization or project id, which
// the router's clients then see. The provider's response headers pass
// through filtered, keeping rate-limit and request-id headers.
//
// A version that keyturn must not send a key with (no recorded settings,
// or a base URL that the host policy rejects) fails with a 502 that names
// the secret and version and what to do; the log line adds the base URL's
// host and the policy's reason, which the client does not see. Check finds
// such a version without a client request, and Health reports what the
// requests and checks of a secret have shown, for a health endpoint.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// Endpoint is an OpenAI-compatible endpoint that the router serves.
type Endpoint int

// The endpoints. The zero Endpoint is not a valid endpoint, so that a
// Request that sets none is caught.
const (
	ChatCompletions Endpoint = iota + 1
	Responses
	Embeddings
)

// String returns the endpoint's path on the router, such as
// "/v1/chat/completions".
func (e Endpoint) String() string {
	switch e {
	case ChatCompletions:
		return "/v1/chat/completions"
	case Responses:
		return "/v1/responses"
	case Embeddings:
		return "/v1/embeddings"
	}
	return fmt.Sprintf("Endpoint(%d)", int(e))
}

// KeySource returns the current keys of a secret. *keystore.Cache
// satisfies it.
type KeySource interface {
	// Get returns the cached AWSCURRENT and AWSPREVIOUS versions.
	Get(ctx context.Context, secretID string) (keystore.Keys, error)
	// Refresh reads the secret from the store now, bypassing any cache.
	Refresh(ctx context.Context, secretID string) (keystore.Keys, error)
}

// Defaults of Options.
const (
	// DefaultRefreshTimeout bounds the wait for the refresh that a
	// rejected key forces. The keystore cache's Refresh first waits for
	// a fetch already in flight, which DefaultFetchTimeout bounds, and
	// then runs its own. The 5 s on top cover that fetch and the wait for
	// MinRefreshInterval to end, so that a slow background fetch does not
	// fail the retry.
	DefaultRefreshTimeout = keystore.DefaultFetchTimeout + 5*time.Second
	// DefaultCooldown is how long a version whose key the provider
	// rejected is tried only after the other version.
	DefaultCooldown = 30 * time.Second
	// DefaultMinRefreshInterval is the least time between two forced
	// refreshes of one secret.
	DefaultMinRefreshInterval = time.Second
	// DefaultResponseHeaderTimeout bounds the wait for a provider's
	// response headers. It matches the default request timeout of OpenAI's
	// Python SDK (DEFAULT_TIMEOUT in openai-python's _constants.py, 600 s),
	// so a non-streamed completion that the SDK would wait for is not cut
	// short here.
	DefaultResponseHeaderTimeout = 10 * time.Minute
)

// Options configure a Proxy.
type Options struct {
	// Keys returns the keys of each secret. Required.
	Keys KeySource
	// Policy decides where keys may be sent: every version's base URL is
	// checked against it before a request is sent. Required.
	Policy *provider.Policy
	// Transport sends the requests. Nil is Policy.Transport(), whose
	// dialer rejects private, link-local and metadata addresses. A
	// transport given here should do the same.
	Transport http.RoundTripper
	// Logger receives one line per rejected key, per fallback to
	// AWSPREVIOUS and per failed request. Nil discards logs.
	Logger *slog.Logger
	// RefreshTimeout bounds the wait of a rejected key's request for the
	// refresh it forces, including the wait for MinRefreshInterval to
	// end. A request whose refresh would start later retries with the
	// keys it has. Zero is DefaultRefreshTimeout; a cache whose
	// FetchTimeout is longer than the default needs a longer one too.
	RefreshTimeout time.Duration
	// Cooldown is how long a version whose key the provider rejected is
	// tried only after the other version. Zero is DefaultCooldown.
	Cooldown time.Duration
	// MinRefreshInterval is the least time between the starts of two
	// refreshes of one secret that rejected keys force. A key rejected
	// within the interval waits for the refresh that starts when it ends,
	// or retries with the keys it has if that is more than RefreshTimeout
	// away. Zero is DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// ResponseHeaderTimeout bounds each upstream attempt from sending the
	// request until the provider's response headers arrive; a streamed
	// body may take longer. An attempt that times out is a 504. Zero is
	// DefaultResponseHeaderTimeout.
	ResponseHeaderTimeout time.Duration
	// Observe, if set, is called once per client request with the
	// client's request and its outcome, after the response is written,
	// for metrics and access logs.
	Observe func(*http.Request, Outcome)
}

// Request is one client request to send upstream.
type Request struct {
	Endpoint Endpoint
	// SecretID is the provider secret whose key the request uses.
	SecretID string
	// Model is the upstream model name, written into the body's "model".
	Model string
	// Body is the client's body as ParseBody returned it, already read
	// and size-limited.
	Body Body
}

// Outcome describes how a client request was served.
type Outcome struct {
	SecretID string
	// Upstream reports whether a request reached the provider, so that
	// metrics of upstream requests count only those. It is false for a
	// request that keyturn answered itself without sending a key: a body
	// it rejected, a key it could not read, a version it cannot use, an
	// endpoint the provider does not serve, or a connection that the host
	// policy refused.
	Upstream bool
	// VersionID and Stage are the version whose key the final attempt
	// that reached the provider used and its stage, AWSCURRENT or
	// AWSPREVIOUS. Provider is the adapter recorded in that version, such
	// as "openai". All three are empty when Upstream is false.
	VersionID string
	Stage     string
	Provider  string
	Endpoint  Endpoint
	// Status is the status sent to the client; StatusClientClosed when
	// the client went away before a response was sent.
	Status int
	// Attempts counts the requests that keyturn sent towards the provider
	// for this client request: 0 when Upstream is false, 1 normally, and
	// 2 when a rejected key was retried with another version. An attempt
	// whose connection failed or timed out counts, because keyturn does
	// not tell whether the request reached the provider. One that the
	// host policy refused does not count, because nothing was sent.
	Attempts int
	// Rejected counts the attempts whose key the provider rejected: 0,
	// 1, or 2 when the retry's key was rejected too.
	Rejected int
	// Retried reports whether a rejected key was retried with another
	// version. A rejected key with no other version to try is not.
	Retried  bool
	Duration time.Duration
}

// StatusClientClosed is the Outcome status of a request whose client went
// away before a response was sent. It is nginx's 499; no response carries
// it.
const StatusClientClosed = 499

// Proxy sends client requests to providers. One Proxy serves every
// provider and secret; it is safe for concurrent use.
type Proxy struct {
	keys           KeySource
	policy         *provider.Policy
	log            *slog.Logger
	refreshTimeout time.Duration
	cooldown       time.Duration
	// minRefreshInterval is Options.MinRefreshInterval.
	minRefreshInterval time.Duration
	observe            func(*http.Request, Outcome)
	now                func() time.Time

	proxy *httputil.ReverseProxy
	// secrets maps a secret id to its *secretVersions.
	secrets sync.Map
}

// New returns a Proxy.
func New(opts Options) (*Proxy, error) {
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	p := &Proxy{
		keys:               opts.Keys,
		policy:             opts.Policy,
		log:                opts.Logger,
		refreshTimeout:     orDefault(opts.RefreshTimeout, DefaultRefreshTimeout),
		cooldown:           orDefault(opts.Cooldown, DefaultCooldown),
		minRefreshInterval: orDefault(opts.MinRefreshInterval, DefaultMinRefreshInterval),
		observe:            opts.Observe,
		now:                time.Now,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	transport := opts.Transport
	if transport == nil {
		transport = opts.Policy.Transport()
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: rewrite,
		Transport: &headerTimeout{
			next:    transport,
			timeout: orDefault(opts.ResponseHeaderTimeout, DefaultResponseHeaderTimeout),
		},
		FlushInterval:  -1,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.handleError,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// checkOptions rejects missing requirements and negative durations.
func checkOptions(opts Options) error {
	if opts.Keys == nil {
		return errors.New("upstream: no key source: pass the keystore cache as Options.Keys")
	}
	if opts.Policy == nil {
		return errors.New("upstream: no host policy: pass one as Options.Policy")
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"RefreshTimeout", opts.RefreshTimeout},
		{"Cooldown", opts.Cooldown},
		{"MinRefreshInterval", opts.MinRefreshInterval},
		{"ResponseHeaderTimeout", opts.ResponseHeaderTimeout},
	}
	for _, o := range durations {
		if o.d < 0 {
			return fmt.Errorf("upstream: Options.%s is %v: set a positive duration, or zero for the default", o.name, o.d)
		}
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
