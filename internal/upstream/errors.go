package upstream

import (
	"encoding/json"
	"net/http"
)

// errorBody is OpenAI's error object. Code is null when empty, as OpenAI
// sends it for errors without a code; Param is always null because keyturn's
// own errors concern a whole request, not one parameter.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// WriteError sends status with an OpenAI-style error body,
// {"error":{"message","type","param":null,"code"}}, so that OpenAI client
// libraries raise their usual exception for status and show message. The
// type is the one OpenAI sends with status: "requests" for 429,
// "server_error" for 5xx and "invalid_request_error" otherwise. An empty
// code is sent as null. message is public: it must never hold a key.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	body := errorBody{Error: errorDetail{Message: message, Type: errorType(status)}}
	if code != "" {
		body.Error.Code = &code
	}
	data, err := json.Marshal(body)
	if err != nil {
		// A struct of strings always encodes.
		panic("upstream: encoding an error body: " + err.Error())
	}
	WriteJSON(w, status, append(data, '\n'))
}

func errorType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "requests"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// Error codes of the errors that keyturn itself sends. They name the cause
// for programs; the message gives it to people.
const (
	codeInvalidBody         = "invalid_request_body"
	codeMissingModel        = "missing_model"
	codeUnsupportedEncoding = "unsupported_content_encoding"
	codeUnsupportedEndpoint = "unsupported_endpoint"
	codeKeyUnavailable      = "upstream_key_unavailable"
	codeMisconfigured       = "upstream_misconfigured"
	codeKeyRejected         = "upstream_key_rejected"
	codeUnreachable         = "upstream_unreachable"
	codeTimeout             = "upstream_timeout"
	codeRedirect            = "upstream_redirect"
	codeInternal            = "internal_error"
)
