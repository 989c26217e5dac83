package keystore

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Settings tags. Settings are not secret: they are a secret's tags, written
// by Terraform on AWS and by `rotator add` on the file store.
const (
	TagProvider       = "keyturn:provider"
	TagBaseURL        = "keyturn:base-url"
	TagIssuer         = "keyturn:issuer"
	TagIssuerSecret   = "keyturn:issuer-secret"
	TagRequiredModels = "keyturn:required-models"
	TagProbe          = "keyturn:probe"
	TagGrace          = "keyturn:grace"
)

// TagPrefix marks the tags keyturn reads; a secret without a TagProvider tag
// is not managed by keyturn.
const TagPrefix = "keyturn:"

// Providers are the adapter names TagProvider accepts.
var Providers = []string{"openai", "anthropic", "gemini", "openrouter"}

// Probe kinds.
const (
	ProbeModels    = "models"
	ProbeInference = "inference"
)

// IssuerStaged takes each new key from KEYTURN_STAGED.
const IssuerStaged = "staged"

// DefaultGrace is how long an old key stays valid after it stops being
// current when the secret has no TagGrace.
const DefaultGrace = 24 * time.Hour

// Settings are a secret's rotation settings, read from its tags. Each new
// version records the settings it was validated with.
type Settings struct {
	Provider       string   `json:"provider"`
	BaseURL        string   `json:"base_url"`
	Issuer         string   `json:"issuer,omitempty"`
	IssuerSecret   string   `json:"issuer_secret,omitempty"`
	RequiredModels []string `json:"required_models,omitempty"`
	Probe          string   `json:"probe,omitempty"`
	Grace          Duration `json:"grace,omitempty"`
}

// Duration is a time.Duration written as text ("24h") in JSON.
type Duration time.Duration

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

// UnmarshalText reads a duration such as "24h" or "90m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a Go duration such as 24h", b)
	}
	*d = Duration(v)
	return nil
}

// IsManaged reports whether tags mark a secret that keyturn rotates.
func IsManaged(tags map[string]string) bool {
	_, ok := tags[TagProvider]
	return ok
}

// SettingsFromTags reads and checks a secret's settings tags. Tags outside
// the keyturn: prefix are ignored; an unknown keyturn: tag is an error, since
// it is most likely a typo. Defaults: issuer staged, probe models, grace 24h.
// It checks shape only; where keys may be sent is the provider package's
// decision.
func SettingsFromTags(tags map[string]string) (Settings, error) {
	var s Settings
	known := map[string]*string{
		TagProvider: &s.Provider, TagBaseURL: &s.BaseURL, TagIssuer: &s.Issuer,
		TagIssuerSecret: &s.IssuerSecret, TagProbe: &s.Probe,
	}
	var unknown []string
	for k, v := range tags {
		if !strings.HasPrefix(k, TagPrefix) {
			continue
		}
		switch {
		case known[k] != nil:
			*known[k] = strings.TrimSpace(v)
		case k == TagRequiredModels:
			s.RequiredModels = strings.Fields(v)
		case k == TagGrace:
			if err := s.Grace.UnmarshalText([]byte(strings.TrimSpace(v))); err != nil {
				return Settings{}, fmt.Errorf("tag %s: %w", TagGrace, err)
			}
		default:
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return Settings{}, fmt.Errorf("unknown settings tag %s: the known tags are %s",
			strings.Join(unknown, ", "), strings.Join(knownTags(), ", "))
	}
	if s.Issuer == "" {
		s.Issuer = IssuerStaged
	}
	if s.Probe == "" {
		s.Probe = ProbeModels
	}
	if _, ok := tags[TagGrace]; !ok {
		s.Grace = Duration(DefaultGrace)
	}
	return s, s.Validate()
}

// Validate checks that the settings are complete and well formed.
func (s Settings) Validate() error {
	if s.Provider == "" {
		return fmt.Errorf("missing tag %s: set it to one of %s", TagProvider, strings.Join(Providers, ", "))
	}
	if !contains(Providers, s.Provider) {
		return fmt.Errorf("tag %s: unknown provider %q: use one of %s", TagProvider, s.Provider, strings.Join(Providers, ", "))
	}
	if s.BaseURL == "" {
		return fmt.Errorf("missing tag %s: set it to the provider's API root, such as https://api.openai.com/v1", TagBaseURL)
	}
	if err := checkBaseURL(s.BaseURL); err != nil {
		return err
	}
	if s.Probe != ProbeModels && s.Probe != ProbeInference {
		return fmt.Errorf("tag %s: unknown probe %q: use %s or %s", TagProbe, s.Probe, ProbeModels, ProbeInference)
	}
	if s.Issuer != IssuerStaged && s.IssuerSecret == "" {
		return fmt.Errorf("missing tag %s: issuer %q needs it to name the secret that holds its admin key", TagIssuerSecret, s.Issuer)
	}
	if s.Grace < 0 {
		return fmt.Errorf("tag %s: grace %s is negative", TagGrace, time.Duration(s.Grace))
	}
	return nil
}

// checkBaseURL requires an absolute http(s) URL without user info, query or
// fragment. Its errors quote the URL with those parts redacted, because
// they may carry a password or a key and the errors reach logs.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("tag %s: %q is not an absolute http(s) URL: use one such as https://api.openai.com/v1",
			TagBaseURL, redactBaseURL(raw))
	}
	if u.User != nil {
		return fmt.Errorf("tag %s: %q must not carry credentials: remove the user info before the host, "+
			"because keyturn sends the key in a header", TagBaseURL, redactBaseURL(raw))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("tag %s: %q must not carry a query or a fragment: remove the part after ? or #",
			TagBaseURL, redactBaseURL(raw))
	}
	return nil
}

// redactedPart replaces the parts of a base URL that may carry a secret.
const redactedPart = "REDACTED"

// redactBaseURL returns raw with its user info, query and fragment replaced
// by REDACTED, such as https://REDACTED@host/v1?REDACTED.
func redactBaseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return redactUnparsedURL(raw)
	}
	if u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" {
		return raw // nothing to redact, and u.String would re-escape it
	}
	if u.User != nil {
		u.User = url.User(redactedPart)
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = redactedPart, false
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = redactedPart, ""
	}
	return u.String()
}

// redactUnparsedURL redacts a URL that url.Parse rejects or reads as
// opaque: everything before the last @ of the part before any ? or #, and
// everything from that ? or # on.
func redactUnparsedURL(raw string) string {
	rest, tail := raw, ""
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		rest, tail = raw[:i], raw[i:i+1]+redactedPart
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		scheme := ""
		if j := strings.Index(rest[:i], "://"); j >= 0 {
			scheme = rest[:j+3]
		} else if j := strings.Index(rest[:i], ":"); j >= 0 {
			scheme = rest[:j+1]
		}
		rest = scheme + redactedPart + rest[i:]
	}
	return rest + tail
}

// Tags returns the settings as tags, the inverse of SettingsFromTags.
func (s Settings) Tags() map[string]string {
	t := map[string]string{TagProvider: s.Provider, TagBaseURL: s.BaseURL}
	set := func(k, v string) {
		if v != "" {
			t[k] = v
		}
	}
	set(TagIssuer, s.Issuer)
	set(TagIssuerSecret, s.IssuerSecret)
	set(TagRequiredModels, strings.Join(s.RequiredModels, " "))
	set(TagProbe, s.Probe)
	// Always written: without the tag SettingsFromTags would read a grace
	// of zero as DefaultGrace.
	t[TagGrace] = time.Duration(s.Grace).String()
	return t
}

func knownTags() []string {
	return []string{TagProvider, TagBaseURL, TagIssuer, TagIssuerSecret, TagRequiredModels, TagProbe, TagGrace}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
