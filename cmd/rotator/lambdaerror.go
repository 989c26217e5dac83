package main

import (
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// Error types of the rotation Lambda. aws-lambda-go v1.55.1 reports a
// handler error's Go type name as errorType unless the error is a
// messages.InvokeResponse_Error, and Secrets Manager and CloudWatch show
// that type, so the handler names each kind of failure itself.
const (
	errorTypeInvalidEvent     = "InvalidEvent"
	errorTypeNotImplemented   = "NotImplemented"
	errorTypeRejected         = "RotationRejected"
	errorTypeTransient        = "RotationTransient"
	errorTypeNothingToPromote = "NothingToPromote"
	errorTypeInProgress       = "RotationInProgress"
	errorTypeConfiguration    = "ConfigurationError"
	errorTypeNotPending       = "NotPending"
	errorTypeStore            = "StoreError"
	errorTypeInternal         = "InternalError"
)

// rotationErrorTypes maps the rotation engine's sentinels to error types.
// They are tried before the store's, because the engine wraps a store error
// in the kind the caller acts on, such as ErrTransient for a retry.
var rotationErrorTypes = []struct {
	sentinel  error
	errorType string
}{
	{rotation.ErrRejected, errorTypeRejected},
	{rotation.ErrTransient, errorTypeTransient},
	{rotation.ErrNothingToPromote, errorTypeNothingToPromote},
	{rotation.ErrInProgress, errorTypeInProgress},
	{rotation.ErrConfig, errorTypeConfiguration},
	{rotation.ErrNotPending, errorTypeNotPending},
}

var storeSentinels = []error{
	keystore.ErrNotFound, keystore.ErrExists, keystore.ErrInvalidRequest,
	keystore.ErrInvalidParameter, keystore.ErrDecryption, keystore.ErrUnavailable,
}

// handlerError is an error the handler raises itself, with its error type.
type handlerError struct {
	errorType string
	err       error
}

func (e *handlerError) Error() string { return e.err.Error() }

func invalidEventf(format string, args ...any) error {
	return &handlerError{errorType: errorTypeInvalidEvent, err: fmt.Errorf(format, args...)}
}

// errorType names the kind of err for the Lambda's errorType.
func errorType(err error) string {
	var he *handlerError
	if errors.As(err, &he) {
		return he.errorType
	}
	for _, m := range rotationErrorTypes {
		if errors.Is(err, m.sentinel) {
			return m.errorType
		}
	}
	for _, sentinel := range storeSentinels {
		if errors.Is(err, sentinel) {
			return errorTypeStore
		}
	}
	return errorTypeInternal
}

// invokeError converts err into the error the Lambda runtime returns as is:
// err's public message with its error type.
func invokeError(err error) messages.InvokeResponse_Error {
	return messages.InvokeResponse_Error{Message: err.Error(), Type: errorType(err)}
}
