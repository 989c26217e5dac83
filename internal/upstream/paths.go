package upstream

import (
	"fmt"
	"net/url"
	"strings"
)

// adapterPaths are each adapter's paths under its base URL, on the
// OpenAI-compatible API that each one serves with Bearer auth. Gemini's is
// under .../v1beta/openai; Anthropic's, under .../v1, serves chat only and
// is documented by Anthropic for testing and comparison rather than
// production.
var adapterPaths = map[string]map[Endpoint]string{
	"openai":     {ChatCompletions: "/chat/completions", Responses: "/responses", Embeddings: "/embeddings"},
	"openrouter": {ChatCompletions: "/chat/completions", Responses: "/responses", Embeddings: "/embeddings"},
	"gemini":     {ChatCompletions: "/openai/chat/completions", Embeddings: "/openai/embeddings"},
	"anthropic":  {ChatCompletions: "/chat/completions"},
}

// endpointURL returns the URL of endpoint under v's base URL, or false if
// v's adapter does not serve the endpoint.
func endpointURL(v *version, e Endpoint) (*url.URL, bool) {
	path, ok := adapterPaths[v.adapter][e]
	if !ok {
		return nil, false
	}
	u := *v.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	return &u, true
}

// unsupportedEndpoint is the client's error for an endpoint that the
// model's provider does not serve.
func unsupportedEndpoint(model, adapter string, e Endpoint) string {
	var served []string
	for _, other := range []Endpoint{ChatCompletions, Responses, Embeddings} {
		if _, ok := adapterPaths[adapter][other]; ok {
			served = append(served, other.String())
		}
	}
	return fmt.Sprintf("model %q is served by provider %s, which has no %s endpoint: use %s",
		model, adapter, e, strings.Join(served, " or "))
}
