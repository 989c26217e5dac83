package tests

import (
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/keystore"
)

// TestCanaryNeverInOutput plants canary keys as AWSCURRENT and under
// KEYTURN_STAGED and drives the rotator through the paths that touch them,
// failing ones above all. checkNoLeaks then searches the emulator's and the
// rotator's output, every handler error body and the CLI's output for the
// keys.
func TestCanaryNeverInOutput(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const name = "keyturn/e2e/canary"
	current := w.plant("current canary", true)
	currentVersion := w.createSecret(name, current)
	// The configuration test reads and checks the current key.
	w.enableRotation(name)

	// Direct invocations come before any rotation, so that none overlaps a
	// step that Secrets Manager invokes.
	stagedVersion := w.stage(name, w.plant("staged canary", false))
	invalid := []events.SecretsManagerSecretRotationEvent{
		{Step: "rotateEverything", SecretID: name, ClientRequestToken: currentVersion},
		{Step: "createSecret", SecretID: name, ClientRequestToken: stagedVersion},
		{Step: "finishSecret", SecretID: name, ClientRequestToken: "00000000-0000-4000-8000-000000000000"},
	}
	for _, event := range invalid {
		status, body := w.invoke(event)
		if status != http.StatusOK {
			t.Errorf("step %s: status = %d, want 200", event.Step, status)
		}
		w.parseFunctionError(body)
	}

	// The provider rejects the staged canary: the failure is recorded,
	// logged and returned to Secrets Manager.
	token := w.rotate(&secretsmanager.RotateSecretInput{SecretId: aws.String(name)})
	w.waitRejected(name)
	failure := w.value(name, keystore.StageRejected).LastFailure
	assertFailure(t, failure, token)
	if failure != nil {
		w.collect("last_failure.reason", failure.Reason)
	}

	w.stage(name, w.plant("CLI staged canary", false))
	if res := w.rotateNow(name); res.code != exitRejected {
		t.Errorf("rotate-now with a rejected canary: exit code %d, want %d", res.code, exitRejected)
	}

	// A staged value that does not parse contains a key in its text, so the
	// error about it must not quote the text.
	malformed := w.plant("malformed staged canary", true)
	w.stageRaw(name, `{"api_key": "`+malformed+`", "created_at": "`+malformed+`"}`)
	if res := w.rotateNow(name); res.code == exitPromoted {
		t.Errorf("rotate-now with a malformed staged value: exit code 0, want a failure")
	}
	w.assertKey(name, keystore.StageCurrent, current)
}
