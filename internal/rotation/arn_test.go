package rotation_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/smtest"
	"github.com/keyturn/keyturn/keystore"
)

// Secrets Manager's rotation events name the secret by its ARN. The
// commands an error suggests name it by its name, which is what an
// operator types.
func TestAdviceNamesSecretNotARN(t *testing.T) {
	e := newEnv(t)
	stepErrs := make(chan error, 16)
	engine := &rotation.Engine{Checker: e.engine.Checker, Logger: e.engine.Logger}
	_, url := smtest.Start(t, smtest.Options{
		RetryAttempts: -1,
		Invoker: smtest.InvokerFunc(func(ctx context.Context, _ string, ev events.SecretsManagerSecretRotationEvent) error {
			if !strings.HasPrefix(ev.SecretID, "arn:") {
				t.Errorf("event SecretId %q, want an ARN", ev.SecretID)
			}
			step, err := rotation.ParseStep(ev.Step)
			if err == nil {
				err = engine.Run(ctx, step, ev.SecretID, ev.ClientRequestToken)
			}
			if step == rotation.CreateSecret {
				stepErrs <- err
			}
			return err
		}),
	})
	store := keystore.NewAWS(secretsmanager.NewFromConfig(smtest.TestConfig(t, url)), keystore.AWSOptions{})
	engine.Store = store

	ctx := ctxFor(t)
	const name = "prod/openai"
	if _, err := store.Create(ctx, keystore.CreateInput{SecretID: name, Tags: e.tags("openai")}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	err := store.SetRotation(ctx, name, keystore.Rotation{
		Enabled: true, Rules: keystore.RotationRules{AutomaticallyAfterDays: 30}, LambdaARN: lambdaARN,
	})
	if err != nil {
		t.Fatalf("SetRotation: %v", err)
	}
	if _, err := store.BeginRotation(ctx, name, ""); err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}

	var stepErr error
	select {
	case stepErr = <-stepErrs:
	case <-ctx.Done():
		t.Fatal("createSecret never ran")
	}
	if !errors.Is(stepErr, rotation.ErrNothingToPromote) {
		t.Fatalf("createSecret: err = %v, want ErrNothingToPromote", stepErr)
	}
	if want := "'rotator stage " + name + " --file KEYFILE'"; !strings.Contains(stepErr.Error(), want) {
		t.Errorf("error %q does not suggest %s", stepErr, want)
	}
	if strings.Contains(stepErr.Error(), "rotator stage arn:") {
		t.Errorf("error %q suggests a command with the ARN", stepErr)
	}
}
