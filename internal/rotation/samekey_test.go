package rotation_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// Staging the key AWSCURRENT holds would promote a rotation that changes
// nothing, so Stage rejects it and writes nothing.
func TestStageRejectsCurrentKey(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	current := e.addSecret("app/openai", e.tags("openai"), oldKey)
	before := e.snapshot("app/openai")

	for _, validate := range []bool{false, true} {
		_, err := e.engine.StageValue(ctxFor(t), "app/openai",
			keystore.Value{APIKey: keystore.NewSecret(oldKey)}, validate)
		noCanary(t, err)
		if !errors.Is(err, rotation.ErrConfig) {
			t.Fatalf("StageValue(validate=%t): err = %v, want ErrConfig", validate, err)
		}
		want := "the key is already the current key (version " + current + "): stage a new key"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	sameSnapshot(t, "after a rejected stage", before, e.snapshot("app/openai"))
}

// A key put under KEYTURN_STAGED without Stage can equal the current key.
// The rotation does not promote it: it takes KEYTURN_STAGED off the
// version, clears AWSPENDING and fails.
func TestRotationRejectsStagedCurrentKey(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	current := e.addSecret("app/openai", e.tags("openai"), oldKey)
	const stagedVersion = "00000000-0000-4000-8000-0000000000aa"
	err := e.store.Put(ctxFor(t), keystore.PutInput{
		SecretID: "app/openai", Token: stagedVersion, Stages: []string{keystore.StageStaged},
		Value: encode(t, keystore.Value{APIKey: keystore.NewSecret(oldKey), KeyID: "key_old"}),
	})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}

	res, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	noCanary(t, err)
	if !errors.Is(err, rotation.ErrConfig) {
		t.Fatalf("RotateNow: err = %v, want ErrConfig", err)
	}
	if res.Outcome == rotation.Promoted {
		t.Fatalf("Outcome = %s for the current key staged again", res.Outcome)
	}
	for _, want := range []string{
		"KEYTURN_STAGED version " + stagedVersion + " contains the current key (version " + current + ")",
		"stage a new key with 'rotator stage app/openai --file KEYFILE'",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	d := e.describe("app/openai")
	if got := d.VersionWithStage(keystore.StageCurrent); got != current {
		t.Errorf("AWSCURRENT on %s, want it left on %s", got, current)
	}
	for _, stage := range []string{keystore.StagePending, keystore.StageStaged,
		keystore.StagePrevious, keystore.StageRejected} {
		if got := d.VersionWithStage(stage); got != "" {
			t.Errorf("%s on %s, want no version", stage, got)
		}
	}
	if !e.hasKey("app/openai", keystore.ByVersion(stagedVersion), oldKey) {
		t.Errorf("the staged version lost its value")
	}
}

// Staging AWSPREVIOUS's key rolls the secret back: the rotation promotes
// it and drops it from the retire list, so that it is never revoked.
func TestStagePreviousKeyRollsBack(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	first := e.addSecret("app/openai", e.tags("openai"), oldKey)
	e.stage("app/openai", newKey)
	second, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	if err != nil {
		t.Fatalf("first RotateNow: %v", err)
	}
	if got := e.holder("app/openai", keystore.StagePrevious); got != first {
		t.Fatalf("AWSPREVIOUS on %s, want the first key's version %s", got, first)
	}

	_, err = e.engine.StageValue(ctxFor(t), "app/openai",
		keystore.Value{APIKey: keystore.NewSecret(oldKey), KeyID: "key_old"}, true)
	if err != nil {
		t.Fatalf("StageValue of the previous key: %v", err)
	}
	third, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	if err != nil {
		t.Fatalf("roll-back RotateNow: %v", err)
	}

	if !e.hasKey("app/openai", keystore.Current(), oldKey) {
		t.Errorf("AWSCURRENT does not hold the rolled-back key")
	}
	if got := e.holder("app/openai", keystore.StageCurrent); got != third.VersionID {
		t.Errorf("AWSCURRENT on %s, want the roll-back's version %s", got, third.VersionID)
	}
	if got := e.holder("app/openai", keystore.StagePrevious); got != second.VersionID {
		t.Errorf("AWSPREVIOUS on %s, want the second key's version %s", got, second.VersionID)
	}
	_, v := e.value("app/openai", keystore.Current())
	if len(v.Retire) != 1 || v.Retire[0].VersionID != second.VersionID {
		t.Errorf("retire = %+v, want only the second key's version %s", v.Retire, second.VersionID)
	}
}
