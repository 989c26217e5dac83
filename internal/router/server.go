// Package router is keyturn's OpenAI-compatible router: an http.Handler
// that checks each client's kt- key against the clients secret, routes the
// request by its public model name to a provider secret, and sends it
// upstream with that secret's current key, read through the keystore cache
// on every request.
//
// It serves POST /v1/chat/completions, /v1/responses and /v1/embeddings,
// GET /v1/models (client auth, as OpenAI's), GET /healthz and GET /metrics
// (no auth: neither carries a key, and /metrics is meant for a scraper on a
// private network).
package router

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/upstream"
	"github.com/keyturn/keyturn/keystore"
)

// Keys returns the keys of each secret and the cache's state of it.
// *keystore.Cache satisfies it.
type Keys interface {
	upstream.KeySource
	Status(secretID string) (keystore.CacheStatus, bool)
}

// Options configure a Server.
type Options struct {
	// Config is the checked configuration. Required.
	Config Config
	// Keys reads the provider and clients secrets. Required.
	Keys Keys
	// Policy decides where keys may be sent. Required.
	Policy *provider.Policy
	// Transport sends upstream requests; nil is Policy.Transport().
	Transport http.RoundTripper
	// Logger receives one access log line per request and the proxy's
	// events. Nil discards logs.
	Logger *slog.Logger
	// Now returns the current time, for rate limits and monthly quotas;
	// nil is time.Now.
	Now func() time.Time
}

// Server is the router's HTTP handler. It is safe for concurrent use.
type Server struct {
	cfg     Config
	keys    Keys
	proxy   *upstream.Proxy
	auth    *authenticator
	limits  *clientLimits
	metrics *metrics
	log     *slog.Logger
	now     func() time.Time
	mux     *http.ServeMux
	// models is the encoded GET /v1/models response, fixed at start.
	models []byte
}

// New returns a Server. It reads no secret: a provider secret that cannot
// be read yet fails only the requests that need it.
func New(opts Options) (*Server, error) {
	if opts.Keys == nil {
		return nil, errors.New("router: no key source: pass the keystore cache as Options.Keys")
	}
	s := &Server{cfg: opts.Config, keys: opts.Keys, log: opts.Logger, now: opts.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.metrics = newMetrics(opts.Keys, s.secretIDs())
	proxy, err := upstream.New(upstream.Options{
		Keys: opts.Keys, Policy: opts.Policy, Transport: opts.Transport,
		Logger: s.log, Observe: s.observe,
	})
	if err != nil {
		return nil, err
	}
	s.proxy = proxy
	s.auth = &authenticator{keys: opts.Keys, secretID: s.cfg.ClientsSecret, log: s.log}
	s.limits = newClientLimits(s.now)
	s.models = modelsBody(s.cfg, s.now().Unix())
	s.mux = s.routes()
	return s, nil
}

// secretIDs lists the provider secrets and the clients secret, for
// metrics.
func (s *Server) secretIDs() []string {
	seen := map[string]bool{}
	var ids []string
	for _, name := range sortedKeys(s.cfg.Providers) {
		if id := s.cfg.Providers[name].Secret; !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if !seen[s.cfg.ClientsSecret] {
		ids = append(ids, s.cfg.ClientsSecret)
	}
	return ids
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/v1/chat/completions", s.completions(upstream.ChatCompletions))
	mux.Handle("/v1/responses", s.completions(upstream.Responses))
	mux.Handle("/v1/embeddings", s.completions(upstream.Embeddings))
	mux.HandleFunc("/v1/models", s.serveModels)
	mux.HandleFunc("/healthz", s.serveHealth)
	mux.Handle("/metrics", s.metrics.handler())
	mux.HandleFunc("/", serveNotFound)
	return mux
}

// ServeHTTP serves one request and writes its access log line.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	info := &requestInfo{}
	rec := &statusRecorder{ResponseWriter: w}
	s.mux.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))
	status := rec.status(r)
	d := s.now().Sub(start)
	s.metrics.observeRequest(endpointLabel(r.URL.Path), status, info.provider, d)
	s.logRequest(r, status, info, d)
}

// endpointLabel keeps the requests metric's endpoint label to the paths
// the router serves, whatever paths clients send.
func endpointLabel(path string) string {
	switch path {
	case "/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/models", "/healthz", "/metrics":
		return path
	}
	return "other"
}

// observe records an upstream outcome in the metrics and in the access log
// line of the client request it belongs to.
func (s *Server) observe(r *http.Request, o upstream.Outcome) {
	s.metrics.observeOutcome(o)
	requestInfoFrom(r).outcome = &o
}
