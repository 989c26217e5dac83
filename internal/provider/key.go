package provider

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/keyturn/keyturn/keystore"
)

// ErrInvalidKey matches the errors of ValidateKey. Use errors.Is.
var ErrInvalidKey = errors.New("invalid key")

// keyError is a key that cannot be sent. Its message names the problem and
// where it sits in the key, never the key.
type keyError struct{ msg string }

func (e *keyError) Error() string { return e.msg }
func (e *keyError) Unwrap() error { return ErrInvalidKey }

// ValidateKey returns an error matching ErrInvalidKey if key cannot be a
// provider key sent in an HTTP header: it is empty, starts with a byte order
// mark, or contains whitespace, a control character or a character outside
// ASCII. The keys of every provider keyturn supports are printable ASCII
// without spaces, so such a key is a copying or file-encoding mistake that
// no retry fixes. The error names the problem and whether it is at the
// start, at the end or inside the key, never the key itself.
func ValidateKey(key keystore.Secret) error {
	k := key.Reveal()
	if k == "" {
		return &keyError{msg: "empty key: the value has no api_key"}
	}
	if msg := bomProblem(k); msg != "" {
		return &keyError{msg: msg}
	}
	for i := 0; i < len(k); {
		r, size := utf8.DecodeRuneInString(k[i:])
		if msg := charProblem(r, size); msg != "" {
			return &keyError{msg: fmt.Sprintf(msg, where(i, size, len(k)))}
		}
		i += size
	}
	return nil
}

// bomProblem describes a byte order mark at the start of k, which an editor
// or a shell's redirection may write into a key file.
func bomProblem(k string) string {
	switch {
	case strings.HasPrefix(k, "\uFEFF"):
		return "the key starts with a UTF-8 byte order mark: save the key file as UTF-8 without a BOM, or as ASCII"
	case strings.HasPrefix(k, "\xFF\xFE"), strings.HasPrefix(k, "\xFE\xFF"):
		return "the key starts with a UTF-16 byte order mark: save the key file as UTF-8 or ASCII"
	}
	return ""
}

// charProblem returns why the character r, size bytes long, cannot be in a
// key, as a format with one %s for its position. It returns "" for a
// character a key may contain.
func charProblem(r rune, size int) string {
	switch {
	case r == 0:
		return "the key contains a NUL byte %s: the key file may be UTF-16 or binary; save it as UTF-8 or ASCII"
	case r == '\n' || r == '\r':
		return "the key contains a line break %s: a key is one line; remove the line break"
	case r == ' ' || r == '\t':
		return "the key contains whitespace %s: remove it"
	case r < 0x20 || r == 0x7F:
		return fmt.Sprintf("the key contains control character %U %%s: remove it", r)
	case r == utf8.RuneError && size == 1:
		return "the key contains a byte that is not UTF-8 text %s: save the key as ASCII text"
	case r >= 0x80:
		return fmt.Sprintf("the key contains non-ASCII character %U %%s: provider keys are ASCII; copy the key again as plain text", r)
	}
	return ""
}

// where returns a description of the position of the size bytes at offset i in a key of
// n bytes.
func where(i, size, n int) string {
	switch {
	case i == 0:
		return "at its start"
	case i+size == n:
		return "at its end"
	}
	return "inside it"
}
