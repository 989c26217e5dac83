package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/upstream"
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

// requestModel returns the body's "model" field.
func requestModel(w http.ResponseWriter, body []byte) (string, bool) {
	var fields struct {
		Model json.RawMessage `json:"model"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_body",
			"the request body is not a JSON object: send JSON with a \"model\" field, such as {\"model\": \"gpt-4o\", ...}")
		return "", false
	}
	var name string
	if len(fields.Model) == 0 || json.Unmarshal(fields.Model, &name) != nil || name == "" {
		writeError(w, http.StatusBadRequest, "missing_model",
			"the request body has no \"model\" text field: name one of this router's models; GET /v1/models lists them")
		return "", false
	}
	return name, true
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
