package keystore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"
)

// fileFormat is the version of the plaintext layout inside a secret's file.
const fileFormat = 1

// maxSecretFileSize bounds how much of a secret file is read: 100 versions
// of at most 64 KiB each, with room for JSON escaping and the age header.
const maxSecretFileSize = 32 << 20

// fileRecord is the JSON form of a secretRecord.
type fileRecord struct {
	Format      int               `json:"format"`
	ID          string            `json:"id"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Versions    []fileVersion     `json:"versions"`
	Rotation    fileRotation      `json:"rotation"`
	LastRotated time.Time         `json:"last_rotated,omitzero"`
	Created     time.Time         `json:"created"`
	LastChanged time.Time         `json:"last_changed"`
}

type fileVersion struct {
	ID     string   `json:"id"`
	Stages []string `json:"stages,omitempty"`
	// Value is absent for the empty AWSPENDING version of a rotation.
	Value   *string   `json:"value,omitempty"`
	Created time.Time `json:"created"`
}

type fileRotation struct {
	Enabled                bool   `json:"enabled"`
	AutomaticallyAfterDays int64  `json:"automatically_after_days,omitempty"`
	ScheduleExpression     string `json:"schedule_expression,omitempty"`
	Duration               string `json:"duration,omitempty"`
	LambdaARN              string `json:"lambda_arn,omitempty"`
}

// encodeRecord returns the plaintext of a secret's file. The result holds
// secret values.
func encodeRecord(r *secretRecord) ([]byte, error) {
	f := fileRecord{
		Format: fileFormat, ID: r.ID, Description: r.Description, Tags: r.Tags,
		Versions:    make([]fileVersion, 0, len(r.Versions)),
		LastRotated: r.LastRotated, Created: r.Created, LastChanged: r.LastChanged,
		Rotation: fileRotation{
			Enabled:                r.Rotation.Enabled,
			AutomaticallyAfterDays: r.Rotation.Rules.AutomaticallyAfterDays,
			ScheduleExpression:     r.Rotation.Rules.ScheduleExpression,
			Duration:               r.Rotation.Rules.Duration,
			LambdaARN:              r.Rotation.LambdaARN,
		},
	}
	for _, v := range r.Versions {
		fv := fileVersion{ID: v.ID, Stages: v.Stages, Created: v.Created}
		if !v.Value.IsZero() {
			s := v.Value.Reveal()
			fv.Value = &s
		}
		f.Versions = append(f.Versions, fv)
	}
	return json.Marshal(f)
}

// decodeRecord parses the plaintext of a secret's file. Its errors never
// quote the plaintext, which holds secret values.
func decodeRecord(plain []byte) (*secretRecord, error) {
	var f fileRecord
	if err := json.Unmarshal(plain, &f); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("invalid JSON at byte %d", syn.Offset)
		}
		return nil, errors.New("unexpected JSON layout")
	}
	if f.Format != fileFormat {
		return nil, fmt.Errorf("format %d is not supported (this keyturn reads format %d): use the keyturn release that wrote it", f.Format, fileFormat)
	}
	r := &secretRecord{
		ID: f.ID, Description: f.Description, Tags: f.Tags,
		LastRotated: f.LastRotated, Created: f.Created, LastChanged: f.LastChanged,
		Rotation: Rotation{
			Enabled:   f.Rotation.Enabled,
			LambdaARN: f.Rotation.LambdaARN,
			Rules: RotationRules{
				AutomaticallyAfterDays: f.Rotation.AutomaticallyAfterDays,
				ScheduleExpression:     f.Rotation.ScheduleExpression,
				Duration:               f.Rotation.Duration,
			},
		},
	}
	if r.Tags == nil {
		r.Tags = map[string]string{}
	}
	for _, fv := range f.Versions {
		v := &versionRecord{ID: fv.ID, Stages: fv.Stages, Created: fv.Created}
		if fv.Value != nil {
			v.Value = NewSecret(*fv.Value)
		}
		r.Versions = append(r.Versions, v)
	}
	return r, nil
}

// sealRecord encrypts a record to the store's recipient.
func sealRecord(r *secretRecord, to age.Recipient) ([]byte, error) {
	plain, err := encodeRecord(r)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, to)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// errWrongIdentity reports a file that is encrypted to another identity.
var errWrongIdentity = errors.New("encrypted to another identity")

// openRecord decrypts and parses a secret's file. A file encrypted to
// another identity returns errWrongIdentity.
func openRecord(sealed []byte, ids []age.Identity) (*secretRecord, error) {
	r, err := age.Decrypt(bytes.NewReader(sealed), ids...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, errWrongIdentity
		}
		return nil, fmt.Errorf("not a readable age file: %w", err)
	}
	plain, err := io.ReadAll(r)
	defer clear(plain)
	if err != nil {
		return nil, fmt.Errorf("not a readable age file: %w", err)
	}
	return decodeRecord(plain)
}

// File names. A secret id's letters, digits and _+=.@- stay as they are; an
// uppercase letter becomes ^ and the letter in lowercase, so that ids
// differing only in case stay apart on case-insensitive file systems; / becomes
// ~. Neither ^ nor ~ may appear in a secret id, so the mapping reverses.
// Common file systems limit a file name to 255 bytes. A longer encoding is
// replaced by # and the SHA-256 of the id, and the id itself is inside the
// file.
const (
	secretFileExt    = ".age"
	maxFileNameLen   = 255
	hashedNamePrefix = "#"
)

func encodeFileName(id string) string {
	var b strings.Builder
	for _, r := range id {
		switch {
		case r == '/':
			b.WriteByte('~')
		case 'A' <= r && r <= 'Z':
			b.WriteByte('^')
			b.WriteRune(r - 'A' + 'a')
		default:
			b.WriteRune(r)
		}
	}
	name := b.String() + secretFileExt
	if len(name) > maxFileNameLen {
		sum := sha256.Sum256([]byte(id))
		return hashedNamePrefix + hex.EncodeToString(sum[:]) + secretFileExt
	}
	return name
}

// decodeFileName reverses encodeFileName. It reports false for names that
// encodeFileName does not produce and for hashed names, whose id is only in
// the file.
func decodeFileName(name string) (string, bool) {
	base, ok := strings.CutSuffix(name, secretFileExt)
	if !ok || base == "" || strings.HasPrefix(base, hashedNamePrefix) {
		return "", false
	}
	var b strings.Builder
	upper := false
	for _, r := range base {
		switch {
		case upper && 'a' <= r && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
			upper = false
		case upper:
			return "", false
		case r == '^':
			upper = true
		case r == '~':
			b.WriteByte('/')
		case IsSecretIDRune(r) && r != '/' && !('A' <= r && r <= 'Z'):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	if upper {
		return "", false
	}
	return b.String(), true
}

// isSecretFileName reports whether a directory entry is a secret's file, as
// opposed to a temporary file of an unfinished write.
func isSecretFileName(name string) bool {
	if strings.HasPrefix(name, hashedNamePrefix) {
		return strings.HasSuffix(name, secretFileExt)
	}
	_, ok := decodeFileName(name)
	return ok
}
