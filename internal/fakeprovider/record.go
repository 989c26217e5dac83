package fakeprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// RequestRecord describes one request the provider served. It can be
// printed: Key is a keystore.Secret, and Header carries no credential
// value.
type RequestRecord struct {
	Time   time.Time
	Method string
	Path   string // the URL path, without the query, which may carry a key
	// Auth lists the credential carriers present, in this order:
	// "Authorization", "X-Api-Key", "X-Goog-Api-Key" and "?key" for
	// Gemini's key query parameter.
	Auth []string
	// Key is the credential that the endpoint's own carrier presented
	// (such as the bearer token on OpenAI paths), whether or not it was
	// valid. It is zero when the request presented none or a fault
	// replaced the response before the handler read it.
	Key keystore.Secret
	// KeyKnown reports whether Key was added or minted, and is neither
	// revoked nor disabled. The endpoint may still reject it, as OpenAI
	// rejects a management key with 401 and an exhausted key with 429.
	KeyKnown bool
	// Header is a copy of the request headers in which the values of
	// Authorization, Proxy-Authorization, X-Api-Key, X-Goog-Api-Key and
	// Cookie are replaced by keystore.Redacted, so that a test can check
	// which headers arrived (Cookie, Accept-Encoding, ...) without holding
	// a credential.
	Header http.Header
	// Body is the request body, up to the provider's 1 MiB request limit.
	Body []byte
	// Model is the "model" field of a JSON object body, or "".
	Model string
	// Events counts the server-sent events written and flushed, 0 for a
	// response that is not a stream.
	Events int
	// Canceled reports that the request's context ended before the
	// handler returned: the client went away, as a client that gives up
	// mid-stream does. Closing the provider does not set it.
	Canceled bool
	Status   int  // the status sent, 0 if none was sent
	Fault    bool // a fault matched the request
}

// Requests returns the requests served so far, oldest first.
func (p *Provider) Requests() []RequestRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]RequestRecord(nil), p.requests...)
}

// WaitRequests waits until the provider has recorded at least n requests
// and returns them all, oldest first. A request is recorded when its
// handler returns, which may be after the client has given up on it. It
// returns ctx's error if ctx ends first.
func (p *Provider) WaitRequests(ctx context.Context, n int) ([]RequestRecord, error) {
	for {
		p.mu.Lock()
		recs, changed := p.requests, p.recorded
		p.mu.Unlock()
		if len(recs) >= n {
			return append([]RequestRecord(nil), recs...), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// newRecord starts the record of r and reads r's body into it, leaving r
// with a body that reads the same.
func newRecord(r *http.Request, start time.Time) RequestRecord {
	rec := RequestRecord{
		Time:   start,
		Method: r.Method,
		Path:   r.URL.Path,
		Auth:   credentialNames(r),
		Header: redactedHeader(r.Header),
	}
	if r.Body == nil || r.Body == http.NoBody {
		return rec
	}
	// Reading one byte past the limit lets the handler's own limit see an
	// oversized body, since the rest of the body follows what was read.
	head, _ := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body = readCloser{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	rec.Body = head[:min(len(head), maxBody)]
	var fields struct {
		Model string `json:"model"`
	}
	if json.Unmarshal(rec.Body, &fields) == nil {
		rec.Model = fields.Model
	}
	return rec
}

type readCloser struct {
	io.Reader
	io.Closer
}

// credentialHeaders are the headers whose values a record never holds.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "X-Api-Key", "X-Goog-Api-Key", "Cookie"}

func redactedHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, name := range credentialHeaders {
		if values := out.Values(name); len(values) > 0 {
			out[name] = []string{keystore.Redacted}
		}
	}
	return out
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

// requestNote collects what handlers learn about a request for its record.
// Handlers run on the request's goroutine, so it needs no lock.
type requestNote struct {
	key      string
	known    bool
	streamed bool // an event stream started
	events   int
	canceled bool // the stream stopped because the client went away
}

// clientGone reports whether the client went away before the handler was
// done. A stream decides for itself, because a client may close the
// connection once it has read the last event, before the handler returns.
func (n *requestNote) clientGone(ctx context.Context) bool {
	if n.streamed {
		return n.canceled
	}
	return ctx.Err() != nil
}

type noteKey struct{}

func withNote(ctx context.Context, n *requestNote) context.Context {
	return context.WithValue(ctx, noteKey{}, n)
}

// noteOf returns the note of the request with ctx, or nil.
func noteOf(ctx context.Context) *requestNote {
	n, _ := ctx.Value(noteKey{}).(*requestNote)
	return n
}

// authenticate looks key up as lookup does and notes it in the request's
// record.
func (p *Provider) authenticate(r *http.Request, key string) (keyState, bool) {
	k, ok := p.lookup(key)
	if n := noteOf(r.Context()); n != nil {
		n.key, n.known = key, ok
	}
	return k, ok
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

func (s *statusRecorder) Flush() { _ = s.FlushError() }

// FlushError is the Flush that http.ResponseController prefers, so that an
// event stream learns when the connection is gone.
func (s *statusRecorder) FlushError() error {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int { return s.code }
