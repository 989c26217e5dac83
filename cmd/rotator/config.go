package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/storeurl"
	"github.com/keyturn/keyturn/keystore"
)

// storeFlags are the flags every command that opens a store takes.
type storeFlags struct {
	store         string
	identity      string
	relayHosts    stringList
	allowLoopback bool
}

// Help texts of --store: every command but add, update and serve takes
// either store.
const (
	anyStoreHelp  = "store `URL`: file:///ABS/DIR, aws://REGION or aws:// (default from $KEYTURN_STORE, the config file, or file://$XDG_DATA_HOME/keyturn/store)"
	fileStoreHelp = "file store `URL`: file:///ABS/DIR (default from $KEYTURN_STORE, the config file, or file://$XDG_DATA_HOME/keyturn/store)"
)

// register registers the store flags, with --store accepting either
// store, and the host policy flags.
func (f *storeFlags) register(fs *flag.FlagSet) {
	f.registerStore(fs, anyStoreHelp)
	f.registerHostPolicy(fs)
}

// registerStore registers --store, described by storeHelp, and --identity.
func (f *storeFlags) registerStore(fs *flag.FlagSet, storeHelp string) {
	fs.StringVar(&f.store, "store", "", storeHelp)
	fs.StringVar(&f.identity, "identity", "", "age identity `FILE` of the file store (default $KEYTURN_IDENTITY, the config file, or DIR/identity.age)")
}

// registerHostPolicy registers the flags that set where keys may be sent,
// for the commands that send a key to a provider or check a base URL.
func (f *storeFlags) registerHostPolicy(fs *flag.FlagSet) {
	fs.Var(&f.relayHosts, "relay-host", "extra `HOST` keys may be sent to: the host name of an OpenAI-compatible relay, such as relay.example.com; repeatable (default $KEYTURN_RELAY_HOSTS, comma-separated)")
	fs.BoolVar(&f.allowLoopback, "allow-loopback", false, "allow provider URLs on loopback hosts such as http://127.0.0.1:PORT, for tests and development (default $KEYTURN_ALLOW_LOOPBACK)")
}

// settings are the resolved store, identity and host policy of a command.
type settings struct {
	store storeurl.URL
	// storeSource names where the store URL came from, for errors: the
	// --store flag, KEYTURN_STORE, the config file or the default.
	storeSource string
	identity    string
	relayHosts  []string
	loopback    bool
}

// resolve applies the precedence flag > environment > config file > default
// to each setting.
func (a *app) resolve(f *storeFlags) (settings, error) {
	cfg, cfgPath, err := a.loadConfig()
	if err != nil {
		return settings{}, err
	}
	var s settings
	if s.store, s.storeSource, err = a.resolveStore(f, cfg, cfgPath); err != nil {
		return settings{}, err
	}
	s.identity, _ = firstSet(
		[2]string{f.identity, ""}, [2]string{a.getenv("KEYTURN_IDENTITY"), ""}, [2]string{cfg.Identity, ""})
	if s.loopback, err = a.allowLoopback(f); err != nil {
		return settings{}, err
	}
	s.relayHosts, err = a.relayHosts(f, cfg, cfgPath, s.loopback)
	return s, err
}

// defaultStoreSource is the storeSource of the default store.
const defaultStoreSource = "default"

// resolveStore returns the store URL and where it came from.
func (a *app) resolveStore(f *storeFlags, cfg fileConfig, cfgPath string) (storeurl.URL, string, error) {
	raw, from := firstSet(
		[2]string{f.store, "--store"},
		[2]string{a.getenv("KEYTURN_STORE"), "KEYTURN_STORE"},
		[2]string{cfg.Store, cfgPath},
	)
	if raw == "" {
		dir, err := a.defaultDir("XDG_DATA_HOME", ".local/share", "store", storeFlagHint)
		if err != nil {
			return storeurl.URL{}, "", err
		}
		return storeurl.URL{Raw: "file://" + dir, Kind: storeurl.File, Dir: dir}, defaultStoreSource, nil
	}
	u, err := storeurl.Parse(raw)
	if err != nil {
		code := exitError
		if from == "--store" {
			code = exitUsage
		}
		return storeurl.URL{}, "", cli.WithCode(code, fmt.Errorf("%s: %w", from, err)).
			WithHint("the accepted forms are %s", storeurl.AcceptedForms)
	}
	return u, from, nil
}

func firstSet(values ...[2]string) (value, source string) {
	for _, v := range values {
		if v[0] != "" {
			return v[0], v[1]
		}
	}
	return "", ""
}

// relayHosts returns the checked relay hosts of the first source that sets
// any. A bad host in the flag is a usage error; one in the environment or
// the config file is a configuration error.
func (a *app) relayHosts(f *storeFlags, cfg fileConfig, cfgPath string, loopback bool) ([]string, error) {
	switch {
	case len(f.relayHosts) > 0:
		hosts, err := provider.CheckRelayHosts(f.relayHosts, "--relay-host", loopback)
		if err != nil {
			return nil, cli.WithCode(exitUsage, err)
		}
		return hosts, nil
	case a.getenv("KEYTURN_RELAY_HOSTS") != "":
		return provider.CheckRelayHosts([]string{a.getenv("KEYTURN_RELAY_HOSTS")}, "KEYTURN_RELAY_HOSTS", loopback)
	case len(cfg.RelayHosts) > 0:
		return provider.CheckRelayHosts(cfg.RelayHosts, "relay_hosts in "+cfgPath, loopback)
	}
	return nil, nil
}

func (a *app) allowLoopback(f *storeFlags) (bool, error) {
	if f != nil && f.allowLoopback {
		return true, nil
	}
	return envBool(a.getenv, "KEYTURN_ALLOW_LOOPBACK")
}

func envBool(getenv func(string) string, name string) (bool, error) {
	v := getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("invalid %s=%q: use true or false", name, v)
	}
	return b, nil
}

// loadConfig reads $KEYTURN_CONFIG, or the default config file if it
// exists. A missing default file is no error; a missing $KEYTURN_CONFIG is.
func (a *app) loadConfig() (fileConfig, string, error) {
	path := a.getenv("KEYTURN_CONFIG")
	explicit := path != ""
	if !explicit {
		dir, err := a.configHome()
		if err != nil {
			return fileConfig{}, "", nil
		}
		path = filepath.Join(dir, "keyturn", "rotator.yaml")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return fileConfig{}, "", nil
	}
	if err != nil {
		return fileConfig{}, "", fmt.Errorf("read config file: %w", err)
	}
	cfg, err := decodeConfig(path, data)
	if err != nil {
		return fileConfig{}, "", err
	}
	return cfg, "config file " + path, nil
}

func (a *app) configHome() (string, error) {
	if d := a.getenv("XDG_CONFIG_HOME"); d != "" {
		return d, nil
	}
	return a.home(".config", storeFlagHint)
}

func (a *app) home(sub, flagHint string) (string, error) {
	h := a.getenv("HOME")
	if h == "" {
		return "", fmt.Errorf("cannot find the home directory: $HOME is not set: set it, or pass %s", flagHint)
	}
	return filepath.Join(h, sub), nil
}

// storeFlagHint is the flag that takes the place of a default path under
// $HOME, for errors when HOME is not set.
const storeFlagHint = "--store file:///ABSOLUTE/DIR"

// defaultDir is $XDG_VAR/keyturn/name, or ~/fallback/keyturn/name. Without
// HOME, the error advises flagHint.
func (a *app) defaultDir(xdgVar, fallback, name, flagHint string) (string, error) {
	base := a.getenv(xdgVar)
	if base == "" || !filepath.IsAbs(base) {
		var err error
		if base, err = a.home(fallback, flagHint); err != nil {
			return "", err
		}
	}
	return filepath.Join(base, "keyturn", name), nil
}

// policy is the host policy for provider URLs.
func (s settings) policy() *provider.Policy {
	return provider.NewPolicy(s.relayHosts, s.loopback)
}

// openStore opens the selected store. Only with create may it create a
// file store that does not exist yet: commands that read or change
// existing secrets pass false, so a mistyped store URL is an error rather
// than a new, empty store. The caller closes the store.
func (a *app) openStore(ctx context.Context, s settings, create bool) (keystore.Store, func(), error) {
	st, closeStore, err := storeurl.Open(ctx, s.store, storeurl.OpenOptions{
		Identity: s.identity, Create: create, OpenAWS: a.openAWS,
	})
	switch {
	case err != nil && s.store.Kind == storeurl.AWS:
		return nil, nil, cli.WithCode(exitError, fmt.Errorf("open store %s: %w", s.store.Raw, err)).
			WithHint("check AWS credentials and region (AWS_REGION, AWS_PROFILE)")
	case err != nil:
		return nil, nil, fileStoreError(s, err)
	}
	return st, closeStore, nil
}

// fileStoreError words a file store that cannot be opened, naming where its
// URL came from, since a missing store is most often a mistyped URL.
func fileStoreError(s settings, err error) error {
	dir := s.store.Dir
	if errors.Is(err, keystore.ErrNotFound) {
		return missingFileStoreError(s, err)
	}
	opened := cli.WithCode(exitError, fmt.Errorf("open file store %s (%s): %w", dir, storeOrigin(s), err))
	switch {
	case errors.Is(err, keystore.ErrDecryption):
		return opened.WithHint("pass --identity PATH or set KEYTURN_IDENTITY to the age identity the store's secrets are encrypted to")
	case errors.Is(err, keystore.ErrInvalidParameter):
		// The message already explains how to fix the path or the identity
		// file, such as chmod 600 for one that others may read.
		return opened
	}
	return opened.WithHint("pass --store file:///ABSOLUTE/DIR for a writable directory")
}

// missingFileStoreError words a file store that OpenFile did not find: a
// directory that does not exist or contains no store, or a missing identity
// file. Only add and dev create a store, so the hint names add.
func missingFileStoreError(s settings, err error) error {
	dir := s.store.Dir
	createHint := fmt.Sprintf("%s, or create a store there with 'rotator add SECRET --provider NAME --base-url URL'", fixStoreHint(s))
	if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
		return cli.WithCode(exitError, fmt.Errorf("no file store at %s: the directory does not exist (%s)", dir, storeOrigin(s))).
			WithHint("%s", createHint)
	}
	if !hasStoreFiles(dir) {
		return cli.WithCode(exitError, fmt.Errorf("no file store at %s: the directory contains no keyturn store (%s)", dir, storeOrigin(s))).
			WithHint("%s", createHint)
	}
	// The store is there, but its identity file is not. The message names
	// the file and how to restore it.
	msg := err.Error()
	var ke *keystore.Error
	if errors.As(err, &ke) {
		msg = ke.Msg
	}
	return cli.WithCode(exitError, fmt.Errorf("open file store %s (%s): %s", dir, storeOrigin(s), msg)).
		WithHint("pass --identity PATH or set KEYTURN_IDENTITY to the store's age identity file")
}

// hasStoreFiles reports whether dir contains a secrets directory or an
// identity.age, as every store that keyturn created does.
func hasStoreFiles(dir string) bool {
	for _, name := range []string{"secrets", "identity.age"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// storeOrigin words where the store URL came from.
func storeOrigin(s settings) string {
	if s.storeSource == defaultStoreSource {
		return "the default store: no --store, KEYTURN_STORE or config file names one"
	}
	return "store URL from " + s.storeSource
}

// fixStoreHint returns how to name the intended store.
func fixStoreHint(s settings) string {
	if s.storeSource == defaultStoreSource {
		return "name the store with --store file:///ABSOLUTE/DIR or KEYTURN_STORE"
	}
	return "check " + s.storeSource
}
