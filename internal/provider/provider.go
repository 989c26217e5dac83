// Package provider proves that an AI provider key works. Each adapter owns
// its provider's paths, authentication headers, paging and error classes,
// and every request that carries a key passes the host policy first.
package provider

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// Class sorts the outcome of a check.
type Class int

const (
	// Valid: the provider accepted the key (and it lists the required models).
	Valid Class = iota
	// Rejected: the provider reports the key as bad for good, such as a 401,
	// Gemini's 400 API_KEY_INVALID, no credit or a required model missing.
	Rejected
	// Transient: timeouts, rate limits, 5xx, an HTML page in place of JSON;
	// the same check may pass later.
	Transient
	// Misconfigured: keyturn's configuration, not the key, stops the check,
	// so retrying cannot help until the configuration is fixed. The
	// settings are invalid, the host policy refuses the base URL or the
	// address its host resolves to, or the base URL redirects or returns
	// 404, 405 or 410, which means it is not the provider's API root. The
	// provider refusing the region keyturn runs in, or the account's
	// billing, is Misconfigured too. The result carries no verdict on the
	// key.
	Misconfigured
)

func (c Class) String() string {
	switch c {
	case Valid:
		return "valid"
	case Rejected:
		return "rejected"
	case Transient:
		return "transient"
	case Misconfigured:
		return "misconfigured"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Result is the outcome of one check. Reason is public: it names the status
// and the provider's error type or code, never the key or a response body.
type Result struct {
	Class  Class
	Reason string
	Status int // the last HTTP status, 0 if no response arrived
	// Models are the model ids the provider listed, all pages, when the
	// probe listed models.
	Models   []string
	Attempts int // requests made, retries included
	// Err is set when the settings or the host policy stopped the check
	// before the key was sent: before any request, or when a connection
	// was refused at dial time. Class is then Misconfigured, Reason
	// contains Err's message, and errors.Is(Err, ErrNotAllowed) separates a
	// host-policy refusal from invalid settings. A redirect, 404, 405 or
	// 410 is Misconfigured too, but leaves Err nil, because the request was
	// sent.
	Err error
}

// Request is the input of one check. Settings come from the secret being
// rotated or the version being checked.
type Request struct {
	Key      keystore.Secret
	Settings keystore.Settings
}

// Checker proves a key works. The rotation engine depends on this interface.
type Checker interface {
	Check(ctx context.Context, req Request) Result
}

// Options tune every adapter. The zero value uses the defaults.
type Options struct {
	// Policy decides where keys may be sent; nil is DefaultPolicy(), which
	// allows only the built-in hosts over https.
	Policy *Policy
	// CallTimeout bounds one HTTP request; default 5s, well under a
	// rotation Lambda's deadline.
	CallTimeout time.Duration
	// Margin is kept free before the context's deadline, so that the
	// caller can record the outcome: requests are cut short and retries
	// stop when less than Margin plus one CallTimeout remains. A check
	// whose deadline is less than 4 × Margin away keeps a quarter of that
	// time instead. Default 2s.
	Margin time.Duration
	// MaxElapsed bounds retries when the context has no deadline;
	// default 30s.
	MaxElapsed time.Duration
	// Logger receives a line for each retry, with the provider, URL,
	// status and reason, never the key; nil discards them.
	Logger *slog.Logger
}
