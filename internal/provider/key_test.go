package provider

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

func TestValidateKeyAcceptsProviderKeys(t *testing.T) {
	for _, key := range []string{canary, "sk-proj-Ab_9-x", "sk-ant-api03-xyz", "AIzaSyD-abc_123", "sk-or-v1-0123abcd"} {
		if err := ValidateKey(keystore.NewSecret(key)); err != nil {
			t.Errorf("ValidateKey: %v, want nil", err)
		}
	}
}

// canaryTail is the end of canary, which every case that splits canary
// leaves whole.
const canaryTail = "7f3a9c1e5b2d4068"

func TestValidateKeyRejectsUnsendable(t *testing.T) {
	cases := []struct {
		name string
		key  string
		want string
	}{
		{"empty", "", "empty key"},
		{"NUL inside", canary[:5] + "\x00" + canary[5:], "NUL byte inside it"},
		{"UTF-16 text", "s\x00k\x00", "NUL byte inside it"},
		{"trailing newline", canary + "\n", "line break at its end"},
		{"carriage return", canary + "\r\n", "line break inside it"},
		{"space inside", canary[:5] + " " + canary[5:], "whitespace inside it"},
		{"leading tab", "\t" + canary, "whitespace at its start"},
		{"escape", canary + "\x1b", "control character U+001B at its end"},
		{"delete", canary[:3] + "\x7f" + canary[3:], "control character U+007F inside it"},
		{"no-break space", canary[:3] + "\u00a0" + canary[3:], "non-ASCII character U+00A0 inside it"},
		{"smart quote", "\u201c" + canary, "non-ASCII character U+201C at its start"},
		{"invalid UTF-8", canary + "\xff", "not UTF-8 text at its end"},
		{"UTF-8 BOM", "\uFEFF" + canary, "UTF-8 byte order mark"},
		{"UTF-16 BOM", "\xFF\xFE" + canary, "UTF-16 byte order mark"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateKey(keystore.NewSecret(tc.key))
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("err = %v, want ErrInvalidKey", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), canaryTail) {
				t.Errorf("err %q carries the key", strings.ReplaceAll(err.Error(), canaryTail, "CANARY"))
			}
		})
	}
}

func TestCheckUnsendableKeyRejectedBeforeRequest(t *testing.T) {
	a := startAPI(t, bearer, routes{"GET /v1/models": {{status: 200, body: openAIModels}}})
	c, logs := testChecker(Options{})
	for _, key := range []string{canary + "\x00", "\uFEFF" + canary, canary + " x", canary + "é"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		res := c.Check(ctx, Request{Key: keystore.NewSecret(key), Settings: openAISettings(a.url)})
		cancel()
		assertNoCanary(t, res, logs)
		if res.Class != Rejected {
			t.Errorf("class = %s (%s), want rejected", res.Class, res.Reason)
		}
		if res.Attempts != 0 {
			t.Errorf("attempts = %d, want 0", res.Attempts)
		}
		if strings.Contains(res.Reason, "invalid header") {
			t.Errorf("reason = %q, want the key's problem named, not net/http's", res.Reason)
		}
	}
	if n := a.count(); n != 0 {
		t.Errorf("the server saw %d requests, want 0", n)
	}
}
