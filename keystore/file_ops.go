package keystore

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"time"

	"github.com/google/uuid"
)

// Create makes a new secret; see Store.
func (s *FileStore) Create(ctx context.Context, in CreateInput) (Description, error) {
	const op = "CreateSecret"
	if err := checkCreate(op, in); err != nil {
		return Description{}, err
	}
	unlock, err := s.acquire(ctx, op, in.SecretID)
	if err != nil {
		return Description{}, err
	}
	defer unlock()

	if _, err := os.Stat(s.secretPath(in.SecretID)); !errors.Is(err, fs.ErrNotExist) {
		if err != nil {
			return Description{}, &Error{Op: op, SecretID: in.SecretID, Kind: ErrUnavailable, Msg: "cannot check whether the secret's file exists: run as a user who can read the store directory", Err: err}
		}
		return Description{}, Errorf(ErrExists, op, in.SecretID, "a secret with this id already exists: choose another id, or change the existing secret")
	}
	r := newRecord(in, time.Now().UTC())
	if err := s.write(op, r); err != nil {
		return Description{}, err
	}
	return r.describe(), nil
}

// newRecord builds a new secret. A value becomes its first version,
// labelled AWSCURRENT.
func newRecord(in CreateInput, now time.Time) *secretRecord {
	r := &secretRecord{
		ID: in.SecretID, Description: in.Description, Tags: maps.Clone(in.Tags),
		Created: now, LastChanged: now,
	}
	if r.Tags == nil {
		r.Tags = map[string]string{}
	}
	if !in.Value.IsZero() {
		token := in.Token
		if token == "" {
			token = uuid.NewString()
		}
		r.Versions = []*versionRecord{{ID: token, Stages: []string{StageCurrent}, Value: in.Value, Created: now}}
	}
	return r
}

func checkCreate(op string, in CreateInput) error {
	if err := checkSecretID(op, in.SecretID); err != nil {
		return err
	}
	if err := checkDescription(op, in.SecretID, in.Description); err != nil {
		return err
	}
	if err := checkTags(op, in.SecretID, in.Tags, len(in.Tags)); err != nil {
		return err
	}
	if in.Token != "" {
		if err := checkToken(op, in.SecretID, in.Token); err != nil {
			return err
		}
	}
	if !in.Value.IsZero() {
		return checkValue(op, in.SecretID, in.Value)
	}
	return nil
}

// Put writes a version under a token; see PutInput.
func (s *FileStore) Put(ctx context.Context, in PutInput) error {
	const op = "PutSecretValue"
	if in.Token == "" {
		in.Token = uuid.NewString()
	}
	if err := checkPut(op, in); err != nil {
		return err
	}
	return s.update(ctx, op, in.SecretID, func(r *secretRecord, now time.Time) (bool, error) {
		return r.putVersion(in, now)
	})
}

func checkPut(op string, in PutInput) error {
	if err := checkSecretID(op, in.SecretID); err != nil {
		return err
	}
	if err := checkToken(op, in.SecretID, in.Token); err != nil {
		return err
	}
	if err := checkValue(op, in.SecretID, in.Value); err != nil {
		return err
	}
	return checkStages(op, in.SecretID, in.Stages)
}

// UpdateStage moves or removes a label; see StageInput.
func (s *FileStore) UpdateStage(ctx context.Context, in StageInput) error {
	const op = "UpdateSecretVersionStage"
	if err := checkSecretID(op, in.SecretID); err != nil {
		return err
	}
	if err := checkStage(op, in.SecretID, in.Stage); err != nil {
		return err
	}
	return s.update(ctx, op, in.SecretID, func(r *secretRecord, now time.Time) (bool, error) {
		return true, r.updateStage(in, now)
	})
}

// Tag adds or replaces tags.
func (s *FileStore) Tag(ctx context.Context, secretID string, tags map[string]string) error {
	const op = "TagResource"
	if err := checkSecretID(op, secretID); err != nil {
		return err
	}
	if err := checkTags(op, secretID, tags, 0); err != nil {
		return err
	}
	return s.update(ctx, op, secretID, func(r *secretRecord, _ time.Time) (bool, error) {
		merged := maps.Clone(r.Tags)
		maps.Copy(merged, tags)
		if err := checkTags(op, secretID, nil, len(merged)); err != nil {
			return false, err
		}
		r.Tags = merged
		return true, nil
	})
}

// Untag removes tags by key. Keys the secret does not have are ignored.
func (s *FileStore) Untag(ctx context.Context, secretID string, keys []string) error {
	const op = "UntagResource"
	if err := checkSecretID(op, secretID); err != nil {
		return err
	}
	for _, k := range keys {
		if err := checkTagKey(op, secretID, k); err != nil {
			return err
		}
	}
	return s.update(ctx, op, secretID, func(r *secretRecord, _ time.Time) (bool, error) {
		for _, k := range keys {
			delete(r.Tags, k)
		}
		return true, nil
	})
}

// BeginRotation creates the empty AWSPENDING version under token and turns
// rotation on, as RotateSecret does; the caller runs the rotation steps.
func (s *FileStore) BeginRotation(ctx context.Context, secretID, token string) (string, error) {
	const op = "RotateSecret"
	if err := checkSecretID(op, secretID); err != nil {
		return "", err
	}
	if token == "" {
		token = uuid.NewString()
	}
	if err := checkToken(op, secretID, token); err != nil {
		return "", err
	}
	err := s.update(ctx, op, secretID, func(r *secretRecord, now time.Time) (bool, error) {
		return true, r.beginRotation(token, now)
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// SetRotation stores the rotation configuration.
func (s *FileStore) SetRotation(ctx context.Context, secretID string, rot Rotation) error {
	const op = "SetRotation"
	if err := checkSecretID(op, secretID); err != nil {
		return err
	}
	if err := checkRules(op, secretID, rot.Rules); err != nil {
		return err
	}
	return s.update(ctx, op, secretID, func(r *secretRecord, _ time.Time) (bool, error) {
		r.Rotation = rot
		return true, nil
	})
}

// checkRules checks the shape of RotationRules as Secrets Manager's
// RotationRulesType does. The schedule expression itself is parsed by the
// scheduler, which reports its errors.
func checkRules(op, secretID string, rules RotationRules) error {
	switch {
	case rules.AutomaticallyAfterDays != 0 && rules.ScheduleExpression != "":
		return Errorf(ErrInvalidParameter, op, secretID,
			"rotation rules set both AutomaticallyAfterDays and ScheduleExpression: set one of them")
	case rules.AutomaticallyAfterDays < 0 || rules.AutomaticallyAfterDays > 1000:
		return Errorf(ErrInvalidParameter, op, secretID,
			"AutomaticallyAfterDays is %d: use 1 to 1000 days", rules.AutomaticallyAfterDays)
	case len(rules.ScheduleExpression) > 256:
		return Errorf(ErrInvalidParameter, op, secretID,
			"ScheduleExpression is %d characters long: the maximum is 256", len(rules.ScheduleExpression))
	}
	return nil
}
