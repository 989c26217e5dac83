package upstream

import (
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/reread"
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
	// unusable is the reason the version cannot serve, or nil when it can.
	unusable *UnusableError

	// cooldownUntil is when the version's cooldown after a rejected key
	// ends, in Unix nanoseconds; zero means it was never rejected.
	cooldownUntil atomic.Int64
	// fallbackLogged is the cooldownUntil for which the routing to
	// AWSPREVIOUS was logged, so that a cooldown logs it once.
	fallbackLogged atomic.Int64
	// rejectWarnAfter is when the next warning about a rejected key may be
	// logged, in Unix nanoseconds, and rejectsUnwarned counts the
	// rejections since the last warning that were logged only at DEBUG.
	rejectWarnAfter atomic.Int64
	rejectsUnwarned atomic.Int64
}

func (v *version) healthy(now time.Time) bool {
	return now.UnixNano() >= v.cooldownUntil.Load()
}

func (v *version) startCooldown(now time.Time, d time.Duration) {
	v.cooldownUntil.Store(now.Add(d).UnixNano())
}

func (v *version) endCooldown() {
	if v.cooldownUntil.Load() != 0 {
		v.cooldownUntil.Store(0)
	}
}

// servesPrevious reports whether requests go to previous first at now:
// current is in a cooldown after a rejected key and previous, which may be
// nil, is usable and is not. A brand-new key may not work everywhere yet,
// and the previous key is still valid for its grace period.
func servesPrevious(current, previous *version, now time.Time) bool {
	return previous != nil && !current.healthy(now) && previous.healthy(now) && previous.unusable == nil
}

// secretVersions contains the parsed versions of one secret, keyed by
// version id, so that a version keeps its parse and its health while it
// moves from AWSCURRENT to AWSPREVIOUS. It holds only the versions that the
// newest keys seen serve: a request still holding keys read before a
// refresh can neither evict a newer version nor revive an older one.
type secretVersions struct {
	// set is read without a lock; mu serializes its replacement.
	set atomic.Pointer[versionSet]
	mu  sync.Mutex
	// refresh runs the forced refreshes of the secret.
	refresh *reread.Gate[refreshResult]
	health  healthState
}

// versionSet is an immutable snapshot of a secret's parsed versions.
type versionSet struct {
	// fetched is the Keys.Fetched of the keys that the set was pruned to,
	// and current and previous are their AWSCURRENT and AWSPREVIOUS
	// versions, previous nil when they have none.
	fetched  time.Time
	current  *version
	previous *version
	byID     map[string]*version
}

func (p *Proxy) versionsOf(secretID string) *secretVersions {
	if s, ok := p.secrets.Load(secretID); ok {
		return s.(*secretVersions)
	}
	s, _ := p.secrets.LoadOrStore(secretID, &secretVersions{refresh: p.newRefreshGate(secretID)})
	return s.(*secretVersions)
}

// resolve returns the parsed forms of the versions that keys serve,
// previous nil when the secret has no AWSPREVIOUS. A hit takes no lock and
// parses nothing.
func (p *Proxy) resolve(s *secretVersions, keys keystore.Keys) (current, previous *version) {
	if set := s.set.Load(); set != nil {
		current, previous = set.lookup(keys)
		if current != nil && (previous != nil || keys.Previous.VersionID == "") {
			return current, previous
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.set.Load()
	if set == nil {
		set = &versionSet{}
	}
	current, previous = set.lookup(keys)
	if current == nil {
		current = p.parseVersion(keys.Current)
	}
	if previous == nil && keys.Previous.VersionID != "" {
		previous = p.parseVersion(keys.Previous)
	}
	// Keys older than the set's are served with what they resolve to but
	// change nothing, so that the versions of the newest keys keep their
	// health.
	if !keys.Fetched.Before(set.fetched) {
		next := &versionSet{fetched: keys.Fetched, current: current, previous: previous,
			byID: map[string]*version{current.id: current}}
		if previous != nil {
			next.byID[previous.id] = previous
		}
		s.set.Store(next)
	}
	return current, previous
}

// lookup returns the set's versions of keys, nil where it has none.
func (set *versionSet) lookup(keys keystore.Keys) (current, previous *version) {
	current = set.byID[keys.Current.VersionID]
	if keys.Previous.VersionID != "" {
		previous = set.byID[keys.Previous.VersionID]
	}
	return current, previous
}

// parseVersion reads a version's key and recorded settings and checks its
// base URL against the host policy.
func (p *Proxy) parseVersion(v keystore.Version) *version {
	parsed := &version{secretID: v.SecretID, id: v.VersionID}
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		parsed.unusable = malformedValue(v, err)
		return parsed
	}
	parsed.key = value.APIKey
	parsed.adapter = value.Settings.Provider
	if value.Settings.Provider == "" || value.Settings.BaseURL == "" {
		parsed.unusable = missingSettings(v)
		return parsed
	}
	parsed.base, parsed.unusable = p.checkBaseURL(v, value.Settings)
	return parsed
}

// checkBaseURL parses a version's base URL and checks it against the host
// policy. The policy's errors name the URL without user info. It also
// rejects a query or fragment, which the policy does not look at: a query
// could carry a credential, and keyturn keeps keys out of URLs.
func (p *Proxy) checkBaseURL(v keystore.Version, s keystore.Settings) (*url.URL, *UnusableError) {
	u, err := url.Parse(s.BaseURL)
	if err == nil && (u.RawQuery != "" || u.ForceQuery || u.Fragment != "") {
		u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
		detail := fmt.Sprintf("the base URL %s has a query or fragment, which keyturn does not allow: "+
			"set it to the provider's API root without ? or #", provider.RedactURL(u.String()))
		return nil, baseURLNotAllowed(v.SecretID, v.VersionID, s.BaseURL, reasonQuery, detail)
	}
	if err := p.policy.Check(s.Provider, s.BaseURL); err != nil {
		reason := p.policyReason(s.Provider, s.BaseURL, err)
		detail := "the host policy rejects the base URL: " + err.Error()
		return nil, baseURLNotAllowed(v.SecretID, v.VersionID, s.BaseURL, reason, detail)
	}
	return u, nil
}

// redactedHost returns the host of rawURL for the log, or "" if it has
// none. A URL's host never carries its user info.
func redactedHost(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}
