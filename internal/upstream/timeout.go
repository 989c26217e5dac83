package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// headerTimeoutError ends an attempt whose provider sent no response
// headers in time.
type headerTimeoutError struct{ timeout time.Duration }

func (e *headerTimeoutError) Error() string {
	return fmt.Sprintf("no response headers within %v", e.timeout)
}

// Timeout reports true, as net.Error does for a timed-out request.
func (e *headerTimeoutError) Timeout() bool { return true }

// headerTimeout is a RoundTripper that bounds the wait for response
// headers. Unlike http.Transport.ResponseHeaderTimeout, it works with any
// RoundTripper, and unlike a context deadline it leaves the body, a stream
// that may run for long, unbounded.
type headerTimeout struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (t *headerTimeout) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	timer := time.AfterFunc(t.timeout, cancel)
	res, err := t.next.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() {
		// The timer fired: whatever RoundTrip returned came too late.
		if err == nil {
			_ = res.Body.Close()
		}
		return nil, &headerTimeoutError{timeout: t.timeout}
	}
	if err != nil {
		cancel()
		return nil, err
	}
	res.Body = &cancelOnClose{ReadCloser: res.Body, cancel: cancel}
	return res, nil
}

// cancelOnClose releases an attempt's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
