package router

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

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
	Error      string  `json:"error,omitempty"`
}

// serveHealth answers GET /healthz without client auth: 200 when every
// provider secret has a usable value, 503 otherwise. A clients secret that
// does not exist yet is healthy, since the router then rejects every client
// as designed, but one that cannot be read is not.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	body := healthBody{Status: "ok"}
	for _, name := range sortedKeys(s.cfg.Providers) {
		h := s.secretHealth(ctx, s.cfg.Providers[name].Secret, false)
		h.Provider, h.Role = name, "provider"
		body.add(h)
	}
	h := s.secretHealth(ctx, s.cfg.ClientsSecret, true)
	h.Role = "clients"
	body.add(h)

	status := http.StatusOK
	if body.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	data, _ := json.Marshal(body)
	writeJSON(w, status, append(data, '\n'))
}

func (b *healthBody) add(h secretHealth) {
	b.Secrets = append(b.Secrets, h)
	if !h.OK {
		b.Status = "unavailable"
	}
}

func (s *Server) secretHealth(ctx context.Context, id string, missingOK bool) secretHealth {
	h := secretHealth{SecretID: id}
	_, err := s.keys.Get(ctx, id)
	switch {
	case err == nil:
		h.OK = true
	case missingOK && errors.Is(err, keystore.ErrNotFound):
		h.OK = true
		h.Error = "the secret does not exist yet: create a client key with 'rotator client add NAME'"
	default:
		// Store errors name the secret, version and stage, never a value.
		h.Error = err.Error()
	}
	if st, ok := s.keys.Status(id); ok {
		h.VersionID = st.CurrentVersion
		h.AgeSeconds = st.Age.Seconds()
		h.Stale = st.Stale
	}
	return h
}
