package router

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/storeurl"
	"github.com/keyturn/keyturn/internal/yamlcfg"
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
	// DefaultUpstreamTimeout bounds the wait for a provider's response
	// headers. It is the default request timeout of OpenAI's Python SDK,
	// 10 minutes, so that no request the SDK would wait for is cut short.
	DefaultUpstreamTimeout = 10 * time.Minute
)

// Config is the router's configuration file, decoded and checked. The
// example config in docs/router.example.yaml documents every field.
type Config struct {
	Listen string
	// MetricsListen is the address that serves /metrics alone. Empty
	// serves /metrics on Listen.
	MetricsListen string
	// Store is the store the keys are read from. The zero URL (Raw "")
	// means none was given.
	Store storeurl.URL
	// Identity is the file store's age identity file, or "" for
	// DIR/identity.age.
	Identity      string
	ClientsSecret string
	// RelayHosts are extra hosts that keys may be sent to, checked with
	// provider.CheckRelayHosts.
	RelayHosts    []string
	AllowLoopback bool
	Cache         CacheConfig
	// MaxRequestBytes bounds a client's request body.
	MaxRequestBytes int64
	// UpstreamTimeout bounds the wait for a provider's response headers
	// after the request was sent. A stream may run longer: the bound ends
	// when its headers arrive.
	UpstreamTimeout time.Duration
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

// ModelRoute is the destination of a public model name.
type ModelRoute struct {
	// Provider is a key of Config.Providers.
	Provider string
	// Model is the upstream model name written into the request body.
	Model string
}

const configKeys = "listen, metrics_listen, store, identity, clients_secret, relay_hosts, allow_loopback, cache, " +
	"max_request_bytes, upstream_timeout, providers and models"

// ParseConfig decodes the YAML config file at path (used in messages) and
// checks it. It walks the YAML node tree rather than decoding into a
// struct, so that every error names the file, the line and the key in
// plain words: an unknown key, a key given twice, a value of the wrong
// kind, and a value that cannot work, such as a model routed to a provider
// the file does not define.
func ParseConfig(path string, data []byte) (Config, error) {
	cfg, err := parseConfig(data)
	if err != nil {
		return Config{}, yamlcfg.FileError(path, err)
	}
	for i, w := range cfg.Warnings {
		cfg.Warnings[i] = "config file " + path + " " + w
	}
	return cfg, nil
}

func parseConfig(data []byte) (Config, error) {
	root, err := decodeDocument(data)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		Listen:          DefaultListen,
		ClientsSecret:   DefaultClientsSecret,
		MaxRequestBytes: DefaultMaxRequestBytes,
		UpstreamTimeout: DefaultUpstreamTimeout,
	}
	if root == nil {
		return Config{}, errors.New("the file is empty: define providers and models, as docs/router.example.yaml shows")
	}
	values := map[string]*yaml.Node{}
	err = yamlcfg.EachKey(root, "the config file", "'listen: 127.0.0.1:8080'", func(key, value *yaml.Node) error {
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

// decodeDocument returns the root node of the file's one YAML document,
// or nil when the file has none. A second document is an error rather than
// ignored, since its keys would have no effect.
func decodeDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF) && len(doc.Content) == 0:
		return nil, nil
	case errors.Is(err, io.EOF):
		return doc.Content[0], nil
	case err != nil:
		return nil, syntaxError(data, err)
	}
	return nil, yamlcfg.AtLine(&next, "a second YAML document starts here (after '---'), and the config file holds one: "+
		"move its keys into the first document, or remove it")
}

// syntaxError words a YAML syntax error. A tab that indents a line gets a
// plain hint, because the parser's message for it names no tab.
func syntaxError(data []byte, err error) error {
	err = yamlcfg.SyntaxError(err)
	var le *yamlcfg.LineError
	if errors.As(err, &le) && indentedWithTab(data, le.Line) {
		return &yamlcfg.LineError{Line: le.Line,
			Err: fmt.Errorf("%w: a tab indents this line, and YAML allows only spaces: indent with spaces", le.Err)}
	}
	return err
}

// indentedWithTab reports whether line (1-based) of data has a tab in its
// leading whitespace.
func indentedWithTab(data []byte, line int) bool {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return false
	}
	text := lines[line-1]
	indent := text[:len(text)-len(bytes.TrimLeft(text, " \t"))]
	return bytes.ContainsRune(indent, '\t')
}

// set stores the value of one top-level key.
func (cfg *Config) set(key, value *yaml.Node) error {
	var err error
	switch key.Value {
	case "listen":
		err = setListen(&cfg.Listen, key.Value, value)
	case "metrics_listen":
		err = setListen(&cfg.MetricsListen, key.Value, value)
	case "store":
		err = setStore(&cfg.Store, value)
	case "identity":
		cfg.Identity, err = yamlcfg.Text(key.Value, value, "/etc/keyturn/identity.age")
	case "clients_secret":
		err = setSecretID(&cfg.ClientsSecret, key.Value, value)
	case "relay_hosts":
		// check checks them once allow_loopback is known, whatever the key order.
		cfg.RelayHosts, err = yamlcfg.HostList(key.Value, value)
	case "allow_loopback":
		cfg.AllowLoopback, err = yamlcfg.Bool(key.Value, value)
	case "cache":
		err = cfg.Cache.set(value)
	case "max_request_bytes":
		cfg.MaxRequestBytes, err = byteSize(key.Value, value)
	case "upstream_timeout":
		err = durationValue(&cfg.UpstreamTimeout, key.Value, value)
	case "providers":
		cfg.Providers, err = providersValue(value)
	case "models":
		cfg.Models, err = modelsValue(value)
	default:
		err = yamlcfg.AtLine(key, "unknown key %s: the keys are %s", key.Value, configKeys)
	}
	return err
}

func setListen(dst *string, key string, n *yaml.Node) error {
	s, err := yamlcfg.Text(key, n, "127.0.0.1:8080")
	if err != nil || s == "" {
		return err
	}
	if err := CheckListen(s); err != nil {
		return yamlcfg.AtLine(n, "%s: %w", key, err)
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

// CheckMetricsListen checks that metrics, the metrics_listen address, is
// empty or an address other than listen, since one address cannot be
// listened on twice. Port 0 picks a free port each time, so it may repeat.
func CheckMetricsListen(listen, metrics string) error {
	if metrics == "" || metrics != listen {
		return nil
	}
	if _, port, _ := net.SplitHostPort(metrics); port == "0" {
		return nil
	}
	return fmt.Errorf("metrics_listen %q is the listen address too: give /metrics an address of its own, "+
		"such as 127.0.0.1:9090, or remove metrics_listen to serve /metrics on listen", metrics)
}

func setStore(dst *storeurl.URL, n *yaml.Node) error {
	s, err := yamlcfg.Text("store", n, "file:///var/lib/keyturn/store")
	if err != nil || s == "" {
		return err
	}
	u, err := storeurl.Parse(s)
	if err != nil {
		return yamlcfg.AtLine(n, "store: %w", err)
	}
	*dst = u
	return nil
}

func setSecretID(dst *string, key string, n *yaml.Node) error {
	s, err := yamlcfg.Text(key, n, "keyturn/openai")
	if err != nil {
		return err
	}
	if err := CheckSecretID(s); err != nil {
		return yamlcfg.AtLine(n, "%s: %w", key, err)
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

func (c *CacheConfig) set(n *yaml.Node) error {
	return yamlcfg.EachKey(n, "cache", "'refresh: 5m'", func(key, value *yaml.Node) error {
		switch key.Value {
		case "refresh":
			return durationValue(&c.Refresh, "cache.refresh", value)
		case "max_stale":
			return durationValue(&c.MaxStale, "cache.max_stale", value)
		}
		return yamlcfg.AtLine(key, "unknown key cache.%s: the keys of cache are refresh and max_stale", key.Value)
	})
}

func durationValue(dst *time.Duration, key string, n *yaml.Node) error {
	s, err := yamlcfg.Text(key, n, "5m")
	if err != nil || s == "" {
		return err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return yamlcfg.AtLine(n, "invalid %s %q: use a positive duration such as 30s, 5m or 1h", key, s)
	}
	*dst = d
	return nil
}

// byteSize reads a number of bytes, written as a number or with a unit
// (KiB, MiB, GiB), such as 32MiB.
func byteSize(key string, n *yaml.Node) (int64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str") {
		return 0, yamlcfg.AtLine(n, "%s must be a number of bytes, such as 33554432 or 32MiB, not %s", key, yamlcfg.Kind(n))
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
		return 0, yamlcfg.AtLine(n, "invalid %s %q: use a positive number of bytes, such as 33554432 or 32MiB (units KiB, MiB, GiB)", key, n.Value)
	}
	return v * mult, nil
}

func providersValue(n *yaml.Node) (map[string]ProviderConfig, error) {
	out := map[string]ProviderConfig{}
	err := yamlcfg.EachKey(n, "providers", "'openai: {secret: keyturn/openai}'", func(key, value *yaml.Node) error {
		var p ProviderConfig
		err := yamlcfg.EachKey(value, "provider "+key.Value, "'secret: keyturn/openai'", func(k, v *yaml.Node) error {
			if k.Value != "secret" {
				return yamlcfg.AtLine(k, "unknown key %s in provider %s: a provider has only secret, the id of its key's secret", k.Value, key.Value)
			}
			return setSecretID(&p.Secret, "secret of provider "+key.Value, v)
		})
		if err != nil {
			return err
		}
		if p.Secret == "" {
			return yamlcfg.AtLine(key, "provider %s has no secret: add 'secret: SECRET_ID', the id of the secret holding its key", key.Value)
		}
		out[key.Value] = p
		return nil
	})
	return out, err
}

func modelsValue(n *yaml.Node) (map[string]ModelRoute, error) {
	out := map[string]ModelRoute{}
	err := yamlcfg.EachKey(n, "models", "'gpt-4o: {provider: openai}'", func(key, value *yaml.Node) error {
		if strings.TrimSpace(key.Value) == "" {
			return yamlcfg.AtLine(key, "a model name is empty: use the name clients send, such as gpt-4o")
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
	err := yamlcfg.EachKey(value, "model "+name, "'provider: openai'", func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "provider":
			m.Provider, err = yamlcfg.Text("provider of model "+name, v, "openai")
		case "model":
			m.Model, err = upstreamModel(name, v)
		default:
			err = yamlcfg.AtLine(k, "unknown key %s in model %s: a model has provider and model (the upstream model name)", k.Value, name)
		}
		return err
	})
	if err != nil {
		return ModelRoute{}, err
	}
	if m.Provider == "" {
		return ModelRoute{}, yamlcfg.AtLine(key, "model %s has no provider: add 'provider: NAME', one of the names under providers", name)
	}
	if m.Model == "" {
		m.Model = name
	}
	return m, nil
}

// upstreamModel reads the model key of model name. An empty value is an
// error rather than the public name, which leaving the key out gives.
func upstreamModel(name string, v *yaml.Node) (string, error) {
	s, err := yamlcfg.Text("model of model "+name, v, "gpt-4o-2024-08-06")
	if err == nil && strings.TrimSpace(s) == "" && v.Tag != "!!null" {
		err = yamlcfg.AtLine(v, "model of model %s is empty: give the provider's model name, "+
			"such as gpt-4o-2024-08-06, or remove the key to send %s itself", name, name)
	}
	return s, err
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
	if err := cfg.checkRoles(values); err != nil {
		return err
	}
	if n := values["relay_hosts"]; n != nil {
		hosts, err := provider.CheckRelayHosts(cfg.RelayHosts, "relay_hosts", cfg.AllowLoopback)
		if err != nil {
			return yamlcfg.AtLine(n, "%w", err)
		}
		cfg.RelayHosts = hosts
	}
	if err := cfg.Cache.check(); err != nil {
		return yamlcfg.AtLine(values["cache"], "%w", err)
	}
	if err := CheckMetricsListen(cfg.Listen, cfg.MetricsListen); err != nil {
		return yamlcfg.AtLine(values["metrics_listen"], "%w", err)
	}
	cfg.warnUnused(values["providers"])
	return nil
}

func (cfg *Config) checkRoutes(models *yaml.Node) error {
	for i := 0; i+1 < len(models.Content); i += 2 {
		name := models.Content[i].Value
		route := cfg.Models[name]
		if _, ok := cfg.Providers[route.Provider]; !ok {
			return yamlcfg.AtLine(models.Content[i], "model %s is routed to provider %q, which is not under providers: add it there, or use one of %s",
				name, route.Provider, strings.Join(sortedKeys(cfg.Providers), ", "))
		}
	}
	return nil
}

// checkRoles rejects a secret that is both the clients secret and a
// provider's secret: one value cannot be a client list and a provider key.
func (cfg *Config) checkRoles(values map[string]*yaml.Node) error {
	providers := values["providers"]
	for i := 0; i+1 < len(providers.Content); i += 2 {
		name := providers.Content[i].Value
		if cfg.Providers[name].Secret != cfg.ClientsSecret {
			continue
		}
		where := "the default clients_secret"
		if n := values["clients_secret"]; n != nil {
			where = fmt.Sprintf("clients_secret on line %d", n.Line)
		}
		return yamlcfg.AtLine(providers.Content[i],
			"provider %s uses the secret %s, which is %s too: the clients secret holds the router's client keys "+
				"and a provider secret holds a provider's key, so give each role a secret of its own",
			name, cfg.ClientsSecret, where)
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
