package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

func (e *testEnv) describe(secretID string) keystore.Description {
	e.t.Helper()
	d, err := e.openStore().Describe(context.Background(), secretID)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func TestUpdateChangesOnlyGivenFlags(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai", "--required-models", "gpt-4o", "--grace", "2h")
	newURL := strings.Replace(e.baseURL, "/openai/v1", "/openai/v1/", 1)

	r := e.mustRun(exitOK, "update", "app/openai", "--base-url", newURL, "--schedule", "rate(7 days)")
	assertContains(t, "stdout", r.stdout, "updated app/openai:")
	assertContains(t, "stdout", r.stdout, "base-url  "+e.baseURL+" -> "+newURL)
	assertContains(t, "stdout", r.stdout, "schedule  rate(30 days) -> rate(7 days)")
	assertContains(t, "stdout", r.stdout, "take effect through the next validated rotation")

	d := e.describe("app/openai")
	want := map[string]string{
		keystore.TagBaseURL: newURL, keystore.TagRequiredModels: "gpt-4o", keystore.TagGrace: "2h",
		keystore.TagProvider: "openai", keystore.TagIssuer: "staged", keystore.TagProbe: "models",
	}
	for k, v := range want {
		if d.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, d.Tags[k], v)
		}
	}
	if !d.Rotation.Enabled || d.Rotation.Rules.ScheduleExpression != "rate(7 days)" {
		t.Errorf("rotation = %+v, want enabled with rate(7 days)", d.Rotation)
	}
}

func TestUpdateJSONAndRemovedSetting(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai", "--required-models", "gpt-4o")
	r := e.mustRun(exitOK, "update", "app/openai", "--required-models", "", "--output", "json")
	var out updatedJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("update JSON: %v\n%s", err, r.stdout)
	}
	if len(out.Changes) != 1 || out.Changes[0] != (settingChange{Setting: "required-models", Old: "gpt-4o"}) {
		t.Errorf("changes = %+v, want required-models removed", out.Changes)
	}
	if out.Note == "" {
		t.Errorf("JSON has no note on when the settings take effect")
	}
	if _, ok := e.describe("app/openai").Tags[keystore.TagRequiredModels]; ok {
		t.Errorf("tag %s is still set", keystore.TagRequiredModels)
	}

	r = e.mustRun(exitOK, "update", "app/openai", "--probe", "models")
	assertContains(t, "stdout", r.stdout, "app/openai is unchanged")
}

func TestUpdateValidatesLikeAdd(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing given", nil, exitUsage, "update: nothing to change"},
		{"bad probe", []string{"--probe", "ping"}, exitUsage, `--probe: unknown probe "ping"`},
		{"off the allow-list", []string{"--base-url", "https://relay.example.com/v1"}, exitUsage, "relay.example.com"},
		{"empty provider", []string{"--provider", ""}, exitUsage, "missing --provider"},
		{"issuer without secret", []string{"--issuer", "dev"}, exitUsage, "missing tag keyturn:issuer-secret"},
		{"bad schedule", []string{"--schedule", "rate(1 hours)"}, exitUsage, `--schedule "rate(1 hours)"`},
		{"schedule and no schedule", []string{"--schedule", "rate(7 days)", "--no-schedule"}, exitUsage, "cannot be combined"},
		{"missing secret", []string{"--probe", "models", "--", "nope/x"}, exitError, "secret nope/x not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "app/openai"
			if tt.name == "missing secret" {
				id = ""
			}
			args := append([]string{"update"}, tt.args...)
			if id != "" {
				args = append(args, id)
			}
			r := e.run(args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tt.code, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want)
		})
	}
	d := e.describe("app/openai")
	if d.Tags[keystore.TagProbe] != "models" || d.Rotation.Rules.ScheduleExpression != "rate(30 days)" {
		t.Errorf("a rejected update changed the secret: tags %v, rotation %+v", d.Tags, d.Rotation)
	}
}

func TestUpdateNoSchedule(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.mustRun(exitOK, "update", "app/openai", "--no-schedule")
	assertContains(t, "stdout", r.stdout, "schedule  rate(30 days) -> none")
	if note := "take effect"; strings.Contains(r.stdout, note) {
		t.Errorf("a schedule change printed the settings note:\n%s", r.stdout)
	}
	d := e.describe("app/openai")
	if !d.Rotation.Enabled || !d.Rotation.Rules.IsZero() {
		t.Errorf("rotation = %+v, want enabled without rules", d.Rotation)
	}
	text := e.mustRun(exitOK, "status", "app/openai").stdout
	assertContains(t, "status", text, "none (rotate with rotate-now)")
}

func TestUpdateRejectsAWSStore(t *testing.T) {
	e := newEnv(t)
	r := e.run("update", "app/openai", "--base-url", "https://api.openai.com/v1", "--store", "aws://us-east-1")
	if r.code != exitError {
		t.Errorf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "Terraform manages the settings tags and rotation rules")
}

// TestWrongBaseURLFixedByUpdate points a secret at a path of the stand-in
// that is not an API root, so every check gets a 404.
func TestWrongBaseURLFixedByUpdate(t *testing.T) {
	e := newEnv(t)
	goodURL := e.baseURL
	e.baseURL = strings.Replace(goodURL, "/openai/v1", "/nothing/v1", 1)
	e.add("app/openai")

	r := e.run("stage", "app/openai", "--validate", "--file", e.writeFile("key", canary))
	if r.code != exitError {
		t.Errorf("stage --validate: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stage stderr", r.stderr, "rotator: hint: the secret's keyturn:base-url is not the provider's API root: fix it with 'rotator update app/openai --base-url URL'")
	if strings.Contains(r.stderr, "try again later") {
		t.Errorf("stage advises a retry for a wrong base URL:\n%s", r.stderr)
	}

	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	r = e.run("rotate-now", "app/openai")
	if r.code != exitError {
		t.Errorf("rotate-now: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "rotate-now stderr", r.stderr, "fix it with 'rotator update app/openai --base-url URL'")
	if strings.Contains(r.stderr, "retry later") {
		t.Errorf("rotate-now advises a retry for a wrong base URL:\n%s", r.stderr)
	}

	r = e.run("serve", "--once")
	if r.code != exitError {
		t.Errorf("serve --once: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "serve log", r.stderr, "class=config")

	r = e.mustRun(exitOK, "update", "app/openai", "--base-url", goodURL)
	assertContains(t, "update stdout", r.stdout, "the base URL among them")
	e.mustRun(exitOK, "rotate-now", "app/openai")
}

func TestUpdateWindowNeedsSchedule(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "update", "app/openai", "--no-schedule")
	r := e.run("update", "app/openai", "--window", "2h")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "--window needs a schedule")
	assertContains(t, "stderr", r.stderr, "pass --schedule EXPR too")
	for _, unwanted := range []string{`--schedule ""`, "ScheduleExpression", "Duration"} {
		if strings.Contains(r.stderr, unwanted) {
			t.Errorf("stderr names %s:\n%s", unwanted, r.stderr)
		}
	}
	e.mustRun(exitOK, "update", "app/openai", "--schedule", "rate(7 days)", "--window", "2h")
}

func TestUpdateRefusesDevSecret(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	if err := e.openStore().Tag(context.Background(), "app/openai", map[string]string{devIntervalTag: "30s"}); err != nil {
		t.Fatal(err)
	}
	r := e.run("update", "app/openai", "--schedule", "rate(7 days)")
	if r.code != exitError {
		t.Errorf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "is the secret of 'rotator dev'")
	if d := e.describe("app/openai"); d.Rotation.Rules.ScheduleExpression == "rate(7 days)" {
		t.Errorf("update changed the dev secret's schedule: %+v", d.Rotation)
	}
}
