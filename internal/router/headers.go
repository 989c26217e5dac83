package router

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"
)

// headerWriter adds the router's headers to a response as its header is
// written, after the provider's headers were copied into it:
//
//   - X-Request-Id, unless the provider sent one, so that a client can
//     quote an id that the access log line carries;
//   - Connection: close when the router answers before it has read a
//     request body that the client declared. Without it, net/http reads
//     what is left of a small body before it sends the response, so a
//     client that never sends the body would never get the answer.
//
// Unwrap lets http.ResponseController reach the connection for flushes
// and read deadlines.
type headerWriter struct {
	http.ResponseWriter
	r       *http.Request
	info    *requestInfo
	written bool
}

func (w *headerWriter) WriteHeader(code int) {
	if code >= 200 {
		w.addHeaders()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerWriter) Write(b []byte) (int, error) {
	w.addHeaders()
	return w.ResponseWriter.Write(b)
}

// FlushError flushes the response, whose header a first flush writes.
func (w *headerWriter) FlushError() error {
	w.addHeaders()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *headerWriter) Flush() { _ = w.FlushError() }

func (w *headerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *headerWriter) addHeaders() {
	if w.written {
		return
	}
	w.written = true
	h := w.Header()
	// The router never sets these itself, so any value came from the
	// provider.
	w.info.upstreamID = h.Get("X-Request-Id")
	if w.info.upstreamID == "" {
		w.info.upstreamID = h.Get("Request-Id")
	}
	if h.Get("X-Request-Id") == "" {
		h.Set("X-Request-Id", w.info.id)
	}
	if w.r.ContentLength != 0 && !w.info.bodyRead {
		h.Set("Connection", "close")
	}
}

// dropUnreadBody makes net/http give up the rest of a request body that
// the handler did not read. After the handler returns, net/http reads up to
// 256 KiB of it, so that the connection can serve another request. A
// client that declared a body and never sends it would then hold the
// connection and its goroutine forever. A read deadline in the past makes
// that read fail at once, and net/http closes the connection, as the
// response's Connection: close header announced.
func dropUnreadBody(w http.ResponseWriter) {
	// A writer without deadlines, such as a test's recorder, has no
	// connection to hold.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// newRequestID returns a random request id, such as
// "req_5f0c7a1e9b2d4c6f8a0e1b3d".
func newRequestID() string {
	b := make([]byte, 12)
	// crypto/rand.Read never returns an error.
	_, _ = rand.Read(b)
	return "req_" + hex.EncodeToString(b)
}
