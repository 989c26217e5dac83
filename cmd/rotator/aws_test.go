package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/smtest"
	"github.com/keyturn/keyturn/keystore"
)

const testLambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:keyturn-rotator"

// awsEnv is a testEnv whose aws:// store is the Secrets Manager test server,
// with the rotation engine as its rotation function.
type awsEnv struct {
	*testEnv
	store  *keystore.AWSStore
	client *secretsmanager.Client
	logs   *syncBuffer

	mu    sync.Mutex
	block chan struct{} // if set, the invoker waits on it before each step
}

func newAWSEnv(t *testing.T) *awsEnv {
	t.Helper()
	e := &awsEnv{testEnv: newEnv(t), logs: &syncBuffer{}}
	var engine *rotation.Engine
	invoke := smtest.InvokerFunc(func(ctx context.Context, _ string, ev events.SecretsManagerSecretRotationEvent) error {
		if b := e.blocker(); b != nil {
			select {
			case <-b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		step, err := rotation.ParseStep(ev.Step)
		if err != nil {
			return err
		}
		return engine.Run(ctx, step, ev.SecretID, ev.ClientRequestToken)
	})
	_, url := smtest.Start(t, smtest.Options{Invoker: invoke, RetryAttempts: -1})
	e.client = secretsmanager.NewFromConfig(smtest.TestConfig(t, url))
	e.store = keystore.NewAWS(e.client, keystore.AWSOptions{RotationLambdaARN: testLambdaARN})
	engine = &rotation.Engine{
		Store:   e.store,
		Checker: provider.New(provider.Options{Policy: provider.NewPolicy(nil, true)}),
		Logger:  slog.New(slog.NewTextHandler(e.logs, nil)),
	}
	e.configure = func(a *app) {
		a.openAWS = func(context.Context, string) (keystore.Store, error) { return e.store, nil }
	}
	t.Cleanup(func() { assertNoCanary(t, "rotation function logs", e.logs.String()) })
	return e
}

func (e *awsEnv) blocker() chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.block
}

func (e *awsEnv) setBlocker(b chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.block = b
}

// createSecret creates a managed secret on the test server, as Terraform
// would.
func (e *awsEnv) createSecret(id string) {
	e.t.Helper()
	ctx := context.Background()
	tags := keystore.Settings{Provider: "openai", BaseURL: e.baseURL}.Tags()
	if _, err := e.store.Create(ctx, keystore.CreateInput{SecretID: id, Tags: tags}); err != nil {
		e.t.Fatal(err)
	}
	rules := keystore.RotationRules{ScheduleExpression: "rate(30 days)"}
	if err := e.store.SetRotation(ctx, id, keystore.Rotation{Enabled: true, Rules: rules}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *awsEnv) stage(id, key string) {
	e.t.Helper()
	e.mustRun(exitOK, "stage", id, "--store", "aws://us-east-1", "--file", e.writeFile("key", key))
}

func TestRotateNowAWSPromotes(t *testing.T) {
	e := newAWSEnv(t)
	e.createSecret("app/openai")
	e.stage("app/openai", canary)
	r := e.mustRun(exitOK, "rotate-now", "app/openai", "--store", "aws://us-east-1")
	assertContains(t, "stdout", r.stdout, "promoted app/openai version ")
	d, err := e.store.Describe(context.Background(), "app/openai")
	if err != nil {
		t.Fatal(err)
	}
	if d.VersionWithStage(keystore.StageCurrent) == "" || d.VersionWithStage(keystore.StagePending) != "" {
		t.Errorf("labels after rotation = %v", d.Versions)
	}
	// The rotation function consumes the staged key after the promotion.
	deadline := time.Now().Add(hangGuard)
	for e.statusAWS("app/openai").Staged != nil {
		if time.Now().After(deadline) {
			t.Fatal("the staged key was not consumed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *awsEnv) statusAWS(id string) secretStatus {
	e.t.Helper()
	saved := e.vars["KEYTURN_STORE"]
	e.vars["KEYTURN_STORE"] = "aws://us-east-1"
	defer func() { e.vars["KEYTURN_STORE"] = saved }()
	return e.status(id)
}

func TestRotateNowAWSRejected(t *testing.T) {
	e := newAWSEnv(t)
	e.createSecret("app/openai")
	e.stage("app/openai", "sk-not-known-to-the-provider")
	r := e.run("rotate-now", "app/openai", "--store", "aws://us-east-1")
	if r.code != exitRejected {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitRejected, r.stdout, r.stderr)
	}
	assertContains(t, "stdout", r.stdout, "failed step: testSecret")
	if st := e.statusAWS("app/openai"); st.LastFailure == nil || st.LastFailure.Class != "rejected" {
		t.Errorf("status last_failure = %+v", st.LastFailure)
	}
}

func TestRotateNowAWSNothingStaged(t *testing.T) {
	e := newAWSEnv(t)
	e.createSecret("app/openai")
	r := e.run("rotate-now", "app/openai", "--store", "aws://us-east-1")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "rotator: hint: stage the next key first")
	d, err := e.store.Describe(context.Background(), "app/openai")
	if err != nil {
		t.Fatal(err)
	}
	if p := d.VersionWithStage(keystore.StagePending); p != "" {
		t.Errorf("a doomed rotation was started: AWSPENDING on %s", p)
	}
}

func TestRotateNowAWSTimeoutAndNoWait(t *testing.T) {
	e := newAWSEnv(t)
	e.createSecret("app/openai")
	e.stage("app/openai", canary)
	release := make(chan struct{})
	e.setBlocker(release)

	r := e.run("rotate-now", "app/openai", "--store", "aws://us-east-1", "--timeout", "100ms")
	if r.code != exitInProgress {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitInProgress, r.stdout, r.stderr)
	}
	assertContains(t, "stdout", r.stdout, "rotation in progress: app/openai")

	// A second call finds the rotation still in progress.
	r = e.run("rotate-now", "app/openai", "--store", "aws://us-east-1")
	if r.code != exitInProgress {
		t.Errorf("second call: exit %d, want %d\n%s", r.code, exitInProgress, r.stderr)
	}
	if st := e.statusAWS("app/openai"); st.InProgress == nil {
		t.Errorf("status shows no rotation in progress")
	}
	e.setBlocker(nil)
	close(release)

	// The blocked rotation finishes; wait for it, then --no-wait returns
	// as soon as the next one has started.
	deadline := time.Now().Add(hangGuard)
	for e.statusAWS("app/openai").InProgress != nil {
		if time.Now().After(deadline) {
			t.Fatal("the released rotation did not finish")
		}
		time.Sleep(5 * time.Millisecond)
	}
	const next = "sk-no-wait-next-key-5c1d"
	e.provider.AddKey(next)
	e.stage("app/openai", next)
	r = e.run("rotate-now", "app/openai", "--store", "aws://us-east-1", "--no-wait", "--output", "json")
	if r.code != exitInProgress {
		t.Errorf("--no-wait: exit %d, want %d\n%s", r.code, exitInProgress, r.stderr)
	}
	assertContains(t, "stdout", r.stdout, `"outcome": "in_progress"`)
}
