package smtest

import (
	"bytes"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyturn/keyturn/internal/schedule"
	"github.com/keyturn/keyturn/keystore"
)

// Staging labels the server treats specially.
const (
	stageCurrent  = "AWSCURRENT"
	stagePending  = "AWSPENDING"
	stagePrevious = "AWSPREVIOUS"
)

// Limits Secrets Manager enforces. Its quotas page states that it removes
// unlabelled versions when a secret has more than 100, but none created
// less than 24 hours ago.
const (
	maxVersions      = 100
	minPruneAge      = 24 * time.Hour
	maxTags          = 50
	maxTagKeyLen     = 128
	maxTagValueLen   = 256
	maxNameLen       = 512
	maxStagesPerCall = 20
	maxStageLen      = 256
	minTokenLen      = 32
	maxTokenLen      = 64
)

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]+$`)
	// tagPattern is the pattern AWS documents for tag keys and values:
	// Unicode letters, separators and numbers, and _ . : / = + - @.
	tagPattern = regexp.MustCompile(`^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`)
)

// secret is one secret and all its versions.
type secret struct {
	name        string
	arn         string
	description string
	tags        map[string]string
	versions    map[string]*version
	order       []string // version ids, oldest first

	created  time.Time
	changed  time.Time
	accessed time.Time

	rotationEnabled bool
	rotationSince   time.Time // when rotation was last turned on
	lambdaARN       string
	rules           *rulesWire
	schedule        *schedule.Schedule // parsed from rules
	lastRotated     time.Time

	deleted      time.Time // when DeleteSecret scheduled the deletion; zero if not
	deletionDate time.Time
}

// version is one version of a secret. A version without a value is the
// empty AWSPENDING version that RotateSecret creates.
type version struct {
	id       string
	str      *string
	bin      []byte
	stages   []string
	created  time.Time
	accessed time.Time
}

func (v *version) empty() bool { return v.str == nil && v.bin == nil }

func (v *version) has(stage string) bool { return slices.Contains(v.stages, stage) }

func (v *version) remove(stage string) {
	v.stages = slices.DeleteFunc(v.stages, func(s string) bool { return s == stage })
}

func (v *version) sameValue(str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) || (v.bin == nil) != (bin == nil) {
		return false
	}
	if str != nil && *v.str != *str {
		return false
	}
	return bytes.Equal(v.bin, bin)
}

// holder returns the version that holds stage, or nil.
func (s *secret) holder(stage string) *version {
	for _, v := range s.versions {
		if v.has(stage) {
			return v
		}
	}
	return nil
}

// rotationPending reports whether a rotation is incomplete: AWSPENDING sits
// on a version other than AWSCURRENT's.
func (s *secret) rotationPending() bool {
	return keystore.Description{Versions: s.stageMap()}.PendingVersion() != ""
}

// attach moves stage to v from whichever version holds it. Moving
// AWSCURRENT gives AWSPREVIOUS to the version that held it, and moving it
// onto the version that holds AWSPENDING completes a rotation.
func (s *secret) attach(v *version, stage string, now time.Time) {
	old := s.holder(stage)
	if old == v {
		return
	}
	if old != nil {
		old.remove(stage)
	}
	if stage == stageCurrent && v.has(stagePending) {
		s.lastRotated = now
	}
	v.stages = append(v.stages, stage)
	if stage == stageCurrent && old != nil {
		s.attach(old, stagePrevious, now)
	}
}

// addVersion stores a new version. Callers that may take the secret past
// maxVersions call makeRoom first.
func (s *secret) addVersion(v *version) {
	s.versions[v.id] = v
	s.order = append(s.order, v.id)
}

// makeRoom prunes unlabelled versions created at least minPruneAge before
// now, oldest first, until the secret has room for one more version under
// maxVersions. It reports whether there is room.
func (s *secret) makeRoom(now time.Time) bool {
	for len(s.order) >= maxVersions {
		i := slices.IndexFunc(s.order, func(id string) bool { return prunable(s.versions[id], now) })
		if i < 0 {
			return false
		}
		delete(s.versions, s.order[i])
		s.order = slices.Delete(s.order, i, i+1)
	}
	return true
}

func prunable(v *version, now time.Time) bool {
	return len(v.stages) == 0 && now.Sub(v.created) >= minPruneAge
}

// stageMap returns the labelled versions and their labels, as
// VersionIdsToStages.
func (s *secret) stageMap() map[string][]string {
	m := map[string][]string{}
	for id, v := range s.versions {
		if len(v.stages) > 0 {
			m[id] = slices.Clone(v.stages)
		}
	}
	return m
}

func (s *secret) tagList() []tagWire {
	keys := make([]string, 0, len(s.tags))
	for k := range s.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]tagWire, 0, len(keys))
	for _, k := range keys {
		tags = append(tags, tagWire{Key: k, Value: s.tags[k]})
	}
	return tags
}

// find selects a version by id, stage or both, as GetSecretValue does; a
// version without a value is not found.
func (s *secret) find(id, stage string) (*version, *apiError) {
	if id == "" && stage == "" {
		stage = stageCurrent
	}
	var v *version
	switch {
	case id != "":
		v = s.versions[id]
		if v != nil && stage != "" && !v.has(stage) {
			v = nil
		}
	default:
		v = s.holder(stage)
	}
	if v == nil || v.empty() {
		return nil, errValueNotFound(id, stage)
	}
	return v, nil
}

func errValueNotFound(id, stage string) *apiError {
	switch {
	case id != "" && stage != "":
		return newError(TypeResourceNotFound,
			"Secrets Manager can't find the specified secret value for VersionId: %s and staging label: %s", id, stage)
	case id != "":
		return newError(TypeResourceNotFound,
			"Secrets Manager can't find the specified secret value for VersionId: %s", id)
	}
	return newError(TypeResourceNotFound,
		"Secrets Manager can't find the specified secret value for staging label: %s", stage)
}

func checkName(name string) *apiError {
	if name == "" || len(name) > maxNameLen || !namePattern.MatchString(name) {
		return errInvalidParameter("Invalid name %q. Must be 1 to %d characters of letters, digits and /_+=.@-.",
			name, maxNameLen)
	}
	return nil
}

func checkToken(token string) *apiError {
	if token != "" && (len(token) < minTokenLen || len(token) > maxTokenLen) {
		return errInvalidParameter("ClientRequestToken %q must be %d to %d characters long.",
			token, minTokenLen, maxTokenLen)
	}
	return nil
}

func checkStages(stages []string) *apiError {
	if len(stages) > maxStagesPerCall {
		return errInvalidParameter("A version can have at most %d staging labels; the request names %d.",
			maxStagesPerCall, len(stages))
	}
	for _, st := range stages {
		if err := checkStage(st); err != nil {
			return err
		}
	}
	return nil
}

func checkStage(stage string) *apiError {
	if stage == "" || len(stage) > maxStageLen {
		return errInvalidParameter("Staging label %q must be 1 to %d characters long.", stage, maxStageLen)
	}
	return nil
}

// mergeTags returns tags with add applied, checked against Secrets
// Manager's tag rules.
func mergeTags(tags map[string]string, add []tagWire) (map[string]string, *apiError) {
	merged := make(map[string]string, len(tags)+len(add))
	for k, v := range tags {
		merged[k] = v
	}
	for _, t := range add {
		if err := checkTag(t); err != nil {
			return nil, err
		}
		merged[t.Key] = t.Value
	}
	if len(merged) > maxTags {
		return nil, errInvalidParameter("A secret can have at most %d tags; this request would give it %d.",
			maxTags, len(merged))
	}
	return merged, nil
}

func checkTag(t tagWire) *apiError {
	if err := checkTagKey(t.Key); err != nil {
		return err
	}
	if utf8.RuneCountInString(t.Value) > maxTagValueLen || !tagPattern.MatchString(t.Value) {
		return errInvalidParameter("Invalid value for tag %q: a tag value is at most %d characters of "+
			"letters, digits, spaces and _ . : / = + - @.", t.Key, maxTagValueLen)
	}
	return nil
}

func checkTagKey(key string) *apiError {
	n := utf8.RuneCountInString(key)
	if n == 0 || n > maxTagKeyLen || !tagPattern.MatchString(key) {
		return errInvalidParameter("Invalid tag key %q: a tag key is 1 to %d characters of "+
			"letters, digits, spaces and _ . : / = + - @.", key, maxTagKeyLen)
	}
	if strings.HasPrefix(strings.ToLower(key), "aws:") {
		return errInvalidParameter("Invalid tag key %q: the aws: prefix is reserved for AWS use.", key)
	}
	return nil
}
