package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/smtest"
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
		"which contains the new key, so a later step (setSecret, testSecret or finishSecret) has not succeeded yet",
		"rotator: hint: Secrets Manager retries a failed rotation on its own",
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

// TestRotateNowAWSConfigFailureSaysWhy rotates a secret whose base URL
// answers 404: the rotation function fails with a configuration error, and
// rotate-now says where to read why and how to fix the base URL.
func TestRotateNowAWSConfigFailureSaysWhy(t *testing.T) {
	e := newAWSEnv(t)
	e.baseURL = strings.Replace(e.baseURL, "/openai/v1", "/missing/v1", 1)
	e.createSecret("app/openai")
	e.stage("app/openai", canary)
	r := e.run("rotate-now", "app/openai", "--store", "aws://us-east-1")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitError, r.stdout, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "the rotation ended without promoting the version")
	assertContains(t, "stderr", r.stderr, "rotator: hint: the rotation function's logs show why (CloudWatch log group /aws/lambda/keyturn-rotator)")
	assertContains(t, "stderr", r.stderr, "the secret's keyturn:base-url, which must be the provider's API root")
	assertContains(t, "stderr", r.stderr, "change the secret's tag in Terraform")
}

// TestStageUnreachableStoreHint stages on an AWS store that does not
// answer: the hint is to retry, not to drop --validate, which was not given.
func TestStageUnreachableStoreHint(t *testing.T) {
	e := newEnv(t)
	store := keystore.NewAWS(secretsmanager.NewFromConfig(smtest.TestConfig(t, deadEndpoint(t))), keystore.AWSOptions{})
	e.configure = func(a *app) {
		a.openAWS = func(context.Context, string) (keystore.Store, error) { return store, nil }
	}
	r := e.run("stage", "app/openai", "--store", "aws://us-east-1", "--file", e.writeFile("key", canary))
	if r.code != exitTransient {
		t.Errorf("exit %d, want %d\n%s", r.code, exitTransient, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "rotator: hint: the store could not be reached; retry later")
	if strings.Contains(r.stderr, "--validate") {
		t.Errorf("the hint speaks of --validate, which was not given:\n%s", r.stderr)
	}
}

// deadEndpoint returns the URL of a 127.0.0.1 port that refuses
// connections: a listener's port, closed again.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	return url
}
