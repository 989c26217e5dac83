// Package fakeprovider is a stand-in AI provider for tests and `rotator dev`.
// One HTTP server speaks four providers' shapes, each under its own prefix:
//
//	/openai/v1          OpenAI: GET /models, POST /chat/completions,
//	                    POST /responses, POST /embeddings
//	/anthropic/v1       Anthropic: GET /models (paged with after_id, before_id,
//	                    limit), and POST /chat/completions, its OpenAI SDK
//	                    compatibility endpoint
//	/gemini/v1beta      Gemini: GET /models (paged with pageSize, pageToken),
//	                    and its OpenAI-compatible POST /openai/chat/completions
//	                    and POST /openai/embeddings
//	/openrouter/api/v1  OpenRouter: GET /key, the /keys management API,
//	                    POST /chat/completions, POST /responses,
//	                    POST /embeddings, GET /models
//
// Each shape checks its provider's own credential header and sends its
// provider's error bodies, so an adapter tested here meets the same status
// codes and error types as in production. Keys added with AddKey and keys
// minted through the OpenRouter-shaped management API are valid for every
// shape. Management keys are valid only for OpenRouter's /key and /keys
// endpoints.
//
// Keys are kept as SHA-256 digests. No response, log line or panic carries a
// key, except the one response to POST /keys that returns a new key, as
// OpenRouter's does. Requests records each request with its headers (the
// credentials redacted), its body and the key it presented as a
// keystore.Secret.
//
// Faults (SetFault) replace or delay responses, hang until the client gives
// up, or cut an event stream, to test timeouts, retries and error classes.
// SetReply sets the completion text, how many events it streams in, and
// their pace, down to one event at a time under the test's control.
package fakeprovider

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// Options configure a Provider. The zero value is ready to use.
type Options struct {
	// Logger receives one line per minted or revoked key and the server's
	// start and stop at INFO, and one line per request (method, path,
	// status and the names of the credential headers present) at DEBUG.
	// Nil discards logs.
	Logger *slog.Logger
	// Models are the model ids every shape lists and accepts. Nil is
	// DefaultModels(), which is long enough that Anthropic's default page
	// (20) and Gemini's (50) both need a second page.
	Models []string
	// KeyPrefix starts every minted key; empty is "sk-or-v1-", as
	// OpenRouter's keys start.
	KeyPrefix string
	// Clock returns the current time for timestamps in responses; nil is
	// time.Now.
	Clock func() time.Time
	// MintedKeyWarmup is how many requests a key minted through the
	// management API fails with the shape's 401 before it works, as a real
	// provider's new key may take a moment to work everywhere. Counting
	// requests rather than time keeps tests deterministic. Zero makes a
	// minted key work at once.
	MintedKeyWarmup int
}

// Provider is the stand-in provider. Its methods are safe for concurrent
// use, also while it serves requests.
type Provider struct {
	log       *slog.Logger
	now       func() time.Time
	keyPrefix string
	warmup    int // Options.MintedKeyWarmup
	mux       *http.ServeMux
	closed    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	keys     map[digest]*keyState
	models   []string
	minted   []*mintedKey // in minting order
	faults   []*faultRule
	requests []RequestRecord
	recorded chan struct{} // closed and replaced at each new record
	reply    Reply
	inFlight int
	serial   int // numbers response ids
}

// New returns a Provider with no keys.
func New(opts Options) *Provider {
	p := &Provider{
		log:       opts.Logger,
		now:       opts.Clock,
		keyPrefix: opts.KeyPrefix,
		warmup:    opts.MintedKeyWarmup,
		closed:    make(chan struct{}),
		keys:      make(map[digest]*keyState),
		recorded:  make(chan struct{}),
		models:    cloneOrDefault(opts.Models),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.keyPrefix == "" {
		p.keyPrefix = "sk-or-v1-"
	}
	p.mux = p.routes()
	return p
}

func cloneOrDefault(ids []string) []string {
	if ids == nil {
		return DefaultModels()
	}
	return append([]string(nil), ids...)
}

// digest is the SHA-256 of a key. The provider stores and looks keys up by
// digest only, so the time a lookup takes depends on the digest of the
// presented key, which reveals nothing about any stored key.
type digest [sha256.Size]byte

func digestOf(key string) digest { return sha256.Sum256([]byte(key)) }

type keyKind int

const (
	inferenceKey keyKind = iota
	managementKey
)

// keyState is the provider's record of one key.
type keyState struct {
	kind      keyKind
	models    []string // nil: the provider's models
	exhausted bool     // no quota or credit left
	minted    *mintedKey
}

// AddKey makes key valid for every shape. Adding a key again keeps its
// settings. It panics if key is empty, because an empty key cannot be sent.
func (p *Provider) AddKey(key string) { p.addKey(key, inferenceKey) }

// AddManagementKey makes key an OpenRouter management key: valid for GET
// /key and the /keys management API, and rejected everywhere else.
func (p *Provider) AddManagementKey(key string) { p.addKey(key, managementKey) }

func (p *Provider) addKey(key string, kind keyKind) {
	if key == "" {
		panic("fakeprovider: empty key")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d := digestOf(key)
	if k, ok := p.keys[d]; ok {
		k.kind = kind
		return
	}
	p.keys[d] = &keyState{kind: kind}
}

// RevokeKey makes key invalid for every shape. A minted key revoked this
// way stays in MintedKeys, marked deleted. Revoking an unknown key does
// nothing.
func (p *Provider) RevokeKey(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := digestOf(key)
	if k, ok := p.keys[d]; ok && k.minted != nil {
		k.minted.deleted = true
	}
	delete(p.keys, d)
}

// SetModels replaces the model ids that every shape lists and accepts.
func (p *Provider) SetModels(ids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.models = append([]string(nil), ids...)
}

// SetKeyModels restricts key to ids: it lists only those and may use only
// those. With no ids the key goes back to the provider's models. It panics
// if the key was never added, since a typo would otherwise pass silently.
func (p *Provider) SetKeyModels(key string, ids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.mustKey(key, "SetKeyModels")
	k.models = nil
	if len(ids) > 0 {
		k.models = append([]string(nil), ids...)
	}
}

// SetKeyQuota marks key as out of quota or credit (exhausted) or not. An
// exhausted key gets OpenAI's 429 insufficient_quota, Anthropic's 402
// billing_error, Gemini's 400 FAILED_PRECONDITION and OpenRouter's 402 on
// every endpoint that takes it, except OpenRouter's GET /key, which returns
// 200 with limit_remaining 0 as OpenRouter does.
//
// NOTE: real providers may still list models for such a key; the stand-in
// refuses the models lists too, so that a models-only probe sees the state.
func (p *Provider) SetKeyQuota(key string, exhausted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mustKey(key, "SetKeyQuota").exhausted = exhausted
}

// mustKey returns the state of key. The caller holds p.mu.
func (p *Provider) mustKey(key, method string) *keyState {
	k, ok := p.keys[digestOf(key)]
	if !ok {
		panic(fmt.Sprintf("fakeprovider: %s: the key was never added; call AddKey first", method))
	}
	return k
}

// lookup returns a copy of the state of key, or false if key is not valid.
// Each lookup of a minted key still warming up counts one of its
// Options.MintedKeyWarmup requests and fails.
func (p *Provider) lookup(key string) (keyState, bool) {
	if key == "" {
		return keyState{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.keys[digestOf(key)]
	if !ok || (k.minted != nil && k.minted.disabled) {
		return keyState{}, false
	}
	if k.minted != nil && k.minted.warmup > 0 {
		k.minted.warmup--
		return keyState{}, false
	}
	return *k, true
}

// modelsFor returns the models that k may list and use.
func (p *Provider) modelsFor(k keyState) []string {
	if k.models != nil {
		return k.models
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.models...)
}

// nextID returns a new response id with prefix, numbered so that responses
// are deterministic for a given sequence of requests.
func (p *Provider) nextID(prefix string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serial++
	return fmt.Sprintf("%s%06d", prefix, p.serial)
}

// ServeHTTP serves every shape. It records each request, applies the first
// fault whose pattern matches, and then routes to the shape's handler.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	record := newRecord(r, p.now())
	note := &requestNote{}
	r = r.WithContext(withNote(r.Context(), note))
	p.mu.Lock()
	p.inFlight++
	p.mu.Unlock()
	defer func() {
		record.Status = rec.status()
		if note.key != "" {
			record.Key, record.KeyKnown = keystore.NewSecret(note.key), note.known
		}
		record.Events = note.events
		record.Canceled = note.clientGone(r.Context())
		p.finish(record)
	}()

	f := p.takeFault(r)
	if f != nil {
		record.Fault = true
		if !p.applyFault(rec, r, f) {
			return
		}
		r = r.WithContext(withFault(r.Context(), f))
	}
	p.mux.ServeHTTP(rec, r)
}

// finish stores and logs one request, and wakes WaitRequests.
func (p *Provider) finish(rec RequestRecord) {
	p.mu.Lock()
	p.requests = append(p.requests, rec)
	p.inFlight--
	close(p.recorded)
	p.recorded = make(chan struct{})
	p.mu.Unlock()
	p.log.Debug("fakeprovider request",
		"method", rec.Method, "path", rec.Path, "status", rec.Status,
		"auth", strings.Join(rec.Auth, ","), "fault", rec.Fault)
}

// InFlight returns how many requests are being served now, so that a test
// can wait until a request hangs or is delayed before acting.
func (p *Provider) InFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inFlight
}

// Close ends hanging requests. Start calls it when the test ends.
func (p *Provider) Close() {
	p.closeOnce.Do(func() { close(p.closed) })
}
