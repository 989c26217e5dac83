package smtest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/keyturn/keyturn/internal/smtest"
)

const (
	tokenA = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	tokenB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	tokenC = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
	lambda = "arn:aws:lambda:us-east-1:123456789012:function:rotator"
)

func newClient(t *testing.T, opts smtest.Options) (*smtest.Server, *secretsmanager.Client) {
	t.Helper()
	srv, url := smtest.Start(t, opts)
	return srv, secretsmanager.NewFromConfig(smtest.TestConfig(t, url))
}

// waitCtx bounds a wait so that a hang fails the test instead of the run.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func create(t *testing.T, c *secretsmanager.Client, name, value, token string) {
	t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name)}
	if value != "" {
		in.SecretString, in.ClientRequestToken = aws.String(value), aws.String(token)
	}
	if _, err := c.CreateSecret(context.Background(), in); err != nil {
		t.Fatalf("CreateSecret %s: %v", name, err)
	}
}

func put(t *testing.T, c *secretsmanager.Client, name, value, token string, stages ...string) {
	t.Helper()
	_, err := c.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(value),
		ClientRequestToken: aws.String(token), VersionStages: stages,
	})
	if err != nil {
		t.Fatalf("PutSecretValue %s %s: %v", name, token, err)
	}
}

func stages(t *testing.T, c *secretsmanager.Client, name string) map[string][]string {
	t.Helper()
	out, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeSecret %s: %v", name, err)
	}
	return out.VersionIdsToStages
}

func getValue(c *secretsmanager.Client, name, versionID, stage string) (string, error) {
	out, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name), VersionId: opt(versionID), VersionStage: opt(stage),
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// wantCode fails unless err is an API error with the given __type.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want API error %s", err, code)
	}
	if apiErr.ErrorCode() != code {
		t.Fatalf("error code = %s (%v), want %s", apiErr.ErrorCode(), err, code)
	}
}

func wantStages(t *testing.T, got map[string][]string, id string, want ...string) {
	t.Helper()
	have := slices.Clone(got[id])
	slices.Sort(have)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		t.Errorf("version %s stages = %v, want %v (all: %v)", id, have, want, got)
	}
}

func TestCreateAndGetCurrent(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)

	out, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/key")})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	if got := aws.ToString(out.SecretString); got != "v1" {
		t.Errorf("SecretString = %q, want v1", got)
	}
	if aws.ToString(out.VersionId) != tokenA {
		t.Errorf("VersionId = %s, want %s", aws.ToString(out.VersionId), tokenA)
	}
	if !slices.Equal(out.VersionStages, []string{"AWSCURRENT"}) {
		t.Errorf("VersionStages = %v, want [AWSCURRENT]", out.VersionStages)
	}
	if out.CreatedDate == nil || out.CreatedDate.IsZero() {
		t.Error("CreatedDate is missing")
	}
	byARN, err := getValue(c, aws.ToString(out.ARN), "", "")
	if err != nil || byARN != "v1" {
		t.Errorf("GetSecretValue by ARN = %q, %v; want v1", byARN, err)
	}
}

func TestCreateExistingName(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	_, err := c.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("app/key"), SecretString: aws.String("v2"),
	})
	wantCode(t, err, "ResourceExistsException")
	var exists *types.ResourceExistsException
	if !errors.As(err, &exists) {
		t.Errorf("err = %T, want *types.ResourceExistsException", err)
	}
}

func TestPutWithoutStagesMovesCurrent(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	put(t, c, "app/key", "v2", tokenB)
	put(t, c, "app/key", "v3", tokenC)

	got := stages(t, c, "app/key")
	wantStages(t, got, tokenC, "AWSCURRENT")
	wantStages(t, got, tokenB, "AWSPREVIOUS")
	if _, ok := got[tokenA]; ok {
		t.Errorf("unlabelled version %s is listed in VersionIdsToStages: %v", tokenA, got)
	}
	old, err := getValue(c, "app/key", tokenA, "")
	if err != nil || old != "v1" {
		t.Errorf("GetSecretValue of unlabelled version = %q, %v; want v1", old, err)
	}
}

func TestPutSameTokenSameValueIsNoOp(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	put(t, c, "app/key", "v2", tokenB)
	put(t, c, "app/key", "v2", tokenB)

	got := stages(t, c, "app/key")
	wantStages(t, got, tokenB, "AWSCURRENT")
	wantStages(t, got, tokenA, "AWSPREVIOUS")
}

func TestPutSameTokenOtherValue(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	_, err := c.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("app/key"), SecretString: aws.String("other"), ClientRequestToken: aws.String(tokenA),
	})
	wantCode(t, err, "ResourceExistsException")
}

func TestPutStagesMoveLabel(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	put(t, c, "app/key", "staged1", tokenB, "KEYTURN_STAGED")
	put(t, c, "app/key", "staged2", tokenC, "KEYTURN_STAGED")

	got := stages(t, c, "app/key")
	wantStages(t, got, tokenA, "AWSCURRENT")
	wantStages(t, got, tokenC, "KEYTURN_STAGED")
	if _, ok := got[tokenB]; ok {
		t.Errorf("version %s kept a label: %v", tokenB, got)
	}
}

func TestUpdateStageRequiresRemoveFrom(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	put(t, c, "app/key", "v2", tokenB, "AWSPENDING")
	ctx := context.Background()

	_, err := c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("app/key"), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(tokenB),
	})
	wantCode(t, err, "InvalidParameterException")

	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("app/key"), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(tokenB), RemoveFromVersionId: aws.String(tokenB),
	})
	wantCode(t, err, "InvalidParameterException")

	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("app/key"), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(tokenB), RemoveFromVersionId: aws.String(tokenA),
	})
	if err != nil {
		t.Fatalf("UpdateSecretVersionStage with RemoveFromVersionId: %v", err)
	}
	got := stages(t, c, "app/key")
	wantStages(t, got, tokenB, "AWSCURRENT", "AWSPENDING")
	wantStages(t, got, tokenA, "AWSPREVIOUS")
}

func TestUpdateStageRemoveLabel(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	put(t, c, "app/key", "s", tokenB, "KEYTURN_STAGED")
	ctx := context.Background()

	_, err := c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("app/key"), VersionStage: aws.String("KEYTURN_STAGED"), RemoveFromVersionId: aws.String(tokenB),
	})
	if err != nil {
		t.Fatalf("remove KEYTURN_STAGED: %v", err)
	}
	if _, ok := stages(t, c, "app/key")[tokenB]; ok {
		t.Error("KEYTURN_STAGED is still attached")
	}
	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("app/key"), VersionStage: aws.String("AWSCURRENT"), RemoveFromVersionId: aws.String(tokenA),
	})
	wantCode(t, err, "InvalidParameterException")
}

func TestMissingSecretAndStage(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	_, err := getValue(c, "missing", "", "")
	wantCode(t, err, "ResourceNotFoundException")
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("err = %T, want *types.ResourceNotFoundException", err)
	}

	create(t, c, "app/key", "v1", tokenA)
	_, err = getValue(c, "app/key", "", "AWSPREVIOUS")
	wantCode(t, err, "ResourceNotFoundException")
	if !strings.Contains(err.Error(), "staging label: AWSPREVIOUS") {
		t.Errorf("err = %v, want it to name the staging label", err)
	}
	_, err = getValue(c, "app/key", tokenB, "")
	wantCode(t, err, "ResourceNotFoundException")
}

func TestSecretWithoutValue(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "", "")
	if got := stages(t, c, "app/key"); len(got) != 0 {
		t.Errorf("VersionIdsToStages = %v, want none", got)
	}
	_, err := getValue(c, "app/key", "", "")
	wantCode(t, err, "ResourceNotFoundException")
	put(t, c, "app/key", "first", tokenA)
	wantStages(t, stages(t, c, "app/key"), tokenA, "AWSCURRENT")
}

func TestErrorStatusAndMessage(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	_, err := getValue(c, "missing", "", "")
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("err = %T, want *awshttp.ResponseError", err)
	}
	if re.HTTPStatusCode() != 400 {
		t.Errorf("status = %d, want 400", re.HTTPStatusCode())
	}
	if !strings.Contains(err.Error(), "Secrets Manager can't find the specified secret.") {
		t.Errorf("err = %v, want AWS's message", err)
	}
}

func TestDeleteSecretWithRecovery(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	ctx := context.Background()
	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("app/key")}); err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}

	_, err := getValue(c, "app/key", "", "")
	wantCode(t, err, "InvalidRequestException")
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/key")})
	if err != nil {
		t.Fatalf("DescribeSecret of deleted secret: %v", err)
	}
	if d.DeletedDate == nil {
		t.Error("DeletedDate is missing")
	}
	list, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	if err != nil {
		t.Fatalf("ListSecrets: %v", err)
	}
	if len(list.SecretList) != 0 {
		t.Errorf("ListSecrets lists %d secrets, want the deleted one left out", len(list.SecretList))
	}
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/key")})
	wantCode(t, err, "InvalidRequestException")
}

func TestDeleteSecretForce(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	ctx := context.Background()
	_, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String("app/key"), ForceDeleteWithoutRecovery: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}
	_, err = getValue(c, "app/key", "", "")
	wantCode(t, err, "ResourceNotFoundException")
	create(t, c, "app/key", "v2", tokenB)

	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String("app/key"), ForceDeleteWithoutRecovery: aws.Bool(true), RecoveryWindowInDays: aws.Int64(7),
	})
	wantCode(t, err, "InvalidParameterException")
}

func TestTagLimits(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)
	ctx := context.Background()
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

	ok := tag("keyturn:base-url", "https://api.openai.com/v1")
	if _, err := c.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("app/key"), Tags: []types.Tag{ok}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	cases := map[string][]types.Tag{
		"value too long": {tag("k", strings.Repeat("a", 257))},
		"bad character":  {tag("k", "a,b")},
		"reserved key":   {tag("aws:owner", "x")},
	}
	var many []types.Tag
	for i := range 50 {
		many = append(many, tag(fmt.Sprintf("t%d", i), "x"))
	}
	cases["more than 50"] = many
	for name, tags := range cases {
		_, err := c.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("app/key"), Tags: tags})
		if err == nil {
			t.Errorf("%s: TagResource succeeded, want InvalidParameterException", name)
			continue
		}
		wantCode(t, err, "InvalidParameterException")
	}

	if _, err := c.UntagResource(ctx, &secretsmanager.UntagResourceInput{
		SecretId: aws.String("app/key"), TagKeys: []string{"keyturn:base-url"},
	}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/key")})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if len(d.Tags) != 0 {
		t.Errorf("Tags = %v after UntagResource, want none", d.Tags)
	}
}

func TestListSecretsFiltersAndPages(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	ctx := context.Background()
	for i := range 5 {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(fmt.Sprintf("keyturn/p%d", i))}
		if i%2 == 0 {
			in.Tags = []types.Tag{{Key: aws.String("keyturn:provider"), Value: aws.String("openai")}}
		}
		if _, err := c.CreateSecret(ctx, in); err != nil {
			t.Fatalf("CreateSecret: %v", err)
		}
	}
	create(t, c, "other/x", "", "")

	var names []string
	p := secretsmanager.NewListSecretsPaginator(c, &secretsmanager.ListSecretsInput{
		MaxResults: aws.Int32(2),
		Filters:    []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"keyturn/"}}},
	})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListSecrets page: %v", err)
		}
		pages++
		for _, e := range page.SecretList {
			names = append(names, aws.ToString(e.Name))
		}
	}
	want := []string{"keyturn/p0", "keyturn/p1", "keyturn/p2", "keyturn/p3", "keyturn/p4"}
	if !slices.Equal(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	if pages != 3 {
		t.Errorf("pages = %d, want 3", pages)
	}

	out, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{
		Filters: []types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{"keyturn:"}}},
	})
	if err != nil {
		t.Fatalf("ListSecrets by tag-key: %v", err)
	}
	if len(out.SecretList) != 3 {
		t.Errorf("tag-key filter matched %d secrets, want 3", len(out.SecretList))
	}
	_, err = c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{NextToken: aws.String("bogus!")})
	wantCode(t, err, "InvalidNextTokenException")
}

func TestBatchGetSecretValue(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "a", "va", tokenA)
	create(t, c, "b", "vb", tokenB)
	create(t, c, "empty", "", "")
	ctx := context.Background()

	out, err := c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{
		SecretIdList: []string{"a", "missing", "b", "empty"},
	})
	if err != nil {
		t.Fatalf("BatchGetSecretValue: %v", err)
	}
	if len(out.SecretValues) != 2 {
		t.Fatalf("SecretValues = %d, want 2", len(out.SecretValues))
	}
	if aws.ToString(out.SecretValues[0].SecretString) != "va" || aws.ToString(out.SecretValues[1].SecretString) != "vb" {
		t.Errorf("values are wrong for %s, %s", aws.ToString(out.SecretValues[0].Name), aws.ToString(out.SecretValues[1].Name))
	}
	codes := map[string]string{}
	for _, e := range out.Errors {
		codes[aws.ToString(e.SecretId)] = aws.ToString(e.ErrorCode)
	}
	want := map[string]string{"missing": "ResourceNotFoundException", "empty": "ResourceNotFoundException"}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Errorf("Errors = %v, want %v", codes, want)
	}

	ids := make([]string, 21)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%d", i)
	}
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids})
	wantCode(t, err, "InvalidParameterException")
}

func TestBatchGetSecretValueFilters(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	create(t, c, "keyturn/a", "va", tokenA)
	create(t, c, "keyturn/b", "vb", tokenB)
	create(t, c, "other", "vo", tokenC)

	var got []string
	p := secretsmanager.NewBatchGetSecretValuePaginator(c, &secretsmanager.BatchGetSecretValueInput{
		Filters:    []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"keyturn/"}}},
		MaxResults: aws.Int32(1),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("BatchGetSecretValue page: %v", err)
		}
		for _, v := range page.SecretValues {
			got = append(got, aws.ToString(v.Name))
		}
	}
	if !slices.Equal(got, []string{"keyturn/a", "keyturn/b"}) {
		t.Errorf("names = %v, want keyturn/a, keyturn/b", got)
	}
}

// versionToken returns the ClientRequestToken of the nth version a test
// writes.
func versionToken(n int) string { return fmt.Sprintf("%08d-0000-4000-8000-000000000000", n) }

func versionIDs(t *testing.T, c *secretsmanager.Client, name string) []string {
	t.Helper()
	out, err := c.ListSecretVersionIds(context.Background(), &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(name), IncludeDeprecated: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("ListSecretVersionIds %s: %v", name, err)
	}
	ids := make([]string, len(out.Versions))
	for i, v := range out.Versions {
		ids[i] = aws.ToString(v.VersionId)
	}
	return ids
}

func TestVersionPruningKeepsLabelled(t *testing.T) {
	clk := newClock(jan15)
	_, c := newClient(t, smtest.Options{Now: clk.Now})
	create(t, c, "app/key", "v0", tokenA)
	put(t, c, "app/key", "staged", tokenB, "KEYTURN_STAGED")
	for i := range 98 {
		put(t, c, "app/key", fmt.Sprintf("v%d", i+1), versionToken(i))
	}
	clk.Advance(25 * time.Hour)
	for i := 98; i < 103; i++ {
		put(t, c, "app/key", fmt.Sprintf("v%d", i+1), versionToken(i))
	}

	ids := versionIDs(t, c, "app/key")
	if len(ids) != 100 {
		t.Errorf("versions = %d, want 100", len(ids))
	}
	if v, err := getValue(c, "app/key", "", "KEYTURN_STAGED"); err != nil || v != "staged" {
		t.Errorf("KEYTURN_STAGED after pruning = %q, %v; want staged", v, err)
	}
	// tokenA and the first four puts were the oldest unlabelled versions.
	for _, pruned := range []string{tokenA, versionToken(0), versionToken(1), versionToken(2), versionToken(3)} {
		if slices.Contains(ids, pruned) {
			t.Errorf("version %s survived pruning", pruned)
		}
	}
	if !slices.Contains(ids, versionToken(4)) {
		t.Errorf("version %s was pruned, want only the five oldest unlabelled ones gone", versionToken(4))
	}
}

func TestVersionLimitKeepsYoungVersions(t *testing.T) {
	clk := newClock(jan15)
	_, c := newClient(t, smtest.Options{Now: clk.Now})
	create(t, c, "app/key", "v0", tokenA)
	for i := range 99 {
		put(t, c, "app/key", fmt.Sprintf("v%d", i+1), versionToken(i))
	}
	clk.Advance(24*time.Hour - time.Second)

	_, err := c.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("app/key"), SecretString: aws.String("v100"), ClientRequestToken: aws.String(tokenC),
	})
	wantCode(t, err, smtest.TypeLimitExceeded)
	if !strings.Contains(err.Error(), "app/key") || !strings.Contains(err.Error(), "24 hours") {
		t.Errorf("error %q does not name the secret and the 24-hour rule", err)
	}
	if v, err := getValue(c, "app/key", "", ""); err != nil || v != "v99" {
		t.Errorf("AWSCURRENT after the rejected put = %q, %v; want v99", v, err)
	}
	if ids := versionIDs(t, c, "app/key"); len(ids) != 100 || slices.Contains(ids, tokenC) {
		t.Errorf("versions after the rejected put = %d (with %s: %v), want the 100 there were",
			len(ids), tokenC, slices.Contains(ids, tokenC))
	}

	clk.Advance(time.Second)
	put(t, c, "app/key", "v100", tokenC)
	ids := versionIDs(t, c, "app/key")
	if len(ids) != 100 || slices.Contains(ids, tokenA) || !slices.Contains(ids, tokenC) {
		t.Errorf("versions = %d, want 100 with %s in place of the oldest, %s", len(ids), tokenC, tokenA)
	}
}

func TestVersionLimitAllLabelled(t *testing.T) {
	clk := newClock(jan15)
	_, c := newClient(t, smtest.Options{Now: clk.Now})
	create(t, c, "app/key", "v0", tokenA)
	for i := range 99 {
		put(t, c, "app/key", fmt.Sprintf("v%d", i+1), versionToken(i), fmt.Sprintf("LABEL%d", i))
	}
	clk.Advance(48 * time.Hour)

	_, err := c.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("app/key"), SecretString: aws.String("v100"), ClientRequestToken: aws.String(tokenC),
	})
	wantCode(t, err, smtest.TypeLimitExceeded)

	// Removing one label lets the next put prune that version.
	_, err = c.UpdateSecretVersionStage(context.Background(), &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("app/key"), VersionStage: aws.String("LABEL5"), RemoveFromVersionId: aws.String(versionToken(5)),
	})
	if err != nil {
		t.Fatalf("UpdateSecretVersionStage: %v", err)
	}
	put(t, c, "app/key", "v100", tokenC)
	if ids := versionIDs(t, c, "app/key"); slices.Contains(ids, versionToken(5)) {
		t.Errorf("unlabelled version %s survived pruning", versionToken(5))
	}
}

func TestFailNext(t *testing.T) {
	srv, c := newClient(t, smtest.Options{})
	create(t, c, "app/key", "v1", tokenA)

	srv.FailNext("GetSecretValue", smtest.TypeInternal)
	if _, err := getValue(c, "app/key", "", ""); err != nil {
		t.Errorf("GetSecretValue after one injected failure: %v (the SDK should retry)", err)
	}

	srv.Fail("GetSecretValue", smtest.TypeInternal, -1)
	_, err := getValue(c, "app/key", "", "")
	wantCode(t, err, "InternalServiceError")
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 500 {
		t.Errorf("err = %v, want HTTP 500", err)
	}
	if _, err := c.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/key")}); err != nil {
		t.Errorf("DescribeSecret is not the failing operation: %v", err)
	}

	srv.ClearFailures()
	if _, err := getValue(c, "app/key", "", ""); err != nil {
		t.Errorf("GetSecretValue after ClearFailures: %v", err)
	}
}

func TestUnknownOperation(t *testing.T) {
	_, c := newClient(t, smtest.Options{})
	_, err := c.GetRandomPassword(context.Background(), &secretsmanager.GetRandomPasswordInput{})
	wantCode(t, err, "UnknownOperationException")
}
