package router

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/upstream"
)

// writeError sends an OpenAI-style error body.
func writeError(w http.ResponseWriter, status int, code, message string) {
	upstream.WriteError(w, status, code, message)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// allowMethod writes a 405 unless r's method is one of methods.
func allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
		fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(methods, " or ")))
	return false
}

func serveNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "not_found",
		fmt.Sprintf("invalid URL (%s %.200s): this router serves /v1/chat/completions, /v1/responses, /v1/embeddings and /v1/models",
			r.Method, r.URL.Path))
}

// requestInfo collects what the access log line of a request reports.
// Handlers fill it in as they learn it.
type requestInfo struct {
	client   clientkeys.Client
	model    string
	provider string
	secret   string
	// outcome is what the upstream call reported, or nil.
	outcome *upstream.Outcome
}

type requestInfoKey struct{}

func requestInfoFrom(r *http.Request) *requestInfo {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// logRequest writes the access log line of a request. It names the client
// by id and name, never by key.
func (s *Server) logRequest(r *http.Request, status int, info *requestInfo, d time.Duration) {
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", d),
	}
	if info.client.ID != "" {
		attrs = append(attrs, slog.String("client_id", info.client.ID), slog.String("client", info.client.Name))
	}
	if info.model != "" {
		attrs = append(attrs, slog.String("model", info.model))
	}
	if info.secret != "" {
		attrs = append(attrs, slog.String("provider", info.provider), slog.String("secret", info.secret))
	}
	if o := info.outcome; o != nil && o.VersionID != "" {
		attrs = append(attrs, slog.String("version_id", o.VersionID), slog.String("stage", o.Stage), slog.Bool("retried", o.Retried))
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(context.Background(), level, "request", attrs...)
}

// statusRecorder records the status a handler sent. Unwrap lets
// http.ResponseController reach the connection's Flush, which streams
// need, and Flush serves code that asserts http.Flusher.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// status is the status sent. When the handler wrote nothing it is
// upstream.StatusClientClosed if the client went away, or else the 200
// that net/http sends.
func (s *statusRecorder) status(r *http.Request) int {
	switch {
	case s.code != 0:
		return s.code
	case r.Context().Err() != nil:
		return upstream.StatusClientClosed
	}
	return http.StatusOK
}
