package keystore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

const secretCanary = "sk-secret-canary-93b1f07e2c"

func TestSecretNeverPrints(t *testing.T) {
	s := keystore.NewSecret(secretCanary)
	holder := struct {
		Name string
		Key  keystore.Secret
		Ptr  *keystore.Secret
	}{"openai", s, &s}
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10.3s"} {
		for name, arg := range map[string]any{"secret": s, "pointer": &s, "struct": holder, "slice": []keystore.Secret{s}, "map": map[string]keystore.Secret{"k": s}} {
			out := fmt.Sprintf(verb, arg)
			if strings.Contains(out, secretCanary) {
				t.Errorf("Sprintf(%q, %s) = %q contains the value", verb, name, out)
			}
		}
	}
	if out := fmt.Sprint(s); out != keystore.Redacted {
		t.Errorf("Sprint = %q, want %q", out, keystore.Redacted)
	}
	if out := s.String(); out != keystore.Redacted {
		t.Errorf("String = %q, want %q", out, keystore.Redacted)
	}
	if out := s.GoString(); out != keystore.Redacted {
		t.Errorf("GoString = %q, want %q", out, keystore.Redacted)
	}
	if err := fmt.Errorf("wrap %v: %w", s, errors.New("cause")); strings.Contains(err.Error(), secretCanary) {
		t.Errorf("an error built with the secret contains the value: %v", err)
	}
}

func TestSecretNeverLogs(t *testing.T) {
	s := keystore.NewSecret(secretCanary)
	holder := struct{ Key keystore.Secret }{s}
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	}
	for name, newHandler := range handlers {
		var buf bytes.Buffer
		log := slog.New(newHandler(&buf))
		log.Info("secret", "key", s, "ptr", &s, "struct", holder, slog.Any("any", s), slog.Group("g", "key", s))
		log.With("key", s).Info("with")
		out := buf.String()
		if strings.Contains(out, secretCanary) {
			t.Errorf("%s handler wrote the value: %s", name, out)
		}
		if !strings.Contains(out, "len") {
			t.Errorf("%s handler did not log the secret's length: %s", name, out)
		}
	}
}

func TestSecretNeverMarshals(t *testing.T) {
	s := keystore.NewSecret(secretCanary)
	for name, v := range map[string]any{
		"secret":  s,
		"pointer": &s,
		"struct":  struct{ Key keystore.Secret }{s},
		"map key": map[string]keystore.Secret{"k": s},
	} {
		out, err := json.Marshal(v)
		if err != nil {
			t.Errorf("json.Marshal %s: %v", name, err)
			continue
		}
		if bytes.Contains(out, []byte(secretCanary)) {
			t.Errorf("json.Marshal %s = %s contains the value", name, out)
		}
		if !bytes.Contains(out, []byte(keystore.Redacted)) {
			t.Errorf("json.Marshal %s = %s, want %s in it", name, out, keystore.Redacted)
		}
	}
}

func TestSecretReveal(t *testing.T) {
	s := keystore.NewSecret(secretCanary)
	if s.Reveal() != secretCanary {
		t.Error("Reveal does not return the wrapped value")
	}
	if s.Len() != len(secretCanary) {
		t.Errorf("Len = %d, want %d", s.Len(), len(secretCanary))
	}
	if s.IsZero() {
		t.Error("IsZero of a set secret = true")
	}
	if !(keystore.Secret{}).IsZero() {
		t.Error("IsZero of the zero Secret = false")
	}
}

func TestSecretEqual(t *testing.T) {
	a := keystore.NewSecret("sk-aaaa")
	cases := []struct {
		other keystore.Secret
		want  bool
	}{
		{keystore.NewSecret("sk-aaaa"), true},
		{keystore.NewSecret("sk-aaab"), false},
		{keystore.NewSecret("sk-aaaaa"), false},
		{keystore.Secret{}, false},
	}
	for _, c := range cases {
		if got := a.Equal(c.other); got != c.want {
			t.Errorf("Equal(secret of length %d) = %v, want %v", c.other.Len(), got, c.want)
		}
	}
	if !(keystore.Secret{}).Equal(keystore.Secret{}) {
		t.Error("two zero Secrets are not Equal")
	}
}

func TestVersionNeverPrints(t *testing.T) {
	v := keystore.Version{SecretID: "keyturn/x", VersionID: "v1", Value: keystore.NewSecret(secretCanary)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, v); strings.Contains(out, secretCanary) {
			t.Errorf("Sprintf(%q, Version) = %q contains the value", verb, out)
		}
	}
}
