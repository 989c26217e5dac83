package router

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/storeurl"
	"github.com/keyturn/keyturn/keystore"
)

// Defaults of the config file.
const (
	DefaultListen = "127.0.0.1:8080"
	// DefaultClientsSecret is the secret holding the router's client keys,
	// as `rotator client add` writes it.
	DefaultClientsSecret = "keyturn/router-clients"
	// DefaultMaxRequestBytes bounds a request body. It leaves room for
	// embeddings batches and images sent inline as base64.
	DefaultMaxRequestBytes = 32 << 20
)

// Config is the router's configuration file, decoded and checked. The
// example config in docs/router.example.yaml documents every field.
type Config struct {
	Listen string
	// Store is the store the keys are read from. The zero URL (Raw "")
	// means none was given.
	Store storeurl.URL
	// Identity is the file store's age identity file, or "" for
	// DIR/identity.age.
	Identity      string
	ClientsSecret string
	// RelayHosts are extra hosts that keys may be sent to, checked with
	// provider.ParseRelayHosts.
	RelayHosts    []string
	AllowLoopback bool
	Cache         CacheConfig
	// MaxRequestBytes bounds a client's request body.
	MaxRequestBytes int64
	// Providers maps a provider name of the config to its secret.
	Providers map[string]ProviderConfig
	// Models maps a public model name, as clients send it, to its route.
	Models map[string]ModelRoute
	// Warnings are problems that do not stop the router, such as a
	// provider no model uses, each naming the file and line.
	Warnings []string
}

// CacheConfig tunes the keystore read cache. Zero durations are the
// keystore's defaults.
type CacheConfig struct {
	Refresh  time.Duration
	MaxStale time.Duration
}

// ProviderConfig is one provider of the config. Its adapter and base URL
// come from the settings recorded in the version being served, so a
// changed base URL takes effect only through a validated rotation.
type ProviderConfig struct {
	Secret string
}

// ModelRoute is where a public model name goes.
type ModelRoute struct {
	// Provider is a key of Config.Providers.
	Provider string
	// Model is the upstream model name written into the request body.
	Model string
}

const configKeys = "listen, store, identity, clients_secret, relay_hosts, allow_loopback, cache, max_request_bytes, providers and models"

// ParseConfig decodes the YAML config file at path (used in messages) and
// checks it. It walks the YAML node tree rather than decoding into a
// struct, so that every error names the file, the line and the key in
// plain words: an unknown key, a key given twice, a value of the wrong
// kind, and a value that cannot work, such as a model routed to a provider
// the file does not define.
func ParseConfig(path string, data []byte) (Config, error) {
	cfg, err := parseConfig(data)
	if err != nil {
		return Config{}, configError(path, err)
	}
	for i, w := range cfg.Warnings {
		cfg.Warnings[i] = "config file " + path + " " + w
	}
	return cfg, nil
}

func configError(path string, err error) error {
	var le *lineError
	if errors.As(err, &le) {
		return fmt.Errorf("config file %s %w", path, err)
	}
	return fmt.Errorf("config file %s: %w", path, err)
}

func parseConfig(data []byte) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Config{}, yamlSyntaxError(err)
	}
	cfg := Config{
		Listen:          DefaultListen,
		ClientsSecret:   DefaultClientsSecret,
		MaxRequestBytes: DefaultMaxRequestBytes,
	}
	if len(doc.Content) == 0 {
		return Config{}, errors.New("the file is empty: define providers and models, as docs/router.example.yaml shows")
	}
	root := doc.Content[0]
	values := map[string]*yaml.Node{}
	err := eachKey(root, "the config file", "'listen: 127.0.0.1:8080'", func(key, value *yaml.Node) error {
		values[key.Value] = value
		return cfg.set(key, value)
	})
	if err != nil {
		return Config{}, err
	}
	if err := cfg.check(values); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// set stores the value of one top-level key.
func (cfg *Config) set(key, value *yaml.Node) error {
	var err error
	switch key.Value {
	case "listen":
		err = setListen(&cfg.Listen, value)
	case "store":
		err = setStore(&cfg.Store, value)
	case "identity":
		cfg.Identity, err = textValue(key.Value, value, "/etc/keyturn/identity.age")
	case "clients_secret":
		err = setSecretID(&cfg.ClientsSecret, key.Value, value)
	case "relay_hosts":
		cfg.RelayHosts, err = relayHostsValue(value)
	case "allow_loopback":
		cfg.AllowLoopback, err = boolValue(key.Value, value)
	case "cache":
		err = cfg.Cache.set(value)
	case "max_request_bytes":
		cfg.MaxRequestBytes, err = byteSize(key.Value, value)
	case "providers":
		cfg.Providers, err = providersValue(value)
	case "models":
		cfg.Models, err = modelsValue(value)
	default:
		err = atLine(key, "unknown key %s: the keys are %s", key.Value, configKeys)
	}
	return err
}

func setListen(dst *string, n *yaml.Node) error {
	s, err := textValue("listen", n, "127.0.0.1:8080")
	if err != nil || s == "" {
		return err
	}
	if err := CheckListen(s); err != nil {
		return atLine(n, "listen: %w", err)
	}
	*dst = s
	return nil
}

// CheckListen checks a listen address: HOST:PORT, with an optional host
// (":8080" listens on every interface) and a port from 0 to 65535.
func CheckListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid listen address %q: use HOST:PORT, such as 127.0.0.1:8080 or :8080 for every interface", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("invalid listen address %q: the port must be a number from 0 to 65535", addr)
	}
	return nil
}

func setStore(dst *storeurl.URL, n *yaml.Node) error {
	s, err := textValue("store", n, "file:///var/lib/keyturn/store")
	if err != nil || s == "" {
		return err
	}
	u, err := storeurl.Parse(s)
	if err != nil {
		return atLine(n, "store: %w", err)
	}
	*dst = u
	return nil
}

func setSecretID(dst *string, key string, n *yaml.Node) error {
	s, err := textValue(key, n, "keyturn/openai")
	if err != nil {
		return err
	}
	if err := CheckSecretID(s); err != nil {
		return atLine(n, "%s: %w", key, err)
	}
	*dst = s
	return nil
}

// CheckSecretID applies the store's rule for secret names, so that a
// mistyped id fails at start rather than on the first request. An ARN, which
// the AWS store also accepts, is left to the store.
func CheckSecretID(id string) error {
	switch {
	case strings.TrimSpace(id) == "":
		return fmt.Errorf("the secret id is empty: give the secret's name, such as keyturn/openai")
	case strings.HasPrefix(id, "arn:"):
		return nil
	case len(id) > keystore.MaxSecretIDLen:
		return fmt.Errorf("the secret id is %d characters long: the maximum is %d", len(id), keystore.MaxSecretIDLen)
	}
	for i, r := range id {
		if !keystore.IsSecretIDRune(r) {
			return fmt.Errorf("invalid secret id %.100q: character %q at byte %d is not allowed: use letters, digits and %s",
				id, r, i, keystore.SecretIDPunctuation)
		}
	}
	return nil
}

func relayHostsValue(n *yaml.Node) ([]string, error) {
	values, err := listValue("relay_hosts", n, "relay.example.com")
	if err != nil {
		return nil, err
	}
	hosts, err := ParseRelayHosts(values)
	if err != nil {
		return nil, atLine(n, "relay_hosts: %w", err)
	}
	return hosts, nil
}

// ParseRelayHosts checks relay hosts, each value holding one or more hosts
// separated by commas or spaces, as KEYTURN_RELAY_HOSTS does.
func ParseRelayHosts(values []string) ([]string, error) {
	var hosts []string
	for _, v := range values {
		parsed, err := provider.ParseRelayHosts(v)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, parsed...)
	}
	return hosts, nil
}

func (c *CacheConfig) set(n *yaml.Node) error {
	return eachKey(n, "cache", "'refresh: 5m'", func(key, value *yaml.Node) error {
		switch key.Value {
		case "refresh":
			return durationValue(&c.Refresh, "cache.refresh", value)
		case "max_stale":
			return durationValue(&c.MaxStale, "cache.max_stale", value)
		}
		return atLine(key, "unknown key cache.%s: the keys of cache are refresh and max_stale", key.Value)
	})
}

func durationValue(dst *time.Duration, key string, n *yaml.Node) error {
	s, err := textValue(key, n, "5m")
	if err != nil || s == "" {
		return err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return atLine(n, "invalid %s %q: use a positive duration such as 30s, 5m or 1h", key, s)
	}
	*dst = d
	return nil
}

// byteSize reads a number of bytes, written as a number or with a unit
// (KiB, MiB, GiB), such as 32MiB.
func byteSize(key string, n *yaml.Node) (int64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str") {
		return 0, atLine(n, "%s must be a number of bytes, such as 33554432 or 32MiB, not %s", key, nodeKind(n))
	}
	text := strings.TrimSpace(n.Value)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if s, ok := strings.CutSuffix(text, u.suffix); ok {
			text, mult = strings.TrimSpace(s), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil || v <= 0 || v > (1<<40)/mult {
		return 0, atLine(n, "invalid %s %q: use a positive number of bytes, such as 33554432 or 32MiB (units KiB, MiB, GiB)", key, n.Value)
	}
	return v * mult, nil
}

func providersValue(n *yaml.Node) (map[string]ProviderConfig, error) {
	out := map[string]ProviderConfig{}
	err := eachKey(n, "providers", "'openai: {secret: keyturn/openai}'", func(key, value *yaml.Node) error {
		var p ProviderConfig
		err := eachKey(value, "provider "+key.Value, "'secret: keyturn/openai'", func(k, v *yaml.Node) error {
			if k.Value != "secret" {
				return atLine(k, "unknown key %s in provider %s: a provider has only secret, the id of its key's secret", k.Value, key.Value)
			}
			return setSecretID(&p.Secret, "secret of provider "+key.Value, v)
		})
		if err != nil {
			return err
		}
		if p.Secret == "" {
			return atLine(key, "provider %s has no secret: add 'secret: SECRET_ID', the id of the secret holding its key", key.Value)
		}
		out[key.Value] = p
		return nil
	})
	return out, err
}

func modelsValue(n *yaml.Node) (map[string]ModelRoute, error) {
	out := map[string]ModelRoute{}
	err := eachKey(n, "models", "'gpt-4o: {provider: openai}'", func(key, value *yaml.Node) error {
		if strings.TrimSpace(key.Value) == "" {
			return atLine(key, "a model name is empty: use the name clients send, such as gpt-4o")
		}
		route, err := modelRoute(key, value)
		if err != nil {
			return err
		}
		out[key.Value] = route
		return nil
	})
	return out, err
}

func modelRoute(key, value *yaml.Node) (ModelRoute, error) {
	var m ModelRoute
	name := key.Value
	err := eachKey(value, "model "+name, "'provider: openai'", func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "provider":
			m.Provider, err = textValue("provider of model "+name, v, "openai")
		case "model":
			m.Model, err = textValue("model of model "+name, v, "gpt-4o-2024-08-06")
		default:
			err = atLine(k, "unknown key %s in model %s: a model has provider and model (the upstream model name)", k.Value, name)
		}
		return err
	})
	if err != nil {
		return ModelRoute{}, err
	}
	if m.Provider == "" {
		return ModelRoute{}, atLine(key, "model %s has no provider: add 'provider: NAME', one of the names under providers", name)
	}
	if m.Model == "" {
		m.Model = name
	}
	return m, nil
}

// check applies the rules between keys: every model's provider exists, and
// the cache's staleness bound is not shorter than its refresh interval.
// values holds the value node of each top-level key, for lines.
func (cfg *Config) check(values map[string]*yaml.Node) error {
	if len(cfg.Providers) == 0 {
		return errors.New("no providers: add providers, such as 'providers: {openai: {secret: keyturn/openai}}'")
	}
	if len(cfg.Models) == 0 {
		return errors.New("no models: add models, such as 'models: {gpt-4o: {provider: openai}}'")
	}
	if err := cfg.checkRoutes(values["models"]); err != nil {
		return err
	}
	if err := cfg.Cache.check(); err != nil {
		return atLine(values["cache"], "%w", err)
	}
	cfg.warnUnused(values["providers"])
	return nil
}

func (cfg *Config) checkRoutes(models *yaml.Node) error {
	for i := 0; i+1 < len(models.Content); i += 2 {
		name := models.Content[i].Value
		route := cfg.Models[name]
		if _, ok := cfg.Providers[route.Provider]; !ok {
			return atLine(models.Content[i], "model %s is routed to provider %q, which is not under providers: add it there, or use one of %s",
				name, route.Provider, strings.Join(sortedKeys(cfg.Providers), ", "))
		}
	}
	return nil
}

func (cfg *Config) warnUnused(providers *yaml.Node) {
	used := map[string]bool{}
	for _, m := range cfg.Models {
		used[m.Provider] = true
	}
	for i := 0; i+1 < len(providers.Content); i += 2 {
		if name := providers.Content[i].Value; !used[name] {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("line %d: provider %s is used by no model: route a model to it, or remove it",
				providers.Content[i].Line, name))
		}
	}
}

func (c CacheConfig) check() error {
	refresh, maxStale := c.Refresh, c.MaxStale
	if refresh == 0 {
		refresh = keystore.DefaultRefreshInterval
	}
	if maxStale == 0 {
		maxStale = keystore.DefaultMaxStale
	}
	if maxStale < refresh {
		return fmt.Errorf("cache.max_stale (%s) is shorter than cache.refresh (%s): a value would expire before it is refreshed: raise max_stale or lower refresh", maxStale, refresh)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
