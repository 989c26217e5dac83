package fakeprovider

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Gemini's and Anthropic's OpenAI-compatible endpoints take OpenAI's
// request and response shapes, with Bearer auth, but keep much of their own
// provider's error handling.

// GeminiOpenAIPrefix is the path prefix of Gemini's OpenAI-compatible API,
// under GeminiPrefix.
const GeminiOpenAIPrefix = GeminiPrefix + "/openai"

func (p *Provider) compatRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+GeminiOpenAIPrefix+"/chat/completions", p.geminiCompatAuthed(p.geminiCompatChat))
	mux.HandleFunc("POST "+GeminiOpenAIPrefix+"/embeddings", p.geminiCompatAuthed(p.geminiCompatEmbeddings))
	mux.HandleFunc("POST "+AnthropicPrefix+"/chat/completions", p.anthropicCompatAuthed(p.anthropicCompatChat))
}

// writeGeminiCompatError sends a google.rpc.Status error wrapped in a JSON
// array, [{"error":{...}}], as Gemini's OpenAI-compatible endpoint does:
// clients have reported that body for a bad key (400 API_KEY_INVALID), an
// unknown request field (400 INVALID_ARGUMENT) and a rate limit (429), and
// OpenAI SDKs fail to parse it as an object.
func writeGeminiCompatError(w http.ResponseWriter, body map[string]any) {
	code, _ := body["error"].(map[string]any)["code"].(int)
	writeJSON(w, code, []any{body})
}

// geminiCompatAuthed checks "Authorization: Bearer KEY" before calling h,
// with Gemini's errors in the compatible endpoint's array: no key is a 403
// PERMISSION_DENIED, an unknown or management key a 400 API_KEY_INVALID,
// and an exhausted key a 400 FAILED_PRECONDITION.
//
// NOTE: Google also reads x-goog-api-key and ?key on its other endpoints.
// The stand-in takes only the bearer token here, because that is the one
// credential OpenAI clients send.
func (p *Provider) geminiCompatAuthed(h keyedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := bearer(r)
		if key == "" {
			writeGeminiCompatError(w, geminiError(http.StatusForbidden, "PERMISSION_DENIED", msgGeminiUnregistered, nil))
			return
		}
		k, ok := p.authenticate(r, key)
		switch {
		case !ok || k.kind != inferenceKey:
			writeGeminiCompatError(w, geminiKeyInvalid())
		case k.exhausted:
			writeGeminiCompatError(w, geminiError(http.StatusBadRequest, "FAILED_PRECONDITION", msgGeminiBilling, nil))
		default:
			h(w, r, k)
		}
	}
}

// geminiCompatModel returns the model id a compatible request names, which
// may carry Gemini's "models/" prefix, or sends Gemini's 404.
func (p *Provider) geminiCompatModel(w http.ResponseWriter, k keyState, model string) (string, bool) {
	id := strings.TrimPrefix(model, "models/")
	if id == "" {
		writeGeminiCompatError(w, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT", "model is not specified", nil))
		return "", false
	}
	if !slices.Contains(p.modelsFor(k), id) {
		writeGeminiCompatError(w, geminiError(http.StatusNotFound, "NOT_FOUND", fmt.Sprintf(
			"models/%s is not found for API version v1beta, or is not supported for generateContent.", id), nil))
		return "", false
	}
	return id, true
}

func (p *Provider) geminiCompatChat(w http.ResponseWriter, r *http.Request, k keyState) {
	var req chatRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeGeminiCompatError(w, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT",
			"Invalid JSON payload received.", nil))
		return
	}
	if _, ok := p.geminiCompatModel(w, k, req.Model); !ok {
		return
	}
	if bad := req.problem(); bad != nil {
		writeGeminiCompatError(w, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT", bad.msg, nil))
		return
	}
	p.sendChat(w, r, &req, "chatcmpl-fake")
}

func (p *Provider) geminiCompatEmbeddings(w http.ResponseWriter, r *http.Request, k keyState) {
	var req embeddingRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeGeminiCompatError(w, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT",
			"Invalid JSON payload received.", nil))
		return
	}
	inputs, err := req.inputs()
	if err != nil {
		writeGeminiCompatError(w, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT", err.Error(), nil))
		return
	}
	if _, ok := p.geminiCompatModel(w, k, req.Model); !ok {
		return
	}
	writeJSON(w, http.StatusOK, embeddingsBody(&req, inputs))
}

// anthropicCompatAuthed checks the key as Anthropic's OpenAI SDK
// compatibility endpoint does before calling h. OpenAI SDKs send the key as
// "Authorization: Bearer KEY" and no anthropic-version, which this
// endpoint does not require. An x-api-key header, which Anthropic's own
// SDKs send, is read first when present. Errors keep Anthropic's shape,
// {"type":"error","error":{...}}: a bad bearer token is a 401
// authentication_error "Invalid bearer token", as clients pointed at this
// endpoint report.
func (p *Provider) anthropicCompatAuthed(h keyedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Request-Id", p.nextID("req_fake"))
		key, invalid := r.Header.Get("X-Api-Key"), "invalid x-api-key"
		if key == "" {
			key, invalid = bearer(r), "Invalid bearer token"
		}
		if key == "" {
			writeAnthropicError(w, http.StatusUnauthorized, "authentication_error", "x-api-key header is required")
			return
		}
		k, ok := p.authenticate(r, key)
		switch {
		case !ok || k.kind != inferenceKey:
			writeAnthropicError(w, http.StatusUnauthorized, "authentication_error", invalid)
		case k.exhausted:
			writeAnthropicError(w, http.StatusPaymentRequired, "billing_error", msgAnthropicCredit)
		default:
			h(w, r, k)
		}
	}
}

func (p *Provider) anthropicCompatChat(w http.ResponseWriter, r *http.Request, k keyState) {
	var req chatRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeAnthropicError(w, http.StatusBadRequest, "invalid_request_error", "The request body is not valid JSON.")
		return
	}
	if bad := req.problem(); bad != nil {
		writeAnthropicError(w, http.StatusBadRequest, "invalid_request_error", bad.msg)
		return
	}
	if !slices.Contains(p.modelsFor(k), req.Model) {
		writeAnthropicError(w, http.StatusNotFound, "not_found_error", "model: "+req.Model)
		return
	}
	p.sendChat(w, r, &req, "msg_fake")
}
