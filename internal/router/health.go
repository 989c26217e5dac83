package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aws/smithy-go"

	"github.com/keyturn/keyturn/internal/upstream"
	"github.com/keyturn/keyturn/keystore"
)

// healthTimeout bounds the store reads of one health check, for secrets
// the cache has not read yet.
const healthTimeout = 5 * time.Second

type healthBody struct {
	Status  string         `json:"status"` // "ok" or "unavailable"
	Secrets []secretHealth `json:"secrets"`
}

// secretHealth is one secret's state. It holds ids and times, never a key.
type secretHealth struct {
	Provider   string  `json:"provider,omitempty"`
	Role       string  `json:"role"` // "provider" or "clients"
	SecretID   string  `json:"secret_id"`
	VersionID  string  `json:"version_id,omitempty"`
	AgeSeconds float64 `json:"age_seconds"`
	Stale      bool    `json:"stale"`
	OK         bool    `json:"ok"`
	// Error is a fixed phrase per kind of failure, such as "access
	// denied", never the store's error.
	Error string `json:"error,omitempty"`
}

// serveHealth serves GET /healthz without client auth: 200 when every
// provider secret can serve and the client list is valid, 503 otherwise.
// A provider secret cannot serve when it cannot be read, when the version
// it serves cannot be used (such as a base URL that the host policy
// refuses), or when the last request that used it found no key that the
// provider accepts. A clients secret that does not exist yet is healthy,
// since the router then rejects every client as designed, but one that
// cannot be read or does not parse is not. A provider secret served with
// AWSPREVIOUS is healthy, with phraseServingPrevious.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	body := healthBody{Status: "ok"}
	for _, name := range sortedKeys(s.cfg.Providers) {
		body.add(s.providerHealth(ctx, name))
	}
	body.add(s.clientsHealth(ctx))

	status := http.StatusOK
	if body.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	data, _ := json.Marshal(body)
	upstream.WriteJSON(w, status, append(data, '\n'))
}

func (b *healthBody) add(h secretHealth) {
	b.Secrets = append(b.Secrets, h)
	if !h.OK {
		b.Status = "unavailable"
	}
}

// providerHealth reads the secret of provider name and checks the version
// it serves as a request would, without a request to the provider.
func (s *Server) providerHealth(ctx context.Context, name string) secretHealth {
	id := s.cfg.Providers[name].Secret
	h, err := s.readHealth(ctx, id, false)
	h.Provider, h.Role = name, "provider"
	if err == nil {
		checkErr := s.proxy.Check(ctx, id)
		ph := s.proxy.Health(id)
		switch {
		case ph.Misconfigured != "":
			h.OK, h.Error, err = false, ph.Misconfigured, checkErr
		case ph.NoWorkingKey:
			h.OK, h.Error = false, phraseNoWorkingKey
			err = fmt.Errorf("the provider rejected every key of secret %q that the last request tried: "+
				"check the key at the provider, or rotate it with 'rotator rotate-now %s'", id, id)
		case ph.ServingPrevious:
			// The requests still succeed, but only until AWSPREVIOUS
			// expires.
			h.Error = phraseServingPrevious
		}
	}
	s.health.record(h, err)
	return h
}

// clientsHealth reads the clients secret and parses its client list.
func (s *Server) clientsHealth(ctx context.Context) secretHealth {
	h, err := s.readHealth(ctx, s.cfg.ClientsSecret, true)
	h.Role = "clients"
	if err == nil && h.Error == "" {
		if keys, getErr := s.keys.Get(ctx, s.cfg.ClientsSecret); getErr == nil {
			if err = s.auth.setFor(keys.Current).err; err != nil {
				h.OK, h.Error = false, phraseInvalidClients
			}
		}
	}
	s.health.record(h, err)
	return h
}

// readHealth reads secret id and returns its health and the store's error.
// With missingOK, a secret that does not exist is healthy, with a note.
func (s *Server) readHealth(ctx context.Context, id string, missingOK bool) (secretHealth, error) {
	h := secretHealth{SecretID: id}
	_, err := s.keys.Get(ctx, id)
	switch {
	case err == nil:
		h.OK = true
	case missingOK && healthPhrase(err) == phraseNotFound:
		h.OK, err = true, nil
		h.Error = "the secret does not exist yet: create a client key with 'rotator client add NAME'"
	default:
		h.Error = healthPhrase(err)
	}
	if st, ok := s.keys.Status(id); ok {
		h.VersionID = st.CurrentVersion
		h.AgeSeconds = st.Age.Seconds()
		h.Stale = st.Stale
	}
	return h, err
}

// Phrases of /healthz for a secret that cannot be read, one per kind of
// store error.
const (
	phraseNotFound     = "not found"
	phraseAccessDenied = "access denied"
	phraseUnavailable  = "store unavailable"
	phraseUnreadable   = "unreadable"
	// phraseInvalidClients is a clients secret whose value is not a
	// valid client list.
	phraseInvalidClients = "client list invalid"
	// phraseNoWorkingKey is a provider secret whose keys the provider
	// rejected on the last request that used it.
	phraseNoWorkingKey = "provider rejected every key"
	// phraseServingPrevious is a healthy provider secret whose last
	// request was served with the AWSPREVIOUS key, because the provider
	// refuses the AWSCURRENT one.
	phraseServingPrevious = "serving AWSPREVIOUS: the provider refuses the AWSCURRENT key"
)

// healthPhrase returns the fixed phrase that /healthz shows for err. The
// error itself goes only to the log: /healthz needs no client key, and a
// store's error may name an AWS account, a role, an endpoint or a path.
// An outage is checked before a missing secret, because a read past the
// cache's max_stale fails with ErrUnavailable wrapping the store's last
// error, which is a not-found when the store itself has gone.
func healthPhrase(err error) string {
	switch {
	case accessDenied(err):
		return phraseAccessDenied
	case errors.Is(err, keystore.ErrUnavailable):
		return phraseUnavailable
	case errors.Is(err, keystore.ErrNotFound):
		return phraseNotFound
	}
	// Decryption failures, invalid values and anything else.
	return phraseUnreadable
}

// accessDeniedCodes are the Secrets Manager error codes of a caller that
// lacks permission or valid credentials. The AWS store reports them as
// keystore.ErrUnavailable, because the cache should keep serving the last
// good value. An operator still needs to tell them from an outage.
var accessDeniedCodes = map[string]bool{
	"AccessDeniedException":       true,
	"UnrecognizedClientException": true,
	"InvalidSignatureException":   true,
	"ExpiredTokenException":       true,
}

func accessDenied(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && accessDeniedCodes[apiErr.ErrorCode()] {
		return true
	}
	return errors.Is(err, fs.ErrPermission)
}

// unreadable reports whether phrase is one of a secret that cannot be
// read, rather than one whose value cannot serve.
func unreadable(phrase string) bool {
	switch phrase {
	case phraseNotFound, phraseAccessDenied, phraseUnavailable, phraseUnreadable:
		return true
	}
	return false
}

// healthLog logs the store's error behind a /healthz phrase once each time
// a secret's health changes, not on every probe: /healthz needs no client
// key, so anyone who can reach it sets the probe rate.
type healthLog struct {
	log *slog.Logger
	mu  sync.Mutex
	// last maps a secret id to the phrase of its last probe, "" when it
	// was readable.
	last map[string]string
}

// record logs h's change, if it is one. err is the store's error behind
// h, or nil.
func (l *healthLog) record(h secretHealth, err error) {
	l.mu.Lock()
	last, seen := l.last[h.SecretID]
	l.last[h.SecretID] = h.Error
	l.mu.Unlock()
	switch {
	case seen && h.Error == last:
	case !h.OK && unreadable(h.Error):
		l.log.Warn("health check: secret not readable", "secret", h.SecretID, "health", h.Error, "error", err)
	case !h.OK:
		l.log.Warn("health check: secret cannot serve", "secret", h.SecretID, "health", h.Error, "error", err)
	case h.Error != "":
		l.log.Info("health check: "+h.Error, "secret", h.SecretID)
	case seen:
		l.log.Info("health check: secret readable again", "secret", h.SecretID)
	}
}
