package keystore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// SecretsManagerAPI is the part of the Secrets Manager client that AWSStore
// calls. *secretsmanager.Client implements it.
type SecretsManagerAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	ListSecrets(context.Context, *secretsmanager.ListSecretsInput, ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
	CreateSecret(context.Context, *secretsmanager.CreateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(context.Context, *secretsmanager.UpdateSecretVersionStageInput, ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	TagResource(context.Context, *secretsmanager.TagResourceInput, ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
	UntagResource(context.Context, *secretsmanager.UntagResourceInput, ...func(*secretsmanager.Options)) (*secretsmanager.UntagResourceOutput, error)
	RotateSecret(context.Context, *secretsmanager.RotateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error)
	CancelRotateSecret(context.Context, *secretsmanager.CancelRotateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.CancelRotateSecretOutput, error)
}

// DefaultTestRotationWait bounds how long SetRotation waits for the
// configuration test that enabling rotation starts.
const DefaultTestRotationWait = 2 * time.Minute

// AWSOptions configure an AWSStore. The zero AWSOptions are usable.
type AWSOptions struct {
	// RotationLambdaARN is the rotation function used when a secret has
	// none: SetRotation uses it when the Rotation names no function, and
	// BeginRotation passes it for a secret that has no function yet. Empty
	// means the secret must already have one, as Terraform sets it.
	RotationLambdaARN string
	// TestRotationWait bounds how long SetRotation waits for the
	// testSecret run that enabling rotation starts; zero means
	// DefaultTestRotationWait, a negative value does not wait.
	TestRotationWait time.Duration
	// Logger receives warnings; nil discards them. No record holds a value.
	Logger *slog.Logger
}

// AWSStore is a Store on AWS Secrets Manager. Each method is one or a few
// Secrets Manager calls, so the service enforces the label and rotation
// rules; AWSStore maps its errors to the sentinels.
type AWSStore struct {
	client SecretsManagerAPI
	opts   AWSOptions
	log    *slog.Logger
}

var _ Store = (*AWSStore)(nil)

// NewAWS returns a store that calls Secrets Manager through client.
func NewAWS(client SecretsManagerAPI, opts AWSOptions) *AWSStore {
	if opts.TestRotationWait == 0 {
		opts.TestRotationWait = DefaultTestRotationWait
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AWSStore{client: client, opts: opts, log: log}
}

// OpenAWS returns a store on the Secrets Manager client of the SDK's
// standard configuration: credentials and settings from the environment,
// shared files and the instance role, and the endpoint from
// AWS_ENDPOINT_URL_SECRETS_MANAGER or AWS_ENDPOINT_URL when set. An empty
// region means the configured one.
func OpenAWS(ctx context.Context, region string) (*AWSStore, error) {
	var loadOpts []func(*config.LoadOptions) error
	if region != "" {
		loadOpts = append(loadOpts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region configured: set AWS_REGION or pass a region")
	}
	return NewAWS(secretsmanager.NewFromConfig(cfg), AWSOptions{}), nil
}

// Get reads one version with GetSecretValue.
func (s *AWSStore) Get(ctx context.Context, secretID string, ref Ref) (Version, error) {
	if ref == (Ref{}) {
		ref = Current()
	}
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId:     aws.String(secretID),
		VersionId:    optional(ref.VersionID),
		VersionStage: optional(ref.Stage),
	})
	if err != nil {
		return Version{}, awsError("GetSecretValue", secretID, ref.VersionID, ref.Stage, err)
	}
	v := Version{
		SecretID:  aws.ToString(out.Name),
		VersionID: aws.ToString(out.VersionId),
		Stages:    out.VersionStages,
		Created:   aws.ToTime(out.CreatedDate),
	}
	switch {
	case out.SecretString != nil:
		v.Value = NewSecret(*out.SecretString)
	case out.SecretBinary != nil:
		v.Value = NewSecret(string(out.SecretBinary))
	}
	return v, nil
}

// Describe returns a secret's description with DescribeSecret.
func (s *AWSStore) Describe(ctx context.Context, secretID string) (Description, error) {
	out, err := s.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		return Description{}, awsError("DescribeSecret", secretID, "", "", err)
	}
	return Description{
		SecretID: aws.ToString(out.Name),
		ARN:      aws.ToString(out.ARN),
		Tags:     tagMap(out.Tags),
		Versions: out.VersionIdsToStages,
		Rotation: Rotation{
			Enabled:   aws.ToBool(out.RotationEnabled),
			Rules:     rulesFromAWS(out.RotationRules),
			LambdaARN: aws.ToString(out.RotationLambdaARN),
		},
		LastRotated:  aws.ToTime(out.LastRotatedDate),
		NextRotation: aws.ToTime(out.NextRotationDate),
		Created:      aws.ToTime(out.CreatedDate),
		LastChanged:  aws.ToTime(out.LastChangedDate),
	}, nil
}

// List pages through ListSecrets, whose entries carry everything a
// Description holds, and sorts the result by id. Secrets scheduled for
// deletion are left out.
func (s *AWSStore) List(ctx context.Context) ([]Description, error) {
	var list []Description
	p := secretsmanager.NewListSecretsPaginator(s.client, &secretsmanager.ListSecretsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, awsError("ListSecrets", "", "", "", err)
		}
		for _, e := range page.SecretList {
			list = append(list, describeEntry(e))
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].SecretID < list[j].SecretID })
	return list, nil
}

func describeEntry(e types.SecretListEntry) Description {
	return Description{
		SecretID: aws.ToString(e.Name),
		ARN:      aws.ToString(e.ARN),
		Tags:     tagMap(e.Tags),
		Versions: e.SecretVersionsToStages,
		Rotation: Rotation{
			Enabled:   aws.ToBool(e.RotationEnabled),
			Rules:     rulesFromAWS(e.RotationRules),
			LambdaARN: aws.ToString(e.RotationLambdaARN),
		},
		LastRotated:  aws.ToTime(e.LastRotatedDate),
		NextRotation: aws.ToTime(e.NextRotationDate),
		Created:      aws.ToTime(e.CreatedDate),
		LastChanged:  aws.ToTime(e.LastChangedDate),
	}
}

// Create makes a secret with CreateSecret and returns its description.
func (s *AWSStore) Create(ctx context.Context, in CreateInput) (Description, error) {
	req := &secretsmanager.CreateSecretInput{
		Name:        aws.String(in.SecretID),
		Description: optional(in.Description),
		Tags:        tagList(in.Tags),
	}
	if !in.Value.IsZero() {
		req.SecretString = aws.String(in.Value.Reveal())
		req.ClientRequestToken = optional(in.Token)
	}
	if _, err := s.client.CreateSecret(ctx, req); err != nil {
		return Description{}, awsError("CreateSecret", in.SecretID, in.Token, "", err)
	}
	return s.Describe(ctx, in.SecretID)
}

// Put writes a version with PutSecretValue.
func (s *AWSStore) Put(ctx context.Context, in PutInput) error {
	if in.Value.IsZero() {
		return &Error{Op: "PutSecretValue", SecretID: in.SecretID, VersionID: in.Token,
			Kind: ErrInvalidParameter, Msg: "the value is empty: put a non-empty value"}
	}
	_, err := s.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(in.SecretID),
		ClientRequestToken: optional(in.Token),
		SecretString:       aws.String(in.Value.Reveal()),
		VersionStages:      in.Stages,
	})
	if err != nil {
		return awsError("PutSecretValue", in.SecretID, in.Token, stageList(in.Stages), err)
	}
	return nil
}

// UpdateStage moves or removes a label with UpdateSecretVersionStage.
func (s *AWSStore) UpdateStage(ctx context.Context, in StageInput) error {
	_, err := s.client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:            aws.String(in.SecretID),
		VersionStage:        aws.String(in.Stage),
		MoveToVersionId:     optional(in.MoveToVersion),
		RemoveFromVersionId: optional(in.RemoveFromVersion),
	})
	if err != nil {
		version := in.MoveToVersion
		if version == "" {
			version = in.RemoveFromVersion
		}
		return awsError("UpdateSecretVersionStage", in.SecretID, version, in.Stage, err)
	}
	return nil
}

// Tag adds or replaces tags with TagResource.
func (s *AWSStore) Tag(ctx context.Context, secretID string, tags map[string]string) error {
	_, err := s.client.TagResource(ctx, &secretsmanager.TagResourceInput{
		SecretId: aws.String(secretID),
		Tags:     tagList(tags),
	})
	if err != nil {
		return awsError("TagResource", secretID, "", "", err)
	}
	return nil
}

// Untag removes tags with UntagResource.
func (s *AWSStore) Untag(ctx context.Context, secretID string, keys []string) error {
	_, err := s.client.UntagResource(ctx, &secretsmanager.UntagResourceInput{
		SecretId: aws.String(secretID),
		TagKeys:  keys,
	})
	if err != nil {
		return awsError("UntagResource", secretID, "", "", err)
	}
	return nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func stageList(stages []string) string {
	if len(stages) == 0 {
		return ""
	}
	s := stages[0]
	for _, st := range stages[1:] {
		s += "," + st
	}
	return s
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// tagList returns tags sorted by key, so requests are deterministic.
func tagList(tags map[string]string) []types.Tag {
	if len(tags) == 0 {
		return nil
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		list = append(list, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return list
}
