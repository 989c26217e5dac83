package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// Defaults for Options.
const (
	DefaultCallTimeout = 5 * time.Second
	DefaultMargin      = 2 * time.Second
	DefaultMaxElapsed  = 30 * time.Second
)

// initialBackoff is the first retry's maximum wait. Later maximums double,
// up to 8s, and each wait is drawn uniformly from [0, maximum].
const initialBackoff = 500 * time.Millisecond

// maxPages bounds a paged model list, so a provider that never stops
// paging ends the check.
const maxPages = 50

// adapter is one provider's API: its paths under the base URL, its
// authentication headers, its paging and its error classes.
type adapter interface {
	// authorize sets the key's headers. Keys never go in URLs.
	authorize(h http.Header, key keystore.Secret)
	// check proves the key and returns the listed models, if it lists any.
	check(ctx context.Context, x *exchange, s keystore.Settings) (outcome, []string)
}

var adapters = map[string]adapter{
	"openai":     openAI{},
	"anthropic":  anthropic{},
	"gemini":     gemini{},
	"openrouter": openRouter{},
}

type checker struct {
	opts     Options
	initial  time.Duration
	maxTries uint // attempts per request, 0 for no limit but time
}

// New returns a Checker that dispatches on the request's provider. Every
// check passes the host policy before any request, bounds each request by
// CallTimeout, and retries transient failures with exponential backoff and
// full jitter until too little of the context's deadline (or of MaxElapsed,
// without a deadline) is left.
func New(opts Options) Checker {
	return &checker{opts: opts.withDefaults(), initial: initialBackoff}
}

func (o Options) withDefaults() Options {
	if o.Policy == nil {
		o.Policy = DefaultPolicy()
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.Margin <= 0 {
		o.Margin = DefaultMargin
	}
	if o.MaxElapsed <= 0 {
		o.MaxElapsed = DefaultMaxElapsed
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Check proves req.Key against req.Settings' provider. Settings that
// cannot be checked are Misconfigured, and a key that ValidateKey rejects is
// Rejected, both before any request.
func (c *checker) Check(ctx context.Context, req Request) Result {
	a, err := c.prepare(req)
	if err != nil {
		return Result{Class: Misconfigured, Reason: err.Error(), Err: err}
	}
	if err := ValidateKey(req.Key); err != nil {
		return Result{Class: Rejected, Reason: err.Error()}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.MaxElapsed)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()

	x := &exchange{
		client: c.opts.Policy.Client(), adapter: a,
		key: req.Key, deadline: deadline, margin: marginFor(c.opts.Margin, time.Until(deadline)),
		opts: c.opts, initial: c.initial, maxTries: c.maxTries,
		logger: c.opts.Logger.With(slog.String("provider", req.Settings.Provider)),
	}
	out, models := a.check(ctx, x, req.Settings)
	return scrub(Result{
		Class: out.class, Reason: out.reason, Status: out.status,
		Models: models, Attempts: x.attempts, Err: out.err,
	}, req.Key)
}

// prepare finds the adapter and checks the settings that a request needs.
func (c *checker) prepare(req Request) (adapter, error) {
	s := req.Settings
	a, ok := adapters[s.Provider]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q: use one of %s", s.Provider, strings.Join(keystore.Providers, ", "))
	}
	if err := c.opts.Policy.Check(s.Provider, s.BaseURL); err != nil {
		return nil, err
	}
	if s.Probe == keystore.ProbeInference && len(s.RequiredModels) == 0 {
		return nil, errNoProbeModel
	}
	if s.Probe != "" && s.Probe != keystore.ProbeModels && s.Probe != keystore.ProbeInference {
		return nil, fmt.Errorf("tag %s: unknown probe %q: use %s or %s", keystore.TagProbe, s.Probe, keystore.ProbeModels, keystore.ProbeInference)
	}
	return a, nil
}

var errNoProbeModel = errors.New("tag " + keystore.TagProbe + ": probe inference needs a model to call: list it first in " + keystore.TagRequiredModels)

// scrub removes the key from a result, in case a provider or relay echoed
// it into an error code or a model id.
func scrub(r Result, key keystore.Secret) Result {
	k := key.Reveal()
	if k == "" {
		return r
	}
	r.Reason = scrubKey(r.Reason, key)
	r.Models = slices.DeleteFunc(r.Models, func(m string) bool { return strings.Contains(m, k) })
	return r
}

// scrubKey replaces the key in s.
func scrubKey(s string, key keystore.Secret) string {
	if key.IsZero() {
		return s
	}
	return strings.ReplaceAll(s, key.Reveal(), keystore.Redacted)
}

// endpoint joins a base URL and a path.
func endpoint(base, path string) string {
	return strings.TrimRight(base, "/") + path
}
