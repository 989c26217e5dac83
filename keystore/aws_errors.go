package keystore

import (
	"context"
	"errors"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// kindOfCode maps Secrets Manager error codes to sentinels. Codes not
// listed are classified by their fault: server faults are ErrUnavailable,
// client faults ErrInvalidRequest.
var kindOfCode = map[string]error{
	"ResourceNotFoundException": ErrNotFound,
	"ResourceExistsException":   ErrExists,
	"InvalidRequestException":   ErrInvalidRequest,
	// A quota, such as the versions per secret, that the SDK's throttling
	// retries did not outlast: it clears only as versions age or labels are
	// removed, so callers treat it as a conflict with the secret's state.
	"LimitExceededException":    ErrInvalidRequest,
	"InvalidParameterException": ErrInvalidParameter,
	"ValidationException":       ErrInvalidParameter,
	"InvalidNextTokenException": ErrInvalidParameter,
	"DecryptionFailure":         ErrDecryption,
	"EncryptionFailure":         ErrDecryption,
	"InternalServiceError":      ErrUnavailable,
	"InternalFailure":           ErrUnavailable,
	"ServiceUnavailable":        ErrUnavailable,
	"ThrottlingException":       ErrUnavailable,
	"Throttling":                ErrUnavailable,
	"TooManyRequestsException":  ErrUnavailable,
	"RequestLimitExceeded":      ErrUnavailable,
	"RequestTimeout":            ErrUnavailable,
	"RequestTimeoutException":   ErrUnavailable,
	// Credentials and permissions: the store cannot serve this caller until
	// an operator fixes them, so callers treat it like an outage and keep
	// any value they hold.
	"AccessDeniedException":       ErrUnavailable,
	"UnrecognizedClientException": ErrUnavailable,
	"InvalidSignatureException":   ErrUnavailable,
	"ExpiredTokenException":       ErrUnavailable,
}

var kindMessages = map[error]string{
	ErrNotFound:         "not found in Secrets Manager",
	ErrExists:           "already exists in Secrets Manager",
	ErrInvalidRequest:   "Secrets Manager rejected the request for the secret's current state",
	ErrInvalidParameter: "Secrets Manager rejected a parameter",
	ErrDecryption:       "Secrets Manager could not decrypt or encrypt the value: check the secret's KMS key and its key policy",
	ErrUnavailable:      "Secrets Manager returned a server error: retry later",
}

// unavailableMessages word the ErrUnavailable codes that are not server
// faults: what happened, and what fixes it.
var unavailableMessages = map[string]string{
	"ThrottlingException":      throttled,
	"Throttling":               throttled,
	"TooManyRequestsException": throttled,
	"RequestLimitExceeded":     throttled,
	"RequestTimeout":           timedOut,
	"RequestTimeoutException":  timedOut,
	"AccessDeniedException":    "Secrets Manager denied access: check the IAM policy of the caller's role and the secret's resource policy",
	"ExpiredTokenException":    "Secrets Manager rejected the credentials because they expired: renew them",
	"UnrecognizedClientException": "Secrets Manager rejected the credentials: check the access key this process uses " +
		"and that it belongs to the region's partition",
	"InvalidSignatureException": "Secrets Manager rejected the request signature: check the secret access key " +
		"and that the system clock is correct",
}

const (
	throttled = "Secrets Manager throttled the request, and the SDK's retries did not outlast it: retry later"
	timedOut  = "the request to Secrets Manager timed out: retry later"
)

// awsError wraps an SDK error as an *Error. Its cause is the service's API
// error (code and message) when there is one, which keeps the text short.
// Neither the SDK's errors nor the service's messages carry a secret value.
func awsError(op, secretID, versionID, stage string, err error) error {
	kind, cause := classify(err)
	e := &Error{
		Op: op, SecretID: secretID, VersionID: versionID, Stage: stage,
		Kind: kind, Msg: message(kind, cause, secretID), Err: cause,
	}
	if e.Msg == noResponse {
		return unreachableError{e}
	}
	return e
}

// unreachableError is the *Error of a request that got no response from
// Secrets Manager. Its message leads with the request and the advice,
// because the SDK's error that follows them is long.
type unreachableError struct{ err *Error }

func (u unreachableError) Error() string {
	e := u.err
	request := e.Op
	if e.SecretID != "" {
		request += " " + e.SecretID
	}
	if e.VersionID != "" {
		request += " version " + e.VersionID
	}
	if e.Stage != "" {
		request += " stage " + e.Stage
	}
	return "could not reach Secrets Manager (" + request + "). " + noResponseAdvice +
		" AWS SDK error: " + e.Err.Error()
}

// Unwrap returns the *Error, so that errors.As and errors.Is see it.
func (u unreachableError) Unwrap() error { return u.err }

// rotationInProgress is part of the message Secrets Manager gives when
// RotateSecret finds AWSPENDING on a version other than AWSCURRENT's.
const rotationInProgress = "previous rotation isn't complete"

// versionQuota words a LimitExceededException, naming the quota that
// frequent rotations reach.
const versionQuota = "Secrets Manager refused the request because it would exceed a quota, " +
	"such as its limit of 100 versions per secret, and it removes no labelled version and " +
	"no version younger than 24 hours to make room: write new versions less often, " +
	"or remove labels that are no longer needed"

// message words the error for the caller. A rotation in progress and an
// exceeded quota get their own messages, since callers wait for them or
// unblock them.
func message(kind, cause error, secretID string) string {
	var apiErr smithy.APIError
	if !errors.As(cause, &apiErr) {
		if kind == ErrUnavailable {
			return unreachableMessage(cause)
		}
		return kindMessages[kind]
	}
	if msg, ok := unavailableMessages[apiErr.ErrorCode()]; ok && kind == ErrUnavailable {
		return msg
	}
	switch {
	case kind == ErrInvalidRequest && strings.Contains(apiErr.ErrorMessage(), rotationInProgress):
		return "a " + rotationInProgress + ": wait for it to finish, " +
			"or abandon it with 'rotator abandon " + secretID + "'"
	case apiErr.ErrorCode() == "LimitExceededException":
		return versionQuota
	}
	return kindMessages[kind]
}

// unreachableMessage words a request that got no response from Secrets
// Manager. The cause, appended to the message, gives the reason.
func unreachableMessage(cause error) string {
	switch {
	case errors.Is(cause, context.DeadlineExceeded):
		return timedOut
	case errors.Is(cause, context.Canceled):
		return "the request to Secrets Manager was canceled"
	}
	return noResponse
}

// noResponse is the Msg of an unreachableError.
const noResponse = "could not reach Secrets Manager. " + noResponseAdvice

const noResponseAdvice = "Check the network, the region and the endpoint " +
	"(AWS_ENDPOINT_URL_SECRETS_MANAGER, if set), then retry."

func classify(err error) (kind, cause error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ErrUnavailable, err
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if k, ok := kindOfCode[apiErr.ErrorCode()]; ok {
			return k, apiErr
		}
		if apiErr.ErrorFault() == smithy.FaultClient || httpStatus(err)/100 == 4 {
			return ErrInvalidRequest, apiErr
		}
		return ErrUnavailable, apiErr
	}
	// No API error: the request did not reach the service, or its response
	// could not be read.
	return ErrUnavailable, err
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return http.StatusInternalServerError
}
