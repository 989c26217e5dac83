package upstream_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyturn/keyturn/internal/upstream"
)

func TestWriteJSONHeaders(t *testing.T) {
	w := httptest.NewRecorder()
	upstream.WriteJSON(w, http.StatusCreated, []byte(`{"ok": true}`))
	if w.Code != http.StatusCreated {
		t.Errorf("status = %d, want 201", w.Code)
	}
	for name, want := range map[string]string{"Content-Type": "application/json", "Content-Length": "12",
		"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestStatusRecorder(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	rec := &upstream.StatusRecorder{ResponseWriter: httptest.NewRecorder()}
	if got := rec.Status(r); got != http.StatusOK {
		t.Errorf("nothing written: Status = %d, want net/http's 200", got)
	}
	rec.WriteHeader(http.StatusEarlyHints)
	rec.WriteHeader(http.StatusTooManyRequests)
	rec.WriteHeader(http.StatusOK)
	if got := rec.Status(r); got != http.StatusTooManyRequests {
		t.Errorf("Status = %d, want the first final status, 429", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := &upstream.StatusRecorder{ResponseWriter: httptest.NewRecorder()}
	if got := gone.Status(r.WithContext(ctx)); got != upstream.StatusClientClosed {
		t.Errorf("client gone: Status = %d, want %d", got, upstream.StatusClientClosed)
	}
}
