package keystore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Value is one key as stored in a version's SecretString:
//
//	{"api_key": "sk-…", "key_id": "key_abc", "created_at": "…",
//	 "settings": {…}, "retire": […], "last_failure": {…}}
//
// Fields keyturn does not know are kept and written back by Encode, so a
// newer keyturn's data survives an older one's rotation.
type Value struct {
	APIKey    Secret
	KeyID     string    // the provider's id for the key, if it has one
	CreatedAt time.Time // when keyturn stored the key
	// Settings are the settings this key was validated with; the router
	// uses these, not the secret's current tags.
	Settings    Settings
	Retire      []Retired
	LastFailure *Failure

	extra map[string]json.RawMessage
}

// Retired is an old key still to be revoked at the provider.
type Retired struct {
	KeyID     string    `json:"key_id"`
	VersionID string    `json:"version_id"`
	NotBefore time.Time `json:"not_before"`
}

// Failure records why a rotation failed. Reason is public: it never holds a
// key or a provider's response body.
type Failure struct {
	Step string    `json:"step"`
	At   time.Time `json:"at"`
	// VersionID is the token of the rotation that failed.
	VersionID string `json:"version_id,omitempty"`
	Class     string `json:"class"`
	Reason    string `json:"reason"`
}

// wireValue is Value's JSON form.
type wireValue struct {
	APIKey      *string   `json:"api_key"`
	KeyID       string    `json:"key_id,omitempty"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	Settings    *Settings `json:"settings,omitempty"`
	Retire      []Retired `json:"retire,omitempty"`
	LastFailure *Failure  `json:"last_failure,omitempty"`
}

var knownValueFields = []string{"api_key", "key_id", "created_at", "settings", "retire", "last_failure"}

// ErrMalformedValue matches every error from ParseValue.
var ErrMalformedValue = errors.New("malformed value")

// ParseValue decodes a SecretString. Its errors name the field at fault and
// never quote the content, which holds a key.
func ParseValue(s Secret) (Value, error) {
	raw := []byte(s.Reveal())
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Value{}, fmt.Errorf("%w: not a JSON object (%s): store the key as {\"api_key\": \"…\"}",
			ErrMalformedValue, describeJSONError(err))
	}
	if err := checkFieldNames(raw); err != nil {
		return Value{}, err
	}

	var w wireValue
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&w); err != nil {
		return Value{}, fmt.Errorf("%w: %s", ErrMalformedValue, describeJSONError(err))
	}
	if w.APIKey == nil || *w.APIKey == "" {
		return Value{}, fmt.Errorf("%w: field api_key is missing or empty", ErrMalformedValue)
	}
	v := Value{
		APIKey: NewSecret(*w.APIKey), KeyID: w.KeyID, CreatedAt: w.CreatedAt,
		Retire: w.Retire, LastFailure: w.LastFailure,
	}
	if w.Settings != nil {
		v.Settings = *w.Settings
	}

	for _, k := range knownValueFields {
		delete(fields, k)
	}
	if len(fields) > 0 {
		v.extra = fields
	}
	return v, nil
}

// checkFieldNames rejects an object that repeats a field, or that spells a
// known field in another case. encoding/json would keep the last of the
// repeated fields without a word, and it matches a known field's name
// case-insensitively, so {"api_key": A, "API_KEY": B} would store B.
// Field names are not secret, so the errors name them.
func checkFieldNames(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // the object's opening brace
		return fmt.Errorf("%w: %s", ErrMalformedValue, describeJSONError(err))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %s", ErrMalformedValue, describeJSONError(err))
		}
		name, _ := tok.(string)
		if known := knownFieldFold(name); known != "" && known != name {
			return fmt.Errorf("%w: field %q: write it as %s", ErrMalformedValue, name, known)
		}
		if seen[name] {
			return fmt.Errorf("%w: field %q appears more than once: keep only one", ErrMalformedValue, name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("%w: %s", ErrMalformedValue, describeJSONError(err))
		}
	}
	return nil
}

// knownFieldFold returns the known field that name matches when case is
// ignored, as encoding/json matches it, or "".
func knownFieldFold(name string) string {
	for _, k := range knownValueFields {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return ""
}

// describeJSONError words a decoding error without the input it came from.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s must be a JSON %s, not %s", typ.Field, typ.Type, typ.Value)
	default:
		// Other decoding errors (bad time or duration text) may quote the
		// text they failed on, which could be a key.
		return "invalid text in created_at, settings or retire: times are RFC 3339, durations such as 24h"
	}
}

// WithUnknownFieldsFrom returns a copy of v that also carries each field of
// src that keyturn does not know and v lacks, so a newer keyturn's data
// survives when a rotation builds a new value from an old one. Where both
// values carry the same unknown field, v's content wins. The fields are
// copied as raw JSON, without decoding them.
func (v Value) WithUnknownFieldsFrom(src Value) Value {
	if len(src.extra) == 0 {
		return v
	}
	extra := maps.Clone(v.extra)
	if extra == nil {
		extra = make(map[string]json.RawMessage, len(src.extra))
	}
	for k, raw := range src.extra {
		if _, ok := extra[k]; !ok {
			extra[k] = slices.Clone(raw)
		}
	}
	v.extra = extra
	return v
}

// Format prints the value with its key redacted and only the names of its
// unknown fields, whose content may be another secret.
func (v Value) Format(f fmt.State, verb rune) {
	type printable struct {
		APIKey        Secret
		KeyID         string
		CreatedAt     time.Time
		Settings      Settings
		Retire        []Retired
		LastFailure   *Failure
		UnknownFields []string
	}
	p := printable{
		APIKey: v.APIKey, KeyID: v.KeyID, CreatedAt: v.CreatedAt, Settings: v.Settings,
		Retire: v.Retire, LastFailure: v.LastFailure, UnknownFields: slices.Sorted(maps.Keys(v.extra)),
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), p)
}

// Encode writes the value as a SecretString, unknown fields included.
func (v Value) Encode() (Secret, error) {
	if v.APIKey.IsZero() {
		return Secret{}, fmt.Errorf("%w: api_key is empty", ErrMalformedValue)
	}
	key := v.APIKey.Reveal()
	w := wireValue{
		APIKey: &key, KeyID: v.KeyID, CreatedAt: v.CreatedAt,
		Retire: v.Retire, LastFailure: v.LastFailure,
	}
	if v.Settings.Provider != "" {
		w.Settings = &v.Settings
	}
	known, err := json.Marshal(w)
	if err != nil {
		return Secret{}, fmt.Errorf("encode value: %w", err)
	}
	if len(v.extra) == 0 {
		return NewSecret(string(known)), nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(known, &all); err != nil {
		return Secret{}, fmt.Errorf("encode value: %w", err)
	}
	for k, raw := range v.extra {
		all[k] = raw
	}
	out, err := json.Marshal(all)
	if err != nil {
		return Secret{}, fmt.Errorf("encode value: %w", err)
	}
	return NewSecret(string(out)), nil
}
