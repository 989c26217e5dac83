package fakeprovider

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

func (p *Provider) geminiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+GeminiPrefix+"/models", p.geminiAuthed(p.geminiListModels))
	mux.HandleFunc("GET "+GeminiPrefix+"/models/{model}", p.geminiAuthed(p.geminiGetModel))
	mux.HandleFunc("/gemini/", func(w http.ResponseWriter, r *http.Request) {
		writeGeminiError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.", nil)
	})
}

// writeGeminiError sends a google.rpc.Status error:
// {"error":{"code","message","status","details"}}.
func writeGeminiError(w http.ResponseWriter, code int, status, msg string, details []any) {
	writeJSON(w, code, geminiError(code, status, msg, details))
}

func geminiError(code int, status, msg string, details []any) map[string]any {
	e := map[string]any{"code": code, "message": msg, "status": status}
	if details != nil {
		e["details"] = details
	}
	return map[string]any{"error": e}
}

// geminiStatusError returns Google's usual error body for status.
func geminiStatusError(_ http.Header, code int) map[string]any {
	switch code {
	case http.StatusBadRequest:
		return geminiError(code, "INVALID_ARGUMENT", "Request contains an invalid argument.", nil)
	case http.StatusUnauthorized:
		return geminiError(code, "UNAUTHENTICATED", msgGeminiUnauthenticated, nil)
	case http.StatusForbidden:
		return geminiError(code, "PERMISSION_DENIED", "The caller does not have permission", nil)
	case http.StatusNotFound:
		return geminiError(code, "NOT_FOUND", "Requested entity was not found.", nil)
	case http.StatusTooManyRequests:
		return geminiError(code, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).",
			[]any{map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}})
	case http.StatusInternalServerError:
		return geminiError(code, "INTERNAL", "An internal error has occurred. Please retry or report the error.", nil)
	case http.StatusServiceUnavailable:
		return geminiError(code, "UNAVAILABLE", "The model is overloaded. Please try again later.", nil)
	case http.StatusGatewayTimeout:
		return geminiError(code, "DEADLINE_EXCEEDED", "The request timed out. Please try again.", nil)
	}
	return geminiError(code, "UNKNOWN", statusText(code), nil)
}

const (
	msgGeminiUnauthenticated = "Request had invalid authentication credentials. Expected OAuth 2 access token, " +
		"login cookie or other valid authentication credential."
	msgGeminiUnregistered = "Method doesn't allow unregistered callers (callers without established identity). " +
		"Please use API Key or other form of API consumer identity to call this API."
	msgGeminiBilling = "Gemini API free tier is not available in your country. " +
		"Please enable billing on your project in Google AI Studio."
)

// geminiKeyInvalid is Google's error for a bad API key: a 400, not a 401.
func geminiKeyInvalid() map[string]any {
	return geminiError(http.StatusBadRequest, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
		[]any{map[string]any{
			"@type":    "type.googleapis.com/google.rpc.ErrorInfo",
			"reason":   "API_KEY_INVALID",
			"domain":   "googleapis.com",
			"metadata": map[string]string{"service": "generativelanguage.googleapis.com"},
		}})
}

// geminiAuthed takes the key from x-goog-api-key or, as Google also
// accepts, the key query parameter. With neither, an Authorization header
// is read as an OAuth token, which the stand-in never accepts (401), and no
// credential at all is a 403 PERMISSION_DENIED.
func (p *Provider) geminiAuthed(h keyedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Goog-Api-Key")
		if key == "" {
			key = r.URL.Query().Get("key")
		}
		switch {
		case key == "" && r.Header.Get("Authorization") != "":
			writeGeminiError(w, http.StatusUnauthorized, "UNAUTHENTICATED", msgGeminiUnauthenticated, nil)
			return
		case key == "":
			writeGeminiError(w, http.StatusForbidden, "PERMISSION_DENIED", msgGeminiUnregistered, nil)
			return
		}
		k, ok := p.authenticate(r, key)
		if !ok || k.kind != inferenceKey {
			writeJSON(w, http.StatusBadRequest, geminiKeyInvalid())
			return
		}
		if k.exhausted {
			writeGeminiError(w, http.StatusBadRequest, "FAILED_PRECONDITION", msgGeminiBilling, nil)
			return
		}
		h(w, r, k)
	}
}

func geminiModel(id string) map[string]any {
	m := map[string]any{
		"name":        "models/" + id,
		"version":     "001",
		"displayName": displayName(id),
		"description": "A stand-in for " + displayName(id) + ".",
	}
	if strings.Contains(id, "embedding") {
		m["inputTokenLimit"], m["outputTokenLimit"] = 2048, 1
		m["supportedGenerationMethods"] = []string{"embedContent"}
		return m
	}
	m["inputTokenLimit"], m["outputTokenLimit"] = 1048576, 65536
	m["supportedGenerationMethods"] = []string{"generateContent", "countTokens"}
	m["temperature"], m["topP"], m["topK"], m["maxTemperature"] = 1, 0.95, 64, 2
	return m
}

// geminiListModels pages as Google does: pageSize models (default 50, at
// most 1000) from pageToken, with nextPageToken while more remain.
func (p *Provider) geminiListModels(w http.ResponseWriter, r *http.Request, k keyState) {
	q := r.URL.Query()
	size, ok := geminiPageSize(q.Get("pageSize"))
	if !ok {
		writeGeminiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf(
			"Invalid value for pageSize: %q. Use a non-negative integer.", q.Get("pageSize")), nil)
		return
	}
	ids := p.modelsFor(k)
	start, ok := decodePageToken(q.Get("pageToken"), len(ids))
	if !ok {
		writeGeminiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf(
			"Invalid page token %q. Pass the nextPageToken of the previous page.", q.Get("pageToken")), nil)
		return
	}

	end := min(start+size, len(ids))
	models := []any{}
	for _, id := range ids[start:end] {
		models = append(models, geminiModel(id))
	}
	body := map[string]any{"models": models}
	if end < len(ids) {
		body["nextPageToken"] = encodePageToken(end)
	}
	writeJSON(w, http.StatusOK, body)
}

func geminiPageSize(s string) (int, bool) {
	if s == "" {
		return 50, true
	}
	n, err := strconv.Atoi(s)
	switch {
	case err != nil || n < 0:
		return 0, false
	case n == 0:
		return 50, true
	}
	return min(n, 1000), true
}

// Page tokens are opaque to clients, as Google's are; inside they carry
// the offset of the next page.
func encodePageToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func decodePageToken(token string, total int) (int, bool) {
	if token == "" {
		return 0, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	rest, ok := strings.CutPrefix(string(raw), "offset:")
	n, convErr := strconv.Atoi(rest)
	if err != nil || !ok || convErr != nil || n < 0 || n > total {
		return 0, false
	}
	return n, true
}

func (p *Provider) geminiGetModel(w http.ResponseWriter, r *http.Request, k keyState) {
	id := r.PathValue("model")
	if !slices.Contains(p.modelsFor(k), id) {
		writeGeminiError(w, http.StatusNotFound, "NOT_FOUND",
			fmt.Sprintf("models/%s is not found for API version v1beta. "+
				"Call ListModels to see the available models.", id), nil)
		return
	}
	writeJSON(w, http.StatusOK, geminiModel(id))
}
