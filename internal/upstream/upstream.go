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
// API_KEY_INVALID) puts that version in a cooldown, forces one refresh of
// the secret and retries once with a newer AWSCURRENT or with AWSPREVIOUS;
// the client never sees the provider's rejection, which may quote part of
// the key.
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
	// DefaultRefreshTimeout bounds the refresh that a rejected key forces.
	DefaultRefreshTimeout = 5 * time.Second
	// DefaultCooldown is how long a version whose key the provider
	// rejected is tried only after the other version.
	DefaultCooldown = 30 * time.Second
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
	// RefreshTimeout bounds the refresh that a rejected key forces. Zero
	// is DefaultRefreshTimeout.
	RefreshTimeout time.Duration
	// Cooldown is how long a version whose key the provider rejected is
	// tried only after the other version. Zero is DefaultCooldown.
	Cooldown time.Duration
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
	// Body is the client's JSON object, already read and size-limited.
	Body []byte
}

// Outcome describes how a client request was served.
type Outcome struct {
	SecretID string
	// VersionID and Stage are the version whose key the final attempt
	// used and its stage, AWSCURRENT or AWSPREVIOUS. Both are empty when
	// the request failed before a version was chosen.
	VersionID string
	Stage     string
	// Provider is the adapter recorded in that version, such as "openai".
	Provider string
	Endpoint Endpoint
	// Status is the status sent to the client; StatusClientClosed when
	// the client went away before a response was sent.
	Status int
	// Retried reports whether a rejected key was retried with another
	// version.
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
	observe        func(*http.Request, Outcome)
	now            func() time.Time

	proxy *httputil.ReverseProxy
	// secrets maps a secret id to its *secretVersions.
	secrets sync.Map
}

// New returns a Proxy.
func New(opts Options) (*Proxy, error) {
	if opts.Keys == nil {
		return nil, errors.New("upstream: no key source: pass the keystore cache as Options.Keys")
	}
	if opts.Policy == nil {
		return nil, errors.New("upstream: no host policy: pass one as Options.Policy")
	}
	p := &Proxy{
		keys:           opts.Keys,
		policy:         opts.Policy,
		log:            opts.Logger,
		refreshTimeout: opts.RefreshTimeout,
		cooldown:       opts.Cooldown,
		observe:        opts.Observe,
		now:            time.Now,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.refreshTimeout <= 0 {
		p.refreshTimeout = DefaultRefreshTimeout
	}
	if p.cooldown <= 0 {
		p.cooldown = DefaultCooldown
	}
	transport := opts.Transport
	if transport == nil {
		transport = opts.Policy.Transport()
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      transport,
		FlushInterval:  -1,
		ModifyResponse: modifyResponse,
		ErrorHandler:   p.handleError,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	return p, nil
}
