package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/keystore"
)

func TestRotateNowAWSNoRotationFunction(t *testing.T) {
	e := newAWSEnv(t)
	// The CLI's store, like keystore.OpenAWS's, names no rotation function
	// of its own, and the secret has none: Terraform never set one.
	cli := keystore.NewAWS(e.client, keystore.AWSOptions{})
	e.configure = func(a *app) {
		a.openAWS = func(context.Context, string) (keystore.Store, error) { return cli, nil }
	}
	tags := keystore.Settings{Provider: "openai", BaseURL: e.baseURL}.Tags()
	if _, err := cli.Create(context.Background(), keystore.CreateInput{SecretID: "prod/norot", Tags: tags}); err != nil {
		t.Fatal(err)
	}
	e.stage("prod/norot", canary)

	r := e.run("rotate-now", "prod/norot", "--store", "aws://us-east-1")
	if r.code != exitError {
		t.Errorf("exit %d, want %d\n%s\n%s", r.code, exitError, r.stdout, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "the secret has no rotation function")
	assertContains(t, "stderr", r.stderr, "rotator: hint: set one with Terraform")
	for _, wrong := range []string{"in progress", "abandon"} {
		if strings.Contains(r.stdout+r.stderr, wrong) {
			t.Errorf("output for a secret without a rotation function contains %q:\n%s%s", wrong, r.stdout, r.stderr)
		}
	}
}

// TestRotateNowAWSUnfinishedSaysWhy fails every provider check, so the
// rotation stays pending in Secrets Manager past the wait.
func TestRotateNowAWSUnfinishedSaysWhy(t *testing.T) {
	e := newAWSEnv(t)
	e.createSecret("app/openai")
	e.stage("app/openai", canary)
	e.provider.SetFault("GET /openai/v1/models", fakeprovider.Fault{Status: http.StatusServiceUnavailable})

	r := e.run("rotate-now", "app/openai", "--store", "aws://us-east-1", "--timeout", "1s")
	if r.code != exitInProgress {
		t.Errorf("exit %d, want %d\n%s\n%s", r.code, exitInProgress, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"the rotation has not finished after 1s",
		"which contains the new key: a later step (setSecret, testSecret or finishSecret) has not succeeded yet",
		"Secrets Manager retries a failed rotation on its own",
		"the rotation function's logs show why (CloudWatch log group /aws/lambda/keyturn-rotator)",
	} {
		assertContains(t, "stderr", r.stderr, want)
	}

	text := e.run("status", "app/openai", "--store", "aws://us-east-1").stdout
	assertContains(t, "status", text, "not finished; Secrets Manager retries a failed rotation")
	if strings.Contains(text, "until it ends") {
		t.Errorf("status promises the rotation ends:\n%s", text)
	}
}
