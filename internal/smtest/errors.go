package smtest

import (
	"fmt"
	"net/http"
)

// Error types the server returns in the __type field, as Secrets Manager
// names them.
const (
	TypeResourceNotFound  = "ResourceNotFoundException"
	TypeResourceExists    = "ResourceExistsException"
	TypeInvalidRequest    = "InvalidRequestException"
	TypeInvalidParameter  = "InvalidParameterException"
	TypeInvalidNextToken  = "InvalidNextTokenException"
	TypeLimitExceeded     = "LimitExceededException"
	TypeDecryptionFailure = "DecryptionFailure"
	TypeInternal          = "InternalServiceError"
	TypeThrottling        = "ThrottlingException"
	TypeSerialization     = "SerializationException"
	TypeUnknownOperation  = "UnknownOperationException"
)

// apiError is an error response: an HTTP status and the JSON body
// {"__type": typ, "message": msg}.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func newError(typ, format string, args ...any) *apiError {
	return &apiError{status: statusFor(typ), typ: typ, msg: fmt.Sprintf(format, args...)}
}

// statusFor returns the HTTP status Secrets Manager uses for an error type:
// 500 for its internal error, 503 for an unavailable service, 400 for the
// rest (throttling included).
func statusFor(typ string) int {
	switch typ {
	case TypeInternal:
		return http.StatusInternalServerError
	case "ServiceUnavailable":
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

func errSecretNotFound() *apiError {
	return newError(TypeResourceNotFound, "Secrets Manager can't find the specified secret.")
}

func errMarkedForDeletion() *apiError {
	return newError(TypeInvalidRequest,
		"You can't perform this operation on the secret because it was marked for deletion.")
}

func errRotationInProgress() *apiError {
	return newError(TypeInvalidRequest,
		"A previous rotation isn't complete. That rotation will be reattempted.")
}

func errInvalidParameter(format string, args ...any) *apiError {
	return newError(TypeInvalidParameter, format, args...)
}

// errTooManyVersions is the LimitExceededException of a PutSecretValue
// that makeRoom found no room for. Its first clause is how the API
// reference describes LimitExceededException; AWS's full message for this
// case is not documented.
func errTooManyVersions(sec *secret) *apiError {
	return newError(TypeLimitExceeded,
		"The request failed because it would exceed one of the Secrets Manager quotas: "+
			"secret %s has %d versions, and only unlabelled versions created at least %d hours ago "+
			"can be removed. Remove staging labels from versions you no longer need, "+
			"or wait and write new versions less often.",
		sec.name, len(sec.order), int(minPruneAge.Hours()))
}
