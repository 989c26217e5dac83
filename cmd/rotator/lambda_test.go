package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// newTestHandler returns a Lambda handler on the env's file store and the
// buffer its logs go to.
func newTestHandler(t *testing.T, e *testEnv) (*lambdaHandler, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	store := e.openStore()
	engine := &rotation.Engine{
		Store:   store,
		Checker: provider.New(provider.Options{Policy: provider.NewPolicy(nil, true)}),
		Logger:  logger,
	}
	t.Cleanup(func() { assertNoCanary(t, "handler logs", logs.String()) })
	return &lambdaHandler{engine: engine, store: store, logger: logger, now: time.Now}, logs
}

func handle(t *testing.T, h *lambdaHandler, event string) (any, error) {
	t.Helper()
	out, err := h.Handle(context.Background(), json.RawMessage(event))
	if err != nil {
		assertNoCanary(t, "handler error", err.Error())
	}
	return out, err
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
		ev := `{"Step": "` + string(step) + `", "SecretId": "app/openai", "ClientRequestToken": "` + token + `", "RotationToken": "rt"}`
		if _, err := handle(t, h, ev); err != nil {
			t.Fatalf("%s: %v", step, err)
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
	h, _ := newTestHandler(t, e)
	tests := []struct {
		name, event string
		want        []string
	}{
		{"unknown step", `{"Step": "shredSecret", "SecretId": "a", "ClientRequestToken": "t"}`,
			[]string{`unknown rotation step "shredSecret"`, "createSecret", "finishSecret"}},
		{"missing token", `{"Step": "createSecret", "SecretId": "a"}`, []string{"ClientRequestToken are required"}},
		{"unknown action", `{"keyturn": "defrost"}`, []string{`unknown action "defrost"`, "backup, retire"}},
		{"action not a string", `{"keyturn": 3}`, []string{"keyturn must be a string"}},
		{"backup", `{"keyturn": "backup"}`, []string{"backups are not configured"}},
		{"neither", `{"detail-type": "Scheduled Event"}`, []string{"neither Step", "keyturn"}},
		{"both", `{"Step": "createSecret", "keyturn": "retire"}`, []string{"both Step and keyturn"}},
		{"not an object", `[1, 2]`, []string{"not a JSON object"}},
		{"step of unknown secret", `{"Step": "createSecret", "SecretId": "app/missing", "ClientRequestToken": "00000000-0000-4000-8000-000000000000"}`,
			[]string{"app/missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := handle(t, h, tt.event)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				assertContains(t, "error", err.Error(), w)
			}
		})
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
		t.Fatal(err)
	}
	if sum := out.(retireSummary); len(sum.Due) != 0 {
		t.Errorf("due now = %+v, want none within the grace period", sum.Due)
	}

	h.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	out, err = handle(t, h, `{"keyturn": "retire"}`)
	if err != nil {
		t.Fatal(err)
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
