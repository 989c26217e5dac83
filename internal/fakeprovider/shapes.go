package fakeprovider

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// shape is one provider's API style.
type shape int

const (
	noShape shape = iota
	openaiShape
	anthropicShape
	geminiShape
	geminiCompatShape // Gemini's OpenAI-compatible endpoints
	openrouterShape
)

// Path prefixes of the shapes.
const (
	OpenAIPrefix     = "/openai/v1"
	AnthropicPrefix  = "/anthropic/v1"
	GeminiPrefix     = "/gemini/v1beta"
	OpenRouterPrefix = "/openrouter/api/v1"
)

func shapeOf(urlPath string) shape {
	switch {
	case strings.HasPrefix(urlPath, "/openai/"):
		return openaiShape
	case strings.HasPrefix(urlPath, "/anthropic/"):
		return anthropicShape
	case strings.HasPrefix(urlPath, GeminiOpenAIPrefix+"/"):
		return geminiCompatShape
	case strings.HasPrefix(urlPath, "/gemini/"):
		return geminiShape
	case strings.HasPrefix(urlPath, "/openrouter/"):
		return openrouterShape
	}
	return noShape
}

// routes registers every shape's handlers. Each shape has a catch-all that
// sends the shape's own 404 for unknown paths and methods.
func (p *Provider) routes() *http.ServeMux {
	mux := http.NewServeMux()
	p.openaiRoutes(mux)
	p.compatRoutes(mux)
	p.anthropicRoutes(mux)
	p.geminiRoutes(mux)
	p.openrouterRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeShapeError(w, noShape, http.StatusNotFound, nil)
	})
	return mux
}

// writeShapeError sends the error body that s sends for status, with its
// headers, then extra headers.
func writeShapeError(w http.ResponseWriter, s shape, status int, extra http.Header) {
	var body any
	switch s {
	case openaiShape:
		body = openaiStatusError(w.Header(), status)
	case anthropicShape:
		body = anthropicStatusError(w.Header(), status)
	case geminiShape:
		body = geminiStatusError(w.Header(), status)
	case geminiCompatShape:
		body = []any{geminiStatusError(w.Header(), status)}
	case openrouterShape:
		body = openrouterStatusError(w.Header(), status)
	default:
		body = map[string]string{"error": statusText(status)}
	}
	setHeaders(w.Header(), extra)
	writeJSON(w, status, body)
}

func setHeaders(dst, src http.Header) {
	for name, values := range src {
		dst.Del(name)
		for _, v := range values {
			dst.Add(name, v)
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		// Every body is built from plain maps and structs here.
		panic("fakeprovider: encoding a response: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

// statusText extends http.StatusText with 529, Anthropic's overloaded.
func statusText(status int) string {
	if status == 529 {
		return "Overloaded"
	}
	if text := http.StatusText(status); text != "" {
		return text
	}
	return "Status " + strconv.Itoa(status)
}

// maxBody bounds request bodies; the stand-in's requests are small.
const maxBody = 1 << 20

// decodeBody reads r's JSON body into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	return json.NewDecoder(r.Body).Decode(v)
}

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return ""
	}
	return strings.TrimSpace(h[len(scheme):])
}
