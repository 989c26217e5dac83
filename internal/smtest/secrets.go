package smtest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

const (
	defaultRecoveryDays = 30
	minRecoveryDays     = 7
	maxRecoveryDays     = 30
)

func (s *Server) createSecret(in *createIn) (any, *apiError) {
	if err := checkCreate(in); err != nil {
		return nil, err
	}
	tags, err := mergeTags(nil, in.Tags)
	if err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.secrets[in.Name]; old != nil {
		return s.createAgain(old, in)
	}
	now := s.now()
	sec := &secret{
		name: in.Name, arn: s.newARN(in.Name), description: in.Description,
		tags: tags, versions: map[string]*version{},
		created: now, changed: now,
	}
	s.secrets[in.Name] = sec
	out := nameOut{ARN: sec.arn, Name: sec.name}
	if in.SecretString != nil || in.SecretBinary != nil {
		token := in.ClientRequestToken
		if token == "" {
			token = uuid.NewString()
		}
		sec.addVersion(&version{id: token, str: in.SecretString, bin: in.SecretBinary,
			stages: []string{stageCurrent}, created: now})
		out.VersionId = token
	}
	return out, nil
}

func checkCreate(in *createIn) *apiError {
	if err := checkName(in.Name); err != nil {
		return err
	}
	if in.SecretString != nil && in.SecretBinary != nil {
		return errInvalidParameter("You can't specify both SecretString and SecretBinary.")
	}
	return checkToken(in.ClientRequestToken)
}

// createAgain handles a CreateSecret for a name that is taken. A retry of
// the request that created the secret (same token, same value) succeeds, as
// the SDK's idempotency token intends.
func (s *Server) createAgain(old *secret, in *createIn) (any, *apiError) {
	if !old.deleted.IsZero() {
		return nil, newError(TypeInvalidRequest,
			"You can't create this secret because a secret with this name is already scheduled for deletion.")
	}
	if v := old.versions[in.ClientRequestToken]; v != nil && v.sameValue(in.SecretString, in.SecretBinary) {
		return nameOut{ARN: old.arn, Name: old.name, VersionId: v.id}, nil
	}
	return nil, newError(TypeResourceExists, "The operation failed because the secret %s already exists.", in.Name)
}

// newARN returns an ARN with Secrets Manager's random six-character suffix.
func (s *Server) newARN(name string) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.opts.Region, s.opts.AccountID, name, b)
}

func (s *Server) describeSecret(in *idIn) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookup(in.SecretId)
	if err != nil {
		return nil, err
	}
	e := s.entry(sec)
	e.VersionIdsToStages = sec.stageMap()
	return e, nil
}

// entry describes sec without its labels, which DescribeSecret and
// ListSecrets put under different names. The caller holds s.mu.
func (s *Server) entry(sec *secret) secretEntry {
	return secretEntry{
		ARN: sec.arn, Name: sec.name, Description: sec.description,
		CreatedDate:       stamp(sec.created),
		LastChangedDate:   stamp(sec.changed),
		LastAccessedDate:  stamp(sec.accessed),
		LastRotatedDate:   stamp(sec.lastRotated),
		NextRotationDate:  stamp(s.nextRotation(sec)),
		DeletedDate:       stamp(sec.deleted),
		RotationEnabled:   sec.rotationEnabled,
		RotationLambdaARN: sec.lambdaARN,
		RotationRules:     sec.rules,
		Tags:              sec.tagList(),
	}
}

func (s *Server) listSecrets(in *listIn) (any, *apiError) {
	limit, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	matched, err := s.filtered(in.Filters, in.IncludePlannedDeletion)
	if err != nil {
		return nil, err
	}
	if err := sortSecrets(matched, in.SortBy, in.SortOrder); err != nil {
		return nil, err
	}
	page, next, err := paginate(matched, in.NextToken, limit)
	if err != nil {
		return nil, err
	}
	out := listOut{SecretList: []secretEntry{}, NextToken: next}
	for _, sec := range page {
		e := s.entry(sec)
		e.SecretVersionsToStages = sec.stageMap()
		out.SecretList = append(out.SecretList, e)
	}
	return out, nil
}

// filtered returns the secrets that match every filter, sorted by name.
// The caller holds s.mu.
func (s *Server) filtered(filters []filterWire, withDeleted bool) ([]*secret, *apiError) {
	for _, f := range filters {
		if err := checkFilter(f); err != nil {
			return nil, err
		}
	}
	var out []*secret
	for _, sec := range s.secrets {
		if !sec.deleted.IsZero() && !withDeleted {
			continue
		}
		if matchesAll(sec, filters) {
			out = append(out, sec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func sortSecrets(list []*secret, by, order string) *apiError {
	key := map[string]func(*secret) string{
		"": nil, "name": nil,
		"created-date":       func(s *secret) string { return s.created.Format(time.RFC3339Nano) },
		"last-changed-date":  func(s *secret) string { return s.changed.Format(time.RFC3339Nano) },
		"last-accessed-date": func(s *secret) string { return s.accessed.Format(time.RFC3339Nano) },
	}
	fn, ok := key[by]
	if !ok {
		return errInvalidParameter("Invalid SortBy %q: use name, created-date, last-changed-date or last-accessed-date.", by)
	}
	if order != "" && order != "asc" && order != "desc" {
		return errInvalidParameter("Invalid SortOrder %q: use asc or desc.", order)
	}
	if fn != nil {
		sort.SliceStable(list, func(i, j int) bool { return fn(list[i]) < fn(list[j]) })
	}
	if order == "desc" {
		for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
			list[i], list[j] = list[j], list[i]
		}
	}
	return nil
}

// pageSize checks MaxResults against 1..limit; nil means limit.
func pageSize(max *int32, limit int) (int, *apiError) {
	if max == nil {
		return limit, nil
	}
	if *max < 1 || int(*max) > limit {
		return 0, errInvalidParameter("MaxResults %d is out of range: use 1 to %d.", *max, limit)
	}
	return int(*max), nil
}

// paginate returns one page of list and the token for the next, which is
// the base64 offset of its first item.
func paginate[T any](list []T, token string, size int) ([]T, string, *apiError) {
	start := 0
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		n, err2 := strconv.Atoi(string(raw))
		if err != nil || err2 != nil || n < 0 || n > len(list) {
			return nil, "", newError(TypeInvalidNextToken, "The NextToken value is not valid.")
		}
		start = n
	}
	end := min(start+size, len(list))
	next := ""
	if end < len(list) {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	return list[start:end], next, nil
}

func (s *Server) listSecretVersionIds(in *versionsIn) (any, *apiError) {
	limit, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookup(in.SecretId)
	if err != nil {
		return nil, err
	}
	var all []versionEntry
	for i := len(sec.order) - 1; i >= 0; i-- { // newest first
		v := sec.versions[sec.order[i]]
		if len(v.stages) == 0 && !in.IncludeDeprecated {
			continue
		}
		all = append(all, versionEntry{VersionId: v.id, VersionStages: v.stages,
			CreatedDate: stamp(v.created), LastAccessedDate: stamp(v.accessed)})
	}
	page, next, err := paginate(all, in.NextToken, limit)
	if err != nil {
		return nil, err
	}
	return versionsOut{ARN: sec.arn, Name: sec.name, Versions: append([]versionEntry{}, page...), NextToken: next}, nil
}

// deleteSecret schedules a deletion, or with ForceDeleteWithoutRecovery
// removes the secret at once.
//
// NOTE: a scheduled deletion never completes; the secret stays marked
// deleted until RestoreSecret or a forced DeleteSecret.
func (s *Server) deleteSecret(in *deleteIn) (any, *apiError) {
	days, err := recoveryDays(in)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookup(in.SecretId)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if in.ForceDeleteWithoutRecovery {
		delete(s.secrets, sec.name)
		s.cancelRuns(sec.name)
		return deleteOut{ARN: sec.arn, Name: sec.name, DeletionDate: stamp(now)}, nil
	}
	if !sec.deleted.IsZero() {
		return nil, errMarkedForDeletion()
	}
	sec.deleted = now
	sec.deletionDate = now.AddDate(0, 0, days)
	return deleteOut{ARN: sec.arn, Name: sec.name, DeletionDate: stamp(sec.deletionDate)}, nil
}

func recoveryDays(in *deleteIn) (int, *apiError) {
	if in.RecoveryWindowInDays == nil {
		return defaultRecoveryDays, nil
	}
	if in.ForceDeleteWithoutRecovery {
		return 0, errInvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	d := *in.RecoveryWindowInDays
	if d < minRecoveryDays || d > maxRecoveryDays {
		return 0, errInvalidParameter("The RecoveryWindowInDays value must be between %d and %d days (inclusive).",
			minRecoveryDays, maxRecoveryDays)
	}
	return int(d), nil
}

func (s *Server) restoreSecret(in *idIn) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookup(in.SecretId)
	if err != nil {
		return nil, err
	}
	sec.deleted, sec.deletionDate = time.Time{}, time.Time{}
	return nameOut{ARN: sec.arn, Name: sec.name}, nil
}

func (s *Server) tagResource(in *tagIn) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.live(in.SecretId)
	if err != nil {
		return nil, err
	}
	tags, err := mergeTags(sec.tags, in.Tags)
	if err != nil {
		return nil, err
	}
	sec.tags, sec.changed = tags, s.now()
	return nil, nil
}

func (s *Server) untagResource(in *untagIn) (any, *apiError) {
	for _, k := range in.TagKeys {
		if k == "" || len(k) > maxTagKeyLen {
			return nil, errInvalidParameter("Invalid tag key %q: a tag key is 1 to %d characters.", k, maxTagKeyLen)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.live(in.SecretId)
	if err != nil {
		return nil, err
	}
	for _, k := range in.TagKeys {
		delete(sec.tags, k)
	}
	sec.changed = s.now()
	return nil, nil
}

// matchesAll reports whether sec matches every filter. Within one filter a
// secret matches if any value matches; a value starting with ! negates.
func matchesAll(sec *secret, filters []filterWire) bool {
	for _, f := range filters {
		if !matchesAny(sec, f) {
			return false
		}
	}
	return true
}

func matchesAny(sec *secret, f filterWire) bool {
	for _, v := range f.Values {
		neg := strings.HasPrefix(v, "!")
		if matchesValue(sec, f.Key, strings.TrimPrefix(v, "!")) != neg {
			return true
		}
	}
	return false
}

func matchesValue(sec *secret, key, value string) bool {
	switch key {
	case "name":
		return strings.HasPrefix(sec.name, value)
	case "description":
		return strings.HasPrefix(strings.ToLower(sec.description), strings.ToLower(value))
	case "tag-key":
		return anyTag(sec, func(k, _ string) bool { return strings.HasPrefix(k, value) })
	case "tag-value":
		return anyTag(sec, func(_, v string) bool { return strings.HasPrefix(v, value) })
	case "primary-region", "owning-service":
		return value == ""
	}
	return matchesWords(sec, value) // "all"
}

// matchesWords implements the "all" filter: every word of value must start
// one of the secret's attributes, ignoring case.
func matchesWords(sec *secret, value string) bool {
	attrs := []string{sec.name, sec.description}
	for k, v := range sec.tags {
		attrs = append(attrs, k, v)
	}
	for _, w := range strings.Fields(strings.ToLower(value)) {
		found := false
		for _, a := range attrs {
			if strings.HasPrefix(strings.ToLower(a), w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func anyTag(sec *secret, match func(k, v string) bool) bool {
	for k, v := range sec.tags {
		if match(k, v) {
			return true
		}
	}
	return false
}

func checkFilter(f filterWire) *apiError {
	switch f.Key {
	case "name", "description", "tag-key", "tag-value", "primary-region", "owning-service", "all":
	default:
		return errInvalidParameter("Invalid filter key %q: use name, description, tag-key, tag-value, "+
			"primary-region, owning-service or all.", f.Key)
	}
	if len(f.Values) == 0 || len(f.Values) > 10 {
		return errInvalidParameter("Filter %s needs 1 to 10 values.", f.Key)
	}
	return nil
}
