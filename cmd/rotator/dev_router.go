package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/router"
	"github.com/keyturn/keyturn/keystore"
)

// devModels are the public model names dev's router routes to the
// stand-in, each under its own name.
var devModels = []string{"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"}

const (
	// devProvider is the provider name of dev's router config.
	devProvider = "openai"
	// devMaxRefresh bounds the router cache's refresh interval, so that
	// the router re-reads dev/openai within a few seconds of a rotation
	// rather than only when the stand-in rejects a revoked key.
	devMaxRefresh = 5 * time.Second
	// devShutdownTimeout is how long the router's requests in flight may
	// take to finish after Ctrl-C. The stand-in responds at once, so only
	// a stream that a client keeps open could need it.
	devShutdownTimeout = 10 * time.Second
	// devWarmTimeout bounds the router's first read of each secret.
	devWarmTimeout = 5 * time.Second
)

// listenRouter opens the router's listen address.
func listenRouter(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	ce := cli.WithCode(exitError, fmt.Errorf("dev: start the router: %w", err))
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, ce.WithHint("port %s is in use: pick another with --router-listen 127.0.0.1:PORT, or --router-listen 127.0.0.1:0 for a free one", portOf(addr))
	}
	return nil, ce.WithHint("pick another address with --router-listen 127.0.0.1:PORT")
}

// devRouterConfig routes devModels to dev/openai and reads the client
// keys from the default clients secret, where dev issues its own.
func devRouterConfig(listen string) router.Config {
	cfg := router.Config{
		Listen:          listen,
		ClientsSecret:   clientkeys.DefaultSecretID,
		AllowLoopback:   true,
		MaxRequestBytes: router.DefaultMaxRequestBytes,
		UpstreamTimeout: router.DefaultUpstreamTimeout,
		Providers:       map[string]router.ProviderConfig{devProvider: {Secret: devSecretID}},
		Models:          map[string]router.ModelRoute{},
	}
	for _, m := range devModels {
		cfg.Models[m] = router.ModelRoute{Provider: devProvider, Model: m}
	}
	return cfg
}

// devRefresh returns the router cache's refresh interval: the dev interval,
// at most devMaxRefresh.
func devRefresh(interval time.Duration) time.Duration {
	return min(interval, devMaxRefresh)
}

// startDevRouter builds the router over a cache of store and serves it on
// ln until ctx ends, then shuts it down as the router binary does. The
// returned channel receives the outcome once the router has stopped. A
// router that fails on its own calls stop with its error, so that the rest
// of dev stops too.
func startDevRouter(ctx context.Context, stop context.CancelCauseFunc, store keystore.Store,
	interval time.Duration, ln net.Listener, logger *slog.Logger) (<-chan error, error) {
	logger = logger.With("component", "router")
	cache, err := keystore.NewCache(store, keystore.CacheOptions{RefreshInterval: devRefresh(interval), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("dev: router cache: %w", err)
	}
	handler, err := router.New(router.Options{
		Config: devRouterConfig(ln.Addr().String()), Keys: cache, Store: store,
		Policy: provider.NewPolicy(nil, true), Logger: logger,
	})
	if err != nil {
		cache.Close()
		return nil, fmt.Errorf("dev: build the router: %w", err)
	}
	warmCtx, cancel := context.WithTimeout(ctx, devWarmTimeout)
	handler.Warm(warmCtx)
	cancel()
	logger.Info("router started", "listen", ln.Addr().String(), "models", strings.Join(slices.Sorted(slices.Values(devModels)), " "))

	done := make(chan error, 1)
	go func() {
		defer cache.Close()
		err := router.ServeUntilDone(ctx, []router.Listener{{Listener: ln, Handler: handler}}, handler, devShutdownTimeout, logger)
		// Requests still open at the shutdown timeout were cut with a 503
		// and logged. Dev was asked to stop, so that is a clean stop.
		if errors.Is(err, router.ErrRequestsCut) {
			err = nil
		}
		if err != nil {
			err = cli.WithCode(exitError, fmt.Errorf("dev: router: %w", err))
			stop(err)
		}
		done <- err
	}()
	return done, nil
}
