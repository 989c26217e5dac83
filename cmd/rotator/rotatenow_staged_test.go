package main

import (
	"encoding/json"
	"testing"
)

func TestRotateNowNamesStagedVersion(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary), "--output", "json")
	var staged struct {
		VersionID string `json:"version_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &staged); err != nil || staged.VersionID == "" {
		t.Fatalf("stage JSON: %v\n%s", err, r.stdout)
	}

	r = e.mustRun(exitOK, "rotate-now", "app/openai")
	promoted := e.status("app/openai").Versions[0].VersionID
	assertContains(t, "stdout", r.stdout, "promoted app/openai version "+promoted+" to AWSCURRENT\n")
	assertContains(t, "stdout", r.stdout, "version "+promoted+" contains the key that was staged as version "+staged.VersionID+"\n")
}

func TestRotateNowJSONStagedVersion(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", canary), "--output", "json")
	var staged struct {
		VersionID string `json:"version_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &staged); err != nil {
		t.Fatalf("stage JSON: %v\n%s", err, r.stdout)
	}
	r = e.mustRun(exitOK, "rotate-now", "app/openai", "--output", "json")
	var out rotationJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("rotate-now JSON: %v\n%s", err, r.stdout)
	}
	if out.StagedVersionID != staged.VersionID {
		t.Errorf("staged_version_id = %q, want %s", out.StagedVersionID, staged.VersionID)
	}
	if out.VersionID == staged.VersionID {
		t.Errorf("version_id %s is the staged version, want the rotation's own", out.VersionID)
	}
}
