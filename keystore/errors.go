package keystore

import (
	"errors"
	"fmt"
)

// Sentinel errors for the states callers branch on. Every error a Store
// returns matches one of them with errors.Is, and is an *Error with the
// secret id and version or stage involved.
var (
	// ErrNotFound: no such secret, version or stage, or the version has no
	// value yet (the empty AWSPENDING version of a rotation).
	ErrNotFound = errors.New("not found")
	// ErrExists: the secret exists, or the token already holds another value.
	ErrExists = errors.New("already exists")
	// ErrInvalidRequest: the request conflicts with the secret's state, such
	// as a rotation that is already in progress.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidParameter: a parameter is malformed or violates a label rule,
	// such as moving a label without naming the version that holds it.
	ErrInvalidParameter = errors.New("invalid parameter")
	// ErrDecryption: the value cannot be decrypted with the store's key.
	ErrDecryption = errors.New("decryption failed")
	// ErrUnavailable: the store could not be reached or failed internally; the
	// operation may succeed when retried.
	ErrUnavailable = errors.New("store unavailable")
)

// Error describes a failed store operation. Its message names the operation,
// secret, version and stage, never a value, so it is safe to log and to
// return to Secrets Manager.
type Error struct {
	Op        string // operation, such as "PutSecretValue"
	SecretID  string
	VersionID string // empty when not relevant
	Stage     string // empty when not relevant
	Kind      error  // one of the sentinel errors
	Msg       string // the failure and its fix, lowercase
	Err       error  // underlying cause, may be nil
}

func (e *Error) Error() string {
	s := e.Op
	if e.SecretID != "" {
		s += " " + e.SecretID
	}
	if e.VersionID != "" {
		s += " version " + e.VersionID
	}
	if e.Stage != "" {
		s += " stage " + e.Stage
	}
	s += ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is matches the error's kind, so errors.Is(err, ErrNotFound) works.
func (e *Error) Is(target error) bool { return target == e.Kind }

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error of the given kind. Store implementations use it so
// that both stores word their errors the same way.
func Errorf(kind error, op, secretID string, format string, args ...any) *Error {
	return &Error{Op: op, SecretID: secretID, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
