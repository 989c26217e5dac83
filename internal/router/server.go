// Package router is keyturn's OpenAI-compatible router: an http.Handler
// that checks each client's kt- key against the clients secret, routes the
// request by its public model name to a provider secret, and sends it
// upstream with that secret's current key, read through the keystore cache
// on every request.
//
// It serves POST /v1/chat/completions, /v1/responses and /v1/embeddings,
// GET /v1/models (client auth, as OpenAI's), GET /healthz and GET /metrics
// (no auth: neither carries a key, and /metrics is meant for a scraper on a
// private network, so Config.MetricsListen can move it to an address of its
// own). /healthz shows a fixed phrase per failure, never a store's error.
package router

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
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
	// Store is the store behind Keys. With it, a request for a provider
	// secret that the store lacks gets a 502 that points at the secret id
	// in the config. Nil leaves that request the proxy's advice, which is
	// to stage a key.
	Store Describer
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
	// RereadInterval is the least time between two reads of the clients
	// secret that unknown client keys force. Zero is
	// DefaultRereadInterval.
	RereadInterval time.Duration
	// BodyReadTimeout bounds the read of each request body. Zero is
	// DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
}

// DefaultBodyReadTimeout is how long the router waits for a request body
// to arrive in full. The server cannot bound it with
// http.Server.ReadTimeout, whose deadline would stay on the connection
// while a stream is being answered and cancel it; the router sets a
// deadline of its own for the body alone.
const DefaultBodyReadTimeout = time.Minute

// ErrShutdown is the cause with which the owner of the http.Server cancels
// the requests' base context (http.Server.BaseContext) when it stops before
// every request has finished, so that their access log lines say
// aborted=shutdown rather than client_closed.
var ErrShutdown = errors.New("the router is shutting down")

// Server is the router's HTTP handler. It is safe for concurrent use.
type Server struct {
	cfg     Config
	keys    Keys
	proxy   *upstream.Proxy
	auth    *authenticator
	limits  *clientLimits
	metrics *metrics
	health  *healthLog
	missing *missingSecrets
	log     *slog.Logger
	now     func() time.Time
	mux     *http.ServeMux
	// bodyTimeout bounds the read of each request body.
	bodyTimeout time.Duration
	// inFlight counts the requests being served.
	inFlight atomic.Int64
	// models is the encoded GET /v1/models response, fixed at start.
	models []byte
}

// New returns a Server. It reads no secret: a provider secret that cannot
// be read yet fails only the requests that need it.
func New(opts Options) (*Server, error) {
	if opts.Keys == nil {
		return nil, errors.New("router: no key source: pass the keystore cache as Options.Keys")
	}
	s := &Server{cfg: opts.Config, keys: opts.Keys, log: opts.Logger, now: opts.Now, bodyTimeout: opts.BodyReadTimeout}
	if s.bodyTimeout <= 0 {
		s.bodyTimeout = DefaultBodyReadTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.metrics = newMetrics(opts.Keys, s.secretIDs())
	s.health = &healthLog{log: s.log, last: map[string]string{}}
	s.missing = &missingSecrets{store: opts.Store, now: time.Now, results: map[string]missingResult{}}
	proxy, err := upstream.New(upstream.Options{
		Keys: opts.Keys, Policy: opts.Policy, Transport: opts.Transport,
		Logger: s.log, Observe: s.observe, ResponseHeaderTimeout: s.cfg.UpstreamTimeout,
	})
	if err != nil {
		return nil, err
	}
	s.proxy = proxy
	s.auth = newAuthenticator(opts.Keys, s.cfg.ClientsSecret, opts.RereadInterval, s.log)
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
	if s.cfg.MetricsListen == "" {
		mux.Handle("/metrics", s.metrics.handler())
	}
	mux.HandleFunc("/", serveNotFound)
	return mux
}

// MetricsHandler serves the Prometheus metrics, for the metrics_listen
// address. ServeHTTP serves them at /metrics only when MetricsListen is
// empty. Scrapes through MetricsHandler get no access log line.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler() }

// ServeHTTP serves one request and writes its access log line and request
// metric. It writes both in a deferred call, so that a response that the
// reverse proxy aborts (a stream that broke, or whose client went away) is
// logged and counted too. The proxy aborts by panicking with
// http.ErrAbortHandler. ServeHTTP recovers the panic, records the request
// and panics again, so that net/http still closes the connection.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	info := &requestInfo{id: newRequestID()}
	rec := &upstream.StatusRecorder{ResponseWriter: &headerWriter{ResponseWriter: w, r: r, info: info}}
	r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
	defer func() {
		p := recover()
		if r.ContentLength != 0 && !info.bodyRead {
			dropUnreadBody(w)
		}
		status := rec.Status(r)
		switch {
		case p != nil:
			info.aborted = abortReason(r, p)
		case status == upstream.StatusClientClosed && errors.Is(context.Cause(r.Context()), ErrShutdown):
			// Cut before the provider answered, so nothing was written:
			// without an error net/http would send an empty 200.
			writeShutdown(rec, info, "before the provider answered")
			status = http.StatusServiceUnavailable
		}
		d := s.now().Sub(start)
		s.metrics.observeRequest(endpointLabel(r.URL.Path), status, info.provider, d)
		s.logRequest(r, status, info, d)
		if p != nil {
			panic(p)
		}
	}()
	s.mux.ServeHTTP(rec, r)
}

// writeShutdown writes a 503 that advises the client to retry to a request
// that the shutdown cut before anything was written, and marks it
// aborted=shutdown. when says at which point it was cut, such as "before
// the provider answered".
func writeShutdown(w http.ResponseWriter, info *requestInfo, when string) {
	info.aborted = "shutdown"
	w.Header().Set("Connection", "close")
	upstream.WriteError(w, http.StatusServiceUnavailable, "shutting_down",
		"the router is shutting down and stopped this request "+when+": retry it")
}

// abortReason words why a handler panicked with p, for the access log.
// It never includes p itself, which net/http logs when it is not
// http.ErrAbortHandler.
func abortReason(r *http.Request, p any) string {
	switch {
	case p != http.ErrAbortHandler:
		return "panic"
	case errors.Is(context.Cause(r.Context()), ErrShutdown):
		return "shutdown"
	case r.Context().Err() != nil:
		return "client_closed"
	}
	return "upstream_broke"
}

// InFlight returns the number of requests being served, so that a
// shutdown that cuts them can say how many it cut.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

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
