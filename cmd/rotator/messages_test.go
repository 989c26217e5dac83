package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/keystore"
)

func TestStageRejectsCopiedKeyShapes(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	const key = "sk-shape-4d2a9c7e1b"
	tests := []struct {
		name, content, want string
	}{
		{".env line", "OPENAI_API_KEY=" + key, "looks like a NAME=VALUE line from a .env file"},
		{"lowercase .env line", "api_key=" + key + "\n", "looks like a NAME=VALUE line from a .env file"},
		{"single quotes", "'" + key + "'", "starts with a quote\nrotator: hint: remove the quotes around the key"},
		{"trailing quote", key + `"`, "ends with a quote"},
		{"short key", "sk-abc", "is 6 characters long, shorter than any provider key (at least 8)"},
		{"value with .env line", `{"api_key": "api_key=` + key + `"}`, "the api_key looks like a NAME=VALUE line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run("stage", "app/openai", "--file", e.writeFile("key", tt.content))
			if r.code != exitError {
				t.Errorf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want)
			if strings.Contains(r.stdout+r.stderr, "shape-4d2a") || strings.Contains(r.stderr, "sk-abc") {
				t.Errorf("the key reached the output:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
	// Base64 padding is no .env line.
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", "c2stcGFkZGVkLWtleQ=="))
}

func TestStageSaysWhatItReplaced(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	first := e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary), "--output", "json")
	var one stagedJSON
	if err := json.Unmarshal([]byte(first.stdout), &one); err != nil {
		t.Fatal(err)
	}
	if one.Replaced != "" || one.SupersededBy != "" {
		t.Errorf("first stage = %+v, want nothing replaced", one)
	}
	r := e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	assertContains(t, "stdout", r.stdout, "replaced the staged version "+one.VersionID)

	r = e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary), "--output", "json")
	var three stagedJSON
	if err := json.Unmarshal([]byte(r.stdout), &three); err != nil {
		t.Fatal(err)
	}
	if three.Replaced == "" || three.Replaced == one.VersionID {
		t.Errorf("third stage replaced %q, want the second stage's version", three.Replaced)
	}
}

// status503 matches the status as a word, so that a version id such as
// a1ca5037-... does not count.
var status503 = regexp.MustCompile(`\b503\b`)

func countStatus503(text string) int { return len(status503.FindAllString(text, -1)) }

func TestRotateNowFailurePrintedOnce(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))
	e.provider.SetFault("GET /openai/v1/models", fakeprovider.Fault{Status: http.StatusServiceUnavailable})

	r := e.run("rotate-now", "app/openai", "--timeout", "2s", "--output", "json")
	var out rotationJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("rotate-now JSON: %v\n%s", err, r.stdout)
	}
	if out.Failure == nil || !strings.Contains(out.Failure.Reason, "503") {
		t.Errorf("failure = %+v, want the 503", out.Failure)
	}
	if out.Error != "" {
		t.Errorf("JSON repeats the failure in error: %q", out.Error)
	}
	if n := countStatus503(r.stderr); n != 1 {
		t.Errorf("stderr gives the 503 %d times, want once:\n%s", n, r.stderr)
	}

	r = e.run("rotate-now", "app/openai", "--timeout", "2s")
	if n := countStatus503(r.stdout + r.stderr); n != 1 {
		t.Errorf("text output gives the 503 %d times, want once:\n%s%s", n, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "`") {
		t.Errorf("stderr quotes a command in backticks, not single quotes:\n%s", r.stderr)
	}
}

func TestRotateNowDevIssuerNotConfigured(t *testing.T) {
	e := newEnv(t)
	e.add("app/dev", "--issuer", "dev", "--issuer-secret", "dev/issuer")
	r := e.run("rotate-now", "app/dev")
	if r.code != exitError {
		t.Errorf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "KEYTURN_DEV_ISSUER_URL is not set")
	assertContains(t, "stderr", r.stderr, "let 'rotator dev' rotate it")
	if d := e.describe("app/dev"); len(d.Versions) != 0 {
		t.Errorf("a doomed rotation left versions %v", d.Versions)
	}
}

func TestRotateNowMissingModelOfMintedKey(t *testing.T) {
	e := newEnv(t)
	root := strings.TrimSuffix(e.baseURL, "/openai/v1")
	e.vars[devIssuerEnv] = root + "/openrouter/api/v1"
	const mgmt = "dev-management-key-for-test"
	e.provider.AddManagementKey(mgmt)
	value, err := keystore.Value{APIKey: keystore.NewSecret(mgmt)}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.openStore().Create(context.Background(), keystore.CreateInput{SecretID: "dev/issuer", Value: value}); err != nil {
		t.Fatal(err)
	}
	e.add("app/dev", "--issuer", "dev", "--issuer-secret", "dev/issuer", "--required-models", "gpt-nowhere")

	r := e.run("rotate-now", "app/dev")
	if r.code != exitRejected {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitRejected, r.stdout, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "rotator: hint: the new key does not list gpt-nowhere, which keyturn:required-models requires")
	assertContains(t, "stderr", r.stderr, "'rotator update app/dev --required-models")
	if strings.Contains(r.stderr, "stage a working key") {
		t.Errorf("the hint for a minted key says to stage one:\n%s", r.stderr)
	}
}

func TestFlagValueErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		args      []string
		want, not string
	}{
		{[]string{"rotate-now", "x", "--timeout", "abc"}, `rotate-now: invalid value "abc" for --timeout: use a duration such as 2m`, "parse error"},
		{[]string{"rotate-now", "x", "--timeout", "0"}, "rotate-now: --timeout 0s must be positive, such as 2m", ""},
		{[]string{"serve", "--rescan", "abc"}, `invalid value "abc" for --rescan: use a duration`, ""},
		{[]string{"serve", "--rescan", "0"}, "serve: --rescan 0s must be positive, such as 1m", "stop-timeout"},
		{[]string{"serve", "--stop-timeout", "-1s"}, "serve: --stop-timeout -1s must be positive", "rescan"},
		{[]string{"dev", "--interval", "soon"}, `invalid value "soon" for --interval: use a duration`, ""},
		{[]string{"stage", "x", "--validate=maybe"}, `invalid value "maybe" for --validate: use true or false, or --validate alone for true`, "parse error"},
		{[]string{"rotate-now", "x", "--timeout"}, "rotate-now: --timeout needs a value", ""},
		{[]string{"rotate-now", "x", "--output", "yaml"}, `unknown output format "yaml": use text or json`, ""},
		{[]string{"add", "x"}, "add: missing --provider", "tag"},
		{[]string{"abandon", "x", "--relay-host", "relay.example.com"}, "abandon: unknown flag --relay-host", ""},
		{[]string{"abandon", "x", "--allow-loopback"}, "abandon: unknown flag --allow-loopback", ""},
	}
	for _, tt := range tests {
		r := e.run(tt.args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", tt.args, r.code, exitUsage, r.stderr)
		}
		assertContains(t, strings.Join(tt.args, " "), r.stderr, tt.want)
		if tt.not != "" && strings.Contains(r.stderr, tt.not) {
			t.Errorf("%v: stderr contains %q:\n%s", tt.args, tt.not, r.stderr)
		}
	}
}

func TestRelayHostErrorSaysWhatARelayIs(t *testing.T) {
	e := newEnv(t)
	r := e.run("add", "x", "--provider", "openai", "--base-url", "https://api.openai.com/v1", "--relay-host", "10.0.0.1")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "10.0.0.1 is a private address")
	assertContains(t, "stderr", r.stderr, "a relay host is the public host name of an OpenAI-compatible relay that keys may be sent to, such as relay.example.com")
	if strings.Contains(r.stderr, "use the provider's public host") {
		t.Errorf("stderr gives the base URL advice for a relay host:\n%s", r.stderr)
	}
}

func TestStoreHelpOfFileOnlyCommands(t *testing.T) {
	e := newEnv(t)
	for _, cmd := range []string{"add", "update", "serve"} {
		r := e.mustRun(exitOK, "help", cmd)
		if strings.Contains(r.stdout, "aws://") {
			t.Errorf("help %s offers aws://, which %s rejects:\n%s", cmd, cmd, r.stdout)
		}
	}
	r := e.mustRun(exitOK, "help", "status")
	assertContains(t, "help status", r.stdout, "aws://REGION")
}

// TestStageDuringRotationNamesIt stages a key while a rotation that took
// the staged key before is in progress: that rotation still uses the
// previous key, so the stage must not say that no rotation will use it.
func TestStageDuringRotationNamesIt(t *testing.T) {
	e := newEnv(t)
	entered, release := gateProvider(t, e)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary))

	done := make(chan result, 1)
	go func() { done <- e.run("rotate-now", "app/openai") }()
	waitClosed(t, entered, "the provider check")
	st := e.status("app/openai")
	r := e.run("stage", "app/openai", "--file", e.writeFile("key2", "sk-second-staged-key"))
	close(release)
	<-done
	if r.code != exitOK {
		t.Fatalf("stage: exit %d\n%s", r.code, r.stderr)
	}
	if st.InProgress == nil {
		t.Fatal("no rotation in progress while the provider check waited")
	}
	assertContains(t, "stdout", r.stdout,
		"the rotation in progress (version "+st.InProgress.VersionID+") still uses the previous staged key")
	if strings.Contains(r.stdout, "no rotation will use") {
		t.Errorf("stage says no rotation will use the key the rotation in progress has:\n%s", r.stdout)
	}
}
