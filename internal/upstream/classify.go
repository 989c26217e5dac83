package upstream

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// maxErrorPeek bounds how much of a 400 body is read to tell a rejected
// Gemini key from other bad requests. Gemini's error for a bad key is well
// under 1 KiB; a longer body is passed on unread.
const maxErrorPeek = 16 << 10

// keyRejected reports whether res shows that the provider rejected the key:
// a 401, or Gemini's 400 whose details carry reason API_KEY_INVALID. For
// another 400 it puts back the part of the body it read, so the body
// passes on whole.
func keyRejected(res *http.Response) bool {
	switch res.StatusCode {
	case http.StatusUnauthorized:
		return true
	case http.StatusBadRequest:
	default:
		return false
	}
	peek, err := io.ReadAll(io.LimitReader(res.Body, maxErrorPeek))
	if err == nil && isGeminiKeyInvalid(peek) {
		return true
	}
	res.Body = readCloser{io.MultiReader(bytes.NewReader(peek), res.Body), res.Body}
	return false
}

type readCloser struct {
	io.Reader
	io.Closer
}

// geminiError is the part of a google.rpc.Status error body that names the
// reason.
type geminiError struct {
	Error struct {
		Details []struct {
			Reason string `json:"reason"`
		} `json:"details"`
	} `json:"error"`
}

// isGeminiKeyInvalid reports whether body is Gemini's error for an invalid
// key: {"error": {"details": [{"reason": "API_KEY_INVALID"}]}}, or that
// object in a JSON array, as Gemini's OpenAI-compatible endpoint sends it.
func isGeminiKeyInvalid(body []byte) bool {
	var errs []geminiError
	if body = bytes.TrimSpace(body); len(body) > 0 && body[0] == '[' {
		if json.Unmarshal(body, &errs) != nil {
			return false
		}
	} else {
		var one geminiError
		if json.Unmarshal(body, &one) != nil {
			return false
		}
		errs = append(errs, one)
	}
	for _, e := range errs {
		for _, d := range e.Error.Details {
			if d.Reason == "API_KEY_INVALID" {
				return true
			}
		}
	}
	return false
}
