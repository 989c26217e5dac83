package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/keyturn/keyturn/internal/router"
	"github.com/keyturn/keyturn/internal/storeurl"
)

const usage = `Usage: router [--config PATH] [--listen ADDR]

router is keyturn's OpenAI-compatible router. Clients send OpenAI requests
with a keyturn client key (Authorization: Bearer kt-..., or x-api-key), and
the router forwards each one, by its "model", to a provider with the current
key of that provider's secret. It reads every key at run time through a
cache, so a rotation takes effect without a restart.

Endpoints:
  POST /v1/chat/completions, /v1/responses, /v1/embeddings   client key
  GET  /v1/models      the configured public models           client key
  GET  /healthz        200 when every provider secret is readable, else 503
  GET  /metrics        Prometheus metrics; no auth, no key in any metric: keep
                       it on a private network, or block it at the proxy

The config file (YAML) routes public model names to provider secrets; see
docs/router.example.yaml for every key. It is --config PATH, or
$KEYTURN_ROUTER_CONFIG, or $XDG_CONFIG_HOME/keyturn/router.yaml
(~/.config/keyturn/router.yaml).

Environment, which overrides the config file:
  KEYTURN_ROUTER_CONFIG    path of the config file
  KEYTURN_STORE            store URL: file:///ABS/DIR or aws://REGION
  KEYTURN_IDENTITY         age identity file of the file store
  KEYTURN_RELAY_HOSTS      extra hosts keys may be sent to, comma-separated
  KEYTURN_ALLOW_LOOPBACK   true to allow provider URLs on 127.0.0.1 (tests
                           and development only)

The router prints the URL it listens on to stdout, and logs one line per
request to stderr: text on a terminal, JSON otherwise. Ctrl-C or SIGTERM
stops it: it stops accepting connections and gives the requests in flight,
streams included, --shutdown-timeout to finish.

Exit codes: 0 stopped cleanly, 1 error, 2 usage error, 130 (Ctrl-C) or 143
(SIGTERM) when requests in flight were cut short.

Flags:
`

// flags are the command line of the router.
type flags struct {
	config          string
	listen          string
	shutdownTimeout time.Duration
}

const defaultShutdownTimeout = 30 * time.Second

// run runs the router until ctx is cancelled. Tests call it directly.
func run(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(f, os.Getenv)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, f, stdout, stderr)
}

func parseFlags(args []string, stdout io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.config, "config", "", "config file `PATH` (default $KEYTURN_ROUTER_CONFIG or $XDG_CONFIG_HOME/keyturn/router.yaml)")
	fs.StringVar(&f.listen, "listen", "", "listen address `HOST:PORT`, overriding the config's listen (default 127.0.0.1:8080); port 0 picks a free port")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long requests in flight may take to finish after Ctrl-C or SIGTERM, as a Go `DURATION`")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return f, err
	case err != nil:
		return f, usageErrorf("%s", err).withHint("run 'router --help' for usage")
	case fs.NArg() > 0:
		return f, usageErrorf("unexpected argument %q: router takes only flags", fs.Arg(0)).
			withHint("run 'router --help' for usage")
	case f.shutdownTimeout <= 0:
		return f, usageErrorf("invalid --shutdown-timeout %s: use a positive duration such as 30s", f.shutdownTimeout)
	}
	if f.listen != "" {
		if err := router.CheckListen(f.listen); err != nil {
			return f, usageErrorf("--listen: %w", err)
		}
	}
	return f, nil
}

// loadConfig reads the config file and applies the environment and the
// --listen flag over it.
func loadConfig(f flags, getenv func(string) string) (router.Config, error) {
	path, err := configPath(f, getenv)
	if err != nil {
		return router.Config{}, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return router.Config{}, errorf("config file %s does not exist", path).
			withHint("write one from docs/router.example.yaml, or name it with --config PATH or KEYTURN_ROUTER_CONFIG")
	}
	if err != nil {
		return router.Config{}, errorf("read config file: %w", err)
	}
	cfg, err := router.ParseConfig(path, data)
	if err != nil {
		return router.Config{}, errorf("%w", err)
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return router.Config{}, err
	}
	if f.listen != "" {
		cfg.Listen = f.listen
	}
	if cfg.Store.Raw == "" {
		return router.Config{}, errorf("no store: the config file %s has no store, and KEYTURN_STORE is not set", path).
			withHint("add 'store: file:///ABSOLUTE/DIR' or 'store: aws://REGION' to the config file")
	}
	return cfg, nil
}

func configPath(f flags, getenv func(string) string) (string, error) {
	if f.config != "" {
		return f.config, nil
	}
	if p := getenv("KEYTURN_ROUTER_CONFIG"); p != "" {
		return p, nil
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home := getenv("HOME")
		if home == "" {
			return "", usageErrorf("no config file: pass --config PATH or set KEYTURN_ROUTER_CONFIG")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "keyturn", "router.yaml"), nil
}

// applyEnv applies the environment variables that a service manager sets,
// as the rotator reads them.
func applyEnv(cfg *router.Config, getenv func(string) string) error {
	if v := getenv("KEYTURN_STORE"); v != "" {
		u, err := storeurl.Parse(v)
		if err != nil {
			return errorf("KEYTURN_STORE: %w", err).withHint("the accepted forms are %s", storeurl.AcceptedForms)
		}
		cfg.Store = u
	}
	if v := getenv("KEYTURN_IDENTITY"); v != "" {
		cfg.Identity = v
	}
	if v := getenv("KEYTURN_RELAY_HOSTS"); v != "" {
		hosts, err := router.ParseRelayHosts([]string{v})
		if err != nil {
			return errorf("KEYTURN_RELAY_HOSTS: %w", err)
		}
		cfg.RelayHosts = hosts
	}
	if v := getenv("KEYTURN_ALLOW_LOOPBACK"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errorf("invalid KEYTURN_ALLOW_LOOPBACK=%q: use true or false", v)
		}
		cfg.AllowLoopback = b
	}
	return nil
}
