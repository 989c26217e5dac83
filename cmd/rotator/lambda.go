package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// Scheduled actions the Lambda takes as {"keyturn": ACTION}.
const (
	actionRetire = "retire"
	actionBackup = "backup"
)

var actions = []string{actionBackup, actionRetire}

// lambdaHandler handles the rotation Lambda's events: Secrets Manager's
// rotation steps and keyturn's own scheduled actions. Its errors go to
// Secrets Manager and CloudWatch, so they name secrets and versions only.
type lambdaHandler struct {
	engine *rotation.Engine
	store  keystore.Store
	logger *slog.Logger
	now    func() time.Time
}

// startLambda configures the handler from the environment and hands it to
// the Lambda runtime; it returns only if configuration fails.
func startLambda() {
	logger := slog.New(newLambdaLogHandler(os.Getenv, os.Stdout))
	routeStdLog(logger)
	h, err := newLambdaHandler(context.Background(), os.Getenv, logger)
	if err != nil {
		logger.Error("rotator lambda: configuration failed", "error", err)
		os.Exit(1)
	}
	lambda.Start(h)
}

// newLambdaHandler builds the handler on the AWS store of AWS_REGION, with
// relay hosts from KEYTURN_RELAY_HOSTS and loopback providers allowed by
// KEYTURN_ALLOW_LOOPBACK (tests only).
func newLambdaHandler(ctx context.Context, getenv func(string) string, logger *slog.Logger) (*lambdaHandler, error) {
	loopback, err := envBool(getenv, "KEYTURN_ALLOW_LOOPBACK")
	if err != nil {
		return nil, err
	}
	relayHosts, err := provider.CheckRelayHosts([]string{getenv("KEYTURN_RELAY_HOSTS")}, "KEYTURN_RELAY_HOSTS", loopback)
	if err != nil {
		return nil, err
	}
	s := settings{relayHosts: relayHosts, loopback: loopback}
	store, err := keystore.OpenAWS(ctx, getenv("AWS_REGION"))
	if err != nil {
		return nil, fmt.Errorf("open the Secrets Manager store: %w", err)
	}
	engine, err := newEngine(store, s, getenv, logger)
	if err != nil {
		return nil, err
	}
	return &lambdaHandler{engine: engine, store: store, logger: logger, now: time.Now}, nil
}

// Handle dispatches one event: a rotation event has Step, a scheduled
// event has keyturn. It returns a summary for scheduled events, and its
// errors as messages.InvokeResponse_Error with an errorType that names the
// kind of failure, such as RotationRejected or InvalidEvent. It logs each
// failure once, as an ERROR record "invocation failed" with the
// invocation's requestId.
func (h *lambdaHandler) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	out, err := h.handle(ctx, raw)
	if err != nil {
		ie := invokeError(err)
		h.logger.ErrorContext(ctx, "invocation failed", "errorType", ie.Type, "errorMessage", ie.Message)
		return nil, ie
	}
	return out, nil
}

// Invoke implements lambda.Handler, so that the handler receives each
// payload as it came. Given Handle itself, aws-lambda-go v1.55.1 decodes
// the payload first and fails a payload that is not JSON with its own
// errorType, SyntaxError; Invoke makes that an InvalidEvent like any other
// event keyturn does not handle.
func (h *lambdaHandler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	out, err := h.Handle(ctx, payload)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, invokeError(fmt.Errorf("encode the result: %w", err))
	}
	return b, nil
}

func (h *lambdaHandler) handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, invalidEventf("invalid event: not a JSON object. Send a Secrets Manager rotation event or a scheduled event {\"keyturn\": ACTION} with ACTION one of %s",
			strings.Join(actions, ", "))
	}
	_, hasStep := fields["Step"]
	_, hasAction := fields["keyturn"]
	switch {
	case hasStep && hasAction:
		return nil, invalidEventf("invalid event: it has both Step and keyturn: send a rotation event or a scheduled event, not both")
	case hasStep:
		return nil, h.rotate(ctx, raw)
	case hasAction:
		return h.scheduled(ctx, fields["keyturn"])
	}
	return nil, invalidEventf("invalid event: it has neither Step (a Secrets Manager rotation event) nor keyturn (a scheduled event: %s)",
		strings.Join(actions, ", "))
}

func (h *lambdaHandler) rotate(ctx context.Context, raw json.RawMessage) error {
	var ev events.SecretsManagerSecretRotationEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return invalidEventf("invalid rotation event: Step, SecretId and ClientRequestToken must be strings")
	}
	step, err := rotation.ParseStep(ev.Step)
	if err != nil {
		return invalidEventf("invalid rotation event: %w", err)
	}
	if ev.SecretID == "" || ev.ClientRequestToken == "" {
		return invalidEventf("invalid rotation event for step %s: SecretId and ClientRequestToken are required", step)
	}
	return h.engine.Run(ctx, step, ev.SecretID, ev.ClientRequestToken)
}

func (h *lambdaHandler) scheduled(ctx context.Context, rawAction json.RawMessage) (any, error) {
	var action string
	if err := json.Unmarshal(rawAction, &action); err != nil {
		return nil, invalidEventf("invalid scheduled event: keyturn must be a string, one of %s", strings.Join(actions, ", "))
	}
	switch action {
	case actionRetire:
		return h.retire(ctx)
	case actionBackup:
		return nil, &handlerError{errorType: errorTypeNotImplemented,
			err: errors.New("backup: backups are not configured in this build of the rotator")}
	}
	return nil, invalidEventf("invalid scheduled event: unknown action %q: use one of %s", action, strings.Join(actions, ", "))
}

// retireEntry is an old key whose grace period has passed.
type retireEntry struct {
	SecretID  string    `json:"secret_id"`
	KeyID     string    `json:"key_id"`
	VersionID string    `json:"version_id"`
	NotBefore time.Time `json:"not_before"`
}

type retireSummary struct {
	Due    []retireEntry `json:"due"`
	Failed []string      `json:"failed,omitempty"` // secrets whose current value could not be read
}

// retire lists the old keys of every managed secret that are due for
// revocation. A secret that cannot be read is logged and skipped, so one
// broken secret does not hide the others.
func (h *lambdaHandler) retire(ctx context.Context) (retireSummary, error) {
	// TODO: revoke the due keys through each secret's issuer and drop them
	// from retire; for now the run only reports them.
	secrets, err := h.store.List(ctx)
	if err != nil {
		return retireSummary{}, fmt.Errorf("retire: %w", err)
	}
	sum := retireSummary{Due: []retireEntry{}}
	now := h.now()
	for _, d := range secrets {
		if !keystore.IsManaged(d.Tags) {
			continue
		}
		due, err := h.dueRetirements(ctx, d.SecretID, now)
		if err != nil {
			h.logger.ErrorContext(ctx, "retire: cannot read the current value", "secret_id", d.SecretID, "error", err)
			sum.Failed = append(sum.Failed, d.SecretID)
			continue
		}
		sum.Due = append(sum.Due, due...)
	}
	for _, e := range sum.Due {
		h.logger.InfoContext(ctx, "retire due", "secret_id", e.SecretID, "key_id", e.KeyID,
			"version_id", e.VersionID, "not_before", e.NotBefore)
	}
	h.logger.InfoContext(ctx, "retire run finished", "due", len(sum.Due), "failed", len(sum.Failed))
	return sum, nil
}

func (h *lambdaHandler) dueRetirements(ctx context.Context, secretID string, now time.Time) ([]retireEntry, error) {
	v, err := h.store.Get(ctx, secretID, keystore.Current())
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, nil // no key yet
	}
	if err != nil {
		return nil, err
	}
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		return nil, fmt.Errorf("version %s: %w", v.VersionID, err)
	}
	var due []retireEntry
	for _, r := range value.Retire {
		if !r.NotBefore.After(now) {
			due = append(due, retireEntry{SecretID: secretID, KeyID: r.KeyID, VersionID: r.VersionID, NotBefore: r.NotBefore})
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].NotBefore.Before(due[j].NotBefore) })
	return due, nil
}
