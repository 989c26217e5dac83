package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/router"
	"github.com/keyturn/keyturn/keystore"
)

const (
	providerSecret = "keyturn/openai"
	publicModel    = "gpt-4o"
	// chatPath is the stand-in's path of the router's upstream requests.
	chatPath = fakeprovider.OpenAIPrefix + "/chat/completions"
	// grace is the old key's grace period in the secret's settings. The
	// stand-in's keys are added by hand, so no rotation revokes them.
	grace = 24 * time.Hour
)

// routerConfig is the router's configuration file, as docs/router.example.yaml
// documents it. The cache settings in it are unused: the cache is built
// here, as cmd/router builds it from them.
const routerConfig = `
allow_loopback: true
providers:
  openai: {secret: keyturn/openai}
models:
  gpt-4o: {provider: openai}
`

// world is keyturn assembled in process: the stand-in provider, a file
// store, the rotation engine, and the router over the read cache, each
// served on 127.0.0.1.
type world struct {
	cfg       config
	dir       string
	standIn   *fakeprovider.Provider
	baseURL   string
	store     *keystore.FileStore
	watch     *watchStore
	engine    *rotation.Engine
	cache     *keystore.Cache
	routerURL string
	clientKey keystore.Secret
	// currentKey is the key AWSCURRENT holds.
	currentKey keystore.Secret
	closers    []func()
}

// newWorld builds the world and promotes the secret's first key, so that
// every later rotation has an old key.
func newWorld(ctx context.Context, cfg config, logger *slog.Logger) (*world, error) {
	w := &world{cfg: cfg}
	if err := w.build(ctx, logger); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *world) build(ctx context.Context, logger *slog.Logger) error {
	if err := w.openStore(logger); err != nil {
		return err
	}
	if err := w.serveStandIn(logger); err != nil {
		return err
	}
	if err := w.createSecrets(ctx); err != nil {
		return err
	}
	w.watch = &watchStore{Store: w.store}
	w.engine = &rotation.Engine{
		Store:   w.watch,
		Checker: provider.New(provider.Options{Policy: provider.NewPolicy(nil, true)}),
		Logger:  logger.With("component", "rotation"),
	}
	if _, err := w.rotate(ctx); err != nil {
		return fmt.Errorf("promote the first key: %w", err)
	}
	return w.serveRouter(ctx, logger)
}

func (w *world) openStore(logger *slog.Logger) error {
	dir, err := os.MkdirTemp("", "keyturn-visibility-")
	if err != nil {
		return fmt.Errorf("create the store directory: %w", err)
	}
	w.dir = dir
	w.closers = append(w.closers, func() { _ = os.RemoveAll(dir) })
	store, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, Create: true, Logger: logger.With("component", "store")})
	if err != nil {
		return fmt.Errorf("open the file store in %s: %w", dir, err)
	}
	w.store = store
	w.closers = append(w.closers, func() { _ = store.Close() })
	return nil
}

func (w *world) serveStandIn(logger *slog.Logger) error {
	w.standIn = fakeprovider.New(fakeprovider.Options{Logger: logger.With("component", "stand-in")})
	ln, err := fakeprovider.Listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	w.baseURL = "http://" + ln.Addr().String()
	w.serve(ln, w.standIn)
	w.closers = append(w.closers, w.standIn.Close)
	return nil
}

// serve serves h on ln until close, which waits for requests in flight.
func (w *world) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	w.closers = append(w.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
}

// createSecrets creates the provider secret, with staged keys and
// rotation enabled, and the router's clients secret with one client.
func (w *world) createSecrets(ctx context.Context) error {
	settings := keystore.Settings{
		Provider: "openai", BaseURL: w.baseURL + fakeprovider.OpenAIPrefix,
		Issuer: keystore.IssuerStaged, Probe: keystore.ProbeModels, Grace: keystore.Duration(grace),
	}
	_, err := w.store.Create(ctx, keystore.CreateInput{SecretID: providerSecret, Tags: settings.Tags()})
	if err != nil {
		return fmt.Errorf("create %s: %w", providerSecret, err)
	}
	if err := w.store.SetRotation(ctx, providerSecret, keystore.Rotation{Enabled: true}); err != nil {
		return fmt.Errorf("enable rotation of %s: %w", providerSecret, err)
	}
	return w.createClient(ctx)
}

func (w *world) createClient(ctx context.Context) error {
	key, hash, err := clientkeys.NewKey()
	if err != nil {
		return err
	}
	id, err := clientkeys.NewClientID()
	if err != nil {
		return err
	}
	data, err := clientkeys.List{Clients: []clientkeys.Client{{ID: id, Name: "visibility", Hash: hash}}}.Encode()
	if err != nil {
		return fmt.Errorf("encode the client list: %w", err)
	}
	_, err = w.store.Create(ctx, keystore.CreateInput{SecretID: clientkeys.DefaultSecretID, Value: keystore.NewSecret(string(data))})
	if err != nil {
		return fmt.Errorf("create %s: %w", clientkeys.DefaultSecretID, err)
	}
	w.clientKey = key
	return nil
}

// serveRouter builds the router over a read cache with the keystore's
// default options, but for the refresh interval of -refresh, and serves it.
func (w *world) serveRouter(ctx context.Context, logger *slog.Logger) error {
	cfg, err := router.ParseConfig("visibility.yaml", []byte(routerConfig))
	if err != nil {
		return err
	}
	cache, err := keystore.NewCache(w.store, keystore.CacheOptions{RefreshInterval: w.cfg.refresh, Logger: logger.With("component", "cache")})
	if err != nil {
		return err
	}
	w.cache = cache
	w.closers = append(w.closers, cache.Close)
	handler, err := router.New(router.Options{
		Config: cfg, Keys: cache, Store: w.store, Policy: provider.NewPolicy(cfg.RelayHosts, cfg.AllowLoopback),
		Logger: logger.With("component", "router"),
	})
	if err != nil {
		return err
	}
	// The first read starts the cache's refresh cycle before any load.
	if _, err := cache.Get(ctx, providerSecret); err != nil {
		return fmt.Errorf("read %s through the cache: %w", providerSecret, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the router: %w", err)
	}
	w.routerURL = "http://" + ln.Addr().String()
	w.serve(ln, handler)
	return nil
}

// rotate stages a fresh key, valid at the stand-in, and promotes it with
// RotateNow. It returns the version promoted.
func (w *world) rotate(ctx context.Context) (string, error) {
	key, err := newProviderKey()
	if err != nil {
		return "", err
	}
	w.standIn.AddKey(key.Reveal())
	if _, err := w.engine.StageValue(ctx, providerSecret, keystore.Value{APIKey: key}, false); err != nil {
		return "", fmt.Errorf("stage a key: %w", err)
	}
	res, err := w.engine.RotateNow(ctx, providerSecret)
	if err != nil {
		return "", fmt.Errorf("rotate %s: %w", providerSecret, err)
	}
	if res.Outcome != rotation.Promoted {
		return "", fmt.Errorf("rotate %s: outcome %s, want %s", providerSecret, res.Outcome, rotation.Promoted)
	}
	w.currentKey = key
	return res.VersionID, nil
}

func newProviderKey() (keystore.Secret, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return keystore.Secret{}, fmt.Errorf("generate a provider key: %w", err)
	}
	return keystore.NewSecret("sk-visibility-" + hex.EncodeToString(b)), nil
}

// close stops the servers and removes the store, last built first.
func (w *world) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
	w.closers = nil
}

// newLogger logs the parts' warnings and errors to stderr. In 401 mode the
// router warns once per rotation that the provider rejected the old key,
// which is the event that mode measures.
func newLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
