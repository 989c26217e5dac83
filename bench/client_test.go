package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-secretsmanager-caching-go/v2/secretcache"

	"github.com/keyturn/keyturn/keystore"
)

// memClient is an in-memory Secrets Manager holding one secret with an
// AWSCURRENT and an AWSPREVIOUS version. Both caches under test read
// through it, so neither pays for HTTP or request signing.
type memClient struct {
	name string

	mu      sync.Mutex
	values  map[string]string   // version id to SecretString
	stages  map[string][]string // version id to its labels
	delay   time.Duration       // added to every read
	gate    chan struct{}       // when set, GetSecretValue waits for it to close
	entered chan struct{}       // receives each GetSecretValue that waits on gate
}

var (
	_ keystore.SecretsManagerAPI          = (*memClient)(nil)
	_ secretcache.SecretsManagerAPIClient = (*memClient)(nil)
)

const (
	benchSecret   = "keyturn/bench/openai"
	currentID     = "00000000-0000-4000-8000-000000000002"
	previousID    = "00000000-0000-4000-8000-000000000001"
	currentValue  = `{"api_key":"sk-bench-current"}`
	previousValue = `{"api_key":"sk-bench-previous"}`
)

func newMemClient() *memClient {
	return &memClient{
		name:    benchSecret,
		values:  map[string]string{currentID: currentValue, previousID: previousValue},
		stages:  map[string][]string{currentID: {keystore.StageCurrent}, previousID: {keystore.StagePrevious}},
		entered: make(chan struct{}, 1),
	}
}

// setDelay makes every later read take d.
func (m *memClient) setDelay(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.delay = d
}

// block makes GetSecretValue wait until release.
func (m *memClient) block() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gate = make(chan struct{})
}

func (m *memClient) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	close(m.gate)
	m.gate = nil
}

// wait applies the delay and the gate to one read.
func (m *memClient) wait(ctx context.Context) error {
	m.mu.Lock()
	delay, gate := m.delay, m.gate
	m.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if gate == nil {
		return nil
	}
	select {
	case m.entered <- struct{}{}:
	default:
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *memClient) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if err := m.wait(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if aws.ToString(in.SecretId) != m.name {
		return nil, &types.ResourceNotFoundException{Message: aws.String("secret not found")}
	}
	id := m.findVersion(aws.ToString(in.VersionId), aws.ToString(in.VersionStage))
	if id == "" {
		return nil, &types.ResourceNotFoundException{Message: aws.String("version not found")}
	}
	return &secretsmanager.GetSecretValueOutput{
		Name:          aws.String(m.name),
		VersionId:     aws.String(id),
		SecretString:  aws.String(m.values[id]),
		VersionStages: append([]string(nil), m.stages[id]...),
		CreatedDate:   aws.Time(time.Unix(1_900_000_000, 0)),
	}, nil
}

// findVersion returns the id of the version that matches id and stage,
// with AWSCURRENT when neither is set. Call it with m.mu held.
func (m *memClient) findVersion(id, stage string) string {
	if id == "" && stage == "" {
		stage = keystore.StageCurrent
	}
	for vid, stages := range m.stages {
		if (id == "" || id == vid) && (stage == "" || contains(stages, stage)) {
			return vid
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (m *memClient) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	m.mu.Lock()
	delay := m.delay
	m.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if aws.ToString(in.SecretId) != m.name {
		return nil, &types.ResourceNotFoundException{Message: aws.String("secret not found")}
	}
	return &secretsmanager.DescribeSecretOutput{Name: aws.String(m.name), VersionIdsToStages: maps.Clone(m.stages)}, nil
}

// errUnsupported is what the calls that no benchmark makes return.
var errUnsupported = errors.New("not supported by the benchmark's Secrets Manager")

func unsupported(op string) error { return fmt.Errorf("%s: %w", op, errUnsupported) }

func (m *memClient) ListSecrets(context.Context, *secretsmanager.ListSecretsInput, ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	return nil, unsupported("ListSecrets")
}

func (m *memClient) CreateSecret(context.Context, *secretsmanager.CreateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	return nil, unsupported("CreateSecret")
}

func (m *memClient) DeleteSecret(context.Context, *secretsmanager.DeleteSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error) {
	return nil, unsupported("DeleteSecret")
}

func (m *memClient) UpdateSecret(context.Context, *secretsmanager.UpdateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretOutput, error) {
	return nil, unsupported("UpdateSecret")
}

func (m *memClient) PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	return nil, unsupported("PutSecretValue")
}

func (m *memClient) UpdateSecretVersionStage(context.Context, *secretsmanager.UpdateSecretVersionStageInput, ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	return nil, unsupported("UpdateSecretVersionStage")
}

func (m *memClient) TagResource(context.Context, *secretsmanager.TagResourceInput, ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	return nil, unsupported("TagResource")
}

func (m *memClient) UntagResource(context.Context, *secretsmanager.UntagResourceInput, ...func(*secretsmanager.Options)) (*secretsmanager.UntagResourceOutput, error) {
	return nil, unsupported("UntagResource")
}

func (m *memClient) RotateSecret(context.Context, *secretsmanager.RotateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error) {
	return nil, unsupported("RotateSecret")
}

func (m *memClient) CancelRotateSecret(context.Context, *secretsmanager.CancelRotateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.CancelRotateSecretOutput, error) {
	return nil, unsupported("CancelRotateSecret")
}
