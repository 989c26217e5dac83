package router

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/upstream"
)

// writeError sends an OpenAI-style error body.
func writeError(w http.ResponseWriter, status int, code, message string) {
	upstream.WriteError(w, status, code, message)
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
	// id is the router's id of the request.
	id string
	// upstreamID is the provider's id of the request, from its
	// x-request-id or request-id header, or "".
	upstreamID string
	// bodyRead reports whether the request body was read to its end.
	bodyRead bool
	// authFailure is the reason the request's client key was rejected, or "".
	authFailure string
	client      clientkeys.Client
	model       string
	provider    string
	secret      string
	// outcome is the upstream call's report, or nil.
	outcome *upstream.Outcome
	// aborted is the reason the response was cut short: "client_closed",
	// "shutdown", "upstream_broke" or "panic". It is "" for a complete
	// response.
	aborted string
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
		slog.String("request_id", info.id),
		slog.String("remote_addr", r.RemoteAddr),
	}
	if info.client.ID != "" {
		attrs = append(attrs, slog.String("client_id", info.client.ID), slog.String("client", info.client.Name))
	}
	if info.authFailure != "" {
		attrs = append(attrs, slog.String("reason", info.authFailure))
	}
	if info.model != "" {
		attrs = append(attrs, slog.String("model", info.model))
	}
	if info.secret != "" {
		attrs = append(attrs, slog.String("provider", info.provider), slog.String("secret", info.secret))
	}
	if o := info.outcome; o != nil && o.VersionID != "" {
		attrs = append(attrs, slog.String("version_id", o.VersionID), slog.String("stage", o.Stage), slog.Bool("retried", o.Retried))
		if o.Rejected > 0 {
			attrs = append(attrs, slog.Int("rejected", o.Rejected))
		}
	}
	if info.upstreamID != "" {
		attrs = append(attrs, slog.String("upstream_request_id", info.upstreamID))
	}
	level := slog.LevelInfo
	if info.aborted != "" {
		attrs = append(attrs, slog.String("aborted", info.aborted))
	}
	// A client that goes away mid-stream is routine, but a stream that
	// broke is not.
	if status >= 500 || (info.aborted != "" && info.aborted != "client_closed") {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(context.Background(), level, "request", attrs...)
}
