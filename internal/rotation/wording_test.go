package rotation_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// setLambda configures id as Secrets Manager would for a rotation Lambda.
func (e *env) setLambda(id string) {
	e.t.Helper()
	err := e.store.SetRotation(ctxFor(e.t), id, keystore.Rotation{
		Enabled: true, Rules: keystore.RotationRules{AutomaticallyAfterDays: 30}, LambdaARN: lambdaARN,
	})
	if err != nil {
		e.t.Fatalf("SetRotation: %v", err)
	}
}

func TestRotateNowTransientSaysAbandoned(t *testing.T) {
	t.Parallel() // waits seconds between retries
	e := newEnv(t)
	e.engine.Checker = newChecker(nil, 300*time.Millisecond)
	e.addSecret("app/openai", e.tags("openai"), "")
	e.stage("app/openai", newKey)
	e.prov.SetFault("GET /openai/v1/models", fakeprovider.Fault{Status: http.StatusServiceUnavailable})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := e.engine.RotateNow(ctx, "app/openai")
	if !errors.Is(err, rotation.ErrTransient) {
		t.Fatalf("RotateNow: err = %v, want ErrTransient", err)
	}
	if strings.Contains(err.Error(), "kept") || strings.Contains(e.logs.String(), "kept for a retry") {
		t.Errorf("error %q or the logs say the pending version is kept, but RotateNow abandoned it", err)
	}
	if !strings.Contains(err.Error(), "the rotation was abandoned") {
		t.Errorf("error %q does not say the rotation was abandoned", err)
	}
	if res.Failure == nil || !strings.Contains(res.Failure.Reason, "the rotation was abandoned") {
		t.Errorf("Failure = %+v, want its reason to say the rotation was abandoned", res.Failure)
	}
	for _, want := range []string{"secret_id=app/openai", "version_id=" + res.VersionID, "abandoned the rotation"} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("logs do not contain %q:\n%s", want, e.logs)
		}
	}
	if strings.Contains(e.logs.String(), " token=") || strings.Contains(e.logs.String(), " secret=") {
		t.Errorf("logs use the field names token or secret:\n%s", e.logs)
	}
}

func TestTransientOnAWSKeepsPending(t *testing.T) {
	t.Parallel() // waits seconds between retries
	e := newEnv(t)
	e.engine.Checker = newChecker(nil, 300*time.Millisecond)
	e.addSecret("app/openai", e.tags("openai"), "")
	e.stage("app/openai", newKey)
	e.setLambda("app/openai")
	e.prov.SetFault("GET /openai/v1/models", fakeprovider.Fault{Status: http.StatusServiceUnavailable})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	token, err := e.store.BeginRotation(ctx, "app/openai", "")
	if err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}
	if err := e.engine.Run(ctx, rotation.CreateSecret, "app/openai", token); err != nil {
		t.Fatalf("createSecret: %v", err)
	}
	err = e.engine.Run(ctx, rotation.TestSecret, "app/openai", token)
	if !errors.Is(err, rotation.ErrTransient) {
		t.Fatalf("testSecret: err = %v, want ErrTransient", err)
	}
	if !strings.Contains(err.Error(), "the pending version is kept for Secrets Manager's retry") {
		t.Errorf("error %q does not say who retries", err)
	}
	if got := e.holder("app/openai", keystore.StagePending); got != token {
		t.Errorf("AWSPENDING on %q, want it kept on %s", got, token)
	}
}

func TestMintedKeyLoggedByKeyID(t *testing.T) {
	e := newEnv(t)
	e.addMintingSecret("app/openrouter")
	if _, err := e.engine.RotateNow(ctxFor(t), "app/openrouter"); err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	minted := e.prov.MintedKeys()
	if len(minted) != 1 {
		t.Fatalf("%d keys minted, want 1", len(minted))
	}
	if want := "minted a key (provider key id " + minted[0].Hash + ")"; !strings.Contains(e.logs.String(), want) {
		t.Errorf("logs do not contain %q:\n%s", want, e.logs)
	}
}

func TestInProgressOnAWSAdvice(t *testing.T) {
	e := newEnv(t)
	e.addSecret("app/openai", e.tags("openai"), "")
	e.stage("app/openai", newKey)
	e.setLambda("app/openai")
	first, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	if err != nil || first.Outcome != rotation.InProgress {
		t.Fatalf("first RotateNow: outcome %s, err %v, want in progress", first.Outcome, err)
	}

	_, err = e.engine.RotateNow(ctxFor(t), "app/openai")
	if !errors.Is(err, rotation.ErrInProgress) {
		t.Fatalf("second RotateNow: err = %v, want ErrInProgress", err)
	}
	want := "aws secretsmanager update-secret-version-stage --secret-id app/openai " +
		"--version-stage AWSPENDING --remove-from-version-id " + first.VersionID
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not give the command %q", err, want)
	}
}

func TestFreshMintedKeyRecheckedAfter401(t *testing.T) {
	t.Parallel() // waits seconds between retries
	e := newEnv(t, func(o *fakeprovider.Options) { o.MintedKeyWarmup = 1 })
	e.addMintingSecret("app/openrouter")

	res, err := e.engine.RotateNow(ctxFor(t), "app/openrouter")
	if err != nil || res.Outcome != rotation.Promoted {
		t.Fatalf("RotateNow: outcome %s, err %v, want promoted", res.Outcome, err)
	}
	if got := keyChecks(e); strings.Join(got, " ") != "401 200" {
		t.Errorf("GET /key statuses = %v, want a 401, then a 200", got)
	}
	if !strings.Contains(e.logs.String(), "checking again") {
		t.Errorf("logs do not record the repeated check:\n%s", e.logs)
	}
}

func TestLasting401RejectsMintedKey(t *testing.T) {
	t.Parallel() // waits seconds between retries
	e := newEnv(t, func(o *fakeprovider.Options) { o.MintedKeyWarmup = 100 })
	e.addMintingSecret("app/openrouter")

	_, err := e.engine.RotateNow(ctxFor(t), "app/openrouter")
	if !errors.Is(err, rotation.ErrRejected) {
		t.Fatalf("RotateNow: err = %v, want ErrRejected", err)
	}
	if got := keyChecks(e); strings.Join(got, " ") != "401 401 401" {
		t.Errorf("GET /key statuses = %v, want three 401s: one check and two repeats", got)
	}
	minted := e.prov.MintedKeys()
	if len(minted) != 1 || !minted[0].Deleted {
		t.Errorf("minted keys = %+v, want one, deleted", minted)
	}
}

func TestStaged401NotRechecked(t *testing.T) {
	e := newEnv(t)
	e.addSecret("app/openrouter", e.tags("openrouter"), "")
	e.stage("app/openrouter", "sk-or-v1-"+canary+"unknown")

	_, err := e.engine.RotateNow(ctxFor(t), "app/openrouter")
	if !errors.Is(err, rotation.ErrRejected) {
		t.Fatalf("RotateNow: err = %v, want ErrRejected", err)
	}
	if got := keyChecks(e); len(got) != 1 {
		t.Errorf("GET /key statuses = %v, want one: only a freshly minted key is checked again", got)
	}
}

// keyChecks returns the status of each GET /key the stand-in served.
func keyChecks(e *env) []string {
	var statuses []string
	for _, r := range e.prov.Requests() {
		if r.Method == http.MethodGet && r.Path == fakeprovider.OpenRouterPrefix+"/key" {
			statuses = append(statuses, strconv.Itoa(r.Status))
		}
	}
	return statuses
}

func TestAcceptedKeyCountsRequests(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), "")
	e.stage("app/openai", newKey)
	if _, err := e.engine.RotateNow(ctxFor(t), "app/openai"); err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	if want := "the provider accepted the key after 1 request"; !strings.Contains(e.logs.String(), want) {
		t.Errorf("logs do not contain %q:\n%s", want, e.logs)
	}
	if strings.Contains(e.logs.String(), "(s)") {
		t.Errorf("logs count with (s):\n%s", e.logs)
	}
}
