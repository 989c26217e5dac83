package keystore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

const valueCanary = "sk-value-canary-5e0c7a2b81"

func TestParseValueMalformed(t *testing.T) {
	c := valueCanary
	cases := []struct {
		name  string
		input string
		field string // what the error must name
	}{
		{"empty", ``, "JSON object"},
		{"not JSON", c, "JSON object"},
		{"truncated", `{"api_key": "` + c, "JSON object"},
		{"string", `"` + c + `"`, "JSON object"},
		{"array", `["` + c + `"]`, "JSON object"},
		{"trailing data", `{"api_key": "` + c + `"} x`, "JSON"},
		{"missing api_key", `{"key_id": "key_1"}`, "api_key"},
		{"empty api_key", `{"api_key": ""}`, "api_key"},
		{"null api_key", `{"api_key": null}`, "api_key"},
		{"number api_key", `{"api_key": 42}`, "api_key"},
		{"object api_key", `{"api_key": {"v": "` + c + `"}}`, "api_key"},
		{"number key_id", `{"api_key": "` + c + `", "key_id": 7}`, "key_id"},
		{"string settings", `{"api_key": "` + c + `", "settings": "` + c + `"}`, "settings"},
		{"number provider", `{"api_key": "` + c + `", "settings": {"provider": 5}}`, "settings.provider"},
		{"object retire", `{"api_key": "` + c + `", "retire": {}}`, "retire"},
		{"bad created_at", `{"api_key": "` + c + `", "created_at": "` + c + `"}`, "created_at"},
		{"bad grace", `{"api_key": "` + c + `", "settings": {"grace": "` + c + `"}}`, "durations"},
		{"bad not_before", `{"api_key": "` + c + `", "retire": [{"not_before": "` + c + `"}]}`, "RFC 3339"},
		{"duplicate api_key", `{"api_key": "` + c + `", "key_id": "k", "api_key": "` + c + `2"}`, `field "api_key" appears more than once`},
		{"api_key in other case", `{"api_key": "` + c + `", "API_KEY": "` + c + `2"}`, `field "API_KEY": write it as api_key`},
		{"duplicate settings", `{"api_key": "` + c + `", "settings": {}, "settings": {}}`, `field "settings" appears more than once`},
		{"duplicate unknown field", `{"api_key": "` + c + `", "note": 1, "note": 2}`, `field "note" appears more than once`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keystore.ParseValue(keystore.NewSecret(tc.input))
			if !errors.Is(err, keystore.ErrMalformedValue) {
				t.Fatalf("err = %v, want ErrMalformedValue", err)
			}
			if strings.Contains(err.Error(), valueCanary) {
				t.Errorf("err = %q contains the value", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("err = %q, want it to name %s", err, tc.field)
			}
		})
	}
}

func TestParseValueFields(t *testing.T) {
	in := `{"api_key": "sk-1", "key_id": "key_1", "created_at": "2026-12-04T10:00:00Z",
		"settings": {"provider": "openai", "base_url": "https://api.openai.com/v1", "grace": "24h"},
		"retire": [{"key_id": "key_0", "version_id": "v0", "not_before": "2026-12-05T10:00:00Z"}],
		"last_failure": {"step": "testSecret", "at": "2026-12-04T11:00:00Z", "class": "rejected", "reason": "401 from provider"}}`
	v, err := keystore.ParseValue(keystore.NewSecret(in))
	if err != nil {
		t.Fatalf("ParseValue: %v", err)
	}
	if v.APIKey.Reveal() != "sk-1" {
		t.Error("APIKey differs from the input")
	}
	if v.KeyID != "key_1" {
		t.Errorf("KeyID = %q, want key_1", v.KeyID)
	}
	if want := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC); !v.CreatedAt.Equal(want) {
		t.Errorf("CreatedAt = %v, want %v", v.CreatedAt, want)
	}
	if v.Settings.Provider != "openai" {
		t.Errorf("Settings.Provider = %q, want openai", v.Settings.Provider)
	}
	if v.Settings.Grace != keystore.Duration(24*time.Hour) {
		t.Errorf("Settings.Grace = %v, want 24h", time.Duration(v.Settings.Grace))
	}
	if len(v.Retire) != 1 || v.Retire[0].KeyID != "key_0" {
		t.Errorf("Retire = %+v, want one entry for key_0", v.Retire)
	}
	if v.LastFailure == nil || v.LastFailure.Step != "testSecret" {
		t.Errorf("LastFailure = %+v, want step testSecret", v.LastFailure)
	}
}

func TestValueEncodeRoundTrip(t *testing.T) {
	v := keystore.Value{
		APIKey:    keystore.NewSecret("sk-round-trip"),
		KeyID:     "key_1",
		CreatedAt: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC),
		Settings:  keystore.Settings{Provider: "anthropic", BaseURL: "https://api.anthropic.com/v1", Grace: keystore.Duration(time.Hour)},
		Retire:    []keystore.Retired{{KeyID: "key_0", VersionID: "v0", NotBefore: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)}},
	}
	enc, err := v.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err := keystore.ParseValue(enc)
	if err != nil {
		t.Fatalf("ParseValue(Encode): %v", err)
	}
	if !got.APIKey.Equal(v.APIKey) {
		t.Error("APIKey changed in the round trip")
	}
	if got.KeyID != v.KeyID || !got.CreatedAt.Equal(v.CreatedAt) {
		t.Errorf("round trip: KeyID, CreatedAt = %q, %v, want %q, %v", got.KeyID, got.CreatedAt, v.KeyID, v.CreatedAt)
	}
	if got.Settings.BaseURL != v.Settings.BaseURL || got.Settings.Grace != v.Settings.Grace {
		t.Errorf("round trip: Settings = %+v, want %+v", got.Settings, v.Settings)
	}
	if len(got.Retire) != 1 || got.Retire[0] != v.Retire[0] {
		t.Errorf("round trip: Retire = %+v, want %+v", got.Retire, v.Retire)
	}
}

func TestValueEncodeWithoutKey(t *testing.T) {
	_, err := keystore.Value{KeyID: "key_1"}.Encode()
	if !errors.Is(err, keystore.ErrMalformedValue) {
		t.Errorf("Encode without api_key: err = %v, want ErrMalformedValue", err)
	}
}

func TestValueUnknownFieldsCarried(t *testing.T) {
	in := `{"api_key": "sk-1", "future": {"nested": [1, 2]}, "note": "kept", "admin_key": "` + valueCanary + `"}`
	v, err := keystore.ParseValue(keystore.NewSecret(in))
	if err != nil {
		t.Fatalf("ParseValue: %v", err)
	}
	v.KeyID = "key_changed"
	enc, err := v.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(enc.Reveal()), &fields); err != nil {
		t.Fatalf("Encode wrote invalid JSON: %v", err)
	}
	want := map[string]string{
		"future":    `{"nested":[1,2]}`,
		"note":      `"kept"`,
		"admin_key": `"` + valueCanary + `"`,
		"key_id":    `"key_changed"`,
		"api_key":   `"sk-1"`,
	}
	for k, w := range want {
		var got bytes.Buffer
		if err := json.Compact(&got, fields[k]); err != nil {
			t.Errorf("field %s: %v", k, err)
			continue
		}
		if got.String() != w {
			t.Errorf("field %s = %s, want %s", k, got.String(), w)
		}
	}
}

func TestValueNeverPrints(t *testing.T) {
	in := `{"api_key": "` + valueCanary + `", "admin_key": "` + valueCanary + `"}`
	v, err := keystore.ParseValue(keystore.NewSecret(in))
	if err != nil {
		t.Fatalf("ParseValue: %v", err)
	}
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x"} {
		out := fmt.Sprintf(verb, v)
		if strings.Contains(out, valueCanary) || strings.Contains(out, fmt.Sprintf("%x", valueCanary)) {
			t.Errorf("Sprintf(%q, Value) = %q contains the key or an unknown field's content", verb, out)
		}
	}
	if out := fmt.Sprintf("%v", v); !strings.Contains(out, "admin_key") {
		t.Errorf("Sprintf(%%v, Value) = %q, want the unknown field's name", out)
	}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("value", "v", v)
		if strings.Contains(buf.String(), valueCanary) {
			t.Errorf("%s handler wrote the key: %s", name, buf.String())
		}
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if bytes.Contains(out, []byte(valueCanary)) {
		t.Errorf("json.Marshal(Value) = %s contains the key", out)
	}
}

func FuzzParseValue(f *testing.F) {
	seeds := [][2]string{
		{`{"api_key": "`, `"}`},
		{`{"api_key": "`, `", "key_id": 1}`},
		{`{"api_key": 1, "x": "`, `"}`},
		{`{"api_key": "k", "created_at": "`, `"}`},
		{`{"api_key": "k", "settings": {"grace": "`, `"}}`},
		{`{"api_key": "k", "settings": {"provider": "`, `", "base_url": 3}}`},
		{`{"api_key": "k", "retire": [{"not_before": "`, `"}]}`},
		{`{"`, `": 1}`},
		{``, ``},
		{`[`, `]`},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, prefix, suffix string) {
		in := prefix + valueCanary + suffix
		v, err := keystore.ParseValue(keystore.NewSecret(in))
		if err != nil {
			if !errors.Is(err, keystore.ErrMalformedValue) {
				t.Fatalf("err = %v, want ErrMalformedValue", err)
			}
			if strings.Contains(err.Error(), valueCanary) {
				t.Fatalf("ParseValue error contains the planted key: %q", err)
			}
			return
		}
		enc, err := v.Encode()
		if err != nil {
			t.Fatalf("Encode of a parsed value: %v", err)
		}
		again, err := keystore.ParseValue(enc)
		if err != nil {
			t.Fatalf("ParseValue(Encode(v)): %v", err)
		}
		if !again.APIKey.Equal(v.APIKey) {
			t.Fatal("api_key changed in the round trip")
		}
	})
}

// encodedFields encodes v and returns its top-level fields, compacted.
func encodedFields(t *testing.T, v keystore.Value) map[string]string {
	t.Helper()
	enc, err := v.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(enc.Reveal()), &raw); err != nil {
		t.Fatalf("Encode wrote invalid JSON: %v", err)
	}
	out := make(map[string]string, len(raw))
	for k, r := range raw {
		var b bytes.Buffer
		if err := json.Compact(&b, r); err != nil {
			t.Fatalf("field %s: %v", k, err)
		}
		out[k] = b.String()
	}
	return out
}

func mustParseValue(t *testing.T, s string) keystore.Value {
	t.Helper()
	v, err := keystore.ParseValue(keystore.NewSecret(s))
	if err != nil {
		t.Fatalf("ParseValue: %v", err)
	}
	return v
}

func TestValueWithUnknownFieldsFrom(t *testing.T) {
	src := mustParseValue(t, `{"api_key": "sk-old", "key_id": "key_old", "future": {"nested": [1, 2]}, "note": "from-src"}`)
	dst := mustParseValue(t, `{"api_key": "sk-new", "note": "from-dst"}`)

	got := encodedFields(t, dst.WithUnknownFieldsFrom(src))
	want := map[string]string{
		"api_key": `"sk-new"`,
		"future":  `{"nested":[1,2]}`,
		"note":    `"from-dst"`,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("field %s = %s, want %s", k, got[k], w)
		}
	}
	if _, ok := got["key_id"]; ok {
		t.Errorf("key_id = %s: a known field of src must not be carried", got["key_id"])
	}
	if _, ok := encodedFields(t, dst)["future"]; ok {
		t.Error("WithUnknownFieldsFrom changed its receiver: dst now has field future")
	}
}

func TestValueWithUnknownFieldsFromNone(t *testing.T) {
	src := mustParseValue(t, `{"api_key": "sk-old"}`)
	dst := mustParseValue(t, `{"api_key": "sk-new", "note": "kept"}`)
	got := encodedFields(t, dst.WithUnknownFieldsFrom(src))
	if len(got) != 2 || got["note"] != `"kept"` {
		t.Errorf("fields = %v, want api_key and dst's own note only", got)
	}
}
