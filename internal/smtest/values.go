package smtest

import (
	"slices"
	"time"

	"github.com/google/uuid"
)

const maxBatchIDs = 20

func (s *Server) getSecretValue(in *getIn) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.live(in.SecretId)
	if err != nil {
		return nil, err
	}
	v, err := sec.find(in.VersionId, in.VersionStage)
	if err != nil {
		return nil, err
	}
	return s.readValue(sec, v), nil
}

// readValue returns v's value and records the access, which Secrets Manager
// keeps to the day. The caller holds s.mu.
func (s *Server) readValue(sec *secret, v *version) valueOut {
	day := s.now().Truncate(24 * time.Hour)
	sec.accessed, v.accessed = day, day
	return valueOut{
		ARN: sec.arn, Name: sec.name, VersionId: v.id,
		SecretString: v.str, SecretBinary: v.bin,
		VersionStages: slices.Clone(v.stages), CreatedDate: stamp(v.created),
	}
}

// batchGetSecretValue returns the AWSCURRENT value of each secret named or
// matched, with per-secret failures in Errors inside a successful response.
func (s *Server) batchGetSecretValue(in *batchIn) (any, *apiError) {
	if err := checkBatch(in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := in.SecretIdList
	next := ""
	if len(in.Filters) > 0 {
		var err *apiError
		ids, next, err = s.batchPage(in)
		if err != nil {
			return nil, err
		}
	}
	out := batchOut{SecretValues: []valueOut{}, Errors: []batchError{}, NextToken: next}
	for _, id := range ids {
		v, err := s.currentValue(id)
		if err != nil {
			out.Errors = append(out.Errors, batchError{SecretId: id, ErrorCode: err.typ, Message: err.msg})
			continue
		}
		out.SecretValues = append(out.SecretValues, v)
	}
	return out, nil
}

func checkBatch(in *batchIn) *apiError {
	switch {
	case len(in.SecretIdList) > 0 && len(in.Filters) > 0:
		return errInvalidParameter("Specify either SecretIdList or Filters, not both.")
	case len(in.SecretIdList) == 0 && len(in.Filters) == 0:
		return errInvalidParameter("Specify SecretIdList or Filters.")
	case len(in.SecretIdList) > maxBatchIDs:
		return errInvalidParameter("SecretIdList names %d secrets; the maximum is %d.", len(in.SecretIdList), maxBatchIDs)
	case len(in.SecretIdList) > 0 && in.MaxResults != nil:
		return errInvalidParameter("MaxResults applies only to Filters, not to SecretIdList.")
	}
	return nil
}

// batchPage returns the names of one page of secrets matching the filters.
// The caller holds s.mu.
func (s *Server) batchPage(in *batchIn) ([]string, string, *apiError) {
	limit, err := pageSize(in.MaxResults, maxBatchIDs)
	if err != nil {
		return nil, "", err
	}
	matched, err := s.filtered(in.Filters, false)
	if err != nil {
		return nil, "", err
	}
	page, next, err := paginate(matched, in.NextToken, limit)
	if err != nil {
		return nil, "", err
	}
	names := make([]string, len(page))
	for i, sec := range page {
		names[i] = sec.name
	}
	return names, next, nil
}

func (s *Server) currentValue(id string) (valueOut, *apiError) {
	sec, err := s.live(id)
	if err != nil {
		return valueOut{}, err
	}
	v, err := sec.find("", stageCurrent)
	if err != nil {
		return valueOut{}, err
	}
	return s.readValue(sec, v), nil
}

func (s *Server) putSecretValue(in *putIn) (any, *apiError) {
	if err := checkPut(in); err != nil {
		return nil, err
	}
	token := in.ClientRequestToken
	if token == "" {
		token = uuid.NewString()
	}
	stages := in.VersionStages
	if len(stages) == 0 {
		stages = []string{stageCurrent}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.live(in.SecretId)
	if err != nil {
		return nil, err
	}
	now := s.now()
	v := sec.versions[token]
	switch {
	case v == nil:
		if !sec.makeRoom(now) {
			return nil, errTooManyVersions(sec)
		}
		v = &version{id: token, created: now}
		s.abandonRotation(sec, stages)
		sec.addVersion(v)
	case !v.empty() && v.sameValue(in.SecretString, in.SecretBinary):
		return putOut{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
	case !v.empty():
		return nil, newError(TypeResourceExists,
			"You can't modify an existing version, you can only create a new version.")
	}
	v.str, v.bin = in.SecretString, in.SecretBinary
	for _, st := range stages {
		sec.attach(v, st, now)
	}
	sec.changed = now
	return putOut{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
}

func checkPut(in *putIn) *apiError {
	if (in.SecretString == nil) == (in.SecretBinary == nil) {
		return errInvalidParameter("You must provide either SecretString or SecretBinary, but not both.")
	}
	if err := checkToken(in.ClientRequestToken); err != nil {
		return err
	}
	return checkStages(in.VersionStages)
}

// abandonRotation handles a new version that takes AWSCURRENT while a
// rotation is incomplete: writing the current value by hand abandons the
// rotation, so AWSPENDING leaves the version it was on and a later
// RotateSecret can start. The caller holds s.mu.
//
// NOTE: AWS documents that PutSecretValue abandons a rotation (CloudTrail
// RotationAbandoned) but not exactly which writes do; the server counts
// only writes that move AWSCURRENT.
func (s *Server) abandonRotation(sec *secret, stages []string) {
	if !slices.Contains(stages, stageCurrent) || slices.Contains(stages, stagePending) || !sec.rotationPending() {
		return
	}
	pending := sec.holder(stagePending)
	pending.remove(stagePending)
	s.log.Info("smtest rotation abandoned", "secret", sec.name, "version", pending.id)
}

// updateSecretVersionStage moves or removes a label. Moving a label that
// another version holds requires RemoveFromVersionId to name that version.
func (s *Server) updateSecretVersionStage(in *stageIn) (any, *apiError) {
	if err := checkStage(in.VersionStage); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.live(in.SecretId)
	if err != nil {
		return nil, err
	}
	if in.MoveToVersionId == "" {
		err = s.removeStage(sec, in)
	} else {
		err = s.moveStage(sec, in)
	}
	if err != nil {
		return nil, err
	}
	sec.changed = s.now()
	return nameOut{ARN: sec.arn, Name: sec.name}, nil
}

func (s *Server) removeStage(sec *secret, in *stageIn) *apiError {
	if in.RemoveFromVersionId == "" {
		return errInvalidParameter("Specify MoveToVersionId, RemoveFromVersionId or both.")
	}
	holder := sec.holder(in.VersionStage)
	if holder == nil || holder.id != in.RemoveFromVersionId {
		return errInvalidParameter("The staging label %s is not attached to version %s.",
			in.VersionStage, in.RemoveFromVersionId)
	}
	if in.VersionStage == stageCurrent {
		return errInvalidParameter("You can't remove the staging label AWSCURRENT without moving it: " +
			"set MoveToVersionId to the version that should become current.")
	}
	holder.remove(in.VersionStage)
	return nil
}

func (s *Server) moveStage(sec *secret, in *stageIn) *apiError {
	target := sec.versions[in.MoveToVersionId]
	if target == nil {
		return errValueNotFound(in.MoveToVersionId, "")
	}
	holder := sec.holder(in.VersionStage)
	switch {
	case in.RemoveFromVersionId != "" && (holder == nil || holder.id != in.RemoveFromVersionId):
		return errInvalidParameter("When you move staging label %s, if you specify RemoveFromVersionId, "+
			"it must be set to the version that currently has the staging label %s.", in.VersionStage, in.VersionStage)
	case holder != nil && holder != target && in.RemoveFromVersionId == "":
		return errInvalidParameter("The parameter RemoveFromVersionId can't be empty. Staging label %s is "+
			"currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.",
			in.VersionStage, holder.id)
	}
	sec.attach(target, in.VersionStage, s.now())
	return nil
}
