package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

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
		parsed, err := upstream.ParseBody(body)
		if err != nil {
			upstream.WriteBodyError(w, err)
			return
		}
		route, ok := s.route(w, r, parsed.Model())
		if !ok {
			return
		}
		if !s.checkProviderSecret(w, r, route.Provider) {
			return
		}
		month, aerr := s.limits.takeQuota(client)
		if aerr != nil {
			aerr.write(w)
			return
		}
		s.proxy.Serve(w, r, upstream.Request{
			Endpoint: e, SecretID: s.cfg.Providers[route.Provider].Secret, Model: route.Model, Body: parsed,
		})
		// The quota counts requests that reached the provider. It is
		// taken before and given back after, rather than counted after,
		// so that concurrent requests cannot overrun it.
		if o := requestInfoFrom(r).outcome; o == nil || !o.Upstream {
			s.limits.refundQuota(client, month)
		}
	})
}

// checkClient authenticates r and applies the client's rate limit. On
// failure it writes the error response and returns false.
func (s *Server) checkClient(w http.ResponseWriter, r *http.Request) (clientkeys.Client, bool) {
	info := requestInfoFrom(r)
	c, aerr := s.auth.authenticate(r.Context(), r)
	info.client = c
	if aerr == nil {
		aerr = s.limits.allow(c)
	}
	if aerr != nil {
		info.authFailure = aerr.reason
		aerr.write(w)
		return clientkeys.Client{}, false
	}
	return c, true
}

// readBody reads the request body, at most max_request_bytes of it, within
// the body read timeout.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := s.readWithDeadline(w, r)
	var tooLarge *http.MaxBytesError
	switch {
	case err != nil && errors.Is(context.Cause(r.Context()), ErrShutdown):
		writeShutdown(w, requestInfoFrom(r), "while its body was arriving")
		return nil, false
	case errors.Is(err, os.ErrDeadlineExceeded):
		writeError(w, http.StatusRequestTimeout, "request_timeout",
			fmt.Sprintf("the request body did not arrive within %s: send the whole body without pausing", s.bodyTimeout))
		return nil, false
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large",
			fmt.Sprintf("request body is larger than this router's limit of %d bytes (max_request_bytes)", tooLarge.Limit))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_request_body", "reading the request body failed: "+err.Error())
		return nil, false
	}
	requestInfoFrom(r).bodyRead = true
	return body, true
}

// readWithDeadline reads the body with a read deadline on the connection,
// and clears the deadline after: net/http reads on in the background
// while the response is written, to notice a client that goes away, and
// a deadline left in place would cancel a long stream.
func (s *Server) readWithDeadline(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rc := http.NewResponseController(w)
	// A writer without deadlines, such as a test's recorder, reads
	// without one.
	if err := rc.SetReadDeadline(time.Now().Add(s.bodyTimeout)); err == nil {
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
		// A shutdown that cuts the request ends the read at once, rather
		// than at the body timeout or when the server closes the
		// connection.
		stop := context.AfterFunc(r.Context(), func() { _ = rc.SetReadDeadline(time.Now()) })
		defer stop()
	}
	limit := s.cfg.MaxRequestBytes
	return readAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
}

// readAll reads r to its end. When the request declares its length
// (contentLength, -1 when unknown) it allocates the buffer once, where
// io.ReadAll would grow it step by step and allocate about twice the
// body's size. The declared length sizes the buffer only up to limit,
// which r enforces.
func readAll(r io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength < 0 {
		return io.ReadAll(r)
	}
	// One byte more, so that the read that finds the end needs no growth.
	buf := make([]byte, 0, min(contentLength, limit)+1)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			// The body is longer than declared, which net/http's server
			// never lets through: double the buffer, as io.ReadAll does.
			buf = slices.Grow(buf, len(buf))
		}
	}
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
