package keystore

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits, as Secrets Manager's API reference states them for
// CreateSecret, PutSecretValue, UpdateSecretVersionStage and TagResource.
const (
	minTokenLen       = 32
	maxTokenLen       = 64
	maxStageLen       = 256
	maxStagesPerPut   = 20
	maxDescriptionLen = 2048
	maxValueLen       = 65536
	maxTags           = 50
	maxTagKeyLen      = 128
	maxTagValueLen    = 256
)

// Secrets Manager's rule for secret names, which both stores apply: 1 to
// MaxSecretIDLen ASCII letters, digits and the characters of
// SecretIDPunctuation.
const (
	MaxSecretIDLen      = 512
	SecretIDPunctuation = "/_+=.@-"
)

// checkSecretID applies Secrets Manager's name rules: 1 to 512 ASCII
// letters, digits and /_+=.@-.
func checkSecretID(op, id string) error {
	if id == "" {
		return Errorf(ErrInvalidParameter, op, "", "secret id is empty: use 1 to %d letters, digits and %s", MaxSecretIDLen, SecretIDPunctuation)
	}
	if len(id) > MaxSecretIDLen {
		return Errorf(ErrInvalidParameter, op, quoteID(id), "secret id is %d characters long: the maximum is %d", len(id), MaxSecretIDLen)
	}
	for i, r := range id {
		if !IsSecretIDRune(r) {
			return Errorf(ErrInvalidParameter, op, quoteID(id), "invalid character %q at byte %d of the secret id: use letters, digits and %s", r, i, SecretIDPunctuation)
		}
	}
	return nil
}

// IsSecretIDRune reports whether r may appear in a secret name.
func IsSecretIDRune(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune(SecretIDPunctuation, r)
}

// quoteID makes an invalid secret id safe to print: quoted, control
// characters escaped, and cut to the first 100 bytes.
func quoteID(id string) string { return fmt.Sprintf("%.100q", id) }

// checkToken applies Secrets Manager's ClientRequestToken rule: 32 to 64
// characters. Secrets Manager sets no pattern; the SDKs send UUIDs.
func checkToken(op, secretID, token string) error {
	n := utf8.RuneCountInString(token)
	if n >= minTokenLen && n <= maxTokenLen {
		return nil
	}
	e := Errorf(ErrInvalidParameter, op, secretID,
		"token is %d characters long: use %d to %d characters, such as a UUID, or leave it empty for a fresh one", n, minTokenLen, maxTokenLen)
	e.VersionID = fmt.Sprintf("%.100q", token)
	return e
}

// checkStages checks the labels of a PutSecretValue: at most 20, each 1 to
// 256 characters, no repeats.
func checkStages(op, secretID string, stages []string) error {
	if len(stages) > maxStagesPerPut {
		return Errorf(ErrInvalidParameter, op, secretID, "%d stages given: a version can have at most %d", len(stages), maxStagesPerPut)
	}
	seen := make(map[string]bool, len(stages))
	for _, s := range stages {
		if err := checkStage(op, secretID, s); err != nil {
			return err
		}
		if seen[s] {
			return stageErr(ErrInvalidParameter, op, secretID, s, "stage is listed twice: list each stage once")
		}
		seen[s] = true
	}
	return nil
}

func checkStage(op, secretID, stage string) error {
	n := utf8.RuneCountInString(stage)
	if n == 0 {
		return Errorf(ErrInvalidParameter, op, secretID, "stage is empty: name a label such as %s", StageCurrent)
	}
	if n > maxStageLen {
		return Errorf(ErrInvalidParameter, op, secretID, "stage is %d characters long: the maximum is %d", n, maxStageLen)
	}
	return nil
}

func checkDescription(op, secretID, description string) error {
	if n := utf8.RuneCountInString(description); n > maxDescriptionLen {
		return Errorf(ErrInvalidParameter, op, secretID, "description is %d characters long: the maximum is %d", n, maxDescriptionLen)
	}
	return nil
}

// checkValue rejects values the file store cannot hold. An empty value is
// rejected because the store uses "no value" to mark the empty AWSPENDING
// version of a rotation.
func checkValue(op, secretID string, v Secret) error {
	if v.IsZero() {
		return Errorf(ErrInvalidParameter, op, secretID, "value is empty: give a non-empty value")
	}
	if v.Len() > maxValueLen {
		return Errorf(ErrInvalidParameter, op, secretID, "value is %d bytes: the maximum is %d", v.Len(), maxValueLen)
	}
	return nil
}

// checkTags applies Secrets Manager's tag rules to tags, and the 50-tag limit
// to the secret's tags after the change (total).
func checkTags(op, secretID string, tags map[string]string, total int) error {
	for k, v := range tags {
		if err := checkTagKey(op, secretID, k); err != nil {
			return err
		}
		if n := utf8.RuneCountInString(v); n > maxTagValueLen {
			return Errorf(ErrInvalidParameter, op, secretID, "tag %q: value is %d characters long: the maximum is %d", k, n, maxTagValueLen)
		}
		if i := invalidTagRune(v); i >= 0 {
			return Errorf(ErrInvalidParameter, op, secretID, "tag %q: invalid character %q in the value: %s", k, []rune(v)[i], tagCharsHint)
		}
	}
	if total > maxTags {
		return Errorf(ErrInvalidParameter, op, secretID, "the secret would have %d tags, but the maximum is %d: remove some tags first", total, maxTags)
	}
	return nil
}

const tagCharsHint = "use letters, numbers, spaces and _ . : / = + - @"

func checkTagKey(op, secretID, key string) error {
	n := utf8.RuneCountInString(key)
	if n == 0 {
		return Errorf(ErrInvalidParameter, op, secretID, "tag key is empty: give every tag a key")
	}
	if n > maxTagKeyLen {
		return Errorf(ErrInvalidParameter, op, secretID, "tag %.100q: key is %d characters long: the maximum is %d", key, n, maxTagKeyLen)
	}
	if i := invalidTagRune(key); i >= 0 {
		return Errorf(ErrInvalidParameter, op, secretID, "tag %q: invalid character %q in the key: %s", key, []rune(key)[i], tagCharsHint)
	}
	if strings.HasPrefix(strings.ToLower(key), "aws:") {
		return Errorf(ErrInvalidParameter, op, secretID, "tag %q: the aws: prefix is reserved for AWS, so choose another key", key)
	}
	return nil
}

// invalidTagRune returns the index, in runes, of the first character that a
// tag key or value must not contain, or -1. The allowed characters are those
// of the pattern AWS documents for tags, ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$:
// Unicode letters, separators (spaces, but not tabs or newlines) and
// numbers, and _ . : / = + - @. Invalid UTF-8 is rejected.
func invalidTagRune(s string) int {
	for i, r := range []rune(s) {
		ok := unicode.In(r, unicode.L, unicode.Z, unicode.N) || strings.ContainsRune("_.:/=+-@", r)
		if !ok {
			return i
		}
	}
	return -1
}

// stageErr builds an *Error about one stage of a secret.
func stageErr(kind error, op, secretID, stage, format string, args ...any) *Error {
	e := Errorf(kind, op, secretID, format, args...)
	e.Stage = stage
	return e
}

// versionErr builds an *Error about one version of a secret.
func versionErr(kind error, op, secretID, versionID, format string, args ...any) *Error {
	e := Errorf(kind, op, secretID, format, args...)
	e.VersionID = versionID
	return e
}
