package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/keyturn/keyturn/keystore"
)

// maxBody bounds a response body read into memory. A models list of a
// thousand entries is well under it.
const maxBody = 4 << 20

// outcome is the verdict on one request, or on a whole check.
type outcome struct {
	class      Class
	reason     string
	status     int
	retry      bool          // a transient outcome worth retrying
	retryAfter time.Duration // the provider's requested wait, 0 if none
	err        error         // the host policy's refusal, for Result.Err
}

func valid(status int) outcome { return outcome{class: Valid, status: status} }

// call is one logical request. handle classifies each response and runs
// once per attempt, so only the last response of a retried call counts.
type call struct {
	method string
	url    string // may carry a query, never a key
	body   []byte // JSON, nil for none
	handle func(*response) outcome
}

// response is a response read whole.
type response struct {
	method string
	url    string // without its query, for reasons
	status int
	header http.Header
	body   []byte
}

// exchange runs the requests of one check against one deadline.
type exchange struct {
	client   *http.Client
	adapter  adapter
	key      keystore.Secret
	deadline time.Time
	// margin is the time kept free before the deadline: Options.Margin, cut
	// for a short budget by marginFor.
	margin   time.Duration
	opts     Options
	logger   *slog.Logger
	initial  time.Duration // first backoff interval
	maxTries uint          // attempts per call, 0 for no limit but time
	attempts int
}

// errRetry makes backoff.Retry try again.
var errRetry = errors.New("transient outcome")

// marginFor returns the time a check keeps free before a deadline budget
// away: margin, or a quarter of the budget when that is less. The engine
// needs the margin to record the outcome before its own deadline (a rotation
// Lambda's, or RotateNow's), and a short budget keeps most of its time for
// the request itself.
func marginFor(margin, budget time.Duration) time.Duration {
	return min(margin, max(budget, 0)/4)
}

// do runs c until an outcome that is not a retryable transient, or until
// too little time is left for another attempt: retries stop when less than
// the margin plus one CallTimeout would remain after the wait.
func (x *exchange) do(ctx context.Context, c call) outcome {
	var last outcome
	opts := []backoff.RetryOption{
		backoff.WithBackOff(newFullJitter(x.initial)),
		backoff.WithNotify(func(_ error, wait time.Duration) { x.logRetry(c, last, wait) }),
	}
	if left := time.Until(x.deadline) - x.margin - x.opts.CallTimeout; left > 0 {
		opts = append(opts, backoff.WithMaxElapsedTime(left), backoff.WithMaxTries(x.maxTries))
	} else {
		opts = append(opts, backoff.WithMaxTries(1))
	}

	// Retry returns the last outcome whichever way it stops.
	out, _ := backoff.Retry(ctx, func() (outcome, error) {
		last = x.attempt(ctx, c)
		switch {
		case last.class != Transient || !last.retry:
			return last, nil
		case last.retryAfter > 0:
			return last, &backoff.RetryAfterError{Duration: last.retryAfter}
		}
		return last, errRetry
	}, opts...)
	return out
}

func (x *exchange) logRetry(c call, last outcome, wait time.Duration) {
	x.logger.Warn("provider request failed, retrying",
		slog.String("method", c.method), slog.String("url", stripQuery(c.url)),
		slog.Int("status", last.status), slog.String("reason", scrubKey(last.reason, x.key)),
		slog.Int("attempts", x.attempts), slog.Duration("wait", wait))
}

// attempt sends c once, bounded by the call timeout.
func (x *exchange) attempt(ctx context.Context, c call) outcome {
	if err := ctx.Err(); err != nil {
		return outcome{class: Transient, reason: fmt.Sprintf("%s %s: no time left for a request: %v", c.method, stripQuery(c.url), err)}
	}
	timeout := x.callTimeout()
	timedOut := x.timeoutReason(timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := x.newRequest(ctx, c)
	if err != nil {
		return outcome{class: Transient, reason: fmt.Sprintf("%s %s: invalid request: %v", c.method, stripQuery(c.url), err)}
	}
	x.attempts++
	resp, err := x.client.Do(req)
	if err != nil {
		return transportOutcome(c, err, timedOut)
	}
	defer resp.Body.Close()

	r, out, ok := readResponse(c, resp, timedOut)
	if !ok {
		return out
	}
	return c.handle(r)
}

// timeoutReason words a request that timed out after timeout. The reason
// for a timeout cut below CallTimeout explains the cut, because the check
// then gave up before the provider had its usual time.
func (x *exchange) timeoutReason(timeout time.Duration) string {
	reason := "timed out after " + timeout.Round(time.Millisecond).String()
	if timeout >= x.opts.CallTimeout {
		return reason
	}
	kept := max(time.Until(x.deadline)-timeout, 0)
	return fmt.Sprintf("%s: the check stopped early to keep %s for clean-up before the deadline",
		reason, kept.Round(time.Millisecond))
}

// callTimeout is CallTimeout, cut so that the margin stays free before the
// deadline; with less than the margin left, half of what is left.
func (x *exchange) callTimeout() time.Duration {
	left := time.Until(x.deadline)
	if t := left - x.margin; t < x.opts.CallTimeout {
		if t <= 0 {
			return left / 2
		}
		return t
	}
	return x.opts.CallTimeout
}

func (x *exchange) newRequest(ctx context.Context, c call) (*http.Request, error) {
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "keyturn")
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	x.adapter.authorize(req.Header, x.key)
	return req, nil
}

// transportOutcome classifies a request that got no response. A policy
// refusal or a redirect is a configuration error that will not change on
// retry; the rest may.
func transportOutcome(c call, err error, timedOut string) outcome {
	where := c.method + " " + stripQuery(c.url)
	var redirect *RedirectError
	var refusal *policyError
	switch {
	case errors.As(err, &redirect):
		return outcome{class: Misconfigured, status: redirect.Status, reason: where + ": " + redirect.Error()}
	case errors.As(err, &refusal):
		return outcome{class: Misconfigured, reason: where + ": " + refusal.Error(), err: refusal}
	case errors.Is(err, context.DeadlineExceeded):
		return outcome{class: Transient, retry: true, reason: where + ": " + timedOut}
	case errors.Is(err, context.Canceled):
		return outcome{class: Transient, reason: where + ": canceled"}
	}
	return outcome{class: Transient, retry: true, reason: where + ": no response: " + innermost(err)}
}

// innermost drops the *url.Error wrapper, whose text repeats the method
// and URL.
func innermost(err error) string {
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err.Error()
	}
	return err.Error()
}

func readResponse(c call, resp *http.Response, timedOut string) (*response, outcome, bool) {
	r := &response{method: c.method, url: stripQuery(c.url), status: resp.StatusCode, header: resp.Header}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return nil, outcome{class: Transient, retry: true, status: r.status, reason: r.where() + ": reading the body " + timedOut}, false
	case err != nil:
		return nil, outcome{class: Transient, retry: true, status: r.status, reason: r.where() + ": reading the body failed: " + err.Error()}, false
	case len(body) > maxBody:
		return nil, outcome{class: Transient, status: r.status, reason: fmt.Sprintf("%s: %d response larger than %d MiB", r.where(), r.status, maxBody>>20)}, false
	}
	r.body = body
	return r, outcome{}, true
}

func (r *response) where() string { return r.method + " " + r.url }

func stripQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// retryAfter reads a retry-after header in seconds or as an HTTP date.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// fullJitter waits a uniformly random time in [0, cap), where cap grows
// exponentially: backoff's own ExponentialBackOff spreads its waits only
// around the interval (by RandomizationFactor), so it supplies the
// interval here with no randomization and this type adds the jitter.
type fullJitter struct {
	exp *backoff.ExponentialBackOff
}

func newFullJitter(initial time.Duration) *fullJitter {
	return &fullJitter{exp: &backoff.ExponentialBackOff{
		InitialInterval:     initial,
		RandomizationFactor: 0,
		Multiplier:          2,
		MaxInterval:         8 * time.Second,
	}}
}

func (j *fullJitter) NextBackOff() time.Duration {
	return time.Duration(rand.Int64N(int64(j.exp.NextBackOff()) + 1))
}

func (j *fullJitter) Reset() { j.exp.Reset() }
