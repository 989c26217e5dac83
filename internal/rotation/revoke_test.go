package rotation_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/issuer"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// mintKeys mints n keys at the stand-in through the dev issuer, as
// earlier rotations would have, and returns them.
func (e *env) mintKeys(n int) []issuer.Minted {
	e.t.Helper()
	iss := issuer.NewDev(e.url+"/openrouter/api/v1", nil)
	var keys []issuer.Minted
	for i := range n {
		m, err := iss.Mint(ctxFor(e.t), issuer.MintRequest{
			SecretID: "app/openrouter", Token: "earlier", Name: "keyturn/app/openrouter/earlier-" + string(rune('a'+i)),
			Admin: keystore.NewSecret(adminKey),
		})
		if err != nil {
			e.t.Fatalf("Mint: %v", err)
		}
		keys = append(keys, m)
	}
	return keys
}

// addRetiringSecret creates app/openrouter, minted by the dev issuer,
// whose current value holds current with the given retire list.
func (e *env) addRetiringSecret(current issuer.Minted, retire []keystore.Retired, extra ...string) {
	e.t.Helper()
	if _, err := e.store.Create(ctxFor(e.t), keystore.CreateInput{
		SecretID: "admin/openrouter",
		Value:    encode(e.t, keystore.Value{APIKey: keystore.NewSecret(adminKey)}),
	}); err != nil {
		e.t.Fatalf("Create admin secret: %v", err)
	}
	tags := e.tags("openrouter", append([]string{keystore.TagIssuer, "dev", keystore.TagIssuerSecret, "admin/openrouter"}, extra...)...)
	settings, err := keystore.SettingsFromTags(tags)
	if err != nil {
		e.t.Fatalf("settings: %v", err)
	}
	_, err = e.store.Create(ctxFor(e.t), keystore.CreateInput{
		SecretID: "app/openrouter", Tags: tags, Token: "00000000-0000-4000-8000-00000000000c",
		Value: encode(e.t, keystore.Value{APIKey: current.Key, KeyID: current.KeyID, Settings: settings, Retire: retire}),
	})
	if err != nil {
		e.t.Fatalf("Create app/openrouter: %v", err)
	}
}

// deleted returns the hashes of the minted keys the stand-in has deleted.
func deleted(p *fakeprovider.Provider) []string {
	var hashes []string
	for _, m := range p.MintedKeys() {
		if m.Deleted {
			hashes = append(hashes, m.Hash)
		}
	}
	return hashes
}

func keyIDs(entries []keystore.Retired) []string {
	var ids []string
	for _, r := range entries {
		ids = append(ids, r.KeyID)
	}
	return ids
}

func TestRevokeRetiredDueOnly(t *testing.T) {
	e := newEnv(t)
	e.prov.AddManagementKey(adminKey)
	keys := e.mintKeys(4)
	current, due, later, soon := keys[0], keys[1], keys[2], keys[3]
	retire := []keystore.Retired{
		{KeyID: due.KeyID, VersionID: "version-due", NotBefore: e.now.Add(-time.Minute)},
		{KeyID: later.KeyID, VersionID: "version-later", NotBefore: e.now.Add(2 * time.Hour)},
		{VersionID: "version-no-key-id", NotBefore: e.now.Add(-time.Hour)},
		{KeyID: soon.KeyID, VersionID: "version-soon", NotBefore: e.now.Add(30 * time.Minute)},
		{VersionID: "version-no-key-id-later", NotBefore: e.now.Add(10 * time.Minute)},
	}
	e.addRetiringSecret(current, retire)
	before := e.snapshot("app/openrouter")

	res, err := e.engine.RevokeRetired(ctxFor(t), "app/openrouter", nil)
	if err != nil {
		t.Fatalf("RevokeRetired: %v", err)
	}
	if got := keyIDs(res.Revoked); !slices.Equal(got, []string{due.KeyID}) {
		t.Errorf("revoked %v, want only the due key %s", got, due.KeyID)
	}
	if len(res.Failed) != 0 {
		t.Errorf("failed = %+v, want none", res.Failed)
	}
	if want := e.now.Add(30 * time.Minute); !res.Next.Equal(want) {
		t.Errorf("next = %v, want %v, the earliest not_before to come with a key id", res.Next, want)
	}
	if res.VersionID != "00000000-0000-4000-8000-00000000000c" {
		t.Errorf("version = %q, want the current version", res.VersionID)
	}
	if got := deleted(e.prov); !slices.Equal(got, []string{due.KeyID}) {
		t.Errorf("the stand-in deleted %v, want only %s", got, due.KeyID)
	}
	sameSnapshot(t, "RevokeRetired", before, e.snapshot("app/openrouter"))
	logs := e.logs.String()
	if !strings.Contains(logs, "revoked retired key") || !strings.Contains(logs, "retired_version_id=version-due") {
		t.Errorf("no log line names the revoked key's version:\n%s", logs)
	}
}

func TestRevokeRetiredLaterPass(t *testing.T) {
	e := newEnv(t)
	e.prov.AddManagementKey(adminKey)
	keys := e.mintKeys(3)
	current, first, second := keys[0], keys[1], keys[2]
	e.addRetiringSecret(current, []keystore.Retired{
		{KeyID: first.KeyID, VersionID: "version-first", NotBefore: e.now.Add(-time.Minute)},
		{KeyID: second.KeyID, VersionID: "version-second", NotBefore: e.now.Add(time.Hour)},
	})
	if _, err := e.engine.RevokeRetired(ctxFor(t), "app/openrouter", nil); err != nil {
		t.Fatalf("first RevokeRetired: %v", err)
	}

	e.now = e.now.Add(2 * time.Hour)
	deletes := countRequests(e.prov, "DELETE")
	var skipped []string
	skip := func(r keystore.Retired) bool {
		skipped = append(skipped, r.KeyID)
		return r.KeyID == first.KeyID
	}
	res, err := e.engine.RevokeRetired(ctxFor(t), "app/openrouter", skip)
	if err != nil {
		t.Fatalf("second RevokeRetired: %v", err)
	}
	if got := keyIDs(res.Revoked); !slices.Equal(got, []string{second.KeyID}) {
		t.Errorf("revoked %v, want %s alone", got, second.KeyID)
	}
	if !res.Next.IsZero() {
		t.Errorf("next = %v with every entry due, want the zero time", res.Next)
	}
	if got := countRequests(e.prov, "DELETE") - deletes; got != 1 {
		t.Errorf("%d DELETE requests, want 1: the skipped key was revoked again", got)
	}
	if !slices.Contains(skipped, first.KeyID) {
		t.Errorf("skip was not asked about %s", first.KeyID)
	}
	if _, v := e.value("app/openrouter", keystore.Current()); len(v.Retire) != 2 {
		t.Errorf("retire list has %d entries after revoking, want both kept", len(v.Retire))
	}
}

func countRequests(p *fakeprovider.Provider, method string) int {
	n := 0
	for _, r := range p.Requests() {
		if r.Method == method {
			n++
		}
	}
	return n
}

func TestRevokeRetiredNeverCurrentKey(t *testing.T) {
	e := newEnv(t)
	e.prov.AddManagementKey(adminKey)
	current := e.mintKeys(1)[0]
	e.addRetiringSecret(current, []keystore.Retired{
		{KeyID: current.KeyID, VersionID: "restored-version", NotBefore: e.now.Add(-time.Minute)},
	})
	res, err := e.engine.RevokeRetired(ctxFor(t), "app/openrouter", nil)
	if err != nil {
		t.Fatalf("RevokeRetired: %v", err)
	}
	if len(res.Revoked) != 0 || len(deleted(e.prov)) != 0 {
		t.Errorf("revoked %v, deleted %v: the current key was revoked", keyIDs(res.Revoked), deleted(e.prov))
	}
	if !strings.Contains(e.logs.String(), "not revoking a retired key that is the current key") {
		t.Errorf("no warning about the current key in the retire list:\n%s", e.logs)
	}
}

func TestRevokeRetiredFailureReported(t *testing.T) {
	e := newEnv(t)
	e.prov.AddManagementKey(adminKey)
	keys := e.mintKeys(3)
	e.addRetiringSecret(keys[0], []keystore.Retired{
		{KeyID: keys[1].KeyID, VersionID: "version-failing", NotBefore: e.now.Add(-time.Minute)},
		{KeyID: keys[2].KeyID, VersionID: "version-ok", NotBefore: e.now.Add(-time.Minute)},
	})
	e.prov.SetFault("DELETE /openrouter/api/v1/keys/"+keys[1].KeyID, fakeprovider.Fault{Status: 500})

	res, err := e.engine.RevokeRetired(ctxFor(t), "app/openrouter", nil)
	if err != nil {
		t.Fatalf("RevokeRetired: %v, want the failure in Failed", err)
	}
	if got := keyIDs(res.Revoked); !slices.Equal(got, []string{keys[2].KeyID}) {
		t.Errorf("revoked %v, want %s: one failure stopped the pass", got, keys[2].KeyID)
	}
	if len(res.Failed) != 1 {
		t.Fatalf("failed = %+v, want one entry", res.Failed)
	}
	f := res.Failed[0]
	noCanary(t, f.Err)
	if f.Retired.KeyID != keys[1].KeyID || !errors.Is(f.Err, rotation.ErrTransient) {
		t.Errorf("failure = %s %v, want %s transient", f.Retired.KeyID, f.Err, keys[1].KeyID)
	}
	if !strings.Contains(f.Err.Error(), "version-failing") {
		t.Errorf("error %q does not name the retired version", f.Err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "failed to revoke retired key") || !strings.Contains(logs, "key_id="+keys[1].KeyID) {
		t.Errorf("no log line names the key that failed:\n%s", logs)
	}
}

func TestRevokeRetiredStagedIssuer(t *testing.T) {
	e := newEnv(t)
	e.addSecretWithRetire("app/openai", []keystore.Retired{
		{KeyID: "key_older", VersionID: "version-older", NotBefore: e.now.Add(time.Hour)},
	})
	res, err := e.engine.RevokeRetired(ctxFor(t), "app/openai", nil)
	if err != nil {
		t.Fatalf("RevokeRetired with nothing due: %v", err)
	}
	if !res.Next.Equal(e.now.Add(time.Hour)) {
		t.Errorf("next = %v, want %v", res.Next, e.now.Add(time.Hour))
	}

	e.now = e.now.Add(2 * time.Hour)
	_, err = e.engine.RevokeRetired(ctxFor(t), "app/openai", nil)
	if !errors.Is(err, rotation.ErrConfig) || !strings.Contains(err.Error(), "revoke the retired keys at the provider by hand") {
		t.Errorf("err = %v, want a config error that says to revoke by hand", err)
	}
}

func TestRevokeRetiredMissingSecret(t *testing.T) {
	e := newEnv(t)
	_, err := e.engine.RevokeRetired(ctxFor(t), "app/missing", nil)
	if !errors.Is(err, rotation.ErrConfig) || !strings.Contains(err.Error(), "app/missing") {
		t.Errorf("err = %v, want a config error naming app/missing", err)
	}
	if _, err := e.store.Create(ctxFor(t), keystore.CreateInput{SecretID: "app/empty", Tags: e.tags("openai")}); err != nil {
		t.Fatal(err)
	}
	res, err := e.engine.RevokeRetired(ctxFor(t), "app/empty", nil)
	if err != nil || res.VersionID != "" || !res.Next.IsZero() {
		t.Errorf("secret without a value: %+v, %v; want an empty result", res, err)
	}
}

// TestRevokeRetiredNeverStagedKey stages an old key again, as a restored
// backup does: the pass must leave it alone, since the next rotation
// promotes it, and still revoke the other due entry.
func TestRevokeRetiredNeverStagedKey(t *testing.T) {
	e := newEnv(t)
	e.prov.AddManagementKey(adminKey)
	keys := e.mintKeys(3)
	e.addRetiringSecret(keys[0], []keystore.Retired{
		{KeyID: keys[1].KeyID, VersionID: "version-restored", NotBefore: e.now.Add(-time.Minute)},
		{KeyID: keys[2].KeyID, VersionID: "version-old", NotBefore: e.now.Add(-time.Minute)},
	})
	_, err := e.engine.Stage(ctxFor(t), "app/openrouter", keystore.Value{APIKey: keys[1].Key, KeyID: keys[1].KeyID}, false)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}

	res, err := e.engine.RevokeRetired(ctxFor(t), "app/openrouter", nil)
	if err != nil {
		t.Fatalf("RevokeRetired: %v", err)
	}
	if got := keyIDs(res.Revoked); !slices.Equal(got, []string{keys[2].KeyID}) {
		t.Errorf("revoked %v, want only %s: the staged key was revoked or the other one kept", got, keys[2].KeyID)
	}
	if !strings.Contains(e.logs.String(), "not revoking a retired key that is pending or staged") {
		t.Errorf("no log line says why the staged key was left alone:\n%s", e.logs)
	}
}

// TestRevokeRetiredNeverCurrentVersion lists the current version itself in
// the retire list under another key id, as a hand-edited value could.
func TestRevokeRetiredNeverCurrentVersion(t *testing.T) {
	e := newEnv(t)
	e.prov.AddManagementKey(adminKey)
	keys := e.mintKeys(2)
	e.addRetiringSecret(keys[0], []keystore.Retired{
		{KeyID: keys[1].KeyID, VersionID: "00000000-0000-4000-8000-00000000000c", NotBefore: e.now.Add(-time.Minute)},
	})

	res, err := e.engine.RevokeRetired(ctxFor(t), "app/openrouter", nil)
	if err != nil {
		t.Fatalf("RevokeRetired: %v", err)
	}
	if len(res.Revoked) != 0 || len(deleted(e.prov)) != 0 {
		t.Errorf("revoked %v, deleted %v: an entry naming the current version was revoked", keyIDs(res.Revoked), deleted(e.prov))
	}
}
