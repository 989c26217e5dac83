package fakeprovider

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

func (p *Provider) openrouterRoutes(mux *http.ServeMux) {
	pre := OpenRouterPrefix
	mux.HandleFunc("GET "+pre+"/key", p.openrouterCurrentKey)
	mux.HandleFunc("GET "+pre+"/models", p.openrouterModels)
	mux.HandleFunc("POST "+pre+"/chat/completions", p.openrouterChat)
	mux.HandleFunc("POST "+pre+"/responses", p.openrouterInference(p.openrouterResponses))
	mux.HandleFunc("POST "+pre+"/embeddings", p.openrouterInference(p.openrouterEmbeddings))
	mux.HandleFunc("GET "+pre+"/keys", p.managed(p.openrouterListKeys))
	mux.HandleFunc("POST "+pre+"/keys", p.managed(p.openrouterCreateKey))
	mux.HandleFunc("POST "+pre+"/keys/{$}", p.managed(p.openrouterCreateKey))
	mux.HandleFunc("GET "+pre+"/keys/{hash}", p.managed(p.openrouterGetKey))
	mux.HandleFunc("PATCH "+pre+"/keys/{hash}", p.managed(p.openrouterUpdateKey))
	mux.HandleFunc("DELETE "+pre+"/keys/{hash}", p.managed(p.openrouterDeleteKey))
	mux.HandleFunc("/openrouter/", func(w http.ResponseWriter, r *http.Request) {
		writeOpenRouterError(w, http.StatusNotFound, "Not Found")
	})
}

// writeOpenRouterError sends {"error":{"code","message"}}.
func writeOpenRouterError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, openrouterError(status, msg))
}

func openrouterError(status int, msg string) map[string]any {
	return map[string]any{"error": map[string]any{"code": status, "message": msg}}
}

// openrouterStatusError returns OpenRouter's usual error body for status
// and sets the headers OpenRouter sends with it.
func openrouterStatusError(h http.Header, status int) map[string]any {
	switch status {
	case http.StatusUnauthorized:
		return openrouterError(status, "User not found.")
	case http.StatusPaymentRequired:
		return openrouterError(status, msgOpenRouterCredit)
	case http.StatusTooManyRequests:
		h.Set("Retry-After", "1")
		return openrouterError(status, "Rate limit exceeded. Please try again later.")
	case http.StatusBadGateway:
		return openrouterError(status, "Provider returned error")
	}
	return openrouterError(status, statusText(status))
}

const msgOpenRouterCredit = "Insufficient credits. Add more using https://openrouter.ai/settings/credits"

// openrouterAuth returns the state of the bearer key, or sends OpenRouter's
// 401 and returns false.
func (p *Provider) openrouterAuth(w http.ResponseWriter, r *http.Request) (keyState, bool) {
	token := bearer(r)
	if token == "" {
		writeOpenRouterError(w, http.StatusUnauthorized, "No auth credentials found")
		return keyState{}, false
	}
	k, ok := p.authenticate(r, token)
	if !ok {
		writeOpenRouterError(w, http.StatusUnauthorized, "User not found.")
		return keyState{}, false
	}
	return k, true
}

// openrouterCurrentKey serves GET /key, which any valid key may call. An
// exhausted key gets 200 with limit_remaining 0, as OpenRouter reports a
// key at its limit.
func (p *Provider) openrouterCurrentKey(w http.ResponseWriter, r *http.Request) {
	k, ok := p.openrouterAuth(w, r)
	if !ok {
		return
	}
	label, limit, reset := "stand-in key", (*float64)(nil), (*string)(nil)
	if k.minted != nil {
		p.mu.Lock()
		label, limit, reset = k.minted.name, k.minted.limit, k.minted.limitReset
		p.mu.Unlock()
	}
	var usage float64
	var remaining any = limit
	if k.exhausted {
		if limit == nil {
			limit = new(float64)
		}
		usage, remaining = *limit, 0.0
	}
	management := k.kind == managementKey
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
		"label": label, "limit": limit, "usage": usage, "limit_remaining": remaining,
		"limit_reset": reset, "is_free_tier": false,
		"is_management_key": management, "is_provisioning_key": management,
		"include_byok_in_limit": false,
		"usage_daily":           usage, "usage_weekly": usage, "usage_monthly": usage,
		"byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
		"rate_limit": map[string]any{"requests": 1000, "interval": "1h"},
		"expires_at": nil,
	}})
}

// openrouterModels serves GET /models, which needs no key on OpenRouter.
func (p *Provider) openrouterModels(w http.ResponseWriter, r *http.Request) {
	data := []any{}
	for i, id := range p.modelsFor(keyState{}) {
		data = append(data, map[string]any{
			"id": id, "name": displayName(id), "created": created(i), "context_length": 128000,
			"pricing": map[string]string{"prompt": "0", "completion": "0"},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// openrouterInference checks the bearer key as OpenRouter's inference
// endpoints do before calling h: a management key is a 403 and a key
// without credit a 402.
func (p *Provider) openrouterInference(h keyedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k, ok := p.openrouterAuth(w, r)
		switch {
		case !ok:
		case k.kind == managementKey:
			writeOpenRouterError(w, http.StatusForbidden, "Management keys cannot be used for completions.")
		case k.exhausted:
			writeOpenRouterError(w, http.StatusPaymentRequired, msgOpenRouterCredit)
		default:
			h(w, r, k)
		}
	}
}

// openrouterChat serves an OpenAI-compatible chat completion in
// OpenRouter's manner: its error bodies, a processing comment first, and
// usage at the end of every stream whether the client asked or not.
func (p *Provider) openrouterChat(w http.ResponseWriter, r *http.Request) {
	p.openrouterInference(p.openrouterChatAuthed)(w, r)
}

func (p *Provider) openrouterChatAuthed(w http.ResponseWriter, r *http.Request, k keyState) {
	var req chatRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeOpenRouterError(w, http.StatusBadRequest, "The request body is not valid JSON.")
		return
	}
	if bad := req.problem(); bad != nil {
		writeOpenRouterError(w, http.StatusBadRequest, bad.msg)
		return
	}
	if !p.openrouterModelOK(w, k, req.Model) {
		return
	}

	c := p.complete(req.Model, "gen-fake", req.prompt(), req.maxTokens())
	if !req.Stream {
		writeJSON(w, http.StatusOK, c.body())
		return
	}
	es := p.startEventStream(w, r)
	es.comment("OPENROUTER PROCESSING")
	c.stream(es, true)
}

// openrouterModelOK reports whether k may use model, or sends OpenRouter's
// 400.
func (p *Provider) openrouterModelOK(w http.ResponseWriter, k keyState, model string) bool {
	if slices.Contains(p.modelsFor(k), model) {
		return true
	}
	writeOpenRouterError(w, http.StatusBadRequest, model+" is not a valid model ID")
	return false
}

// openrouterResponses serves OpenRouter's OpenAI-compatible Responses API,
// with OpenRouter's error bodies.
func (p *Provider) openrouterResponses(w http.ResponseWriter, r *http.Request, k keyState) {
	var q responsesRequest
	if err := decodeBody(w, r, &q); err != nil {
		writeOpenRouterError(w, http.StatusBadRequest, "The request body is not valid JSON.")
		return
	}
	if bad := q.problem(); bad != nil {
		writeOpenRouterError(w, http.StatusBadRequest, bad.msg)
		return
	}
	if p.openrouterModelOK(w, k, q.Model) {
		p.sendResponse(w, r, &q)
	}
}

// openrouterEmbeddings serves embeddings in OpenAI's shape, with
// OpenRouter's error bodies.
func (p *Provider) openrouterEmbeddings(w http.ResponseWriter, r *http.Request, k keyState) {
	var req embeddingRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeOpenRouterError(w, http.StatusBadRequest, "The request body is not valid JSON.")
		return
	}
	inputs, err := req.inputs()
	if err != nil {
		writeOpenRouterError(w, http.StatusBadRequest, err.Error())
		return
	}
	if p.openrouterModelOK(w, k, req.Model) {
		writeJSON(w, http.StatusOK, embeddingsBody(&req, inputs))
	}
}

// mintedKey is a key created through POST /keys. Its fields are guarded by
// Provider.mu.
type mintedKey struct {
	hash        string
	name        string
	limit       *float64
	limitReset  *string
	includeBYOK bool
	disabled    bool
	deleted     bool
	createdAt   time.Time
	updatedAt   *time.Time
	digest      digest
	warmup      int // requests left that fail before the key works
}

// MintedKey describes a key created through the management API, without
// its value.
type MintedKey struct {
	Hash      string
	Name      string
	Limit     *float64 // nil: no limit
	Disabled  bool
	Deleted   bool // deleted through the API, or revoked with RevokeKey
	CreatedAt time.Time
}

// MintedKeys returns every key minted so far, deleted ones included, oldest
// first.
func (p *Provider) MintedKeys() []MintedKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]MintedKey, 0, len(p.minted))
	for _, m := range p.minted {
		out = append(out, MintedKey{
			Hash: m.hash, Name: m.name, Limit: m.limit,
			Disabled: m.disabled, Deleted: m.deleted, CreatedAt: m.createdAt,
		})
	}
	return out
}

// object returns the key as the management API shows it: never the key
// itself, and a label that is its name rather than a masked key.
func (m *mintedKey) object() map[string]any {
	var remaining any
	if m.limit != nil {
		remaining = *m.limit
	}
	return map[string]any{
		"hash": m.hash, "name": m.name, "label": m.name, "disabled": m.disabled,
		"limit": m.limit, "limit_remaining": remaining, "limit_reset": m.limitReset,
		"include_byok_in_limit": m.includeBYOK,
		"usage":                 0, "usage_daily": 0, "usage_weekly": 0, "usage_monthly": 0,
		"byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
		"created_at": m.createdAt.UTC().Format(time.RFC3339),
		"updated_at": formatTime(m.updatedAt),
		"expires_at": nil,
	}
}

func formatTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// managed allows h only for management keys.
//
// NOTE: OpenRouter does not document the status it sends when a key that is
// not a management key calls /keys; the stand-in sends 403.
func (p *Provider) managed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k, ok := p.openrouterAuth(w, r)
		if !ok {
			return
		}
		if k.kind != managementKey {
			writeOpenRouterError(w, http.StatusForbidden, "Only management keys can manage API keys.")
			return
		}
		h(w, r)
	}
}

// keySettings are the fields POST /keys and PATCH /keys/{hash} accept.
type keySettings struct {
	Name               *string  `json:"name"`
	Limit              *float64 `json:"limit"`
	LimitReset         *string  `json:"limit_reset"`
	IncludeBYOKInLimit *bool    `json:"include_byok_in_limit"`
	Disabled           *bool    `json:"disabled"`
}

// problem returns what is wrong with s, or "".
func (s *keySettings) problem(creating bool) string {
	switch {
	case creating && s.Name == nil:
		return "name is required"
	case s.Name != nil && *s.Name == "":
		return "name must not be empty"
	case s.Limit != nil && *s.Limit < 0:
		return fmt.Sprintf("limit must be 0 or more, got %v", *s.Limit)
	case s.LimitReset != nil && !slices.Contains([]string{"daily", "weekly", "monthly"}, *s.LimitReset):
		return fmt.Sprintf("limit_reset %q is invalid; use daily, weekly or monthly", *s.LimitReset)
	case creating && s.Disabled != nil:
		return "disabled cannot be set when creating a key"
	}
	return ""
}

func (m *mintedKey) apply(s *keySettings) {
	if s.Name != nil {
		m.name = *s.Name
	}
	if s.Limit != nil {
		m.limit = s.Limit
	}
	if s.LimitReset != nil {
		m.limitReset = s.LimitReset
	}
	if s.IncludeBYOKInLimit != nil {
		m.includeBYOK = *s.IncludeBYOKInLimit
	}
	if s.Disabled != nil {
		m.disabled = *s.Disabled
	}
}

func readKeySettings(w http.ResponseWriter, r *http.Request, creating bool) (*keySettings, bool) {
	var s keySettings
	if err := decodeBody(w, r, &s); err != nil {
		writeOpenRouterError(w, http.StatusBadRequest, "The request body is not valid JSON.")
		return nil, false
	}
	if msg := s.problem(creating); msg != "" {
		writeOpenRouterError(w, http.StatusBadRequest, msg)
		return nil, false
	}
	return &s, true
}

// openrouterCreateKey mints a key. Its response is the only one that ever
// carries a key.
func (p *Provider) openrouterCreateKey(w http.ResponseWriter, r *http.Request) {
	s, ok := readKeySettings(w, r, true)
	if !ok {
		return
	}
	key := p.keyPrefix + randomHex()
	m := &mintedKey{hash: randomHex(), createdAt: p.now(), digest: digestOf(key), warmup: p.warmup}
	m.apply(s)

	body := map[string]any{"data": m.object(), "key": key}

	p.mu.Lock()
	p.minted = append(p.minted, m)
	p.keys[m.digest] = &keyState{kind: inferenceKey, minted: m}
	p.mu.Unlock()

	p.log.Info("fakeprovider minted a key", "hash", m.hash, "name", m.name)
	writeJSON(w, http.StatusCreated, body)
}

// randomHex returns 32 random bytes in hex.
func randomHex() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // since Go 1.24, crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}

// listPageSize is how many keys GET /keys returns a page, as OpenRouter's
// documentation states.
const listPageSize = 100

// openrouterListKeys lists keys newest first, offset keys in, skipping
// disabled keys unless include_disabled=true.
func (p *Provider) openrouterListKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset := 0
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeOpenRouterError(w, http.StatusBadRequest, fmt.Sprintf("offset %q is invalid; use a non-negative integer", s))
			return
		}
		offset = n
	}
	includeDisabled := q.Get("include_disabled") == "true"

	p.mu.Lock()
	var listed []any
	for _, m := range slices.Backward(p.minted) {
		if !m.deleted && (includeDisabled || !m.disabled) {
			listed = append(listed, m.object())
		}
	}
	p.mu.Unlock()

	page := []any{}
	if offset < len(listed) {
		page = listed[offset:min(offset+listPageSize, len(listed))]
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": page})
}

// withMinted calls f on the live key with the request's hash, holding p.mu,
// and sends f's body, or OpenRouter's 404 if there is no such key.
func (p *Provider) withMinted(w http.ResponseWriter, r *http.Request, f func(m *mintedKey) any) {
	hash := r.PathValue("hash")
	var body any
	p.mu.Lock()
	for _, m := range p.minted {
		if m.hash == hash && !m.deleted {
			body = f(m)
			break
		}
	}
	p.mu.Unlock()

	if body == nil {
		writeOpenRouterError(w, http.StatusNotFound, fmt.Sprintf("API key %q not found", hash))
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (p *Provider) openrouterGetKey(w http.ResponseWriter, r *http.Request) {
	p.withMinted(w, r, func(m *mintedKey) any {
		return map[string]any{"data": m.object()}
	})
}

func (p *Provider) openrouterUpdateKey(w http.ResponseWriter, r *http.Request) {
	s, ok := readKeySettings(w, r, false)
	if !ok {
		return
	}
	now := p.now()
	p.withMinted(w, r, func(m *mintedKey) any {
		m.apply(s)
		m.updatedAt = &now
		return map[string]any{"data": m.object()}
	})
}

// openrouterDeleteKey revokes a key: it stops working on every shape.
func (p *Provider) openrouterDeleteKey(w http.ResponseWriter, r *http.Request) {
	var revoked *mintedKey
	p.withMinted(w, r, func(m *mintedKey) any {
		m.deleted = true
		delete(p.keys, m.digest)
		revoked = m
		return map[string]any{"deleted": true}
	})
	if revoked != nil {
		p.log.Info("fakeprovider revoked a key", "hash", revoked.hash, "name", revoked.name)
	}
}
