package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// newTestHandler returns a Lambda handler on the env's file store and the
// buffer its logs go to. Its checker gives up on a failing provider after
// 3s, as under a short Lambda deadline.
func newTestHandler(t *testing.T, e *testEnv) (*lambdaHandler, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	store := e.openStore()
	engine := &rotation.Engine{
		Store: store,
		Checker: provider.New(provider.Options{
			Policy: provider.NewPolicy(nil, true), MaxElapsed: 3 * time.Second,
		}),
		Logger: logger,
	}
	t.Cleanup(func() { assertNoCanary(t, "handler logs", logs.String()) })
	return &lambdaHandler{engine: engine, store: store, logger: logger, now: time.Now}, logs
}

// handle invokes h with event as the Lambda runtime does. A failure must be
// a messages.InvokeResponse_Error, which the runtime returns unchanged.
func handle(t *testing.T, h *lambdaHandler, event string) (any, *messages.InvokeResponse_Error) {
	t.Helper()
	out, err := h.Handle(context.Background(), json.RawMessage(event))
	if err == nil {
		return out, nil
	}
	ie, ok := err.(messages.InvokeResponse_Error)
	if !ok {
		t.Fatalf("handler error is a %T, want messages.InvokeResponse_Error: %v", err, err)
	}
	assertNoCanary(t, "handler error", ie.Message)
	return out, &ie
}

// rotationEvent is a Secrets Manager rotation event for step.
func rotationEvent(step rotation.Step, secretID, token string) string {
	return `{"Step": "` + string(step) + `", "SecretId": "` + secretID +
		`", "ClientRequestToken": "` + token + `", "RotationToken": "rt"}`
}

func TestLambdaRotationSteps(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	h, logs := newTestHandler(t, e)
	token, err := h.store.BeginRotation(context.Background(), "app/openai", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range rotation.Steps {
		if _, err := handle(t, h, rotationEvent(step, "app/openai", token)); err != nil {
			t.Fatalf("%s: %s: %s", step, err.Type, err.Message)
		}
	}
	d, err := h.store.Describe(context.Background(), "app/openai")
	if err != nil {
		t.Fatal(err)
	}
	if d.VersionWithStage(keystore.StageCurrent) != token {
		t.Errorf("AWSCURRENT is on %q, want the rotation's version %s", d.VersionWithStage(keystore.StageCurrent), token)
	}
	if logs.String() == "" {
		t.Errorf("the engine logged nothing")
	}
}

func TestLambdaEventErrors(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	h, _ := newTestHandler(t, e)
	tests := []struct {
		name, event, wantType string
		want                  []string
	}{
		{"unknown step", `{"Step": "shredSecret", "SecretId": "a", "ClientRequestToken": "t"}`, "InvalidEvent",
			[]string{`unknown rotation step "shredSecret"`, "createSecret", "finishSecret"}},
		{"missing token", `{"Step": "createSecret", "SecretId": "a"}`, "InvalidEvent",
			[]string{"ClientRequestToken are required"}},
		{"step not a string", `{"Step": 1, "SecretId": "a", "ClientRequestToken": "t"}`, "InvalidEvent",
			[]string{"must be strings"}},
		{"unknown action", `{"keyturn": "defrost"}`, "InvalidEvent", []string{`unknown action "defrost"`, "backup, retire"}},
		{"action not a string", `{"keyturn": 3}`, "InvalidEvent", []string{"keyturn must be a string"}},
		{"backup", `{"keyturn": "backup"}`, "NotImplemented", []string{"backups are not configured"}},
		{"neither", `{"detail-type": "Scheduled Event"}`, "InvalidEvent", []string{"neither Step", "keyturn"}},
		{"both", `{"Step": "createSecret", "keyturn": "retire"}`, "InvalidEvent", []string{"both Step and keyturn"}},
		{"not an object", `[1, 2]`, "InvalidEvent", []string{"not a JSON object"}},
		{"step of unknown secret", rotationEvent(rotation.CreateSecret, "app/missing", "00000000-0000-4000-8000-000000000000"),
			"ConfigurationError", []string{"app/missing"}},
		{"token not a version", rotationEvent(rotation.CreateSecret, "app/openai", "00000000-0000-4000-8000-000000000000"),
			"NotPending", []string{"app/openai", "not a version of this secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := handle(t, h, tt.event)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Type != tt.wantType {
				t.Errorf("errorType = %q, want %q (message %q)", err.Type, tt.wantType, err.Message)
			}
			for _, w := range tt.want {
				assertContains(t, "errorMessage", err.Message, w)
			}
		})
	}
}

// runSteps begins a rotation of secretID and runs its steps in order until
// one fails, returning that step's error.
func runSteps(t *testing.T, h *lambdaHandler, secretID string) *messages.InvokeResponse_Error {
	t.Helper()
	token, err := h.store.BeginRotation(context.Background(), secretID, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range rotation.Steps {
		if _, err := handle(t, h, rotationEvent(step, secretID, token)); err != nil {
			return err
		}
	}
	return nil
}

func TestLambdaRotationErrorTypes(t *testing.T) {
	tests := []struct {
		name     string
		setUp    func(e *testEnv)
		wantType string
		want     string
	}{
		{"rejected key", func(e *testEnv) {
			e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", "sk-unknown-key"))
		}, "RotationRejected", "testSecret app/openai"},
		{"provider unavailable", func(e *testEnv) {
			e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
			e.provider.SetFault("GET /openai/v1/models", fakeprovider.Fault{Status: http.StatusServiceUnavailable})
		}, "RotationTransient", "testSecret app/openai"},
		{"nothing staged", func(*testEnv) {}, "NothingToPromote", "no key is staged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.add("app/openai")
			tt.setUp(e)
			h, _ := newTestHandler(t, e)
			err := runSteps(t, h, "app/openai")
			if err == nil {
				t.Fatal("the rotation succeeded")
			}
			if err.Type != tt.wantType {
				t.Errorf("errorType = %q, want %q (message %q)", err.Type, tt.wantType, err.Message)
			}
			assertContains(t, "errorMessage", err.Message, tt.want)
		})
	}
}

// failingList is a store whose List fails with err.
type failingList struct {
	keystore.Store
	err error
}

func (s failingList) List(context.Context) ([]keystore.Description, error) { return nil, s.err }

func TestLambdaRetireErrorTypes(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantType string
	}{
		{"store error", keystore.Errorf(keystore.ErrUnavailable, "ListSecrets", "", "the store timed out"), "StoreError"},
		{"other error", errors.New("disk on fire"), "InternalError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newTestHandler(t, newEnv(t))
			h.store = failingList{Store: h.store, err: tt.err}
			_, err := handle(t, h, `{"keyturn": "retire"}`)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Type != tt.wantType {
				t.Errorf("errorType = %q, want %q", err.Type, tt.wantType)
			}
			assertContains(t, "errorMessage", err.Message, "retire: "+tt.err.Error())
		})
	}
}

// TestLambdaErrorTypeOfEachKind covers the kinds the handler cannot produce
// on demand, and the order: a rotation kind wins over the store error it
// wraps.
func TestLambdaErrorTypeOfEachKind(t *testing.T) {
	storeErr := keystore.Errorf(keystore.ErrNotFound, "DescribeSecret", "app/a", "no such secret")
	tests := []struct {
		err  error
		want string
	}{
		{&rotation.Error{Op: "rotate", SecretID: "app/a", Kind: rotation.ErrInProgress, Msg: "busy"}, "RotationInProgress"},
		{&rotation.Error{Op: "createSecret", SecretID: "app/a", Kind: rotation.ErrConfig, Msg: "describe", Err: storeErr}, "ConfigurationError"},
		{&rotation.Error{Op: "createSecret", SecretID: "app/a", Kind: rotation.ErrTransient, Msg: "read", Err: storeErr}, "RotationTransient"},
		{fmt.Errorf("retire: %w", storeErr), "StoreError"},
		{invalidEventf("invalid event: %w", storeErr), "InvalidEvent"},
		{errors.New("unexpected"), "InternalError"},
	}
	for _, tt := range tests {
		if got := errorType(tt.err); got != tt.want {
			t.Errorf("errorType(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestLambdaRetireListsDueKeys(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai", "--grace", "1h")
	e.provider.AddKey("sk-second-key")
	for _, k := range []struct{ id, key string }{{"key_old", canary}, {"key_new", "sk-second-key"}} {
		e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", k.key), "--key-id", k.id)
		e.mustRun(exitOK, "rotate-now", "app/openai")
	}
	h, logs := newTestHandler(t, e)

	out, err := handle(t, h, `{"keyturn": "retire"}`)
	if err != nil {
		t.Fatal(err.Message)
	}
	if sum := out.(retireSummary); len(sum.Due) != 0 {
		t.Errorf("due now = %+v, want none within the grace period", sum.Due)
	}

	h.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	out, err = handle(t, h, `{"keyturn": "retire"}`)
	if err != nil {
		t.Fatal(err.Message)
	}
	sum := out.(retireSummary)
	if len(sum.Due) != 1 || sum.Due[0].KeyID != "key_old" || sum.Due[0].SecretID != "app/openai" {
		t.Fatalf("due after the grace period = %+v, want key_old of app/openai", sum.Due)
	}
	if !strings.Contains(logs.String(), `"key_id":"key_old"`) {
		t.Errorf("the due key was not logged:\n%s", logs.String())
	}
}

func TestLambdaHandlerFromEnv(t *testing.T) {
	_, err := newLambdaHandler(context.Background(), func(k string) string {
		return map[string]string{"KEYTURN_ALLOW_LOOPBACK": "maybe"}[k]
	}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `KEYTURN_ALLOW_LOOPBACK="maybe"`) {
		t.Errorf("error = %v, want one naming KEYTURN_ALLOW_LOOPBACK", err)
	}
}

func TestLambdaLogsJSONWithoutJSONFormat(t *testing.T) {
	for _, format := range []string{"", "Text"} {
		var out bytes.Buffer
		getenv := func(string) string { return format }
		logger := slog.New(newLambdaLogHandler(getenv, &out)).With("component", "engine")
		ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-42"})
		logger.InfoContext(ctx, "rotation step", "secret", "app/openai")
		logger.Debug("below INFO")

		var record map[string]any
		if err := json.Unmarshal(out.Bytes(), &record); err != nil {
			t.Fatalf("AWS_LAMBDA_LOG_FORMAT=%q: log is not one JSON record: %v\n%s", format, err, out.String())
		}
		for key, want := range map[string]string{
			"requestId": "req-42", "message": "rotation step", "component": "engine", "secret": "app/openai",
		} {
			if record[key] != want {
				t.Errorf("AWS_LAMBDA_LOG_FORMAT=%q: %s = %v, want %q", format, key, record[key], want)
			}
		}
		if _, ok := record["timestamp"]; !ok {
			t.Errorf("AWS_LAMBDA_LOG_FORMAT=%q: record has no timestamp: %s", format, out.String())
		}
	}
}

func TestLambdaLogsWithoutContext(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(newLambdaLogHandler(func(string) string { return "" }, &out))
	logger.Error("configuration failed")
	if strings.Contains(out.String(), "requestId") {
		t.Errorf("a record outside an invocation has a requestId: %s", out.String())
	}
	assertContains(t, "log", out.String(), `"message":"configuration failed"`)
}

func TestLambdaLogsJSONFormatUsesLambdaContext(t *testing.T) {
	var out bytes.Buffer
	h := newLambdaLogHandler(func(k string) string { return map[string]string{"AWS_LAMBDA_LOG_FORMAT": "JSON"}[k] }, &out)
	if _, ours := h.(requestIDHandler); ours {
		t.Errorf("with AWS_LAMBDA_LOG_FORMAT=JSON the handler is %T, want lambdacontext's", h)
	}
}
