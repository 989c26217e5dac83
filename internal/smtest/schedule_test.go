package smtest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyturn/keyturn/internal/smtest"
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// jan15 is a Tuesday, 10:30 UTC.
var jan15 = time.Date(2030, 1, 15, 10, 30, 0, 0, time.UTC)

func describe(t *testing.T, c *secretsmanager.Client, name string) *secretsmanager.DescribeSecretOutput {
	t.Helper()
	d, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeSecret %s: %v", name, err)
	}
	return d
}

func wantNextRotation(t *testing.T, d *secretsmanager.DescribeSecretOutput, want time.Time) {
	t.Helper()
	if d.NextRotationDate == nil {
		t.Fatalf("NextRotationDate is missing, want %v", want)
	}
	if !d.NextRotationDate.Equal(want) {
		t.Errorf("NextRotationDate = %v, want %v", d.NextRotationDate.UTC(), want)
	}
}

// configureRotation turns rotation on with rules and RotateImmediately=false,
// and waits for the test rotation that starts.
func configureRotation(t *testing.T, srv *smtest.Server, c *secretsmanager.Client, rules *types.RotationRulesType) {
	t.Helper()
	rotate(t, c, &secretsmanager.RotateSecretInput{
		SecretId: aws.String("app/key"), RotationLambdaARN: aws.String(lambda),
		RotationRules: rules, RotateImmediately: aws.Bool(false),
	})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}
}

func TestNextRotationBeforeFirstRotation(t *testing.T) {
	cases := map[string]struct {
		rules *types.RotationRulesType
		want  time.Time
	}{
		// Today's window opened at 04:00, before rotation was turned on.
		"daily cron": {&types.RotationRulesType{ScheduleExpression: aws.String("cron(0 4 * * ? *)")},
			time.Date(2030, 1, 16, 4, 0, 0, 0, time.UTC)},
		"cron on days of month": {&types.RotationRulesType{ScheduleExpression: aws.String("cron(0 16 1,15 * ? *)"),
			Duration: aws.String("8h")}, time.Date(2030, 1, 15, 16, 0, 0, 0, time.UTC)},
		"cron on a weekday": {&types.RotationRulesType{ScheduleExpression: aws.String("cron(0 9 ? * MON *)")},
			time.Date(2030, 1, 21, 9, 0, 0, 0, time.UTC)},
		// Hour rates open on the hour: 10:30 + 6h is in the 16:00 window.
		"rate in hours": {&types.RotationRulesType{ScheduleExpression: aws.String("rate(6 hours)")},
			time.Date(2030, 1, 15, 16, 0, 0, 0, time.UTC)},
		"rate in days": {&types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)")},
			time.Date(2030, 1, 25, 0, 0, 0, 0, time.UTC)},
		"AutomaticallyAfterDays": {&types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
			time.Date(2030, 2, 14, 0, 0, 0, 0, time.UTC)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			clk := newClock(jan15)
			srv, c, _ := newRotating(t, smtest.Options{Now: clk.Now})
			create(t, c, "app/key", "v1", tokenA)
			configureRotation(t, srv, c, tc.rules)

			d := describe(t, c, "app/key")
			if d.LastRotatedDate != nil {
				t.Errorf("LastRotatedDate = %v, want none before the first rotation", d.LastRotatedDate)
			}
			wantNextRotation(t, d, tc.want)

			out, err := c.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{})
			if err != nil {
				t.Fatalf("ListSecrets: %v", err)
			}
			if len(out.SecretList) != 1 || !aws.ToTime(out.SecretList[0].NextRotationDate).Equal(tc.want) {
				t.Errorf("ListSecrets entries = %+v, want one with NextRotationDate %v", out.SecretList, tc.want)
			}
		})
	}
}

func TestNextRotationCountsFromLastRotation(t *testing.T) {
	clk := newClock(jan15)
	srv, c, _ := newRotating(t, smtest.Options{Now: clk.Now})
	create(t, c, "app/key", "v1", tokenA)
	configureRotation(t, srv, c, &types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)")})

	rotatedAt := time.Date(2030, 1, 20, 9, 0, 0, 0, time.UTC)
	clk.Set(rotatedAt)
	rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key")})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}
	d := describe(t, c, "app/key")
	if !aws.ToTime(d.LastRotatedDate).Equal(rotatedAt) {
		t.Errorf("LastRotatedDate = %v, want %v", d.LastRotatedDate, rotatedAt)
	}
	wantNextRotation(t, d, time.Date(2030, 1, 30, 0, 0, 0, 0, time.UTC))

	overdue := time.Date(2030, 2, 2, 12, 0, 0, 0, time.UTC)
	clk.Set(overdue)
	wantNextRotation(t, describe(t, c, "app/key"), overdue)
}

func TestNextRotationCronWindowOpen(t *testing.T) {
	clk := newClock(jan15)
	srv, c, _ := newRotating(t, smtest.Options{Now: clk.Now})
	create(t, c, "app/key", "v1", tokenA)
	configureRotation(t, srv, c, &types.RotationRulesType{
		ScheduleExpression: aws.String("cron(0 4 * * ? *)"), Duration: aws.String("3h"),
	})

	// The window from 04:00 to 07:00 on Jan 16 is open and the secret has
	// not rotated in it, so the rotation is due now.
	inWindow := time.Date(2030, 1, 16, 5, 0, 0, 0, time.UTC)
	clk.Set(inWindow)
	wantNextRotation(t, describe(t, c, "app/key"), inWindow)

	rotate(t, c, &secretsmanager.RotateSecretInput{SecretId: aws.String("app/key")})
	if err := srv.WaitRotation(waitCtx(t), "app/key"); err != nil {
		t.Fatalf("WaitRotation: %v", err)
	}
	wantNextRotation(t, describe(t, c, "app/key"), time.Date(2030, 1, 17, 4, 0, 0, 0, time.UTC))
}

func TestNextRotationAbsentWhenOff(t *testing.T) {
	clk := newClock(jan15)
	srv, c, _ := newRotating(t, smtest.Options{Now: clk.Now})
	create(t, c, "app/key", "v1", tokenA)
	if d := describe(t, c, "app/key"); d.NextRotationDate != nil {
		t.Errorf("NextRotationDate = %v without rotation, want none", d.NextRotationDate)
	}

	configureRotation(t, srv, c, &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(7)})
	_, err := c.CancelRotateSecret(context.Background(), &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("app/key")})
	if err != nil {
		t.Fatalf("CancelRotateSecret: %v", err)
	}
	if d := describe(t, c, "app/key"); d.NextRotationDate != nil {
		t.Errorf("NextRotationDate = %v after CancelRotateSecret, want none", d.NextRotationDate)
	}
}
