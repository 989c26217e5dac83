package upstream

import (
	"net/http"
	"strconv"
)

// WriteJSON sends status with body, a complete JSON document, marked as
// JSON that no cache may store and no browser may sniff as another type.
func WriteJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// StatusRecorder is an http.ResponseWriter that records the status sent.
// It drops informational (1xx) responses, whose headers the reverse proxy
// would copy from the provider unfiltered. Unwrap lets
// http.ResponseController reach the connection's Flush, which streams
// need, and Flush serves code that asserts http.Flusher. Serve uses a
// *StatusRecorder that it is given instead of wrapping it in another.
type StatusRecorder struct {
	http.ResponseWriter
	code int
}

func (w *StatusRecorder) WriteHeader(code int) {
	if code < 200 {
		return
	}
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// FlushError flushes the response and returns the connection's error,
// which http.ResponseController prefers to Flush.
func (w *StatusRecorder) FlushError() error {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *StatusRecorder) Flush() { _ = w.FlushError() }

func (w *StatusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status returns the status sent in response to r. When nothing was
// written it is StatusClientClosed if r's client went away, or else the
// 200 that net/http sends for a handler that writes nothing.
func (w *StatusRecorder) Status(r *http.Request) int {
	switch {
	case w.code != 0:
		return w.code
	case r.Context().Err() != nil:
		return StatusClientClosed
	}
	return http.StatusOK
}
