package tests

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyturn/keyturn/internal/smtest"
	"github.com/keyturn/keyturn/keystore"
)

var rotationSteps = []string{"createSecret", "setSecret", "testSecret", "finishSecret"}

// TestLambdaRotation rotates a secret twice through RotateSecret with the
// rotator running under the emulator: first a staged key the provider
// accepts, then one it rejects.
func TestLambdaRotation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const name = "keyturn/e2e/lambda"
	first := w.plant("first", true)
	second := w.plant("second", true)
	rejected := w.plant("rejected", false)
	firstVersion := w.createSecret(name, first)

	w.stage(name, second)
	token := w.rotate(&secretsmanager.RotateSecretInput{
		SecretId:          aws.String(name),
		RotationLambdaARN: aws.String(rotatorARN),
		RotationRules:     &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	labels := w.waitPromoted(name, token)

	w.assertKey(name, keystore.StageCurrent, second)
	w.assertKey(name, keystore.StagePrevious, first)
	if got := holder(labels, keystore.StagePrevious); got != firstVersion {
		t.Errorf("AWSPREVIOUS is on version %q, want the first version %q", got, firstVersion)
	}
	if got := holder(labels, keystore.StageStaged); got != "" {
		t.Errorf("KEYTURN_STAGED is still on version %q after the staged key was promoted", got)
	}
	if got := w.invocations.succeeded(); !slices.Equal(got, rotationSteps) {
		t.Errorf("steps that succeeded = %v, want %v; invocations:\n%s", got, rotationSteps, w.scrubbed(w.invocations.String()))
	}
	assertJSONLogs(t, w.emulator.output.String())

	w.stage(name, rejected)
	rejectedToken := w.rotate(&secretsmanager.RotateSecretInput{SecretId: aws.String(name)})
	labels = w.waitRejected(name)

	if got := holder(labels, keystore.StageCurrent); got != token {
		t.Errorf("AWSCURRENT moved to version %q after a rejected rotation, want it on %q", got, token)
	}
	w.assertKey(name, keystore.StageCurrent, second)
	w.assertKey(name, keystore.StageRejected, rejected)
	assertFailure(t, w.value(name, keystore.StageRejected).LastFailure, rejectedToken)
	assertFailedStep(t, w, "testSecret", "RotationRejected")
}

// assertFailedStep checks that step failed in some invocation with a
// function error of errorType.
func assertFailedStep(t *testing.T, w *world, step, errorType string) {
	t.Helper()
	for _, inv := range w.invocations.list() {
		var fe *smtest.FunctionError
		if inv.step == step && errors.As(inv.err, &fe) {
			if fe.Type != errorType {
				t.Errorf("%s failed with errorType %q, want %q", step, fe.Type, errorType)
			}
			return
		}
	}
	t.Errorf("no %s invocation returned a function error; invocations:\n%s", step, w.scrubbed(w.invocations.String()))
}

// assertJSONLogs checks that the rotator logged JSON records that carry the
// Lambda request id, as it must with AWS_LAMBDA_LOG_FORMAT=JSON. The
// emulator's own lines in the same output are plain text.
func assertJSONLogs(t *testing.T, output string) {
	t.Helper()
	records := 0
	for line := range strings.Lines(output) {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var record struct {
			RequestID string `json:"requestId"`
		}
		if err := json.Unmarshal([]byte(line), &record); err != nil {
			t.Errorf("rotator log line is not valid JSON: %v", err)
			continue
		}
		if record.RequestID != "" {
			records++
		}
	}
	if records == 0 {
		t.Errorf("the rotator logged no JSON record with a requestId")
	}
}

// assertFailure checks the last_failure a rejected rotation records.
func assertFailure(t *testing.T, f *keystore.Failure, token string) {
	t.Helper()
	if f == nil {
		t.Fatalf("KEYTURN_REJECTED value has no last_failure")
	}
	if f.Step != "testSecret" {
		t.Errorf("last_failure.step = %q, want testSecret", f.Step)
	}
	if f.Class != "rejected" {
		t.Errorf("last_failure.class = %q, want rejected", f.Class)
	}
	if f.VersionID != token {
		t.Errorf("last_failure.version_id = %q, want the rotation token %q", f.VersionID, token)
	}
	if f.Reason == "" {
		t.Errorf("last_failure.reason is empty")
	}
	if f.At.IsZero() {
		t.Errorf("last_failure.at is not set")
	}
}

// TestLambdaConfigurationTest turns rotation on with RotateImmediately=false:
// Secrets Manager then runs only testSecret, on an empty AWSPENDING version,
// and the secret keeps its key.
func TestLambdaConfigurationTest(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const name = "keyturn/e2e/config-test"
	current := w.plant("current", true)
	currentVersion := w.createSecret(name, current)

	w.enableRotation(name)
	labels := w.describe(name)

	invocations := w.invocations.list()
	if len(invocations) != 1 || invocations[0].step != "testSecret" {
		t.Errorf("invocations:\n%swant testSecret alone", w.scrubbed(w.invocations.String()))
	}
	if got := holder(labels, keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING is on version %q after the configuration test", got)
	}
	if got := holder(labels, keystore.StageCurrent); got != currentVersion {
		t.Errorf("AWSCURRENT is on version %q, want %q", got, currentVersion)
	}
	w.assertKey(name, keystore.StageCurrent, current)
}

// TestLambdaUnknownStep invokes the rotator directly with a step Secrets
// Manager never sends. The emulator returns the handler's error as HTTP 200
// with {"errorMessage", "errorType"}.
func TestLambdaUnknownStep(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const name = "keyturn/e2e/unknown-step"
	version := w.createSecret(name, w.plant("current", true))

	status, body := w.invoke(events.SecretsManagerSecretRotationEvent{
		Step:               "rotateEverything",
		SecretID:           name,
		ClientRequestToken: version,
	})

	if status != http.StatusOK {
		t.Errorf("status = %d, want 200", status)
	}
	fe := w.parseFunctionError(body)
	if !strings.Contains(fe.ErrorMessage, "rotateEverything") {
		t.Errorf("errorMessage %q does not name the step rotateEverything", w.scrubbed(fe.ErrorMessage))
	}
	if fe.ErrorType != "InvalidEvent" {
		t.Errorf("errorType = %q, want InvalidEvent; body %s", fe.ErrorType, w.scrubbed(body))
	}
}

// functionError is the emulator's body for a handler error.
type functionError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// parseFunctionError decodes an invocation's body, which must be a handler
// error.
func (w *world) parseFunctionError(body string) functionError {
	w.t.Helper()
	var fe functionError
	if err := json.Unmarshal([]byte(body), &fe); err != nil || fe.ErrorMessage == "" {
		w.t.Fatalf("invocation returned no handler error (%v): %s", err, w.scrubbed(body))
	}
	return fe
}

// invoke posts event to the emulator, as Secrets Manager would, and returns
// the status and body. The body is collected for checkNoLeaks.
func (w *world) invoke(event events.SecretsManagerSecretRotationEvent) (int, string) {
	w.t.Helper()
	payload, err := json.Marshal(event)
	if err != nil {
		w.t.Fatalf("encode event: %v", err)
	}
	return w.invokePayload("step "+event.Step, string(payload))
}

// invokePayload posts payload to the emulator as is and returns the status
// and body; what names the invocation in failures.
func (w *world) invokePayload(what, payload string) (int, string) {
	w.t.Helper()
	req, err := http.NewRequestWithContext(w.ctx(), http.MethodPost, w.emulator.URL, strings.NewReader(payload))
	if err != nil {
		w.t.Fatalf("build invocation: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("invoke %s: %v", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("read invocation response: %v", err)
	}
	w.collect("response to "+what, string(body))
	return resp.StatusCode, string(body)
}

// TestLambdaNonJSONEvent invokes the rotator with a payload that is not
// JSON. The handler, not aws-lambda-go, rejects it, and logs the failure as
// a JSON record with the invocation's requestId.
func TestLambdaNonJSONEvent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)

	_, body := w.invokePayload("a non-JSON payload", "rotate everything, please")
	fe := w.parseFunctionError(body)
	if fe.ErrorType != "InvalidEvent" {
		t.Errorf("errorType = %q, want InvalidEvent; body %s", fe.ErrorType, w.scrubbed(body))
	}

	// The emulator's own lines are plain text; every line that carries the
	// handler's error must be one JSON record. The rotator writes the line
	// as it reports the failure, so it may reach the output after the
	// response.
	deadline := time.Now().Add(10 * time.Second)
	for !loggedInvalidEvent(t, w.emulator.output.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no \"invocation failed\" record with errorType InvalidEvent and a requestId in the output:\n%s", w.scrubbed(w.emulator.output.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loggedInvalidEvent reports whether output contains the JSON record of a
// failed invocation with errorType InvalidEvent, and fails t for a line
// with that error that is not a JSON record.
func loggedInvalidEvent(t *testing.T, output string) bool {
	t.Helper()
	found := false
	for line := range strings.Lines(output) {
		if !strings.Contains(line, "InvalidEvent") {
			continue
		}
		var record struct {
			Message   string `json:"message"`
			ErrorType string `json:"errorType"`
			RequestID string `json:"requestId"`
		}
		if err := json.Unmarshal([]byte(line), &record); err != nil {
			t.Fatalf("a log line with the error is not a JSON record: %v: %s", err, line)
		}
		found = found || record.Message == "invocation failed" && record.ErrorType == "InvalidEvent" && record.RequestID != ""
	}
	return found
}
