package upstream

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// SecretHealth is the state of one provider secret as its requests and
// checks have shown it, for a health endpoint. It holds ids, statuses and times, never a
// key. The zero SecretHealth is a secret that no request or Check has used.
type SecretHealth struct {
	// VersionID is the AWSCURRENT version that the last request or Check
	// resolved.
	VersionID string
	// Misconfigured is a fixed phrase for why that version cannot be used,
	// such as "base URL refused by the host policy: loopback not allowed",
	// or "" when it can. Every request fails while it is set.
	Misconfigured string
	// NoWorkingKey reports that the last request sent with that version
	// as AWSCURRENT found no key that the provider accepts. The next
	// response with an accepted key clears it, and so does a new
	// AWSCURRENT version.
	NoWorkingKey bool
	// LastStatus is the status sent to the client for the last request
	// that reached the provider, and At is when that request finished.
	// They are 0 and the zero time until one has.
	LastStatus int
	At         time.Time
	// LastRejected is when the provider last rejected a key of the secret,
	// the zero time if it never has.
	LastRejected time.Time
	// ServingPrevious reports that requests go to the AWSPREVIOUS version
	// first, because the provider rejected the key of AWSCURRENT (still
	// VersionID) within the cooldown and AWSPREVIOUS is usable. Health
	// works it out when called, so it turns false when the cooldown ends
	// and the next request tries AWSCURRENT first again. OK does not look
	// at it: requests are served, by the previous key, until its grace
	// period ends.
	ServingPrevious bool
}

// OK reports whether the secret can serve as far as requests and checks
// have shown: its AWSCURRENT version is usable and some key works.
func (h SecretHealth) OK() bool { return h.Misconfigured == "" && !h.NoWorkingKey }

// healthState is a secret's SecretHealth as atomics, so that requests
// record it and health checks read it without a lock.
type healthState struct {
	lastStatus   atomic.Int32
	at           atomic.Int64 // Unix nanoseconds
	lastRejected atomic.Int64 // Unix nanoseconds
	// noWorkingKey is the AWSCURRENT version that was served when the
	// last request found no working key, or nil.
	noWorkingKey atomic.Pointer[version]
}

// Health returns the health of secretID. It takes no lock and reads no
// store, so a health endpoint may call it on every probe. Call Check first
// to see a version that the cache read after the last request.
func (p *Proxy) Health(secretID string) SecretHealth {
	loaded, ok := p.secrets.Load(secretID)
	if !ok {
		return SecretHealth{}
	}
	s := loaded.(*secretVersions)
	h := SecretHealth{
		LastStatus:   int(s.health.lastStatus.Load()),
		At:           unixTime(s.health.at.Load()),
		LastRejected: unixTime(s.health.lastRejected.Load()),
	}
	if set := s.set.Load(); set != nil && set.current != nil {
		h.VersionID = set.current.id
		if set.current.unusable != nil {
			h.Misconfigured = set.current.unusable.Reason
		}
		h.NoWorkingKey = s.health.noWorkingKey.Load() == set.current
		h.ServingPrevious = servesPrevious(set.current, set.previous, p.now())
	}
	return h
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Check resolves the AWSCURRENT version of secretID that the key source
// serves now and checks it as a request would: its value parses, records a
// provider and base URL, and the host policy allows the base URL. It sends
// nothing to the provider. It returns nil if the version can serve, an
// *UnusableError if it cannot, and otherwise the key source's error
// wrapped with the secret id. That error may name files or accounts, so it
// is for the log, not for clients. Health reports the result.
func (p *Proxy) Check(ctx context.Context, secretID string) error {
	keys, err := p.keys.Get(ctx, secretID)
	if err != nil {
		return fmt.Errorf("reading the keys of secret %q: %w", secretID, err)
	}
	if keys.Current.VersionID == "" {
		return fmt.Errorf("secret %q has no AWSCURRENT version", secretID)
	}
	current, _ := p.resolve(p.versionsOf(secretID), keys)
	if current.unusable != nil {
		return current.unusable
	}
	return nil
}

// recordRejected notes that the provider rejected a key at now.
func (s *secretVersions) recordRejected(now time.Time) {
	s.health.lastRejected.Store(now.UnixNano())
}

// recordAccepted clears NoWorkingKey: the provider accepted a key.
func (s *secretVersions) recordAccepted() { s.health.noWorkingKey.Store(nil) }

// recordNoWorkingKey sets NoWorkingKey for the secret's AWSCURRENT version.
func (s *secretVersions) recordNoWorkingKey() {
	if set := s.set.Load(); set != nil {
		s.health.noWorkingKey.Store(set.current)
	}
}

// recordOutcome notes the status of a request that reached the provider.
func (s *secretVersions) recordOutcome(status int, now time.Time) {
	s.health.lastStatus.Store(int32(status))
	s.health.at.Store(now.UnixNano())
}
