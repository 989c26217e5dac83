package rotation_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// A value's own settings never decide where its key is checked: Stage
// validates with the secret's tags and records them, as the rotation does.
func TestStageValidatesWithTagSettings(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), "")
	tagSettings, err := keystore.SettingsFromTags(e.tags("openai"))
	if err != nil {
		t.Fatal(err)
	}

	// Nothing listens on port 1, and the URL carries credentials that no
	// note may repeat.
	v := keystore.Value{APIKey: keystore.NewSecret(newKey), Settings: keystore.Settings{
		Provider: "openai", BaseURL: "http://user:" + canary + "pw@127.0.0.1:1/v1",
	}}
	res, err := e.engine.StageValue(ctxFor(t), "app/openai", v, true)
	noCanary(t, err)
	if err != nil {
		t.Fatalf("StageValue: %v", err)
	}
	_, staged := e.value("app/openai", keystore.ByVersion(res.VersionID))
	if staged.Settings.BaseURL != tagSettings.BaseURL || staged.Settings.Provider != "openai" {
		t.Errorf("staged settings = %+v, want the tags' %+v", staged.Settings, tagSettings)
	}
	if len(res.Notes) != 1 {
		t.Fatalf("notes = %q, want one about the settings", res.Notes)
	}
	want := `base_url (tag keyturn:base-url is "` + tagSettings.BaseURL + `")`
	if !strings.Contains(res.Notes[0], want) {
		t.Errorf("note %q does not name %s", res.Notes[0], want)
	}
	if strings.Contains(res.Notes[0], "provider") {
		t.Errorf("note %q names provider, which matches the tag", res.Notes[0])
	}
	if strings.Contains(res.Notes[0], canary) {
		t.Errorf("note %q repeats the value's base URL", res.Notes[0])
	}
}

func TestStageLogsNotes(t *testing.T) {
	e := newEnv(t)
	e.addSecret("app/openai", e.tags("openai"), "")
	v := keystore.Value{APIKey: keystore.NewSecret(newKey),
		Settings: keystore.Settings{Provider: "anthropic", BaseURL: e.url + "/anthropic/v1"}}
	version, err := e.engine.Stage(ctxFor(t), "app/openai", v, false)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	for _, want := range []string{"level=WARN", "staged value adjusted", "version_id=" + version,
		`provider (tag keyturn:provider is \"openai\")`} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("logs do not contain %q:\n%s", want, e.logs)
		}
	}
}

func TestStageMatchingSettingsNoNotes(t *testing.T) {
	e := newEnv(t)
	e.addSecret("app/openai", e.tags("openai"), "")
	settings, err := keystore.SettingsFromTags(e.tags("openai"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.engine.StageValue(ctxFor(t), "app/openai",
		keystore.Value{APIKey: keystore.NewSecret(newKey), Settings: settings}, false)
	if err != nil {
		t.Fatalf("StageValue: %v", err)
	}
	if len(res.Notes) != 0 {
		t.Errorf("notes = %q, want none for settings equal to the tags", res.Notes)
	}
}

// A backup restore stages whole values: their retire list and last_failure
// belong to the rotation, which rebuilds them from AWSCURRENT.
func TestStageDropsRetireAndLastFailure(t *testing.T) {
	e := newEnv(t)
	e.addSecret("app/openai", e.tags("openai"), oldKey)
	v := keystore.Value{
		APIKey: keystore.NewSecret(newKey),
		Retire: []keystore.Retired{
			{KeyID: "key_old", VersionID: "v1", NotBefore: e.now},
			{KeyID: "key_older", VersionID: "v0", NotBefore: e.now},
		},
		LastFailure: &keystore.Failure{Step: "testSecret", At: e.now.Add(-time.Hour), Class: "rejected", Reason: "401"},
	}
	res, err := e.engine.StageValue(ctxFor(t), "app/openai", v, false)
	if err != nil {
		t.Fatalf("StageValue: %v", err)
	}
	_, staged := e.value("app/openai", keystore.ByVersion(res.VersionID))
	if len(staged.Retire) != 0 || staged.LastFailure != nil {
		t.Errorf("staged retire %+v, last_failure %+v, want both dropped", staged.Retire, staged.LastFailure)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, want := range []string{"dropped the value's retire list (2 entries)", "dropped the value's last_failure"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q do not contain %q", notes, want)
		}
	}
}

func TestStageKeyIDContainingKey(t *testing.T) {
	e := newEnv(t)
	e.addSecret("app/openai", e.tags("openai"), "")
	for _, keyID := range []string{newKey, "id-" + newKey + "-x"} {
		v := keystore.Value{APIKey: keystore.NewSecret(newKey), KeyID: keyID}
		_, err := e.engine.Stage(ctxFor(t), "app/openai", v, false)
		noCanary(t, err)
		if !errors.Is(err, rotation.ErrConfig) {
			t.Fatalf("Stage: err = %v, want ErrConfig", err)
		}
		if !strings.Contains(err.Error(), "key_id contains its api_key") {
			t.Errorf("error %q does not name the fields", err)
		}
	}
	if got := e.holder("app/openai", keystore.StageStaged); got != "" {
		t.Errorf("KEYTURN_STAGED on %s, want nothing staged", got)
	}
}
