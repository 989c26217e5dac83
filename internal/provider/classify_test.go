package provider

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

func TestCheckPolicyRefusalsMisconfigured(t *testing.T) {
	cases := []struct {
		name    string
		policy  *Policy
		baseURL string
		want    string
	}{
		{"loopback not allowed", DefaultPolicy(), "http://127.0.0.1:8080/v1", "loopback host"},
		{"localhost not allowed", DefaultPolicy(), "http://localhost:8080/v1", "loopback host"},
		{"metadata address", NewPolicy(nil, true), "http://169.254.169.254/v1", "cloud metadata address"},
		{"private address", NewPolicy(nil, true), "https://10.1.2.3/v1", "private address"},
		{"host off the allow-list", NewPolicy([]string{"relay.example.com"}, false), "https://other.example.com/v1", "is not allowed for provider openai"},
		{"plain http", NewPolicy([]string{"relay.example.com"}, false), "http://relay.example.com/v1", "use https"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, logs := testChecker(Options{Policy: tc.policy})
			res := check(t, c, logs, keystore.Settings{Provider: "openai", BaseURL: tc.baseURL})
			if res.Class != Misconfigured {
				t.Errorf("class = %s, want misconfigured", res.Class)
			}
			if !errors.Is(res.Err, ErrNotAllowed) {
				t.Errorf("err = %v, want ErrNotAllowed", res.Err)
			}
			if res.Attempts != 0 {
				t.Errorf("attempts = %d, want 0", res.Attempts)
			}
			if !strings.Contains(res.Reason, tc.want) {
				t.Errorf("reason = %q, want it to contain %q", res.Reason, tc.want)
			}
		})
	}
}

func TestDialRefusalMisconfigured(t *testing.T) {
	refusal := reject("connection to 10.0.0.7:443 refused: 10.0.0.7 is a private address, and keyturn never sends keys there")
	err := &url.Error{Op: "Get", URL: "https://relay.example.com/v1/models", Err: refusal}
	c := call{method: "GET", url: "https://relay.example.com/v1/models"}

	out := transportOutcome(c, err, "timed out after 1s")
	if out.class != Misconfigured || out.retry {
		t.Errorf("class = %s, retry = %v, want misconfigured without retry", out.class, out.retry)
	}
	if !errors.Is(out.err, ErrNotAllowed) {
		t.Errorf("err = %v, want ErrNotAllowed", out.err)
	}
	if !strings.Contains(out.reason, "10.0.0.7 is a private address") {
		t.Errorf("reason = %q, want the refused address", out.reason)
	}
}

func TestRedirectWithoutLocationMisconfigured(t *testing.T) {
	a := startAPI(t, bearer, routes{"GET /v1/models": {{status: 300, body: `{}`}}})
	c, logs := testChecker(Options{})
	res := check(t, c, logs, openAISettings(a.url))
	if res.Class != Misconfigured {
		t.Errorf("class = %s (%s), want misconfigured", res.Class, res.Reason)
	}
	if res.Attempts != 1 {
		t.Errorf("attempts = %d, want 1", res.Attempts)
	}
	if !strings.Contains(res.Reason, "set keyturn:base-url to the final location") {
		t.Errorf("reason = %q, want it to say which setting to fix", res.Reason)
	}
}

func TestHTMLPageStaysTransient(t *testing.T) {
	page := reply{status: 200, body: "<html>sign in to the network</html>", header: map[string]string{"Content-Type": "text/html"}}
	a := startAPI(t, bearer, routes{"GET /v1/models": {page}})
	c, logs := testChecker(Options{})
	res := check(t, c, logs, openAISettings(a.url))
	if res.Class != Transient {
		t.Errorf("class = %s (%s), want transient", res.Class, res.Reason)
	}
	if res.Attempts != 3 {
		t.Errorf("attempts = %d, want 3: an HTML page is retried", res.Attempts)
	}
}

func TestClassString(t *testing.T) {
	for class, want := range map[Class]string{
		Valid: "valid", Rejected: "rejected", Transient: "transient", Misconfigured: "misconfigured", Class(9): "Class(9)",
	} {
		if got := class.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(class), got, want)
		}
	}
}
