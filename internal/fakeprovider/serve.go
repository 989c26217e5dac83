package fakeprovider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"time"
)

// TB is the part of testing.TB that Start uses. Taking it rather than
// testing.TB keeps package testing out of the programs that import
// fakeprovider to serve it outside tests.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// Start serves a new Provider on 127.0.0.1 for the length of t and returns
// it with its base URL, such as "http://127.0.0.1:40123". A shape's base
// URL is that plus its prefix, such as OpenAIPrefix.
func Start(t TB, opts Options) (*Provider, string) {
	t.Helper()
	p := New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakeprovider: listen on 127.0.0.1: %v", err)
	}
	srv := httptest.NewUnstartedServer(p)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	// Cleanups run last first: end hanging requests, then close the server,
	// which waits for requests in flight.
	t.Cleanup(srv.Close)
	t.Cleanup(p.Close)
	return p, srv.URL
}

// Listen listens on addr, which must be a loopback address with a port,
// such as "127.0.0.1:8080", "[::1]:0" or "localhost:0". The stand-in
// contains test keys and mints keys for any management key it was given, so
// it never listens beyond the machine.
func Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("fakeprovider: listen address %q: %w; use host:port, such as 127.0.0.1:8080", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1" // not resolved, so it cannot resolve elsewhere
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("fakeprovider: listen address %q is not a loopback address; use 127.0.0.1 or [::1]", addr)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("fakeprovider: %w", err)
	}
	return ln, nil
}

// Serve listens on addr with Listen and serves until ctx ends.
func (p *Provider) Serve(ctx context.Context, addr string) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	return p.ServeListener(ctx, ln)
}

// shutdownTimeout bounds how long ServeListener waits for requests in
// flight once its context ends.
const shutdownTimeout = 5 * time.Second

// ServeListener serves on ln, which must listen on a loopback address,
// until ctx ends. Then it closes the Provider, which ends hanging requests,
// shuts the server down and returns nil. It closes ln in every case.
func (p *Provider) ServeListener(ctx context.Context, ln net.Listener) error {
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		_ = ln.Close()
		return fmt.Errorf("fakeprovider: listener address %s is not a loopback address", ln.Addr())
	}
	srv := &http.Server{
		Handler:           p,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	served := make(chan struct{})
	stopped := make(chan error, 1)
	go func() {
		select {
		case <-ctx.Done():
		case <-served:
		}
		p.Close()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		stopped <- srv.Shutdown(shutdownCtx)
	}()

	p.log.Info("fakeprovider listening", "addr", ln.Addr().String())
	err := srv.Serve(ln)
	close(served)
	shutdownErr := <-stopped
	p.log.Info("fakeprovider stopped", "addr", ln.Addr().String())
	if !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("fakeprovider: serve: %w", err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("fakeprovider: shutdown: %w", shutdownErr)
	}
	return nil
}
