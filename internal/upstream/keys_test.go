package upstream_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/keystore"
)

func TestRotationBetweenRequests(t *testing.T) {
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("before the rotation: status = %d: %s", res.status, res.body)
	}
	e.outcome()

	const next = canary + "-next"
	e.fake.AddKey(next)
	nextVersion := e.putCurrent(secretID, next, "openai", e.openaiURL())
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("right after the rotation: status = %d: %s", res.status, res.body)
	}
	if o := e.outcome(); o.Retried {
		t.Error("right after the rotation the request was retried")
	}

	if _, err := e.cache.Refresh(context.Background(), secretID); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("after the refresh: status = %d: %s", res.status, res.body)
	}
	if !e.lastRequest().Key.Equal(keystore.NewSecret(next)) {
		t.Error("after the refresh the provider did not get the new key")
	}
	if o := e.outcome(); o.VersionID != nextVersion || o.Stage != keystore.StageCurrent || o.Retried {
		t.Errorf("after the refresh: outcome = %+v, want version %s at AWSCURRENT without retry", o, nextVersion)
	}
}

func TestRevokedCurrentRecoveredByRefresh(t *testing.T) {
	e := newEnv(t)
	old := e.addSecret(secretID, canary, "openai", e.openaiURL())
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("first request: status = %d: %s", res.status, res.body)
	}
	e.outcome()

	// A rotation the cache has not seen yet, then the old key is revoked.
	const next = canary + "-next"
	e.fake.AddKey(next)
	nextVersion := e.putCurrent(secretID, next, "openai", e.openaiURL())
	e.fake.RevokeKey(canary)

	res := e.chat("")
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 through the refresh: %s", res.status, res.body)
	}
	recs := e.fake.Requests()
	if len(recs) != 3 || recs[1].Status != http.StatusUnauthorized || !recs[2].Key.Equal(keystore.NewSecret(next)) {
		t.Errorf("the stand-in's requests: %+v; want the old key's 401, then the new key", recs)
	}
	o := e.outcome()
	if !o.Retried || o.VersionID != nextVersion || o.Stage != keystore.StageCurrent || o.Status != http.StatusOK {
		t.Errorf("outcome = %+v, want a retry with version %s at AWSCURRENT", o, nextVersion)
	}
	if o.Rejected != 1 || o.Attempts != 2 {
		t.Errorf("outcome counts %d rejected keys in %d attempts, want 1 in 2", o.Rejected, o.Attempts)
	}
	e.checkNoMoreOutcomes()
	// The request read the old version as AWSCURRENT, and the refresh
	// after the rejection found it AWSPREVIOUS: the line names both.
	line := logLine(t, e.logs.String(), "provider rejected the key")
	for _, want := range []string{"level=WARN", "version=" + old, "stage=AWSCURRENT", "stage_now=AWSPREVIOUS", "keep keyturn:grace longer"} {
		if !strings.Contains(line, want) {
			t.Errorf("the rejection's log line does not contain %s:\n%s", want, line)
		}
	}
}

func TestPreviousServesWhileNewKeyNotAccepted(t *testing.T) {
	e := newEnv(t)
	old := e.addSecret(secretID, canary, "openai", e.openaiURL())
	// The new key is not known to the provider yet.
	const next = canary + "-not-yet"
	nextVersion := e.putCurrent(secretID, next, "openai", e.openaiURL())

	res := e.chat("")
	if res.status != http.StatusOK {
		t.Fatalf("first request: status = %d, want 200 from AWSPREVIOUS: %s", res.status, res.body)
	}
	if o := e.outcome(); !o.Retried || o.Attempts != 2 || o.VersionID != old || o.Stage != keystore.StagePrevious {
		t.Errorf("first request: outcome = %+v, want two attempts, the retry with version %s at AWSPREVIOUS", o, old)
	}
	if n := len(e.fake.Requests()); n != 2 {
		t.Fatalf("first request: %d upstream requests, want the rejected one and the retry", n)
	}
	if h := e.proxy.Health(secretID); !h.ServingPrevious || h.VersionID != nextVersion || !h.OK() {
		t.Errorf("health = %+v, want OK and serving AWSPREVIOUS while version %s cools down", h, nextVersion)
	}

	// AWSCURRENT is in its cooldown: the next request goes to AWSPREVIOUS
	// at once.
	res = e.chat("")
	if res.status != http.StatusOK {
		t.Fatalf("second request: status = %d: %s", res.status, res.body)
	}
	if o := e.outcome(); o.Retried || o.Attempts != 1 || o.VersionID != old || o.Stage != keystore.StagePrevious {
		t.Errorf("second request: outcome = %+v, want one attempt, with version %s at AWSPREVIOUS", o, old)
	}
	recs := e.fake.Requests()
	if len(recs) != 3 || !recs[2].Key.Equal(keystore.NewSecret(canary)) {
		t.Errorf("second request: want one more upstream request, with the previous key; got %d requests", len(recs))
	}
	logs := e.logs.String()
	if strings.Count(logs, "serving AWSPREVIOUS") != 1 || !strings.Contains(logs, nextVersion) {
		t.Errorf("want one log line about serving AWSPREVIOUS that names version %s:\n%s", nextVersion, logs)
	}

	// A new version starts healthy, though the one before is cooling down.
	const third = canary + "-third"
	e.fake.AddKey(third)
	thirdVersion := e.putCurrent(secretID, third, "openai", e.openaiURL())
	if _, err := e.cache.Refresh(context.Background(), secretID); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("third request: status = %d: %s", res.status, res.body)
	}
	if o := e.outcome(); o.Retried || o.VersionID != thirdVersion || o.Stage != keystore.StageCurrent {
		t.Errorf("third request: outcome = %+v, want version %s at AWSCURRENT", o, thirdVersion)
	}
}

func TestNoWorkingKey(t *testing.T) {
	e := newEnv(t)
	old := e.addSecret(secretID, canary+"-old", "openai", e.openaiURL())
	current := e.putCurrent(secretID, canary, "openai", e.openaiURL())
	e.fake.RevokeKey(canary + "-old")

	res := e.chat("")
	if res.status != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502: %s", res.status, res.body)
	}
	msg, typ, code := apiError(t, res.body)
	if typ != "server_error" || code != "upstream_key_rejected" {
		t.Errorf("type, code = %q, %q", typ, code)
	}
	for _, want := range []string{secretID, current, old, keystore.StageCurrent, keystore.StagePrevious, "rotator stage"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not name %q", msg, want)
		}
	}
	if strings.Contains(res.body, "Incorrect API key") {
		t.Error("the provider's own 401 text reached the client")
	}
	if host := strings.TrimPrefix(e.fakeURL, "http://"); strings.Contains(msg, host) {
		t.Errorf("message %q names the provider's host %s, which only the log may name", msg, host)
	}
	if o := e.outcome(); !o.Retried || o.Attempts != 2 || o.Rejected != 2 || o.Status != http.StatusBadGateway {
		t.Errorf("outcome = %+v, want a retry, two attempts with rejected keys and 502", o)
	}
	if n := len(e.fake.Requests()); n != 2 {
		t.Errorf("%d upstream requests, want 2", n)
	}
	e.checkNoMoreOutcomes()
}

func TestNoWorkingKeyWithoutPrevious(t *testing.T) {
	e := newEnv(t)
	e.createSecret(secretID, value(t, canary, "openai", e.openaiURL()))

	res := e.chat("")
	if res.status != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502: %s", res.status, res.body)
	}
	if _, _, code := apiError(t, res.body); code != "upstream_key_rejected" {
		t.Errorf("code = %q, want upstream_key_rejected", code)
	}
	o := e.outcome()
	if o.Retried {
		t.Error("a secret with one version was retried")
	}
	if o.Rejected != 1 || o.Attempts != 1 {
		t.Errorf("outcome counts %d rejected keys in %d attempts, want 1 in 1", o.Rejected, o.Attempts)
	}
	line := logLine(t, e.logs.String(), "provider rejected the key")
	if !strings.Contains(line, "stage=AWSCURRENT") || strings.Contains(line, "stage_now") {
		t.Errorf("the rejection's log line should name AWSCURRENT only, as the refresh found it:\n%s", line)
	}
	if n := len(e.fake.Requests()); n != 1 {
		t.Errorf("%d upstream requests, want 1", n)
	}
}

func TestRevokedKeyRefreshesBounded(t *testing.T) {
	// An interval no test outlasts: only the first rejection refreshes.
	e := newEnvWith(t, envOptions{minRefreshInterval: time.Hour})
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("first request: status = %d: %s", res.status, res.body)
	}
	e.outcome()
	e.fake.RevokeKey(canary)

	before, _ := e.cache.Status(secretID)
	const requests = 20
	for i := range requests {
		if res := e.chat(""); res.status != http.StatusBadGateway {
			t.Fatalf("request %d: status = %d, want 502: %s", i, res.status, res.body)
		}
		if o := e.outcome(); o.Rejected != 1 || o.Retried {
			t.Errorf("request %d: outcome = %+v, want one rejected key and no retry", i, o)
		}
	}
	after, _ := e.cache.Status(secretID)
	if n := after.Refreshes - before.Refreshes; n != 1 {
		t.Errorf("%d client requests with a revoked key made %d store reads, want 1", requests, n)
	}
	if n := len(e.fake.Requests()) - 1; n != requests {
		t.Errorf("%d client requests made %d upstream requests, want one each", requests, n)
	}
}

func TestGeminiKeyInvalidRetries(t *testing.T) {
	e := newEnv(t)
	const gemini = "keyturn/test/gemini"
	base := e.fakeURL + fakeprovider.GeminiPrefix
	e.addSecret(gemini, canary, "gemini", base)
	e.secretOf = func(*http.Request) string { return gemini }
	e.modelOf = func(*http.Request) string { return "gemini-2.5-flash" }
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("first request: status = %d: %s", res.status, res.body)
	}
	e.outcome()

	const next = canary + "-next"
	e.fake.AddKey(next)
	nextVersion := e.putCurrent(gemini, next, "gemini", base)
	e.fake.RevokeKey(canary)

	res := e.chat("")
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 after Gemini's API_KEY_INVALID: %s", res.status, res.body)
	}
	recs := e.fake.Requests()
	if len(recs) != 3 || recs[1].Status != http.StatusBadRequest {
		t.Errorf("the stand-in's requests: %+v; want Gemini's 400, then the retry", recs)
	}
	if o := e.outcome(); !o.Retried || o.VersionID != nextVersion || o.Provider != "gemini" {
		t.Errorf("outcome = %+v, want a retry with version %s", o, nextVersion)
	}
}

func TestRetryAfterRotationSeesNewKey(t *testing.T) {
	// The default interval: the rotation below lands well inside the
	// interval that the first forced refresh started.
	e := newEnv(t)
	e.addSecret(secretID, canary, "openai", e.openaiURL())
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("first request: status = %d: %s", res.status, res.body)
	}
	e.outcome()
	e.fake.RevokeKey(canary)
	if res := e.chat(""); res.status != http.StatusBadGateway {
		t.Fatalf("with the key revoked: status = %d, want 502: %s", res.status, res.body)
	}
	e.outcome()

	// The operator rotates after that refresh read the revoked version.
	const next = canary + "-next"
	e.fake.AddKey(next)
	nextVersion := e.putCurrent(secretID, next, "openai", e.openaiURL())
	before, _ := e.cache.Status(secretID)
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("after the rotation: status = %d, want 200 with the new key: %s", res.status, res.body)
	}
	if o := e.outcome(); o.VersionID != nextVersion || !o.Retried {
		t.Errorf("outcome = %+v, want a retry with version %s", o, nextVersion)
	}
	after, _ := e.cache.Status(secretID)
	if n := after.Refreshes - before.Refreshes; n != 1 {
		t.Errorf("the retry made %d store reads, want 1", n)
	}
}

// logLine returns the first line of logs that contains msg.
func logLine(t *testing.T, logs, msg string) string {
	t.Helper()
	for line := range strings.Lines(logs) {
		if strings.Contains(line, msg) {
			return line
		}
	}
	t.Fatalf("no log line contains %q:\n%s", msg, logs)
	return ""
}

func TestRejectionWarnedOncePerCooldown(t *testing.T) {
	e := newEnvWith(t, envOptions{cooldown: time.Hour, minRefreshInterval: time.Millisecond})
	version := e.createSecret(secretID, value(t, canary, "openai", e.openaiURL()))
	for i := range 3 {
		if res := e.chat(""); res.status != http.StatusBadGateway {
			t.Fatalf("request %d: status = %d, want 502: %s", i, res.status, res.body)
		}
		if o := e.outcome(); o.Rejected != 1 {
			t.Errorf("request %d: outcome = %+v, want one rejected key", i, o)
		}
	}
	logs := e.logs.String()
	if n := strings.Count(logs, `msg="provider rejected the key of a provider secret"`); n != 1 {
		t.Errorf("%d warnings about the rejected key, want 1 in the cooldown:\n%s", n, logs)
	}
	if n := strings.Count(logs, `level=DEBUG msg="provider rejected the key of a provider secret again"`); n != 2 {
		t.Errorf("%d repeats at DEBUG, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logLine(t, logs, "again"), "version="+version) {
		t.Errorf("the repeat does not name version %s", version)
	}
}

func TestPreviousCooldownEndsOnSuccess(t *testing.T) {
	e := newEnv(t)
	old := e.addSecret(secretID, canary, "openai", e.openaiURL())
	const next = canary + "-not-yet"
	e.putCurrent(secretID, next, "openai", e.openaiURL())

	// The provider takes neither key: both versions start a cooldown.
	e.fake.RevokeKey(canary)
	if res := e.chat(""); res.status != http.StatusBadGateway {
		t.Fatalf("with both keys refused: status = %d, want 502: %s", res.status, res.body)
	}
	e.outcome()

	// AWSPREVIOUS works again. The request that proves it ends its
	// cooldown, so the secret is served from AWSPREVIOUS at once.
	e.fake.AddKey(canary)
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("with AWSPREVIOUS restored: status = %d, want 200: %s", res.status, res.body)
	}
	if o := e.outcome(); o.VersionID != old || o.Stage != keystore.StagePrevious {
		t.Errorf("outcome = %+v, want version %s at AWSPREVIOUS", o, old)
	}
	if h := e.proxy.Health(secretID); !h.ServingPrevious || !h.OK() {
		t.Errorf("health = %+v, want OK and serving AWSPREVIOUS", h)
	}
	if res := e.chat(""); res.status != http.StatusOK {
		t.Fatalf("next request: status = %d: %s", res.status, res.body)
	}
	if o := e.outcome(); o.Attempts != 1 || o.Stage != keystore.StagePrevious {
		t.Errorf("next request: outcome = %+v, want one attempt at AWSPREVIOUS", o)
	}
}
