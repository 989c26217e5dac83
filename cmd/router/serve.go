package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/router"
	"github.com/keyturn/keyturn/internal/storeurl"
	"github.com/keyturn/keyturn/keystore"
)

// Timeouts of the HTTP server. There is no write timeout, because a
// streamed completion may run for minutes.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	// warmTimeout bounds the first read of each secret at start.
	warmTimeout = 5 * time.Second
)

// serve opens the store, builds the cache and the router, and serves until
// ctx is cancelled.
func serve(ctx context.Context, cfg router.Config, f flags, stdout, stderr io.Writer) error {
	logger := newLogger(stderr)
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	store, closeStore, err := storeurl.Open(ctx, cfg.Store, storeurl.OpenOptions{Identity: cfg.Identity})
	if err != nil {
		return storeError(cfg, err)
	}
	defer closeStore()
	cache, err := keystore.NewCache(store, keystore.CacheOptions{
		RefreshInterval: cfg.Cache.Refresh, MaxStale: cfg.Cache.MaxStale, Logger: logger,
	})
	if err != nil {
		return errorf("cache: %w", err)
	}
	defer cache.Close()
	warm(ctx, cache, cfg, logger)

	handler, err := router.New(router.Options{
		Config: cfg, Keys: cache, Policy: provider.NewPolicy(cfg.RelayHosts, cfg.AllowLoopback), Logger: logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return errorf("listen on %s: %w", cfg.Listen, err).
			withHint("pick another address with --listen HOST:PORT or 'listen:' in the config file")
	}
	fmt.Fprintf(stdout, "router: listening on http://%s\n", ln.Addr())
	logger.Info("router started", "listen", ln.Addr().String(), "store", cfg.Store.Raw, "models", len(cfg.Models))
	return serveUntilDone(ctx, ln, handler, f.shutdownTimeout, logger)
}

// warm reads each provider secret once, so the first requests find it
// cached. A secret that cannot be read is logged and left to the requests
// that need it, which get a clear 503: a store that is down for a moment
// must not stop the router from starting.
func warm(ctx context.Context, cache *keystore.Cache, cfg router.Config, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	for _, name := range sortedProviders(cfg) {
		id := cfg.Providers[name].Secret
		keys, err := cache.Get(ctx, id)
		if err != nil {
			logger.Warn("provider secret not readable yet: its requests fail until it is", "provider", name, "secret", id, "error", err)
			continue
		}
		logger.Info("provider secret loaded", "provider", name, "secret", id, "version_id", keys.Current.VersionID)
	}
}

// serveUntilDone serves on ln until ctx is cancelled, then shuts down:
// no new connections, and up to timeout for the requests in flight.
func serveUntilDone(ctx context.Context, ln net.Listener, h http.Handler, timeout time.Duration, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("stopping: waiting for requests in flight", "timeout", timeout.String(), "cause", context.Cause(ctx).Error())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		logger.Warn("stopped before every request in flight finished", "timeout", timeout.String(), "error", err)
		return errInterrupted
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return errorf("serve: %w", err)
	}
	logger.Info("router stopped")
	return nil
}

// newLogger logs text lines on a terminal and JSON lines otherwise, for
// log collectors.
func newLogger(stderr io.Writer) *slog.Logger {
	if isTerminal(stderr) {
		return slog.New(slog.NewTextHandler(stderr, nil))
	}
	return slog.New(slog.NewJSONHandler(stderr, nil))
}

// isTerminal reports whether w is a terminal: a character device other
// than the null device, which is one too.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// storeError words a store that cannot be opened.
func storeError(cfg router.Config, err error) error {
	ce := errorf("open store %s: %w", cfg.Store.Raw, err)
	switch {
	case cfg.Store.Kind == storeurl.AWS:
		return ce.withHint("check AWS credentials and region (AWS_REGION, AWS_PROFILE)")
	case errors.Is(err, keystore.ErrNotFound):
		return ce.withHint("check 'store:' in the config file or KEYTURN_STORE; the rotator creates a store with 'rotator add'")
	case errors.Is(err, keystore.ErrDecryption):
		return ce.withHint("set 'identity:' in the config file or KEYTURN_IDENTITY to the age identity the store's secrets are encrypted to")
	}
	return ce
}

func sortedProviders(cfg router.Config) []string {
	names := make([]string, 0, len(cfg.Providers))
	for name := range cfg.Providers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
