package keystore_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

func validTags() map[string]string {
	return map[string]string{
		keystore.TagProvider: "openai",
		keystore.TagBaseURL:  "https://api.openai.com/v1",
	}
}

func TestSettingsFromTagsDefaults(t *testing.T) {
	tags := validTags()
	tags["team"] = "platform"
	s, err := keystore.SettingsFromTags(tags)
	if err != nil {
		t.Fatalf("SettingsFromTags: %v", err)
	}
	if s.Issuer != keystore.IssuerStaged {
		t.Errorf("Issuer = %q, want %q", s.Issuer, keystore.IssuerStaged)
	}
	if s.Probe != keystore.ProbeModels {
		t.Errorf("Probe = %q, want %q", s.Probe, keystore.ProbeModels)
	}
	if s.Grace != keystore.Duration(keystore.DefaultGrace) {
		t.Errorf("Grace = %v, want %v", time.Duration(s.Grace), keystore.DefaultGrace)
	}
}

func TestSettingsFromTagsAll(t *testing.T) {
	tags := validTags()
	tags[keystore.TagIssuer] = "openrouter"
	tags[keystore.TagIssuerSecret] = "keyturn/admin/openrouter"
	tags[keystore.TagRequiredModels] = " gpt-4o  gpt-4o-mini "
	tags[keystore.TagProbe] = "inference"
	tags[keystore.TagGrace] = " 90m "
	s, err := keystore.SettingsFromTags(tags)
	if err != nil {
		t.Fatalf("SettingsFromTags: %v", err)
	}
	if want := []string{"gpt-4o", "gpt-4o-mini"}; !reflect.DeepEqual(s.RequiredModels, want) {
		t.Errorf("RequiredModels = %q, want %q", s.RequiredModels, want)
	}
	if s.Grace != keystore.Duration(90*time.Minute) {
		t.Errorf("Grace = %v, want 90m", time.Duration(s.Grace))
	}
	if s.IssuerSecret != "keyturn/admin/openrouter" {
		t.Errorf("IssuerSecret = %q", s.IssuerSecret)
	}

	back, err := keystore.SettingsFromTags(s.Tags())
	if err != nil {
		t.Fatalf("SettingsFromTags(Tags()): %v", err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Errorf("round trip through Tags: %+v, want %+v", back, s)
	}
}

func TestSettingsFromTagsZeroGrace(t *testing.T) {
	tags := validTags()
	tags[keystore.TagGrace] = "0s"
	s, err := keystore.SettingsFromTags(tags)
	if err != nil {
		t.Fatalf("SettingsFromTags: %v", err)
	}
	if s.Grace != 0 {
		t.Errorf("Grace = %v, want 0 when the tag says 0s", time.Duration(s.Grace))
	}
	back, err := keystore.SettingsFromTags(s.Tags())
	if err != nil {
		t.Fatalf("SettingsFromTags(Tags()): %v", err)
	}
	if back.Grace != 0 {
		t.Errorf("round trip through Tags: Grace = %v, want 0", time.Duration(back.Grace))
	}
}

func TestSettingsFromTagsErrors(t *testing.T) {
	cases := []struct {
		name   string
		change func(map[string]string)
		want   []string // substrings the error must contain
	}{
		{"missing provider", func(m map[string]string) { delete(m, keystore.TagProvider) },
			[]string{"missing tag keyturn:provider", "openai"}},
		{"unknown provider", func(m map[string]string) { m[keystore.TagProvider] = "azure" },
			[]string{"keyturn:provider", `"azure"`, "anthropic"}},
		{"unknown keyturn tag", func(m map[string]string) { m["keyturn:grase"] = "1h" },
			[]string{"keyturn:grase", "keyturn:grace"}},
		{"bad grace", func(m map[string]string) { m[keystore.TagGrace] = "tomorrow" },
			[]string{"keyturn:grace", `"tomorrow"`, "24h"}},
		{"negative grace", func(m map[string]string) { m[keystore.TagGrace] = "-1h" },
			[]string{"keyturn:grace", "negative"}},
		{"missing base-url", func(m map[string]string) { delete(m, keystore.TagBaseURL) },
			[]string{"missing tag keyturn:base-url"}},
		{"base-url not a URL", func(m map[string]string) { m[keystore.TagBaseURL] = "not a url" },
			[]string{"keyturn:base-url", `"not a url"`}},
		{"base-url relative", func(m map[string]string) { m[keystore.TagBaseURL] = "/v1" },
			[]string{"keyturn:base-url", "absolute"}},
		{"base-url ftp", func(m map[string]string) { m[keystore.TagBaseURL] = "ftp://api.openai.com/v1" },
			[]string{"keyturn:base-url", "http(s)"}},
		{"base-url credentials", func(m map[string]string) { m[keystore.TagBaseURL] = "https://user:pw@api.openai.com/v1" },
			[]string{"keyturn:base-url", "credentials"}},
		{"base-url query", func(m map[string]string) { m[keystore.TagBaseURL] = "https://api.openai.com/v1?key=x" },
			[]string{"keyturn:base-url", "query"}},
		{"unknown probe", func(m map[string]string) { m[keystore.TagProbe] = "chat" },
			[]string{"keyturn:probe", `"chat"`}},
		{"issuer without secret", func(m map[string]string) { m[keystore.TagIssuer] = "openrouter" },
			[]string{"missing tag keyturn:issuer-secret", `"openrouter"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tags := validTags()
			c.change(tags)
			_, err := keystore.SettingsFromTags(tags)
			if err == nil {
				t.Fatal("SettingsFromTags: no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %s", err, w)
				}
			}
		})
	}
}

func TestIsManaged(t *testing.T) {
	if !keystore.IsManaged(validTags()) {
		t.Error("IsManaged(tags with keyturn:provider) = false")
	}
	if keystore.IsManaged(map[string]string{"team": "x", keystore.TagBaseURL: "https://x"}) {
		t.Error("IsManaged(tags without keyturn:provider) = true")
	}
}

func TestDurationJSON(t *testing.T) {
	out, err := json.Marshal(keystore.Settings{Provider: "openai", Grace: keystore.Duration(36 * time.Hour)})
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !strings.Contains(string(out), `"grace":"36h0m0s"`) {
		t.Errorf("Marshal = %s, want grace as text", out)
	}
	var s keystore.Settings
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if s.Grace != keystore.Duration(36*time.Hour) {
		t.Errorf("Unmarshal: Grace = %v, want 36h", time.Duration(s.Grace))
	}
	err = json.Unmarshal([]byte(`{"grace": "soon"}`), &s)
	if err == nil || !strings.Contains(err.Error(), `"soon"`) {
		t.Errorf("Unmarshal a bad duration: err = %v, want it to quote the text", err)
	}
}

func TestSettingsBaseURLErrorsRedactSecrets(t *testing.T) {
	const canary = "pw-settings-canary-7c41d9"
	cases := []struct {
		name, url string
		want      []string // substrings the error must contain
	}{
		{"user and password", "https://user:" + canary + "@api.openai.com/v1",
			[]string{`"https://REDACTED@api.openai.com/v1"`, "credentials"}},
		{"user only", "https://" + canary + "@api.openai.com/v1",
			[]string{`"https://REDACTED@api.openai.com/v1"`, "credentials"}},
		{"query", "https://api.openai.com/v1?key=" + canary,
			[]string{`"https://api.openai.com/v1?REDACTED"`, "query"}},
		{"fragment", "https://api.openai.com/v1#" + canary,
			[]string{`"https://api.openai.com/v1#REDACTED"`, "fragment"}},
		{"not http", "ftp://user:" + canary + "@api.openai.com/v1",
			[]string{`"ftp://REDACTED@api.openai.com/v1"`, "http(s)"}},
		{"unparsable", "https://user:" + canary + "%zz@api.openai.com/v1",
			[]string{`"https://REDACTED@api.openai.com/v1"`, "http(s)"}},
		{"opaque", "https:user:" + canary + "@api.openai.com/v1",
			[]string{`"https:REDACTED@api.openai.com/v1"`, "http(s)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tags := validTags()
			tags[keystore.TagBaseURL] = c.url
			_, err := keystore.SettingsFromTags(tags)
			if err == nil {
				t.Fatal("SettingsFromTags: no error")
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("err = %q contains the canary", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %s", err, w)
				}
			}
		})
	}
}
