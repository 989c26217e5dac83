package router

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/upstream"
	"github.com/keyturn/keyturn/keystore"
)

// completions serves one of the endpoints that go upstream. It checks the
// client before it reads the body, so that a caller without a key cannot
// make the router read max_request_bytes.
func (s *Server) completions(e upstream.Endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowMethod(w, r, http.MethodPost) {
			return
		}
		client, ok := s.checkClient(w, r)
		if !ok {
			return
		}
		if err := upstream.CheckContentEncoding(r.Header); err != nil {
			// The body's model is read before the request goes upstream,
			// so a compressed body would only fail as not JSON.
			w.Header().Set("Accept-Encoding", "identity")
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_content_encoding", err.Error())
			return
		}
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		name, ok := requestModel(w, body)
		if !ok {
			return
		}
		route, ok := s.route(w, r, name)
		if !ok {
			return
		}
		if !s.checkProviderSecret(w, r, route.Provider) {
			return
		}
		if aerr := s.limits.takeQuota(client); aerr != nil {
			aerr.write(w)
			return
		}
		s.proxy.Serve(w, r, upstream.Request{
			Endpoint: e, SecretID: s.cfg.Providers[route.Provider].Secret, Model: route.Model, Body: body,
		})
	})
}

// checkClient authenticates r and applies the client's rate limit. On
// failure it writes the error response and returns false.
func (s *Server) checkClient(w http.ResponseWriter, r *http.Request) (clientkeys.Client, bool) {
	c, aerr := s.auth.authenticate(r.Context(), r)
	if aerr == nil {
		requestInfoFrom(r).client = c
		aerr = s.limits.allow(c)
	}
	if aerr != nil {
		aerr.write(w)
		return clientkeys.Client{}, false
	}
	return c, true
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large",
			fmt.Sprintf("request body is larger than this router's limit of %d bytes (max_request_bytes)", tooLarge.Limit))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_request_body", "reading the request body failed: "+err.Error())
		return nil, false
	}
	return body, true
}

// requestModel returns the body's "model" member, parsed by the rules
// that the upstream request applies, so that a body the router routes is
// never one that upstream.Serve rejects: the name matches exactly and
// appears once.
func requestModel(w http.ResponseWriter, body []byte) (string, bool) {
	name, err := upstream.ModelOf(body)
	if err == nil {
		return name, true
	}
	code := "invalid_request_body"
	if errors.Is(err, upstream.ErrNoModel) {
		code = "missing_model"
	}
	writeError(w, http.StatusBadRequest, code, err.Error())
	return "", false
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, name string) (ModelRoute, bool) {
	info := requestInfoFrom(r)
	info.model = name
	route, ok := s.cfg.Models[name]
	if !ok {
		writeError(w, http.StatusNotFound, "model_not_found",
			fmt.Sprintf("the model %.200q does not exist on this router: GET /v1/models lists the models it serves", name))
		return ModelRoute{}, false
	}
	info.provider = route.Provider
	info.secret = s.cfg.Providers[route.Provider].Secret
	return route, true
}

// checkProviderSecret writes a 502 and returns false when the secret of
// provider name does not exist in the store. The likely cause is a wrong
// secret id in the router config, which the proxy's advice for a secret
// without a key (stage one) does not fit. A secret that exists without a
// current version, and every other read error, is left to the proxy. The
// read is a cache hit for every request after the secret's first.
func (s *Server) checkProviderSecret(w http.ResponseWriter, r *http.Request, name string) bool {
	id := s.cfg.Providers[name].Secret
	_, err := s.keys.Get(r.Context(), id)
	if err == nil || errors.Is(err, keystore.ErrUnavailable) || !errors.Is(err, keystore.ErrNotFound) {
		return true
	}
	if !s.missing.missing(r.Context(), id) {
		return true
	}
	s.log.Error("the secret of a provider does not exist: fix providers."+name+".secret in the router config, "+
		"or create the secret with 'rotator add'", "provider", name, "secret", id, "error", err)
	writeError(w, http.StatusBadGateway, "upstream_key_unavailable", fmt.Sprintf(
		"this router's provider %s reads its key from secret %q, which does not exist: "+
			"the router's operator corrects providers.%s.secret in the router config, or creates the secret",
		name, id, name))
	return false
}
