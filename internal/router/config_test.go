package router

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/storeurl"
)

const minimalConfig = `
providers:
  openai: {secret: keyturn/openai}
models:
  gpt-4o: {provider: openai}
`

func TestConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig("router.yaml", []byte(minimalConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != DefaultListen {
		t.Errorf("Listen = %q, want %q", cfg.Listen, DefaultListen)
	}
	if cfg.ClientsSecret != DefaultClientsSecret {
		t.Errorf("ClientsSecret = %q", cfg.ClientsSecret)
	}
	if cfg.MaxRequestBytes != DefaultMaxRequestBytes {
		t.Errorf("MaxRequestBytes = %d", cfg.MaxRequestBytes)
	}
	if cfg.MetricsListen != "" {
		t.Errorf("MetricsListen = %q, want empty: /metrics on listen", cfg.MetricsListen)
	}
	if cfg.UpstreamTimeout != 10*time.Minute {
		t.Errorf("UpstreamTimeout = %v, want 10m", cfg.UpstreamTimeout)
	}
	if got := cfg.Models["gpt-4o"]; got != (ModelRoute{Provider: "openai", Model: "gpt-4o"}) {
		t.Errorf("route = %+v, want the public name upstream", got)
	}
	if cfg.Store.Raw != "" {
		t.Errorf("Store = %+v, want unset", cfg.Store)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

func TestConfigExample(t *testing.T) {
	data, err := os.ReadFile("../../docs/router.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("router.example.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Kind != storeurl.File || cfg.Store.Dir != "/var/lib/keyturn/store" {
		t.Errorf("store = %+v", cfg.Store)
	}
	if cfg.Cache != (CacheConfig{Refresh: 5 * time.Minute, MaxStale: time.Hour}) {
		t.Errorf("cache = %+v", cfg.Cache)
	}
	if cfg.MaxRequestBytes != 32<<20 {
		t.Errorf("max_request_bytes = %d", cfg.MaxRequestBytes)
	}
	if cfg.UpstreamTimeout != DefaultUpstreamTimeout {
		t.Errorf("upstream_timeout = %v, want the default %v", cfg.UpstreamTimeout, DefaultUpstreamTimeout)
	}
	if cfg.MetricsListen != "" {
		t.Errorf("metrics_listen = %q, want the default, empty", cfg.MetricsListen)
	}
	if got := cfg.Models["fast"]; got != (ModelRoute{Provider: "openai", Model: "gpt-4o-mini"}) {
		t.Errorf("fast = %+v", got)
	}
	if len(cfg.Providers) != 2 || len(cfg.Models) != 4 {
		t.Errorf("providers %v, models %v", cfg.Providers, cfg.Models)
	}
}

func TestConfigFull(t *testing.T) {
	cfg, err := ParseConfig("r.yaml", []byte(`
listen: ":9000"
metrics_listen: 127.0.0.1:9090
upstream_timeout: 90s
store: aws://eu-west-1
identity: /etc/id.age
clients_secret: team/clients
relay_hosts: [Relay.Example.com, "b.example.com, c.example.com"]
allow_loopback: true
cache: {refresh: 30s, max_stale: 10m}
max_request_bytes: 1024
providers:
  openai: {secret: keyturn/openai}
models:
  m: {provider: openai, model: gpt-4o}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":9000" || cfg.Identity != "/etc/id.age" || cfg.ClientsSecret != "team/clients" || !cfg.AllowLoopback {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg.Store.Kind != storeurl.AWS || cfg.Store.Region != "eu-west-1" {
		t.Errorf("store = %+v", cfg.Store)
	}
	if cfg.MetricsListen != "127.0.0.1:9090" || cfg.UpstreamTimeout != 90*time.Second {
		t.Errorf("metrics_listen %q, upstream_timeout %v", cfg.MetricsListen, cfg.UpstreamTimeout)
	}
	if strings.Join(cfg.RelayHosts, " ") != "relay.example.com b.example.com c.example.com" {
		t.Errorf("relay hosts = %v", cfg.RelayHosts)
	}
	if cfg.Cache.Refresh != 30*time.Second || cfg.Cache.MaxStale != 10*time.Minute || cfg.MaxRequestBytes != 1024 {
		t.Errorf("cache %+v, max bytes %d", cfg.Cache, cfg.MaxRequestBytes)
	}
}

func TestConfigRelayLoopbackAllowed(t *testing.T) {
	cfg, err := ParseConfig("r.yaml", []byte(minimalConfig+"relay_hosts: [127.0.0.1]\nallow_loopback: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.RelayHosts, " ") != "127.0.0.1" {
		t.Errorf("relay hosts = %v", cfg.RelayHosts)
	}
}

func TestConfigLeadingDocumentMarker(t *testing.T) {
	if _, err := ParseConfig("r.yaml", []byte("---\n"+minimalConfig)); err != nil {
		t.Errorf("a file that starts with '---': %v", err)
	}
}

func TestConfigUnusedProviderWarns(t *testing.T) {
	cfg, err := ParseConfig("r.yaml", []byte(`providers:
  openai: {secret: keyturn/openai}
  spare: {secret: keyturn/spare}
models:
  gpt-4o: {provider: openai}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 {
		t.Fatalf("warnings = %v, want one", cfg.Warnings)
	}
	for _, want := range []string{"config file r.yaml line 3:", "provider spare is used by no model"} {
		if !strings.Contains(cfg.Warnings[0], want) {
			t.Errorf("warning %q does not contain %q", cfg.Warnings[0], want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"empty", "", []string{"config file r.yaml: the file is empty"}},
		{"syntax", "listen: [\n", []string{"config file r.yaml", "invalid YAML"}},
		{"not a mapping", "- a\n", []string{"line 1:", "must be a set of keys", "not a list"}},
		{"unknown key", minimalConfig + "lisen: :80\n", []string{"line 6:", "unknown key lisen", "the keys are listen"}},
		{"duplicate key", minimalConfig + "listen: :80\nlisten: :81\n", []string{"line 7:", "key listen is already set on line 6"}},
		{"listen kind", minimalConfig + "listen: 8080\n", []string{"line 6:", "listen must be text", "not a number"}},
		{"bad listen", minimalConfig + "listen: localhost\n", []string{"line 6:", `invalid listen address "localhost"`, "HOST:PORT"}},
		{"bad port", minimalConfig + "listen: 'x:99999'\n", []string{"line 6:", "port must be a number from 0 to 65535"}},
		{"bad store", minimalConfig + "store: /var/lib/keyturn\n", []string{"line 6:", "invalid store URL", "file:///ABSOLUTE/DIR"}},
		{"loopback kind", minimalConfig + "allow_loopback: yes please\n", []string{"line 6:", "allow_loopback must be true or false", "not text"}},
		{"relay url", minimalConfig + "relay_hosts: [https://relay.example.com]\n", []string{"line 6:", "invalid relay host", "not a URL: use relay.example.com"}},
		{"relay metadata", minimalConfig + "relay_hosts: [169.254.169.254]\n", []string{"line 6:", `invalid relay host "169.254.169.254" in relay_hosts`}},
		{"relay private", minimalConfig + "relay_hosts: [10.0.0.5]\n", []string{"line 6:", `invalid relay host "10.0.0.5"`}},
		{"relay wildcard", minimalConfig + "relay_hosts: ['*.example.com']\n", []string{"line 6:", "wildcards are not supported"}},
		{"relay loopback", minimalConfig + "relay_hosts: [127.0.0.1]\n", []string{"line 6:", `invalid relay host "127.0.0.1"`}},
		{"clients secret as provider", minimalConfig + "clients_secret: keyturn/openai\n",
			[]string{"line 3:", "provider openai uses the secret keyturn/openai, which is clients_secret on line 6 too"}},
		{"default clients secret as provider", "providers:\n  openai: {secret: keyturn/router-clients}\nmodels:\n  m: {provider: openai}\n",
			[]string{"line 2:", "which is the default clients_secret too"}},
		{"tab indent", "providers:\n\topenai: {secret: s}\nmodels:\n  m: {provider: openai}\n",
			[]string{"line 2:", "invalid YAML", "a tab indents this line", "indent with spaces"}},
		{"second document", minimalConfig + "---\nlisten: :80\n", []string{"line 6:", "a second YAML document starts here"}},
		{"empty model", "providers:\n  openai: {secret: s}\nmodels:\n  gpt-4o: {provider: openai, model: ''}\n",
			[]string{"line 4:", "model of model gpt-4o is empty", "remove the key"}},
		{"relay kind", minimalConfig + "relay_hosts: {a: b}\n", []string{"line 6:", "relay_hosts must be a list", "not a set of keys"}},
		{"bad duration", minimalConfig + "cache: {refresh: 5 minutes}\n", []string{"line 6:", `invalid cache.refresh "5 minutes"`, "such as 30s"}},
		{"negative duration", minimalConfig + "cache: {max_stale: -1m}\n", []string{"line 6:", "invalid cache.max_stale", "positive duration"}},
		{"unknown cache key", minimalConfig + "cache:\n  ttl: 5m\n", []string{"line 7:", "unknown key cache.ttl"}},
		{"stale below refresh", minimalConfig + "cache:\n  refresh: 10m\n  max_stale: 5m\n", []string{"line 7:", "cache.max_stale (5m0s) is shorter than cache.refresh (10m0s)"}},
		{"bad bytes", minimalConfig + "max_request_bytes: lots\n", []string{"line 6:", `invalid max_request_bytes "lots"`, "32MiB"}},
		{"zero bytes", minimalConfig + "max_request_bytes: 0\n", []string{"line 6:", "invalid max_request_bytes"}},
		{"bytes kind", minimalConfig + "max_request_bytes: [1]\n", []string{"line 6:", "must be a number of bytes", "not a list"}},
		{"no providers", "models:\n  m: {provider: p}\n", []string{"no providers"}},
		{"no models", "providers:\n  p: {secret: s}\n", []string{"no models"}},
		{"empty secret", "providers:\n  openai: {secret: ''}\nmodels:\n  m: {provider: openai}\n", []string{"line 2:", "secret of provider openai: the secret id is empty"}},
		{"missing secret", "providers:\n  openai: {}\nmodels:\n  m: {provider: openai}\n", []string{"line 2:", "provider openai has no secret"}},
		{"bad secret id", "providers:\n  openai: {secret: 'key turn'}\nmodels:\n  m: {provider: openai}\n", []string{"line 2:", `invalid secret id "key turn"`, "character ' '"}},
		{"provider key", "providers:\n  openai: {secret: s, url: x}\nmodels:\n  m: {provider: openai}\n", []string{"line 2:", "unknown key url in provider openai"}},
		{"provider kind", "providers:\n  openai: keyturn/openai\nmodels:\n  m: {provider: openai}\n", []string{"line 2:", "provider openai must be a set of keys", "not text"}},
		{"unknown provider", "providers:\n  openai: {secret: s}\nmodels:\n  gpt-4o:\n    provider: opnai\n", []string{"line 4:", `model gpt-4o is routed to provider "opnai"`, "use one of openai"}},
		{"model without provider", "providers:\n  openai: {secret: s}\nmodels:\n  gpt-4o: {model: x}\n", []string{"line 4:", "model gpt-4o has no provider"}},
		{"model key", "providers:\n  openai: {secret: s}\nmodels:\n  gpt-4o: {provider: openai, upstream: x}\n", []string{"line 4:", "unknown key upstream in model gpt-4o"}},
		{"model kind", "providers:\n  openai: {secret: s}\nmodels:\n  gpt-4o: {provider: [openai]}\n", []string{"line 4:", "provider of model gpt-4o must be text", "not a list"}},
		{"duplicate model", "providers:\n  openai: {secret: s}\nmodels:\n  m: {provider: openai}\n  m: {provider: openai}\n", []string{"line 5:", "key m is already set on line 4"}},
		{"bad metrics listen", minimalConfig + "metrics_listen: '9090'\n", []string{"line 6:", `metrics_listen: invalid listen address "9090"`}},
		{"metrics listen kind", minimalConfig + "metrics_listen: 9090\n", []string{"line 6:", "metrics_listen must be text", "not a number"}},
		{"metrics on listen", minimalConfig + "listen: 127.0.0.1:8080\nmetrics_listen: 127.0.0.1:8080\n", []string{"line 7:", `metrics_listen "127.0.0.1:8080" is the listen address too`}},
		{"metrics on default listen", minimalConfig + "metrics_listen: 127.0.0.1:8080\n", []string{"line 6:", "is the listen address too"}},
		{"bad upstream timeout", minimalConfig + "upstream_timeout: 10\n", []string{"line 6:", "upstream_timeout must be text"}},
		{"upstream timeout unit", minimalConfig + "upstream_timeout: 10 minutes\n", []string{"line 6:", `invalid upstream_timeout "10 minutes"`, "positive duration"}},
		{"zero upstream timeout", minimalConfig + "upstream_timeout: 0s\n", []string{"line 6:", `invalid upstream_timeout "0s"`}},
		{"clients secret", minimalConfig + "clients_secret: ''\n", []string{"line 6:", "clients_secret: the secret id is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("r.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "config file r.yaml") {
				t.Errorf("error %q does not start with the file", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8080", ":0", "[::1]:443", "localhost:1"} {
		if err := CheckListen(ok); err != nil {
			t.Errorf("CheckListen(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "8080", "host:", "host:http", "host:-1"} {
		if err := CheckListen(bad); err == nil {
			t.Errorf("CheckListen(%q) accepted", bad)
		}
	}
}
