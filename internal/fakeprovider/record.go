package fakeprovider

import (
	"net/http"
	"time"
)

// RequestRecord describes one request the provider served. It never holds
// a credential: Auth names the places a credential was sent, not its value.
type RequestRecord struct {
	Time   time.Time
	Method string
	Path   string // the URL path, without the query, which may carry a key
	// Auth lists the credential carriers present, in this order:
	// "Authorization", "X-Api-Key", "X-Goog-Api-Key" and "?key" for
	// Gemini's key query parameter.
	Auth   []string
	Status int  // the status sent, 0 if none was sent
	Fault  bool // a fault matched the request
}

// Requests returns the requests served so far, oldest first.
func (p *Provider) Requests() []RequestRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]RequestRecord(nil), p.requests...)
}

// credentialNames lists the credential carriers present in r.
func credentialNames(r *http.Request) []string {
	var names []string
	for _, h := range []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key"} {
		if r.Header.Get(h) != "" {
			names = append(names, h)
		}
	}
	if r.URL.Query().Has("key") {
		names = append(names, "?key")
	}
	return names
}

// statusRecorder remembers the status a handler sent. Unwrap lets
// http.ResponseController reach the connection's Flush.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
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

func (s *statusRecorder) status() int { return s.code }
