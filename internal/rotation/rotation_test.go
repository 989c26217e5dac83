package rotation_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

const (
	oldKey = "sk-" + canary + "old-0001"
	newKey = "sk-" + canary + "new-0002"
)

func TestRotateNowPromotesStagedKey(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	oldVersion := e.addSecret("app/openai", e.tags("openai"), oldKey)
	staged, err := e.engine.Stage(ctxFor(t), "app/openai",
		keystore.Value{APIKey: keystore.NewSecret(newKey), KeyID: "key_new"}, true)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}

	res, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	if err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	if res.Outcome != rotation.Promoted {
		t.Fatalf("Outcome = %s, want %s", res.Outcome, rotation.Promoted)
	}
	if res.StagedVersion != staged {
		t.Errorf("StagedVersion = %q, want the staged version %s", res.StagedVersion, staged)
	}

	d := e.describe("app/openai")
	if got := d.VersionWithStage(keystore.StageCurrent); got != res.VersionID {
		t.Errorf("AWSCURRENT on %s, want the rotation's version %s", got, res.VersionID)
	}
	if got := d.VersionWithStage(keystore.StagePrevious); got != oldVersion {
		t.Errorf("AWSPREVIOUS on %s, want the old current %s", got, oldVersion)
	}
	if got := d.VersionWithStage(keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING still on %s", got)
	}
	if got := d.VersionWithStage(keystore.StageStaged); got != "" {
		t.Errorf("KEYTURN_STAGED still on %s (staged was %s)", got, staged)
	}
	if !e.hasKey("app/openai", keystore.Current(), newKey) {
		t.Errorf("AWSCURRENT does not hold the staged key")
	}

	_, v := e.value("app/openai", keystore.Current())
	want := keystore.Retired{KeyID: "key_old", VersionID: oldVersion, NotBefore: e.now.Add(2 * time.Hour)}
	if len(v.Retire) != 1 || v.Retire[0].KeyID != want.KeyID || v.Retire[0].VersionID != want.VersionID ||
		!v.Retire[0].NotBefore.Equal(want.NotBefore) {
		t.Errorf("retire = %+v, want [%+v]", v.Retire, want)
	}
	if v.KeyID != "key_new" {
		t.Errorf("key_id = %q, want key_new", v.KeyID)
	}
	if v.Settings.BaseURL != e.url+"/openai/v1" {
		t.Errorf("recorded base_url = %q", v.Settings.BaseURL)
	}
}

func TestRotateNowRetireCarriesForward(t *testing.T) {
	e := newEnv(t)
	keys := []string{oldKey, newKey, "sk-" + canary + "third-0003"}
	for _, k := range keys {
		e.prov.AddKey(k)
	}
	first := e.addSecret("app/openai", e.tags("openai"), keys[0])
	e.stage("app/openai", keys[1]) // staged without a key id
	second, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	if err != nil {
		t.Fatalf("first RotateNow: %v", err)
	}
	e.stage("app/openai", keys[2])
	if _, err := e.engine.RotateNow(ctxFor(t), "app/openai"); err != nil {
		t.Fatalf("second RotateNow: %v", err)
	}

	_, v := e.value("app/openai", keystore.Current())
	if len(v.Retire) != 2 {
		t.Fatalf("retire has %d entries, want 2: %+v", len(v.Retire), v.Retire)
	}
	if v.Retire[0].VersionID != first || v.Retire[0].KeyID != "key_old" {
		t.Errorf("retire[0] = %+v, want the first key (version %s)", v.Retire[0], first)
	}
	if v.Retire[1].VersionID != second.VersionID || v.Retire[1].KeyID != "" {
		t.Errorf("retire[1] = %+v, want the id-less second key (version %s)", v.Retire[1], second.VersionID)
	}
}

func TestRotateNowRestagedOldKeyLeavesRetire(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), oldKey)
	e.stage("app/openai", newKey)
	if _, err := e.engine.RotateNow(ctxFor(t), "app/openai"); err != nil {
		t.Fatalf("RotateNow: %v", err)
	}

	// Bring the old key back, as a restore from backup does.
	e.stage("app/openai", oldKey)
	if _, err := e.engine.RotateNow(ctxFor(t), "app/openai"); err != nil {
		t.Fatalf("RotateNow with the old key: %v", err)
	}
	_, v := e.value("app/openai", keystore.Current())
	for _, r := range v.Retire {
		if r.KeyID == "key_old" {
			t.Errorf("retire still lists the key that is current again: %+v", r)
		}
	}
}

func TestRejectedKeysNeverPromoted(t *testing.T) {
	cases := []struct {
		name   string
		shape  string
		setup  func(p *fakeprovider.Provider, key string)
		reason string // a word the reason must contain
	}{
		{"OpenAI401", "openai", func(p *fakeprovider.Provider, key string) {}, "401"},
		{"GeminiAPIKeyInvalid", "gemini", func(p *fakeprovider.Provider, key string) {}, "API_KEY_INVALID"},
		{"OpenAIInsufficientQuota", "openai", func(p *fakeprovider.Provider, key string) {
			p.AddKey(key)
			p.SetKeyQuota(key, true)
		}, "insufficient_quota"},
		{"Anthropic401", "anthropic", func(p *fakeprovider.Provider, key string) {}, "401"},
		{"RequiredModelMissing", "openai", func(p *fakeprovider.Provider, key string) {
			p.AddKey(key)
		}, "no-such-model"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tags := e.tags(tc.shape)
			if tc.name == "RequiredModelMissing" {
				tags[keystore.TagRequiredModels] = "no-such-model"
			}
			e.prov.AddKey(oldKey)
			oldVersion := e.addSecret("app/key", tags, oldKey)
			tc.setup(e.prov, newKey)
			staged := e.stage("app/key", newKey)

			res, err := e.engine.RotateNow(ctxFor(t), "app/key")
			noCanary(t, err)
			if !errors.Is(err, rotation.ErrRejected) {
				t.Fatalf("RotateNow: err = %v, want ErrRejected", err)
			}
			if res.Outcome != rotation.Rejected {
				t.Errorf("Outcome = %s, want %s", res.Outcome, rotation.Rejected)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not name %s", err, tc.reason)
			}
			checkRejected(t, e, "app/key", oldVersion, staged, res)
		})
	}
}

// checkRejected checks the state a rejected rotation leaves.
func checkRejected(t *testing.T, e *env, id, oldVersion, staged string, res rotation.Result) {
	t.Helper()
	d := e.describe(id)
	if got := d.VersionWithStage(keystore.StageCurrent); got != oldVersion {
		t.Errorf("AWSCURRENT moved to %s, want it left on %s", got, oldVersion)
	}
	if got := d.VersionWithStage(keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s", got)
	}
	if got := d.VersionWithStage(keystore.StageStaged); got != "" {
		t.Errorf("KEYTURN_STAGED left on %s (staged was %s)", got, staged)
	}
	if res.Failure == nil {
		t.Fatalf("Result.Failure is nil")
	}

	_, v := e.value(id, keystore.ByStage(keystore.StageRejected))
	f := v.LastFailure
	if f == nil {
		t.Fatalf("KEYTURN_REJECTED value has no last_failure")
	}
	if f.VersionID != res.VersionID || f.Class != "rejected" || f.Step != "testSecret" || f.Reason == "" {
		t.Errorf("last_failure = %+v, want class rejected, step testSecret, version %s", f, res.VersionID)
	}
	if *res.Failure != *f {
		t.Errorf("Result.Failure = %+v, want the recorded %+v", res.Failure, f)
	}
	if !e.hasKey(id, keystore.Current(), oldKey) {
		t.Errorf("AWSCURRENT no longer holds the old key")
	}
}

func TestRequiredModelOnSecondPage(t *testing.T) {
	for _, shape := range []string{"anthropic", "gemini"} {
		t.Run(shape, func(t *testing.T) {
			e := newEnv(t)
			models := fakeprovider.DefaultModels()
			last := models[len(models)-1]
			e.prov.AddKey(newKey)
			e.addSecret("app/key", e.tags(shape, keystore.TagRequiredModels, last), "")
			e.stage("app/key", newKey)

			res, err := e.engine.RotateNow(ctxFor(t), "app/key")
			if err != nil {
				t.Fatalf("RotateNow: %v", err)
			}
			if res.Outcome != rotation.Promoted {
				t.Errorf("Outcome = %s, want %s", res.Outcome, rotation.Promoted)
			}
		})
	}
}

func TestHangingProviderFailsBeforeDeadline(t *testing.T) {
	e := newEnv(t)
	e.engine.Checker = newChecker(nil, 300*time.Millisecond)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), "")
	e.stage("app/openai", newKey)
	e.prov.SetFault("GET /openai/v1/models", fakeprovider.Fault{Hang: true})

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
	if ctx.Err() != nil {
		t.Fatalf("testSecret returned after the deadline: %v", err)
	}
	if !errors.Is(err, rotation.ErrTransient) {
		t.Fatalf("testSecret: err = %v, want ErrTransient", err)
	}
	if got := e.holder("app/openai", keystore.StagePending); got != token {
		t.Errorf("AWSPENDING on %q, want it kept on %s for a retry", got, token)
	}
}

func TestRotateNowTransientAbandons(t *testing.T) {
	e := newEnv(t)
	e.engine.Checker = newChecker(nil, 300*time.Millisecond)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), "")
	e.stage("app/openai", newKey)
	e.prov.SetFault("GET /openai/v1/models", fakeprovider.Fault{Status: 503})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := e.engine.RotateNow(ctx, "app/openai")
	if !errors.Is(err, rotation.ErrTransient) {
		t.Fatalf("RotateNow: err = %v, want ErrTransient", err)
	}
	if res.Outcome != rotation.Transient {
		t.Errorf("Outcome = %s, want %s", res.Outcome, rotation.Transient)
	}
	if got := e.holder("app/openai", keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s", got)
	}
	if got := e.holder("app/openai", keystore.StageStaged); got == "" {
		t.Errorf("the staged key was consumed by a rotation that failed")
	}

	e.prov.ClearFaults()
	if _, err := e.engine.RotateNow(ctxFor(t), "app/openai"); err != nil {
		t.Fatalf("RotateNow after the outage: %v", err)
	}
}

func TestStepsReplayChangeNothing(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), oldKey)
	e.stage("app/openai", newKey)
	ctx := ctxFor(t)
	token, err := e.store.BeginRotation(ctx, "app/openai", "")
	if err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}

	var done []rotation.Step
	for _, step := range rotation.Steps {
		if err := e.engine.Run(ctx, step, "app/openai", token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		done = append(done, step)
		before := e.snapshot("app/openai")
		for _, again := range done {
			if err := e.engine.Run(ctx, again, "app/openai", token); err != nil {
				t.Fatalf("%s replayed after %s: %v", again, step, err)
			}
			sameSnapshot(t, string(again)+" replayed after "+string(step), before, e.snapshot("app/openai"))
		}
	}
	if !e.hasKey("app/openai", keystore.Current(), newKey) {
		t.Errorf("the staged key was not promoted")
	}
}

func TestFinishReplayCompletesInterruptedFinish(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	oldVersion := e.addSecret("app/openai", e.tags("openai"), oldKey)
	staged := e.stage("app/openai", newKey)
	ctx := ctxFor(t)
	token, err := e.store.BeginRotation(ctx, "app/openai", "")
	if err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}
	for _, step := range rotation.Steps[:3] {
		if err := e.engine.Run(ctx, step, "app/openai", token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	// A finishSecret that moved AWSCURRENT and then stopped.
	err = e.store.UpdateStage(ctx, keystore.StageInput{
		SecretID: "app/openai", Stage: keystore.StageCurrent,
		MoveToVersion: token, RemoveFromVersion: oldVersion,
	})
	if err != nil {
		t.Fatalf("UpdateStage: %v", err)
	}

	if err := e.engine.Run(ctx, rotation.FinishSecret, "app/openai", token); err != nil {
		t.Fatalf("finishSecret replayed: %v", err)
	}
	d := e.describe("app/openai")
	if got := d.VersionWithStage(keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s", got)
	}
	if got := d.VersionWithStage(keystore.StageStaged); got != "" {
		t.Errorf("KEYTURN_STAGED left on %s (staged was %s)", got, staged)
	}
}

func TestFirstKeyWithoutCurrent(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), "")
	e.stage("app/openai", newKey)

	res, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	if err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	d := e.describe("app/openai")
	if got := d.VersionWithStage(keystore.StageCurrent); got != res.VersionID {
		t.Errorf("AWSCURRENT on %q, want %s", got, res.VersionID)
	}
	if got := d.VersionWithStage(keystore.StagePrevious); got != "" {
		t.Errorf("AWSPREVIOUS on %s for a first key", got)
	}
	_, v := e.value("app/openai", keystore.Current())
	if len(v.Retire) != 0 {
		t.Errorf("retire = %+v, want empty for a first key", v.Retire)
	}
}

func TestNothingToPromoteClearsPending(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), oldKey)

	res, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	if !errors.Is(err, rotation.ErrNothingToPromote) {
		t.Fatalf("RotateNow: err = %v, want ErrNothingToPromote", err)
	}
	if res.Outcome != rotation.Failed {
		t.Errorf("Outcome = %s, want %s", res.Outcome, rotation.Failed)
	}
	if n := strings.Count(err.Error(), "rotator stage app/openai --file KEYFILE"); n != 1 {
		t.Errorf("error %q says how to stage a key %d times, want once", err, n)
	}
	if got := e.holder("app/openai", keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s", got)
	}

	e.stage("app/openai", newKey)
	res, err = e.engine.RotateNow(ctxFor(t), "app/openai")
	if err != nil || res.Outcome != rotation.Promoted {
		t.Fatalf("RotateNow after staging: outcome %s, err %v", res.Outcome, err)
	}
}

func TestConfigurationTestOnEmptyPending(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.addSecret("app/openai", e.tags("openai"), oldKey)
	ctx := ctxFor(t)
	token, err := e.store.BeginRotation(ctx, "app/openai", "")
	if err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}
	before := e.snapshot("app/openai")

	if err := e.engine.Run(ctx, rotation.TestSecret, "app/openai", token); err != nil {
		t.Fatalf("testSecret on an empty pending version: %v", err)
	}
	sameSnapshot(t, "configuration test", before, e.snapshot("app/openai"))

	e.prov.RevokeKey(oldKey)
	err = e.engine.Run(ctx, rotation.TestSecret, "app/openai", token)
	noCanary(t, err)
	if !errors.Is(err, rotation.ErrRejected) {
		t.Errorf("testSecret with a revoked current key: err = %v, want ErrRejected", err)
	}
	sameSnapshot(t, "failed configuration test", before, e.snapshot("app/openai"))
}

func TestConfigurationTestMissingIssuerSecret(t *testing.T) {
	e := newEnv(t)
	tags := e.tags("openrouter", keystore.TagIssuer, "dev", keystore.TagIssuerSecret, "admin/missing")
	e.addSecret("app/openrouter", tags, "")
	ctx := ctxFor(t)
	token, err := e.store.BeginRotation(ctx, "app/openrouter", "")
	if err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}
	err = e.engine.Run(ctx, rotation.TestSecret, "app/openrouter", token)
	if !errors.Is(err, rotation.ErrConfig) {
		t.Fatalf("testSecret: err = %v, want ErrConfig", err)
	}
	if !strings.Contains(err.Error(), "admin/missing") {
		t.Errorf("error %q does not name the issuer secret", err)
	}
}

const adminKey = "sk-or-v1-" + canary + "admin"

// addMintingSecret creates an OpenRouter secret whose keys the dev issuer
// mints, with its admin secret.
func (e *env) addMintingSecret(id string) {
	e.t.Helper()
	e.prov.AddManagementKey(adminKey)
	_, err := e.store.Create(ctxFor(e.t), keystore.CreateInput{
		SecretID: "admin/openrouter",
		Value:    encode(e.t, keystore.Value{APIKey: keystore.NewSecret(adminKey)}),
	})
	if err != nil {
		e.t.Fatalf("Create admin secret: %v", err)
	}
	tags := e.tags("openrouter", keystore.TagIssuer, "dev", keystore.TagIssuerSecret, "admin/openrouter")
	e.addSecret(id, tags, "")
}

func TestMintedKeyPromoted(t *testing.T) {
	e := newEnv(t)
	e.addMintingSecret("app/openrouter")

	res, err := e.engine.RotateNow(ctxFor(t), "app/openrouter")
	if err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	minted := e.prov.MintedKeys()
	if len(minted) != 1 {
		t.Fatalf("%d keys minted, want 1", len(minted))
	}
	if res.StagedVersion != "" {
		t.Errorf("StagedVersion = %q for a minted key, want none", res.StagedVersion)
	}
	if want := "keyturn/app/openrouter/" + res.VersionID; minted[0].Name != want {
		t.Errorf("minted key name = %q, want %q", minted[0].Name, want)
	}
	_, v := e.value("app/openrouter", keystore.Current())
	if v.KeyID != minted[0].Hash {
		t.Errorf("key_id = %q, want the minted hash %q", v.KeyID, minted[0].Hash)
	}
	if !strings.HasPrefix(v.APIKey.Reveal(), "sk-or-v1-") {
		t.Errorf("AWSCURRENT does not hold a minted key")
	}
}

func TestRejectedMintedKeyRevoked(t *testing.T) {
	t.Parallel() // waits seconds between retries
	e := newEnv(t)
	e.addMintingSecret("app/openrouter")
	e.prov.SetFault("GET /openrouter/api/v1/key", fakeprovider.Fault{Status: 401})

	res, err := e.engine.RotateNow(ctxFor(t), "app/openrouter")
	noCanary(t, err)
	if !errors.Is(err, rotation.ErrRejected) {
		t.Fatalf("RotateNow: err = %v, want ErrRejected", err)
	}
	minted := e.prov.MintedKeys()
	if len(minted) != 1 || !minted[0].Deleted {
		t.Fatalf("minted keys = %+v, want one, deleted", minted)
	}
	if got := e.holder("app/openrouter", keystore.StageCurrent); got != "" {
		t.Errorf("AWSCURRENT on %s after a rejected first key", got)
	}
	if got := e.holder("app/openrouter", keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s", got)
	}
	_, v := e.value("app/openrouter", keystore.ByStage(keystore.StageRejected))
	if v.LastFailure == nil || v.LastFailure.VersionID != res.VersionID {
		t.Errorf("last_failure = %+v, want one for version %s", v.LastFailure, res.VersionID)
	}
}

func TestParseStepUnknown(t *testing.T) {
	_, err := rotation.ParseStep("bogusSecret")
	if err == nil || !strings.Contains(err.Error(), "bogusSecret") {
		t.Fatalf("ParseStep: err = %v, want one naming bogusSecret", err)
	}
	step, err := rotation.ParseStep("testSecret")
	if err != nil || step != rotation.TestSecret {
		t.Errorf("ParseStep(testSecret) = %q, %v", step, err)
	}
}

func TestRunUnknownStep(t *testing.T) {
	e := newEnv(t)
	e.addSecret("app/openai", e.tags("openai"), "")
	err := e.engine.Run(ctxFor(t), rotation.Step("bogusSecret"), "app/openai", "t")
	if !errors.Is(err, rotation.ErrConfig) || !strings.Contains(err.Error(), "bogusSecret") {
		t.Errorf("Run: err = %v, want ErrConfig naming bogusSecret", err)
	}
}

func TestRunTokenNotAVersion(t *testing.T) {
	e := newEnv(t)
	e.addSecret("app/openai", e.tags("openai"), oldKey)
	const token = "11111111-2222-4333-8444-555555555555"
	err := e.engine.Run(ctxFor(t), rotation.CreateSecret, "app/openai", token)
	if !errors.Is(err, rotation.ErrNotPending) {
		t.Fatalf("Run: err = %v, want ErrNotPending", err)
	}
	for _, want := range []string{token, "app/openai"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	noCanary(t, err)
}

func TestRunTokenNotPending(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.addSecret("app/openai", e.tags("openai"), oldKey)
	staged := e.stage("app/openai", newKey)
	err := e.engine.Run(ctxFor(t), rotation.TestSecret, "app/openai", staged)
	if !errors.Is(err, rotation.ErrNotPending) {
		t.Fatalf("Run: err = %v, want ErrNotPending", err)
	}
	if !strings.Contains(err.Error(), keystore.StageStaged) {
		t.Errorf("error %q does not list the version's stages", err)
	}
}

func TestRunCurrentTokenDoesNothing(t *testing.T) {
	e := newEnv(t)
	current := e.addSecret("app/openai", e.tags("openai"), oldKey)
	before := e.snapshot("app/openai")
	for _, step := range rotation.Steps {
		if err := e.engine.Run(ctxFor(t), step, "app/openai", current); err != nil {
			t.Errorf("%s on the current version: %v", step, err)
		}
	}
	sameSnapshot(t, "steps on the current version", before, e.snapshot("app/openai"))
}

func TestRotationDisabled(t *testing.T) {
	e := newEnv(t)
	_, err := e.store.Create(ctxFor(t), keystore.CreateInput{SecretID: "app/openai", Tags: e.tags("openai")})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	res, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	if !errors.Is(err, rotation.ErrConfig) {
		t.Fatalf("RotateNow: err = %v, want ErrConfig", err)
	}
	if res.Outcome != rotation.Failed {
		t.Errorf("Outcome = %s, want %s", res.Outcome, rotation.Failed)
	}
	if !strings.Contains(err.Error(), "rotator add") {
		t.Errorf("error %q does not say how to enable rotation", err)
	}
	err = e.engine.Run(ctxFor(t), rotation.CreateSecret, "app/openai", "t")
	if !errors.Is(err, rotation.ErrConfig) {
		t.Errorf("Run: err = %v, want ErrConfig", err)
	}
}

func TestInvalidSettingsTag(t *testing.T) {
	e := newEnv(t)
	tags := e.tags("openai", keystore.TagGrace, "forever")
	_, err := e.store.Create(ctxFor(t), keystore.CreateInput{SecretID: "app/openai", Tags: tags})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	e.enable("app/openai")
	_, err = e.engine.RotateNow(ctxFor(t), "app/openai")
	if !errors.Is(err, rotation.ErrConfig) || !strings.Contains(err.Error(), keystore.TagGrace) {
		t.Errorf("RotateNow: err = %v, want ErrConfig naming %s", err, keystore.TagGrace)
	}
}

func TestMalformedStagedValue(t *testing.T) {
	cases := []struct {
		name, raw, field string
	}{
		{"NotJSON", "sk-" + canary + "bare", "not a JSON object"},
		{"NoAPIKey", `{"key_id": "key_x"}`, "api_key"},
		{"DuplicateAPIKey", `{"api_key": "` + newKey + `", "api_key": "` + oldKey + `"}`, `field "api_key" appears more than once`},
		{"KeyIDHoldsKey", `{"api_key": "` + newKey + `", "key_id": "id-` + newKey + `"}`, "key_id contains its api_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.prov.AddKey(oldKey)
			oldVersion := e.addSecret("app/openai", e.tags("openai"), oldKey)
			const bad = "22222222-2222-4222-8222-222222222222"
			err := e.store.Put(ctxFor(t), keystore.PutInput{
				SecretID: "app/openai", Token: bad, Value: keystore.NewSecret(tc.raw),
				Stages: []string{keystore.StageStaged},
			})
			if err != nil {
				t.Fatalf("Put: %v", err)
			}

			_, err = e.engine.RotateNow(ctxFor(t), "app/openai")
			noCanary(t, err)
			if !errors.Is(err, rotation.ErrRejected) {
				t.Fatalf("RotateNow: err = %v, want ErrRejected", err)
			}
			for _, want := range []string{bad, "malformed", tc.field, "rotator stage"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			d := e.describe("app/openai")
			if got := d.VersionWithStage(keystore.StageRejected); got != bad {
				t.Errorf("KEYTURN_REJECTED on %q, want the malformed version %s", got, bad)
			}
			if got := d.VersionWithStage(keystore.StageStaged); got != "" {
				t.Errorf("KEYTURN_STAGED left on %s", got)
			}
			if got := d.VersionWithStage(keystore.StagePending); got != "" {
				t.Errorf("AWSPENDING left on %s", got)
			}
			if got := d.VersionWithStage(keystore.StageCurrent); got != oldVersion {
				t.Errorf("AWSCURRENT on %s, want %s", got, oldVersion)
			}
		})
	}
}

func TestConcurrentRotateNow(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), oldKey)
	e.stage("app/openai", newKey)

	gate := &gatedChecker{next: e.engine.Checker, entered: make(chan struct{}), release: make(chan struct{})}
	first := *e.engine
	first.Checker = gate
	second := *e.engine
	second.Store = e.openStore(nil)

	type outcome struct {
		res rotation.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := first.RotateNow(ctxFor(t), "app/openai")
		done <- outcome{res, err}
	}()
	select {
	case <-gate.entered:
	case <-time.After(testDeadline):
		t.Fatal("the first rotation never reached testSecret")
	}

	res, err := second.RotateNow(ctxFor(t), "app/openai")
	close(gate.release)
	if !errors.Is(err, rotation.ErrInProgress) || !strings.Contains(err.Error(), "rotation in progress") {
		t.Errorf("second RotateNow: err = %v, want ErrInProgress", err)
	}
	if res.Outcome != rotation.InProgress {
		t.Errorf("second Outcome = %s, want %s", res.Outcome, rotation.InProgress)
	}
	got := <-done
	if got.err != nil || got.res.Outcome != rotation.Promoted {
		t.Errorf("first RotateNow: outcome %s, err %v", got.res.Outcome, got.err)
	}
	if res.VersionID != got.res.VersionID {
		t.Errorf("second names version %s, want the first's %s", res.VersionID, got.res.VersionID)
	}
}

func TestStageFillsAndValidates(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), "")

	_, err := e.engine.Stage(ctxFor(t), "app/openai",
		keystore.Value{APIKey: keystore.NewSecret("sk-" + canary + "unknown")}, true)
	noCanary(t, err)
	if !errors.Is(err, rotation.ErrRejected) {
		t.Fatalf("Stage of an unknown key: err = %v, want ErrRejected", err)
	}
	if got := e.holder("app/openai", keystore.StageStaged); got != "" {
		t.Fatalf("a rejected key was staged as %s", got)
	}

	version, err := e.engine.Stage(ctxFor(t), "app/openai", keystore.Value{APIKey: keystore.NewSecret(newKey)}, true)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	ver, v := e.value("app/openai", keystore.ByStage(keystore.StageStaged))
	if ver.VersionID != version {
		t.Errorf("KEYTURN_STAGED on %s, want %s", ver.VersionID, version)
	}
	if !v.CreatedAt.Equal(e.now) {
		t.Errorf("created_at = %s, want %s", v.CreatedAt, e.now)
	}
	if v.Settings.Provider != "openai" || v.Settings.BaseURL != e.url+"/openai/v1" {
		t.Errorf("settings = %+v, want the secret's tags", v.Settings)
	}

	again := e.stage("app/openai", newKey)
	if got := e.holder("app/openai", keystore.StageStaged); got != again {
		t.Errorf("KEYTURN_STAGED on %s, want the newest %s", got, again)
	}
}

func TestStageEmptyKey(t *testing.T) {
	e := newEnv(t)
	e.addSecret("app/openai", e.tags("openai"), "")
	_, err := e.engine.Stage(ctxFor(t), "app/openai", keystore.Value{}, false)
	if !errors.Is(err, rotation.ErrConfig) || !strings.Contains(err.Error(), "api_key") {
		t.Errorf("Stage: err = %v, want ErrConfig naming api_key", err)
	}
}

var _ provider.Checker = (*gatedChecker)(nil)

func TestTransientMintedKeyRevokedOnAbandon(t *testing.T) {
	e := newEnv(t)
	e.engine.Checker = newChecker(nil, 300*time.Millisecond)
	e.addMintingSecret("app/openrouter")
	e.prov.SetFault("GET /openrouter/api/v1/key", fakeprovider.Fault{Status: 503})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := e.engine.RotateNow(ctx, "app/openrouter")
	if !errors.Is(err, rotation.ErrTransient) {
		t.Fatalf("RotateNow: err = %v, want ErrTransient", err)
	}
	if res.Outcome != rotation.Transient {
		t.Errorf("Outcome = %s, want %s", res.Outcome, rotation.Transient)
	}
	minted := e.prov.MintedKeys()
	if len(minted) != 1 || !minted[0].Deleted {
		t.Errorf("minted keys = %+v, want one, deleted", minted)
	}
	if got := e.holder("app/openrouter", keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s", got)
	}
}

func TestUnconfiguredIssuer(t *testing.T) {
	e := newEnv(t)
	e.engine.Issuers = nil
	e.addMintingSecret("app/openrouter")
	_, err := e.engine.RotateNow(ctxFor(t), "app/openrouter")
	if !errors.Is(err, rotation.ErrConfig) || !strings.Contains(err.Error(), `"dev"`) {
		t.Fatalf("RotateNow: err = %v, want ErrConfig naming issuer dev", err)
	}
	if got := e.holder("app/openrouter", keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s", got)
	}
}
