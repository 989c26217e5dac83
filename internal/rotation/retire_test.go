package rotation_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// readCounter counts the reads of each version by id.
type readCounter struct {
	keystore.Store
	mu    sync.Mutex
	reads map[string]int
}

func (s *readCounter) Get(ctx context.Context, id string, ref keystore.Ref) (keystore.Version, error) {
	s.mu.Lock()
	s.reads[ref.VersionID]++
	s.mu.Unlock()
	return s.Store.Get(ctx, id, ref)
}

// addSecretWithRetire creates an OpenAI secret whose current value holds
// oldKey as key_id "key_old" with the given retire list.
func (e *env) addSecretWithRetire(id string, retire []keystore.Retired) string {
	e.t.Helper()
	tags := e.tags("openai")
	settings, err := keystore.SettingsFromTags(tags)
	if err != nil {
		e.t.Fatalf("settings: %v", err)
	}
	token := "00000000-0000-4000-8000-000000000001"
	_, err = e.store.Create(ctxFor(e.t), keystore.CreateInput{
		SecretID: id, Tags: tags, Token: token,
		Value: encode(e.t, keystore.Value{
			APIKey: keystore.NewSecret(oldKey), KeyID: "key_old",
			CreatedAt: e.now.Add(-time.Hour), Settings: settings, Retire: retire,
		}),
	})
	if err != nil {
		e.t.Fatalf("Create %s: %v", id, err)
	}
	e.enable(id)
	return token
}

func TestRetireListBounded(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	var retire []keystore.Retired
	for i := range 120 {
		retire = append(retire, keystore.Retired{
			KeyID: fmt.Sprintf("key_%03d", i), VersionID: fmt.Sprintf("version-%03d", i),
			NotBefore: e.now.Add(time.Duration(i-200) * time.Hour),
		})
	}
	for i := range 5 {
		retire = append(retire, keystore.Retired{
			VersionID: fmt.Sprintf("expired-%d", i), NotBefore: e.now.Add(-time.Minute),
		})
	}
	retire = append(retire, keystore.Retired{VersionID: "in-grace", NotBefore: e.now.Add(time.Hour)})
	oldVersion := e.addSecretWithRetire("app/openai", retire)
	_, err := e.engine.Stage(ctxFor(t), "app/openai",
		keystore.Value{APIKey: keystore.NewSecret(newKey), KeyID: "key_new"}, false)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	counter := &readCounter{Store: e.store, reads: map[string]int{}}
	e.engine.Store = counter

	if _, err := e.engine.RotateNow(ctxFor(t), "app/openai"); err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	_, v := e.value("app/openai", keystore.Current())
	if len(v.Retire) != 100 {
		t.Fatalf("retire list has %d entries, want the cap of 100", len(v.Retire))
	}
	have := func(versionID string) bool {
		return slices.ContainsFunc(v.Retire, func(r keystore.Retired) bool { return r.VersionID == versionID })
	}
	if !have(oldVersion) || !have("in-grace") || !have("version-119") {
		t.Errorf("retire list lost the newest entries: %+v", v.Retire)
	}
	logs := e.logs.String()
	for i := range 5 {
		if have(fmt.Sprintf("expired-%d", i)) {
			t.Errorf("entry expired-%d, without a key id and past not_before, was kept", i)
		}
		if !strings.Contains(logs, fmt.Sprintf("retired_version_id=expired-%d", i)) {
			t.Errorf("no log line names the dropped version expired-%d", i)
		}
	}
	// 120 + 5 + 1 + the old current key, less 5 expired: 122, so the 22
	// oldest go, each named in a warning.
	for i := range 22 {
		keyID := fmt.Sprintf("key_%03d", i)
		if have(fmt.Sprintf("version-%03d", i)) {
			t.Errorf("entry %s was kept over the cap", keyID)
		}
		if !strings.Contains(logs, "key "+keyID+" may still be valid at the provider") {
			t.Errorf("no warning names the dropped key %s", keyID)
		}
	}
	if !have("version-022") {
		t.Errorf("entry version-022 was dropped, want only the 22 oldest dropped")
	}
	for id, n := range counter.reads {
		if strings.HasPrefix(id, "version-") || strings.HasPrefix(id, "expired-") {
			t.Errorf("createSecret read retired version %s %d times; its key id differs from the new key's", id, n)
		}
	}
}

// TestRevokedEntriesDropped checks that a rotation carries forward only
// the retire entries that Engine.Revoked does not report revoked.
func TestRevokedEntriesDropped(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	retire := []keystore.Retired{
		{KeyID: "key_revoked", VersionID: "version-revoked", NotBefore: e.now.Add(-time.Hour)},
		{KeyID: "key_due", VersionID: "version-due", NotBefore: e.now.Add(-time.Hour)},
		{KeyID: "key_in_grace", VersionID: "version-in-grace", NotBefore: e.now.Add(time.Hour)},
	}
	oldVersion := e.addSecretWithRetire("app/openai", retire)
	var asked []string
	e.engine.Revoked = func(secretID string, r keystore.Retired) bool {
		asked = append(asked, secretID+" "+r.KeyID)
		return r.KeyID == "key_revoked"
	}
	_, err := e.engine.Stage(ctxFor(t), "app/openai",
		keystore.Value{APIKey: keystore.NewSecret(newKey), KeyID: "key_new"}, false)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}

	if _, err := e.engine.RotateNow(ctxFor(t), "app/openai"); err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	_, v := e.value("app/openai", keystore.Current())
	var kept []string
	for _, r := range v.Retire {
		kept = append(kept, r.VersionID)
	}
	if want := []string{"version-due", "version-in-grace", oldVersion}; !slices.Equal(kept, want) {
		t.Errorf("retire list keeps versions %v, want %v", kept, want)
	}
	if !slices.Contains(asked, "app/openai key_revoked") {
		t.Errorf("Revoked was asked about %v, want key_revoked of app/openai among them", asked)
	}
}

func TestReusedKeyIDStillRetiresOldKey(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	oldVersion := e.addSecret("app/openai", e.tags("openai"), oldKey)
	// Another key under the current key's id: it is still a new key.
	_, err := e.engine.Stage(ctxFor(t), "app/openai",
		keystore.Value{APIKey: keystore.NewSecret(newKey), KeyID: "key_old"}, false)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if _, err := e.engine.RotateNow(ctxFor(t), "app/openai"); err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	_, v := e.value("app/openai", keystore.Current())
	if !slices.ContainsFunc(v.Retire, func(r keystore.Retired) bool { return r.VersionID == oldVersion }) {
		t.Errorf("retire = %+v, want the old key's version %s: the keys differ though their key ids match", v.Retire, oldVersion)
	}
}

func TestRetiredEntryWithReusedKeyIDKept(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	// The entry names the current version, which holds oldKey, under key_x.
	current := "00000000-0000-4000-8000-000000000001"
	e.addSecretWithRetire("app/openai", []keystore.Retired{
		{KeyID: "key_x", VersionID: current, NotBefore: e.now.Add(time.Hour)},
	})
	_, err := e.engine.Stage(ctxFor(t), "app/openai",
		keystore.Value{APIKey: keystore.NewSecret(newKey), KeyID: "key_x"}, false)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if _, err := e.engine.RotateNow(ctxFor(t), "app/openai"); err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	_, v := e.value("app/openai", keystore.Current())
	if !slices.ContainsFunc(v.Retire, func(r keystore.Retired) bool { return r.KeyID == "key_x" }) {
		t.Errorf("retire = %+v, want the key_x entry kept: its version holds another key than the promoted one", v.Retire)
	}
}

// failSecondTidy fails the second label change that follows the move of
// AWSCURRENT, as a rotator stopping inside finishSecret would.
type failSecondTidy struct {
	keystore.Store
	promoted bool
	after    int
}

func (s *failSecondTidy) UpdateStage(ctx context.Context, in keystore.StageInput) error {
	if in.Stage == keystore.StageCurrent {
		s.promoted = true
	} else if s.promoted {
		s.after++
		if s.after == 2 {
			return keystore.Errorf(keystore.ErrUnavailable, "UpdateSecretVersionStage", in.SecretID, "the rotator stopped")
		}
	}
	return s.Store.UpdateStage(ctx, in)
}

func TestFinishConsumesStagedBeforePending(t *testing.T) {
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
	for _, step := range rotation.Steps[:3] {
		if err := e.engine.Run(ctx, step, "app/openai", token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	e.engine.Store = &failSecondTidy{Store: e.store}
	if err := e.engine.Run(ctx, rotation.FinishSecret, "app/openai", token); err == nil {
		t.Fatalf("finishSecret: err = nil, want the injected failure")
	}
	if got := e.holder("app/openai", keystore.StageStaged); got != "" {
		t.Errorf("KEYTURN_STAGED still on %s, which holds the promoted key", got)
	}
	if got := e.holder("app/openai", keystore.StagePending); got != token {
		t.Errorf("AWSPENDING on %q, want it left on %s until the rotation is complete", got, token)
	}

	e.engine.Store = e.store
	if err := e.engine.Run(ctx, rotation.FinishSecret, "app/openai", token); err != nil {
		t.Fatalf("finishSecret replayed: %v", err)
	}
	if got := e.holder("app/openai", keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s after the replay", got)
	}
	_, err = e.engine.RotateNow(ctx, "app/openai")
	if !errors.Is(err, rotation.ErrNothingToPromote) {
		t.Errorf("next RotateNow: err = %v, want ErrNothingToPromote: the promoted key must not be promoted again", err)
	}
}

func TestRotationCarriesUnknownFields(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	tags := e.tags("openai")
	_, err := e.store.Create(ctxFor(t), keystore.CreateInput{
		SecretID: "app/openai", Tags: tags, Token: "00000000-0000-4000-8000-000000000001",
		Value: keystore.NewSecret(`{"api_key":"` + oldKey + `","future_field":{"n":1}}`),
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	e.enable("app/openai")
	e.stage("app/openai", newKey)
	if _, err := e.engine.RotateNow(ctxFor(t), "app/openai"); err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	ver, _ := e.value("app/openai", keystore.Current())
	if !strings.Contains(ver.Value.Reveal(), `"future_field":{"n":1}`) {
		t.Errorf("the new current value lost the unknown field future_field")
	}
}
