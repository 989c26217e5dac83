package provider

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/keystore"
)

// shapes are the stand-in's base URL paths per adapter.
var shapes = map[string]string{
	"openai":     fakeprovider.OpenAIPrefix,
	"anthropic":  fakeprovider.AnthropicPrefix,
	"gemini":     fakeprovider.GeminiPrefix,
	"openrouter": fakeprovider.OpenRouterPrefix,
}

func startFake(t *testing.T) (*fakeprovider.Provider, string) {
	t.Helper()
	fp, url := fakeprovider.Start(t, fakeprovider.Options{})
	fp.AddKey(canary)
	return fp, url
}

func fakeSettings(url, providerName string, required ...string) keystore.Settings {
	return keystore.Settings{Provider: providerName, BaseURL: url + shapes[providerName], RequiredModels: required, Probe: keystore.ProbeModels}
}

func TestFakeProviderKeyStates(t *testing.T) {
	for providerName := range shapes {
		t.Run(providerName, func(t *testing.T) {
			fp, url := startFake(t)
			c, logs := testChecker(Options{})
			s := fakeSettings(url, providerName)

			if res := check(t, c, logs, s); res.Class != Valid {
				t.Errorf("added key: class = %s (%s), want valid", res.Class, res.Reason)
			}

			fp.SetKeyQuota(canary, true)
			// Gemini reports exhausted billing as 400 FAILED_PRECONDITION,
			// which concerns the project, not the key.
			wantExhausted := Rejected
			if providerName == "gemini" {
				wantExhausted = Misconfigured
			}
			if res := check(t, c, logs, s); res.Class != wantExhausted {
				t.Errorf("exhausted key: class = %s (%s), want %s", res.Class, res.Reason, wantExhausted)
			}
			fp.SetKeyQuota(canary, false)

			fp.RevokeKey(canary)
			res := check(t, c, logs, s)
			if res.Class != Rejected {
				t.Errorf("revoked key: class = %s (%s), want rejected", res.Class, res.Reason)
			}
			if res.Attempts != 1 {
				t.Errorf("revoked key: attempts = %d, want 1", res.Attempts)
			}
		})
	}
}

func TestFakeProviderRequiredModels(t *testing.T) {
	for _, providerName := range []string{"openai", "anthropic", "gemini"} {
		t.Run(providerName, func(t *testing.T) {
			fp, url := startFake(t)
			fp.SetKeyModels(canary, "model-a", "model-b")
			c, logs := testChecker(Options{})

			if res := check(t, c, logs, fakeSettings(url, providerName, "model-b")); res.Class != Valid {
				t.Errorf("listed model: class = %s (%s), want valid", res.Class, res.Reason)
			}
			res := check(t, c, logs, fakeSettings(url, providerName, "model-a", "model-c"))
			if res.Class != Rejected || !strings.Contains(res.Reason, "model-c not listed") {
				t.Errorf("missing model: class = %s, reason %q, want rejected naming model-c", res.Class, res.Reason)
			}
		})
	}
}

// More models than one page of the largest size makes both paged shapes
// follow a second page.
func TestFakeProviderPaging(t *testing.T) {
	var ids []string
	for i := range 1200 {
		ids = append(ids, fmt.Sprintf("model-%04d", i))
	}
	for _, providerName := range []string{"anthropic", "gemini"} {
		t.Run(providerName, func(t *testing.T) {
			fp, url := startFake(t)
			fp.SetModels(ids...)
			c, logs := testChecker(Options{})
			res := check(t, c, logs, fakeSettings(url, providerName, "model-0000", "model-1199"))
			if res.Class != Valid {
				t.Fatalf("class = %s (%s), want valid", res.Class, res.Reason)
			}
			if res.Attempts != 2 || len(res.Models) != len(ids) {
				t.Errorf("attempts = %d, models = %d, want 2 pages and %d models", res.Attempts, len(res.Models), len(ids))
			}
		})
	}
}

func TestFakeProviderInference(t *testing.T) {
	for _, providerName := range []string{"openai", "openrouter"} {
		t.Run(providerName, func(t *testing.T) {
			fp, url := startFake(t)
			model := fakeprovider.DefaultModels()[0]
			c, logs := testChecker(Options{})
			s := fakeSettings(url, providerName, model)
			s.Probe = keystore.ProbeInference
			if res := check(t, c, logs, s); res.Class != Valid {
				t.Errorf("class = %s (%s), want valid", res.Class, res.Reason)
			}

			fp.SetKeyQuota(canary, true)
			// Gemini reports exhausted billing as 400 FAILED_PRECONDITION,
			// which concerns the project, not the key.
			wantExhausted := Rejected
			if providerName == "gemini" {
				wantExhausted = Misconfigured
			}
			if res := check(t, c, logs, s); res.Class != wantExhausted {
				t.Errorf("exhausted key: class = %s (%s), want %s", res.Class, res.Reason, wantExhausted)
			}
		})
	}
}

func TestFakeProviderTransientFaults(t *testing.T) {
	cases := []struct {
		name  string
		fault fakeprovider.Fault
		want  Class
	}{
		{"one 503", fakeprovider.Fault{Status: 503, Count: 1}, Valid},
		{"one 429", fakeprovider.Fault{Status: 429, Count: 1, Header: http.Header{"Retry-After": {"0"}}}, Valid},
		{"html page", fakeprovider.Fault{Status: 200, Body: htmlPage, ContentType: "text/html"}, Transient},
		{"lasting 500", fakeprovider.Fault{Status: 500}, Transient},
	}
	for providerName, prefix := range shapes {
		for _, tc := range cases {
			t.Run(providerName+" "+tc.name, func(t *testing.T) {
				fp, url := startFake(t)
				fp.SetFault(prefix+"/", tc.fault)
				c, logs := testChecker(Options{})
				res := check(t, c, logs, fakeSettings(url, providerName))
				if res.Class != tc.want {
					t.Errorf("class = %s (%s), want %s", res.Class, res.Reason, tc.want)
				}
			})
		}
	}
}

func TestFakeProviderHangEndsBeforeDeadline(t *testing.T) {
	fp, url := startFake(t)
	fp.SetFault("/anthropic/", fakeprovider.Fault{Hang: true})
	c := New(Options{Policy: NewPolicy(nil, true)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	res := c.Check(ctx, Request{Key: keystore.NewSecret(canary), Settings: fakeSettings(url, "anthropic")})
	if !time.Now().Before(deadline) {
		t.Error("check returned after the deadline")
	}
	if res.Class != Transient {
		t.Errorf("class = %s (%s), want transient", res.Class, res.Reason)
	}
	assertNoCanary(t, res, nil)
}
