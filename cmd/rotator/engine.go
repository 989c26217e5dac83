package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyturn/keyturn/internal/issuer"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// knownIssuers are the minting issuers this build can configure, besides
// "staged". The dev issuer mints at the stand-in provider of `rotator dev`.
var knownIssuers = []string{"dev"}

// devIssuerEnv names the stand-in's OpenRouter-shaped API root, such as
// http://127.0.0.1:PORT/openrouter/api/v1, so that commands other than
// `rotator dev` (and the Lambda in end-to-end tests) can mint there too. It
// takes effect only when loopback providers are allowed.
const devIssuerEnv = "KEYTURN_DEV_ISSUER_URL"

// newEngine builds the rotation engine for a store and the resolved host
// policy.
func newEngine(store keystore.Store, s settings, getenv func(string) string, logger *slog.Logger) (*rotation.Engine, error) {
	issuers := map[string]issuer.Issuer{}
	if u := getenv(devIssuerEnv); u != "" {
		if !s.loopback {
			return nil, fmt.Errorf("%s is set but loopback providers are not allowed: set KEYTURN_ALLOW_LOOPBACK=true or pass --allow-loopback", devIssuerEnv)
		}
		issuers["dev"] = issuer.NewDev(u, &http.Client{Timeout: 10 * time.Second})
	}
	return &rotation.Engine{
		Store:   store,
		Checker: provider.New(provider.Options{Policy: s.policy()}),
		Issuers: issuers,
		Logger:  logger,
	}, nil
}

// stderrLogger logs text lines to stderr at level and above.
func (a *app) stderrLogger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
}

// withoutStepRecords drops the engine's records of each rotation step.
// rotate-now reports the step that failed as its error, so the record would
// only repeat it.
type withoutStepRecords struct{ slog.Handler }

func (h withoutStepRecords) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == rotation.StepLogMessage {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h withoutStepRecords) WithAttrs(attrs []slog.Attr) slog.Handler {
	return withoutStepRecords{h.Handler.WithAttrs(attrs)}
}

func (h withoutStepRecords) WithGroup(name string) slog.Handler {
	return withoutStepRecords{h.Handler.WithGroup(name)}
}
