package router

import (
	"context"
	"errors"

	"github.com/keyturn/keyturn/internal/upstream"
)

// Warm reads each provider secret once, so that the first requests find
// it cached, and checks the version it serves as a request would, without
// a request to the provider. It logs each secret's outcome: loaded, not
// readable yet, or not usable, with the fix. A secret that fails is left
// to the requests that need it: a store that is down for a moment must
// not stop the router from starting.
func (s *Server) Warm(ctx context.Context) {
	seen := map[string]bool{}
	for _, name := range sortedKeys(s.cfg.Providers) {
		id := s.cfg.Providers[name].Secret
		if !seen[id] {
			seen[id] = true
			s.warmSecret(ctx, name, id)
		}
	}
}

func (s *Server) warmSecret(ctx context.Context, name, id string) {
	keys, err := s.keys.Get(ctx, id)
	if err != nil {
		s.log.Warn("provider secret not readable yet: its requests fail until it is",
			"provider", name, "secret", id, "error", err)
		return
	}
	var unusable *upstream.UnusableError
	if err := s.proxy.Check(ctx, id); errors.As(err, &unusable) {
		attrs := []any{"provider", name, "secret", id, "version_id", unusable.VersionID,
			"reason", unusable.Reason, "fix", unusable.Error()}
		if unusable.Detail != "" {
			attrs = append(attrs, "detail", unusable.Detail)
		}
		s.log.Warn("provider secret cannot serve: every request to its models fails until it is fixed", attrs...)
		return
	}
	s.log.Info("provider secret loaded", "provider", name, "secret", id, "version_id", keys.Current.VersionID)
}
