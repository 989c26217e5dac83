package keystore

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Polling of DescribeSecret while SetRotation waits for the test rotation.
const (
	firstTestPoll = 20 * time.Millisecond
	maxTestPoll   = time.Second
)

// BeginRotation starts a rotation with RotateSecret, which creates the empty
// AWSPENDING version under token and invokes the rotation function, and
// returns the new version's id.
func (s *AWSStore) BeginRotation(ctx context.Context, secretID, token string) (string, error) {
	in := &secretsmanager.RotateSecretInput{
		SecretId:           aws.String(secretID),
		ClientRequestToken: optional(token),
	}
	if s.opts.RotationLambdaARN != "" {
		d, err := s.Describe(ctx, secretID)
		if err != nil {
			return "", err
		}
		if d.Rotation.LambdaARN == "" {
			in.RotationLambdaARN = aws.String(s.opts.RotationLambdaARN)
		}
	}
	out, err := s.client.RotateSecret(ctx, in)
	if err != nil {
		return "", awsError("RotateSecret", secretID, token, StagePending, err)
	}
	return aws.ToString(out.VersionId), nil
}

// SetRotation stores the rotation configuration. Enabling calls
// RotateSecret with RotateImmediately=false, so Secrets Manager stores the
// rules and function and runs only testSecret; the first rotation follows
// the schedule. Disabling calls CancelRotateSecret, which leaves the labels
// as they are.
//
// Enabling waits up to TestRotationWait for the test run to take
// AWSPENDING off its version, so that a BeginRotation right after does not
// find a rotation in progress. A test still running after that, or a
// DescribeSecret that fails meanwhile, is logged rather than returned: the
// configuration is stored either way.
func (s *AWSStore) SetRotation(ctx context.Context, secretID string, r Rotation) error {
	if !r.Enabled {
		_, err := s.client.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String(secretID)})
		if err != nil {
			return awsError("CancelRotateSecret", secretID, "", "", err)
		}
		return nil
	}
	lambda := r.LambdaARN
	if lambda == "" {
		lambda = s.opts.RotationLambdaARN
	}
	out, err := s.client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:          aws.String(secretID),
		RotationRules:     rulesToAWS(r.Rules),
		RotationLambdaARN: optional(lambda),
		RotateImmediately: aws.Bool(false),
	})
	if err != nil {
		return awsError("RotateSecret", secretID, "", "", err)
	}
	s.waitTestRotation(ctx, secretID, aws.ToString(out.VersionId))
	return nil
}

// waitTestRotation polls DescribeSecret until versionID no longer holds
// AWSPENDING.
func (s *AWSStore) waitTestRotation(ctx context.Context, secretID, versionID string) {
	if s.opts.TestRotationWait < 0 || versionID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.TestRotationWait)
	defer cancel()
	for delay := firstTestPoll; ; delay = min(2*delay, maxTestPoll) {
		d, err := s.Describe(ctx, secretID)
		if err != nil {
			s.log.Warn("rotation configured; checking its test run failed",
				"secret", secretID, "version", versionID, "error", err)
			return
		}
		if !hasStage(d.Versions[versionID], StagePending) {
			return
		}
		select {
		case <-ctx.Done():
			s.log.Warn("rotation configured; its test run has not finished",
				"secret", secretID, "version", versionID, "waited", s.opts.TestRotationWait)
			return
		case <-time.After(delay):
		}
	}
}

func rulesToAWS(r RotationRules) *types.RotationRulesType {
	if r.IsZero() {
		return nil
	}
	t := &types.RotationRulesType{
		Duration:           optional(r.Duration),
		ScheduleExpression: optional(r.ScheduleExpression),
	}
	if r.AutomaticallyAfterDays != 0 {
		t.AutomaticallyAfterDays = aws.Int64(r.AutomaticallyAfterDays)
	}
	return t
}

// rulesFromAWS converts rotation rules. Secrets Manager may report
// AutomaticallyAfterDays next to a ScheduleExpression it computed it from;
// the expression wins, since RotationRules holds exactly one of the two.
func rulesFromAWS(t *types.RotationRulesType) RotationRules {
	if t == nil {
		return RotationRules{}
	}
	r := RotationRules{
		ScheduleExpression: aws.ToString(t.ScheduleExpression),
		Duration:           aws.ToString(t.Duration),
	}
	if r.ScheduleExpression == "" {
		r.AutomaticallyAfterDays = aws.ToInt64(t.AutomaticallyAfterDays)
	}
	return r
}
