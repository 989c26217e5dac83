package smtest_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyturn/keyturn/internal/smtest"
)

// templateRotator is a rotation function in the shape of AWS's templates:
// createSecret writes the new value under the token, finishSecret moves
// AWSCURRENT to it and removes AWSPENDING.
type templateRotator struct {
	client *secretsmanager.Client
	value  string

	mu     sync.Mutex
	events []events.SecretsManagerSecretRotationEvent
	failAt map[string]int // step -> how many more times to fail it
}

func (r *templateRotator) Invoke(ctx context.Context, _ string, e events.SecretsManagerSecretRotationEvent) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	if r.failAt[e.Step] > 0 {
		r.failAt[e.Step]--
		r.mu.Unlock()
		return errors.New("injected step failure")
	}
	r.mu.Unlock()
	switch e.Step {
	case smtest.StepCreateSecret:
		_, err := r.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId: aws.String(e.SecretID), VersionId: aws.String(e.ClientRequestToken), VersionStage: aws.String("AWSPENDING"),
		})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			return err
		}
		_, err = r.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(e.SecretID), ClientRequestToken: aws.String(e.ClientRequestToken),
			SecretString: aws.String(r.value), VersionStages: []string{"AWSPENDING"},
		})
		return err
	case smtest.StepFinishSecret:
		return r.finish(ctx, e)
	}
	return nil
}

func (r *templateRotator) finish(ctx context.Context, e events.SecretsManagerSecretRotationEvent) error {
	d, err := r.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(e.SecretID)})
	if err != nil {
		return err
	}
	current := ""
	for id, st := range d.VersionIdsToStages {
		if slices.Contains(st, "AWSCURRENT") {
			current = id
		}
	}
	_, err = r.client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(e.SecretID), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(e.ClientRequestToken), RemoveFromVersionId: opt(current),
	})
	if err != nil {
		return err
	}
	_, err = r.client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(e.SecretID), VersionStage: aws.String("AWSPENDING"),
		RemoveFromVersionId: aws.String(e.ClientRequestToken),
	})
	return err
}

func (r *templateRotator) steps() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, e := range r.events {
		s = append(s, e.Step)
	}
	return s
}

func newRotating(t *testing.T, opts smtest.Options) (*smtest.Server, *secretsmanager.Client, *templateRotator) {
	t.Helper()
	rot := &templateRotator{value: "v2", failAt: map[string]int{}}
	opts.Invoker = rot
	srv, c := newClient(t, opts)
	rot.client = c
	return srv, c, rot
}

func rotate(t *testing.T, c *secretsmanager.Client, in *secretsmanager.RotateSecretInput) string {
	t.Helper()
	out, err := c.RotateSecret(context.Background(), in)
	if err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	return aws.ToString(out.VersionId)
}

func TestRotationFlow(t *testing.T) {
	srv, c, rot := newRotating(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)

	id := rotate(t, c, &secretsmanager.RotateSecretInput{
		SecretId: aws.String("app/key"), ClientRequestToken: aws.String(tokenB), RotationLambdaARN: aws.String(lambda),
		RotationRules: &types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)")},
	})
	if id != tokenB {
		t.Errorf("VersionId = %s, want the token %s", id, tokenB)
	}
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}

	want := []string{"createSecret", "setSecret", "testSecret", "finishSecret"}
	if got := rot.steps(); !slices.Equal(got, want) {
		t.Errorf("steps = %v, want %v", got, want)
	}
	if v, err := getValue(c, "app/key", "", ""); err != nil || v != "v2" {
		t.Errorf("AWSCURRENT = %q, %v; want v2", v, err)
	}
	got := stages(t, c, "app/key")
	wantStages(t, got, tokenB, "AWSCURRENT")
	wantStages(t, got, tokenA, "AWSPREVIOUS")

	d, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/key")})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if !aws.ToBool(d.RotationEnabled) || aws.ToString(d.RotationLambdaARN) != lambda {
		t.Errorf("rotation = enabled %v lambda %q, want enabled with %s", aws.ToBool(d.RotationEnabled), aws.ToString(d.RotationLambdaARN), lambda)
	}
	if d.LastRotatedDate == nil || d.NextRotationDate == nil {
		t.Fatalf("LastRotatedDate = %v, NextRotationDate = %v; want both", d.LastRotatedDate, d.NextRotationDate)
	}
	// rate(N days) windows open at midnight UTC.
	y, m, day := d.LastRotatedDate.UTC().Date()
	if want := time.Date(y, m, day+10, 0, 0, 0, 0, time.UTC); !d.NextRotationDate.Equal(want) {
		t.Errorf("NextRotationDate = %v, want %v: midnight 10 days after LastRotatedDate %v",
			d.NextRotationDate.UTC(), want, d.LastRotatedDate.UTC())
	}
}

func TestRotationEventCarriesARN(t *testing.T) {
	srv, c, rot := newRotating(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key"), RotationLambdaARN: aws.String(lambda)})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}
	rot.mu.Lock()
	defer rot.mu.Unlock()
	e := rot.events[0]
	if !strings.HasPrefix(e.SecretID, "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/key-") {
		t.Errorf("event SecretId = %s, want the secret's ARN", e.SecretID)
	}
	if e.RotationToken == "" {
		t.Error("event RotationToken is empty")
	}
}

func TestRotateWithoutLambda(t *testing.T) {
	_, c, _ := newRotating(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	_, err := c.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key")})
	wantCode(t, err, "InvalidRequestException")
}

func TestRotateStoredLambda(t *testing.T) {
	srv, c, _ := newRotating(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key"), RotationLambdaARN: aws.String(lambda)})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key")})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("second rotation with the stored function: %v", err)
	}
	if n := len(srv.Rotations("app/key")); n != 2 {
		t.Errorf("rotation log has %d entries, want 2", n)
	}
}

func TestRotateRefusedWhileInProgress(t *testing.T) {
	srv, c := newClient(t, smtest.Options{}) // no invoker: AWSPENDING stays empty
	create(t, c, "app/key", "v1", tokenA)
	id := rotate(t, c, &secretsmanager.RotateSecretInput{
		SecretId: aws.String("app/key"), RotationLambdaARN: aws.String(lambda), ClientRequestToken: aws.String(tokenB),
	})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}

	_, err := c.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key")})
	wantCode(t, err, "InvalidRequestException")
	if !strings.Contains(err.Error(), "A previous rotation isn't complete. That rotation will be reattempted.") {
		t.Errorf("err = %v, want AWS's message", err)
	}
	_, err = getValue(c, "app/key", id, "AWSPENDING")
	wantCode(t, err, "ResourceNotFoundException")

	put(t, c, "app/key", "v2", id, "AWSPENDING")
	if v, err := getValue(c, "app/key", "", "AWSPENDING"); err != nil || v != "v2" {
		t.Errorf("AWSPENDING after filling = %q, %v; want v2", v, err)
	}
	_, err = c.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("app/key"), ClientRequestToken: aws.String(id),
		SecretString: aws.String("v3"), VersionStages: []string{"AWSPENDING"},
	})
	wantCode(t, err, "ResourceExistsException")
}

func TestRotateUnblockedByRemovingPending(t *testing.T) {
	srv, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	id := rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key"), RotationLambdaARN: aws.String(lambda)})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}
	_, err := c.UpdateSecretVersionStage(context.Background(), &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("app/key"), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(id),
	})
	if err != nil {
		t.Fatalf("remove AWSPENDING: %v", err)
	}
	rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key")})
}

func TestPutCurrentAbandonsRotation(t *testing.T) {
	srv, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	id := rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key"), RotationLambdaARN: aws.String(lambda)})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}
	put(t, c, "app/key", "manual", tokenC)
	if _, ok := stages(t, c, "app/key")[id]; ok {
		t.Errorf("version %s kept AWSPENDING after a manual PutSecretValue", id)
	}
	rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key")})
}

func TestRotateImmediatelyFalse(t *testing.T) {
	srv, c, rot := newRotating(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	id := rotate(t, c, &secretsmanager.RotateSecretInput{
		SecretId: aws.String("app/key"), RotationLambdaARN: aws.String(lambda), RotateImmediately: aws.Bool(false),
		RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}

	if got := rot.steps(); !slices.Equal(got, []string{"testSecret"}) {
		t.Errorf("steps = %v, want [testSecret]", got)
	}
	got := stages(t, c, "app/key")
	if _, ok := got[id]; ok {
		t.Errorf("test version %s still has labels: %v", id, got)
	}
	wantStages(t, got, tokenA, "AWSCURRENT")
	d, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/key")})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if !aws.ToBool(d.RotationEnabled) || aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) != 30 {
		t.Errorf("rotation = enabled %v rules %+v, want enabled every 30 days", aws.ToBool(d.RotationEnabled), d.RotationRules)
	}
	if d.LastRotatedDate != nil {
		t.Errorf("LastRotatedDate = %v, want none after a test rotation", d.LastRotatedDate)
	}
	if rec := srv.Rotations("app/key"); len(rec) != 1 || !rec[0].Test || rec[0].Outcome != smtest.OutcomeTestRotationSucceeded {
		t.Errorf("rotation log = %+v, want one successful test rotation", rec)
	}
	rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key")})
}

func TestRotationRetriesFailedStep(t *testing.T) {
	srv, c, rot := newRotating(t, smtest.Options{})
	rot.failAt[smtest.StepTestSecret] = 1
	create(t, c, "app/key", "v1", tokenA)
	rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key"), RotationLambdaARN: aws.String(lambda)})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}
	rec := srv.Rotations("app/key")[0]
	if rec.Attempts != 2 {
		t.Errorf("attempts = %d, want 2", rec.Attempts)
	}
	want := []string{"createSecret", "setSecret", "testSecret", "createSecret", "setSecret", "testSecret", "finishSecret"}
	if !slices.Equal(rec.Steps, want) {
		t.Errorf("steps = %v, want %v", rec.Steps, want)
	}
}

func TestRotationFailsAfterRetries(t *testing.T) {
	srv, c, rot := newRotating(t, smtest.Options{RetryAttempts: 2})
	rot.failAt[smtest.StepSetSecret] = 10
	create(t, c, "app/key", "v1", tokenA)
	rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key"), RotationLambdaARN: aws.String(lambda)})

	err := srv.WaitRotation(waitCtx(t), "app/key")
	if err == nil || !strings.Contains(err.Error(), "setSecret") {
		t.Fatalf("WaitRotation = %v, want the setSecret failure", err)
	}
	rec := srv.Rotations("app/key")[0]
	if rec.Attempts != 3 || rec.Outcome != smtest.OutcomeRotationFailed {
		t.Errorf("attempts = %d outcome = %s, want 3 and %s", rec.Attempts, rec.Outcome, smtest.OutcomeRotationFailed)
	}
	if v, err := getValue(c, "app/key", "", ""); err != nil || v != "v1" {
		t.Errorf("AWSCURRENT = %q, %v; want v1 unchanged", v, err)
	}
}

func TestRotationRulesValidation(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	cases := map[string]struct {
		rules *types.RotationRulesType
		want  string // part of the message
	}{
		"both": {&types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(1), ScheduleExpression: aws.String("rate(1 day)")},
			"You cannot specify both rotation frequency and schedule expression together."},
		"neither":   {&types.RotationRulesType{Duration: aws.String("2h")}, "no schedule is set"},
		"zero days": {&types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(0)}, "AutomaticallyAfterDays 0"},
		"1001 days": {&types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(1001)}, "AutomaticallyAfterDays 1001"},
		"every 2 hours": {&types.RotationRulesType{ScheduleExpression: aws.String("rate(2 hours)")},
			`"rate(2 hours)"`},
		"minutes":    {&types.RotationRulesType{ScheduleExpression: aws.String("rate(300 minutes)")}, `"rate(300 minutes)"`},
		"not a rule": {&types.RotationRulesType{ScheduleExpression: aws.String("daily")}, `"daily"`},
		"bad duration": {&types.RotationRulesType{ScheduleExpression: aws.String("rate(1 day)"), Duration: aws.String("25h")},
			`"25h"`},
		"cron minutes":  {&types.RotationRulesType{ScheduleExpression: aws.String("cron(30 4 * * ? *)")}, `"cron(30 4 * * ? *)"`},
		"cron no ?":     {&types.RotationRulesType{ScheduleExpression: aws.String("cron(0 4 * * * *)")}, `"cron(0 4 * * * *)"`},
		"cron 5 fields": {&types.RotationRulesType{ScheduleExpression: aws.String("cron(0 4 * * ?)")}, `"cron(0 4 * * ?)"`},
		"cron hourly": {&types.RotationRulesType{ScheduleExpression: aws.String("cron(0 */2 * * ? *)")},
			`"cron(0 */2 * * ? *)"`},
		"cron window past midnight": {&types.RotationRulesType{ScheduleExpression: aws.String("cron(0 20 * * ? *)"),
			Duration: aws.String("6h")}, `"6h"`},
		"cron never fires": {&types.RotationRulesType{ScheduleExpression: aws.String("cron(0 4 31 2 ? *)")},
			`"cron(0 4 31 2 ? *)"`},
	}
	for name, tc := range cases {
		_, err := c.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{
			SecretId: aws.String("app/key"), RotationLambdaARN: aws.String(lambda), RotationRules: tc.rules,
		})
		if err == nil {
			t.Errorf("%s: RotateSecret succeeded, want InvalidParameterException", name)
			continue
		}
		wantCode(t, err, "InvalidParameterException")
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not contain %q", name, err, tc.want)
		}
	}

	d, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/key")})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if aws.ToBool(d.RotationEnabled) || d.RotationRules != nil {
		t.Errorf("rotation = enabled %v rules %+v after rejected rules, want neither", aws.ToBool(d.RotationEnabled), d.RotationRules)
	}
}

func TestCancelRotateSecret(t *testing.T) {
	srv, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	id := rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key"), RotationLambdaARN: aws.String(lambda)})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}
	out, err := c.CancelRotateSecret(context.Background(), &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("app/key")})
	if err != nil {
		t.Fatalf("CancelRotateSecret: %v", err)
	}
	if aws.ToString(out.VersionId) != id {
		t.Errorf("VersionId = %s, want the pending version %s", aws.ToString(out.VersionId), id)
	}
	d, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/key")})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if aws.ToBool(d.RotationEnabled) {
		t.Error("rotation is still enabled")
	}
	wantStages(t, d.VersionIdsToStages, id, "AWSPENDING")
}

func TestWaitRotationWithoutRotation(t *testing.T) {
	srv, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	if err := srv.WaitRotation(waitCtx(t), "app/key"); !errors.Is(err, smtest.ErrNoRotation) {
		t.Errorf("WaitRotation = %v, want ErrNoRotation", err)
	}
}
