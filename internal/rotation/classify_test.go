package rotation_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

const lambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:keyturn-rotator"

// strictChecker returns the real checker with a policy that refuses
// loopback, so the stand-in's URL is refused.
func strictChecker() provider.Checker {
	return provider.New(provider.Options{Policy: provider.DefaultPolicy(), Margin: 200 * time.Millisecond})
}

// policyCase is a base URL that the host policy refuses when a key is
// checked. The loopback case uses the stand-in's own URL with a policy that
// refuses loopback; the others keep loopback allowed.
type policyCase struct {
	name     string
	baseURL  string // "" for the stand-in's OpenAI root
	loopback bool   // refuse loopback
	want     string
}

var policyCases = []policyCase{
	{name: "loopback not allowed", loopback: true, want: "loopback host"},
	{name: "metadata address", baseURL: "http://169.254.169.254/openai/v1", want: "cloud metadata address"},
	{name: "private address", baseURL: "https://10.1.2.3/v1", want: "private address"},
	{name: "host off the allow-list", baseURL: "https://relay.example.com/v1", want: "KEYTURN_RELAY_HOSTS"},
}

// setUp creates app/openai with the case's base URL and engine policy.
func (tc policyCase) setUp(e *env) {
	e.t.Helper()
	e.prov.AddKey(newKey)
	if tc.loopback {
		e.engine.Checker = strictChecker()
	}
	tags := e.tags("openai")
	if tc.baseURL != "" {
		tags[keystore.TagBaseURL] = tc.baseURL
	}
	e.addSecret("app/openai", tags, "")
}

func TestStageValidatePolicyRefusalIsConfig(t *testing.T) {
	for _, tc := range policyCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.setUp(e)

			_, err := e.engine.Stage(ctxFor(t), "app/openai", keystore.Value{APIKey: keystore.NewSecret(newKey)}, true)
			noCanary(t, err)
			if !errors.Is(err, rotation.ErrConfig) {
				t.Fatalf("Stage: err = %v, want ErrConfig", err)
			}
			if errors.Is(err, rotation.ErrTransient) {
				t.Errorf("Stage: err = %v also matches ErrTransient", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the refusal %q", err, tc.want)
			}
			for _, advice := range []string{"without validation", "--validate", "try again"} {
				if strings.Contains(err.Error(), advice) {
					t.Errorf("error %q advises %q, which cannot fix it", err, advice)
				}
			}
			if got := e.holder("app/openai", keystore.StageStaged); got != "" {
				t.Errorf("KEYTURN_STAGED on %s after a failed validation", got)
			}
			if n := len(e.prov.Requests()); n != 0 {
				t.Errorf("the stand-in saw %d requests, want 0", n)
			}
		})
	}
}

func TestRotatePolicyRefusalIsConfig(t *testing.T) {
	for _, tc := range policyCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.setUp(e)
			staged := e.stage("app/openai", newKey)

			res, err := e.engine.RotateNow(ctxFor(t), "app/openai")
			noCanary(t, err)
			if !errors.Is(err, rotation.ErrConfig) {
				t.Fatalf("RotateNow: err = %v, want ErrConfig", err)
			}
			if res.Outcome != rotation.Failed {
				t.Errorf("Outcome = %s, want %s", res.Outcome, rotation.Failed)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the refusal %q", err, tc.want)
			}
			if got := e.holder("app/openai", keystore.StagePending); got != "" {
				t.Errorf("AWSPENDING left on %s", got)
			}
			if got := e.holder("app/openai", keystore.StageStaged); got != staged {
				t.Errorf("KEYTURN_STAGED on %q, want it left on %s", got, staged)
			}
			if got := e.holder("app/openai", keystore.StageRejected); got != "" {
				t.Errorf("KEYTURN_REJECTED on %s, but the key was never judged", got)
			}
		})
	}
}

func TestPolicyRefusalOnAWSClearsPending(t *testing.T) {
	e := newEnv(t)
	e.engine.Checker = strictChecker()
	e.addSecret("app/openai", e.tags("openai"), "")
	e.stage("app/openai", newKey)
	e.setLambda("app/openai")

	ctx := ctxFor(t)
	token, err := e.store.BeginRotation(ctx, "app/openai", "")
	if err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}
	if err := e.engine.Run(ctx, rotation.CreateSecret, "app/openai", token); err != nil {
		t.Fatalf("createSecret: %v", err)
	}
	err = e.engine.Run(ctx, rotation.TestSecret, "app/openai", token)
	if !errors.Is(err, rotation.ErrConfig) {
		t.Fatalf("testSecret: err = %v, want ErrConfig", err)
	}
	if got := e.holder("app/openai", keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s: its recorded settings can never pass", got)
	}
	if !strings.Contains(err.Error(), "Fix the configuration, then rotate again.") {
		t.Errorf("error %q does not say what to do", err)
	}
}

func TestPolicyRefusalRevokesMintedKey(t *testing.T) {
	e := newEnv(t)
	e.engine.Checker = strictChecker()
	e.addMintingSecret("app/openrouter")

	_, err := e.engine.RotateNow(ctxFor(t), "app/openrouter")
	if !errors.Is(err, rotation.ErrConfig) {
		t.Fatalf("RotateNow: err = %v, want ErrConfig", err)
	}
	minted := e.prov.MintedKeys()
	if len(minted) != 1 || !minted[0].Deleted {
		t.Errorf("minted keys = %+v, want one, deleted", minted)
	}
	if !strings.Contains(err.Error(), "the minted key was revoked") {
		t.Errorf("error %q does not say the minted key was revoked", err)
	}
}

func TestWrongBaseURLIsConfigHTMLIsTransient(t *testing.T) {
	t.Parallel() // waits seconds between retries
	cases := []struct {
		name  string
		fault fakeprovider.Fault
		want  error
		text  string
	}{
		{"redirect", fakeprovider.Fault{Status: http.StatusFound, Header: http.Header{"Location": {"https://api.openai.com/v1/models"}}},
			rotation.ErrConfig, "set keyturn:base-url to the final location"},
		{"not found", fakeprovider.Fault{Status: http.StatusNotFound, Body: "404 page not found", ContentType: "text/plain"},
			rotation.ErrConfig, "check keyturn:base-url"},
		{"method not allowed", fakeprovider.Fault{Status: http.StatusMethodNotAllowed, Body: "method not allowed", ContentType: "text/plain"},
			rotation.ErrConfig, "check keyturn:base-url"},
		{"html page", fakeprovider.Fault{Status: http.StatusOK, Body: "<html>sign in</html>", ContentType: "text/html"},
			rotation.ErrTransient, "body is not JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.engine.Checker = newChecker(nil, 300*time.Millisecond)
			e.prov.AddKey(newKey)
			e.addSecret("app/openai", e.tags("openai"), "")
			e.stage("app/openai", newKey)
			e.prov.SetFault("GET /openai/v1/models", tc.fault)

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err := e.engine.RotateNow(ctx, "app/openai")
			if !errors.Is(err, tc.want) {
				t.Fatalf("RotateNow: err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not say %q", err, tc.text)
			}
			if got := e.holder("app/openai", keystore.StageStaged); got == "" {
				t.Errorf("the staged key was consumed")
			}
		})
	}
}

func TestUnsendableStagedKeyRejected(t *testing.T) {
	e := newEnv(t)
	e.addSecret("app/openai", e.tags("openai"), "")
	bad := keystore.Value{APIKey: keystore.NewSecret("sk-" + canary + "\x00x"), CreatedAt: e.now}
	err := e.store.Put(ctxFor(t), keystore.PutInput{
		SecretID: "app/openai", Token: "00000000-0000-4000-8000-0000000000aa",
		Value: encode(t, bad), Stages: []string{keystore.StageStaged},
	})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}

	res, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	noCanary(t, err)
	if !errors.Is(err, rotation.ErrRejected) {
		t.Fatalf("RotateNow: err = %v, want ErrRejected", err)
	}
	if res.Outcome != rotation.Rejected {
		t.Errorf("Outcome = %s, want %s", res.Outcome, rotation.Rejected)
	}
	for _, want := range []string{"rejected before any request", "NUL byte"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "invalid header") {
		t.Errorf("error %q shows net/http's error in place of the key's problem", err)
	}
	if n := len(e.prov.Requests()); n != 0 {
		t.Errorf("the stand-in saw %d requests, want 0", n)
	}
	if got := e.holder("app/openai", keystore.StageRejected); got == "" {
		t.Errorf("the unsendable key is not kept as KEYTURN_REJECTED")
	}
}

func TestStageUnsendableKeyRejected(t *testing.T) {
	e := newEnv(t)
	e.addSecret("app/openai", e.tags("openai"), "")
	for _, key := range []string{"\uFEFFsk-" + canary, "sk-" + canary + "\n", "sk-" + canary + " x", "sk-" + canary + "é"} {
		_, err := e.engine.Stage(ctxFor(t), "app/openai", keystore.Value{APIKey: keystore.NewSecret(key)}, false)
		noCanary(t, err)
		if !errors.Is(err, rotation.ErrRejected) || !errors.Is(err, provider.ErrInvalidKey) {
			t.Errorf("Stage: err = %v, want ErrRejected and provider.ErrInvalidKey", err)
		}
	}
	if got := e.holder("app/openai", keystore.StageStaged); got != "" {
		t.Errorf("KEYTURN_STAGED on %s, want nothing staged", got)
	}
}

func TestUnsendableAdminKeyIsConfig(t *testing.T) {
	e := newEnv(t)
	_, err := e.store.Create(ctxFor(t), keystore.CreateInput{
		SecretID: "admin/openrouter",
		Value:    encode(t, keystore.Value{APIKey: keystore.NewSecret(adminKey + "\r\n")}),
	})
	if err != nil {
		t.Fatalf("Create admin secret: %v", err)
	}
	e.addSecret("app/openrouter", e.tags("openrouter", keystore.TagIssuer, "dev", keystore.TagIssuerSecret, "admin/openrouter"), "")

	_, err = e.engine.RotateNow(ctxFor(t), "app/openrouter")
	noCanary(t, err)
	if !errors.Is(err, rotation.ErrConfig) {
		t.Fatalf("RotateNow: err = %v, want ErrConfig", err)
	}
	if !strings.Contains(err.Error(), "issuer secret admin/openrouter") || !strings.Contains(err.Error(), "line break") {
		t.Errorf("error %q does not name the issuer secret and the problem", err)
	}
}

func TestRefusedAdminKeyIsConfig(t *testing.T) {
	e := newEnv(t)
	e.addMintingSecret("app/openrouter")
	e.prov.RevokeKey(adminKey)

	_, err := e.engine.RotateNow(ctxFor(t), "app/openrouter")
	noCanary(t, err)
	if !errors.Is(err, rotation.ErrConfig) {
		t.Fatalf("RotateNow: err = %v, want ErrConfig", err)
	}
	if !strings.Contains(err.Error(), "admin key in admin/openrouter") {
		t.Errorf("error %q does not name the issuer secret", err)
	}
	if got := e.holder("app/openrouter", keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s", got)
	}
}
