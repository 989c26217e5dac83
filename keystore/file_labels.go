package keystore

import (
	"slices"
	"time"
)

// maxVersions is how many versions the file store keeps per secret before it
// deletes the oldest unlabelled ones, as Secrets Manager keeps about 100.
// NOTE: Secrets Manager also keeps every version younger than 24 hours. The
// file store does not, so a burst of writes prunes sooner than on AWS.
const maxVersions = 100

// secretRecord is everything the file store keeps about one secret. It is
// the plaintext of the secret's encrypted file.
type secretRecord struct {
	ID          string
	Description string
	Tags        map[string]string
	Versions    []*versionRecord // oldest first
	Rotation    Rotation
	LastRotated time.Time
	Created     time.Time
	LastChanged time.Time
}

// versionRecord is one version. A zero Value marks the empty AWSPENDING
// version that BeginRotation creates; the store rejects empty values.
type versionRecord struct {
	ID      string
	Stages  []string
	Value   Secret
	Created time.Time
}

func (v *versionRecord) has(stage string) bool { return hasStage(v.Stages, stage) }

func (v *versionRecord) remove(stage string) {
	v.Stages = slices.DeleteFunc(v.Stages, func(s string) bool { return s == stage })
}

func (r *secretRecord) version(id string) *versionRecord {
	for _, v := range r.Versions {
		if v.ID == id {
			return v
		}
	}
	return nil
}

// holder returns the version that holds stage, or nil.
func (r *secretRecord) holder(stage string) *versionRecord {
	for _, v := range r.Versions {
		if v.has(stage) {
			return v
		}
	}
	return nil
}

// attach moves stage onto v from whichever version holds it. Moving
// AWSCURRENT gives AWSPREVIOUS to the version that held it, and moving it
// onto the version that holds AWSPENDING completes a rotation.
func (r *secretRecord) attach(stage string, v *versionRecord, now time.Time) {
	old := r.holder(stage)
	if old == v {
		return
	}
	if old != nil {
		old.remove(stage)
	}
	if stage == StageCurrent && v.has(StagePending) {
		r.LastRotated = now
	}
	v.Stages = append(v.Stages, stage)
	if stage == StageCurrent && old != nil {
		r.attach(StagePrevious, old, now)
	}
}

// putVersion applies PutSecretValue's rules. It reports whether anything
// changed: the same token with the same value changes nothing.
func (r *secretRecord) putVersion(in PutInput, now time.Time) (bool, error) {
	const op = "PutSecretValue"
	v := r.version(in.Token)
	switch {
	case v != nil && !v.Value.IsZero() && v.Value.Equal(in.Value):
		return false, nil
	case v != nil && !v.Value.IsZero():
		return false, versionErr(ErrExists, op, r.ID, in.Token,
			"the version already has another value: versions cannot change, so write the new value under a new token")
	}
	stages := in.Stages
	if len(stages) == 0 {
		stages = []string{StageCurrent}
	}
	if v == nil {
		r.abandonRotation(stages)
		v = &versionRecord{ID: in.Token, Created: now}
		r.Versions = append(r.Versions, v)
	}
	v.Value = in.Value
	for _, s := range stages {
		r.attach(s, v, now)
	}
	return true, nil
}

// abandonRotation handles a new version that takes AWSCURRENT while a
// rotation is in progress. Writing the current value by hand abandons the
// rotation, as PutSecretValue does on AWS. So AWSPENDING leaves the version
// it was on, and a later BeginRotation can start.
//
// NOTE: AWS documents that PutSecretValue abandons a rotation (CloudTrail
// RotationAbandoned) but not exactly which writes do. Like the Secrets
// Manager test server, the file store counts only writes of a new version
// whose stages include AWSCURRENT and not AWSPENDING.
func (r *secretRecord) abandonRotation(stages []string) {
	if !hasStage(stages, StageCurrent) || hasStage(stages, StagePending) {
		return
	}
	if id := r.describe().PendingVersion(); id != "" {
		r.version(id).remove(StagePending)
	}
}

// updateStage applies UpdateSecretVersionStage's rules.
func (r *secretRecord) updateStage(in StageInput, now time.Time) error {
	const op = "UpdateSecretVersionStage"
	if in.MoveToVersion == "" && in.RemoveFromVersion == "" {
		return stageErr(ErrInvalidParameter, op, r.ID, in.Stage,
			"set MoveToVersion to attach the label, RemoveFromVersion to remove it, or both to move it")
	}
	holder := r.holder(in.Stage)
	if in.RemoveFromVersion != "" {
		if err := r.checkRemoveFrom(in, holder); err != nil {
			return err
		}
	}
	if in.MoveToVersion == "" {
		return r.removeStage(in, holder)
	}
	target := r.version(in.MoveToVersion)
	if target == nil {
		return r.missingVersion(op, in.MoveToVersion)
	}
	if holder != nil && holder != target && in.RemoveFromVersion != holder.ID {
		e := stageErr(ErrInvalidParameter, op, r.ID, in.Stage,
			"the label is attached to version %s: set RemoveFromVersion to %s to move it", holder.ID, holder.ID)
		e.VersionID = in.MoveToVersion
		return e
	}
	r.attach(in.Stage, target, now)
	return nil
}

func (r *secretRecord) checkRemoveFrom(in StageInput, holder *versionRecord) error {
	const op = "UpdateSecretVersionStage"
	if r.version(in.RemoveFromVersion) == nil {
		return r.missingVersion(op, in.RemoveFromVersion)
	}
	if holder == nil || holder.ID != in.RemoveFromVersion {
		e := stageErr(ErrInvalidParameter, op, r.ID, in.Stage,
			"the label is not attached to this version: describe the secret to see which version has it")
		e.VersionID = in.RemoveFromVersion
		return e
	}
	return nil
}

func (r *secretRecord) removeStage(in StageInput, holder *versionRecord) error {
	if in.Stage == StageCurrent {
		e := stageErr(ErrInvalidParameter, "UpdateSecretVersionStage", r.ID, in.Stage,
			"the label cannot be removed, only moved: set MoveToVersion to the version that should be current")
		e.VersionID = in.RemoveFromVersion
		return e
	}
	holder.remove(in.Stage)
	return nil
}

// beginRotation creates the empty AWSPENDING version under token, as
// RotateSecret does before it invokes the rotation function. Like
// RotateSecret, it turns rotation on.
func (r *secretRecord) beginRotation(token string, now time.Time) error {
	const op = "RotateSecret"
	if id := r.describe().PendingVersion(); id != "" {
		return versionErr(ErrInvalidRequest, op, r.ID, id,
			"a previous rotation isn't complete: finish it, or abandon it with 'rotator abandon %s'", r.ID)
	}
	if r.version(token) != nil {
		return versionErr(ErrExists, op, r.ID, token, "the version already exists: start the rotation with a new token")
	}
	// AWSPENDING, if any, is on the AWSCURRENT version: that rotation is
	// complete, so the label moves to the new version.
	if done := r.holder(StagePending); done != nil {
		done.remove(StagePending)
	}
	r.Versions = append(r.Versions, &versionRecord{ID: token, Stages: []string{StagePending}, Created: now})
	r.Rotation.Enabled = true
	return nil
}

// prune deletes the oldest unlabelled versions while the secret has more
// than maxVersions. Labelled versions are never deleted. It returns the
// number of versions deleted.
func (r *secretRecord) prune() int {
	excess := len(r.Versions) - maxVersions
	if excess <= 0 {
		return 0
	}
	kept := r.Versions[:0]
	deleted := 0
	for _, v := range r.Versions {
		if deleted < excess && len(v.Stages) == 0 {
			deleted++
			continue
		}
		kept = append(kept, v)
	}
	clear(r.Versions[len(kept):])
	r.Versions = kept
	return deleted
}

func (r *secretRecord) missingVersion(op, versionID string) *Error {
	return versionErr(ErrNotFound, op, r.ID, versionID, "no such version: describe the secret to see its versions")
}

// get selects a version as GetSecretValue does.
func (r *secretRecord) get(ref Ref) (*versionRecord, error) {
	const op = "GetSecretValue"
	if ref == (Ref{}) {
		ref.Stage = StageCurrent
	}
	var v *versionRecord
	if ref.VersionID != "" {
		v = r.version(ref.VersionID)
		if v == nil {
			return nil, r.missingVersion(op, ref.VersionID)
		}
		if ref.Stage != "" && !v.has(ref.Stage) {
			e := stageErr(ErrNotFound, op, r.ID, ref.Stage, "the version does not have this stage: describe the secret to see which version has it")
			e.VersionID = ref.VersionID
			return nil, e
		}
	} else if v = r.holder(ref.Stage); v == nil {
		return nil, stageErr(ErrNotFound, op, r.ID, ref.Stage, "no version has this stage: describe the secret to see its labels")
	}
	if v.Value.IsZero() {
		e := stageErr(ErrNotFound, op, r.ID, ref.Stage, "the version has no value yet: the rotation's createSecret step writes it")
		e.VersionID = v.ID
		return nil, e
	}
	return v, nil
}

// describe returns the record as DescribeSecret does: only labelled
// versions are listed.
func (r *secretRecord) describe() Description {
	d := Description{
		SecretID:    r.ID,
		Tags:        make(map[string]string, len(r.Tags)),
		Versions:    make(map[string][]string),
		Rotation:    r.Rotation,
		LastRotated: r.LastRotated,
		Created:     r.Created,
		LastChanged: r.LastChanged,
	}
	for k, v := range r.Tags {
		d.Tags[k] = v
	}
	for _, v := range r.Versions {
		if len(v.Stages) > 0 {
			d.Versions[v.ID] = slices.Clone(v.Stages)
		}
	}
	return d
}
