package upstream

import (
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// version is one parsed version of a provider secret, shared by every
// request that uses it. A version's value never changes, so it is parsed
// and checked against the host policy once. Health belongs to the version
// too, so a new version starts healthy.
type version struct {
	secretID string
	id       string
	key      keystore.Secret
	adapter  string
	base     *url.URL
	// unusable is the reason the version cannot serve, as a public
	// message for the client's 502, or "" when it can serve.
	unusable string

	// cooldownUntil is when the version's cooldown after a rejected key
	// ends, in Unix nanoseconds; zero means it was never rejected.
	cooldownUntil atomic.Int64
	// fallbackLogged is the cooldownUntil for which the routing to
	// AWSPREVIOUS was logged, so that a cooldown logs it once.
	fallbackLogged atomic.Int64
}

func (v *version) healthy(now time.Time) bool {
	return now.UnixNano() >= v.cooldownUntil.Load()
}

func (v *version) startCooldown(now time.Time, d time.Duration) {
	v.cooldownUntil.Store(now.Add(d).UnixNano())
}

// secretVersions contains the parsed versions last served as a secret's
// AWSCURRENT and AWSPREVIOUS. A version moving from one stage to the other
// keeps its parse and its health.
type secretVersions struct {
	current, previous atomic.Pointer[version]
}

func (p *Proxy) versionsOf(secretID string) *secretVersions {
	if s, ok := p.secrets.Load(secretID); ok {
		return s.(*secretVersions)
	}
	s, _ := p.secrets.LoadOrStore(secretID, &secretVersions{})
	return s.(*secretVersions)
}

// resolve returns the parsed forms of the versions that keys serve,
// previous nil when the secret has no AWSPREVIOUS. A hit parses nothing,
// and both versions are looked up before either slot changes, so that a
// version moving from AWSCURRENT to AWSPREVIOUS keeps its parse and its
// health.
func (p *Proxy) resolve(s *secretVersions, keys keystore.Keys) (current, previous *version) {
	oldCurrent, oldPrevious := s.current.Load(), s.previous.Load()
	find := func(v keystore.Version) *version {
		switch {
		case oldCurrent != nil && oldCurrent.id == v.VersionID:
			return oldCurrent
		case oldPrevious != nil && oldPrevious.id == v.VersionID:
			return oldPrevious
		}
		return p.parseVersion(v)
	}
	current = find(keys.Current)
	if current != oldCurrent {
		s.current.Store(current)
	}
	if keys.Previous.VersionID == "" {
		return current, nil
	}
	previous = find(keys.Previous)
	if previous != oldPrevious {
		s.previous.Store(previous)
	}
	return current, previous
}

// parseVersion reads a version's key and recorded settings and checks its
// base URL against the host policy.
func (p *Proxy) parseVersion(v keystore.Version) *version {
	parsed := &version{secretID: v.SecretID, id: v.VersionID}
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		parsed.unusable = fmt.Sprintf("version %s of secret %q cannot be used: %v: "+
			"stage a valid value with 'rotator stage %s --file KEYFILE --validate' and run 'rotator rotate-now %s'",
			v.VersionID, v.SecretID, err, v.SecretID, v.SecretID)
		return parsed
	}
	parsed.key = value.APIKey
	parsed.adapter = value.Settings.Provider
	if value.Settings.Provider == "" || value.Settings.BaseURL == "" {
		parsed.unusable = fmt.Sprintf("version %s of secret %q records no settings.provider or settings.base_url, "+
			"so keyturn does not know where its key may be sent: run 'rotator rotate-now %s', "+
			"which records the settings the new key was validated with",
			v.VersionID, v.SecretID, v.SecretID)
		return parsed
	}
	parsed.base, parsed.unusable = p.checkBaseURL(v, value.Settings)
	return parsed
}

// checkBaseURL parses a version's base URL and checks it against the host
// policy, whose errors name the URL without user info and the fix.
// It also rejects a query or fragment, which the policy does not look at:
// a query could carry a credential, and keyturn keeps keys out of URLs.
func (p *Proxy) checkBaseURL(v keystore.Version, s keystore.Settings) (*url.URL, string) {
	u, err := url.Parse(s.BaseURL)
	if err == nil && (u.RawQuery != "" || u.ForceQuery || u.Fragment != "") {
		u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
		return nil, fmt.Sprintf("the base URL of secret %q (version %s), %s with a query or fragment, is not allowed: "+
			"set %s to the provider's API root without ? or # and run 'rotator rotate-now %s'",
			v.SecretID, v.VersionID, provider.RedactURL(u.String()), keystore.TagBaseURL, v.SecretID)
	}
	if err := p.policy.Check(s.Provider, s.BaseURL); err != nil {
		return nil, fmt.Sprintf("the host policy rejects the base URL of secret %q (version %s): %v",
			v.SecretID, v.VersionID, err)
	}
	return u, ""
}
