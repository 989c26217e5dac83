package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/router"
	"github.com/keyturn/keyturn/internal/storeurl"
	"github.com/keyturn/keyturn/keystore"
)

// warmTimeout bounds the first read of each secret at start.
const warmTimeout = 5 * time.Second

// serve listens, opens the store, builds the cache and the router, and
// serves until ctx is cancelled. It listens first, so that an address in
// use fails at once rather than after the secrets were read.
func serve(ctx context.Context, set settings, f flags, stdout, stderr io.Writer) error {
	cfg := set.cfg
	logger := newLogger(stderr)
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	listeners, err := listen(cfg)
	if err != nil {
		return err
	}
	defer closeAll(listeners)
	store, closeStore, err := storeurl.Open(ctx, cfg.Store, storeurl.OpenOptions{Identity: cfg.Identity})
	if err != nil {
		return storeError(set, err)
	}
	defer closeStore()
	cache, err := keystore.NewCache(store, keystore.CacheOptions{
		RefreshInterval: cfg.Cache.Refresh, MaxStale: cfg.Cache.MaxStale, Logger: logger,
	})
	if err != nil {
		return cli.Errorf("cache: %w", err)
	}
	defer cache.Close()

	handler, err := router.New(router.Options{
		Config: cfg, Keys: cache, Store: store, Policy: provider.NewPolicy(cfg.RelayHosts, cfg.AllowLoopback),
		Logger: logger,
	})
	if err != nil {
		return err
	}
	listeners[0].Handler = handler
	if len(listeners) > 1 {
		mux := http.NewServeMux()
		mux.Handle("/metrics", handler.MetricsHandler())
		listeners[1].Handler = mux
	}
	warm(ctx, handler)
	announce(listeners, cfg, stdout, logger)
	return serveUntilDone(ctx, listeners, handler, f.shutdownTimeout, logger)
}

// announce prints the addresses served and logs the start, with a warning
// when the router listens on every interface.
func announce(listeners []router.Listener, cfg router.Config, stdout io.Writer, logger *slog.Logger) {
	addr := listeners[0].Listener.Addr().String()
	fmt.Fprintf(stdout, "router: listening on http://%s\n", addr)
	attrs := []any{"listen", addr, "store", cfg.Store.Raw, "models", len(cfg.Models)}
	if len(listeners) > 1 {
		fmt.Fprintf(stdout, "router: serving metrics on http://%s/metrics\n", listeners[1].Listener.Addr())
		attrs = append(attrs, "metrics_listen", listeners[1].Listener.Addr().String())
	}
	if everyInterface(cfg.Listen) {
		logger.Warn(exposedWarning(cfg), "listen", cfg.Listen)
	}
	logger.Info("router started", attrs...)
}

// everyInterface reports whether addr listens on every interface: an
// empty host, 0.0.0.0 or ::.
func everyInterface(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

func exposedWarning(cfg router.Config) string {
	msg := "listening on every interface: /healthz needs no client key"
	if cfg.MetricsListen == "" {
		msg = "listening on every interface: /healthz and /metrics need no client key, and /metrics is served here " +
			"because metrics_listen is not set"
	}
	return msg + ": anyone who can reach this address can read them; listen on a private address, " +
		"or firewall it (--listen 127.0.0.1:PORT listens on this host only)"
}

// listen opens the listen address, and the metrics_listen address when the
// config sets one.
func listen(cfg router.Config) ([]router.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, listenError(cfg.Listen, "", err).
			WithHint("pick another address with --listen HOST:PORT or 'listen:' in the config file")
	}
	listeners := []router.Listener{{Listener: ln}}
	if cfg.MetricsListen == "" {
		return listeners, nil
	}
	metricsLn, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		_ = ln.Close()
		return nil, listenError(cfg.MetricsListen, " for metrics", err).
			WithHint("pick another address with 'metrics_listen:' in the config file, or remove it to serve /metrics on listen")
	}
	return append(listeners, router.Listener{Listener: metricsLn}), nil
}

// listenError words a failed listen on addr. An address in use gets a
// hint of its own, before the caller's.
func listenError(addr, what string, err error) *cli.Error {
	ce := cli.Errorf("listen on %s%s: %w", addr, what, err)
	if errors.Is(err, syscall.EADDRINUSE) {
		flag := "pass --listen HOST:PORT"
		if what != "" {
			flag = "set metrics_listen: HOST:PORT in the config file"
		}
		ce.WithHint("another process listens on %s: stop it or %s", addr, flag)
	}
	return ce
}

// closeAll closes the listeners that no server took over: after Serve
// starts, the server's Shutdown closes them, and a second Close is
// harmless.
func closeAll(listeners []router.Listener) {
	for _, l := range listeners {
		_ = l.Listener.Close()
	}
}

// warm reads each provider secret once, bounded by warmTimeout.
func warm(ctx context.Context, handler *router.Server) {
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	handler.Warm(ctx)
}

// serveUntilDone serves until ctx is cancelled, as
// router.ServeUntilDone does, and ends a run whose shutdown cut requests
// with errInterrupted.
func serveUntilDone(ctx context.Context, listeners []router.Listener, handler *router.Server, timeout time.Duration, logger *slog.Logger) error {
	err := router.ServeUntilDone(ctx, listeners, handler, timeout, logger)
	if errors.Is(err, router.ErrRequestsCut) {
		return errInterrupted
	}
	return err
}

// newLogger logs text lines on a terminal and JSON lines otherwise, for
// log collectors.
func newLogger(stderr io.Writer) *slog.Logger {
	return cli.NewLogger(stderr, slog.LevelInfo)
}

// storeError words a store that cannot be opened, with a hint that names
// where the failing setting came from.
func storeError(set settings, err error) error {
	ce := &cli.Error{Code: cli.ExitError, Err: &openError{
		msg: fmt.Sprintf("open store %s: %s", set.cfg.Store.Raw, storeMessage(err)), err: err}}
	switch {
	case set.cfg.Store.Kind == storeurl.AWS:
		return ce.WithHint("check AWS credentials and region (AWS_REGION, AWS_PROFILE)")
	case set.cfg.Identity != "" && missingFile(set.cfg.Identity):
		return ce.WithHint("the identity file comes from %s: point it at the age identity file that the store's secrets "+
			"are encrypted to, or remove it to use %s", set.identityFrom, filepath.Join(set.cfg.Store.Dir, "identity.age"))
	case errors.Is(err, keystore.ErrDecryption):
		return ce.WithHint("set 'identity:' in the config file or KEYTURN_IDENTITY to the age identity file " +
			"that the store's secrets are encrypted to")
	case errors.Is(err, keystore.ErrNotFound):
		return ce.WithHint("the store URL comes from %s: correct it there; the router never creates a store, "+
			"'rotator add' or 'rotator dev' does", set.storeFrom)
	}
	return ce
}

// storeMessage returns err's message without the store operation that
// starts a *keystore.Error about no secret, such as "OpenFile: ", which
// names a Go function rather than anything the user did.
func storeMessage(err error) string {
	var ke *keystore.Error
	if errors.As(err, &ke) && ke.SecretID == "" && ke.Op != "" {
		return strings.TrimPrefix(err.Error(), ke.Op+": ")
	}
	return err.Error()
}

// openError is a failed store open with a message of its own, which still
// matches the store's error for errors.Is.
type openError struct {
	msg string
	err error
}

func (e *openError) Error() string { return e.msg }
func (e *openError) Unwrap() error { return e.err }

func missingFile(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}
