package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyturn/keyturn/internal/smtest"
	"github.com/keyturn/keyturn/keystore"
)

const testLambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:keyturn-rotator"

func TestAWSStoreContract(t *testing.T) {
	runStoreContract(t, newAWSTestStore)
}

// newAWSTestStore returns an AWSStore on a fresh Secrets Manager test
// server whose rotation function does nothing, so BeginRotation leaves the
// empty AWSPENDING version.
func newAWSTestStore(t *testing.T) keystore.Store {
	s, _ := newAWSStoreAndServer(t)
	return s
}

func newAWSStoreAndServer(t *testing.T) (*keystore.AWSStore, *smtest.Server) {
	t.Helper()
	srv, url := smtest.Start(t, smtest.Options{})
	client := secretsmanager.NewFromConfig(smtest.TestConfig(t, url))
	return keystore.NewAWS(client, keystore.AWSOptions{RotationLambdaARN: testLambdaARN}), srv
}

func createAWSSecret(t *testing.T, s keystore.Store, id, value string) {
	t.Helper()
	in := keystore.CreateInput{SecretID: id}
	if value != "" {
		in.Value = keystore.NewSecret(value)
	}
	if _, err := s.Create(context.Background(), in); err != nil {
		t.Fatalf("Create %s: %v", id, err)
	}
}

func TestAWSErrorMapping(t *testing.T) {
	s, _ := newAWSStoreAndServer(t)
	ctx := context.Background()
	createAWSSecret(t, s, "keyturn/a", `{"api_key":"sk-a"}`)

	_, err := s.Get(ctx, "keyturn/a", keystore.ByStage(keystore.StagePrevious))
	wantAWSKind(t, err, keystore.ErrNotFound)
	var kerr *keystore.Error
	if !errors.As(err, &kerr) {
		t.Fatalf("err = %T, want *keystore.Error", err)
	}
	if kerr.Op != "GetSecretValue" || kerr.SecretID != "keyturn/a" || kerr.Stage != keystore.StagePrevious {
		t.Errorf("error fields = %q %q %q, want GetSecretValue keyturn/a AWSPREVIOUS", kerr.Op, kerr.SecretID, kerr.Stage)
	}
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("err does not wrap *types.ResourceNotFoundException: %v", err)
	}

	_, err = s.Create(ctx, keystore.CreateInput{SecretID: "keyturn/a"})
	wantAWSKind(t, err, keystore.ErrExists)

	err = s.UpdateStage(ctx, keystore.StageInput{SecretID: "keyturn/a", Stage: keystore.StageCurrent,
		MoveToVersion: "00000000-0000-4000-8000-000000000000"})
	wantAWSKind(t, err, keystore.ErrNotFound)

	err = s.Tag(ctx, "keyturn/a", map[string]string{"bad": "comma,value"})
	wantAWSKind(t, err, keystore.ErrInvalidParameter)

	if _, err := s.BeginRotation(ctx, "keyturn/a", ""); err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}
	_, err = s.BeginRotation(ctx, "keyturn/a", "")
	wantAWSKind(t, err, keystore.ErrInvalidRequest)
}

func TestAWSErrorFromInjectedTypes(t *testing.T) {
	cases := map[string]error{
		smtest.TypeDecryptionFailure: keystore.ErrDecryption,
		smtest.TypeInternal:          keystore.ErrUnavailable,
		smtest.TypeThrottling:        keystore.ErrUnavailable,
		smtest.TypeInvalidRequest:    keystore.ErrInvalidRequest,
		smtest.TypeLimitExceeded:     keystore.ErrInvalidRequest,
		"AccessDeniedException":      keystore.ErrUnavailable,
	}
	for typ, want := range cases {
		t.Run(typ, func(t *testing.T) {
			s, srv := newAWSStoreAndServer(t)
			createAWSSecret(t, s, "keyturn/a", `{"api_key":"sk-a"}`)
			srv.Fail("GetSecretValue", typ, -1)
			_, err := s.Get(context.Background(), "keyturn/a", keystore.Current())
			wantAWSKind(t, err, want)
		})
	}
}

func TestAWSUnavailableSaysWhatHappened(t *testing.T) {
	cases := map[string]string{
		smtest.TypeInternal:           "Secrets Manager returned a server error",
		smtest.TypeThrottling:         "Secrets Manager throttled the request",
		"AccessDeniedException":       "Secrets Manager denied access: check the IAM policy",
		"ExpiredTokenException":       "rejected the credentials because they expired",
		"UnrecognizedClientException": "rejected the credentials",
	}
	for typ, want := range cases {
		t.Run(typ, func(t *testing.T) {
			s, srv := newAWSStoreAndServer(t)
			createAWSSecret(t, s, "keyturn/a", `{"api_key":"sk-a"}`)
			srv.Fail("GetSecretValue", typ, -1)
			_, err := s.Get(context.Background(), "keyturn/a", keystore.Current())
			wantAWSKind(t, err, keystore.ErrUnavailable)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to contain %q", err, want)
			}
		})
	}
}

func TestAWSStoreUnavailable(t *testing.T) {
	s, srv := newAWSStoreAndServer(t)
	ctx := context.Background()
	createAWSSecret(t, s, "keyturn/a", `{"api_key":"sk-a"}`)

	srv.FailNext("GetSecretValue", smtest.TypeInternal)
	if _, err := s.Get(ctx, "keyturn/a", keystore.Current()); err != nil {
		t.Errorf("Get after one 500: %v, want the SDK's retry to succeed", err)
	}

	srv.Fail("", smtest.TypeInternal, -1)
	_, err := s.Get(ctx, "keyturn/a", keystore.Current())
	wantAWSKind(t, err, keystore.ErrUnavailable)
	_, err = s.List(ctx)
	wantAWSKind(t, err, keystore.ErrUnavailable)
}

func TestAWSStoreUnreachable(t *testing.T) {
	// Nothing listens on port 1 of the loopback address.
	cfg := smtest.TestConfig(t, "http://127.0.0.1:1")
	s := keystore.NewAWS(secretsmanager.NewFromConfig(cfg), keystore.AWSOptions{})
	_, err := s.Get(context.Background(), "keyturn/a", keystore.Current())
	wantAWSKind(t, err, keystore.ErrUnavailable)
	if want := "could not reach Secrets Manager (GetSecretValue keyturn/a stage AWSCURRENT). Check the network"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want it to start with %q", err, want)
	}
	var kerr *keystore.Error
	if !errors.As(err, &kerr) || kerr.SecretID != "keyturn/a" {
		t.Errorf("err = %T %v, want a *keystore.Error about keyturn/a", err, err)
	}
	if strings.Contains(err.Error(), "credentials") {
		t.Errorf("err = %q blames the credentials for a connection that failed", err)
	}
}

func TestAWSStoreCancelledContext(t *testing.T) {
	s, _ := newAWSStoreAndServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Describe(ctx, "keyturn/a")
	wantAWSKind(t, err, keystore.ErrUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
}

func TestAWSErrorsHideValue(t *testing.T) {
	const canary = "sk-aws-canary-7c1e0f"
	s, _ := newAWSStoreAndServer(t)
	ctx := context.Background()
	createAWSSecret(t, s, "keyturn/a", `{"api_key":"`+canary+`"}`)
	err := s.Put(ctx, keystore.PutInput{SecretID: "keyturn/a", Token: "tok-too-short",
		Value: keystore.NewSecret(`{"api_key":"` + canary + `"}`)})
	wantAWSKind(t, err, keystore.ErrInvalidParameter)
	if strings.Contains(err.Error(), canary) {
		t.Errorf("error text contains the value: %v", err)
	}
	err = s.Put(ctx, keystore.PutInput{SecretID: "keyturn/missing", Value: keystore.NewSecret(canary)})
	wantAWSKind(t, err, keystore.ErrNotFound)
	if strings.Contains(err.Error(), canary) {
		t.Errorf("error text contains the value: %v", err)
	}
}

func TestAWSPutEmptyValue(t *testing.T) {
	s, _ := newAWSStoreAndServer(t)
	err := s.Put(context.Background(), keystore.PutInput{SecretID: "keyturn/a"})
	wantAWSKind(t, err, keystore.ErrInvalidParameter)
}

func TestAWSSetRotation(t *testing.T) {
	s, srv := newAWSStoreAndServer(t)
	ctx := context.Background()
	createAWSSecret(t, s, "keyturn/a", `{"api_key":"sk-a"}`)
	rules := keystore.RotationRules{ScheduleExpression: "rate(7 days)", Duration: "3h"}

	if err := s.SetRotation(ctx, "keyturn/a", keystore.Rotation{Enabled: true, Rules: rules}); err != nil {
		t.Fatalf("SetRotation enable: %v", err)
	}
	d, err := s.Describe(ctx, "keyturn/a")
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if !d.Rotation.Enabled || d.Rotation.Rules != rules || d.Rotation.LambdaARN != testLambdaARN {
		t.Errorf("rotation = %+v, want enabled with %+v and %s", d.Rotation, rules, testLambdaARN)
	}
	if d.VersionWithStage(keystore.StagePending) != "" {
		t.Errorf("AWSPENDING remains after SetRotation's test run: %v", d.Versions)
	}
	recs := srv.Rotations("keyturn/a")
	if len(recs) != 1 || !recs[0].Test {
		t.Errorf("rotation log = %+v, want one test rotation", recs)
	}

	if err := s.SetRotation(ctx, "keyturn/a", keystore.Rotation{}); err != nil {
		t.Fatalf("SetRotation disable: %v", err)
	}
	d, err = s.Describe(ctx, "keyturn/a")
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if d.Rotation.Enabled {
		t.Error("rotation is still enabled after SetRotation(disabled)")
	}
}

// testClock is a settable time source for smtest.Options.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newAWSStoreWithClock(t *testing.T, clk *testClock) *keystore.AWSStore {
	t.Helper()
	_, url := smtest.Start(t, smtest.Options{Now: clk.Now})
	client := secretsmanager.NewFromConfig(smtest.TestConfig(t, url))
	return keystore.NewAWS(client, keystore.AWSOptions{RotationLambdaARN: testLambdaARN})
}

func TestAWSDescribeNextRotation(t *testing.T) {
	// 2030-01-15 is a Tuesday.
	clk := &testClock{now: time.Date(2030, 1, 15, 10, 30, 0, 0, time.UTC)}
	s := newAWSStoreWithClock(t, clk)
	ctx := context.Background()
	createAWSSecret(t, s, "keyturn/a", `{"api_key":"sk-a"}`)
	d, err := s.Describe(ctx, "keyturn/a")
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if !d.NextRotation.IsZero() {
		t.Errorf("NextRotation = %v without rotation, want zero", d.NextRotation)
	}

	rules := keystore.RotationRules{ScheduleExpression: "cron(0 16 ? * FRI *)", Duration: "2h"}
	if err := s.SetRotation(ctx, "keyturn/a", keystore.Rotation{Enabled: true, Rules: rules}); err != nil {
		t.Fatalf("SetRotation: %v", err)
	}
	want := time.Date(2030, 1, 18, 16, 0, 0, 0, time.UTC)
	if d, err = s.Describe(ctx, "keyturn/a"); err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if !d.NextRotation.Equal(want) {
		t.Errorf("Describe NextRotation = %v, want %v", d.NextRotation, want)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 1 || !list[0].NextRotation.Equal(want) {
		t.Errorf("List = %+v, want one secret with NextRotation %v", list, want)
	}
}

func TestAWSPutVersionLimit(t *testing.T) {
	const canary = "sk-aws-limit-canary-52d9"
	clk := &testClock{now: time.Date(2030, 1, 15, 10, 30, 0, 0, time.UTC)}
	s := newAWSStoreWithClock(t, clk)
	ctx := context.Background()
	createAWSSecret(t, s, "keyturn/a", `{"api_key":"sk-a"}`)
	for i := range 99 {
		err := s.Put(ctx, keystore.PutInput{SecretID: "keyturn/a", Token: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i),
			Value: keystore.NewSecret(fmt.Sprintf(`{"api_key":"sk-%d"}`, i))})
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}

	in := keystore.PutInput{SecretID: "keyturn/a", Token: "ffffffff-0000-4000-8000-000000000000",
		Value: keystore.NewSecret(`{"api_key":"` + canary + `"}`)}
	err := s.Put(ctx, in)
	wantAWSKind(t, err, keystore.ErrInvalidRequest)
	var limit *types.LimitExceededException
	if !errors.As(err, &limit) {
		t.Errorf("err does not wrap *types.LimitExceededException: %v", err)
	}
	if !strings.Contains(err.Error(), "100 versions per secret") || !strings.Contains(err.Error(), "keyturn/a") {
		t.Errorf("error %q does not name the secret and the version quota", err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Errorf("error text contains the value: %v", err)
	}

	clk.Advance(24 * time.Hour)
	if err := s.Put(ctx, in); err != nil {
		t.Errorf("Put once the oldest version is 24 hours old: %v", err)
	}
}

func TestAWSSetRotationInvalidRules(t *testing.T) {
	s, _ := newAWSStoreAndServer(t)
	createAWSSecret(t, s, "keyturn/a", `{"api_key":"sk-a"}`)
	err := s.SetRotation(context.Background(), "keyturn/a", keystore.Rotation{
		Enabled: true, Rules: keystore.RotationRules{ScheduleExpression: "rate(1 hours)"},
	})
	wantAWSKind(t, err, keystore.ErrInvalidParameter)
}

func TestAWSBeginRotationWithoutFunction(t *testing.T) {
	_, url := smtest.Start(t, smtest.Options{})
	s := keystore.NewAWS(secretsmanager.NewFromConfig(smtest.TestConfig(t, url)), keystore.AWSOptions{})
	createAWSSecret(t, s, "keyturn/a", `{"api_key":"sk-a"}`)
	_, err := s.BeginRotation(context.Background(), "keyturn/a", "")
	wantAWSKind(t, err, keystore.ErrInvalidRequest)
}

func TestAWSBeginRotationInvokesFunction(t *testing.T) {
	steps := make(chan string, 8)
	inv := smtest.InvokerFunc(func(_ context.Context, arn string, e events.SecretsManagerSecretRotationEvent) error {
		if arn != testLambdaARN {
			t.Errorf("invoked %s, want %s", arn, testLambdaARN)
		}
		steps <- e.Step
		return nil
	})
	srv, url := smtest.Start(t, smtest.Options{Invoker: inv})
	s := keystore.NewAWS(secretsmanager.NewFromConfig(smtest.TestConfig(t, url)),
		keystore.AWSOptions{RotationLambdaARN: testLambdaARN})
	createAWSSecret(t, s, "keyturn/a", `{"api_key":"sk-a"}`)

	id, err := s.BeginRotation(context.Background(), "keyturn/a", "")
	if err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.WaitRotation(ctx, "keyturn/a"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}
	if n := len(steps); n != 4 {
		t.Errorf("function invoked %d times, want 4", n)
	}
	rec := srv.Rotations("keyturn/a")
	if len(rec) != 1 || rec[0].VersionID != id {
		t.Errorf("rotation log = %+v, want one rotation of version %s", rec, id)
	}
}

func TestOpenAWSUsesEndpointEnv(t *testing.T) {
	_, url := smtest.Start(t, smtest.Options{})
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", url)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/credentials")
	s, err := keystore.OpenAWS(context.Background(), "us-east-1")
	if err != nil {
		t.Fatalf("OpenAWS: %v", err)
	}
	createAWSSecret(t, s, "keyturn/a", `{"api_key":"sk-a"}`)
	if _, err := s.Get(context.Background(), "keyturn/a", keystore.Current()); err != nil {
		t.Fatalf("Get through OpenAWS: %v", err)
	}
}

func wantAWSKind(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
	var kerr *keystore.Error
	if !errors.As(err, &kerr) {
		t.Fatalf("err = %T, want *keystore.Error", err)
	}
}
