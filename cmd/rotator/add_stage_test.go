package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

func TestAddCreatesManagedSecret(t *testing.T) {
	e := newEnv(t)
	r := e.mustRun(exitOK, "add", "app/openai", "--provider", "openai", "--base-url", e.baseURL,
		"--required-models", "gpt-4o gpt-4o-mini", "--grace", "2h", "--schedule", "rate(7 days)", "--window", "3h",
		"--output", "json")
	var out addedJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("add JSON: %v\n%s", err, r.stdout)
	}
	if out.SecretID != "app/openai" || out.Schedule != "rate(7 days)" || out.Window != "3h" {
		t.Errorf("add output = %+v", out)
	}

	d, err := e.openStore().Describe(context.Background(), "app/openai")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		keystore.TagProvider: "openai", keystore.TagBaseURL: e.baseURL, keystore.TagIssuer: "staged",
		keystore.TagRequiredModels: "gpt-4o gpt-4o-mini", keystore.TagProbe: "models", keystore.TagGrace: "2h",
	}
	for k, v := range want {
		if d.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, d.Tags[k], v)
		}
	}
	if !d.Rotation.Enabled || d.Rotation.Rules.ScheduleExpression != "rate(7 days)" || d.Rotation.Rules.Duration != "3h" {
		t.Errorf("rotation = %+v", d.Rotation)
	}
}

func TestAddDefaultsAndText(t *testing.T) {
	e := newEnv(t)
	r := e.mustRun(exitOK, "add", "app/openai", "--provider", "openai", "--base-url", e.baseURL)
	assertContains(t, "stdout", r.stdout, "added app/openai (provider openai, issuer staged, schedule rate(30 days))")
	assertContains(t, "stdout", r.stdout, "rotator stage app/openai")

	r = e.run("add", "app/openai", "--provider", "openai", "--base-url", e.baseURL)
	if r.code != exitError {
		t.Errorf("second add: exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "secret app/openai already exists")
}

func TestAddRejectsBadSettings(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing provider", []string{"--base-url", "https://api.openai.com/v1"}, exitUsage, "missing --provider: use one of openai"},
		{"unknown provider", []string{"--provider", "opena1", "--base-url", "https://api.openai.com/v1"}, exitUsage, `unknown provider "opena1"`},
		{"missing base url", []string{"--provider", "openai"}, exitUsage, "missing --base-url"},
		{"not https", []string{"--provider", "openai", "--base-url", "http://api.openai.com/v1", "--allow-loopback=false"}, exitUsage, "http://api.openai.com/v1"},
		{"off the allow-list", []string{"--provider", "openai", "--base-url", "https://relay.example.com/v1"}, exitUsage, "relay.example.com"},
		{"bad probe", []string{"--provider", "openai", "--base-url", "https://api.openai.com/v1", "--probe", "ping"}, exitUsage, `unknown probe "ping"`},
		{"bad grace", []string{"--provider", "openai", "--base-url", "https://api.openai.com/v1", "--grace", "1 day"}, exitUsage, `invalid duration "1 day"`},
		{"unknown issuer", []string{"--provider", "openai", "--base-url", "https://api.openai.com/v1", "--issuer", "vault", "--issuer-secret", "x"}, exitUsage, `unknown issuer "vault"`},
		{"issuer without secret", []string{"--provider", "openai", "--base-url", "https://api.openai.com/v1", "--issuer", "dev"}, exitUsage, "missing --issuer-secret"},
		{"bad schedule", []string{"--provider", "openai", "--base-url", "https://api.openai.com/v1", "--schedule", "rate(1 hours)"}, exitUsage, `--schedule "rate(1 hours)"`},
		{"bad window", []string{"--provider", "openai", "--base-url", "https://api.openai.com/v1", "--window", "3 hours"}, exitUsage, `--window "3 hours"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "not https" {
				delete(e.vars, "KEYTURN_ALLOW_LOOPBACK")
				defer func() { e.vars["KEYTURN_ALLOW_LOOPBACK"] = "true" }()
			}
			r := e.run(append([]string{"add", "app/x"}, tt.args...)...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tt.code, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want)
		})
	}
	// Nothing was written.
	secrets, err := e.openStore().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets) != 0 {
		t.Errorf("the store holds %d secrets after rejected adds, want 0", len(secrets))
	}
}

func TestAddRelayHost(t *testing.T) {
	e := newEnv(t)
	e.mustRun(exitOK, "add", "app/relay", "--provider", "openai", "--base-url", "https://relay.example.com/v1",
		"--relay-host", "relay.example.com")
}

func TestAddRejectsAWSStore(t *testing.T) {
	e := newEnv(t)
	r := e.run("add", "app/openai", "--provider", "openai", "--base-url", "https://api.openai.com/v1", "--store", "aws://us-east-1")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "rotator: hint: on AWS, Terraform creates secrets")
}

func TestStageBareKeyFromFileAndStdin(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary+"\n"), "--key-id", "key_1")
	assertContains(t, "stdout", r.stdout, "staged app/openai version ")
	st := e.status("app/openai")
	if st.Staged == nil {
		t.Fatal("no staged version after stage")
	}
	v, err := e.openStore().Get(context.Background(), "app/openai", keystore.ByStage(keystore.StageStaged))
	if err != nil {
		t.Fatal(err)
	}
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		t.Fatal(err)
	}
	if value.APIKey.Reveal() != canary || value.KeyID != "key_1" {
		t.Errorf("staged value has key id %q and a key of %d bytes, want key_1 and the canary", value.KeyID, value.APIKey.Len())
	}

	r = e.runInput(canary, "stage", "app/openai", "--output", "json")
	if r.code != exitOK {
		t.Fatalf("stage from stdin: exit %d\n%s", r.code, r.stderr)
	}
	var out stagedJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.VersionID == "" || out.Validated {
		t.Errorf("stage JSON = %+v", out)
	}
}

func TestStageValueJSON(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	file := e.writeFile("value.json", `{"api_key": "`+canary+`", "key_id": "key_json"}`)
	e.mustRun(exitOK, "stage", "app/openai", "--file", file, "--validate")
	v, err := e.openStore().Get(context.Background(), "app/openai", keystore.ByStage(keystore.StageStaged))
	if err != nil {
		t.Fatal(err)
	}
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		t.Fatal(err)
	}
	if value.KeyID != "key_json" {
		t.Errorf("key id = %q, want key_json", value.KeyID)
	}
}

func TestStageReportsAdjustedValue(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	file := e.writeFile("value.json", `{"api_key": "`+canary+`", `+
		`"settings": {"provider": "openai", "base_url": "https://relay.example.com/v1"}, `+
		`"retire": [{"key_id": "key_old", "version_id": "v", "not_before": "2026-01-01T00:00:00Z"}]}`)

	r := e.mustRun(exitOK, "stage", "app/openai", "--file", file)
	assertContains(t, "stderr", r.stderr, "rotator: note:")
	assertContains(t, "stderr", r.stderr, "base_url")
	assertContains(t, "stderr", r.stderr, "retire")
	if strings.Count(r.stderr, "retire list") != 1 {
		t.Errorf("the retire note appears %d times, want once:\n%s", strings.Count(r.stderr, "retire list"), r.stderr)
	}

	r = e.mustRun(exitOK, "stage", "app/openai", "--file", file, "--output", "json")
	var out struct {
		Notes []string `json:"notes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("stage --output json: %v\n%s", err, r.stdout)
	}
	if len(out.Notes) != 2 {
		t.Errorf("notes = %q, want one for the settings and one for retire", out.Notes)
	}
}

func TestStageRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	tests := []struct {
		name, content, want string
	}{
		{"empty", "", "is empty"},
		{"whitespace only", " \t\n", "is empty"},
		{"two lines", canary + "\n" + canary + "\n", "has 2 lines"},
		{"inner space", "sk-abc def", "contains spaces or tabs"},
		{"malformed JSON", `{"api_key": "` + canary + `",`, "malformed value"},
		{"JSON without key", `{"key_id": "k"}`, "field api_key is missing or empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run("stage", "app/openai", "--file", e.writeFile("key", tt.content))
			if r.code != exitError {
				t.Errorf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want)
		})
	}
	r := e.run("stage", "app/openai", "--file", "/nonexistent/key")
	if r.code != exitError {
		t.Errorf("missing file: exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "cannot read key file /nonexistent/key: it does not exist")
	dir := t.TempDir()
	r = e.run("stage", "app/openai", "--file", dir)
	if r.code != exitError {
		t.Errorf("directory: exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "rotator: error: stage: cannot read key file "+dir+": it is a directory\n")
	if st := e.status("app/openai"); st.Staged != nil {
		t.Errorf("bad input was staged as version %s", st.Staged.VersionID)
	}
}

func TestStageAcceptsTrailingBlankLines(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	for _, content := range []string{canary + "\n\n", canary + "\r\n\r\n", canary + "\n  \n\t\n", canary} {
		e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", content))
	}
	r := e.run("stage", "app/openai", "--file", e.writeFile("key", canary+"\n\n"+canary+"\n"))
	assertContains(t, "stderr", r.stderr, "has 3 lines")
}

func TestStageKeyIDChecked(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	key := e.writeFile("key", canary)
	r := e.run("stage", "app/openai", "--file", key, "--key-id", "bad id")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, `stage: --key-id "bad id" has a space`)
	r = e.run("stage", "app/openai", "--file", key, "--key-id", strings.Repeat("k", 129))
	assertContains(t, "stderr", r.stderr, "--key-id is 129 characters long")
	r = e.run("stage", "app/openai", "--file", e.writeFile("v", `{"api_key": "`+canary+`", "key_id": "a\tb"}`))
	if r.code != exitError {
		t.Errorf("value key_id: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "the value's key_id")
	if st := e.status("app/openai"); st.Staged != nil {
		t.Errorf("a bad key id was staged as version %s", st.Staged.VersionID)
	}
	e.mustRun(exitOK, "stage", "app/openai", "--file", key, "--key-id", "key_abc-1")
}

func TestExtraArgumentHintFitsCommand(t *testing.T) {
	e := newEnv(t)
	r := e.run("rotate-now", "a", "b")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	assertContains(t, "stderr", r.stderr, "rotate-now works on one secret at a time")
	if strings.Contains(r.stderr, "stage") {
		t.Errorf("the rotate-now hint speaks of stage:\n%s", r.stderr)
	}
	r = e.run("stage", "a", "b")
	assertContains(t, "stderr", r.stderr, "keys are never arguments")
}

func TestStageValidateRejected(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	const unknownKey = "sk-unknown-to-the-provider"
	r := e.run("stage", "app/openai", "--file", e.writeFile("key", unknownKey), "--validate")
	if r.code != exitRejected {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitRejected, r.stderr)
	}
	if strings.Contains(r.stderr, unknownKey) {
		t.Errorf("the rejected key appears in stderr:\n%s", r.stderr)
	}
	if st := e.status("app/openai"); st.Staged != nil {
		t.Errorf("a rejected key was staged as version %s", st.Staged.VersionID)
	}
	assertContains(t, "stderr", r.stderr, "rotator: hint: check that it is the right key for this secret")
	if n := strings.Count(strings.ToLower(r.stderr), "nothing was staged"); n != 1 {
		t.Errorf("stderr says nothing was staged %d times, want once:\n%s", n, r.stderr)
	}
}

func TestStageValidateTransient(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.provider.SetFault("GET /openai/v1/models", fakeprovider.Fault{Status: http.StatusBadRequest})
	r := e.run("stage", "app/openai", "--file", e.writeFile("key", canary), "--validate")
	if r.code != exitTransient {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitTransient, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "rotator: hint: try again later, or stage without --validate")
	if n := strings.Count(r.stderr, "nothing was staged"); n != 1 {
		t.Errorf("stderr says nothing was staged %d times, want once:\n%s", n, r.stderr)
	}
	if st := e.status("app/openai"); st.Staged != nil {
		t.Errorf("a key that failed its check was staged as version %s", st.Staged.VersionID)
	}
}

// TestStageErrorInvalidKey gives stageError the engine's error for a key
// that cannot be sent. The CLI's own input checks reject such keys first,
// so no run of the command reaches it.
func TestStageErrorInvalidKey(t *testing.T) {
	engine := &rotation.Engine{}
	_, err := engine.Stage(context.Background(), "app/openai", keystore.Value{APIKey: keystore.NewSecret("sk-with space")}, false)
	if !errors.Is(err, provider.ErrInvalidKey) {
		t.Fatalf("Stage: err = %v, want provider.ErrInvalidKey", err)
	}

	var ce *cli.Error
	if !errors.As(stageError("app/openai", settings{}, err), &ce) {
		t.Fatalf("stageError returned no *cli.Error")
	}
	if ce.Code != exitRejected {
		t.Errorf("exit code = %d, want %d", ce.Code, exitRejected)
	}
	want := []string{"the key cannot be sent as it is: check the file"}
	if !slices.Equal(ce.Hints, want) {
		t.Errorf("hints = %q, want %q", ce.Hints, want)
	}
}

func TestStageUnknownSecret(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.run("stage", "app/missing", "--file", e.writeFile("key", canary))
	if r.code != exitError {
		t.Errorf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "secret app/missing not found in store "+e.storeURL+" (store URL from KEYTURN_STORE)")
	assertContains(t, "stderr", r.stderr, "rotator add app/missing --provider NAME --base-url URL")
}
