package keystore

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// Redacted is the text that every printing path of a Secret shows in place
// of its value.
const Redacted = "[REDACTED]"

// Secret is an opaque secret value: a provider key, or a whole SecretString.
// Its String, GoString, Format, LogValue and MarshalText methods return
// Redacted, so a Secret that reaches a log line, an error or a JSON document
// by mistake shows nothing. Reveal is the one way to read the value.
//
// The zero Secret is empty.
type Secret struct {
	value string
}

// NewSecret wraps value as a Secret.
func NewSecret(value string) Secret { return Secret{value: value} }

// Reveal returns the secret value. Call it only where the value leaves the
// process on purpose: an Authorization header, a store write, a 0600 file.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.value == "" }

// Len returns the length of the value in bytes, which is safe to log.
func (s Secret) Len() int { return len(s.value) }

// Equal compares two secrets in constant time for equal lengths.
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.value), []byte(o.value)) == 1
}

// String returns Redacted.
func (s Secret) String() string { return Redacted }

// GoString returns Redacted, so %#v hides the value too.
func (s Secret) GoString() string { return Redacted }

// Format prints Redacted for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue logs the secret's presence and length, never its value.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("set", !s.IsZero()), slog.Int("len", s.Len()))
}

// MarshalText returns Redacted, so encoding/json never writes the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
