package fakeprovider

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
)

func (p *Provider) openaiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+OpenAIPrefix+"/models", p.openaiAuthed(p.openaiListModels))
	mux.HandleFunc("GET "+OpenAIPrefix+"/models/{model...}", p.openaiAuthed(p.openaiGetModel))
	mux.HandleFunc("POST "+OpenAIPrefix+"/chat/completions", p.openaiAuthed(p.openaiChat))
	mux.HandleFunc("POST "+OpenAIPrefix+"/embeddings", p.openaiAuthed(p.openaiEmbeddings))
	mux.HandleFunc("POST "+OpenAIPrefix+"/responses", p.openaiAuthed(p.openaiResponses))
	mux.HandleFunc("/openai/", func(w http.ResponseWriter, r *http.Request) {
		msg := fmt.Sprintf("Invalid URL (%s %s)", r.Method, strings.TrimPrefix(r.URL.Path, "/openai"))
		writeOpenAIError(w, http.StatusNotFound, "invalid_request_error", nil, msg, nil)
	})
}

// writeOpenAIError sends {"error":{"message","type","param","code"}}; a nil
// code or param is sent as null, as OpenAI does.
func writeOpenAIError(w http.ResponseWriter, status int, typ string, code any, msg string, param any) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "param": param, "code": code,
	}})
}

// openaiStatusError returns OpenAI's usual error body for status and sets
// the headers OpenAI sends with it.
func openaiStatusError(h http.Header, status int) map[string]any {
	typ, code, msg := "invalid_request_error", any(nil), statusText(status)
	switch status {
	case http.StatusUnauthorized:
		code, msg = "invalid_api_key", msgIncorrectKey
	case http.StatusForbidden:
		typ, code, msg = "request_forbidden", "unsupported_country_region_territory",
			"Country, region, or territory not supported"
	case http.StatusNotFound:
		code, msg = "model_not_found", "The model does not exist or you do not have access to it."
	case http.StatusTooManyRequests:
		typ, code, msg = "requests", "rate_limit_exceeded",
			"Rate limit reached for requests. Please try again in 1s."
		h.Set("X-Ratelimit-Limit-Requests", "60")
		h.Set("X-Ratelimit-Remaining-Requests", "0")
		h.Set("X-Ratelimit-Reset-Requests", "1s")
	case http.StatusInternalServerError:
		typ, msg = "server_error", "The server had an error while processing your request. Sorry about that!"
	case http.StatusServiceUnavailable:
		typ, msg = "server_error", "The engine is currently overloaded, please try again later."
	default:
		if status >= 500 {
			typ = "server_error"
		}
	}
	return map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}}
}

// msgIncorrectKey is OpenAI's 401 message without the masked key that
// OpenAI appends, so that no part of a key reaches a response.
const msgIncorrectKey = "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."

type keyedHandler func(w http.ResponseWriter, r *http.Request, k keyState)

// openaiAuthed checks "Authorization: Bearer KEY" as OpenAI does before
// calling h: no key, an unknown key or a management key is a 401, and an
// exhausted key is a 429 insufficient_quota.
func (p *Provider) openaiAuthed(h keyedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", p.nextID("req_fake"))
		token := bearer(r)
		if token == "" {
			writeOpenAIError(w, http.StatusUnauthorized, "invalid_request_error", nil,
				"You didn't provide an API key. You need to provide your API key in an "+
					"Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", nil)
			return
		}
		k, ok := p.authenticate(r, token)
		if !ok || k.kind != inferenceKey {
			writeOpenAIError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", msgIncorrectKey, nil)
			return
		}
		if k.exhausted {
			writeOpenAIError(w, http.StatusTooManyRequests, "insufficient_quota", "insufficient_quota",
				"You exceeded your current quota, please check your plan and billing details.", nil)
			return
		}
		h(w, r, k)
	}
}

// created is a fixed, deterministic creation time for the i-th model, one
// day apart, newest first.
func created(i int) int64 { return 1735689600 - int64(i)*86400 }

func openaiModel(id string, i int) map[string]any {
	owner := "system"
	if strings.HasPrefix(id, "gpt-") || (len(id) > 1 && id[0] == 'o' && id[1] >= '0' && id[1] <= '9') {
		owner = "openai"
	}
	return map[string]any{"id": id, "object": "model", "created": created(i), "owned_by": owner}
}

func (p *Provider) openaiListModels(w http.ResponseWriter, r *http.Request, k keyState) {
	data := []any{}
	for i, id := range p.modelsFor(k) {
		data = append(data, openaiModel(id, i))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (p *Provider) openaiGetModel(w http.ResponseWriter, r *http.Request, k keyState) {
	id := r.PathValue("model")
	for i, m := range p.modelsFor(k) {
		if m == id {
			writeJSON(w, http.StatusOK, openaiModel(id, i))
			return
		}
	}
	openaiModelNotFound(w, id)
}

func openaiModelNotFound(w http.ResponseWriter, id string) {
	writeOpenAIError(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
		fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", id), nil)
}

func (p *Provider) openaiChat(w http.ResponseWriter, r *http.Request, k keyState) {
	var req chatRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", nil,
			"We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.", nil)
		return
	}
	if bad := req.problem(); bad != nil {
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", bad.code, bad.msg, bad.param)
		return
	}
	if !slices.Contains(p.modelsFor(k), req.Model) {
		openaiModelNotFound(w, req.Model)
		return
	}

	p.sendChat(w, r, &req, "chatcmpl-fake")
}

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     int             `json:"dimensions"`
}

// inputs returns the request's input as a list of strings.
func (e *embeddingRequest) inputs() ([]string, error) {
	var one string
	if json.Unmarshal(e.Input, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(e.Input, &many); err != nil || len(many) == 0 {
		return nil, errors.New("'input' must be a string or a non-empty array of strings")
	}
	return many, nil
}

func (p *Provider) openaiEmbeddings(w http.ResponseWriter, r *http.Request, k keyState) {
	var req embeddingRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", nil,
			"We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.", nil)
		return
	}
	inputs, err := req.inputs()
	if err != nil {
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", nil, err.Error(), "input")
		return
	}
	if req.Model == "" {
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", nil,
			"you must provide a model parameter", nil)
		return
	}
	if !slices.Contains(p.modelsFor(k), req.Model) {
		openaiModelNotFound(w, req.Model)
		return
	}
	writeJSON(w, http.StatusOK, embeddingsBody(&req, inputs))
}

func embeddingsBody(req *embeddingRequest, inputs []string) map[string]any {
	dims := req.Dimensions
	if dims <= 0 {
		dims = defaultDimensions(req.Model)
	}
	data := []any{}
	tokens := 0
	for i, in := range inputs {
		tokens += len(strings.Fields(in))
		vec := embed(in, dims)
		var value any = vec
		if req.EncodingFormat == "base64" {
			value = encodeFloats(vec)
		}
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": value})
	}
	return map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	}
}

// defaultDimensions returns the size of model's vectors when the request
// sets none: OpenAI's 1536 and 3072 for its large model, Gemini's 3072 for
// gemini-embedding and 768 for its older models.
func defaultDimensions(model string) int {
	switch {
	case strings.Contains(model, "gemini-embedding"), strings.Contains(model, "large"):
		return 3072
	case strings.Contains(model, "text-embedding-004"), strings.Contains(model, "embedding-001"):
		return 768
	}
	return 1536
}

// embed returns a deterministic unit vector for text.
func embed(text string, dims int) []float32 {
	vec := make([]float32, dims)
	seed := sha256.Sum256([]byte(text))
	var norm float64
	for i := range vec {
		if i%8 == 0 && i > 0 {
			seed = sha256.Sum256(seed[:])
		}
		u := binary.LittleEndian.Uint32(seed[(i%8)*4:])
		vec[i] = float32(u)/float32(math.MaxUint32)*2 - 1
		norm += float64(vec[i]) * float64(vec[i])
	}
	scale := float32(1 / math.Sqrt(norm))
	for i := range vec {
		vec[i] *= scale
	}
	return vec
}

// encodeFloats is OpenAI's base64 encoding_format: little-endian float32s.
func encodeFloats(vec []float32) string {
	buf := make([]byte, 4*len(vec))
	for i, v := range vec {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	return base64.StdEncoding.EncodeToString(buf)
}
