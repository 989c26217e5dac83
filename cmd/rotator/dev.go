package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/issuer"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/router"
	"github.com/keyturn/keyturn/internal/schedule"
	"github.com/keyturn/keyturn/internal/scheduler"
	"github.com/keyturn/keyturn/keystore"
)

const devUsage = `
Usage: rotator dev [--dir DIR] [--interval 30s] [--grace 1m]
                   [--listen 127.0.0.1:0] [--router-listen 127.0.0.1:0] [-v]

Runs a complete local setup: a file store in DIR, a stand-in AI provider on
a loopback port, one managed secret, dev/openai, whose keys are minted at
the stand-in, proven against its OpenAI-shaped API and rotated every
--interval, and the router in front of the stand-in on another loopback
port. Each old key is revoked at the stand-in once --grace has passed since
the rotation that replaced it began. Each rotation step and outcome is
logged to stderr, and so are the router's requests (component=router);
--verbose also logs every request the stand-in serves. Ctrl-C stops it:
the router gives the requests in flight up to 10s to finish.

Every start adds a router client named "dev" to keyturn/router-clients, in
place of the previous one, and writes its new key to DIR/client.key (mode
0600). The banner shows a curl command that reads it from there; the key
itself is never printed.

The stand-in keeps its keys in memory, so every start mints a fresh key at
once. An existing DIR is reused: dev/openai is pointed at the new port, and
dev rotates dev/openai only. Other secrets in DIR are left alone: dev never
rotates them ('rotator serve' on that store does, once dev has stopped).
One dev (or serve) runs on a directory at a time, because each start
replaces the stand-in's management key. Intervals under 4 hours
exist only here: real schedules use 'rotator add --schedule'.

Example:
  rotator dev --interval 1m
`

const (
	devSecretID = "dev/openai"
	devIssuerID = "dev/issuer"
	// devIntervalTag records dev's interval on its secret, such as "30s",
	// for `rotator status`. A rotation schedule cannot hold it, because
	// schedules rotate at most every 4 hours. SettingsFromTags rejects
	// unknown keyturn: tags but ignores this one, which is outside keyturn:.
	devIntervalTag = "keyturn-dev:interval"
)

type devFlags struct {
	dir          string
	interval     time.Duration
	grace        time.Duration
	listen       string
	routerListen string
	verbose      bool
}

func (a *app) dev(ctx context.Context, args []string) error {
	var f devFlags
	fs := a.newFlagSet("dev", devUsage)
	fs.StringVar(&f.dir, "dir", "", "store `DIR` (default $XDG_STATE_HOME/keyturn/dev, or ~/.local/state/keyturn/dev)")
	fs.DurationVar(&f.interval, "interval", 30*time.Second, "time between rotations, as a Go `DURATION` such as 30s or 5m; at least 1s")
	fs.DurationVar(&f.grace, "grace", time.Minute, "how long an old key stays valid after it is replaced, as a Go `DURATION` such as 1m; at least 1s")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "IPv4 loopback `ADDRESS` for the stand-in provider, such as 127.0.0.1:8080; port 0 picks a free port")
	fs.StringVar(&f.routerListen, "router-listen", "127.0.0.1:0", "IPv4 loopback `ADDRESS` for the router, such as 127.0.0.1:8081; port 0 picks a free port")
	fs.BoolVar(&f.verbose, "verbose", false, "also log each request to the stand-in provider and the store's debug lines")
	fs.BoolVar(&f.verbose, "v", false, "short for --verbose")
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return cli.Usagef("dev: unexpected argument %q: dev takes only flags", positional[0])
	}
	if flagSetEmpty(fs, "dir") {
		// Most likely an unset shell variable, which must not silently
		// mean the default directory under $HOME.
		return cli.Usagef("dev: --dir is empty: give a directory, or leave out --dir for the default")
	}
	if err := f.check(a); err != nil {
		return err
	}
	return a.runDev(ctx, &f)
}

// check validates the flags and resolves the store directory.
func (f *devFlags) check(a *app) error {
	if f.interval < time.Second {
		return cli.Usagef("dev: --interval %s is too short: use 1s or more, such as --interval 30s", f.interval)
	}
	if f.grace < time.Second {
		return cli.Usagef("dev: --grace %s is too short: use 1s or more, such as --grace 1m", f.grace)
	}
	if err := checkLoopbackAddress("listen", f.listen); err != nil {
		return err
	}
	if err := checkLoopbackAddress("router-listen", f.routerListen); err != nil {
		return err
	}
	if f.listen == f.routerListen && portOf(f.listen) != "0" {
		return cli.Usagef("dev: --listen and --router-listen are both %s: give the router another port, or 127.0.0.1:0 for a free one", f.listen)
	}
	var err error
	if f.dir == "" {
		if f.dir, err = a.defaultDir("XDG_STATE_HOME", ".local/state", "dev", "--dir DIR"); err != nil {
			return cli.Usagef("dev: %v", err)
		}
	}
	// An absolute path, so that the KEYTURN_STORE=file://DIR line dev
	// prints works from any directory.
	if f.dir, err = filepath.Abs(f.dir); err != nil {
		return cli.Usagef("dev: --dir %q: %v", f.dir, err)
	}
	return nil
}

// checkLoopbackAddress rejects a listen address, given with --flag, other
// than an IPv4 loopback address and a port from 0 to 65535. The stand-in
// accepts any key it has minted, and the router lets any dev client use
// it, so neither must be reachable from other hosts. IPv6 loopback is
// rejected for the stand-in because its URL becomes dev/openai's base-url
// tag, and tag values cannot contain the brackets of an IPv6 URL; the
// router follows it so that both flags take the same addresses.
func checkLoopbackAddress(flag, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return cli.Usagef("dev: --%s %q: %v: use HOST:PORT such as 127.0.0.1:0", flag, addr, err)
	}
	if err := router.CheckListen(addr); err != nil {
		return cli.Usagef("dev: --%s: %v", flag, err)
	}
	ip := net.ParseIP(host)
	switch {
	case ip != nil && ip.IsLoopback() && ip.To4() == nil && flag == "listen":
		return cli.Usagef("dev: --listen %q: an IPv6 address cannot be part of a base-url tag, whose values may not contain [ or ]: use 127.0.0.1:PORT", addr)
	case ip != nil && ip.IsLoopback() && ip.To4() == nil:
		return cli.Usagef("dev: --%s %q: dev listens on IPv4 loopback only, as the stand-in must: use 127.0.0.1:PORT", flag, addr)
	case ip == nil || !ip.IsLoopback():
		return cli.Usagef("dev: --%s %q is not a loopback address: use 127.0.0.1:PORT", flag, addr)
	}
	return nil
}

func (a *app) runDev(ctx context.Context, f *devFlags) error {
	logger, standInLogger := a.devLoggers(f.verbose)
	store, err := keystore.OpenFile(keystore.FileOptions{Dir: f.dir, Logger: logger.With("component", "store"), Create: true})
	if err != nil {
		return cli.WithCode(exitError, fmt.Errorf("dev: open file store %s: %w", f.dir, err)).WithHint("pass --dir for a writable directory")
	}
	defer store.Close()
	// The lock comes before anything is written, since a second dev would
	// replace the management key registered at the first one's stand-in.
	unlock, err := lockInstance(f.dir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := checkKeyFilePath(f.dir); err != nil {
		return err
	}

	standIn := fakeprovider.New(fakeprovider.Options{Logger: standInLogger})
	baseURL, stopServer, err := serveStandIn(f.listen, standIn)
	if err != nil {
		return err
	}
	defer stopServer()
	// The router listens before anything is written too, so that a port in
	// use fails at once. Requests wait in the listen queue until the first
	// rotation has made a key the stand-in accepts.
	routerLn, err := listenRouter(f.routerListen)
	if err != nil {
		return err
	}
	defer routerLn.Close()
	if err := setUpDevSecrets(ctx, store, standIn, baseURL, f); err != nil {
		return err
	}
	if err := abandonEarlierRotation(ctx, store, logger); err != nil {
		return err
	}
	keyFile, err := a.issueDevClient(ctx, store, f.dir)
	if err != nil {
		return err
	}

	a.printDevBanner(f, baseURL, "http://"+routerLn.Addr().String(), keyFile)
	return a.rotateDev(ctx, f, store, newDevEngine(store, baseURL, logger), routerLn, logger)
}

// abandonEarlierRotation abandons a rotation of dev/openai that an earlier
// run left in progress, as a kill during a rotation does. Its pending key
// was minted at that run's stand-in, which is gone, so no later rotation
// could finish it, and dev holds the directory's lock, so no other rotator
// is running it.
func abandonEarlierRotation(ctx context.Context, store keystore.Store, logger *slog.Logger) error {
	versionID, err := abandonRotation(ctx, store, settings{storeSource: "rotator dev"}, devSecretID)
	if err != nil {
		return fmt.Errorf("dev: abandon the rotation an earlier run left in progress: %w", err)
	}
	if versionID != "" {
		logger.Info("abandoned the rotation an earlier run left in progress: its key was minted at a stand-in that is gone",
			"secret_id", devSecretID, "version_id", versionID)
	}
	return nil
}

// newDevEngine returns the engine that mints dev's keys at the stand-in
// at baseURL and proves them there.
func newDevEngine(store keystore.Store, baseURL string, logger *slog.Logger) *rotation.Engine {
	return &rotation.Engine{
		Store:   store,
		Checker: provider.New(provider.Options{Policy: provider.NewPolicy(nil, true)}),
		Issuers: map[string]issuer.Issuer{issuer.DevName: issuer.NewDev(baseURL+"/openrouter/api/v1", &http.Client{Timeout: 10 * time.Second})},
		Logger:  logger,
	}
}

// devLoggers returns dev's logger and the stand-in's. Without verbose, dev
// logs at INFO and the stand-in only its warnings, because the rotation
// steps already report what the stand-in did. With verbose both log at
// DEBUG, and the stand-in logs one line per request.
func (a *app) devLoggers(verbose bool) (dev, standIn *slog.Logger) {
	if verbose {
		dev = a.stderrLogger(slog.LevelDebug)
		return dev, dev.With("component", "stand-in")
	}
	return a.stderrLogger(slog.LevelInfo), a.stderrLogger(slog.LevelWarn).With("component", "stand-in")
}

// rotateDev rotates once at start, since the stand-in has forgotten the
// keys of any earlier run. It then serves the router on routerLn, rotates
// on the dev interval and revokes each retired key once its grace has
// passed, until ctx ends or the router fails.
func (a *app) rotateDev(ctx context.Context, f *devFlags, store keystore.Store, engine *rotation.Engine,
	routerLn net.Listener, logger *slog.Logger) error {
	res, err := engine.RotateNow(ctx, devSecretID)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return cli.WithCode(exitError, fmt.Errorf("dev: first rotation of %s failed: %w", devSecretID, err)).
			WithHint("the log lines above show the failing step")
	}
	logger.Info("rotation promoted", "secret_id", devSecretID, "version_id", res.VersionID)
	retirer := newDevRetirer(engine, logger)
	retirer.skipEarlierRuns(ctx, store)
	// Set before the scheduler and the retirer start, which read it.
	engine.Revoked = retirer.revoked
	engine.Now = a.clockNow

	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	routerDone, err := startDevRouter(runCtx, stop, store, f.interval, routerLn, logger)
	if err != nil {
		return err
	}
	if a.devReady != nil {
		a.devReady(f.dir)
	}
	retired := make(chan struct{})
	go func() {
		defer close(retired)
		retirer.run(runCtx, a.schedulerClock())
	}()

	schedErr := a.scheduleDev(runCtx, f, store, retiringRotator{Engine: engine, rotated: retirer.notify}, logger)
	stop(schedErr)
	routerErr := <-routerDone
	<-retired
	return cmp.Or(schedErr, routerErr)
}

// scheduleDev rotates dev/openai every dev interval until ctx ends.
func (a *app) scheduleDev(ctx context.Context, f *devFlags, store keystore.Store, rotator scheduler.Rotator, logger *slog.Logger) error {
	sched := &scheduler.Scheduler{
		Store: store, Rotator: rotator, Logger: logger, Clock: a.clock,
		// Other secrets of an existing directory are left alone.
		Only:        func(d keystore.Description) bool { return d.SecretID == devSecretID },
		ScheduleFor: func(keystore.Description) (*schedule.Schedule, error) { return schedule.Every(f.interval), nil },
		Rescan:      f.interval, MinBackoff: f.interval, MaxBackoff: 10 * f.interval,
	}
	return sched.Run(ctx)
}

// serveStandIn serves the stand-in provider on a loopback listener and
// returns its root URL and a function that stops it.
func serveStandIn(addr string, p *fakeprovider.Provider) (string, func(), error) {
	ln, err := fakeprovider.Listen(addr)
	if err != nil {
		ce := cli.WithCode(exitError, fmt.Errorf("dev: start the stand-in provider: %w", err))
		if errors.Is(err, syscall.EADDRINUSE) {
			return "", nil, ce.WithHint("port %s is in use: pick another with --listen 127.0.0.1:PORT, or --listen 127.0.0.1:0 for a free one", portOf(addr))
		}
		return "", nil, ce.WithHint("pick another address with --listen 127.0.0.1:PORT")
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// setUpDevSecrets registers a fresh management key at the stand-in, stores
// it in dev/issuer, and creates dev/openai or points it at baseURL with
// the grace of the flags. It records the interval in devIntervalTag.
func setUpDevSecrets(ctx context.Context, store keystore.Store, standIn *fakeprovider.Provider, baseURL string, f *devFlags) error {
	mgmt, err := randomKey("dev-management-")
	if err != nil {
		return err
	}
	standIn.AddManagementKey(mgmt.Reveal())
	if err := putDevIssuerKey(ctx, store, mgmt); err != nil {
		return err
	}
	settings := keystore.Settings{
		Provider: "openai", BaseURL: baseURL + "/openai/v1",
		Issuer: issuer.DevName, IssuerSecret: devIssuerID,
		Probe: keystore.ProbeModels, Grace: keystore.Duration(f.grace),
	}
	tags := settings.Tags()
	tags[devIntervalTag] = f.interval.String()
	_, err = store.Create(ctx, keystore.CreateInput{SecretID: devSecretID, Description: "rotator dev: keys minted at the stand-in provider", Tags: tags})
	if errors.Is(err, keystore.ErrExists) {
		err = store.Tag(ctx, devSecretID, tags)
	}
	if err != nil {
		return fmt.Errorf("dev: set up %s: %w", devSecretID, err)
	}
	// The dev interval is shorter than any schedule allows, so no rules are
	// stored: the dev loop supplies the schedule and devIntervalTag shows it.
	if err := store.SetRotation(ctx, devSecretID, keystore.Rotation{Enabled: true}); err != nil {
		return fmt.Errorf("dev: enable rotation of %s: %w", devSecretID, err)
	}
	return nil
}

func putDevIssuerKey(ctx context.Context, store keystore.Store, mgmt keystore.Secret) error {
	value, err := keystore.Value{APIKey: mgmt}.Encode()
	if err != nil {
		return fmt.Errorf("dev: encode management key: %w", err)
	}
	_, err = store.Create(ctx, keystore.CreateInput{SecretID: devIssuerID, Description: "rotator dev: the stand-in's management key", Value: value})
	if errors.Is(err, keystore.ErrExists) {
		err = store.Put(ctx, keystore.PutInput{SecretID: devIssuerID, Token: uuid.NewString(), Value: value})
	}
	if err != nil {
		return fmt.Errorf("dev: store the management key in %s: %w", devIssuerID, err)
	}
	return nil
}

func randomKey(prefix string) (keystore.Secret, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return keystore.Secret{}, fmt.Errorf("dev: generate key: %w", err)
	}
	return keystore.NewSecret(prefix + hex.EncodeToString(b)), nil
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// flagSetEmpty reports whether the flag name was given on the command line
// with an empty value.
func flagSetEmpty(fs *flag.FlagSet, name string) bool {
	empty := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name && f.Value.String() == "" {
			empty = true
		}
	})
	return empty
}
