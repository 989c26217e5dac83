package fakeprovider

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"
)

// Fault changes how the provider responds to the requests that match a
// pattern.
// The zero Fault changes nothing.
type Fault struct {
	// Status, when not 0, replaces the response: the provider sends Status
	// with Body. An empty Body is the shape's own error body for Status,
	// with its headers (OpenAI's rate_limit_exceeded for a 429, Anthropic's
	// overloaded_error for a 529 and a retry-after for its 429, Gemini's
	// RESOURCE_EXHAUSTED, and so on).
	Status int
	// Body is sent as is, so a test can send HTML, truncated JSON or
	// nothing meaningful. Only used when Status is not 0.
	Body string
	// ContentType of Body; empty is "application/json".
	ContentType string
	// Header is added to the response, after the shape's own headers.
	Header http.Header
	// Delay waits before responding, or less if the request's context ends.
	Delay time.Duration
	// Hang holds the request until its context ends (the client gives up)
	// or the provider is closed, and sends nothing.
	Hang bool
	// CutStreamAfter, when not 0, cuts the connection of an event stream
	// after that many events, "data: [DONE]" included, so the client sees
	// the body end early. A stream with no more events than that ends
	// normally. Responses that are not streams are not affected.
	CutStreamAfter int
	// Count is how many requests the fault applies to before it is removed;
	// 0 applies it to every request.
	Count int
}

// faultRule is a Fault with its pattern and the requests it has left.
type faultRule struct {
	pattern string
	method  string // empty matches every method
	path    string // a path.Match pattern
	fault   Fault
	left    int // requests left when fault.Count > 0
}

// SetFault applies f to every request that matches pattern, in place of any
// fault set before with the same pattern. A pattern is an optional method
// and a path, as in "POST /openai/v1/chat/completions". The path may use
// path.Match wildcards, as in "/openrouter/api/v1/keys/*", where "*" does
// not cross a "/". A path that ends in "/" matches every path under it, as
// in http.ServeMux, so "/gemini/" matches the whole Gemini shape. Faults
// are tried in the order they were first set, and the first that matches
// applies.
//
// SetFault panics on a malformed pattern, as http.ServeMux does, because a
// pattern is fixed in the test that sets it.
func (p *Provider) SetFault(pattern string, f Fault) {
	rule := parseFaultPattern(pattern)
	rule.fault = f
	rule.left = f.Count

	p.mu.Lock()
	defer p.mu.Unlock()
	for i, old := range p.faults {
		if old.pattern == pattern {
			p.faults[i] = rule
			return
		}
	}
	p.faults = append(p.faults, rule)
}

func parseFaultPattern(pattern string) *faultRule {
	rule := &faultRule{pattern: pattern, path: pattern}
	if method, rest, ok := strings.Cut(pattern, " "); ok {
		rule.method, rule.path = method, strings.TrimSpace(rest)
	}
	if !strings.HasPrefix(rule.path, "/") {
		panic(fmt.Sprintf("fakeprovider: fault pattern %q: the path must start with /", pattern))
	}
	if _, err := path.Match(rule.path, ""); err != nil {
		panic(fmt.Sprintf("fakeprovider: fault pattern %q: %v", pattern, err))
	}
	return rule
}

// ClearFaults removes every fault.
func (p *Provider) ClearFaults() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// takeFault returns the first fault that matches r and counts r against it.
func (p *Provider) takeFault(r *http.Request) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, rule := range p.faults {
		if !rule.matches(r) {
			continue
		}
		f := rule.fault
		if f.Count > 0 {
			rule.left--
			if rule.left <= 0 {
				p.faults = append(p.faults[:i:i], p.faults[i+1:]...)
			}
		}
		return &f
	}
	return nil
}

func (rule *faultRule) matches(r *http.Request) bool {
	if rule.method != "" && rule.method != r.Method {
		return false
	}
	if strings.HasSuffix(rule.path, "/") {
		return strings.HasPrefix(r.URL.Path, rule.path)
	}
	ok, _ := path.Match(rule.path, r.URL.Path)
	return ok
}

// applyFault delays r, holds it or responds to it as f sets. It reports
// whether the request should go on to its handler.
func (p *Provider) applyFault(w http.ResponseWriter, r *http.Request, f *Fault) bool {
	ctx := r.Context()
	if f.Delay > 0 && !p.sleep(ctx, f.Delay) {
		return false
	}
	if f.Hang {
		select {
		case <-ctx.Done():
		case <-p.closed:
		}
		return false
	}
	if f.Status == 0 {
		return true
	}
	writeFaultResponse(w, r, f)
	return false
}

// sleep waits for d and reports whether it waited that long.
func (p *Provider) sleep(ctx context.Context, d time.Duration) bool {
	return sleepUntil(ctx, p.closed, d)
}

func writeFaultResponse(w http.ResponseWriter, r *http.Request, f *Fault) {
	if f.Body == "" {
		writeShapeError(w, shapeOf(r.URL.Path), f.Status, f.Header)
		return
	}
	contentType := f.ContentType
	if contentType == "" {
		contentType = "application/json"
	}
	w.Header().Set("Content-Type", contentType)
	setHeaders(w.Header(), f.Header)
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(f.Body))
}

type faultKey struct{}

func withFault(ctx context.Context, f *Fault) context.Context {
	return context.WithValue(ctx, faultKey{}, f)
}

// cutAfter returns the CutStreamAfter of the fault applied to ctx, or 0.
func cutAfter(ctx context.Context) int {
	if f, ok := ctx.Value(faultKey{}).(*Fault); ok {
		return f.CutStreamAfter
	}
	return 0
}
