package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/keyturn/keyturn/keystore"
)

// storeFactory returns a new, empty store for one test. Each store under test
// (the file store, the AWS store against the Secrets Manager test server)
// passes its own factory to runStoreContract. The store must not run rotation
// steps by itself: on AWS, the test server's Invoker does nothing, so the
// suite sees the empty AWSPENDING version that RotateSecret leaves.
type storeFactory func(t *testing.T) keystore.Store

// contractCanary is a planted value that no error string may contain.
const contractCanary = "sk-contract-canary-0d6f3b1e9a"

// runStoreContract checks the Secrets Manager semantics every Store must
// share.
func runStoreContract(t *testing.T, newStore storeFactory) {
	t.Run("GetMissingSecret", func(t *testing.T) { testGetMissingSecret(t, newStore(t)) })
	t.Run("CreateAndDescribe", func(t *testing.T) { testCreateAndDescribe(t, newStore(t)) })
	t.Run("CreateWithoutValue", func(t *testing.T) { testCreateWithoutValue(t, newStore(t)) })
	t.Run("CreateExisting", func(t *testing.T) { testCreateExisting(t, newStore(t)) })
	t.Run("ListSortedByID", func(t *testing.T) { testListSortedByID(t, newStore(t)) })
	t.Run("TagAndUntag", func(t *testing.T) { testTagAndUntag(t, newStore(t)) })
	t.Run("PutWithoutStagesMovesCurrent", func(t *testing.T) { testPutWithoutStages(t, newStore(t)) })
	t.Run("PutSameTokenSameValue", func(t *testing.T) { testPutSameTokenSameValue(t, newStore(t)) })
	t.Run("PutSameTokenOtherValue", func(t *testing.T) { testPutSameTokenOtherValue(t, newStore(t)) })
	t.Run("PutWithStagesMovesLabels", func(t *testing.T) { testPutWithStages(t, newStore(t)) })
	t.Run("PutMissingSecret", func(t *testing.T) { testPutMissingSecret(t, newStore(t)) })
	t.Run("PendingReadsNotFound", func(t *testing.T) { testPendingReadsNotFound(t, newStore(t)) })
	t.Run("PendingFillsOnce", func(t *testing.T) { testPendingFillsOnce(t, newStore(t)) })
	t.Run("UpdateStageMovesCurrent", func(t *testing.T) { testUpdateStageMovesCurrent(t, newStore(t)) })
	t.Run("UpdateStageNeedsRemoveFrom", func(t *testing.T) { testUpdateStageNeedsRemoveFrom(t, newStore(t)) })
	t.Run("UpdateStageRemovesLabel", func(t *testing.T) { testUpdateStageRemovesLabel(t, newStore(t)) })
	t.Run("BeginRotationWhilePending", func(t *testing.T) { testBeginRotationWhilePending(t, newStore(t)) })
	t.Run("PutCurrentAbandonsRotation", func(t *testing.T) { testPutCurrentAbandonsRotation(t, newStore(t)) })
	t.Run("PutOtherStageKeepsRotation", func(t *testing.T) { testPutOtherStageKeepsRotation(t, newStore(t)) })
	t.Run("TagCharacters", func(t *testing.T) { testTagCharacters(t, newStore(t)) })
	t.Run("BeginRotationAfterCompletion", func(t *testing.T) { testBeginRotationAfterCompletion(t, newStore(t)) })
	t.Run("BeginRotationFirstKey", func(t *testing.T) { testBeginRotationFirstKey(t, newStore(t)) })
	t.Run("LastRotatedOnCompletion", func(t *testing.T) { testLastRotatedOnCompletion(t, newStore(t)) })
	t.Run("GetByVersionAndStage", func(t *testing.T) { testGetByVersionAndStage(t, newStore(t)) })
	t.Run("ErrorsTyped", func(t *testing.T) { testErrorsTyped(t, newStore(t)) })
	t.Run("ErrorsHideValues", func(t *testing.T) { testErrorsHideValues(t, newStore(t)) })
}

func testGetMissingSecret(t *testing.T, s keystore.Store) {
	_, err := s.Get(context.Background(), "keyturn/missing", keystore.Current())
	if !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Get missing secret: err = %v, want ErrNotFound", err)
	}
	_, err = s.Describe(context.Background(), "keyturn/missing")
	if !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("Describe missing secret: err = %v, want ErrNotFound", err)
	}
}

func testCreateAndDescribe(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/openai"
	token := uuid.NewString()
	tags := map[string]string{keystore.TagProvider: "openai", "team": "platform"}
	d, err := s.Create(ctx, keystore.CreateInput{
		SecretID: id, Description: "contract test", Tags: tags,
		Value: keystore.NewSecret("value-1"), Token: token,
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if d.SecretID != id {
		t.Errorf("Create: SecretID = %q, want %q", d.SecretID, id)
	}

	d = mustDescribe(t, s, id)
	if d.SecretID != id {
		t.Errorf("Describe: SecretID = %q, want %q", d.SecretID, id)
	}
	if !maps.Equal(d.Tags, tags) {
		t.Errorf("Describe: Tags = %v, want %v", d.Tags, tags)
	}
	wantStages(t, d, token, keystore.StageCurrent)
	if d.Created.IsZero() {
		t.Error("Describe: Created is zero")
	}
	if !d.LastRotated.IsZero() {
		t.Errorf("Describe: LastRotated = %v, want zero before any rotation", d.LastRotated)
	}

	v := mustGet(t, s, id, keystore.Current())
	if v.Value.Reveal() != "value-1" {
		t.Error("Get current: value differs from the one created")
	}
	if v.VersionID != token {
		t.Errorf("Get current: VersionID = %q, want %q", v.VersionID, token)
	}
	if !v.HasStage(keystore.StageCurrent) {
		t.Errorf("Get current: Stages = %v, want AWSCURRENT among them", v.Stages)
	}
	if v.SecretID != id {
		t.Errorf("Get current: SecretID = %q, want %q", v.SecretID, id)
	}
}

func testCreateWithoutValue(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/empty"
	if _, err := s.Create(ctx, keystore.CreateInput{SecretID: id}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	d := mustDescribe(t, s, id)
	if len(d.Versions) != 0 {
		t.Errorf("Describe: Versions = %v, want none", d.Versions)
	}
	_, err := s.Get(ctx, id, keystore.Current())
	wantKind(t, err, keystore.ErrNotFound, id)
}

func testCreateExisting(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/twice"
	mustCreate(t, s, id, "value-1")
	_, err := s.Create(ctx, keystore.CreateInput{SecretID: id, Value: keystore.NewSecret("value-2")})
	wantKind(t, err, keystore.ErrExists, id)
	v := mustGet(t, s, id, keystore.Current())
	if v.Value.Reveal() != "value-1" {
		t.Error("Get after a second Create: the value changed")
	}
}

func testListSortedByID(t *testing.T, s keystore.Store) {
	ids := []string{"keyturn/contract/b", "keyturn/contract/a/x", "keyturn/contract/c"}
	for _, id := range ids {
		mustCreate(t, s, id, "value-"+id)
	}
	if err := s.Tag(context.Background(), ids[1], map[string]string{"team": "x"}); err != nil {
		t.Fatalf("Tag: %v", err)
	}
	list, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var got []string
	for _, d := range list {
		got = append(got, d.SecretID)
	}
	want := []string{"keyturn/contract/a/x", "keyturn/contract/b", "keyturn/contract/c"}
	if !slices.Equal(got, want) {
		t.Fatalf("List: ids = %v, want %v", got, want)
	}
	if list[0].Tags["team"] != "x" {
		t.Errorf("List: tags of %s = %v, want team=x", list[0].SecretID, list[0].Tags)
	}
	if list[0].VersionWithStage(keystore.StageCurrent) == "" {
		t.Errorf("List: %s has no AWSCURRENT version in %v", list[0].SecretID, list[0].Versions)
	}
}

func testTagAndUntag(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/tags"
	if _, err := s.Create(ctx, keystore.CreateInput{SecretID: id, Tags: map[string]string{"a": "1", "b": "2"}}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := s.Tag(ctx, id, map[string]string{"b": "two", "c": "3"}); err != nil {
		t.Fatalf("Tag: %v", err)
	}
	want := map[string]string{"a": "1", "b": "two", "c": "3"}
	if got := mustDescribe(t, s, id).Tags; !maps.Equal(got, want) {
		t.Errorf("after Tag: Tags = %v, want %v", got, want)
	}
	if err := s.Untag(ctx, id, []string{"a", "c"}); err != nil {
		t.Fatalf("Untag: %v", err)
	}
	want = map[string]string{"b": "two"}
	if got := mustDescribe(t, s, id).Tags; !maps.Equal(got, want) {
		t.Errorf("after Untag: Tags = %v, want %v", got, want)
	}
	err := s.Tag(ctx, "keyturn/contract/missing", map[string]string{"a": "1"})
	wantKind(t, err, keystore.ErrNotFound, "keyturn/contract/missing")
}

func testPutWithoutStages(t *testing.T, s keystore.Store) {
	const id = "keyturn/contract/put"
	a := mustCreate(t, s, id, "value-a")
	b := mustPut(t, s, id, "value-b")
	d := mustDescribe(t, s, id)
	wantStages(t, d, b, keystore.StageCurrent)
	wantStages(t, d, a, keystore.StagePrevious)

	c := mustPut(t, s, id, "value-c")
	d = mustDescribe(t, s, id)
	wantStages(t, d, c, keystore.StageCurrent)
	wantStages(t, d, b, keystore.StagePrevious)
	wantStages(t, d, a)
	if v := mustGet(t, s, id, keystore.ByStage(keystore.StagePrevious)); v.Value.Reveal() != "value-b" {
		t.Error("Get AWSPREVIOUS: value is not the one that was current before")
	}
}

func testPutSameTokenSameValue(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/idempotent"
	a := mustCreate(t, s, id, "value-a")
	b := mustPut(t, s, id, "value-b")
	before := mustDescribe(t, s, id)
	err := s.Put(ctx, keystore.PutInput{SecretID: id, Token: b, Value: keystore.NewSecret("value-b")})
	if err != nil {
		t.Fatalf("Put same token, same value: %v", err)
	}
	after := mustDescribe(t, s, id)
	wantStages(t, after, b, keystore.StageCurrent)
	wantStages(t, after, a, keystore.StagePrevious)
	if len(after.Versions) != len(before.Versions) {
		t.Errorf("Put same token, same value: Versions = %v, want %v", after.Versions, before.Versions)
	}
}

func testPutSameTokenOtherValue(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/conflict"
	mustCreate(t, s, id, "value-a")
	b := mustPut(t, s, id, "value-b")
	err := s.Put(ctx, keystore.PutInput{SecretID: id, Token: b, Value: keystore.NewSecret("value-other")})
	wantKind(t, err, keystore.ErrExists, id)
	if v := mustGet(t, s, id, keystore.ByVersion(b)); v.Value.Reveal() != "value-b" {
		t.Error("Get after a conflicting Put: the version's value changed")
	}
}

func testPutWithStages(t *testing.T, s keystore.Store) {
	const id = "keyturn/contract/staged"
	a := mustCreate(t, s, id, "value-a")
	b := mustPut(t, s, id, "value-b", keystore.StageStaged)
	d := mustDescribe(t, s, id)
	wantStages(t, d, a, keystore.StageCurrent)
	wantStages(t, d, b, keystore.StageStaged)

	c := mustPut(t, s, id, "value-c", keystore.StageStaged)
	d = mustDescribe(t, s, id)
	wantStages(t, d, c, keystore.StageStaged)
	wantStages(t, d, b)
	wantStages(t, d, a, keystore.StageCurrent)

	e := mustPut(t, s, id, "value-e", keystore.StageCurrent, keystore.StageRejected)
	d = mustDescribe(t, s, id)
	wantStages(t, d, e, keystore.StageCurrent, keystore.StageRejected)
	wantStages(t, d, a, keystore.StagePrevious)
}

func testPutMissingSecret(t *testing.T, s keystore.Store) {
	const id = "keyturn/contract/missing"
	err := s.Put(context.Background(), keystore.PutInput{SecretID: id, Token: uuid.NewString(), Value: keystore.NewSecret("v")})
	wantKind(t, err, keystore.ErrNotFound, id)
}

func testPendingReadsNotFound(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/pending"
	mustCreate(t, s, id, "value-a")
	token := mustBeginRotation(t, s, id)

	_, err := s.Get(ctx, id, keystore.ByStage(keystore.StagePending))
	wantKind(t, err, keystore.ErrNotFound, id)
	_, err = s.Get(ctx, id, keystore.ByVersion(token))
	wantKind(t, err, keystore.ErrNotFound, id)
	wantStages(t, mustDescribe(t, s, id), token, keystore.StagePending)
}

func testPendingFillsOnce(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/fill"
	a := mustCreate(t, s, id, "value-a")
	token := mustBeginRotation(t, s, id)
	fill := keystore.PutInput{SecretID: id, Token: token, Value: keystore.NewSecret("value-new"), Stages: []string{keystore.StagePending}}
	if err := s.Put(ctx, fill); err != nil {
		t.Fatalf("Put into the pending version: %v", err)
	}
	v := mustGet(t, s, id, keystore.ByStage(keystore.StagePending))
	if v.Value.Reveal() != "value-new" {
		t.Error("Get AWSPENDING after the fill: value differs from the one written")
	}
	if v.VersionID != token {
		t.Errorf("Get AWSPENDING: VersionID = %q, want %q", v.VersionID, token)
	}
	d := mustDescribe(t, s, id)
	wantStages(t, d, token, keystore.StagePending)
	wantStages(t, d, a, keystore.StageCurrent)

	if err := s.Put(ctx, fill); err != nil {
		t.Errorf("second fill with the same value: %v, want no error", err)
	}
	fill.Value = keystore.NewSecret("value-other")
	err := s.Put(ctx, fill)
	wantKind(t, err, keystore.ErrExists, id)
}

func testUpdateStageMovesCurrent(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/finish"
	a := mustCreate(t, s, id, "value-a")
	token := mustRotateToValue(t, s, id, "value-new")
	err := s.UpdateStage(ctx, keystore.StageInput{
		SecretID: id, Stage: keystore.StageCurrent, MoveToVersion: token, RemoveFromVersion: a,
	})
	if err != nil {
		t.Fatalf("UpdateStage AWSCURRENT: %v", err)
	}
	d := mustDescribe(t, s, id)
	wantStages(t, d, token, keystore.StageCurrent, keystore.StagePending)
	wantStages(t, d, a, keystore.StagePrevious)

	err = s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StagePending, RemoveFromVersion: token})
	if err != nil {
		t.Fatalf("UpdateStage remove AWSPENDING: %v", err)
	}
	d = mustDescribe(t, s, id)
	wantStages(t, d, token, keystore.StageCurrent)
	if v := mustGet(t, s, id, keystore.Current()); v.Value.Reveal() != "value-new" {
		t.Error("Get current after the move: value is not the new one")
	}
}

func testUpdateStageNeedsRemoveFrom(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/remove-from"
	a := mustCreate(t, s, id, "value-a")
	b := mustPut(t, s, id, "value-b", keystore.StageStaged)
	c := mustPut(t, s, id, "value-c", keystore.StageRejected)

	err := s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StageCurrent, MoveToVersion: b})
	wantKind(t, err, keystore.ErrInvalidParameter, id)
	err = s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StageCurrent, MoveToVersion: b, RemoveFromVersion: c})
	wantKind(t, err, keystore.ErrInvalidParameter, id)

	d := mustDescribe(t, s, id)
	wantStages(t, d, a, keystore.StageCurrent)
	wantStages(t, d, b, keystore.StageStaged)
	wantStages(t, d, c, keystore.StageRejected)
}

func testUpdateStageRemovesLabel(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/unlabel"
	a := mustCreate(t, s, id, "value-a")
	b := mustPut(t, s, id, "value-b", keystore.StageStaged)
	err := s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StageStaged, RemoveFromVersion: b})
	if err != nil {
		t.Fatalf("UpdateStage remove KEYTURN_STAGED: %v", err)
	}
	d := mustDescribe(t, s, id)
	wantStages(t, d, b)
	wantStages(t, d, a, keystore.StageCurrent)
	_, err = s.Get(ctx, id, keystore.ByStage(keystore.StageStaged))
	wantKind(t, err, keystore.ErrNotFound, id)

	err = s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StageStaged, MoveToVersion: b})
	if err != nil {
		t.Fatalf("UpdateStage attach a free label: %v", err)
	}
	wantStages(t, mustDescribe(t, s, id), b, keystore.StageStaged)
}

func testBeginRotationWhilePending(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/blocked"
	mustCreate(t, s, id, "value-a")
	first := mustBeginRotation(t, s, id)

	_, err := s.BeginRotation(ctx, id, uuid.NewString())
	wantKind(t, err, keystore.ErrInvalidRequest, id)
	if err != nil && !strings.Contains(err.Error(), "a previous rotation isn't complete") {
		t.Errorf("BeginRotation while pending: err = %q, want it to say a previous rotation isn't complete", err)
	}
	if want := "rotator abandon " + id; err != nil && !strings.Contains(err.Error(), want) {
		t.Errorf("BeginRotation while pending: err = %q, want it to name %q", err, want)
	}

	err = s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StagePending, RemoveFromVersion: first})
	if err != nil {
		t.Fatalf("UpdateStage remove AWSPENDING: %v", err)
	}
	second := mustBeginRotation(t, s, id)
	wantStages(t, mustDescribe(t, s, id), second, keystore.StagePending)
}

// testPutCurrentAbandonsRotation writes a new AWSCURRENT value by hand
// while a rotation is in progress. As PutSecretValue does, that abandons
// the rotation: AWSPENDING leaves the pending version and a new rotation
// can start.
func testPutCurrentAbandonsRotation(t *testing.T, s keystore.Store) {
	const id = "keyturn/contract/abandon"
	a := mustCreate(t, s, id, "value-a")
	pending := mustBeginRotation(t, s, id)
	if got := mustDescribe(t, s, id).PendingVersion(); got != pending {
		t.Fatalf("PendingVersion after BeginRotation = %q, want %q", got, pending)
	}

	b := mustPut(t, s, id, "value-b")
	d := mustDescribe(t, s, id)
	wantStages(t, d, b, keystore.StageCurrent)
	wantStages(t, d, a, keystore.StagePrevious)
	wantStages(t, d, pending)
	if got := d.PendingVersion(); got != "" {
		t.Errorf("PendingVersion after Put of a new current value = %q, want none", got)
	}

	next := mustBeginRotation(t, s, id)
	wantStages(t, mustDescribe(t, s, id), next, keystore.StagePending)
}

// testPutOtherStageKeepsRotation checks that a Put that leaves AWSCURRENT
// where it is does not abandon the rotation.
func testPutOtherStageKeepsRotation(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/keep-rotation"
	mustCreate(t, s, id, "value-a")
	pending := mustBeginRotation(t, s, id)
	staged := mustPut(t, s, id, "value-staged", keystore.StageStaged)

	d := mustDescribe(t, s, id)
	wantStages(t, d, pending, keystore.StagePending)
	wantStages(t, d, staged, keystore.StageStaged)
	if got := d.PendingVersion(); got != pending {
		t.Errorf("PendingVersion after Put with %s = %q, want %q", keystore.StageStaged, got, pending)
	}
	_, err := s.BeginRotation(ctx, id, uuid.NewString())
	wantKind(t, err, keystore.ErrInvalidRequest, id)
}

// testTagCharacters checks the character classes of the pattern AWS
// documents for tag keys and values, ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$: any
// Unicode letter, separator or number is allowed, other characters are not.
func testTagCharacters(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/tag-chars"
	if _, err := s.Create(ctx, keystore.CreateInput{SecretID: id}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	allowed := map[string]string{
		"ascii-space":          "a b",
		"no-break-space":       "a\u00a0b",      // Zs, but not ' '
		"line-separator":       "a\u2028b",      // Zl
		"superscript-two":      "x\u00b2",       // No, not a decimal digit
		"roman-twelve":         "\u216b",        // Nl
		"letters-\u00e9\u4e2d": "\u00e9t\u00e9", // L, in the key too
		"punctuation":          "_.:/=+-@",
	}
	if err := s.Tag(ctx, id, allowed); err != nil {
		t.Fatalf("Tag with allowed characters: %v", err)
	}
	if got := mustDescribe(t, s, id).Tags; !maps.Equal(got, allowed) {
		t.Errorf("Tags = %q, want %q", got, allowed)
	}

	rejected := []struct{ name, key, value string }{
		{"tab in value", "k", "a\tb"},
		{"newline in value", "k", "a\nb"},
		{"comma in value", "k", "a,b"},
		{"symbol in value", "k", "\u20ac"}, // Sc
		{"tab in key", "a\tb", "v"},
		{"hash in key", "a#b", "v"},
	}
	for _, c := range rejected {
		err := s.Tag(ctx, id, map[string]string{c.key: c.value})
		if !errors.Is(err, keystore.ErrInvalidParameter) {
			t.Errorf("Tag with %s: err = %v, want %v", c.name, err, keystore.ErrInvalidParameter)
		}
	}
}

func testBeginRotationAfterCompletion(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/again"
	a := mustCreate(t, s, id, "value-a")
	first := mustRotateToValue(t, s, id, "value-new")
	err := s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StageCurrent, MoveToVersion: first, RemoveFromVersion: a})
	if err != nil {
		t.Fatalf("UpdateStage AWSCURRENT: %v", err)
	}
	// AWSPENDING still sits on the current version, which counts as a
	// completed rotation.
	second := mustBeginRotation(t, s, id)
	d := mustDescribe(t, s, id)
	wantStages(t, d, second, keystore.StagePending)
	wantStages(t, d, first, keystore.StageCurrent)
}

func testBeginRotationFirstKey(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/first-key"
	if _, err := s.Create(ctx, keystore.CreateInput{SecretID: id}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	token := mustBeginRotation(t, s, id)
	fill := keystore.PutInput{SecretID: id, Token: token, Value: keystore.NewSecret("value-1"), Stages: []string{keystore.StagePending}}
	if err := s.Put(ctx, fill); err != nil {
		t.Fatalf("Put into the pending version: %v", err)
	}
	err := s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StageCurrent, MoveToVersion: token})
	if err != nil {
		t.Fatalf("UpdateStage AWSCURRENT with no current version: %v", err)
	}
	d := mustDescribe(t, s, id)
	wantStages(t, d, token, keystore.StageCurrent, keystore.StagePending)
	if d.VersionWithStage(keystore.StagePrevious) != "" {
		t.Errorf("Describe: AWSPREVIOUS on %s, want none after the first key", d.VersionWithStage(keystore.StagePrevious))
	}
}

func testLastRotatedOnCompletion(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/last-rotated"
	start := time.Now().Add(-time.Minute)
	a := mustCreate(t, s, id, "value-a")
	token := mustRotateToValue(t, s, id, "value-new")
	if d := mustDescribe(t, s, id); !d.LastRotated.IsZero() {
		t.Errorf("Describe during rotation: LastRotated = %v, want zero", d.LastRotated)
	}
	err := s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StageCurrent, MoveToVersion: token, RemoveFromVersion: a})
	if err != nil {
		t.Fatalf("UpdateStage AWSCURRENT: %v", err)
	}
	d := mustDescribe(t, s, id)
	if d.LastRotated.Before(start) {
		t.Errorf("Describe after completion: LastRotated = %v, want after %v", d.LastRotated, start)
	}
}

func testGetByVersionAndStage(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/refs"
	a := mustCreate(t, s, id, "value-a")
	b := mustPut(t, s, id, "value-b")

	if v := mustGet(t, s, id, keystore.ByVersion(a)); v.Value.Reveal() != "value-a" {
		t.Error("Get by version id: wrong value")
	}
	if v := mustGet(t, s, id, keystore.ByStage(keystore.StagePrevious)); v.VersionID != a {
		t.Errorf("Get AWSPREVIOUS: VersionID = %q, want %q", v.VersionID, a)
	}
	if v := mustGet(t, s, id, keystore.Ref{VersionID: b, Stage: keystore.StageCurrent}); v.Value.Reveal() != "value-b" {
		t.Error("Get by version and matching stage: wrong value")
	}
	if v := mustGet(t, s, id, keystore.Ref{}); v.VersionID != b {
		t.Errorf("Get zero Ref: VersionID = %q, want the current %q", v.VersionID, b)
	}
	_, err := s.Get(ctx, id, keystore.Ref{VersionID: a, Stage: keystore.StageCurrent})
	wantKind(t, err, keystore.ErrNotFound, id)
	_, err = s.Get(ctx, id, keystore.ByVersion(uuid.NewString()))
	wantKind(t, err, keystore.ErrNotFound, id)
	_, err = s.Get(ctx, id, keystore.ByStage(keystore.StageStaged))
	wantKind(t, err, keystore.ErrNotFound, id)
}

func testErrorsTyped(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/typed"
	a := mustCreate(t, s, id, "value-a")
	_, err := s.Get(ctx, id, keystore.ByStage(keystore.StageStaged))
	wantKind(t, err, keystore.ErrNotFound, id)
	_, err = s.Create(ctx, keystore.CreateInput{SecretID: id})
	wantKind(t, err, keystore.ErrExists, id)
	err = s.Put(ctx, keystore.PutInput{SecretID: id, Token: a, Value: keystore.NewSecret("value-other")})
	wantKind(t, err, keystore.ErrExists, id)
	mustBeginRotation(t, s, id)
	_, err = s.BeginRotation(ctx, id, uuid.NewString())
	wantKind(t, err, keystore.ErrInvalidRequest, id)
	b := mustPut(t, s, id, "value-b", keystore.StageStaged)
	err = s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StageCurrent, MoveToVersion: b})
	wantKind(t, err, keystore.ErrInvalidParameter, id)
	_, err = s.Describe(ctx, "keyturn/contract/none")
	wantKind(t, err, keystore.ErrNotFound, "keyturn/contract/none")
}

func testErrorsHideValues(t *testing.T, s keystore.Store) {
	ctx := context.Background()
	const id = "keyturn/contract/canary"
	if _, err := s.Create(ctx, keystore.CreateInput{SecretID: id, Value: keystore.NewSecret(contractCanary)}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	current := mustGet(t, s, id, keystore.Current())
	var errs []error
	_, err := s.Create(ctx, keystore.CreateInput{SecretID: id, Value: keystore.NewSecret(contractCanary)})
	errs = append(errs, err)
	errs = append(errs, s.Put(ctx, keystore.PutInput{SecretID: id, Token: current.VersionID, Value: keystore.NewSecret(contractCanary + "-other")}))
	token := mustBeginRotation(t, s, id)
	errs = append(errs, s.Put(ctx, keystore.PutInput{SecretID: id, Token: token, Value: keystore.NewSecret(contractCanary + "-pending"), Stages: []string{keystore.StagePending}}))
	errs = append(errs, s.Put(ctx, keystore.PutInput{SecretID: id, Token: token, Value: keystore.NewSecret(contractCanary + "-pending-2")}))
	_, err = s.BeginRotation(ctx, id, uuid.NewString())
	errs = append(errs, err)
	errs = append(errs, s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StageCurrent, MoveToVersion: token}))
	_, err = s.Get(ctx, id, keystore.Ref{VersionID: current.VersionID, Stage: keystore.StagePending})
	errs = append(errs, err)

	failures := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		failures++
		for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if strings.Contains(text, contractCanary) {
				t.Errorf("error %d contains the planted value: %s", i, text)
			}
		}
	}
	if failures < 5 {
		t.Errorf("only %d of %d operations failed: the test no longer provokes the errors it checks", failures, len(errs))
	}
	if text := fmt.Sprintf("%v %+v", current, current); strings.Contains(text, contractCanary) {
		t.Errorf("a printed Version contains the planted value: %s", text)
	}
}

func mustCreate(t *testing.T, s keystore.Store, id, value string) string {
	t.Helper()
	token := uuid.NewString()
	_, err := s.Create(context.Background(), keystore.CreateInput{SecretID: id, Value: keystore.NewSecret(value), Token: token})
	if err != nil {
		t.Fatalf("Create %s: %v", id, err)
	}
	return token
}

func mustPut(t *testing.T, s keystore.Store, id, value string, stages ...string) string {
	t.Helper()
	token := uuid.NewString()
	err := s.Put(context.Background(), keystore.PutInput{SecretID: id, Token: token, Value: keystore.NewSecret(value), Stages: stages})
	if err != nil {
		t.Fatalf("Put %s stages %v: %v", id, stages, err)
	}
	return token
}

func mustBeginRotation(t *testing.T, s keystore.Store, id string) string {
	t.Helper()
	want := uuid.NewString()
	got, err := s.BeginRotation(context.Background(), id, want)
	if err != nil {
		t.Fatalf("BeginRotation %s: %v", id, err)
	}
	if got != want {
		t.Fatalf("BeginRotation %s: version id = %q, want the token %q", id, got, want)
	}
	return got
}

// mustRotateToValue begins a rotation and fills its pending version, as the
// createSecret step does.
func mustRotateToValue(t *testing.T, s keystore.Store, id, value string) string {
	t.Helper()
	token := mustBeginRotation(t, s, id)
	err := s.Put(context.Background(), keystore.PutInput{SecretID: id, Token: token, Value: keystore.NewSecret(value), Stages: []string{keystore.StagePending}})
	if err != nil {
		t.Fatalf("Put into the pending version of %s: %v", id, err)
	}
	return token
}

func mustGet(t *testing.T, s keystore.Store, id string, ref keystore.Ref) keystore.Version {
	t.Helper()
	v, err := s.Get(context.Background(), id, ref)
	if err != nil {
		t.Fatalf("Get %s %+v: %v", id, ref, err)
	}
	return v
}

func mustDescribe(t *testing.T, s keystore.Store, id string) keystore.Description {
	t.Helper()
	d, err := s.Describe(context.Background(), id)
	if err != nil {
		t.Fatalf("Describe %s: %v", id, err)
	}
	return d
}

// wantStages checks the labels of one version, in any order. With no
// labels, the version must hold none: Secrets Manager may then leave it out
// of the description.
func wantStages(t *testing.T, d keystore.Description, versionID string, want ...string) {
	t.Helper()
	got := slices.Clone(d.Versions[versionID])
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("version %s: stages = %v, want %v (all versions: %v)", versionID, got, want, d.Versions)
	}
}

// wantKind checks that err is an *keystore.Error of kind about secretID.
func wantKind(t *testing.T, err, kind error, secretID string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("err = %v, want %v", err, kind)
		return
	}
	var e *keystore.Error
	if !errors.As(err, &e) {
		t.Errorf("err = %T %v, want a *keystore.Error", err, err)
		return
	}
	if e.SecretID != secretID {
		t.Errorf("err = %v: SecretID = %q, want %q", err, e.SecretID, secretID)
	}
}
