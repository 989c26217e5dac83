package tests

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyturn/keyturn/keystore"
)

// Exit codes of `rotator rotate-now`.
const (
	exitPromoted = 0
	exitRejected = 3
)

// TestCLIRotateNow runs `rotator rotate-now` as a process against the
// Secrets Manager test server, which invokes the rotator under the emulator:
// the CLI starts the rotation and reports its outcome in its exit code.
func TestCLIRotateNow(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const name = "keyturn/e2e/cli"
	first := w.plant("first", true)
	second := w.plant("second", true)
	rejected := w.plant("rejected", false)
	w.createSecret(name, first)
	w.enableRotation(name)

	w.stage(name, second)
	res := w.rotateNow(name)
	if res.code != exitPromoted {
		t.Errorf("rotate-now with a valid staged key: exit code %d, want %d", res.code, exitPromoted)
	}
	w.assertKey(name, keystore.StageCurrent, second)
	w.assertKey(name, keystore.StagePrevious, first)

	w.stage(name, rejected)
	res = w.rotateNow(name)
	if res.code != exitRejected {
		t.Errorf("rotate-now with a rejected staged key: exit code %d, want %d", res.code, exitRejected)
	}
	w.assertKey(name, keystore.StageCurrent, second)
	w.assertKey(name, keystore.StageRejected, rejected)
}

// enableRotation turns on rotation with the rotator as the function, without
// rotating, and waits for Secrets Manager's configuration test to end.
func (w *world) enableRotation(name string) {
	w.t.Helper()
	w.rotate(&secretsmanager.RotateSecretInput{
		SecretId:          aws.String(name),
		RotationLambdaARN: aws.String(rotatorARN),
		RotationRules:     &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
		RotateImmediately: aws.Bool(false),
	})
	w.waitSettled(name)
	for _, inv := range w.invocations.list() {
		if inv.err != nil {
			w.t.Fatalf("configuration test: step %s failed: %s", inv.step, w.scrubbed(inv.err.Error()))
		}
	}
}

// rotateNow runs `rotator rotate-now` on a secret and waits until the
// rotation it started has ended, so the next step of a test cannot overlap
// a step still running.
func (w *world) rotateNow(name string) runResult {
	w.t.Helper()
	res := w.rotatorCLI("rotate-now", "--store", "aws://"+region, name)
	w.waitSettled(name)
	return res
}
