package smtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyturn/keyturn/internal/smtest"
)

// emulator serves invocations as the Lambda runtime interface emulator
// does: 200 with the handler's result, or 200 with an error document.
func emulator(t *testing.T, answer string, got *events.SecretsManagerSecretRotationEvent) string {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != smtest.InvocationsPath {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, got); err != nil {
			t.Errorf("event is not JSON: %v", err)
		}
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

func TestHTTPInvokerSuccess(t *testing.T) {
	var got events.SecretsManagerSecretRotationEvent
	inv := smtest.HTTPInvoker{URL: emulator(t, "null", &got)}
	event := events.SecretsManagerSecretRotationEvent{Step: "testSecret", SecretID: "arn:x", ClientRequestToken: tokenA, RotationToken: tokenB}
	if err := inv.Invoke(context.Background(), lambda, event); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if got != event {
		t.Errorf("emulator received %+v, want %+v", got, event)
	}
}

func TestHTTPInvokerHandlerError(t *testing.T) {
	var got events.SecretsManagerSecretRotationEvent
	url := emulator(t, `{"errorMessage":"no staged key for keyturn/openai","errorType":"errorString"}`, &got)
	err := smtest.HTTPInvoker{URL: url}.Invoke(context.Background(), lambda, events.SecretsManagerSecretRotationEvent{Step: "createSecret"})
	var fe *smtest.FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want *FunctionError", err)
	}
	if fe.Message != "no staged key for keyturn/openai" || fe.Type != "errorString" {
		t.Errorf("FunctionError = %+v, want the emulator's message and type", fe)
	}
}

func TestHTTPInvokerBadURL(t *testing.T) {
	err := smtest.HTTPInvoker{URL: "not a url"}.Invoke(context.Background(), lambda, events.SecretsManagerSecretRotationEvent{})
	if err == nil {
		t.Fatal("Invoke with a bad URL succeeded")
	}
}

func TestHTTPInvokerHTTPError(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusBadGateway)
	}))
	t.Cleanup(hs.Close)
	if err := (smtest.HTTPInvoker{URL: hs.URL}).Invoke(context.Background(), lambda, events.SecretsManagerSecretRotationEvent{}); err == nil {
		t.Fatal("Invoke succeeded on HTTP 502")
	}
}
