package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts of the HTTP server. There is no write timeout, because a
// streamed completion may run for minutes.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	// cutDrain bounds the wait for the handlers of the requests that a
	// shutdown cut.
	cutDrain = 2 * time.Second
)

// ErrRequestsCut is returned by ServeUntilDone when the shutdown timeout
// passed before every request in flight finished. The log lines record
// what was cut short.
var ErrRequestsCut = errors.New("stopped before every request in flight finished")

// Listener is an open listen address and the handler it serves.
type Listener struct {
	Listener net.Listener
	Handler  http.Handler
}

// ServeUntilDone serves on every listener until ctx is cancelled, then
// shuts down: no new connections, and up to timeout for the requests in
// flight. A listener that fails stops them all. handler is the router
// whose requests are counted and cut; it is usually the first listener's
// handler.
//
// No server sets ReadTimeout: its deadline would stay on the connection
// while a stream is answered and cancel the stream. The router bounds the
// read of each request body itself.
func ServeUntilDone(ctx context.Context, listeners []Listener, handler *Server, timeout time.Duration, logger *slog.Logger) error {
	// base is the context of every request; cancelling it with
	// ErrShutdown cuts the requests still in flight at the end of the
	// shutdown, and their access log lines say so.
	base, cut := context.WithCancelCause(context.Background())
	defer cut(nil)
	servers := make([]*http.Server, len(listeners))
	served := make(chan error, len(listeners))
	for i, l := range listeners {
		servers[i] = &http.Server{
			Handler:           l.Handler,
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return base },
		}
		go func() { served <- servers[i].Serve(l.Listener) }()
	}

	var serveErr error
	select {
	case err := <-served:
		serveErr = fmt.Errorf("serve: %w", err)
		logger.Error("a listener failed: stopping", "error", err)
	case <-ctx.Done():
		logger.Info("stopping: waiting for requests in flight", "timeout", timeout.String(), "cause", context.Cause(ctx).Error())
	}
	if err := shutdown(servers, handler, cut, timeout, logger); err != nil {
		return err
	}
	if serveErr != nil {
		return serveErr
	}
	logger.Info("router stopped")
	return nil
}

// shutdown stops every server, giving the requests in flight up to
// timeout in all. The requests still in flight then are cut: cut cancels
// their context with ErrShutdown, and the servers close their connections
// only once those handlers have returned or cutDrain has passed. So a cut
// request is logged as cut by the shutdown rather than by its client, and
// one that had no answer yet gets a 503, not a closed connection.
func shutdown(servers []*http.Server, handler *Server, cut context.CancelCauseFunc, timeout time.Duration, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var timedOut error
	cutRequests := 0
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			if timedOut == nil {
				cutRequests = handler.InFlight()
				cut(ErrShutdown)
				waitHandlers(handler)
			}
			_ = srv.Close()
			timedOut = err
		}
	}
	if timedOut != nil {
		logger.Warn("stopped before every request in flight finished: cut "+requestCount(cutRequests),
			"timeout", timeout.String(), "cut_requests", cutRequests, "error", timedOut)
		return ErrRequestsCut
	}
	return nil
}

// waitHandlers waits, up to cutDrain, for the handlers of the requests
// that the shutdown cut to return, so that their access log lines are
// written before the router exits.
func waitHandlers(handler *Server) {
	for deadline := time.Now().Add(cutDrain); handler.InFlight() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

func requestCount(n int) string {
	if n == 1 {
		return "1 request"
	}
	return fmt.Sprintf("%d requests", n)
}
