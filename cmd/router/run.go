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

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/router"
	"github.com/keyturn/keyturn/internal/storeurl"
)

const usage = `Usage: router [--config PATH] [--listen HOST:PORT] [--shutdown-timeout DURATION]

router is keyturn's OpenAI-compatible router. Clients send OpenAI requests
with a keyturn client key (Authorization: Bearer kt-..., or x-api-key), and
the router forwards each one, by its "model", to a provider with the current
key of that provider's secret. It reads every key at run time through a
cache, so a rotation takes effect without a restart.

Endpoints:
  POST /v1/chat/completions, /v1/responses, /v1/embeddings   client key
  GET  /v1/models      the configured public models           client key
  GET  /healthz        200 when every provider secret can serve and the
                       client list is valid, else 503 (a secret that cannot
                       be read, a version whose base URL is refused, a
                       provider that rejected every key); no auth, and a
                       fixed phrase per failure, such as "access denied":
                       the store's error goes to the log
  GET  /metrics        Prometheus metrics; no auth, no key in any metric: keep
                       it on a private network. metrics_listen: HOST:PORT in
                       the config file serves it there alone, and no longer
                       on the listen address

The config file (YAML) routes public model names to provider secrets; see
docs/router.example.yaml for every key. It is --config PATH, or
$KEYTURN_ROUTER_CONFIG, or $XDG_CONFIG_HOME/keyturn/router.yaml
(~/.config/keyturn/router.yaml). Its clients_secret (default
keyturn/router-clients) must be the secret that 'rotator client add' writes
(its --secret). A client key added there works at once: the router re-reads
the secret when it sees a kt- key it does not know, at most once a second.
Its upstream_timeout (default 10m) bounds the wait for a provider's response
headers; a provider that takes longer gets the client a 504.

Environment, which overrides the config file:
  KEYTURN_ROUTER_CONFIG    path of the config file
  KEYTURN_STORE            store URL: file:///ABS/DIR or aws://REGION
  KEYTURN_IDENTITY         age identity file of the file store
  KEYTURN_RELAY_HOSTS      extra hosts keys may be sent to, comma-separated
  KEYTURN_ALLOW_LOOPBACK   true to allow provider URLs on 127.0.0.1 (tests
                           and development only)

The router prints the URL it listens on to stdout, and logs one line per
request to stderr: text on a terminal, JSON otherwise. Listening on every
interface (--listen :8080 or 0.0.0.0:8080) logs a warning, since /healthz
and /metrics need no client key. Ctrl-C, SIGTERM or SIGHUP stops it: it
stops accepting connections and gives the requests in flight, streams
included, --shutdown-timeout to finish. A second Ctrl-C exits at once.

Exit codes: 0 stopped cleanly, 1 error, 2 usage error, 130 (Ctrl-C), 143
(SIGTERM) or 129 (SIGHUP) when requests in flight were cut short.

Flags:
`

// settings are the checked config and where two of its values came
// from, for hints.
type settings struct {
	cfg router.Config
	// storeFrom and identityFrom name the source of the store URL and of
	// the identity path, such as KEYTURN_STORE or 'store:' in PATH.
	storeFrom, identityFrom string
}

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
	set, err := loadConfig(f, os.Getenv)
	if err != nil {
		return err
	}
	return serve(ctx, set, f, stdout, stderr)
}

func parseFlags(args []string, stdout io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.config, "config", "", "config file `PATH` (default $KEYTURN_ROUTER_CONFIG or $XDG_CONFIG_HOME/keyturn/router.yaml)")
	fs.StringVar(&f.listen, "listen", "", "listen address `HOST:PORT`, overriding the config's listen (default 127.0.0.1:8080); port 0 picks a free port")
	f.shutdownTimeout = defaultShutdownTimeout
	fs.Var((*durationFlag)(&f.shutdownTimeout), "shutdown-timeout",
		"how long requests in flight may take to finish after Ctrl-C, SIGTERM or SIGHUP, as a Go `DURATION` such as 30s or 2m")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return f, err
	case err != nil:
		return f, cli.Usagef("%s", err).WithHint("run 'router --help' for usage")
	case fs.NArg() > 0:
		return f, cli.Usagef("unexpected argument %q: router takes only flags", fs.Arg(0)).
			WithHint("run 'router --help' for usage")
	}
	if f.listen != "" {
		if err := router.CheckListen(f.listen); err != nil {
			return f, cli.Usagef("--listen: %w", err)
		}
	}
	return f, nil
}

// durationFlag is a positive Go duration whose parse error gives an
// example, where the flag package's own error is only "parse error".
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }

func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a Go duration: give a number with a unit, such as 30s, 90s or 2m")
	}
	if v <= 0 {
		return fmt.Errorf("not a positive duration: use one such as 30s")
	}
	*d = durationFlag(v)
	return nil
}

// loadConfig reads the config file and applies the environment and the
// --listen flag over it.
func loadConfig(f flags, getenv func(string) string) (settings, error) {
	path, err := configPath(f, getenv)
	if err != nil {
		return settings{}, err
	}
	data, err := readConfig(path)
	if err != nil {
		return settings{}, err
	}
	cfg, err := router.ParseConfig(path, data)
	if err != nil {
		return settings{}, cli.Errorf("%w", err)
	}
	set := settings{storeFrom: "'store:' in " + path, identityFrom: "'identity:' in " + path}
	if err := applyEnv(&set, path, getenv, &cfg); err != nil {
		return settings{}, err
	}
	if f.listen != "" {
		cfg.Listen = f.listen
		if err := router.CheckMetricsListen(cfg.Listen, cfg.MetricsListen); err != nil {
			return settings{}, cli.Usagef("--listen %s: %w", f.listen, err)
		}
	}
	if cfg.Store.Raw == "" {
		return settings{}, cli.Errorf("no store: the config file %s has no store, and KEYTURN_STORE is not set", path).
			WithHint("add 'store: file:///ABSOLUTE/DIR' or 'store: aws://REGION' to the config file")
	}
	set.cfg = cfg
	return set, nil
}

func readConfig(path string) ([]byte, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, cli.Errorf("config file %s is a directory", path).
			WithHint("pass the YAML file itself, such as %s", filepath.Join(path, "router.yaml"))
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cli.Errorf("config file %s does not exist", path).
			WithHint("write one from docs/router.example.yaml, or name it with --config PATH or KEYTURN_ROUTER_CONFIG")
	}
	if err != nil {
		return nil, cli.Errorf("read config file: %w", err)
	}
	return data, nil
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
			return "", cli.Usagef("no config file: pass --config PATH or set KEYTURN_ROUTER_CONFIG")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "keyturn", "router.yaml"), nil
}

// applyEnv applies the environment variables that a service manager sets,
// as the rotator reads them, and records in set where the store URL and
// the identity path came from. The relay hosts are checked again when
// KEYTURN_ALLOW_LOOPBACK changes what they may be.
func applyEnv(set *settings, path string, getenv func(string) string, cfg *router.Config) error {
	if v := getenv("KEYTURN_STORE"); v != "" {
		u, err := storeurl.Parse(v)
		if err != nil {
			return cli.Errorf("KEYTURN_STORE: %w", err).WithHint("the accepted forms are %s", storeurl.AcceptedForms)
		}
		cfg.Store, set.storeFrom = u, "KEYTURN_STORE"
	}
	if v := getenv("KEYTURN_IDENTITY"); v != "" {
		cfg.Identity, set.identityFrom = v, "KEYTURN_IDENTITY"
	}
	loopback := cfg.AllowLoopback
	if v := getenv("KEYTURN_ALLOW_LOOPBACK"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cli.Errorf("invalid KEYTURN_ALLOW_LOOPBACK=%q: use true or false", v)
		}
		cfg.AllowLoopback = b
	}
	switch {
	case getenv("KEYTURN_RELAY_HOSTS") != "":
		hosts, err := provider.CheckRelayHosts([]string{getenv("KEYTURN_RELAY_HOSTS")}, "KEYTURN_RELAY_HOSTS", cfg.AllowLoopback)
		if err != nil {
			return cli.Errorf("%w", err)
		}
		cfg.RelayHosts = hosts
	case cfg.AllowLoopback != loopback:
		if _, err := provider.CheckRelayHosts(cfg.RelayHosts, "relay_hosts in "+path, cfg.AllowLoopback); err != nil {
			return cli.Errorf("%w", err).WithHint("KEYTURN_ALLOW_LOOPBACK=%t overrides allow_loopback in the config file", cfg.AllowLoopback)
		}
	}
	return nil
}
