// Package keystore stores keyturn's secrets: versioned, labelled values with
// AWS Secrets Manager's rules, in Secrets Manager itself or in an
// age-encrypted directory. The rotation engine, the operator CLI and the
// router all go through the Store interface, so they cannot tell the two
// stores apart.
package keystore

import (
	"context"
	"time"
)

// Staging labels. A label is on at most one version of a secret.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
	// StageStaged labels the full value JSON of the next key.
	StageStaged = "KEYTURN_STAGED"
	// StageRejected labels a value that failed validation, kept for diagnosis.
	StageRejected = "KEYTURN_REJECTED"
)

// Ref selects a version by id, by stage, or by both (both must then agree).
// The zero Ref selects AWSCURRENT.
type Ref struct {
	VersionID string
	Stage     string
}

// Current selects the AWSCURRENT version.
func Current() Ref { return Ref{Stage: StageCurrent} }

// ByStage selects the version that holds stage.
func ByStage(stage string) Ref { return Ref{Stage: stage} }

// ByVersion selects a version by id.
func ByVersion(id string) Ref { return Ref{VersionID: id} }

// Version is one stored value of a secret.
type Version struct {
	SecretID  string
	VersionID string
	Stages    []string
	Value     Secret
	Created   time.Time
}

// HasStage reports whether the version holds stage.
func (v Version) HasStage(stage string) bool { return hasStage(v.Stages, stage) }

func hasStage(stages []string, stage string) bool {
	for _, s := range stages {
		if s == stage {
			return true
		}
	}
	return false
}

// RotationRules is a secret's rotation schedule, as Secrets Manager's
// RotationRulesType: exactly one of AutomaticallyAfterDays or
// ScheduleExpression is set; Duration is the optional window, such as "3h".
type RotationRules struct {
	AutomaticallyAfterDays int64
	ScheduleExpression     string
	Duration               string
}

// IsZero reports whether no schedule is set.
func (r RotationRules) IsZero() bool { return r == RotationRules{} }

// Rotation is a secret's rotation configuration.
type Rotation struct {
	Enabled bool
	Rules   RotationRules
	// LambdaARN is the rotation function on AWS; empty on the file store,
	// where the rotator runs the steps itself.
	LambdaARN string
}

// Description is the result of DescribeSecret: everything about a secret
// but its values.
type Description struct {
	SecretID string // the secret's name
	ARN      string
	Tags     map[string]string
	// Versions maps each version id to its labels, as VersionIdsToStages.
	// Versions without labels may be missing.
	Versions     map[string][]string
	Rotation     Rotation
	LastRotated  time.Time // zero if never rotated
	NextRotation time.Time // zero if not scheduled or unknown
	Created      time.Time
	LastChanged  time.Time
}

// VersionWithStage returns the id of the version that holds stage, or "".
func (d Description) VersionWithStage(stage string) string {
	for id, stages := range d.Versions {
		if hasStage(stages, stage) {
			return id
		}
	}
	return ""
}

// PendingVersion returns the id of the version that holds AWSPENDING while
// a rotation is in progress, or "" when none is. AWSPENDING on the
// AWSCURRENT version marks a completed rotation, so it returns "" then too.
func (d Description) PendingVersion() string {
	pending := d.VersionWithStage(StagePending)
	if pending == "" || hasStage(d.Versions[pending], StageCurrent) {
		return ""
	}
	return pending
}

// CreateInput describes a new secret. A secret created without a value has
// no versions until a rotation or a PutSecretValue gives it one.
type CreateInput struct {
	SecretID    string
	Description string
	Tags        map[string]string
	// Value, if set, becomes the first version, labelled AWSCURRENT, under
	// Token (a fresh UUID when Token is empty).
	Value Secret
	Token string
}

// PutInput writes a value under a token, as PutSecretValue.
//
// Without Stages the new version gets AWSCURRENT. A stage that another
// version holds moves to the new version. The same token with the same value
// is a no-op; with another value it fails with ErrExists. The empty AWSPENDING
// version that BeginRotation creates is filled exactly once this way.
//
// A Put that creates a new version with AWSCURRENT but not AWSPENDING
// abandons a rotation in progress, as PutSecretValue does: AWSPENDING leaves
// the pending version, so the next BeginRotation can start.
type PutInput struct {
	SecretID string
	Token    string
	Value    Secret
	Stages   []string
}

// StageInput moves or removes a label, as UpdateSecretVersionStage.
//
// To move a label that another version holds, RemoveFromVersion must name
// that version, otherwise ErrInvalidParameter. With MoveToVersion empty the
// label is removed from RemoveFromVersion. Moving AWSCURRENT gives
// AWSPREVIOUS to the version that held it.
type StageInput struct {
	SecretID          string
	Stage             string
	MoveToVersion     string
	RemoveFromVersion string
}

// Store is a set of versioned, labelled secrets with Secrets Manager's rules.
// Implementations are safe for concurrent use, and every error they return is
// an *Error that matches a sentinel (ErrNotFound and the others).
type Store interface {
	// Get reads one version. A version without a value is ErrNotFound.
	Get(ctx context.Context, secretID string, ref Ref) (Version, error)
	// Describe returns tags, labels and rotation settings.
	Describe(ctx context.Context, secretID string) (Description, error)
	// List returns the description of every secret it could read, sorted by
	// id. If some secrets could not be read, it also returns a non-nil error
	// that joins one *Error per failed secret. Each names the secret id or
	// its file and matches its own sentinel, such as ErrDecryption for a
	// damaged file. So callers should use the descriptions and report the
	// error. The joined error is not itself an *Error: errors.Is matches any
	// of the sentinels, and Unwrap() []error returns each *Error. When the
	// listing as a whole fails, as on a closed store, List returns no
	// descriptions and one *Error. The AWS store fails as a whole on any
	// ListSecrets error, because a failed page cannot be partly used.
	List(ctx context.Context) ([]Description, error)

	// Create makes a new secret; ErrExists if the id is taken.
	Create(ctx context.Context, in CreateInput) (Description, error)
	// Put writes a version under a token; see PutInput.
	Put(ctx context.Context, in PutInput) error
	// UpdateStage moves or removes a label; see StageInput.
	UpdateStage(ctx context.Context, in StageInput) error
	// Tag adds or replaces tags.
	Tag(ctx context.Context, secretID string, tags map[string]string) error
	// Untag removes tags by key.
	Untag(ctx context.Context, secretID string, keys []string) error

	// BeginRotation starts a rotation: it creates the empty AWSPENDING
	// version under token (a fresh UUID when token is empty) and returns its
	// id. While AWSPENDING is on a version other than AWSCURRENT's it fails
	// with ErrInvalidRequest. On AWS this is RotateSecret, which also invokes
	// the rotation function; on the file store the caller runs the steps.
	BeginRotation(ctx context.Context, secretID, token string) (string, error)
	// SetRotation stores the rotation configuration. On the file store this
	// is how a secret gets its schedule; on AWS Terraform sets it.
	SetRotation(ctx context.Context, secretID string, r Rotation) error
}
