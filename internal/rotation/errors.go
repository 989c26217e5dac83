package rotation

import (
	"errors"
	"fmt"
	"strings"

	"github.com/keyturn/keyturn/keystore"
)

// Sentinel errors for the outcomes callers branch on. Every error the engine
// returns from a step, RotateNow or Stage is an *Error that matches one of
// them with errors.Is.
var (
	// ErrRejected: the provider, or keyturn's own checks, rejected the new
	// key for good. It is never promoted.
	ErrRejected = errors.New("key rejected")
	// ErrTransient: a timeout, rate limit, 5xx or store outage; the same
	// step may succeed when retried.
	ErrTransient = errors.New("transient failure")
	// ErrNothingToPromote: no key is staged and the issuer cannot mint one.
	ErrNothingToPromote = errors.New("nothing to promote")
	// ErrInProgress: another rotation of the secret has not finished.
	ErrInProgress = errors.New("rotation in progress")
	// ErrConfig: the secret's settings, rotation configuration or issuer
	// setup is wrong; retrying will not help until it is fixed.
	ErrConfig = errors.New("invalid configuration")
	// ErrNotPending: the token is not a version of the secret, or its
	// version is not AWSPENDING.
	ErrNotPending = errors.New("version not pending")
)

// Error describes a failed rotation operation. Its message names the
// operation, secret and version, never a key, because a rotation Lambda's
// error text goes to Secrets Manager and CloudWatch.
type Error struct {
	Op        string // a Step name, "stage" or "rotate"
	SecretID  string
	VersionID string // the rotation token or version involved, if any
	Kind      error  // one of the sentinel errors
	Msg       string // the failure and the next step to take, lowercase
	Err       error  // underlying cause, may be nil

	// failure is the last_failure record a rejection wrote, if any.
	failure *keystore.Failure
}

func (e *Error) Error() string {
	s := e.Op + " " + e.SecretID
	if e.VersionID != "" {
		s += " version " + e.VersionID
	}
	s += ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is matches the error's kind, so errors.Is(err, ErrRejected) works.
func (e *Error) Is(target error) bool { return target == e.Kind }

func (e *Error) Unwrap() error { return e.Err }

// class names the error's kind for logs and last_failure records.
func class(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrTransient):
		return "transient"
	case errors.Is(err, ErrNothingToPromote):
		return "nothing_to_promote"
	case errors.Is(err, ErrInProgress):
		return "in_progress"
	case errors.Is(err, ErrConfig):
		return "config"
	case errors.Is(err, ErrNotPending):
		return "not_pending"
	}
	return "error"
}

// reason returns the public message of err without its operation prefix.
func reason(err error) string {
	var re *Error
	if errors.As(err, &re) {
		if re.Err != nil {
			return re.Msg + ": " + re.Err.Error()
		}
		return re.Msg
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// storeKind sorts a store error. A store that cannot be reached, and a
// rotation in progress that another rotator is finishing, may pass on a
// retry. Every other store error needs an operator: a missing secret, an
// undecryptable value, a value too large, a token that holds another
// value, an exceeded quota. An error that is not from the store counts as
// transient.
func storeKind(err error) error {
	switch {
	case errors.Is(err, keystore.ErrUnavailable):
		return ErrTransient
	case errors.Is(err, keystore.ErrInvalidRequest) && rotationIncomplete(err):
		return ErrTransient
	case errors.Is(err, keystore.ErrNotFound), errors.Is(err, keystore.ErrDecryption),
		errors.Is(err, keystore.ErrInvalidParameter), errors.Is(err, keystore.ErrExists),
		errors.Is(err, keystore.ErrInvalidRequest):
		return ErrConfig
	}
	return ErrTransient
}

// rotationIncomplete reports whether a store's ErrInvalidRequest states that
// a previous rotation isn't complete, in the words both stores use (those
// of Secrets Manager's RotateSecret).
func rotationIncomplete(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "previous rotation isn't complete")
}

// errorf builds an *Error whose operation, secret and version come from c.
func (c *call) errorf(kind error, cause error, format string, args ...any) *Error {
	return &Error{
		Op: c.op, SecretID: c.secretID, VersionID: c.token,
		Kind: kind, Msg: fmt.Sprintf(format, args...), Err: cause,
	}
}

// storeError wraps a failed store operation with what the engine was doing.
func (c *call) storeError(err error, doing string) *Error {
	return c.errorf(storeKind(err), err, "%s", doing)
}
